import type { Database } from 'bun:sqlite';
import { join } from 'node:path';
import { AGENT_SECRET_SITES, FEDERATION_SECRET_SITE, SHARE_TOKEN_SECRET_SITE } from '../agents/index.ts';
import { type App, type InstanceConfig, type Logger, type OpenAppOptions, openApp } from '../app/index.ts';
import {
  AUDIT_SECRET_SITE,
  type AuditAnchoring,
  createAuditLog,
  openAuditAnchoring,
} from '../audit/index.ts';
import { installOperatorPlans, STRIPE_SECRET_SITE, subscribeUsageToLedger } from '../billing/index.ts';
import { IDENTITY_SECRET_SITES } from '../identity/index.ts';
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
  /** Replaces the outbound guard's resolver or connector (tests). */
  outbound?: OpenAppOptions['outbound'];
}): Instance {
  let anchoring: AuditAnchoring | undefined;
  const app = openApp({
    ...opts,
    audit: (clock) => createAuditLog(clock, () => anchoring),
    secretSites: [
      AUDIT_SECRET_SITE,
      ...IDENTITY_SECRET_SITES,
      ...AGENT_SECRET_SITES,
      FEDERATION_SECRET_SITE,
      SHARE_TOKEN_SECRET_SITE,
      STRIPE_SECRET_SITE,
    ],
  });
  try {
    const tenancy = createTenancy(app);
    // A platform delete a crash interrupted is finished before anything else reads the registry.
    tenancy.reconcileDeletions();
    // The instance key signs control checkpoints and platform anchors from here on.
    const opened = openAuditAnchoring(app, () =>
      tenancy.list().map((v) => ({ id: v.id, path: join(app.dataDir, v.db_file) })),
    );
    if (opened.ok) anchoring = opened.anchoring;
    // Anchors still pending land before the databases close (stopped before them: added after).
    app.lifecycle.adopt('audit anchors', () => app.audit.flush());
    // The operator's plans: seeds, each platform's plan, and the holds on new users and agents.
    installOperatorPlans(app);
    // Settled AI usage is posted to each platform's ledger from the meter's events.
    subscribeUsageToLedger(app, (id) => tenancy.blueprintOf(id));
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
