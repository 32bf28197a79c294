/**
 * Revenue share from one function (issue 13 item 4), and the ledger chains of a sale and of its
 * refunds. A sale's amount splits between the creator (`creatorShare` percent) and the platform
 * (`commission` percent; the two sum to 100: 70/30 in the creator template); the operator's
 * transaction fee (`operatorFee` percent of the sale) comes out of the platform's side, never
 * the creator's. Splits go through dinero.js's `allocate` on BigInt micro-units: the parts
 * always sum to the whole, and a remainder goes unit by unit to the largest share first (the
 * creator's at 70/30; the rest of the sale before the operator's fee). Every sale posts all
 * its legs in one linked chain; a refund, whole or partial, posts the reversed legs of the
 * refunded amount split by the same terms, in one chain.
 */
import { allocate, dinero, toSnapshot } from 'dinero.js/bigint';
import { AppError } from '../shared/errors.ts';
import { accountId, type TransferSpec } from './ledger.ts';

/** Percentages with up to two decimals (basis points are what is split). */
export interface SaleTerms {
  creatorShare: number;
  commission: number;
  operatorFee: number;
}

export interface SaleSplit {
  creator: bigint;
  /** The platform's side after the operator's fee (negative when the fee passes the commission). */
  platform: bigint;
  operator: bigint;
}

const bp = (pct: number, field: string): bigint => {
  const v = Math.round(pct * 100);
  if (!Number.isFinite(pct) || v < 0 || v > 10_000 || Math.abs(v - pct * 100) > 1e-6)
    throw new AppError(
      'billing.terms_invalid',
      `${field}: a percentage from 0 to 100, at most two decimals`,
      422,
      [{ path: `/${field}`, reason: 'a percentage from 0 to 100' }],
    );
  return BigInt(v);
};

const money = (amount: bigint, currency: string) =>
  dinero({ amount, currency: { code: currency.toUpperCase(), base: 10n, exponent: 2n } });
const amountOf = (d: ReturnType<typeof money>) => toSnapshot(d).amount;

/** Splits `amount` (micro-units) by `terms`: creator + platform + operator = amount, always. */
export function splitSale(amount: bigint, currency: string, terms: SaleTerms): SaleSplit {
  if (amount < 0n) throw new AppError('billing.amount_invalid', 'amount: not negative', 422);
  const share = bp(terms.creatorShare, 'creator_share');
  const commission = bp(terms.commission, 'commission');
  const fee = bp(terms.operatorFee, 'operator_fee');
  if (share + commission !== 10_000n)
    throw new AppError('billing.terms_invalid', 'creator_share and commission must sum to 100', 422, [
      { path: '/commission', reason: 'creator_share + commission = 100' },
    ]);
  const m = money(amount, currency);
  const [creator, gross] = allocate(m, [share, commission]).map(amountOf) as [bigint, bigint];
  const [operator] = allocate(m, [fee, 10_000n - fee]).map(amountOf) as [bigint, bigint];
  return { creator, platform: gross - operator, operator };
}

export interface Sale {
  /** The sale's id (its legs' ids derive from it, so posting it again changes nothing). */
  id: string;
  amount: bigint;
  currency: string;
  creatorId: string;
  /** Where the money comes from: the payment processor (a card), or the buyer's credits. */
  source: { kind: 'processor' } | { kind: 'credits'; userId: string };
  terms: SaleTerms;
  /** What was sold (a listing id). */
  ref: string;
}

const sourceAccount = (s: Sale) =>
  s.source.kind === 'credits'
    ? accountId('credits', s.source.userId, s.currency)
    : accountId('processor', '', s.currency);

/** The accounts a sale touches (open them before posting). */
export function saleAccounts(s: Sale) {
  return [
    s.source.kind === 'credits'
      ? { kind: 'credits' as const, owner: s.source.userId, currency: s.currency }
      : { kind: 'processor' as const, currency: s.currency },
    { kind: 'creator' as const, owner: s.creatorId, currency: s.currency },
    { kind: 'platform' as const, currency: s.currency },
    { kind: 'operator' as const, currency: s.currency },
  ];
}

function legs(
  s: Sale,
  split: SaleSplit,
  idOf: (leg: string) => string,
  code: string,
  reverse: boolean,
): TransferSpec[] {
  const src = sourceAccount(s);
  const platform = accountId('platform', '', s.currency);
  const creator = accountId('creator', s.creatorId, s.currency);
  const operator = accountId('operator', '', s.currency);
  const grossPlatform = split.platform + split.operator;
  const t = (leg: string, debit: string, credit: string, amount: bigint): TransferSpec =>
    reverse
      ? { id: idOf(leg), debit: credit, credit: debit, amount, currency: s.currency, code, ref: s.ref }
      : { id: idOf(leg), debit, credit, amount, currency: s.currency, code, ref: s.ref };
  return [
    t('creator', src, creator, split.creator),
    t('commission', src, platform, grossPlatform),
    t('fee', platform, operator, split.operator),
  ];
}

/** A sale's linked chain: source → creator, source → platform, platform → operator. */
export function saleChain(s: Sale): TransferSpec[] {
  return legs(s, splitSale(s.amount, s.currency, s.terms), (leg) => `${s.id}:${leg}`, 'sale', false);
}

/**
 * A refund of `amount` (of the sale's amount) as one chain: every leg reversed by its share of
 * the refund. `refundId` makes it idempotent (one per refund, e.g. Stripe's refund id).
 */
export function refundChain(s: Sale, refundId: string, amount: bigint): TransferSpec[] {
  return legs(
    s,
    splitSale(amount, s.currency, s.terms),
    (leg) => `${s.id}:${refundId}:${leg}`,
    'refund',
    true,
  );
}
