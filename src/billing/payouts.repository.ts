/** Creators' connected accounts and their payouts (migration 0026). */
import type { Database } from 'bun:sqlite';

export interface CreatorAccountRow {
  user_id: string;
  stripe_account: string;
  payouts_enabled: 0 | 1;
  details_submitted: 0 | 1;
  created_at: number;
  updated_at: number;
}

export type PayoutStatus = 'pending' | 'paid' | 'failed';

export interface PayoutRow {
  id: string;
  creator_id: string;
  amount_minor: number;
  currency: string;
  status: PayoutStatus;
  method: 'stripe' | 'manual';
  stripe_transfer: string | null;
  failure: string | null;
  note: string | null;
  requested_by: string;
  created_at: number;
  updated_at: number;
}

export function findCreatorAccount(db: Database, userId: string): CreatorAccountRow | null {
  return db
    .query<CreatorAccountRow, [string]>('SELECT * FROM creator_accounts WHERE user_id = ?')
    .get(userId);
}

export function creatorAccountByStripe(db: Database, account: string): CreatorAccountRow | null {
  return db
    .query<CreatorAccountRow, [string]>('SELECT * FROM creator_accounts WHERE stripe_account = ?')
    .get(account);
}

export function insertCreatorAccount(db: Database, userId: string, account: string, now: number): void {
  db.query(
    `INSERT INTO creator_accounts (user_id, stripe_account, created_at, updated_at) VALUES (?, ?, ?, ?)
     ON CONFLICT (user_id) DO NOTHING`,
  ).run(userId, account, now, now);
}

export function updateCreatorAccount(
  db: Database,
  account: string,
  flags: { payouts_enabled: boolean; details_submitted: boolean },
  now: number,
): void {
  db.query(
    'UPDATE creator_accounts SET payouts_enabled = ?, details_submitted = ?, updated_at = ? WHERE stripe_account = ?',
  ).run(flags.payouts_enabled ? 1 : 0, flags.details_submitted ? 1 : 0, now, account);
}

export function insertPayout(db: Database, p: PayoutRow): void {
  db.query(
    `INSERT INTO payouts (id, creator_id, amount_minor, currency, status, method, stripe_transfer, failure, note,
       requested_by, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
  ).run(
    p.id,
    p.creator_id,
    p.amount_minor,
    p.currency,
    p.status,
    p.method,
    p.stripe_transfer,
    p.failure,
    p.note,
    p.requested_by,
    p.created_at,
    p.updated_at,
  );
}

export function findPayout(db: Database, id: string): PayoutRow | null {
  return db.query<PayoutRow, [string]>('SELECT * FROM payouts WHERE id = ?').get(id);
}

export function settlePayout(
  db: Database,
  id: string,
  s: { status: PayoutStatus; stripe_transfer?: string | null; failure?: string | null },
  now: number,
): void {
  db.query(
    `UPDATE payouts SET status = ?, stripe_transfer = COALESCE(?, stripe_transfer), failure = ?, updated_at = ?
     WHERE id = ?`,
  ).run(s.status, s.stripe_transfer ?? null, s.failure ?? null, now, id);
}

export function listPayouts(db: Database, f: { creatorId?: string; limit: number }): PayoutRow[] {
  return f.creatorId
    ? db
        .query<PayoutRow, [string, number]>(
          'SELECT * FROM payouts WHERE creator_id = ? ORDER BY created_at DESC, id DESC LIMIT ?',
        )
        .all(f.creatorId, f.limit)
    : db
        .query<PayoutRow, [number]>('SELECT * FROM payouts ORDER BY created_at DESC, id DESC LIMIT ?')
        .all(f.limit);
}

/** Payouts reserved in the ledger but not settled (a crash between the reservation and Stripe). */
export function pendingPayouts(db: Database, olderThan: number): PayoutRow[] {
  return db
    .query<PayoutRow, [number]>(
      "SELECT * FROM payouts WHERE status = 'pending' AND method = 'stripe' AND created_at < ? ORDER BY created_at",
    )
    .all(olderThan);
}
