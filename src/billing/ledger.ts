/**
 * The platform's double-entry ledger (issue 13 item 3), in the manner of TigerBeetle: accounts
 * keep four balances (debits and credits, pending and posted); transfers move an amount from a
 * debit account to a credit account of the same currency and are never changed (a correction is
 * a new transfer). A transfer is one-step (`posted`), or two-phase: `pending` reserves the
 * amount on both sides, then a `post` (of up to the pending amount: the rest is released) or a
 * `void` resolves it; a pending transfer with a timeout is voided by `expirePending` once the
 * timeout has passed, and can no longer be posted. A chain of transfers is linked: all commit or
 * none does. Ids are the callers' idempotency keys: the same transfer again is `exists` and
 * changes nothing; another transfer under a used id is refused.
 *
 * Amounts are BigInt micro-units (millionths of the currency's minor unit; ARCHITECTURE.md,
 * "Money"). Floors: an account whose floor is `debits_within_credits` (a user's prepaid
 * credits) never has debits (posted plus pending) above its posted credits, and the other way
 * round for `credits_within_debits`; accounts with no floor may go either way (the platform's
 * own account owes the operator when fees pass commissions).
 *
 * `postBatch` commits many chains in one SQLite transaction, each chain all-or-nothing, with
 * the touched accounts held in memory and written once: the batched throughput the bench
 * measures (`npm run bench -- ledger`).
 */
import type { Database } from 'bun:sqlite';
import { AppError } from '../shared/errors.ts';
import {
  type AccountFloor,
  type AccountKind,
  type AccountRow,
  chainSavepoint,
  expiredPending,
  findAccount,
  findAccountByN,
  findRawTransfer,
  insertAccount,
  insertTransfer,
  type NewTransfer,
  type RawTransfer,
  resolutionOf,
  saveBalances,
  type TransferFlags,
  type TransferRow,
} from './ledger.repository.ts';

export type { AccountKind, AccountRow, TransferRow } from './ledger.repository.ts';

/** Which account a kind, owner and currency name (one account each). */
export const accountId = (kind: AccountKind, owner: string, currency: string) =>
  `${kind}:${owner}:${currency.toLowerCase()}`;

/** The floor each kind gets unless told otherwise: prepaid credits cannot be overspent. */
const DEFAULT_FLOOR: Record<AccountKind, AccountFloor> = {
  end_user: 'none',
  credits: 'debits_within_credits',
  creator: 'none',
  platform: 'none',
  operator: 'none',
  ai_cost: 'none',
  processor: 'none',
  tax: 'none',
  refunds: 'none',
};

/** Makes the account if it does not exist; answers its id. */
export function openAccount(
  db: Database,
  a: { kind: AccountKind; owner?: string; currency: string; floor?: AccountFloor },
  now: number,
): string {
  const id = accountId(a.kind, a.owner ?? '', a.currency);
  // Most calls find it: a read is cheaper than an insert that conflicts.
  if (findAccount(db, id)) return id;
  insertAccount(
    db,
    {
      id,
      kind: a.kind,
      owner: a.owner ?? '',
      currency: a.currency.toLowerCase(),
      floor: a.floor ?? DEFAULT_FLOOR[a.kind],
    },
    now,
  );
  return id;
}

/** What a caller asks for. `amount` of a `post` may be left out: the whole pending amount. */
export interface TransferSpec {
  id: string;
  debit?: string;
  credit?: string;
  amount?: bigint;
  currency?: string;
  flags?: TransferFlags;
  pendingId?: string;
  /** Pending only: voided by expiry after this instant (epoch ms). */
  timeoutAt?: number;
  code: string;
  ref?: string;
}

export type LedgerErrorCode =
  | 'ledger.id_invalid'
  | 'ledger.amount_invalid'
  | 'ledger.accounts_same'
  | 'ledger.account_missing'
  | 'ledger.currency_mismatch'
  | 'ledger.exceeds_credits'
  | 'ledger.exceeds_debits'
  | 'ledger.pending_missing'
  | 'ledger.pending_resolved'
  | 'ledger.pending_expired'
  | 'ledger.exceeds_pending'
  | 'ledger.exists_different'
  | 'ledger.linked_failed';

/** Per transfer: committed, already there (the same), or why not. */
export type TransferResult = 'ok' | 'exists' | LedgerErrorCode;

const MESSAGES: Record<LedgerErrorCode, string> = {
  'ledger.id_invalid': 'id: a transfer needs an id of 1–200 characters (its idempotency key)',
  'ledger.amount_invalid': 'amount: a whole, non-negative number of micro-units',
  'ledger.accounts_same': 'debit and credit: a transfer needs two different accounts',
  'ledger.account_missing': 'debit or credit: no such account',
  'ledger.currency_mismatch': 'currency: both accounts and the transfer must have the same currency',
  'ledger.exceeds_credits': "amount: the debit account's debits would exceed its credits",
  'ledger.exceeds_debits': "amount: the credit account's credits would exceed its debits",
  'ledger.pending_missing': 'pending_id: no such pending transfer',
  'ledger.pending_resolved': 'pending_id: the pending transfer was already posted or voided',
  'ledger.pending_expired': 'pending_id: the pending transfer has timed out',
  'ledger.exceeds_pending': 'amount: more than the pending transfer reserved',
  'ledger.exists_different': 'id: a different transfer already has this id',
  'ledger.linked_failed': 'another transfer of the chain failed',
};

