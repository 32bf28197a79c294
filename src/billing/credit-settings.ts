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
import { createUserRepository, queueMail } from '../identity/index.ts';
import { creditSettingsOf, setLowNotified } from './credit-settings.repository.ts';
import { findAccount } from './ledger.repository.ts';
import { accountId } from './ledger.ts';

/** The platform-wide default threshold: 5.00 in the credits' currency. */
export const DEFAULT_LOW_BALANCE_MINOR = 500;
/** The largest threshold a user may set (10,000.00, the largest top-up). */
export const LOW_BALANCE_MAX_MINOR = 1_000_000;

const MICRO = 1_000_000n;

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
    if (user?.status !== 'active') return false;
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
