/**
 * A tracing probe preloaded into the soulfra process by the router benchmark when it runs with
 * `--probe` (`bun --preload bench/probe.ts src/main.ts serve ...`, `BENCH_PROBE=<file>`). Never
 * part of soulfra itself: it only watches.
 *
 * It records, in wall-clock milliseconds (`Date.now()` at the start plus `performance.now()`,
 * the same clock as the open-loop generator's `t0_epoch_ms`):
 *  - `lag`: every gap of more than `BENCH_PROBE_LAG_MS` (default 5 ms) between two ticks of a
 *    2 ms interval timer: the JS thread was busy (or descheduled) for that long; with the heap
 *    size before and after (a drop means a collection ran in the gap);
 *  - `sql`: every bun:sqlite call (statement run/get/all/values, `exec`, `run`, a whole
 *    transaction) that took longer than `BENCH_PROBE_SQL_MS` (default 2 ms), with its SQL (or
 *    the caller's frames for a transaction), and per-kind counts and total time of all calls;
 *  - `commit`: every `COMMIT` (the moment an automatic WAL checkpoint runs) over the SQL
 *    threshold, with the -wal file's size before and after.
 * Knob: `BENCH_PROBE_PRAGMAS` (below) adds pragmas to every database, for experiments.
 * The events are appended to the file every second and at exit, one JSON document a line.
 */

import { dlopen, FFIType, ptr } from 'bun:ffi';
import { heapSize } from 'bun:jsc';
import { Database } from 'bun:sqlite';
import { appendFileSync, statSync } from 'node:fs';

const OUT = process.env.BENCH_PROBE;
const LAG_MS = Number(process.env.BENCH_PROBE_LAG_MS ?? 5);
const SQL_MS = Number(process.env.BENCH_PROBE_SQL_MS ?? 2);
/** Wall-clock ms at sub-ms resolution: `Date.now()` pinned once, then the monotonic clock (Bun's `performance.timeOrigin` differs between processes by up to a second here). */
const EPOCH_BASE = Date.now() - performance.now();
const epoch = () => EPOCH_BASE + performance.now();

type ProbeEvent =
  | { kind: 'start'; at: number; ms: 0; mono_offset_ms: number | null; pid: number }
  | { kind: 'heap'; at: number; ms: 0; heap: number }
  | { kind: 'lag'; at: number; ms: number; heap_before: number; heap_after: number; first?: true }
  | {
      kind: 'sql';
      at: number;
      ms: number;
      what: string;
      sql: string;
      wal_before?: number;
      wal_after?: number;
    };

const events: ProbeEvent[] = [];
/**
 * CLOCK_MONOTONIC minus wall-clock ms: `at + mono_offset_ms` is the time on the kernel's
 * monotonic clock, the one `perf trace -T` prints, to match events with system calls (fsync)
 * traced from outside. (Bun's `process.hrtime` counts from the process's start.) glibc only:
 * elsewhere the offset is null.
 */
const monoOffset = (() => {
  try {
    const libc = dlopen('libc.so.6', {
      clock_gettime: { args: [FFIType.i32, FFIType.ptr], returns: FFIType.i32 },
    });
    const ts = new BigInt64Array(2);
    libc.symbols.clock_gettime(1, ptr(ts)); // CLOCK_MONOTONIC
    return Number(ts[0]!) * 1000 + Number(ts[1]!) / 1e6 - epoch();
  } catch {
    return null;
  }
})();
/** Per call kind: count and total ms. */
const totals = new Map<string, { n: number; ms: number }>();

function count(what: string, ms: number): void {
  const t = totals.get(what);
  if (t) {
    t.n++;
    t.ms += ms;
  } else totals.set(what, { n: 1, ms });
}

function walSize(db: Database): number | undefined {
  try {
    const f = (db as unknown as { filename?: string }).filename;
    return f && f !== ':memory:' ? statSync(`${f}-wal`).size : undefined;
  } catch {
    return undefined;
  }
}

const shortSql = (sql: string) => sql.replace(/\s+/g, ' ').trim().slice(0, 120);

function timed<A extends unknown[], R>(
  what: string,
  sql: () => string,
  db: Database | null,
  fn: (...a: A) => R,
): (...a: A) => R {
  return function (this: unknown, ...a: A): R {
    const wb = db && /^(COMMIT|END)/i.test(sql()) ? walSize(db) : undefined;
    const t0 = performance.now();
    try {
      return fn.apply(this, a);
    } finally {
      const ms = performance.now() - t0;
      count(what, ms);
      if (ms > SQL_MS) {
        const ev: ProbeEvent = { kind: 'sql', at: epoch() - ms, ms, what, sql: shortSql(sql()) };
        if (wb !== undefined && db) {
          ev.wal_before = wb;
          ev.wal_after = walSize(db);
        }
        events.push(ev);
      }
    }
  };
}

