import type { Database } from 'bun:sqlite';
import {
  countLocked,
  deleteThrottle,
  storeThrottle,
  sweepThrottle,
  type ThrottleKeys,
  type ThrottleRow,
  throttleRow,
} from './throttle.repository.ts';

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

/**
 * A persisted limit: at most `limit` attempts by one key inside `windowMs`; the attempt that
 * reaches the limit locks the key for `lockMs` (null: until the window's first attempt leaves
 * it, the sliding-window reading). Kept in the platform's `auth_throttle` table, so
 * a restart keeps every count and lock-out (the in-memory classes above lose them).
 */
export interface Limit {
  kind: string;
  limit: number;
  windowMs: number;
  lockMs: number | null;
}

const MIN15 = 15 * 60_000;

/**
 * The sign-in and recovery limits (policy in docs/identity.md, "Throttling and lock-out"):
 * - `accountAddress`: one account tried from one address, 5 failures, then that address waits
 *   15 minutes for that account; the account's holder signing in from elsewhere is not held up.
 * - `account`: one account from any addresses, 20 failures (four or more addresses), then the
 *   account is locked for everyone for 15 minutes, or until an owner or admin unlocks it or its
 *   holder completes a password reset (Keycloak's temporary lock-out, GitLab's locked user).
 * - `address`: one address across accounts and the unauthenticated routes (sign-in, reset,
 *   email links), 30 failures, then that address waits 15 minutes (password spraying); a reset
 *   or email link with a live token still passes (it carries its own unguessable proof).
 * - `resetAccount` / `resetAddress`: reset requests, 3 per account (known or not) and 10 per
 *   address in 15 minutes.
 * - `mfa`: wrong second factors of one user, 5 in 15 minutes.
 * Keys of accounts are the email as typed (lower-cased), so unknown emails behave like known ones.
 */
export const AUTH_LIMITS = {
  accountAddress: { kind: 'account_address', limit: 5, windowMs: MIN15, lockMs: MIN15 },
  account: { kind: 'account', limit: 20, windowMs: MIN15, lockMs: MIN15 },
  address: { kind: 'address', limit: 30, windowMs: MIN15, lockMs: MIN15 },
  resetAccount: { kind: 'reset_account', limit: 3, windowMs: MIN15, lockMs: MIN15 },
  resetAddress: { kind: 'reset_address', limit: 10, windowMs: MIN15, lockMs: MIN15 },
  /** Wrong second factors of one user (the password already passed): 5, then 15 minutes. */
  mfa: { kind: 'mfa', limit: 5, windowMs: MIN15, lockMs: null },
} as const satisfies Record<string, Limit>;

/** A limit and the key it is applied to. */
export type Hold = readonly [Limit, string];

/** A key's live state: a lapsed window or a lapsed lock reads as a fresh start. */
function live(db: Database, l: Limit, key: string, now: number): ThrottleRow {
  const row = throttleRow(db, l.kind, key);
  if (!row) return { count: 0, window_start: now, locked_until: null };
  if (row.locked_until !== null && row.locked_until > now) return row;
  if (row.locked_until !== null || row.window_start + l.windowMs <= now || row.window_start > now)
    return { count: 0, window_start: now, locked_until: null };
  return row;
}

function store(db: Database, l: Limit, key: string, r: ThrottleRow): void {
  const expires = Math.max(r.window_start + l.windowMs, r.locked_until ?? 0);
  storeThrottle(db, l.kind, key, r, expires);
}

const secondsUntil = (t: number, now: number) => Math.max(1, Math.ceil((t - now) / 1000));

/** Seconds `key` must wait under `l` (0: it may go ahead). Reads only. */
export function lockWait(db: Database, l: Limit, key: string, now: number): number {
  const r = live(db, l, key, now);
  return r.locked_until !== null && r.locked_until > now ? secondsUntil(r.locked_until, now) : 0;
}

/** The outcome of `reserve`: refused with the seconds to wait, or counted (and which locks it set). */
export type Reservation = { ok: false; wait: number } | { ok: true; lockedNow: Limit[] };

