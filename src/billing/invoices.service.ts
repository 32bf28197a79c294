/**
 * Invoices (issue 13 item 5): once a calendar month (UTC) has ended, each end user with billable
 * activity in it gets an invoice from the platform, and the platform gets the operator's bill,
 * per currency. Lines come from the ledger and the purchases and top-ups tables:
 *
 * - user: AI usage (`usage` transfers debiting `end_user:<uid>`), subscriptions (`subscription`,
 *   ref the tier) and any other code debiting `end_user:<uid>` (labelled by its code; a `payment`
 *   into it is a payment, not a charge), marketplace purchases (their sale's time), refunds
 *   (negative lines: what went back to the card or the credits), top-ups (not taxed: prepaid
 *   credits are taxed when they buy something). A purchase paid with credits is "credits
 *   applied"; a refund to the credits gives them back (a negative credit line).
 * - platform (the operator's bill): the transfers between `platform::<cur>` and `operator::<cur>`
 *   per code (`sale` legs are transaction fees on sales; a `refund` returns them; any other code,
 *   e.g. the operator's AI markup, is a line of its own), plus an optional plan line. No tax yet.
 *
 * Money: every line is its exact micro-unit sum for the month, rounded once, half away from zero
 * (dinero.js `transformScale`), to a whole minor unit; the subtotal is the sum of the rounded
 * lines, so the lines always add up to it. Tax (the platform's rates, the blueprint's
 * `monetization.payment_processing.tax_behavior`), with dinero on the taxable subtotal:
 * exclusive: the tax is taxable × Σrates rounded half away from zero, then allocated among the
 * rates by their percentages; inclusive: the taxable subtotal is allocated between the net and
 * each rate (1 : rate), so net + tax = the taxable subtotal exactly. Either way the remainder of
 * an allocation goes unit by unit to the largest share first (dinero's `allocate`). Total:
 * exclusive: subtotal + tax − credits; inclusive: subtotal − credits (the tax is within it).
 *
 * Numbers: per platform and series (`user`: `<SLUG>-000042`; `platform`: `OP-<SLUG>-000007`),
 * taken from a counter row in the same (immediate) transaction that writes the invoice: gapless,
 * never repeated, whatever runs at once. Issuing a (kind, subject, month, currency) again answers
 * the invoice already issued. Invoices are immutable (triggers); a void is a new invoice that
 * negates the original (status `void`, `voids`), never an edit.
 */
import type { Database } from 'bun:sqlite';
import { allocate, dinero, halfAwayFromZero, multiply, toSnapshot, transformScale } from 'dinero.js/bigint';
import type { App } from '../app/index.ts';
import type { PlatformRef } from '../identity/index.ts';
import { AppError } from '../shared/errors.ts';
import { newId } from '../shared/ids.ts';
import type { PlatformBlueprint } from '../tenancy/index.ts';
import {
  accountFlows,
  endUsersActive,
  findInvoice,
  type InvoiceFilter,
  type InvoiceRow,
  type InvoiceSeries,
  insertInvoice,
  issuedInvoice,
  listInvoices,
  nextInvoiceSeq,
  operatorCurrencies,
  purchasesPaidIn,
  refundsIn,
  replaceTaxRates,
  taxRates,
  topupsPaidIn,
  voidOf,
} from './invoices.repository.ts';
import { accountId } from './ledger.ts';
import { platformPlan } from './operator-plans.ts';

export type TaxBehavior = 'exclusive' | 'inclusive';

/** A line as it is built: its exact amount in micro-units (one item). */
export interface DraftLine {
  description: string;
  amountMicro: bigint;
  code: string;
  ref: string | null;
  taxable: boolean;
}
export interface DraftCredit {
  description: string;
  amountMicro: bigint;
  ref: string | null;
}
export interface TaxRate {
  name: string;
  /** Ten-thousandths of a percent: 20.5% = 205000. */
  percent_e4: number;
}

/** The operator's tax on its bills (soulfra.yaml `billing.operator_tax`), as invoice tax rates. */
function operatorTaxRates(app: App): TaxRate[] {
  return (app.config.billing?.operator_tax?.rates ?? []).map((r) => ({
    name: r.name,
    percent_e4: Math.round(r.percent * 10_000),
  }));
}

