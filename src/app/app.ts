import type { Database } from 'bun:sqlite';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { CONTROL_MIGRATIONS, DbPool, migrate, openDatabase, TENANT_MIGRATIONS } from '../db/index.ts';
import { wrapError } from '../shared/errors.ts';
import { type Clock, systemClock } from '../shared/time.ts';
import type { AuditPort } from './audit-port.ts';
import { DEFAULT_CONFIG, type InstanceConfig } from './config.ts';
import { EventBus } from './events.ts';
import { createLogger, type Logger } from './logger.ts';

/**
 * The App container (PocketBase style): everything a service needs, created once per process
 * and passed down. Lifecycle: `openApp` (bootstrap) → serve or run a command → `app.close()`.
 */
export interface App {
  readonly dataDir: string;
  readonly config: InstanceConfig;
  readonly log: Logger;
  readonly clock: Clock;
  readonly bus: EventBus;
  readonly audit: AuditPort;
  /** data/control.db: settings, platforms, operators, domains, the control audit chain. */
  readonly control: Database;
  /** Platform databases (data/platforms/<id>.db), opened on demand. Keys are platform ids. */
  readonly platformDbs: DbPool;
  /** Absolute path of a platform's database file. */
  platformDbPath(platformId: string): string;
  /** Closes every database (leased platform handles when their last request ends). */
  close(): Promise<void>;
}

/** What `openApp` needs; the audit port is plugged in by the composition root. */
export interface OpenAppOptions {
  dataDir: string;
  config?: InstanceConfig;
  log?: Logger;
  clock?: Clock;
  audit: (clock: Clock) => AuditPort;
}

/** Opens (creating if new) the data dir: control database migrated, platform pool ready. */
export function openApp(opts: OpenAppOptions): App {
  const config = opts.config ?? DEFAULT_CONFIG;
  const log = opts.log ?? createLogger({ level: config.log_level, json: config.log_format === 'json' });
  const clock = opts.clock ?? systemClock;
  const platformsDir = join(opts.dataDir, 'platforms');
  try {
    mkdirSync(platformsDir, { recursive: true, mode: 0o700 });
  } catch (e) {
    throw wrapError(`cannot create data dir ${opts.dataDir}`, e);
  }
  const control = openDatabase(join(opts.dataDir, 'control.db'), 'control');
  try {
    const r = migrate(control, CONTROL_MIGRATIONS, 'control.db');
    if (r.applied.length) log.debug('control.db migrated', { from: r.from, to: r.to });
  } catch (e) {
    control.close();
    throw e;
  }
  const platformDbPath = (id: string) => join(platformsDir, `${id}.db`);
  const platformDbs = new DbPool({
    max: config.pool_size,
    open: (id) => {
      const db = openDatabase(platformDbPath(id), 'tenant', { create: false });
      try {
        // Platforms made by an older soulfra are brought up to date on first open.
        migrate(db, TENANT_MIGRATIONS, `platform database ${id}`);
      } catch (e) {
        db.close();
        throw e;
      }
      return db;
    },
  });
  return {
    dataDir: opts.dataDir,
    config,
    log,
    clock,
    bus: new EventBus(log),
    audit: opts.audit(clock),
    control,
    platformDbs,
    platformDbPath,
    async close() {
      await platformDbs.closeAll();
      control.close();
    },
  };
}
