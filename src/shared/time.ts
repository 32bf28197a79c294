/** A source of time, so tests can pin it. Inside: epoch milliseconds; at the edges: ISO-8601 UTC. */
export interface Clock {
  now(): number;
}

/**
 * The real clock. NB! The one place that reads the wall clock: everything else takes a `Clock`
 * (the `no wall clock` test in src/shared/time.test.ts names any other `Date.now()`).
 */
export const systemClock: Clock = { now: () => Date.now() };

/**
 * A clock that moves only when told to (tests): pin it with `set`, let time pass with
 * `advance`, instead of sleeping on the wall clock.
 */
export class ManualClock implements Clock {
  #now: number;

  constructor(start = Date.UTC(2026, 0, 1)) {
    this.#now = start;
  }

  now(): number {
    return this.#now;
  }

  /** Pins the time (epoch ms). */
  set(ms: number): void {
    this.#now = ms;
  }

  /** Lets `ms` milliseconds pass. */
  advance(ms: number): void {
    this.#now += ms;
  }
}

/** Epoch ms → `2026-11-26T15:38:32.000Z`. */
export function iso(ms: number): string {
  return new Date(ms).toISOString();
}