export interface InvoiceLine {
  description: string;
  quantity: number;
  unit_amount_minor: number;
  amount_minor: number;
  code: string;
  ref: string | null;
  taxable: boolean;
}
export interface TaxLine {
  name: string;
  percent: number;
  amount_minor: number;
}
export interface CreditLine {
  description: string;
  amount_minor: number;
  ref: string | null;
}

export interface InvoiceTotals {
  lines: InvoiceLine[];
  subtotal_minor: number;
  taxable_minor: number;
  tax_behavior: TaxBehavior;
  tax_lines: TaxLine[];
  tax_minor: number;
  credit_lines: CreditLine[];
  credits_minor: number;
  total_minor: number;
}

const E6 = 1_000_000n;
/** Amounts in the minor unit as dinero objects (scale 0: the minor unit is the unit here). */
const unit = (amount: bigint, scale = 0n) =>
  dinero({ amount, currency: { code: 'XXX', base: 10n, exponent: 0n }, scale });
const amountOf = (d: ReturnType<typeof unit>) => toSnapshot(d).amount;

/** Micro-units to whole minor units, half away from zero. */
export function roundMicro(micro: bigint): bigint {
  return amountOf(transformScale(unit(micro, 6n), 0n, halfAwayFromZero));
}

/** Splits `amount` by `ratios` exactly (the sign kept; remainders to the largest share first). */
function split(amount: bigint, ratios: bigint[]): bigint[] {
  if (ratios.every((r) => r === 0n)) return ratios.map(() => 0n);
  const neg = amount < 0n;
  const parts = allocate(unit(neg ? -amount : amount), ratios).map(amountOf);
  return neg ? parts.map((p) => -p) : parts;
}

const toNumber = (v: bigint, what: string): number => {
  if (v > BigInt(Number.MAX_SAFE_INTEGER) || v < -BigInt(Number.MAX_SAFE_INTEGER))
    throw new AppError('billing.amount_invalid', `${what}: too large to invoice`, 422);
  return Number(v);
};

/** Rounds the lines and credits and computes the tax and the total: see the module's comment. */
export function computeTotals(
  drafts: DraftLine[],
  credits: DraftCredit[],
  rates: TaxRate[],
  behavior: TaxBehavior,
): InvoiceTotals {
  const lines = drafts.map((d) => {
    const amount = roundMicro(d.amountMicro);
    return { d, amount };
  });
  const subtotal = lines.reduce((a, l) => a + l.amount, 0n);
  const taxable = lines.filter((l) => l.d.taxable).reduce((a, l) => a + l.amount, 0n);
  const ratios = rates.map((r) => BigInt(r.percent_e4));
  const sumRates = ratios.reduce((a, r) => a + r, 0n);
  let taxes: bigint[];
  if (rates.length === 0) taxes = [];
  else if (behavior === 'exclusive') {
    const neg = taxable < 0n;
    const abs = neg ? -taxable : taxable;
    // taxable × Σrate / 10^6 (a rate is in ten-thousandths of a percent), half away from zero.
    const t = amountOf(
      transformScale(multiply(unit(abs), { amount: sumRates, scale: 6n }), 0n, halfAwayFromZero),
    );
    taxes = split(neg ? -t : t, ratios);
  } else taxes = split(taxable, [E6, ...ratios]).slice(1);
  const tax = taxes.reduce((a, t) => a + t, 0n);
  const creditLines = credits.map((c) => ({ c, amount: roundMicro(c.amountMicro) }));
  const creditsSum = creditLines.reduce((a, c) => a + c.amount, 0n);
  const total = behavior === 'exclusive' ? subtotal + tax - creditsSum : subtotal - creditsSum;
  return {
    lines: lines.map(({ d, amount }) => ({
      description: d.description,
      // Every line is one item today (a month's usage is one line): its unit amount is its amount.
      quantity: 1,
      unit_amount_minor: toNumber(amount, 'amount'),
      amount_minor: toNumber(amount, 'amount'),
      code: d.code,
      ref: d.ref,
      taxable: d.taxable,
    })),
    subtotal_minor: toNumber(subtotal, 'subtotal'),
    taxable_minor: toNumber(taxable, 'taxable'),
    tax_behavior: behavior,
    tax_lines: rates.map((r, i) => ({
      name: r.name,
      percent: r.percent_e4 / 10_000,
      amount_minor: toNumber(taxes[i]!, 'tax'),
    })),
    tax_minor: toNumber(tax, 'tax'),
    credit_lines: creditLines.map(({ c, amount }) => ({
      description: c.description,
      amount_minor: toNumber(amount, 'credits'),
      ref: c.ref,
    })),
    credits_minor: toNumber(creditsSum, 'credits'),
    total_minor: toNumber(total, 'total'),
  };
}

