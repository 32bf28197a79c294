/**
 * The low-balance notice on prepaid credits (issue 13 item 2): when a user's credits
 * (`credits:<uid>:<cur>`) are below their threshold after a spend, the user is mailed once;
 * the notice is re-armed when the balance is at or above the threshold again (a top-up), so it
 * is one mail per crossing, not per spend. The threshold is the user's own setting
 * (`PUT /api/v1/billing/credits/settings`), else DEFAULT_LOW_BALANCE_MINOR. Checked after every
 * spend of credits (a purchase paid with credits) and after every top-up (to re-arm), outside
 * the spend's transaction; the check and the queued mail are one transaction of their own.
 */
import type { Database } from 'bun:sqlite';
import type { App } from '../app/index.ts';
import { createUserRepository, type PlatformRequestContext, queueMail } from '../identity/index.ts';
import { AppError } from '../shared/errors.ts';
import { creditSettingsOf, setLowNotified, upsertLowBalance } from './credit-settings.repository.ts';
import { userOf } from './credits.service.ts';
import { findAccount } from './ledger.repository.ts';
import { accountId } from './ledger.ts';

/** The platform-wide default threshold: 5.00 in the credits' currency. */
export const DEFAULT_LOW_BALANCE_MINOR = 500;
/** The largest threshold a user may set (10,000.00, the largest top-up). */
export const LOW_BALANCE_MAX_MINOR = 1_000_000;

const MICRO = 1_000_000n;

/** The threshold in force for a user's credits in `currency` (minor units). */
export function lowBalanceOf(db: Database, userId: string, currency: string): number {
  return creditSettingsOf(db, userId, currency)?.low_balance_minor ?? DEFAULT_LOW_BALANCE_MINOR;
}

const fmt = (minor: bigint | number, currency: string) =>
  `${(Number(minor) / 100).toFixed(2)} ${currency.toUpperCase()}`;

/**
 * After a spend or a top-up: mails the user once when their credits are below the threshold,
 * re-arms the notice when they are not. Answers whether a mail was queued.
 */
export function checkLowBalance(app: App, db: Database, userId: string, currency: string): boolean {
  const cur = currency.toLowerCase();
  const now = app.clock.now();
  return db.transaction(() => {
    const a = findAccount(db, accountId('credits', userId, cur));
    if (!a) return false;
    const micro = a.credits_posted - a.debits_posted - a.debits_pending;
    const row = creditSettingsOf(db, userId, cur);
    const threshold = row?.low_balance_minor ?? DEFAULT_LOW_BALANCE_MINOR;
    const low = micro < BigInt(threshold) * MICRO;
    if (!low) {
      if (row?.low_notified_at != null) setLowNotified(db, userId, cur, null, now);
      return false;
    }
    if (row?.low_notified_at != null) return false;
    const user = createUserRepository({ db }).byId(userId);
    setLowNotified(db, userId, cur, now, now);
    if (!user || user.status !== 'active') return false;
    queueMail(
      db,
      {
        to_email: user.email,
        template: 'credits_low',
        subject: 'Your credits are running low',
        body:
          `Your prepaid credits are down to ${fmt(micro / MICRO, cur)}, below your notice threshold of ${fmt(threshold, cur)}.\n\n` +
          'Top up on your billing page (/app/billing) to keep using paid features without interruption.\n\n' +
          'You will not be told again until your credits are back above the threshold and fall below it once more.\n',
      },
      now,
    );
    return true;
  })();
}

/** The signed-in user's credit settings in `currency`. */
export function myCreditSettings(c: PlatformRequestContext, currency: string) {
  const userId = userOf(c);
  const row = creditSettingsOf(c.db, userId, currency);
  return {
    settings: {
      currency,
      low_balance_minor: row?.low_balance_minor ?? DEFAULT_LOW_BALANCE_MINOR,
      low_balance_default: row?.low_balance_minor == null,
      low_balance_notified_at: row?.low_notified_at ? new Date(row.low_notified_at).toISOString() : null,
    },
  };
}

/** Sets the signed-in user's threshold (null: back to the default); the notice is re-checked. */
export function setCreditSettings(
  c: PlatformRequestContext,
  body: { low_balance_minor?: unknown; currency?: string },
) {
  const userId = userOf(c);
  const currency = body.currency ?? 'usd';
  const v = body.low_balance_minor;
  if (v !== null && (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > LOW_BALANCE_MAX_MINOR))
    throw new AppError(
      'billing.invalid',
      `low_balance_minor: a whole number of minor units from 0 to ${LOW_BALANCE_MAX_MINOR}, or null for the default`,
      400,
      [{ path: '/low_balance_minor', reason: `from 0 to ${LOW_BALANCE_MAX_MINOR}, or null` }],
    );
  upsertLowBalance(c.db, userId, currency, v, c.app.clock.now());
  // A threshold above the balance mails now (once); one below it re-arms the notice.
  checkLowBalance(c.app, c.db, userId, currency);
  return myCreditSettings(c, currency);
}
