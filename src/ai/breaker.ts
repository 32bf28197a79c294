/**
 * A circuit breaker per provider: after `threshold` failures in a row it opens and the router
 * skips the provider for `openMs`; then one call is let through (half-open) and its outcome
 * closes or re-opens it. Health checks feed it too, so a dead provider is skipped before any
 * request has to find out.
 */
export class CircuitBreaker {
  readonly #threshold: number;
  readonly #openMs: number;
  #failures = 0;
  #openedAt: number | null = null;
  #probing = false;

  constructor(opts: { threshold?: number; openMs?: number } = {}) {
    this.#threshold = opts.threshold ?? 3;
    this.#openMs = opts.openMs ?? 10_000;
  }

  /** 'closed' (use it), 'open' (skip it), 'half_open' (one probe may go). */
  state(now: number): 'closed' | 'open' | 'half_open' {
    if (this.#openedAt === null) return 'closed';
    return now - this.#openedAt >= this.#openMs ? 'half_open' : 'open';
  }

  /** Whether a call may go now (claims the single half-open probe). */
  allow(now: number): boolean {
    const s = this.state(now);
    if (s === 'closed') return true;
    if (s === 'open' || this.#probing) return false;
    this.#probing = true;
    return true;
  }

  /** A call or health check succeeded. */
  success(): void {
    this.#failures = 0;
    this.#openedAt = null;
    this.#probing = false;
  }

  /** A call or health check failed. */
  failure(now: number): void {
    this.#failures++;
    this.#probing = false;
    if (this.#failures >= this.#threshold || this.#openedAt !== null) this.#openedAt = now;
  }
}
