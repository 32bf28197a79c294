/**
 * WAL checkpoints off the JS thread.
 *
 * SQLite's automatic checkpoint runs inside the `COMMIT` that pushes the -wal file past
 * `wal_autocheckpoint` pages (1,000 by default): that commit copies the pages into the database
 * file and, with `synchronous = NORMAL`, calls fsync twice (the -wal, then the database). On
 * the request path that is the meter's usage flush, so every request in flight waited for two
 * fsyncs; on a busy or shared disk one fsync can take hundreds of milliseconds
 * (docs/performance.md, "The router's stall").
 *
 * Here a worker thread, with connections of its own, runs `PRAGMA wal_checkpoint(PASSIVE)` on
 * every watched file whose -wal holds `minFrames` frames not yet copied (read from the -shm
 * wal-index, no connection needed), looking each `everyMs`: a PASSIVE checkpoint never blocks readers or writers, and
 * its fsyncs wait on the worker's thread only. The main connections keep an automatic
 * checkpoint as a backstop at `BACKSTOP_PAGES` (if the worker falls behind, the -wal stays
 * bounded), far above what one interval writes.
 *
 * The worker opens a file, checkpoints it and closes it again within one round (a round is
 * synchronous in the worker), so between rounds it holds nothing. `forget(path)` resolves once
 * the worker has dropped the file: a caller that closes its last handle and then moves the
 * file (archive) must await it, so that its close is the last one and removes the -wal.
 *
 * The worker's source is inline (a Blob URL), so the single-file executable needs no second
 * entry point; it imports only `bun:sqlite`.
 */
import type { Database } from 'bun:sqlite';

/** The automatic checkpoint left on the main connections as a backstop (pages of the -wal). */
export const BACKSTOP_PAGES = 10_000;

/**
 * A timed round checkpoints a file once its -wal holds this many frames not yet copied
 * (SQLite's own automatic threshold). Each completed checkpoint makes the next commit on the
 * main connection restart the -wal, and that commit syncs the new -wal header (one small fsync
 * on the JS thread per checkpoint, where there used to be the copy and two fsyncs), so rarer is
 * better.
 */
export const MIN_FRAMES = 1_000;

/** What one checkpoint of one file did (SQLite's `wal_checkpoint` row). */
export interface CheckpointResult {
  path: string;
  /** 1 when a reader or writer kept it from finishing (PASSIVE never waits). */
  busy: number;
  /** Frames in the -wal, and how many of them are now in the database file. */
  log: number;
  checkpointed: number;
  ms: number;
  error?: string;
}

const WORKER_SOURCE = `
import { Database } from 'bun:sqlite';
import { closeSync, openSync, readSync } from 'node:fs';
const paths = new Set();
let minFrames = 0;
// Frames in the -wal not yet copied into the database file, from the wal-index (the -shm file;
// https://sqlite.org/walformat.html: mxFrame at byte 16 of the header, nBackfill at byte 96,
// native byte order); null when it cannot be read.
const shm = new Uint8Array(100);
function pendingFrames(path) {
  let fd;
  try {
    fd = openSync(path + '-shm', 'r');
    if (readSync(fd, shm, 0, 100, 0) < 100) return null;
    const u32 = new Uint32Array(shm.buffer, 0, 25);
    return u32[4] - u32[24];
  } catch {
    return null;
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}
function checkpointAll(force) {
  const out = [];
  for (const path of paths) {
    if (!force) {
      const n = pendingFrames(path);
      if (n !== null && n < minFrames) continue;
    }
    const t0 = performance.now();
    let db;
    try {
      db = new Database(path, { readwrite: true, create: false });
      const r = db.query('PRAGMA wal_checkpoint(PASSIVE)').get();
      out.push({ path, busy: r.busy, log: r.log, checkpointed: r.checkpointed, ms: performance.now() - t0 });
    } catch (e) {
      // Gone (archived, deleted): not retried every round.
      if (!db) paths.delete(path);
      out.push({ path, busy: 1, log: -1, checkpointed: -1, ms: performance.now() - t0, error: String(e && e.message || e) });
    } finally {
      try { db && db.close(); } catch {}
    }
  }
  return out;
}
let timer = null;
self.onmessage = (ev) => {
  const m = ev.data;
  if (m.type === 'start') {
    minFrames = m.minFrames;
    timer = setInterval(() => {
      const r = checkpointAll(false);
      const bad = r.filter((x) => x.error);
      if (bad.length) postMessage({ type: 'errors', results: bad });
      // Rounds that had frames to look at are reported (at most one message an interval).
      const busy = r.filter((x) => !x.error && x.log > 0);
      if (busy.length) postMessage({ type: 'round', results: busy });
    }, m.everyMs);
  } else if (m.type === 'add') paths.add(m.path);
  else if (m.type === 'forget') { paths.delete(m.path); postMessage({ type: 'ack', id: m.id }); }
  else if (m.type === 'now') postMessage({ type: 'ack', id: m.id, results: checkpointAll(true) });
  else if (m.type === 'pending') postMessage({ type: 'ack', id: m.id, pending: [...paths].map((p) => [p, pendingFrames(p)]) });
  else if (m.type === 'stop') { if (timer) clearInterval(timer); paths.clear(); postMessage({ type: 'ack', id: m.id }); }
};
`;