/** The chain's error as an AppError (409: the ledger's state refuses it; 422: the request is wrong). */
export function ledgerError(code: LedgerErrorCode, index: number): AppError {
  const state = new Set<LedgerErrorCode>([
    'ledger.exceeds_credits',
    'ledger.exceeds_debits',
    'ledger.pending_resolved',
    'ledger.pending_expired',
    'ledger.exists_different',
  ]);
  return new AppError(code, `transfer ${index}: ${MESSAGES[code]}`, state.has(code) ? 409 : 422, [
    { path: `/${index}`, reason: MESSAGES[code] },
  ]);
}

class ChainFailed extends Error {
  constructor(
    readonly index: number,
    readonly code: LedgerErrorCode,
  ) {
    super(code);
  }
}

/** The batch's working set: accounts read once, changed in memory, written at commit. */
class Batch {
  readonly accounts = new Map<string, AccountRow>();
  readonly byN = new Map<bigint, AccountRow>();
  readonly dirty = new Set<AccountRow>();
  /** Pending transfers resolved in this batch (a second resolution of one is refused). */
  readonly resolved = new Set<string>();
  constructor(
    readonly db: Database,
    readonly now: number,
  ) {}

  #keep(row: AccountRow | null): AccountRow | null {
    if (row) {
      this.accounts.set(row.id, row);
      this.byN.set(row.n, row);
    }
    return row;
  }

  account(id: string): AccountRow | null {
    return this.accounts.get(id) ?? this.#keep(findAccount(this.db, id));
  }

  accountByN(n: bigint): AccountRow | null {
    return this.byN.get(n) ?? this.#keep(findAccountByN(this.db, n));
  }
}

type Undo = () => void;

const same = (t: RawTransfer, n: NewTransfer) =>
  t.debit === n.debit &&
  t.credit === n.credit &&
  t.amount === n.amount &&
  t.currency === n.currency &&
  t.flags === n.flags &&
  t.pending_id === n.pending_id &&
  t.code === n.code &&
  t.ref === n.ref;

/** Applies one transfer to the batch's balances and writes its row, or throws ChainFailed. */
function apply(
  b: Batch,
  s: TransferSpec,
  index: number,
  chain: string | null,
  undo: Undo[] | null,
): 'ok' | 'exists' {
  const fail = (code: LedgerErrorCode): never => {
    throw new ChainFailed(index, code);
  };
  if (typeof s.id !== 'string' || s.id.length === 0 || s.id.length > 200) fail('ledger.id_invalid');
  const flags = s.flags ?? 'posted';
  let row: NewTransfer;
  let pending: RawTransfer | null = null;
  let dr: AccountRow | null;
  let cr: AccountRow | null;
  if (flags === 'post' || flags === 'void') {
    pending = s.pendingId ? findRawTransfer(b.db, s.pendingId) : null;
    if (pending?.flags !== 'pending') return fail('ledger.pending_missing');
    const amount = flags === 'void' ? pending.amount : (s.amount ?? pending.amount);
    if (typeof amount !== 'bigint' || amount < 0n) fail('ledger.amount_invalid');
    dr = b.accountByN(pending.debit);
    cr = b.accountByN(pending.credit);
    row = {
      id: s.id,
      debit: pending.debit,
      credit: pending.credit,
      amount,
      currency: pending.currency,
      flags,
      pending_id: pending.id,
      timeout_at: null,
      code: s.code,
      ref: s.ref ?? pending.ref,
      chain,
      at: BigInt(b.now),
    };
  } else {
    if (typeof s.amount !== 'bigint' || s.amount < 0n) fail('ledger.amount_invalid');
    if (s.debit === s.credit) fail('ledger.accounts_same');
    dr = b.account(s.debit ?? '');
    cr = b.account(s.credit ?? '');
    if (!dr || !cr) return fail('ledger.account_missing');
    row = {
      id: s.id,
      debit: dr.n,
      credit: cr.n,
      amount: s.amount!,
      currency: (s.currency ?? '').toLowerCase(),
      flags,
      pending_id: null,
      timeout_at: flags === 'pending' && s.timeoutAt !== undefined ? BigInt(s.timeoutAt) : null,
      code: s.code,
      ref: s.ref ?? null,
      chain,
      at: BigInt(b.now),
    };
  }
  if (!dr || !cr) return fail('ledger.account_missing');
  const existing = findRawTransfer(b.db, row.id);
  if (existing) {
    if (same(existing, row)) return 'exists';
    fail('ledger.exists_different');
  }
  if (dr.currency !== row.currency || cr.currency !== row.currency) fail('ledger.currency_mismatch');

  // The new balances are computed and checked first, then assigned: a refused transfer changes
  // nothing, and only a linked chain needs an undo (of what its earlier transfers assigned).
  let ddp = dr.debits_pending;
  let dd = dr.debits_posted;
  let ccp = cr.credits_pending;
  let cc = cr.credits_posted;
  if (pending) {
    if (b.resolved.has(pending.id) || resolutionOf(b.db, pending.id)) fail('ledger.pending_resolved');
    if (flags === 'post' && pending.timeout_at !== null && pending.timeout_at <= BigInt(b.now))
      fail('ledger.pending_expired');
    if (row.amount > pending.amount) fail('ledger.exceeds_pending');
    ddp -= pending.amount;
    ccp -= pending.amount;
    if (flags === 'post') {
      dd += row.amount;
      cc += row.amount;
    }
  } else if (flags === 'pending') {
    ddp += row.amount;
    ccp += row.amount;
  } else {
    dd += row.amount;
    cc += row.amount;
  }
  if (dr.floor === 'debits_within_credits' && dd + ddp > dr.credits_posted) fail('ledger.exceeds_credits');
  if (cr.floor === 'credits_within_debits' && cc + ccp > cr.debits_posted) fail('ledger.exceeds_debits');
  if (undo) {
    const [a, b2, c, d] = [dr.debits_pending, dr.debits_posted, cr.credits_pending, cr.credits_posted];
    undo.push(() => {
      dr.debits_pending = a;
      dr.debits_posted = b2;
      cr.credits_pending = c;
      cr.credits_posted = d;
    });
    if (pending) {
      const id = pending.id;
      undo.push(() => b.resolved.delete(id));
    }
  }
  dr.debits_pending = ddp;
  dr.debits_posted = dd;
  cr.credits_pending = ccp;
  cr.credits_posted = cc;
  if (pending) b.resolved.add(pending.id);
  b.dirty.add(dr);
  b.dirty.add(cr);
  insertTransfer(b.db, row);
  return 'ok';
}

