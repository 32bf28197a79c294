/**
 * Sign-in throttling: failures are counted per key (an account, an address) in a sliding
 * window; once a key has `limit` failures inside the window it must wait until the oldest one
 * leaves the window. In memory: one process owns the data dir, so the counts are exact.
 */
export class FailureThrottle {
  readonly #limit: number;
  readonly #windowMs: number;
  readonly #failures = new Map<string, number[]>();

  constructor(opts: { limit: number; windowMs: number }) {
    this.#limit = opts.limit;
    this.#windowMs = opts.windowMs;
  }

  /** Seconds to wait before `key` may try again (0: go ahead). */
  retryAfter(key: string, now: number): number {
    const list = this.#prune(key, now);
    if (list.length < this.#limit) return 0;
    return Math.max(1, Math.ceil((list[0]! + this.#windowMs - now) / 1000));
  }

  /** Records a failure. */
  fail(key: string, now: number): void {
    const list = this.#prune(key, now);
    list.push(now);
    this.#failures.set(key, list);
    if (this.#failures.size > 100_000) this.#sweep(now);
  }

  /** Forgets a key's failures (after a success). */
  reset(key: string): void {
    this.#failures.delete(key);
  }

  #prune(key: string, now: number): number[] {
    const list = this.#failures.get(key) ?? [];
    while (list.length && list[0]! <= now - this.#windowMs) list.shift();
    if (list.length === 0) this.#failures.delete(key);
    return list;
  }

  #sweep(now: number): void {
    for (const k of [...this.#failures.keys()]) this.#prune(k, now);
  }
}

/**
 * A token bucket per key: `ratePerMin` requests a minute with bursts up to that many.
 * `take` answers 0 when a request may go, else the seconds until one token is back.
 */
export class TokenBuckets {
  readonly #buckets = new Map<string, { tokens: number; at: number }>();

  take(key: string, ratePerMin: number, now: number): number {
    const perMs = ratePerMin / 60_000;
    const b = this.#buckets.get(key) ?? { tokens: ratePerMin, at: now };
    b.tokens = Math.min(ratePerMin, b.tokens + (now - b.at) * perMs);
    b.at = now;
    if (b.tokens >= 1) {
      b.tokens -= 1;
      this.#buckets.set(key, b);
      return 0;
    }
    this.#buckets.set(key, b);
    return Math.max(1, Math.ceil((1 - b.tokens) / perMs / 1000));
  }

  /** Forgets a key (revoked). */
  delete(key: string): void {
    this.#buckets.delete(key);
  }
}
