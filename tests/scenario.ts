import { Database } from 'bun:sqlite';
import { expect, test } from 'bun:test';
import { join } from 'node:path';
import type { EventName } from '../src/app/index.ts';
import type { InProcessServer } from './inproc.ts';

/**
 * Every domain event name. A `Record` over `EventName`, so a new event fails the typecheck here
 * until it is listed (and so considered by scenarios).
 */
export const EVENT_NAMES: Record<EventName, true> = {
  'platform.created': true,
  'platform.status_changed': true,
  'platform.archived': true,
  'platform.unarchived': true,
  'platform.updated': true,
  'platform.deleted': true,
  'ai.budget_alert': true,
  'usage.recorded': true,
};

/** Reads a platform's database: through the pool, or an archived platform's file directly. */
function withPlatformDb<T>(
  s: InProcessServer,
  p: { id: string; status: string; db_file: string },
  f: (db: Database) => T,
): T {
  if (p.status === 'archived') {
    const db = new Database(join(s.app.dataDir, p.db_file), { readonly: true });
    try {
      return f(db);
    } finally {
      db.close();
    }
  }
  const lease = s.app.platformDbs.acquire(p.id);
  try {
    return f(lease.db);
  } finally {
    lease.release();
  }
}

const lastEventId = (db: Database): string =>
  db.query<{ id: string | null }, []>('SELECT max(id) AS id FROM events').get()?.id ?? '';
const eventsAfter = (db: Database, id: string): string[] =>
  db
    .query<{ name: string }, [string]>('SELECT name FROM events WHERE id > ? ORDER BY id')
    .all(id)
    .map((r) => r.name);

/**
 * The domain events appended (durably, in the change's own transaction) from now on: `name` for
 * control.db's log, then `slug:name` for each platform's log (platforms by slug, each in order).
 */
export function captureEvents(s: InProcessServer): { names(): string[] } {
  const c0 = lastEventId(s.app.control);
  const p0 = new Map(s.tenancy.list().map((p) => [p.slug, withPlatformDb(s, p, lastEventId)]));
  return {
    names() {
      const names = eventsAfter(s.app.control, c0);
      for (const p of [...s.tenancy.list()].sort((a, b) => a.slug.localeCompare(b.slug)))
        for (const n of withPlatformDb(s, p, (db) => eventsAfter(db, p0.get(p.slug) ?? '')))
          names.push(`${p.slug}:${n}`);
      return names;
    },
  };
}

/**
 * Where every audit chain stands now; `since()` gives the actions appended after, as
 * `action` for the control chain and `slug:action` for a platform's chain (control first, then
 * platforms by slug, each in chain order).
 */
export function auditMark(s: InProcessServer): { since(): string[] } {
  const controlSeq = (): number =>
    s.app.control.query<{ n: number | null }, []>('SELECT max(seq) AS n FROM audit_log').get()?.n ?? 0;
  const withDb = <T>(p: { id: string; status: string; db_file: string }, f: (db: Database) => T): T =>
    withPlatformDb(s, p, f);
  const platformSeqs = () => {
    const out = new Map<string, number>();
    for (const p of s.tenancy.list())
      out.set(
        p.slug,
        withDb(
          p,
          (db) => db.query<{ n: number | null }, []>('SELECT max(seq) AS n FROM audit_log').get()?.n ?? 0,
        ),
      );
    return out;
  };
  const c0 = controlSeq();
  const p0 = platformSeqs();
  return {
    since() {
      const actions = s.app.control
        .query<{ action: string }, [number]>('SELECT action FROM audit_log WHERE seq > ? ORDER BY seq')
        .all(c0)
        .map((r) => r.action);
      for (const p of [...s.tenancy.list()].sort((a, b) => a.slug.localeCompare(b.slug))) {
        const from = p0.get(p.slug) ?? 0;
        const rows = withDb(p, (db) =>
          db
            .query<{ action: string }, [number]>('SELECT action FROM audit_log WHERE seq > ? ORDER BY seq')
            .all(from),
        );
        for (const r of rows) actions.push(`${p.slug}:${r.action}`);
      }
      return actions;
    },
  };
}

