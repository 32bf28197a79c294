/** Prepaid credits' settings per user and currency (migration 0027). */
import type { Database } from 'bun:sqlite';

export interface CreditSettingsRow {
  user_id: string;
  currency: string;
  low_balance_minor: number | null;
  low_notified_at: number | null;
  auto_below_minor: number | null;
  auto_amount_minor: number | null;
  auto_armed: 0 | 1;
  stripe_customer: string | null;
  payment_method: string | null;
  updated_at: number;
}

export function creditSettingsOf(db: Database, userId: string, currency: string): CreditSettingsRow | null {
  return db
    .query<CreditSettingsRow, [string, string]>(
      'SELECT * FROM credit_settings WHERE user_id = ? AND currency = ?',
    )
    .get(userId, currency);
}

/** Writes the threshold (null: the default), keeping the notice's state. */
export function upsertLowBalance(
  db: Database,
  userId: string,
  currency: string,
  lowBalanceMinor: number | null,
  now: number,
): void {
  db.query(
    `INSERT INTO credit_settings (user_id, currency, low_balance_minor, low_notified_at, updated_at)
     VALUES (?, ?, ?, NULL, ?)
     ON CONFLICT (user_id, currency) DO UPDATE SET low_balance_minor = excluded.low_balance_minor, updated_at = excluded.updated_at`,
  ).run(userId, currency, lowBalanceMinor, now);
}

/** Sets (a time) or clears (null) when the low-balance notice was mailed. */
export function setLowNotified(
  db: Database,
  userId: string,
  currency: string,
  at: number | null,
  now: number,
): void {
  db.query(
    `INSERT INTO credit_settings (user_id, currency, low_balance_minor, low_notified_at, updated_at)
     VALUES (?, ?, NULL, ?, ?)
     ON CONFLICT (user_id, currency) DO UPDATE SET low_notified_at = excluded.low_notified_at, updated_at = excluded.updated_at`,
  ).run(userId, currency, at, now);
}

/** Turns auto top-up on (both amounts) or off (null), armed. */
export function setAutoTopup(
  db: Database,
  userId: string,
  currency: string,
  auto: { below_minor: number; amount_minor: number } | null,
  now: number,
): void {
  db.query(
    `INSERT INTO credit_settings (user_id, currency, auto_below_minor, auto_amount_minor, auto_armed, updated_at)
     VALUES (?, ?, ?, ?, 1, ?)
     ON CONFLICT (user_id, currency) DO UPDATE SET auto_below_minor = excluded.auto_below_minor,
       auto_amount_minor = excluded.auto_amount_minor, auto_armed = 1, updated_at = excluded.updated_at`,
  ).run(userId, currency, auto?.below_minor ?? null, auto?.amount_minor ?? null, now);
}

/** Keeps the card a paid top-up saved (its customer and payment method). */
export function saveTopupCard(
  db: Database,
  userId: string,
  currency: string,
  customer: string,
  paymentMethod: string,
  now: number,
): void {
  db.query(
    `INSERT INTO credit_settings (user_id, currency, stripe_customer, payment_method, updated_at) VALUES (?, ?, ?, ?, ?)
     ON CONFLICT (user_id, currency) DO UPDATE SET stripe_customer = excluded.stripe_customer,
       payment_method = excluded.payment_method, updated_at = excluded.updated_at`,
  ).run(userId, currency, customer, paymentMethod, now);
}

/** Disarms auto top-up for this crossing; false when it was not armed (someone else took it). */
export function disarmAutoTopup(db: Database, userId: string, currency: string, now: number): boolean {
  return (
    db
      .query(
        'UPDATE credit_settings SET auto_armed = 0, updated_at = ? WHERE user_id = ? AND currency = ? AND auto_armed = 1',
      )
      .run(now, userId, currency).changes > 0
  );
}

export function rearmAutoTopup(db: Database, userId: string, currency: string, now: number): void {
  db.query(
    'UPDATE credit_settings SET auto_armed = 1, updated_at = ? WHERE user_id = ? AND currency = ? AND auto_armed = 0',
  ).run(now, userId, currency);
}