// --- Periods ------------------------------------------------------------------------------------

export interface Period {
  month: string;
  start: number;
  end: number;
}

/** A calendar month in UTC from `YYYY-MM`: [its first instant, the next month's). */
export function periodOf(month: string): Period {
  const m = /^(\d{4})-(0[1-9]|1[0-2])$/.exec(month);
  if (!m)
    throw new AppError('billing.invalid', 'month: a calendar month, YYYY-MM', 400, [
      { path: '/month', reason: 'YYYY-MM' },
    ]);
  const y = Number(m[1]);
  const mo = Number(m[2]);
  return { month, start: Date.UTC(y, mo - 1, 1), end: Date.UTC(y, mo, 1) };
}

const monthOf = (start: number) => new Date(start).toISOString().slice(0, 7);

// --- What the lines are -------------------------------------------------------------------------

/** How a code debiting a user's account reads on the invoice (any other code: itself). */
const USER_CODES: Record<string, (ref: string | null) => string> = {
  usage: () => 'AI usage',
  subscription: (ref) => `Subscription${ref ? `: ${ref}` : ''}`,
};
/** How a code between the platform and the operator reads on the operator's bill. */
const OPERATOR_CODES: Record<string, string> = {
  sale: 'Transaction fees on marketplace sales',
  refund: 'Transaction fees returned on refunds',
  fee: 'Transaction fees',
};

/** A user's lines and credits in a month and currency. */
export function userDraft(db: Database, userId: string, currency: string, p: Period) {
  const lines: DraftLine[] = [];
  const credits: DraftCredit[] = [];
  // Charges to the user's account: usage, subscriptions and whatever else debits it.
  for (const f of accountFlows(db, accountId('end_user', userId, currency), p.start, p.end)) {
    if (f.code === 'payment') continue;
    const net = f.debits - f.credits;
    if (net === 0n) continue;
    const label = USER_CODES[f.code]?.(f.ref) ?? (f.ref ? `${f.code}: ${f.ref}` : f.code);
    lines.push({
      description: label,
      amountMicro: net,
      code: f.code,
      ref: f.ref,
      taxable: true,
    });
  }
  for (const e of purchasesPaidIn(db, p.start, p.end, userId)) {
    if (e.currency !== currency) continue;
    lines.push({
      description: `Marketplace: ${e.title}`,
      amountMicro: e.amount,
      code: 'purchase',
      ref: e.purchase_id,
      taxable: true,
    });
    if (e.method === 'credits')
      credits.push({ description: `Credits applied: ${e.title}`, amountMicro: e.amount, ref: e.purchase_id });
  }
  for (const e of refundsIn(db, p.start, p.end, userId)) {
    if (e.currency !== currency) continue;
    lines.push({
      description: `Refund: ${e.title}`,
      amountMicro: -e.amount,
      code: 'refund',
      ref: e.purchase_id,
      taxable: true,
    });
    if (e.method === 'credits')
      credits.push({
        description: `Credits returned: ${e.title}`,
        amountMicro: -e.amount,
        ref: e.purchase_id,
      });
  }
  for (const t of topupsPaidIn(db, p.start, p.end, userId)) {
    if (t.currency !== currency) continue;
    lines.push({
      description: 'Credits top-up',
      amountMicro: t.amount,
      code: 'topup',
      ref: t.topup_id,
      taxable: false,
    });
  }
  return { lines, credits };
}

