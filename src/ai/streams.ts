/**
 * How many streamed completions each caller (a user across their keys and sessions, or a key
 * with no user) has open at once.
 * A stream holds an upstream connection, a database lease and a budget reservation for as long
 * as it runs, so one key opening hundreds of them would starve everyone else: past the limit a
 * new stream is refused (429 `ai.too_many_streams`) until one ends.
 */
export class StreamSlots {
  /** Streams one caller may have open at once. */
  readonly limit: number;
  readonly #open = new Map<string, number>();
  #waiters: { atMost: number; resolve: () => void }[] = [];

  constructor(limit: number) {
    this.limit = limit;
  }

  /**
   * Takes a slot for `caller`, or returns null when it already has `limit` open. The returned
   * function gives the slot back; calling it again does nothing, so every way a stream can end
   * (done, upstream error, client gone) may call it.
   */
  acquire(caller: string): (() => void) | null {
    const n = this.#open.get(caller) ?? 0;
    if (n >= this.limit) return null;
    this.#open.set(caller, n + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const left = (this.#open.get(caller) ?? 1) - 1;
      if (left > 0) this.#open.set(caller, left);
      else this.#open.delete(caller);
      this.#wake();
    };
  }

  /** Streams open now: one caller's, or everyone's. */
  open(caller?: string): number {
    if (caller !== undefined) return this.#open.get(caller) ?? 0;
    let n = 0;
    for (const v of this.#open.values()) n += v;
    return n;
  }

  /** Resolves once at most `n` streams are open in all (for shutdown and tests: no polling). */
  whenOpenAtMost(n: number): Promise<void> {
    if (this.open() <= n) return Promise.resolve();
    return new Promise((resolve) => this.#waiters.push({ atMost: n, resolve }));
  }

  #wake(): void {
    const total = this.open();
    const ready = this.#waiters.filter((w) => total <= w.atMost);
    if (ready.length === 0) return;
    this.#waiters = this.#waiters.filter((w) => total > w.atMost);
    for (const w of ready) w.resolve();
  }
}

/** Streams one API key (or signed-in user) may have open at once when the configuration says nothing. */
export const DEFAULT_MAX_STREAMS_PER_KEY = 8;
