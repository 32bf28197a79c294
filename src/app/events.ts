import type { Database } from 'bun:sqlite';
import { appendFileSync } from 'node:fs';
import { incrementBase32, ulid } from 'ulid';
import type { DbPool } from '../db/index.ts';
import { AppError } from '../shared/errors.ts';
import type { Clock } from '../shared/time.ts';
import {
  advanceCursor,
  cursorOf,
  type EventRow,
  eventExists,
  eventsAfter,
  insertEvent,
  lastEventId,
  livePlatformIds,
  pruneEvents,
} from './events.repository.ts';
import type { Logger } from './logger.ts';

/** What one flush of the meter wrote for a platform: one event per usage transaction. */
export interface UsageRecordedV1 {
  platformId: string;
  /** The `usage_events` rows this transaction wrote, by row id (inclusive): the detail, for analytics. */
  firstRowId: number;
  lastRowId: number;
  records: number;
  /** Oldest and newest call in the batch (epoch ms). */
  from: number;
  to: number;
  /** Per currency: what billing needs without reading the rows. Money in integer minor units. */
  totals: {
    currency: string;
    calls: number;
    errors: number;
    tokensIn: number;
    tokensOut: number;
    costMinor: number;
    markupMinor: number;
  }[];
}

/**
 * The domain events and their payloads. Domains append them in the transaction of the change
 * they report (`app.events.append`); subscribers (webhooks, analytics, the billing ledger,
 * later replication) get them from the dispatcher. Add an event here, and its payload version
 * in `EVENT_VERSIONS`, when a domain starts appending it. A payload change that is not purely
 * additive bumps the version; subscribers read `version` of what they get (old events keep
 * theirs).
 */
export interface DomainEvents {
  'platform.created': { platformId: string; slug: string; template: string; actor: string };
  'platform.status_changed': { platformId: string; slug: string; from: string; to: string; actor: string };
  'platform.archived': { platformId: string; slug: string; file: string; actor: string };
  'platform.unarchived': { platformId: string; slug: string; actor: string };
  /** The blueprint changed: by the operator or by the platform's own admin; `paths` are the settings changed. */
  'platform.updated': {
    platformId: string;
    slug: string;
    by: 'operator' | 'platform';
    actor: string;
    paths: string[];
  };
  /** An archived platform's file is gone; its slug stays reserved until `slugFreeAt` (epoch ms). */
  'platform.deleted': { platformId: string; slug: string; actor: string; slugFreeAt: number };
  'ai.budget_alert': {
    platformId: string;
    budgetId: string;
    scope: string;
    subject: string;
    percent: number;
  };
  'usage.recorded': UsageRecordedV1;
}

/** An event's name. */
export type EventName = keyof DomainEvents;

/** The payload schema version each event is appended with. */
export const EVENT_VERSIONS: { readonly [K in EventName]: number } = {
  'platform.created': 1,
  'platform.status_changed': 1,
  'platform.archived': 1,
  'platform.unarchived': 1,
  'platform.updated': 1,
  'platform.deleted': 1,
  'ai.budget_alert': 1,
  'usage.recorded': 1,
};

/** The database an event was appended in: control.db, or a platform's (its id). */
export type EventSource = 'control' | (string & {});

/** One event as a subscriber gets it. `id` is unique per source: keep it to stay idempotent. */
export interface EventOf<K extends EventName> {
  id: string;
  name: K;
  version: number;
  payload: DomainEvents[K];
  source: EventSource;
  /** When it was appended (epoch ms, App clock). */
  at: number;
}

/** Any event, narrowed by `name`. */
export type AnyEvent = { [K in EventName]: EventOf<K> }[EventName];

/**
 * A subscriber: called once or more per event (at least once: after a crash, or when its
 * cursor could not be saved, it sees an event again), in id order per database. A throw or a
 * rejection is retried later with backoff, from that event.
 */
