/** A source of time, so tests can pin it. Inside: epoch milliseconds; at the edges: ISO-8601 UTC. */
export interface Clock {
  now(): number;
}

/** The real clock. */
export const systemClock: Clock = { now: () => Date.now() };

/** Epoch ms → `2026-11-26T15:38:32.000Z`. */
export function iso(ms: number): string {
  return new Date(ms).toISOString();
}
