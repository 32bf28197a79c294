/** Users' subscriptions to the platform's tiers, their team members and paid invoices (migration 0024). */
import type { Database } from 'bun:sqlite';

export type SubscriptionStatus = 'trialing' | 'active' | 'past_due' | 'canceled' | 'incomplete';

export interface SubscriptionRow {
  user_id: string;
  tier_id: string;
  status: SubscriptionStatus;
  method: 'stripe' | 'manual';
  seats: number;
  current_period_start: number | null;
  current_period_end: number | null;
  cancel_at_period_end: number;
  stripe_customer: string | null;
  stripe_subscription: string | null;
  checkout_session: string | null;
  past_due_since: number | null;
  trial_end: number | null;
  set_by: string | null;
  created_at: number;
  updated_at: number;
}

const COLUMNS = [
  'user_id',
  'tier_id',
  'status',
  'method',
  'seats',
  'current_period_start',
  'current_period_end',
  'cancel_at_period_end',
  'stripe_customer',
  'stripe_subscription',
  'checkout_session',
  'past_due_since',
  'trial_end',
  'set_by',
  'created_at',
  'updated_at',
] as const satisfies readonly (keyof SubscriptionRow)[];

/** Writes the user's row (the whole of it). */
export function saveSubscription(db: Database, r: SubscriptionRow): void {
  db.query(
    `INSERT INTO subscriptions (${COLUMNS.join(', ')}) VALUES (${COLUMNS.map(() => '?').join(', ')})
     ON CONFLICT (user_id) DO UPDATE SET ${COLUMNS.filter((k) => k !== 'user_id' && k !== 'created_at')
       .map((k) => `${k} = excluded.${k}`)
       .join(', ')}`,
  ).run(...COLUMNS.map((k) => r[k]));
}

export function subscriptionOf(db: Database, userId: string): SubscriptionRow | null {
  return db.query<SubscriptionRow, [string]>('SELECT * FROM subscriptions WHERE user_id = ?').get(userId);
}

export function subscriptionByStripeId(db: Database, id: string): SubscriptionRow | null {
  return db
    .query<SubscriptionRow, [string]>('SELECT * FROM subscriptions WHERE stripe_subscription = ?')
    .get(id);
}

export function subscriptionBySession(db: Database, session: string): SubscriptionRow | null {
  return db
    .query<SubscriptionRow, [string]>('SELECT * FROM subscriptions WHERE checkout_session = ?')
    .get(session);
}

export function listSubscriptions(db: Database, limit: number): SubscriptionRow[] {
  return db
    .query<SubscriptionRow, [number]>('SELECT * FROM subscriptions ORDER BY updated_at DESC LIMIT ?')
    .all(limit);
}

/** The owner of the team subscription `userId` is a member of, if any. */
export function teamOwnerOf(db: Database, userId: string): string | null {
  return (
    db
      .query<{ o: string }, [string]>('SELECT owner_id AS o FROM subscription_members WHERE user_id = ?')
      .get(userId)?.o ?? null
  );
}

export function teamMembers(db: Database, ownerId: string): { user_id: string; added_at: number }[] {
  return db
    .query<{ user_id: string; added_at: number }, [string]>(
      'SELECT user_id, added_at FROM subscription_members WHERE owner_id = ? ORDER BY added_at',
    )
    .all(ownerId);
}

export function addTeamMember(db: Database, ownerId: string, userId: string, now: number): void {
  db.query('INSERT INTO subscription_members (owner_id, user_id, added_at) VALUES (?, ?, ?)').run(
    ownerId,
    userId,
    now,
  );
}

export function removeTeamMember(db: Database, ownerId: string, userId: string): boolean {
  return (
    db.query('DELETE FROM subscription_members WHERE owner_id = ? AND user_id = ?').run(ownerId, userId)
      .changes > 0
  );
}

export interface SubscriptionInvoiceRow {
  invoice_id: string;
  user_id: string;
  tier_id: string;
  amount_minor: number;
  currency: string;
  posted_at: number;
  payment_intent: string | null;
  fee_percent: number;
  refunded_minor?: number;
}

/** Records a paid invoice as posted; false when it already was. */
export function markInvoicePosted(db: Database, r: SubscriptionInvoiceRow): boolean {
  return (
    db
      .query(
        `INSERT INTO subscription_invoices (invoice_id, user_id, tier_id, amount_minor, currency, posted_at,
           payment_intent, fee_percent)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (invoice_id) DO NOTHING`,
      )
      .run(
        r.invoice_id,
        r.user_id,
        r.tier_id,
        r.amount_minor,
        r.currency,
        r.posted_at,
        r.payment_intent,
        r.fee_percent,
      ).changes > 0
  );
}

export function subscriptionInvoiceByPaymentIntent(db: Database, pi: string): SubscriptionInvoiceRow | null {
  return db
    .query<SubscriptionInvoiceRow, [string]>('SELECT * FROM subscription_invoices WHERE payment_intent = ?')
    .get(pi);
}

export function findSubscriptionInvoice(db: Database, id: string): SubscriptionInvoiceRow | null {
  return db
    .query<SubscriptionInvoiceRow, [string]>('SELECT * FROM subscription_invoices WHERE invoice_id = ?')
    .get(id);
}

export function setInvoiceRefunded(db: Database, id: string, refundedMinor: number): void {
  db.query('UPDATE subscription_invoices SET refunded_minor = ? WHERE invoice_id = ?').run(refundedMinor, id);
}

export function invoicesOf(db: Database, userId: string, limit: number): SubscriptionInvoiceRow[] {
  return db
    .query<SubscriptionInvoiceRow, [string, number]>(
      'SELECT * FROM subscription_invoices WHERE user_id = ? ORDER BY posted_at DESC LIMIT ?',
    )
    .all(userId, limit);
}

/** How many agents a user owns (the tier's `agents` limit). */
export function agentsOwnedBy(db: Database, userId: string): number {
  return db.query<{ n: number }, [string]>('SELECT count(*) AS n FROM agents WHERE owner_id = ?').get(userId)!
    .n;
}
