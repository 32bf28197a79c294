/** Purchases and applied Stripe events (migration 0023). */
import type { Database } from 'bun:sqlite';

export type PurchaseStatus = 'open' | 'paid' | 'refunded' | 'expired';

export interface PurchaseRow {
  id: string;
  user_id: string;
  listing_id: string;
  version: number;
  creator_id: string;
  amount_minor: number;
  currency: string;
  terms: string;
  status: PurchaseStatus;
  method: 'stripe' | 'manual' | 'credits';
  checkout_session: string | null;
  payment_intent: string | null;
  refunded_minor: number;
  recorded_by: string | null;
  created_at: number;
  updated_at: number;
}

export function insertPurchase(db: Database, p: PurchaseRow): void {
  db.query(
    `INSERT INTO purchases (id, user_id, listing_id, version, creator_id, amount_minor, currency, terms, status, method,
       checkout_session, payment_intent, refunded_minor, recorded_by, created_at, updated_at)
     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
  ).run(
    p.id,
    p.user_id,
    p.listing_id,
    p.version,
    p.creator_id,
    p.amount_minor,
    p.currency,
    p.terms,
    p.status,
    p.method,
    p.checkout_session,
    p.payment_intent,
    p.refunded_minor,
    p.recorded_by,
    p.created_at,
    p.updated_at,
  );
}

export function findPurchase(db: Database, id: string): PurchaseRow | null {
  return db.query<PurchaseRow, [string]>('SELECT * FROM purchases WHERE id = ?').get(id);
}

export function purchaseBySession(db: Database, session: string): PurchaseRow | null {
  return db.query<PurchaseRow, [string]>('SELECT * FROM purchases WHERE checkout_session = ?').get(session);
}

export function purchaseByPaymentIntent(db: Database, pi: string): PurchaseRow | null {
  return db.query<PurchaseRow, [string]>('SELECT * FROM purchases WHERE payment_intent = ?').get(pi);
}

/** The user's paid purchase of a listing, if any. */
export function paidPurchase(db: Database, userId: string, listingId: string): PurchaseRow | null {
  return db
    .query<PurchaseRow, [string, string]>(
      `SELECT * FROM purchases WHERE user_id = ? AND listing_id = ? AND status = 'paid' ORDER BY created_at DESC LIMIT 1`,
    )
    .get(userId, listingId);
}

/** The user's checkout still open for a listing (reused instead of starting another). */
export function openPurchase(db: Database, userId: string, listingId: string): PurchaseRow | null {
  return db
    .query<PurchaseRow, [string, string]>(
      `SELECT * FROM purchases WHERE user_id = ? AND listing_id = ? AND status = 'open' ORDER BY created_at DESC LIMIT 1`,
    )
    .get(userId, listingId);
}

export function updatePurchase(
  db: Database,
  id: string,
  p: Partial<
    Pick<PurchaseRow, 'status' | 'checkout_session' | 'payment_intent' | 'refunded_minor' | 'recorded_by'>
  >,
  now: number,
): void {
  const cols = Object.keys(p) as (keyof typeof p)[];
  if (cols.length === 0) return;
  db.query(`UPDATE purchases SET ${cols.map((k) => `${k} = ?`).join(', ')}, updated_at = ? WHERE id = ?`).run(
    ...cols.map((k) => p[k] ?? null),
    now,
    id,
  );
}

export function listPurchases(db: Database, o: { userId?: string; limit: number }): PurchaseRow[] {
  return db
    .query<PurchaseRow, [string | null, string | null, number]>(
      'SELECT * FROM purchases WHERE (? IS NULL OR user_id = ?) ORDER BY created_at DESC LIMIT ?',
    )
    .all(o.userId ?? null, o.userId ?? null, o.limit);
}

/** Records a Stripe event as applied; false when it already was (a duplicate or a replay). */
export function markStripeEvent(db: Database, id: string, type: string, now: number): boolean {
  return (
    db
      .query('INSERT INTO stripe_events (id, type, received_at) VALUES (?, ?, ?) ON CONFLICT (id) DO NOTHING')
      .run(id, type, now).changes > 0
  );
}

export function stripeEventSeen(db: Database, id: string): boolean {
  return db.query('SELECT 1 FROM stripe_events WHERE id = ?').get(id) !== null;
}

export interface TopupRow {
  id: string;
  user_id: string;
  amount_minor: number;
  currency: string;
  status: 'open' | 'paid' | 'expired';
  checkout_session: string | null;
  payment_intent: string | null;
  created_at: number;
  updated_at: number;
  /** checkout (default) or auto (charged off-session). */
  method?: 'checkout' | 'auto';
}

export function insertTopup(db: Database, t: TopupRow): void {
  db.query(
    `INSERT INTO topups (id, user_id, amount_minor, currency, status, checkout_session, payment_intent, created_at, updated_at, method)
     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
  ).run(
    t.id,
    t.user_id,
    t.amount_minor,
    t.currency,
    t.status,
    t.checkout_session,
    t.payment_intent,
    t.created_at,
    t.updated_at,
    t.method ?? 'checkout',
  );
}

export function findTopup(db: Database, id: string): TopupRow | null {
  return db.query<TopupRow, [string]>('SELECT * FROM topups WHERE id = ?').get(id);
}

export function topupBySession(db: Database, session: string): TopupRow | null {
  return db.query<TopupRow, [string]>('SELECT * FROM topups WHERE checkout_session = ?').get(session);
}

export function setTopupStatus(
  db: Database,
  id: string,
  status: TopupRow['status'],
  paymentIntent: string | null,
  now: number,
): void {
  db.query(
    'UPDATE topups SET status = ?, payment_intent = coalesce(?, payment_intent), updated_at = ? WHERE id = ?',
  ).run(status, paymentIntent, now, id);
}

export function topupsOf(db: Database, userId: string, limit: number): TopupRow[] {
  return db
    .query<TopupRow, [string, number]>(
      'SELECT * FROM topups WHERE user_id = ? ORDER BY created_at DESC LIMIT ?',
    )
    .all(userId, limit);
}