/** The operator's bill's lines for a month and currency (plus `planLine` when given). */
export function operatorDraft(
  db: Database,
  currency: string,
  p: Period,
  planLine?: { description: string; amount_minor: number },
): DraftLine[] {
  const lines: DraftLine[] = [];
  if (planLine)
    lines.push({
      description: planLine.description,
      amountMicro: BigInt(planLine.amount_minor) * E6,
      code: 'plan',
      ref: null,
      taxable: true,
    });
  const byCode = new Map<string, { net: bigint; count: bigint }>();
  for (const f of accountFlows(db, accountId('operator', '', currency), p.start, p.end)) {
    if (f.counterparty_kind !== 'platform') continue;
    const c = byCode.get(f.code) ?? { net: 0n, count: 0n };
    c.net += f.credits - f.debits;
    c.count += f.count;
    byCode.set(f.code, c);
  }
  for (const [code, c] of byCode) {
    if (c.net === 0n) continue;
    lines.push({
      description: OPERATOR_CODES[code] ?? code,
      amountMicro: c.net,
      code,
      ref: null,
      taxable: true,
    });
  }
  return lines;
}

// --- Issuing ------------------------------------------------------------------------------------

/** What issuing needs: a request's context has it, and so does a scheduler with the platform's database. */
export interface InvoiceContext {
  app: App;
  db: Database;
  platform: PlatformRef;
  blueprint(): PlatformBlueprint;
}

const prefix = (c: InvoiceContext, series: InvoiceSeries) =>
  `${series === 'platform' ? 'OP-' : ''}${c.platform.slug.toUpperCase()}`;

/** The platform's tax behaviour (the blueprint's setting; exclusive when it sets none). */
export function taxBehaviorOf(c: InvoiceContext): TaxBehavior {
  return c.blueprint().monetization.payment_processing?.tax_behavior === 'inclusive'
    ? 'inclusive'
    : 'exclusive';
}

function write(
  c: InvoiceContext,
  row: Omit<InvoiceRow, 'id' | 'seq' | 'number' | 'series' | 'issued_at'> & { series: InvoiceSeries },
): InvoiceRow {
  const seq = nextInvoiceSeq(c.db, row.series);
  const full: InvoiceRow = {
    ...row,
    id: newId('inv'),
    seq,
    number: `${prefix(c, row.series)}-${String(seq).padStart(6, '0')}`,
    issued_at: c.app.clock.now(),
  };
  insertInvoice(c.db, full);
  c.app.audit.append(c.db, {
    actor: row.issued_by,
    action: row.status === 'void' ? 'billing.invoice_voided' : 'billing.invoice_issued',
    target: `invoice:${full.id}`,
    details: { number: full.number, kind: full.kind, subject: full.subject, total_minor: full.total_minor },
  });
  return full;
}

/**
 * Issues one invoice (in its own immediate transaction): the one already issued for the same
 * kind, subject, month and currency if there is one; null when there is nothing to bill.
 */
export function issueOne(
  c: InvoiceContext,
  kind: 'user' | 'platform',
  subject: string,
  currency: string,
  p: Period,
  by: string,
  planLine?: { description: string; amount_minor: number },
): { invoice: InvoiceRow; created: boolean } | null {
  return c.db
    .transaction(() => {
      const existing = issuedInvoice(c.db, kind, subject, p.start, currency);
      if (existing) return { invoice: existing, created: false };
      const draft =
        kind === 'user'
          ? userDraft(c.db, subject, currency, p)
          : { lines: operatorDraft(c.db, currency, p, planLine), credits: [] };
      if (draft.lines.length === 0 && draft.credits.length === 0) return null;
      const totals =
        kind === 'user'
          ? computeTotals(draft.lines, draft.credits, taxRates(c.db), taxBehaviorOf(c))
          : computeTotals(
              draft.lines,
              [],
              operatorTaxRates(c.app),
              c.app.config.billing?.operator_tax?.behavior ?? 'exclusive',
            );
      const invoice = write(c, {
        series: kind,
        kind,
        subject,
        period_start: p.start,
        period_end: p.end,
        currency,
        lines: JSON.stringify(totals.lines),
        subtotal_minor: totals.subtotal_minor,
        tax_behavior: totals.tax_behavior,
        tax_lines: JSON.stringify(totals.tax_lines),
        tax_minor: totals.tax_minor,
        credit_lines: JSON.stringify(totals.credit_lines),
        credits_minor: totals.credits_minor,
        total_minor: totals.total_minor,
        status: 'issued',
        voids: null,
        issued_by: by,
      });
      return { invoice, created: true };
    })
    .immediate();
}