const WRAPPED = Symbol('probe');
type Stmt = Record<string, unknown> & { [WRAPPED]?: true };

function wrapStatement(db: Database, sql: string, st: Stmt): Stmt {
  if (st[WRAPPED]) return st;
  st[WRAPPED] = true;
  for (const m of ['run', 'get', 'all', 'values']) {
    const f = st[m];
    if (typeof f === 'function') {
      st[m] = timed(`stmt.${m}`, () => sql, db, f.bind(st) as (...a: unknown[]) => unknown);
    }
  }
  return st;
}

const proto = Database.prototype as unknown as Record<string, (...a: unknown[]) => unknown>;
for (const m of ['query', 'prepare']) {
  const orig = proto[m]!;
  proto[m] = function (this: Database, ...a: unknown[]) {
    return wrapStatement(this, String(a[0]), orig.apply(this, a) as Stmt);
  };
}
/**
 * An experiment knob: `BENCH_PROBE_PRAGMAS="wal_autocheckpoint = 0; ..."` runs these after the
 * house pragmas (`db/open.ts` sets `temp_store` last) on every database soulfra opens.
 */
const EXTRA_PRAGMAS = (process.env.BENCH_PROBE_PRAGMAS ?? '')
  .split(';')
  .map((x) => x.trim())
  .filter(Boolean);
for (const m of ['run', 'exec']) {
  const orig = proto[m]!;
  proto[m] = function (this: Database, ...a: unknown[]) {
    const r = timed(`db.${m}`, () => String(a[0]), this, orig.bind(this))(...a);
    if (EXTRA_PRAGMAS.length && /^PRAGMA temp_store/i.test(String(a[0]))) {
      for (const p of EXTRA_PRAGMAS) orig.call(this, `PRAGMA ${p}`);
    }
    return r;
  };
}
{
  const orig = proto.transaction!;
  proto.transaction = function (this: Database, ...a: unknown[]) {
    const tx = orig.apply(this, a) as ((...b: unknown[]) => unknown) & Record<string, unknown>;
    const where = () =>
      (new Error().stack ?? '')
        .split('\n')
        .slice(3, 7)
        .map((l) =>
          l
            .trim()
            .replace(/^at /, '')
            .replace(/\(.*\/src\//, '(src/'),
        )
        .join(' < ');
    const wrapped = timed('transaction', where, null, tx) as typeof tx;
    for (const k of ['deferred', 'immediate', 'exclusive']) {
      const v = tx[k];
      if (typeof v === 'function') {
        wrapped[k] = timed(`transaction.${k}`, where, null, v as (...b: unknown[]) => unknown);
      }
    }
    void this;
    return wrapped;
  };
}

// The event-loop lag sampler.
events.push({ kind: 'start', at: epoch(), ms: 0, mono_offset_ms: monoOffset, pid: process.pid });
let last = performance.now();
let lastHeap = heapSize();
let first = true;
setInterval(() => {
  const now = performance.now();
  const h = heapSize();
  const gap = now - last;
  if (gap > LAG_MS) {
    events.push({
      kind: 'lag',
      at: EPOCH_BASE + last,
      ms: gap,
      heap_before: lastHeap,
      heap_after: h,
      // The first tick waits for the entry point's top level (the server's start-up).
      ...(first ? { first: true as const } : {}),
    });
  }
  first = false;
  last = now;
  lastHeap = h;
}, 2).unref();

function flushEvents(): void {
  if (!OUT) return;
  const lines = events.splice(0).map((e) => JSON.stringify(e));
  if (lines.length) appendFileSync(OUT, `${lines.join('\n')}\n`);
}
setInterval(() => {
  events.push({ kind: 'heap', at: epoch(), ms: 0, heap: heapSize() });
  flushEvents();
}, 1_000).unref();
process.on('exit', () => {
  flushEvents();
  if (OUT) {
    const t = Object.fromEntries(
      [...totals].map(([k, v]) => [k, { n: v.n, ms: Math.round(v.ms * 1000) / 1000 }]),
    );
    appendFileSync(OUT, `${JSON.stringify({ kind: 'totals', at: epoch(), totals: t })}\n`);
  }
});
