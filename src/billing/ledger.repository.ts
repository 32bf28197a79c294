/**
 * The ledger's SQL (migration 0022): accounts with their four balances, and immutable transfers.
 * Amounts are BigInt micro-units, read with `safeIntegers` so they stay exact past 2^53.
 */
import type { Database } from 'bun:sqlite';

export type AccountKind =
  | 'end_user'
  | 'credits'
  | 'creator'
  | 'platform'
  | 'operator'
  | 'ai_cost'
  | 'processor'
  | 'tax'
  | 'refunds';
export type AccountFloor = 'none' | 'debits_within_credits' | 'credits_within_debits';
export type TransferFlags = 'posted' | 'pending' | 'post' | 'void';

export interface AccountRow {
  /** The account's number: what transfer rows refer to. */
  n: bigint;
  id: string;
  kind: AccountKind;
  owner: string;
  currency: string;
  floor: AccountFloor;
  debits_pending: bigint;
  debits_posted: bigint;
  credits_pending: bigint;
  credits_posted: bigint;
  created_at: bigint;
}

/** A transfer as readers see it: its accounts by id (the ledger_postings view). */
export interface TransferRow {
  seq: bigint;
  id: string;
  debit: string;
  credit: string;
  amount: bigint;
  currency: string;
  flags: TransferFlags;
  pending_id: string | null;
  timeout_at: bigint | null;
  code: string;
  ref: string | null;
  chain: string | null;
  at: bigint;
}

export interface NewAccount {
  id: string;
  kind: AccountKind;
  owner: string;
  currency: string;
  floor: AccountFloor;
}

export function insertAccount(db: Database, a: NewAccount, now: number): boolean {
  return (
    db
      .query(
        `INSERT INTO ledger_accounts (id, kind, owner, currency, floor, created_at) VALUES (?, ?, ?, ?, ?, ?)
         ON CONFLICT (id) DO NOTHING`,
      )
      .run(a.id, a.kind, a.owner, a.currency, a.floor, now).changes > 0
  );
}

/**
 * The hot path's statements, prepared once per connection (`db.query` looks its cache up by the
 * SQL text on every call: measurable at tens of thousands of transfers a second).
 */
