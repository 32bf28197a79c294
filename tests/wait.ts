/**
 * Waiting in tests without a fixed sleep: poll a condition until it holds, or fail naming what
 * was awaited. This file is the one place in the suite allowed to call `setTimeout` for waiting
 * (the sleep scan in tests/no-fixed-sleep.test.ts checks that).
 */

/** Options for `waitFor`. */
export interface WaitOptions {
  /** Give up after this many milliseconds (default 5,000). */
  timeout?: number;
  /** Poll every this many milliseconds (default 2). */
  interval?: number;
  /** What is awaited, for the error message. */
  what?: string;
}

/**
 * Resolves with the first truthy value `cond` returns (awaited if it is a promise); rejects once
 * `timeout` ms have passed without one. A condition that throws counts as not yet true.
 */
export async function waitFor<T>(
  cond: () => T | Promise<T>,
  opts: WaitOptions = {},
): Promise<NonNullable<T>> {
  const timeout = opts.timeout ?? 5_000;
  const interval = opts.interval ?? 2;
  const deadline = performance.now() + timeout;
  let last: unknown;
  for (;;) {
    try {
      const v = await cond();
      if (v) return v as NonNullable<T>;
    } catch (e) {
      last = e;
    }
    if (performance.now() > deadline) {
      throw new Error(
        `waitFor: ${opts.what ?? 'condition'} not met within ${timeout} ms${last ? ` (last error: ${String(last)})` : ''}`,
      );
    }
    await tick(interval);
  }
}

/** A promise that rejects after `ms` (a bound on how long a test awaits something). */
export function deadline(ms: number, what = 'operation'): Promise<never> {
  return new Promise<never>((_, reject) => {
    setTimeout(() => reject(new Error(`${what} still pending after ${ms} ms`)), ms);
  });
}

/**
 * Whether `p` is still pending after the event loop has run everything already queued and `ms`
 * more milliseconds (a check that something did NOT happen, e.g. a request held back by a lease).
 */
export async function stillPending(p: Promise<unknown>, ms = 20): Promise<boolean> {
  let settled = false;
  p.then(
    () => {
      settled = true;
    },
    () => {
      settled = true;
    },
  );
  await tick(ms);
  return !settled;
}

/**
 * Whether `cond` stays true for the whole of `ms` milliseconds (checked every `interval`): a
 * check that something does NOT happen in a window (a stopped loop makes no more calls). The
 * window is a bound on absence, never a way to order events.
 */
export async function holdsFor(cond: () => boolean, ms: number, interval = 5): Promise<boolean> {
  const end = performance.now() + ms;
  while (performance.now() < end) {
    if (!cond()) return false;
    await tick(interval);
  }
  return cond();
}

/** An explicit signal: a promise and the function that resolves it. */
export function signal<T = void>(): { promise: Promise<T>; resolve(v: T): void; fired(): boolean } {
  let resolve!: (v: T) => void;
  let fired = false;
  const promise = new Promise<T>((r) => {
    resolve = (v: T) => {
      fired = true;
      r(v);
    };
  });
  return { promise, resolve, fired: () => fired };
}

function tick(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