export type EventHandler = (e: AnyEvent) => void | Promise<void>;

const ID_PREFIX = 'evt_';

/**
 * Appends an event to `db`'s log. Must run inside the transaction of the change it reports
 * (throws `events.outside_transaction` otherwise), so both commit or neither does. Returns the
 * event id: a ULID strictly greater than every id already in this database (the delivery order),
 * even when the clock stands still or steps back. Prefer `app.events.append`, which also wakes
 * the dispatcher after the commit.
 */
export function appendEvent<K extends EventName>(
  db: Database,
  name: K,
  payload: DomainEvents[K],
  at: number,
): string {
  if (!db.inTransaction) {
    throw new AppError(
      'events.outside_transaction',
      `event '${name}' must be appended inside the transaction of the change it reports`,
      500,
    );
  }
  const last = lastEventId(db);
  const candidate = ulid(at);
  const prev = last?.slice(ID_PREFIX.length).toUpperCase();
  const raw = prev !== undefined && candidate <= prev ? incrementBase32(prev) : candidate;
  const id = `${ID_PREFIX}${raw.toLowerCase()}`;
  insertEvent(db, {
    id,
    name,
    version: EVENT_VERSIONS[name],
    payload: JSON.stringify(payload),
    created_at: at,
  });
  return id;
}

/** Environment variables read once by `EventDispatcher.start()`; for tests of crash recovery only. */
export const TEST_EXIT_AFTER_COMMIT_ENV = 'SOULFRA_TEST_EXIT_AFTER_COMMIT';
/** A file to which a test-only subscriber (`test.recorder`) appends one JSON line per event. */
export const TEST_EVENT_FILE_ENV = 'SOULFRA_TEST_EVENT_FILE';

/** Which platform databases the dispatcher covers; the tenancy service plugs in its registry. */
export interface PlatformSource {
  /** Every platform whose database is in place (not archived). */
  list(): string[];
  /** Whether the platform's database may be opened now (false from the start of an archive). */
  live(platformId: string): boolean;
}

/** Dispatcher tuning; the defaults are for production. */
export interface DispatcherOptions {
  control: Database;
  platformDbs: DbPool;
  clock: Clock;
  log: Logger;
  /** How often control.db is looked at for events appended without a kick (ms). Default 1,000. */
  pollMs?: number;
  /** First retry delay of a failing subscriber (ms), doubling per failure. Default 1,000. */
  retryBaseMs?: number;
  /** Longest retry delay (ms). Default 60,000. */
  retryMaxMs?: number;
  /** Events read per query. Default 256. */
  batch?: number;
  /** Delivered events older than this are pruned (days). Default 7. */
  retentionDays?: number;
  /** Pruning runs at most this often per database (ms). Default one hour. */
  pruneEveryMs?: number;
  /** The environment the test hooks are read from (default `process.env`). */
  env?: Record<string, string | undefined>;
}

interface Sub {
  id: string;
  names: ReadonlySet<EventName> | null;
  handler: EventHandler;
}

interface Retry {
  failures: number;
  timer: ReturnType<typeof setTimeout> | null;
}

const SUBSCRIBER_ID = /^[a-z0-9][a-z0-9._-]{0,63}$/;

/**
 * Delivers the event logs of control.db and of every platform database to subscribers, each at
 * least once and in id order per database and subscriber. Each subscriber has a cursor per
 * database (`event_cursors`), moved after its handler returns; a failing subscriber is retried
 * with backoff from the event that failed, and other subscribers' cursors go on.
 *
 * Wake-ups: `append` kicks the database's pass after its commit; a poll every `pollMs` looks at
 * control.db; `start()` (and a new subscriber) sweeps every platform once: what was appended
 * before a crash, or by a CLI command while no server ran. Platform
 * handles are leased from the pool only for synchronous reads and cursor writes, so idle
 * platforms are not kept open and an archive never waits for delivery.
 */
