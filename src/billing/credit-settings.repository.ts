/** Prepaid credits' settings per user and currency (migration 0027). */
import type { Database } from 'bun:sqlite';

export interface CreditSettingsRow {
  user_id: string;
  currency: string;
  low_balance_minor: number | null;
  low_notified_at: number | null;
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