/**
 * Issues a month's invoices on one platform: every user with billable activity in it, per
 * currency, then the operator's bill per currency. The month must have ended (409 otherwise:
 * an immutable invoice cannot take later activity). Each invoice commits on its own; between
 * them the event loop runs, so issuing may run at once from several places: numbers stay
 * gapless and each invoice is issued once. The scheduler (or an admin) calls it.
 */
export async function issueMonthlyInvoices(
  c: InvoiceContext,
  month: string,
  o: { by?: string; planLine?: PlanLine | null } = {},
): Promise<{ month: string; issued: InvoiceRow[]; existing: InvoiceRow[] }> {
  const p = periodOf(month);
  // The operator's plan for the platform is a line of its bill (null: none, e.g. a test).
  const plan = o.planLine === undefined ? planLineOf(c, month) : o.planLine;
  if (c.app.clock.now() < p.end)
    throw new AppError('billing.period_open', `month: ${month} has not ended yet (UTC)`, 409, [
      { path: '/month', reason: 'not ended' },
    ]);
  const by = o.by ?? 'system';
  const subjects = new Map<string, { userId: string; currency: string }>();
  const add = (userId: string, currency: string) =>
    subjects.set(`${userId} ${currency}`, { userId, currency });
  for (const u of endUsersActive(c.db, p.start, p.end)) add(u.owner, u.currency);
  for (const e of purchasesPaidIn(c.db, p.start, p.end)) add(e.user_id, e.currency);
  for (const e of refundsIn(c.db, p.start, p.end)) add(e.user_id, e.currency);
  for (const t of topupsPaidIn(c.db, p.start, p.end)) add(t.user_id, t.currency);
  const issued: InvoiceRow[] = [];
  const existing: InvoiceRow[] = [];
  const keep = (r: ReturnType<typeof issueOne>) => {
    if (r) (r.created ? issued : existing).push(r.invoice);
  };
  for (const s of [...subjects.values()].sort((a, b) => a.userId.localeCompare(b.userId))) {
    keep(issueOne(c, 'user', s.userId, s.currency, p, by));
    // Lets requests run between invoices (a month of many users does not hold the event loop).
    await new Promise((r) => setImmediate(r));
  }
  const currencies = new Set(operatorCurrencies(c.db, p.start, p.end));
  if (plan) currencies.add(plan.currency);
  for (const cur of [...currencies].sort()) {
    keep(issueOne(c, 'platform', c.platform.id, cur, p, by, plan?.currency === cur ? plan : undefined));
    await new Promise((r) => setImmediate(r));
  }
  return { month, issued, existing };
}

/** A line of the operator's bill: the platform's plan for the month. */
export interface PlanLine {
  description: string;
  amount_minor: number;
  currency: string;
}

/**
 * The platform's plan as a line of the operator's bill for `month`: a monthly plan's price,
 * or a yearly plan's price in twelfths (the remainder in December's line, so the year adds up).
 * A plan priced 0 is no line.
 */
export function planLineOf(c: InvoiceContext, month: string): PlanLine | null {
  const { plan } = platformPlan(c.app, c.platform.id);
  if (plan.price_minor <= 0) return null;
  const yearly = plan.interval === 'year';
  const twelfth = Math.floor(plan.price_minor / 12);
  const amount = !yearly
    ? plan.price_minor
    : month.endsWith('-12')
      ? plan.price_minor - 11 * twelfth
      : twelfth;
  return {
    description: `${plan.name} plan, ${month}${yearly ? ' (a twelfth of the yearly price)' : ''}${plan.price_is_minimum ? ' (minimum)' : ''}`,
    amount_minor: amount,
    currency: plan.currency.toLowerCase(),
  };
}

