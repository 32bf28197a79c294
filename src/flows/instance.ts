import type { Database } from 'bun:sqlite';
import { type App, type InstanceConfig, type Logger, openApp } from '../app/index.ts';
import { createAuditLog } from '../audit/index.ts';
import type { Clock } from '../shared/time.ts';
import { createTenancy, type Tenancy } from '../tenancy/index.ts';
import { createOperatorActions, type OperatorActions } from './operator-actions.ts';

/** Everything a running soulfra needs, wired: the App, tenancy and the operator's use cases. */
export interface Instance {
  app: App;
  tenancy: Tenancy;
  actions: OperatorActions;
  control: Database;
  close(): Promise<void>;
}

/**
 * The composition root shared by `serve` and by CLI commands that run with no server: opens
 * the data dir's databases and plugs the audit log into the App. The caller holds the lock.
 */
export function openInstance(opts: {
  dataDir: string;
  config?: InstanceConfig;
  log?: Logger;
  clock?: Clock;
}): Instance {
  const app = openApp({ ...opts, audit: createAuditLog });
  try {
    const tenancy = createTenancy(app);
    return {
      app,
      tenancy,
      actions: createOperatorActions(app, tenancy),
      control: app.control,
      close: () => app.close(),
    };
  } catch (e) {
    void app.close();
    throw e;
  }
}
