/** A platform's own Stripe account (migration 0026's stripe_settings: one row or none). */
import type { Database } from 'bun:sqlite';

export interface StripeSettingsRow {
  secret_key: string;
  webhook_secret: string;
  key_hint: string;
  live: 0 | 1;
  updated_by: string;
  updated_at: number;
}

export function readStripeSettings(db: Database): StripeSettingsRow | null {
  return db
    .query<StripeSettingsRow, []>(
      'SELECT secret_key, webhook_secret, key_hint, live, updated_by, updated_at FROM stripe_settings WHERE id = 1',
    )
    .get();
}

export function writeStripeSettings(db: Database, r: StripeSettingsRow): void {
  db.query(
    `INSERT INTO stripe_settings (id, secret_key, webhook_secret, key_hint, live, updated_by, updated_at)
     VALUES (1, ?, ?, ?, ?, ?, ?)
     ON CONFLICT (id) DO UPDATE SET secret_key = excluded.secret_key, webhook_secret = excluded.webhook_secret,
       key_hint = excluded.key_hint, live = excluded.live, updated_by = excluded.updated_by,
       updated_at = excluded.updated_at`,
  ).run(r.secret_key, r.webhook_secret, r.key_hint, r.live, r.updated_by, r.updated_at);
}

export function deleteStripeSettings(db: Database): boolean {
  return db.query('DELETE FROM stripe_settings WHERE id = 1').run().changes > 0;
}

/** Rewrites the sealed values (key rotation). */
export function resealStripeSettings(db: Database, secretKey: string, webhookSecret: string): void {
  db.query('UPDATE stripe_settings SET secret_key = ?, webhook_secret = ? WHERE id = 1').run(
    secretKey,
    webhookSecret,
  );
}
