import type { Database } from 'bun:sqlite';
import { AppError } from '../shared/errors.ts';
import { type CheckpointResult, WalCheckpointer } from './checkpointer.ts';

/** A borrowed handle: use `db`, then call `release()` exactly once. */
export interface Lease {
  readonly db: Database;
  release(): void;
}

interface Entry {
  key: string;
  db: Database;
  refs: number;
  /** Evicted while in use: close when the last lease is released. */
  closing: boolean;
  waiters: (() => void)[];
}

/**
 * A bounded LRU of open SQLite handles, one per platform file, so that 10,000 platforms cost
 * nothing while idle and the busy ones stay open.
 *
 * NB! Closing is reference counted: a handle evicted (LRU overflow, archive, shutdown) while a
 * request holds a lease stays open until that lease is released, so no request ever sees its
 * database closed under it. When every open handle is leased, the pool grows past `max` rather
 * than failing, and shrinks back as leases are released.
 */
export class DbPool {
  readonly max: number;
  readonly #open: (key: string) => Database;
  /** Map order is LRU order: the first entry is the least recently used. */
  readonly #entries = new Map<string, Entry>();
  /** Evicted entries still leased. */
  readonly #draining = new Set<Entry>();
  /** Keys whose handle is being closed by `evict`: not opened again until it is. */
  readonly #evicting = new Set<string>();
  #opened = 0;
  #closed = 0;
  readonly #checkpointMs: number | false;
  readonly #onCheckpointError: (r: CheckpointResult) => void;
  /** Checkpoints the open handles' -wal off the JS thread (started with the first file handle). */
  #checkpointer: WalCheckpointer | null = null;
  readonly #onClose = new Set<(key: string, db: Database) => void>();

  /**
   * `walCheckpointMs`: how often a worker thread checkpoints the open files' -wal (default
   * 1,000 ms; `false` leaves SQLite's automatic checkpoint in the committing call, on this
   * thread). See checkpointer.ts for why.
   */
  constructor(opts: {
    max: number;
    open: (key: string) => Database;
    walCheckpointMs?: number | false;
    onCheckpointError?: (r: CheckpointResult) => void;
  }) {
    if (!Number.isInteger(opts.max) || opts.max < 1)
      throw new Error(`pool size must be a positive integer, got ${opts.max}`);
    this.max = opts.max;
    this.#open = opts.open;
    this.#checkpointMs = opts.walCheckpointMs ?? 1_000;
    this.#onCheckpointError = opts.onCheckpointError ?? (() => {});
  }

  /** The worker checkpointing the handles' -wal files (null until a file handle is opened, or when off). */
  get checkpointer(): WalCheckpointer | null {
    return this.#checkpointer;
  }

  /**
   * Borrows the handle for `key`, opening it if needed. While `key` is being evicted (its file
   * about to be moved, e.g. archived) it is refused: a handle opened then would outlive the
   * eviction and write to a -wal left behind beside a file that has moved.
   */
  acquire(key: string): Lease {
    if (this.#evicting.has(key))
      throw new AppError('platform.unavailable', `platform database ${key} is being closed`, 503);
    let e = this.#entries.get(key);
    if (e) {
      // Move to the most-recently-used end.
      this.#entries.delete(key);
      this.#entries.set(key, e);
      e.refs++;
    } else {
      // Leased before the pool shrinks, so the new handle is never the one evicted.
      e = { key, db: this.#open(key), refs: 1, closing: false, waiters: [] };
      this.#opened++;
      this.#watch(e.db);
      this.#entries.set(key, e);
      this.#shrink();
    }
    const entry = e;
    let released = false;
    return {
      db: entry.db,
      release: () => {
        if (released) return;
        released = true;
        entry.refs--;
        if (entry.refs === 0) {
          if (entry.closing) this.#close(entry);
          else this.#shrink();
        }
      },
    };
  }

  /** Runs `fn` with the handle for `key` and releases it, also when `fn` throws or rejects. */
  async use<T>(key: string, fn: (db: Database) => T | Promise<T>): Promise<T> {
    const lease = this.acquire(key);
    try {
      return await fn(lease.db);
    } finally {
      lease.release();
    }
  }

  /**
   * Closes the handle for `key` now if idle, else as soon as its last lease is released.
   * The returned promise settles when the handle is closed (the file may then be moved).
   */
  async evict(key: string): Promise<void> {
    const e = this.#entries.get(key);
    if (!e) return;
    this.#entries.delete(key);
    // No new handle for `key` until this one is closed (see `acquire`).
    this.#evicting.add(key);
    try {
      // The checkpointer lets go of the file first, so that this close is the last one and
      // removes the -wal (the caller may move the file next).
      await this.#checkpointer?.forget(e.db.filename);
      if (e.refs === 0) {
        this.#close(e);
        return;
      }
      e.closing = true;
      this.#draining.add(e);
      await new Promise<void>((resolve) => e.waiters.push(resolve));
    } finally {
      this.#evicting.delete(key);
    }
  }

  /** Closes every handle: idle ones at once, leased ones when released; then stops the checkpointer. */
  async closeAll(): Promise<void> {
    await Promise.all([...this.#entries.keys()].map((k) => this.evict(k)));
    const c = this.#checkpointer;
    this.#checkpointer = null;
    await c?.stop();
  }

  #watch(db: Database): void {
    if (this.#checkpointMs === false) return;
    try {
      this.#checkpointer ??= new WalCheckpointer({
        everyMs: this.#checkpointMs,
        onError: this.#onCheckpointError,
      });
      this.#checkpointer.watch(db);
    } catch (err) {
      // No worker thread here: SQLite's automatic checkpoint stays as it was.
      this.#onCheckpointError({
        path: db.filename,
        busy: 1,
        log: -1,
        checkpointed: -1,
        ms: 0,
        error: String(err),
      });
    }
  }

  /**
   * Registers `fn`, called with a handle just before the pool closes it (LRU overflow, evict,
   * closeAll), once its last lease is released: the last moment to write to that file before it
   * may be moved (an archive). Synchronous; a throw is the hook's own (caught and ignored).
   * Returns a function that unregisters it.
   */
  onClose(fn: (key: string, db: Database) => void): () => void {
    this.#onClose.add(fn);
    return () => {
      this.#onClose.delete(fn);
    };
  }

  /** Whether `key` currently has an open handle. */
  has(key: string): boolean {
    return this.#entries.has(key);
  }

  /** Counters for /metrics. */
  stats(): { open: number; leased: number; draining: number; opened: number; closed: number } {
    let leased = 0;
    for (const e of this.#entries.values()) if (e.refs > 0) leased++;
    return {
      open: this.#entries.size + this.#draining.size,
      leased,
      draining: this.#draining.size,
      opened: this.#opened,
      closed: this.#closed,
    };
  }

  #shrink(): void {
    if (this.#entries.size <= this.max) return;
    for (const e of this.#entries.values()) {
      if (this.#entries.size <= this.max) break;
      if (e.refs > 0) continue;
      this.#entries.delete(e.key);
      this.#close(e);
    }
  }

  #close(e: Entry): void {
    this.#draining.delete(e);
    // No await here (LRU shrink is synchronous); the file stays where it is, and whichever
    // connection closes last checkpoints and removes its -wal.
    void this.#checkpointer?.forget(e.db.filename);
    for (const fn of this.#onClose) {
      try {
        fn(e.key, e.db);
      } catch {
        // The hook logs its own failures; the handle closes regardless.
      }
    }
    try {
      e.db.close();
    } finally {
      this.#closed++;
      for (const w of e.waiters.splice(0)) w();
    }
  }
}