type Reply =
  | { type: 'ack'; id: number; results?: CheckpointResult[]; pending?: [string, number | null][] }
  | { type: 'errors' | 'round'; results: CheckpointResult[] };

/** One worker thread checkpointing the watched files' -wal every `everyMs`. */
export class WalCheckpointer {
  readonly #everyMs: number;
  readonly #minFrames: number;
  readonly #onError: (r: CheckpointResult) => void;
  #worker: Worker | null = null;
  #url: string | null = null;
  #nextId = 1;
  readonly #waiting = new Map<number, (r: Reply & { type: 'ack' }) => void>();
  readonly #paths = new Set<string>();
  #stopped = false;
  /** Timed rounds that found frames in some -wal, and the last such round's results. */
  readonly stats = { rounds: 0, last: [] as CheckpointResult[] };

  constructor(opts: { everyMs?: number; minFrames?: number; onError?: (r: CheckpointResult) => void } = {}) {
    this.#everyMs = opts.everyMs ?? 1_000;
    this.#minFrames = opts.minFrames ?? MIN_FRAMES;
    this.#onError = opts.onError ?? (() => {});
  }

  /**
   * Watches the file of `db` (an on-disk WAL database) and turns its automatic checkpoint into
   * the backstop. Returns false (and changes nothing) for in-memory or temporary databases, or
   * once stopped.
   */
  watch(db: Database): boolean {
    const path = (db as unknown as { filename?: string }).filename ?? '';
    if (this.#stopped || path === '' || path === ':memory:') return false;
    const mode = db.query<{ journal_mode: string }, []>('PRAGMA journal_mode').get()?.journal_mode;
    if (mode?.toLowerCase() !== 'wal') return false;
    db.exec(`PRAGMA wal_autocheckpoint = ${BACKSTOP_PAGES}`);
    this.#ensure().postMessage({ type: 'add', path });
    this.#paths.add(path);
    return true;
  }

  /** Stops watching `path`; resolves when the worker holds no connection to it. */
  forget(path: string): Promise<void> {
    if (!this.#paths.delete(path) || !this.#worker) return Promise.resolve();
    return this.#ask({ type: 'forget', path }).then(() => {});
  }

  /** One round now, whatever the -wal holds (tests and diagnostics): what each file's checkpoint did. */
  async checkpointNow(): Promise<CheckpointResult[]> {
    if (!this.#worker) return [];
    return (await this.#ask({ type: 'now' })).results ?? [];
  }

  /** Per watched file, the frames of its -wal not yet in the database file (null: unknown). */
  async pending(): Promise<Map<string, number | null>> {
    if (!this.#worker) return new Map();
    return new Map((await this.#ask({ type: 'pending' })).pending ?? []);
  }

  /** Ends the worker (its connections are closed between rounds, so nothing is left open). */
  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    this.#paths.clear();
    const w = this.#worker;
    if (!w) return;
    await this.#ask({ type: 'stop' });
    w.terminate();
    this.#worker = null;
    if (this.#url) URL.revokeObjectURL(this.#url);
    for (const [id, done] of this.#waiting) done({ type: 'ack', id });
    this.#waiting.clear();
  }

  /**
   * Asks the worker and waits for its ack. The worker is unref'd (it never keeps the process
   * alive by itself), so it is ref'd while an answer is awaited: otherwise a process whose only
   * pending work is this answer (a CLI command closing its databases) would end right there,
   * with exit code 0, before the caller's `process.exit(code)`.
   */
  #ask(m: Record<string, unknown>): Promise<Reply & { type: 'ack' }> {
    const id = this.#nextId++;
    const w = this.#worker as Worker & { ref?: () => void; unref?: () => void };
    if (this.#waiting.size === 0) w.ref?.();
    return new Promise<Reply & { type: 'ack' }>((resolve) => {
      this.#waiting.set(id, resolve);
      w.postMessage({ ...m, id });
    }).finally(() => {
      if (this.#waiting.size === 0) w.unref?.();
    });
  }

  #ensure(): Worker {
    if (this.#worker) return this.#worker;
    this.#url = URL.createObjectURL(new Blob([WORKER_SOURCE], { type: 'application/javascript' }));
    const w = new Worker(this.#url);
    // Never keeps the process alive by itself.
    (w as Worker & { unref?: () => void }).unref?.();
    w.onmessage = (ev: MessageEvent<Reply>) => {
      const m = ev.data;
      if (m.type === 'ack') {
        const done = this.#waiting.get(m.id);
        this.#waiting.delete(m.id);
        done?.(m);
      } else if (m.type === 'round') {
        this.stats.rounds++;
        this.stats.last = m.results;
      } else {
        for (const r of m.results) this.#onError(r);
      }
    };
    w.postMessage({ type: 'start', everyMs: this.#everyMs, minFrames: this.#minFrames });
    this.#worker = w;
    return w;
  }
}