/** Voids an issued invoice with a new one that negates it (its own number); the original is not edited. */
export function voidInvoice(c: InvoiceContext, id: string, by: string): InvoiceRow {
  return c.db
    .transaction(() => {
      const inv = findInvoice(c.db, id);
      if (!inv) throw new AppError('billing.invoice_not_found', 'no such invoice', 404);
      if (inv.status !== 'issued')
        throw new AppError('billing.invoice_void', `invoice ${inv.number} is itself a void`, 409);
      const done = voidOf(c.db, id);
      if (done) return done;
      const neg = <T extends { amount_minor: number }>(xs: T[]) =>
        xs.map((x) => ({
          ...x,
          amount_minor: -x.amount_minor,
          ...('unit_amount_minor' in x
            ? { unit_amount_minor: -(x as { unit_amount_minor: number }).unit_amount_minor }
            : {}),
        }));
      return write(c, {
        series: inv.series,
        kind: inv.kind,
        subject: inv.subject,
        period_start: inv.period_start,
        period_end: inv.period_end,
        currency: inv.currency,
        lines: JSON.stringify(neg(JSON.parse(inv.lines) as InvoiceLine[])),
        subtotal_minor: -inv.subtotal_minor,
        tax_behavior: inv.tax_behavior,
        tax_lines: JSON.stringify(neg(JSON.parse(inv.tax_lines) as TaxLine[])),
        tax_minor: -inv.tax_minor,
        credit_lines: JSON.stringify(neg(JSON.parse(inv.credit_lines) as CreditLine[])),
        credits_minor: -inv.credits_minor,
        total_minor: -inv.total_minor,
        status: 'void',
        voids: inv.id,
        issued_by: by,
      });
    })
    .immediate();
}

// --- Reading ------------------------------------------------------------------------------------

export interface InvoiceView {
  id: string;
  number: string;
  kind: 'user' | 'platform';
  subject: string;
  period: { month: string; start: string; end: string };
  currency: string;
  lines: InvoiceLine[];
  subtotal_minor: number;
  tax_behavior: TaxBehavior;
  tax_lines: TaxLine[];
  tax_minor: number;
  credit_lines: CreditLine[];
  credits_minor: number;
  total_minor: number;
  status: 'issued' | 'void';
  voids: string | null;
  issued_at: string;
}

export const invoiceView = (r: InvoiceRow): InvoiceView => ({
  id: r.id,
  number: r.number,
  kind: r.kind,
  subject: r.subject,
  period: {
    month: monthOf(r.period_start),
    start: new Date(r.period_start).toISOString(),
    end: new Date(r.period_end).toISOString(),
  },
  currency: r.currency,
  lines: JSON.parse(r.lines) as InvoiceLine[],
  subtotal_minor: r.subtotal_minor,
  tax_behavior: r.tax_behavior,
  tax_lines: JSON.parse(r.tax_lines) as TaxLine[],
  tax_minor: r.tax_minor,
  credit_lines: JSON.parse(r.credit_lines) as CreditLine[],
  credits_minor: r.credits_minor,
  total_minor: r.total_minor,
  status: r.status,
  voids: r.voids,
  issued_at: new Date(r.issued_at).toISOString(),
});

export function invoicesOf(db: Database, f: InvoiceFilter): InvoiceView[] {
  return listInvoices(db, f).map(invoiceView);
}

export { findInvoice };

// --- Tax rates ----------------------------------------------------------------------------------

const rateView = (r: TaxRate) => ({ name: r.name, percent: r.percent_e4 / 10_000 });

export function taxSettings(c: InvoiceContext) {
  return { tax_behavior: taxBehaviorOf(c), rates: taxRates(c.db).map(rateView) };
}

/** Replaces the platform's tax rates: percentages from 0 to 100 with at most four decimals. */
export function setTaxRates(c: InvoiceContext, rates: { name: string; percent: number }[], by: string) {
  const rows = rates.map((r, i) => {
    const e4 = Math.round(r.percent * 10_000);
    if (!Number.isFinite(r.percent) || e4 < 0 || e4 > 1_000_000 || Math.abs(e4 - r.percent * 10_000) > 1e-6)
      throw new AppError('billing.invalid', `rates/${i}/percent: from 0 to 100, at most four decimals`, 400, [
        { path: `/rates/${i}/percent`, reason: 'from 0 to 100, at most four decimals' },
      ]);
    const name = r.name.trim();
    if (!name)
      throw new AppError('billing.invalid', `rates/${i}/name: required`, 400, [
        { path: `/rates/${i}/name`, reason: 'required' },
      ]);
    return { name, percent_e4: e4 };
  });
  c.db.transaction(() => {
    replaceTaxRates(c.db, rows);
    c.app.audit.append(c.db, {
      actor: by,
      action: 'billing.tax_rates_set',
      target: `platform:${c.platform.id}`,
      details: { rates: rows.map(rateView) },
    });
  })();
  return taxSettings(c);
}
