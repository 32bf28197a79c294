/**
 * Invoices' SQL (migration 0025): the gapless counters, the immutable invoices, the tax rates,
 * and the reads an invoice is built from (posted ledger transfers, paid purchases and top-ups)
 * for one calendar month. Sums of micro-units are read as BigInt (`safeIntegers`).
 */
import type { Database } from 'bun:sqlite';

export type InvoiceSeries = 'user' | 'platform';

export interface InvoiceRow {
  id: string;
  series: InvoiceSeries;
  seq: number;
  number: string;
  kind: 'user' | 'platform';
  subject: string;
  period_start: number;
  period_end: number;
  currency: string;
  lines: string;
  subtotal_minor: number;
  tax_behavior: 'exclusive' | 'inclusive';
  tax_lines: string;
  tax_minor: number;
  credit_lines: string;
  credits_minor: number;
  total_minor: number;
  status: 'issued' | 'void';
  voids: string | null;
  issued_by: string;
  issued_at: number;
}

/** Takes the series' next number (call it inside the transaction that inserts the invoice). */
export function nextInvoiceSeq(db: Database, series: InvoiceSeries): number {
  return db
    .query<{ last: number }, [string]>(
      `INSERT INTO invoice_counters (series, last) VALUES (?, 1)
       ON CONFLICT (series) DO UPDATE SET last = last + 1 RETURNING last`,
    )
    .get(series)!.last;
}