const prepareHot = (db: Database) => ({
  account: db.query<AccountRow, [string]>('SELECT * FROM ledger_accounts WHERE id = ?').safeIntegers(true),
  accountByN: db.query<AccountRow, [bigint]>('SELECT * FROM ledger_accounts WHERE n = ?').safeIntegers(true),
  transfer: db.query<RawTransfer, [string]>('SELECT * FROM ledger_transfers WHERE id = ?').safeIntegers(true),
  resolution: db
    .query<{ id: string }, [string]>('SELECT id FROM ledger_transfers WHERE pending_id = ? LIMIT 1')
    .safeIntegers(true),
  insert: db.query(
    `INSERT INTO ledger_transfers (id, debit, credit, amount, currency, flags, pending_id, timeout_at, code, ref, chain, at)
     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
  ),
  balances: db.query(
    `UPDATE ledger_accounts SET debits_pending = ?, debits_posted = ?, credits_pending = ?, credits_posted = ?
     WHERE id = ?`,
  ),
});
const hotCache = new WeakMap<Database, ReturnType<typeof prepareHot>>();
function hot(db: Database): ReturnType<typeof prepareHot> {
  let h = hotCache.get(db);
  if (!h) {
    h = prepareHot(db);
    hotCache.set(db, h);
  }
  return h;
}

export function findAccount(db: Database, id: string): AccountRow | null {
  return hot(db).account.get(id);
}

export function listAccounts(db: Database, o: { kind?: AccountKind; owner?: string } = {}): AccountRow[] {
  return db
    .query<AccountRow, [string | null, string | null, string | null, string | null]>(
      `SELECT * FROM ledger_accounts WHERE (? IS NULL OR kind = ?) AND (? IS NULL OR owner = ?) ORDER BY id`,
    )
    .safeIntegers(true)
    .all(o.kind ?? null, o.kind ?? null, o.owner ?? null, o.owner ?? null);
}

/** Writes an account's four balances (the engine keeps them in memory during a batch). */
export function saveBalances(db: Database, a: AccountRow): void {
  hot(db).balances.run(a.debits_pending, a.debits_posted, a.credits_pending, a.credits_posted, a.id);
}

export function findAccountByN(db: Database, n: bigint): AccountRow | null {
  return hot(db).accountByN.get(n);
}

/** A transfer row as stored: its accounts by number. */
export interface RawTransfer extends Omit<TransferRow, 'debit' | 'credit'> {
  debit: bigint;
  credit: bigint;
}

/** A transfer as stored (accounts by number), for the engine's checks. */
export function findRawTransfer(db: Database, id: string): RawTransfer | null {
  return hot(db).transfer.get(id);
}

/** A transfer with its accounts by id. */
export function findTransfer(db: Database, id: string): TransferRow | null {
  return db
    .query<TransferRow, [string]>('SELECT * FROM ledger_postings WHERE id = ?')
    .safeIntegers(true)
    .get(id);
}

/** The id of the post or void that resolved a pending transfer, if any. */
export function resolutionOf(db: Database, pendingId: string): string | null {
  return hot(db).resolution.get(pendingId)?.id ?? null;
}

export type NewTransfer = Omit<RawTransfer, 'seq'>;

export function insertTransfer(db: Database, t: NewTransfer): void {
  hot(db).insert.run(
    t.id,
    t.debit,
    t.credit,
    t.amount,
    t.currency,
    t.flags,
    t.pending_id,
    t.timeout_at,
    t.code,
    t.ref,
    t.chain,
    t.at,
  );
}

/** Transfers touching an account, oldest first (`limit` newest when given). */
export function transfersOf(db: Database, accountId: string, limit = 1000): TransferRow[] {
  return db
    .query<TransferRow, [string, string, number]>(
      `SELECT * FROM (SELECT * FROM ledger_postings WHERE debit = ? OR credit = ? ORDER BY seq DESC LIMIT ?)
       ORDER BY seq`,
    )
    .safeIntegers(true)
    .all(accountId, accountId, limit);
}

/** Transfers by their `ref` (what they are about), oldest first. */
export function transfersByRef(db: Database, ref: string): TransferRow[] {
  return db
    .query<TransferRow, [string]>('SELECT * FROM ledger_postings WHERE ref = ? ORDER BY seq')
    .safeIntegers(true)
    .all(ref);
}

export interface Balances {
  debits_pending: bigint;
  debits_posted: bigint;
  credits_pending: bigint;
  credits_posted: bigint;
}

/**
 * An account's balances as of `at` (epoch ms, inclusive), from its transfers alone: posted sides
 * sum the one-step and second-phase transfers; pending sides sum the pending transfers not yet
 * posted or voided by then.
 */
export function balancesAt(db: Database, accountId: string, at: number): Balances {
  const n = hot(db).account.get(accountId)?.n ?? -1n;
  const side = (col: 'debit' | 'credit') =>
    db
      .query<{ posted: bigint | null; pending: bigint | null }, [bigint, number, number, bigint, number]>(
        `SELECT
           (SELECT sum(amount) FROM ledger_transfers WHERE ${col} = ? AND at <= ? AND flags IN ('posted', 'post')) AS posted,
           (SELECT sum(p.amount) FROM ledger_transfers p WHERE p.flags = 'pending' AND p.at <= ? AND p.${col} = ?
              AND NOT EXISTS (SELECT 1 FROM ledger_transfers r WHERE r.pending_id = p.id AND r.at <= ?)) AS pending`,
      )
      .safeIntegers(true)
      .get(n, at, at, n, at) ?? { posted: null, pending: null };
  const d = side('debit');
  const c = side('credit');
  return {
    debits_pending: d.pending ?? 0n,
    debits_posted: d.posted ?? 0n,
    credits_pending: c.pending ?? 0n,
    credits_posted: c.posted ?? 0n,
  };
}

/** Pending transfers whose timeout has passed and that nothing resolved. */
export function expiredPending(db: Database, now: number, limit: number): RawTransfer[] {
  return db
    .query<RawTransfer, [number, number]>(
      `SELECT p.* FROM ledger_transfers p WHERE p.flags = 'pending' AND p.timeout_at IS NOT NULL AND p.timeout_at <= ?
         AND NOT EXISTS (SELECT 1 FROM ledger_transfers r WHERE r.pending_id = p.id)
       ORDER BY p.seq LIMIT ?`,
    )
    .safeIntegers(true)
    .all(now, limit);
}

/** A linked chain's savepoint inside a batch's transaction: begun, committed or rolled back. */
export function chainSavepoint(db: Database, step: 'begin' | 'commit' | 'rollback'): void {
  if (step === 'begin') db.exec('SAVEPOINT ledger_chain');
  else if (step === 'commit') db.exec('RELEASE ledger_chain');
  else {
    db.exec('ROLLBACK TO ledger_chain');
    db.exec('RELEASE ledger_chain');
  }
}

/**
 * What an account was credited (posted, one-step or second phase) with `code` since `since`
 * (epoch ms, inclusive): the platform's AI cost this month is `ai_cost`'s `usage.cost` credits.
 * Reads the (credit, at) index's range only.
 */
export function creditedSince(db: Database, accountId: string, code: string, since: number): bigint {
  const n = hot(db).account.get(accountId)?.n;
  if (n === undefined) return 0n;
  return (
    db
      .query<{ s: bigint | null }, [bigint, number, string]>(
        `SELECT sum(amount) AS s FROM ledger_transfers WHERE credit = ? AND at >= ? AND code = ? AND flags IN ('posted', 'post')`,
      )
      .safeIntegers(true)
      .get(n, since, code)?.s ?? 0n
  );
}
