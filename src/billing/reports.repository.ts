/**
 * Reports read from the ledger (issue 13, "Reports"): sums of posted transfers by account and
 * code, exact (BigInt). Two-phase transfers count once posted.
 */
import type { Database } from 'bun:sqlite';

export interface CodeSum {
  code: string;
  credits: bigint;
  debits: bigint;
  count: number;
}

/** Posted credits and debits of one account (by id), per transfer code. */
export function sumsByCode(db: Database, accountId: string): CodeSum[] {
  return db
    .query<CodeSum, [string]>(
      `SELECT t.code AS code,
              coalesce(sum(CASE WHEN t.credit = a.n THEN t.amount END), 0) AS credits,
              coalesce(sum(CASE WHEN t.debit = a.n THEN t.amount END), 0) AS debits,
              count(*) AS count
       FROM ledger_accounts a JOIN ledger_transfers t ON (t.credit = a.n OR t.debit = a.n)
       WHERE a.id = ? AND t.flags IN ('posted', 'post')
       GROUP BY t.code ORDER BY t.code`,
    )
    .safeIntegers(true)
    .all(accountId)
    .map((r) => ({ ...r, count: Number(r.count) }));
}

export interface RefSum {
  ref: string;
  earned: bigint;
  sales: number;
  refunds: number;
}

/** What an account earned per `ref` (a listing) from sales and refunds. */
export function earningsByRef(db: Database, accountId: string): RefSum[] {
  return db
    .query<RefSum, [string]>(
      `SELECT t.ref AS ref,
              coalesce(sum(CASE WHEN t.credit = a.n THEN t.amount ELSE -t.amount END), 0) AS earned,
              sum(t.code = 'sale') AS sales, sum(t.code = 'refund') AS refunds
       FROM ledger_accounts a JOIN ledger_transfers t ON (t.credit = a.n OR t.debit = a.n)
       WHERE a.id = ? AND t.flags IN ('posted', 'post') AND t.code IN ('sale', 'refund') AND t.ref IS NOT NULL
       GROUP BY t.ref ORDER BY earned DESC`,
    )
    .safeIntegers(true)
    .all(accountId)
    .map((r) => ({ ...r, sales: Number(r.sales), refunds: Number(r.refunds) }));
}

/**
 * Each creator's earnings (sales less refunds, posted) in `currency`, largest first; payouts are
 * not subtracted (they move earnings out, they do not change what was earned).
 */
export function creatorTotals(db: Database, currency: string): { owner: string; net: bigint }[] {
  return db
    .query<{ owner: string; net: bigint }, [string]>(
      `SELECT a.owner AS owner,
              coalesce(sum(CASE WHEN t.credit = a.n THEN t.amount ELSE -t.amount END), 0) AS net
       FROM ledger_accounts a JOIN ledger_transfers t ON (t.credit = a.n OR t.debit = a.n)
       WHERE a.kind = 'creator' AND a.currency = ? AND t.flags IN ('posted', 'post') AND t.code IN ('sale', 'refund')
       GROUP BY a.owner ORDER BY net DESC, a.owner`,
    )
    .safeIntegers(true)
    .all(currency);
}

export interface MonthFlow {
  month: string;
  code: string;
  debit_kind: string;
  credit_kind: string;
  amount: bigint;
  count: number;
}

/**
 * Posted transfers in `currency` since `since` (epoch ms), summed by UTC month, code and the
 * kinds of the two accounts: what the revenue charts are drawn from.
 */
export function monthlyFlows(db: Database, currency: string, since: number): MonthFlow[] {
  return db
    .query<MonthFlow, [string, number]>(
      `SELECT strftime('%Y-%m', t.at / 1000, 'unixepoch') AS month, t.code AS code,
              d.kind AS debit_kind, c.kind AS credit_kind, sum(t.amount) AS amount, count(*) AS count
       FROM ledger_transfers t
       JOIN ledger_accounts d ON d.n = t.debit JOIN ledger_accounts c ON c.n = t.credit
       WHERE t.currency = ? AND t.at >= ? AND t.flags IN ('posted', 'post')
       GROUP BY month, t.code, d.kind, c.kind ORDER BY month`,
    )
    .safeIntegers(true)
    .all(currency, since)
    .map((r) => ({ ...r, count: Number(r.count) }));
}

/**
 * How many sales (code 'sale', the creator's leg) or refunds (code 'refund', the creator's leg
 * reversed) were posted in `currency`: one leg of each chain touches a creator.
 */
export function creatorLegs(db: Database, code: 'sale' | 'refund', currency: string): number {
  const side = code === 'sale' ? 't.credit' : 't.debit';
  return (
    db
      .query<{ n: number }, [string, string]>(
        `SELECT count(*) AS n FROM ledger_transfers t JOIN ledger_accounts a ON a.n = ${side}
         WHERE t.code = ? AND a.kind = 'creator' AND t.currency = ? AND t.flags IN ('posted', 'post')`,
      )
      .get(code, currency)?.n ?? 0
  );
}

export interface TierCount {
  tier_id: string;
  status: string;
  method: string;
  subscriptions: number;
  seats: number;
}

/** Subscriptions that count now (trialing, active, past due), by tier, status and method. */
export function liveSubscriptions(db: Database): TierCount[] {
  return db
    .query<TierCount, []>(
      `SELECT tier_id, status, method, count(*) AS subscriptions, sum(seats) AS seats FROM subscriptions
       WHERE status IN ('trialing', 'active', 'past_due') GROUP BY tier_id, status, method ORDER BY tier_id`,
    )
    .all();
}

/**
 * For churn over [since, now): paid subscriptions that were live at `since` (made before it,
 * and not canceled before it), and those of them canceled since. A subscription's status is
 * its latest (subscriptions keep one row per user: a canceled one is updated when canceled).
 */
export function churnCounts(db: Database, since: number): { at_start: number; canceled: number } {
  return (
    db
      .query<{ at_start: number; canceled: number }, [number, number]>(
        `SELECT count(*) AS at_start,
                coalesce(sum(CASE WHEN status = 'canceled' THEN 1 ELSE 0 END), 0) AS canceled
         FROM subscriptions
         WHERE method = 'stripe' AND status != 'incomplete' AND created_at < ?
           AND (status != 'canceled' OR updated_at >= ?)`,
      )
      .get(since, since) ?? { at_start: 0, canceled: 0 }
  );
}
