/**
 * Referral codes (issue 12 item 6): each user of a platform has one code (made on the first ask:
 * 10 characters of base32, 50 bits, so codes cannot be guessed or walked). A share link carries
 * it as `?ref=`; what it brings is counted for its holder: anonymous visits (a bounded counter
 * per code and UTC day), sign-ups and installs. A ref that is malformed, unknown, a suspended
 * user's or the new user's own is ignored, silently (no answer tells which codes exist).
 */
import type { Database } from 'bun:sqlite';
import { randomBytes } from 'node:crypto';
import {
  codeOfUser,
  countVisit,
  insertCode,
  insertSignup,
  referrerOf,
  signupsSince,
  userOfCode,
  visitsByDay,
} from './referrals.repository.ts';

const ALPHABET = 'abcdefghijkmnpqrstuvwxyz23456789'; // 32 symbols, no look-alikes (l/1, o/0)
export const REFERRAL_CODE_RE = /^[a-km-np-z2-9]{10}$/;
export const DAY_MS = 86_400_000;

/** The UTC day number (days since 1970-01-01) of an instant. */
export const dayOf = (ms: number) => Math.floor(ms / DAY_MS);

function newCode(): string {
  const b = randomBytes(10);
  let out = '';
  for (const x of b) out += ALPHABET[x & 31];
  return out;
}

/** `userId`'s code, made on the first ask (`created`; the caller holds the transaction and audits). */
export function referralCodeOf(
  db: Database,
  userId: string,
  now: number,
): { code: string; created: boolean } {
  const have = codeOfUser(db, userId);
  if (have) return { code: have, created: false };
  // A clash of two random 50-bit codes is all but impossible; one is retried all the same.
  for (let i = 0; i < 5; i++) if (insertCode(db, userId, newCode(), now)) break;
  const code = codeOfUser(db, userId);
  if (!code) throw new Error('could not store a referral code');
  return { code, created: true };
}

/** The user a ref names (a well-formed code of an active user), or null. */
export function referrerOfRef(db: Database, ref: unknown): string | null {
  if (typeof ref !== 'string') return null;
  const code = ref.trim().toLowerCase();
  return REFERRAL_CODE_RE.test(code) ? userOfCode(db, code) : null;
}

/** Counts an anonymous visit for a ref (nothing for an unknown or malformed one). */
export function recordReferralVisit(db: Database, ref: unknown, now: number): void {
  if (typeof ref !== 'string') return;
  const code = ref.trim().toLowerCase();
  if (REFERRAL_CODE_RE.test(code)) countVisit(db, code, dayOf(now));
}

/**
 * Records who referred a new user (in the sign-up's transaction): the ref's holder unless it is
 * the user themself; otherwise nothing. Returns the referrer written, or null.
 */
export function attributeSignup(db: Database, ref: unknown, userId: string, now: number): string | null {
  const referrer = referrerOfRef(db, ref);
  if (!referrer || referrer === userId) return null;
  insertSignup(db, userId, referrer, now);
  return referrer;
}

/** A referrer's figures over the last `days` days: visits by day and sign-ups. */
export function referralFigures(db: Database, userId: string, days: number, now: number) {
  const fromDay = dayOf(now) - days + 1;
  return {
    visits_by_day: visitsByDay(db, userId, fromDay).map((v) => ({
      day: new Date(v.day * DAY_MS).toISOString().slice(0, 10),
      visits: v.visits,
    })),
    signups: signupsSince(db, userId, fromDay * DAY_MS),
  };
}

export { referrerOf };