/**
 * Counts one attempt against every hold, atomically: when any hold is locked nothing is counted
 * and the longest wait comes back; otherwise each count goes up by one, and a count that reaches
 * its limit locks that key. Callers reserve before the slow work (a password hash), so a
 * concurrent burst can never run more attempts than the limit; an attempt that succeeds is
 * forgiven afterwards (`release`, `clearKeys`). Expired rows are swept on the way.
 */
export function reserve(db: Database, holds: readonly Hold[], now: number): Reservation {
  return db
    .transaction((): Reservation => {
      sweepThrottle(db, now);
      const rows = holds.map(([l, key]) => live(db, l, key, now));
      const wait = Math.max(
        0,
        ...rows.map((r) =>
          r.locked_until !== null && r.locked_until > now ? secondsUntil(r.locked_until, now) : 0,
        ),
      );
      if (wait > 0) return { ok: false, wait };
      const lockedNow: Limit[] = [];
      holds.forEach(([l, key], i) => {
        const r = rows[i]!;
        const count = r.count + 1;
        const locked =
          count >= l.limit ? (l.lockMs === null ? r.window_start + l.windowMs : now + l.lockMs) : null;
        if (locked !== null) lockedNow.push(l);
        store(db, l, key, { count, window_start: r.window_start, locked_until: locked });
      });
      return { ok: true, lockedNow };
    })
    .immediate();
}

/** Takes back one counted attempt (it succeeded, or never ran); a key back under its limit is unlocked. */
export function release(db: Database, l: Limit, key: string, now: number): void {
  const r = live(db, l, key, now);
  if (r.count === 0) return;
  const count = r.count - 1;
  store(db, l, key, {
    count,
    window_start: r.window_start,
    locked_until: count >= l.limit ? r.locked_until : null,
  });
}

/** Forgets one key's count and lock (a success). */
export function forget(db: Database, l: Limit, key: string): void {
  deleteThrottle(db, l.kind, { key });
}

/**
 * Forgets an account's counts and locks: the account-wide one and every address's for it.
 * Returns how many locks were in force. Used after a successful sign-in (the pair and the
 * account), an unlock by an owner or admin, and a completed password reset.
 */
export function clearAccount(db: Database, email: string, now: number, onlyAddress?: string): number {
  const sep = '|';
  const clear = (kind: string, keys: ThrottleKeys) => {
    const n = countLocked(db, kind, keys, now);
    deleteThrottle(db, kind, keys);
    return n;
  };
  let n = 0;
  const pair = AUTH_LIMITS.accountAddress.kind;
  if (onlyAddress !== undefined) n += clear(pair, { key: accountAddressKey(email, onlyAddress) });
  // Every `email|address` key: the range [email|, email}) ('}' follows '|').
  else n += clear(pair, { from: `${email}${sep}`, to: `${email}}` });
  n += clear(AUTH_LIMITS.account.kind, { key: email });
  return n;
}

/** The key of one account seen from one address. */
export function accountAddressKey(email: string, address: string): string {
  return `${email}|${address}`;
}

/**
 * The key a client address is limited by: IPv4 as is (also when IPv4-mapped), IPv6 by its /64
 * (one subscriber usually holds a whole /64, so single IPv6 addresses would be free to rotate).
 */
export function addressKey(ip: string | null): string {
  if (!ip) return '-';
  const a = ip.trim().toLowerCase();
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/.exec(a);
  if (mapped) return mapped[1]!;
  if (!a.includes(':')) return a;
  const [head = '', tail] = a.split('%')[0]!.split('::') as [string, string | undefined];
  const h = head ? head.split(':') : [];
  const t = tail ? tail.split(':') : [];
  const groups =
    tail === undefined ? h : [...h, ...Array(Math.max(0, 8 - h.length - t.length)).fill('0'), ...t];
  return `${groups
    .slice(0, 4)
    .map((g) => (Number.parseInt(g || '0', 16) || 0).toString(16))
    .join(':')}::/64`;
}
