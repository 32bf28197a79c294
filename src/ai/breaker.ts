/** A circuit's state: 'closed' (use it), 'open' (skip it), 'half_open' (one probe may go). */
export type CircuitState = 'closed' | 'open' | 'half_open';

/**
 * A circuit breaker per provider: after `threshold` failures in a row it opens and the router
 * skips the provider for `openMs`; then one call is let through (half-open) and its outcome
 * closes or re-opens it. Health checks feed it too, so a dead provider is skipped before any
 * request has to find out. `onChange` hears every change of state (the runtime logs them).
 */
export class CircuitBreaker {
  readonly #threshold: number;
  readonly #openMs: number;
  readonly #onChange: ((from: CircuitState, to: CircuitState) => void) | undefined;
  #failures = 0;
  #openedAt: number | null = null;
  #probing = false;

  constructor(
    opts: {
      threshold?: number;
      openMs?: number;
      onChange?: (from: CircuitState, to: CircuitState) => void;
    } = {},
  ) {
    this.#threshold = opts.threshold ?? 3;
    this.#openMs = opts.openMs ?? 10_000;
    this.#onChange = opts.onChange;
  }

  /** 'closed' (use it), 'open' (skip it), 'half_open' (one probe may go). */
  state(now: number): CircuitState {
    if (this.#openedAt === null) return 'closed';
    return now - this.#openedAt >= this.#openMs ? 'half_open' : 'open';
  }

  /** Failures in a row so far. */
  get failures(): number {
    return this.#failures;
  }

  /** Whether a call may go now (claims the single half-open probe). */
  allow(now: number): boolean {
    const s = this.state(now);
    if (s === 'closed') return true;
    if (s === 'open' || this.#probing) return false;
    this.#probing = true;
    this.#onChange?.('open', 'half_open');
    return true;
  }

  /** A call or health check succeeded. */
  success(): void {
    // The hot path: a closed circuit stays closed with nothing to tell.
    if (this.#openedAt === null) {
      this.#failures = 0;
      return;
    }
    const from: CircuitState = this.#probing ? 'half_open' : 'open';
    this.#failures = 0;
    this.#openedAt = null;
    this.#probing = false;
    this.#onChange?.(from, 'closed');
  }

  /** A call or health check failed. */
  failure(now: number): void {
    const wasOpen = this.#openedAt !== null;
    const wasProbing = this.#probing;
    this.#failures++;
    this.#probing = false;
    if (this.#failures >= this.#threshold || wasOpen) this.#openedAt = now;
    if (!wasOpen && this.#openedAt !== null) this.#onChange?.('closed', 'open');
    else if (wasProbing) this.#onChange?.('half_open', 'open');
  }
}