/**
 * Commits chains of linked transfers in one SQLite transaction: each chain all or nothing (its
 * results: every transfer `ok` or `exists`, or the failing one's code and `ledger.linked_failed`
 * for the others). A chain that failed leaves no row and no balance change.
 */
export function postBatch(
  db: Database,
  chains: readonly (readonly TransferSpec[])[],
  now: number,
): TransferResult[][] {
  const b = new Batch(db, now);
  return db.transaction(() => {
    const results = chains.map((chain) => {
      // A chain of one writes its row and balances last, after every check: it needs no
      // savepoint and no undo.
      const linked = chain.length > 1;
      const undo: Undo[] | null = linked ? [] : null;
      const head = linked ? (chain[0]?.id ?? null) : null;
      if (linked) chainSavepoint(db, 'begin');
      try {
        const r = chain.map((s, i) => apply(b, s, i, head, undo));
        if (linked) chainSavepoint(db, 'commit');
        return r as TransferResult[];
      } catch (e) {
        if (linked) chainSavepoint(db, 'rollback');
        if (undo) for (const u of undo.reverse()) u();
        if (!(e instanceof ChainFailed)) throw e;
        return chain.map((_, i) => (i === e.index ? e.code : 'ledger.linked_failed'));
      }
    });
    for (const a of b.dirty) saveBalances(db, a);
    return results;
  })();
}

/** One linked chain; throws the failing transfer's error (nothing written). */
export function post(db: Database, chain: readonly TransferSpec[], now: number): ('ok' | 'exists')[] {
  const r = postBatch(db, [chain], now)[0]!;
  const bad = r.findIndex((x) => x !== 'ok' && x !== 'exists');
  if (bad >= 0) throw ledgerError(r[bad] as LedgerErrorCode, bad);
  return r as ('ok' | 'exists')[];
}

/**
 * Voids the pending transfers whose timeout has passed (a hold for a job that never reported).
 * Returns how many were voided.
 */
export function expirePending(db: Database, now: number, limit = 1000): number {
  const due = expiredPending(db, now, limit);
  const r = postBatch(
    db,
    due.map((p) => [{ id: `${p.id}:expired`, flags: 'void' as const, pendingId: p.id, code: 'expired' }]),
    now,
  );
  return r.filter((x) => x[0] === 'ok').length;
}

/**
 * A correction: the transfer `id` reversed (credit and debit swapped), in part when `amount` is
 * less. The original stays as it was.
 */
export function reversal(
  original: TransferRow,
  o: { id: string; code: string; amount?: bigint },
): TransferSpec {
  return {
    id: o.id,
    debit: original.credit,
    credit: original.debit,
    amount: o.amount ?? original.amount,
    currency: original.currency,
    code: o.code,
    ref: original.ref ?? undefined,
  };
}

/** An account's balance seen from its normal side: credits minus debits (posted), and pending. */
export function netCredit(a: Pick<AccountRow, 'credits_posted' | 'debits_posted'>): bigint {
  return a.credits_posted - a.debits_posted;
}
