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

/** Each creator account's net (credits less debits, posted) in `currency`, largest first. */
export function creatorTotals(db: Database, currency: string): { owner: string; net: bigint }[] {
  return db
    .query<{ owner: string; net: bigint }, [string]>(
      `SELECT owner, credits_posted - debits_posted AS net FROM ledger_accounts
       WHERE kind = 'creator' AND currency = ? ORDER BY net DESC, owner`,
    )
    .safeIntegers(true)
    .all(currency);
}