export class EventDispatcher {
  readonly #control: Database;
  readonly #pool: DbPool;
  readonly #clock: Clock;
  readonly #log: Logger;
  readonly #pollMs: number;
  readonly #retryBaseMs: number;
  readonly #retryMaxMs: number;
  readonly #batch: number;
  readonly #retentionMs: number;
  readonly #pruneEveryMs: number;
  readonly #env: Record<string, string | undefined>;
  readonly #subs = new Map<string, Sub>();
  /** Pool handles → platform id, bound when the pool opens them. */
  readonly #sources = new WeakMap<Database, string>();
  /** Platforms seen (bound, swept or kicked), polled while the pool has them open. */
  readonly #known = new Set<string>();
  readonly #running = new Map<EventSource, Promise<void>>();
  readonly #again = new Set<EventSource>();
  readonly #retries = new Map<string, Retry>();
  readonly #pruned = new Map<EventSource, number>();
  #platforms: PlatformSource;
  #timer: ReturnType<typeof setInterval> | null = null;
  #state: 'new' | 'started' | 'stopped' = 'new';
  #exitAfter: string | null = null;
  #sweep: Promise<void> | null = null;
  #delivered = 0;
  #failed = 0;

  constructor(opts: DispatcherOptions) {
    this.#control = opts.control;
    this.#pool = opts.platformDbs;
    this.#clock = opts.clock;
    this.#log = opts.log;
    this.#pollMs = opts.pollMs ?? 1_000;
    this.#retryBaseMs = opts.retryBaseMs ?? 1_000;
    this.#retryMaxMs = opts.retryMaxMs ?? 60_000;
    this.#batch = opts.batch ?? 256;
    this.#retentionMs = (opts.retentionDays ?? 7) * 86_400_000;
    this.#pruneEveryMs = opts.pruneEveryMs ?? 3_600_000;
    this.#env = opts.env ?? process.env;
    const control = opts.control;
    this.#platforms = {
      list: () => livePlatformIds(control),
      live: () => true,
    };
  }

  /** Replaces where the platform list comes from (the tenancy service's registry). */
  usePlatforms(p: PlatformSource): void {
    this.#platforms = p;
  }

  /** Tells the dispatcher which platform a pool handle belongs to (the App's pool does it on open). */
  bind(db: Database, platformId: string): void {
    this.#sources.set(db, platformId);
    this.#known.add(platformId);
  }

  /**
   * Registers a subscriber under a stable id (its cursor's key: keep it across versions). A new
   * subscriber starts at the oldest event still kept. `names` limits what it is handed (its
   * cursor passes over the rest). Returns a function that unregisters it.
   */
  subscribe(id: string, handler: EventHandler, opts: { names?: readonly EventName[] } = {}): () => void {
    if (!SUBSCRIBER_ID.test(id))
      throw new AppError(
        'events.subscriber_invalid',
        `subscriber id '${id}' must match ${SUBSCRIBER_ID}`,
        500,
      );
    if (this.#subs.has(id))
      throw new AppError('events.subscriber_taken', `subscriber '${id}' is already registered`, 500);
    const sub: Sub = { id, names: opts.names ? new Set(opts.names) : null, handler };
    this.#subs.set(id, sub);
    if (this.#state === 'started') void this.#sweepAll();
    return () => {
      if (this.#subs.get(id) === sub) this.#subs.delete(id);
    };
  }

  /**
   * Appends an event in `db`'s open transaction (see `appendEvent`) and wakes delivery once the
   * transaction has committed (a microtask: bun:sqlite transactions are synchronous, so it runs
   * after COMMIT; a rolled-back append wakes a pass that finds nothing).
   */
  append<K extends EventName>(db: Database, name: K, payload: DomainEvents[K]): string {
    const id = appendEvent(db, name, payload, this.#clock.now());
    const source = db === this.#control ? 'control' : this.#sources.get(db);
    if (this.#exitAfter === name) {
      queueMicrotask(() => {
        // The deterministic kill point of the crash tests: committed, not yet delivered.
        if (eventExists(db, id)) {
          this.#log.warn('test hook: exiting right after commit', { event: name, id });
          process.kill(process.pid, 'SIGKILL');
        }
      });
    }
    if (source !== undefined) queueMicrotask(() => this.kick(source));
    return id;
  }

  /** Asks for a delivery pass over one database (or control.db and every open platform database). */
  kick(source?: EventSource): void {
    if (this.#state !== 'started') return;
    if (source === undefined) {
      this.#schedule('control');
      for (const id of this.#known) if (this.#pool.has(id)) this.#schedule(id);
      return;
    }
    if (source !== 'control') this.#known.add(source);
    this.#schedule(source);
  }

  /**
   * Starts delivery: reads the test hooks from the environment, then delivers what control.db
   * and every platform database hold, and polls from then on.
   */
  start(): void {
    if (this.#state !== 'new') return;
    this.#state = 'started';
    this.#exitAfter = this.#env[TEST_EXIT_AFTER_COMMIT_ENV] || null;
    const file = this.#env[TEST_EVENT_FILE_ENV];
    if (file) {
      this.subscribe('test.recorder', (e) => {
        appendFileSync(file, `${JSON.stringify({ id: e.id, name: e.name, source: e.source })}\n`);
      });
    }
    // The poll looks at control.db only: appends on pool handles kick their own pass, and the
    // sweep below covers what an earlier process left. Touching every open platform each
    // second would also reorder the pool's LRU.
    this.#timer = setInterval(() => this.kick('control'), this.#pollMs);
    this.#timer.unref?.();
    void this.#sweepAll();
  }

  /**
   * Stops delivery: no pass starts after this; a pass in flight halts after the handler it is
   * in and saves its cursor. What is left is delivered after the next start. Idempotent.
   */
  async stop(): Promise<void> {
    if (this.#state === 'stopped') return;
    this.#state = 'stopped';
    if (this.#timer) clearInterval(this.#timer);
    for (const r of this.#retries.values()) if (r.timer) clearTimeout(r.timer);
    this.#retries.clear();
    await this.#sweep;
    while (this.#running.size) await Promise.all([...this.#running.values()]);
  }

  /** Resolves once no pass is running or asked for (tests, and `stop`). */
  async idle(): Promise<void> {
    while (this.#running.size || this.#sweep) {
      await this.#sweep;
      await Promise.all([...this.#running.values()]);
    }
  }

  /** Counters for /metrics and tests. */
  stats(): { subscribers: number; delivered: number; failed: number; retrying: number } {
    let retrying = 0;
    for (const r of this.#retries.values()) if (r.timer) retrying++;
    return { subscribers: this.#subs.size, delivered: this.#delivered, failed: this.#failed, retrying };
  }

  #sweepAll(): Promise<void> {
    if (this.#sweep) return this.#sweep;
    this.#sweep = (async () => {
      await this.#run('control');
      let ids: string[] = [];
      try {
        ids = this.#platforms.list();
      } catch (e) {
        this.#log.error('events: cannot list platforms', { err: String(e) });
      }
      for (const id of ids) {
        if (this.#state !== 'started') break;
        this.#known.add(id);
        await this.#run(id);
      }
    })().finally(() => {
      this.#sweep = null;
    });
    return this.#sweep;
  }

  /** Runs a pass now, or after the one in flight (which then runs once more). */
  #run(source: EventSource): Promise<void> {
    const cur = this.#running.get(source);
    if (cur) {
      this.#again.add(source);
      return cur;
    }
    const p = this.#pass(source)
      .catch((e) => this.#log.warn('events: delivery pass failed', { source, err: String(e) }))
      .finally(() => {
        this.#running.delete(source);
        if (this.#again.delete(source) && this.#state === 'started') void this.#run(source);
      });
    this.#running.set(source, p);
    return p;
  }

  #schedule(source: EventSource): void {
    void this.#run(source);
  }

  /**
   * Runs `fn` on the source's database, synchronously: the platform's handle is leased and
   * released around it. Undefined when the platform is not live (archived or archiving).
   */
  #withDb<T>(source: EventSource, fn: (db: Database) => T): T | undefined {
    if (source === 'control') return fn(this.#control);
    if (!this.#platforms.live(source)) {
      this.#known.delete(source);
      return undefined;
    }
    const lease = this.#pool.acquire(source);
    try {
      return fn(lease.db);
    } finally {
      lease.release();
    }
  }

  async #pass(source: EventSource): Promise<void> {
    // Yield first: the request that appended answers before delivery begins.
    await new Promise<void>((r) => setImmediate(r));
    for (const sub of [...this.#subs.values()]) {
      if (this.#state !== 'started') return;
      const rk = `${source}\u0000${sub.id}`;
      if (this.#retries.get(rk)?.timer) continue;
      await this.#deliver(source, sub, rk);
    }
    if (this.#state === 'started') this.#prune(source);
  }

  async #deliver(source: EventSource, sub: Sub, rk: string): Promise<void> {
    for (;;) {
      const read = this.#withDb(source, (db) => {
        const after = cursorOf(db, sub.id);
        return { after, rows: eventsAfter(db, after, this.#batch) };
      });
      if (!read || read.rows.length === 0) return;
      let done = read.after;
      let failed = false;
      for (const row of read.rows) {
        if (this.#state !== 'started') break;
        if (sub.names && !sub.names.has(row.name as EventName)) {
          done = row.id;
          continue;
        }
        try {
          await sub.handler(toEvent(row, source));
          this.#delivered++;
          done = row.id;
          this.#retries.delete(rk);
        } catch (e) {
          failed = true;
          this.#failed++;
          this.#retryLater(source, sub.id, rk, row, e);
          break;
        }
      }
      if (done !== read.after) {
        const last = done;
        this.#withDb(source, (db) => advanceCursor(db, sub.id, last, this.#clock.now()));
      }
      if (failed || this.#state !== 'started' || read.rows.length < this.#batch) return;
    }
  }

  #retryLater(source: EventSource, subId: string, rk: string, row: EventRow, err: unknown): void {
    const r = this.#retries.get(rk) ?? { failures: 0, timer: null };
    r.failures++;
    const delay = Math.min(this.#retryBaseMs * 2 ** (r.failures - 1), this.#retryMaxMs);
    this.#log.warn('event subscriber failed; retrying', {
      subscriber: subId,
      source,
      event: row.id,
      name: row.name,
      failures: r.failures,
      retry_ms: delay,
      err: String(err),
    });
    r.timer = setTimeout(() => {
      r.timer = null;
      this.kick(source);
    }, delay);
    r.timer.unref?.();
    this.#retries.set(rk, r);
  }

  #prune(source: EventSource): void {
    const now = this.#clock.now();
    const last = this.#pruned.get(source);
    if (last !== undefined && now - last < this.#pruneEveryMs) return;
    this.#pruned.set(source, now);
    this.#withDb(source, (db) => {
      // Only what every registered subscriber has passed; with none registered, everything.
      let upTo = '\uffff';
      for (const s of this.#subs.values()) {
        const c = cursorOf(db, s.id);
        if (c < upTo) upTo = c;
      }
      const n = pruneEvents(db, now - this.#retentionMs, upTo);
      if (n) this.#log.debug('events pruned', { source, count: n });
    });
  }
}

function toEvent(row: EventRow, source: EventSource): AnyEvent {
  return {
    id: row.id,
    name: row.name as EventName,
    version: row.version,
    payload: JSON.parse(row.payload),
    source,
    at: row.created_at,
  } as AnyEvent;
}