/** One API scenario, in the manner of PocketBase's `tests.ApiScenario`. */
export interface ApiScenario {
  name: string;
  /** Default GET. */
  method?: string;
  /** The Host header; default the operator host `localhost`. */
  host?: string;
  /** Path and query. */
  url: string;
  /** Headers, or a function of the server (tokens made in `before`). */
  headers?: Record<string, string> | ((s: InProcessServer) => Record<string, string>);
  /** An object is sent as JSON (content-type set); a string as is. */
  body?: unknown;
  expectedStatus: number;
  /**
   * Substrings the body must contain, or a check of the parsed answer (JSON when it parses,
   * otherwise the text) that throws (an `expect`) or returns false when it fails.
   */
  expectedContent?: string[] | ((body: unknown, res: Response, s: InProcessServer) => unknown);
  /** Substrings the body must not contain. */
  notExpectedContent?: string[];
  /**
   * The domain events published while the request ran, in order (default: none). Checked
   * exactly, so an event no scenario expects fails it.
   */
  expectedEvents?: string[];
  /**
   * The audit actions appended while the request ran (default: none), as given by `auditMark`:
   * `action` on the control chain, `slug:action` on a platform's.
   */
  expectedAudit?: string[];
  /** Runs before the request, before the event and audit marks are taken. */
  before?(s: InProcessServer): void | Promise<void>;
  /** Runs after the checks, with the response. */
  after?(s: InProcessServer, res: Response, body: unknown): void | Promise<void>;
}

/** Sends one scenario's request and checks everything it states. */
export async function runScenario(s: InProcessServer, sc: ApiScenario): Promise<void> {
  await sc.before?.(s);
  const headers = new Headers(typeof sc.headers === 'function' ? sc.headers(s) : sc.headers);
  let body: BodyInit | undefined;
  if (typeof sc.body === 'string') body = sc.body;
  else if (sc.body !== undefined) {
    body = JSON.stringify(sc.body);
    if (!headers.has('content-type')) headers.set('content-type', 'application/json');
  }
  const events = captureEvents(s);
  const audit = auditMark(s);
  const res = await s.request(sc.host ?? 'localhost', sc.url, { method: sc.method ?? 'GET', headers, body });
  const text = await res.text();
  let parsed: unknown = text;
  try {
    parsed = JSON.parse(text);
  } catch {}
  const label = `${sc.method ?? 'GET'} ${sc.host ?? 'localhost'}${sc.url}`;
  expect({ request: label, status: res.status, body: res.status === sc.expectedStatus ? '' : text }).toEqual({
    request: label,
    status: sc.expectedStatus,
    body: '',
  });
  if (Array.isArray(sc.expectedContent)) for (const part of sc.expectedContent) expect(text).toContain(part);
  else if (sc.expectedContent) {
    const ok = await sc.expectedContent(parsed, res, s);
    if (ok === false) throw new Error(`${sc.name}: expectedContent returned false for ${text.slice(0, 500)}`);
  }
  for (const part of sc.notExpectedContent ?? []) expect(text).not.toContain(part);
  expect({ events: events.names() }).toEqual({ events: sc.expectedEvents ?? [] });
  expect({ audit: audit.since() }).toEqual({ audit: sc.expectedAudit ?? [] });
  await sc.after?.(s, res, parsed);
}

/**
 * Registers one `test()` per scenario, in order, against the server `get()` returns (built in a
 * `beforeAll`). Scenarios of one table share that server, so later rows see earlier rows' writes.
 */
export function scenarios(get: () => InProcessServer, table: ApiScenario[]): void {
  for (const sc of table) test(sc.name, () => runScenario(get(), sc));
}

/** The `error.code` of a contract error body. */
export function errorCode(body: unknown): string | undefined {
  return (body as { error?: { code?: string } }).error?.code;
}