export function insertInvoice(db: Database, r: InvoiceRow): void {
  db.query(
    `INSERT INTO invoices (id, series, seq, number, kind, subject, period_start, period_end, currency, lines,
       subtotal_minor, tax_behavior, tax_lines, tax_minor, credit_lines, credits_minor, total_minor, status, voids,
       issued_by, issued_at)
     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
  ).run(
    r.id,
    r.series,
    r.seq,
    r.number,
    r.kind,
    r.subject,
    r.period_start,
    r.period_end,
    r.currency,
    r.lines,
    r.subtotal_minor,
    r.tax_behavior,
    r.tax_lines,
    r.tax_minor,
    r.credit_lines,
    r.credits_minor,
    r.total_minor,
    r.status,
    r.voids,
    r.issued_by,
    r.issued_at,
  );
}

export function findInvoice(db: Database, id: string): InvoiceRow | null {
  return db.query<InvoiceRow, [string]>('SELECT * FROM invoices WHERE id = ?').get(id);
}

/** The issued invoice of a subject for a period and currency, if any (what issuing again answers). */
export function issuedInvoice(
  db: Database,
  kind: InvoiceRow['kind'],
  subject: string,
  periodStart: number,
  currency: string,
): InvoiceRow | null {
  return db
    .query<InvoiceRow, [string, string, number, string]>(
      `SELECT * FROM invoices WHERE kind = ? AND subject = ? AND period_start = ? AND currency = ? AND status = 'issued'`,
    )
    .get(kind, subject, periodStart, currency);
}

export function voidOf(db: Database, id: string): InvoiceRow | null {
  return db.query<InvoiceRow, [string]>('SELECT * FROM invoices WHERE voids = ?').get(id);
}

export interface InvoiceFilter {
  kind?: InvoiceRow['kind'];
  subject?: string;
  periodStart?: number;
  status?: InvoiceRow['status'];
  limit: number;
}

export function listInvoices(db: Database, f: InvoiceFilter): InvoiceRow[] {
  return db
    .query<
      InvoiceRow,
      [
        string | null,
        string | null,
        string | null,
        string | null,
        number | null,
        number | null,
        string | null,
        string | null,
        number,
      ]
    >(
      `SELECT * FROM invoices WHERE (? IS NULL OR kind = ?) AND (? IS NULL OR subject = ?)
         AND (? IS NULL OR period_start = ?) AND (? IS NULL OR status = ?)
       ORDER BY issued_at DESC, series, seq DESC LIMIT ?`,
    )
    .all(
      f.kind ?? null,
      f.kind ?? null,
      f.subject ?? null,
      f.subject ?? null,
      f.periodStart ?? null,
      f.periodStart ?? null,
      f.status ?? null,
      f.status ?? null,
      f.limit,
    );
}

export interface TaxRateRow {
  position: number;
  name: string;
  percent_e4: number;
}

export function taxRates(db: Database): TaxRateRow[] {
  return db.query<TaxRateRow, []>('SELECT * FROM tax_rates ORDER BY position').all();
}

/** Replaces the platform's tax rates (in the caller's transaction). */
export function replaceTaxRates(db: Database, rates: { name: string; percent_e4: number }[]): void {
  db.query('DELETE FROM tax_rates').run();
  const ins = db.query('INSERT INTO tax_rates (position, name, percent_e4) VALUES (?, ?, ?)');
  rates.forEach((r, i) => {
    ins.run(i + 1, r.name, r.percent_e4);
  });
}

// --- What a month's invoices are built from -------------------------------------------------

/** Posted transfers of an account in [start, end), per code and ref, seen from the account: debits and credits. */
export interface AccountFlow {
  code: string;
  ref: string | null;
  counterparty_kind: string;
  debits: bigint;
  credits: bigint;
  count: bigint;
}

/**
 * The posted flows of account `id` in [start, end), per code, ref and the other side's kind
 * (a `payment` into a user's account is told from a charge by its code).
 */
export function accountFlows(db: Database, id: string, start: number, end: number): AccountFlow[] {
  return db
    .query<AccountFlow, [string, number, number]>(
      `SELECT t.code AS code, t.ref AS ref, o.kind AS counterparty_kind,
              coalesce(sum(CASE WHEN t.debit = a.n THEN t.amount END), 0) AS debits,
              coalesce(sum(CASE WHEN t.credit = a.n THEN t.amount END), 0) AS credits,
              count(*) AS count
       FROM ledger_accounts a
       JOIN ledger_transfers t ON (t.debit = a.n OR t.credit = a.n)
       JOIN ledger_accounts o ON o.n = CASE WHEN t.debit = a.n THEN t.credit ELSE t.debit END
       WHERE a.id = ? AND t.flags IN ('posted', 'post') AND t.at >= ? AND t.at < ?
       GROUP BY t.code, t.ref, o.kind ORDER BY min(t.seq)`,
    )
    .safeIntegers(true)
    .all(id, start, end);
}

/** The owners of `end_user` accounts with posted transfers in [start, end), with the currency. */
export function endUsersActive(
  db: Database,
  start: number,
  end: number,
): { owner: string; currency: string }[] {
  return db
    .query<{ owner: string; currency: string }, [number, number]>(
      `SELECT DISTINCT a.owner AS owner, a.currency AS currency
       FROM ledger_accounts a JOIN ledger_transfers t ON (t.debit = a.n OR t.credit = a.n)
       WHERE a.kind = 'end_user' AND t.flags IN ('posted', 'post') AND t.at >= ? AND t.at < ?`,
    )
    .all(start, end);
}

/** The currencies in which the platform paid (or was returned) anything to the operator in [start, end). */
export function operatorCurrencies(db: Database, start: number, end: number): string[] {
  return db
    .query<{ currency: string }, [number, number]>(
      `SELECT DISTINCT a.currency AS currency
       FROM ledger_accounts a JOIN ledger_transfers t ON (t.debit = a.n OR t.credit = a.n)
       WHERE a.kind = 'operator' AND t.flags IN ('posted', 'post') AND t.at >= ? AND t.at < ?`,
    )
    .all(start, end)
    .map((r) => r.currency);
}

export interface PurchaseEvent {
  purchase_id: string;
  user_id: string;
  listing_id: string;
  title: string;
  method: 'stripe' | 'manual' | 'credits';
  currency: string;
  /** The sale's amount (paid events) or the refund's (refund events), micro-units. */
  amount: bigint;
  at: number;
}

/**
 * Purchases whose sale was posted in [start, end) (its first leg's time), with the listing's
 * title now; `userId` limits them to one buyer.
 */
export function purchasesPaidIn(db: Database, start: number, end: number, userId?: string): PurchaseEvent[] {
  return db
    .query<PurchaseEvent, [number, number, string | null, string | null]>(
      `SELECT p.id AS purchase_id, p.user_id AS user_id, p.listing_id AS listing_id,
              coalesce(l.title, p.listing_id) AS title, p.method AS method, p.currency AS currency,
              p.amount_minor * 1000000 AS amount, t.at AS at
       FROM purchases p
       JOIN ledger_transfers t ON t.id = 'sale:' || p.id || ':creator'
       LEFT JOIN listings l ON l.id = p.listing_id
       WHERE t.at >= ? AND t.at < ? AND (? IS NULL OR p.user_id = ?)
       ORDER BY t.seq`,
    )
    .safeIntegers(true)
    .all(start, end, userId ?? null, userId ?? null)
    .map((r) => ({ ...r, at: Number(r.at) }));
}

/**
 * Refunds posted in [start, end) per purchase: what went back to the buyer's source (the card's
 * processor account or the buyer's credits), i.e. the creator's and the platform's reversed legs.
 */
export function refundsIn(db: Database, start: number, end: number, userId?: string): PurchaseEvent[] {
  return db
    .query<PurchaseEvent, [number, number, string | null, string | null]>(
      `SELECT p.id AS purchase_id, p.user_id AS user_id, p.listing_id AS listing_id,
              coalesce(l.title, p.listing_id) AS title, p.method AS method, p.currency AS currency,
              sum(t.amount) AS amount, max(t.at) AS at
       FROM purchases p
       JOIN ledger_transfers t ON t.id LIKE 'sale:' || p.id || ':%' AND t.code = 'refund'
       JOIN ledger_accounts c ON c.n = t.credit AND c.kind IN ('processor', 'credits')
       LEFT JOIN listings l ON l.id = p.listing_id
       WHERE t.flags IN ('posted', 'post') AND t.at >= ? AND t.at < ? AND (? IS NULL OR p.user_id = ?)
       GROUP BY p.id ORDER BY min(t.seq)`,
    )
    .safeIntegers(true)
    .all(start, end, userId ?? null, userId ?? null)
    .map((r) => ({ ...r, at: Number(r.at) }));
}

export interface TopupEvent {
  topup_id: string;
  user_id: string;
  currency: string;
  amount: bigint;
  at: number;
}

/** Top-ups whose credits were posted in [start, end). */
export function topupsPaidIn(db: Database, start: number, end: number, userId?: string): TopupEvent[] {
  return db
    .query<TopupEvent, [number, number, string | null, string | null]>(
      `SELECT u.id AS topup_id, u.user_id AS user_id, u.currency AS currency, t.amount AS amount, t.at AS at
       FROM topups u JOIN ledger_transfers t ON t.id = 'topup:' || u.id
       WHERE t.at >= ? AND t.at < ? AND (? IS NULL OR u.user_id = ?)
       ORDER BY t.seq`,
    )
    .safeIntegers(true)
    .all(start, end, userId ?? null, userId ?? null)
    .map((r) => ({ ...r, at: Number(r.at) }));
}
