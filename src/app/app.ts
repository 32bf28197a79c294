import type { Database } from 'bun:sqlite';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { CONTROL_MIGRATIONS, DbPool, migrate, openDatabase, TENANT_MIGRATIONS } from '../db/index.ts';
import { wrapError } from '../shared/errors.ts';
import { createOutboundGuard, type OutboundGuard, type OutboundOptions } from '../shared/outbound.ts';
import { type Clock, systemClock } from '../shared/time.ts';
import type { AuditPort } from './audit-port.ts';
import { DEFAULT_CONFIG, type InstanceConfig } from './config.ts';
import { EventDispatcher } from './events.ts';
import { bindSecrets, Keyring, MASTER_KEY_ENV, type SecretBox, type SecretSite } from './keyring.ts';
import { Lifecycle } from './lifecycle.ts';
import { createLogger, type Logger } from './logger.ts';
import { AppState, bindState } from './state.ts';

/**
 * The App container (PocketBase style): everything a service needs, created once per process
 * and passed down. Lifecycle: `openApp` (bootstrap) → serve or run a command → `app.close()`.
 * What the App owns is torn down by `app.lifecycle`, once, in reverse order of start: components
 * added after `openApp` (an event dispatcher, the audit anchors' flush) stop before the databases.
 */
export interface App {
  readonly dataDir: string;
  readonly config: InstanceConfig;
  readonly log: Logger;
  readonly clock: Clock;
  /**
   * The durable event log and its dispatcher: `events.append(db, name, payload)` inside a
   * change's transaction; subscribers register with `events.subscribe`. Started by `serve`.
   */
  readonly events: EventDispatcher;
  readonly audit: AuditPort;
  /**
   * The one guard for outbound requests made for a platform (OIDC discovery, JWKS, tokens; later
   * webhooks and agent tools): refuses non-public addresses unless `outbound.allow` opens them.
   */
  readonly outbound: OutboundGuard;
  /** Seals and opens stored secrets (AES-256-GCM under a data key wrapped by the master key). */
  readonly secrets: SecretBox;
  /** The same keyring with what `keys rotate|export` need (data keys, master key). */
  readonly keyring: Keyring;
  /** Where stored secrets live (declared by domains), for rotation and upgrades. */
  readonly secretSites: readonly SecretSite[];
  /** data/control.db: settings, platforms, operators, domains, the control audit chain. */
  readonly control: Database;
  /** Platform databases (data/platforms/<id>.db), opened on demand. Keys are platform ids. */
  readonly platformDbs: DbPool;
  /** Absolute path of a platform's database file. */
  platformDbPath(platformId: string): string;
  /**
   * The App's components, stopped in reverse by `close()`: the databases first of all (so they
   * close last); whatever needs the databases is added after `openApp` returns.
   */
  readonly lifecycle: Lifecycle;
  /** In-memory state of the domains (throttles, caches, the hash limiter), this App's only. */
  readonly state: AppState;
  /** Stops the App's components, then closes every database (leased handles when their last request ends). */
  close(): Promise<void>;
}

/** What `openApp` needs; the audit port is plugged in by the composition root. */
export interface OpenAppOptions {
  dataDir: string;
  config?: InstanceConfig;
  log?: Logger;
  clock?: Clock;
  audit: (clock: Clock) => AuditPort;
  /** Where sealed secrets are stored (each domain declares its own); see `SecretSite`. */
  secretSites?: readonly SecretSite[];
  /** The master key as text; by default SOULFRA_MASTER_KEY, else the key file. */
  masterKey?: string;
  /** Replaces the outbound guard's resolver or connector (tests); the allow list is the config's. */
  outbound?: Pick<OutboundOptions, 'resolve' | 'connect'>;
}

/** Opens (creating if new) the data dir: control database migrated, platform pool ready. */
export function openApp(opts: OpenAppOptions): App {
  const config = opts.config ?? DEFAULT_CONFIG;
  const clock = opts.clock ?? systemClock;
  const log =
    opts.log ?? createLogger({ level: config.log_level, json: config.log_format === 'json', clock });
  const state = new AppState();
  const platformsDir = join(opts.dataDir, 'platforms');
  try {
    mkdirSync(platformsDir, { recursive: true, mode: 0o700 });
  } catch (e) {
    throw wrapError(`cannot create data dir ${opts.dataDir}`, e);
  }
  const control = openDatabase(join(opts.dataDir, 'control.db'), 'control');
  const secretSites = opts.secretSites ?? [];
  let keyring: Keyring;
  try {
    const r = migrate(control, CONTROL_MIGRATIONS, 'control.db');
    if (r.applied.length) log.debug('control.db migrated', { from: r.from, to: r.to });
    keyring = Keyring.open({
      control,
      dataDir: opts.dataDir,
      clock,
      log,
      keyFile: config.master_key_file,
      envKey: opts.masterKey ?? process.env[MASTER_KEY_ENV],
    });
    // Handles are bound to the keyring, so code holding only a handle seals with its scope.
    bindSecrets(control, keyring, 'control');
    bindState(control, state);
    // Secrets an older soulfra stored in clear are sealed once, right after the migration.
    keyring.upgradeLegacy(control, 'control', 'control', secretSites);
  } catch (e) {
    control.close();
    throw e;
  }
  const platformDbPath = (id: string) => join(platformsDir, `${id}.db`);
  const platformDbs = new DbPool({
    max: config.pool_size,
    // WAL checkpoints run on a worker thread, off the request path; a failure is the operator's.
    onCheckpointError: (r) => log.warn('wal checkpoint failed', { ...r }),
    open: (id) => {
      const db = openDatabase(platformDbPath(id), 'tenant', { create: false });
      try {
        // Platforms made by an older soulfra are brought up to date on first open.
        migrate(db, TENANT_MIGRATIONS, `platform database ${id}`);
        bindSecrets(db, keyring, `platform:${id}`);
        bindState(db, state);
        keyring.upgradeLegacy(db, 'tenant', `platform:${id}`, secretSites);
        events.bind(db, id);
      } catch (e) {
        db.close();
        throw e;
      }
      return db;
    },
  });
  const events = new EventDispatcher({ control, platformDbs, clock, log });
  const lifecycle = new Lifecycle(log);
  lifecycle.adopt('databases', async () => {
    // Delivery halts before the databases close (a no-op when `serve` stopped it already).
    await events.stop();
    await platformDbs.closeAll();
    control.close();
    state.clear();
  });
  return {
    dataDir: opts.dataDir,
    config,
    log,
    clock,
    events,
    audit: opts.audit(clock),
    outbound: createOutboundGuard({
      ...opts.outbound,
      allow: config.outbound?.allow ?? [],
      // What went wrong is for the operator only; callers get one generic error.
      onFailure: (e) =>
        log.warn('outbound request refused or failed', {
          target: e.target,
          reason: e.reason,
          detail: e.detail,
        }),
    }),
    secrets: keyring,
    keyring,
    secretSites,
    control,
    platformDbs,
    platformDbPath,
    lifecycle,
    state,
    async close() {
      const failed = await lifecycle.stop();
      if (failed.length) throw failed[0]!.error;
    },
  };
}
