/**
 * Invoices (issue 13 item 5): a month of a user's activity (AI usage, a subscription's chain, a
 * generic charge, a listing bought with credits, another by card, a partial refund, a top-up)
 * becomes one invoice with the right lines, tax, credits applied and total; the operator's bill
 * sums the platform's fee transfers; numbers are gapless per platform and series, also when two
 * issue calls run at once; issuing again answers the same invoices; invoices are immutable (a
 * void is a new invoice); HTML escapes a hostile title; the PDF parses back; another user's
 * invoice is a 404. A property: for random lines and rates the totals are exact.
 */
import type { Database } from 'bun:sqlite';
import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import fc from 'fast-check';
import { type InProcessServer, inProcessServer } from '../../tests/inproc.ts';
import { type OpenAIStub, startOpenAIStub } from '../../tests/peers/openai-stub.ts';
import { callAs, json, type Session, signInTo } from '../../tests/sessions.ts';
import { documentText } from '../agents/extract.ts';
import { createUserRepository, type PlatformRequestContext } from '../identity/index.ts';
import {
  computeTotals,
  type DraftLine,
  type InvoiceView,
  planLineOf,
  type TaxRate,
} from './invoices.service.ts';
import { findAccount } from './ledger.repository.ts';
import { accountId, netCredit, openAccount, post } from './ledger.ts';
import { findPurchase, insertPurchase, insertTopup } from './purchases.repository.ts';
import { applyRefund, termsOf } from './purchases.service.ts';
import { saleAccounts, saleChain } from './sales.ts';

const M = 1_000_000n;
const PASSWORD = 'a-long-password-12';
const HOSTILE = '<script>alert("x")</script> & Tax';
let s: InProcessServer;
let ai: OpenAIStub;
let platformId = '';
const S: Record<string, Session> = {};
const ids: Record<string, string> = {};
const creds: Record<string, [string, string]> = {};
/** Signs everyone in again (a session does not outlive a jump of the clock by weeks). */
async function resignIn() {
  for (const [k, [email, pw]] of Object.entries(creds)) S[k] = await signInTo(s, 'shop', email, pw);
}
let n = 0;

const call = (se: Session, method: string, path: string, body?: unknown) => callAs(s, se, method, path, body);
const onDb = <T>(fn: (db: Database) => T) => s.app.platformDbs.use(platformId, fn);
const now = () => s.clock.now();

/** A request-like context on the platform's database (for the service functions tests call directly). */
const ctxOn = (db: Database) =>
  ({
    app: s.app,
    db,
    platform: { id: platformId, slug: 'shop', name: 'Shop' },
    principal: null,
    blueprint: () => s.tenancy.blueprintOf(platformId),
  }) as unknown as PlatformRequestContext;

async function listPaidAgent(title: string, priceMinor: number): Promise<string> {
  const made = await call(S.cat!, 'POST', '/api/v1/agents', { name: 'Helper', persona: 'Helps.' });
  if (made.status !== 201) throw new Error(await made.text());
  const a = (await made.json()) as { agent: { id: string } };
  expect((await call(S.cat!, 'POST', `/api/v1/agents/${a.agent.id}/publish`)).status).toBe(201);
  const l = await json<{ listing: { id: string } }>(
    call(S.cat!, 'POST', `/api/v1/agents/${a.agent.id}/listing`, {
      title,
      summary: 'A paid helper for tests.',
      category: 'productivity',
      tags: ['test'],
      price_model: 'one_time',
      price_minor: priceMinor,
      currency: 'usd',
    }),
  );
  return l.listing.id;
}

/** A charge to a user's account (what usage, subscriptions and new codes post). */
const charge = (userId: string, amount: bigint, code: string, ref?: string) =>
  onDb((db) => {
    const t = now();
    const from = openAccount(db, { kind: 'end_user', owner: userId, currency: 'usd' }, t);
    const to = openAccount(db, { kind: 'platform', currency: 'usd' }, t);
    post(
      db,
      [{ id: `t${++n}`, debit: from, credit: to, amount, currency: 'usd', code, ...(ref ? { ref } : {}) }],
      t,
    );
  });

/** A paid top-up, posted as credits.service does once Stripe says paid. */
const topup = (userId: string, minor: number) =>
  onDb((db) => {
    const t = now();
    const id = `top_${String(++n).padStart(26, '0')}`;
    db.transaction(() => {
      insertTopup(db, {
        id,
        user_id: userId,
        amount_minor: minor,
        currency: 'usd',
        status: 'paid',
        checkout_session: null,
        payment_intent: null,
        created_at: t,
        updated_at: t,
      });
      const cash = openAccount(db, { kind: 'processor', currency: 'usd' }, t);
      const credits = openAccount(db, { kind: 'credits', owner: userId, currency: 'usd' }, t);
      post(
        db,
        [
          {
            id: `topup:${id}`,
            debit: cash,
            credit: credits,
            amount: BigInt(minor) * M,
            currency: 'usd',
            code: 'topup',
            ref: id,
          },
        ],
        t,
      );
    })();
    return id;
  });

/** A listing paid by card: the purchase and its sale's chain, as purchases.service fulfils it. */
const cardPurchase = (userId: string, listingId: string, minor: number) =>
  onDb((db) => {
    const t = now();
    const id = `pur_${String(++n).padStart(26, '0')}`;
    const c = ctxOn(db);
    db.transaction(() => {
      insertPurchase(db, {
        id,
        user_id: userId,
        listing_id: listingId,
        version: 1,
        creator_id: ids.cat!,
        amount_minor: minor,
        currency: 'usd',
        terms: JSON.stringify(termsOf(c)),
        status: 'paid',
        method: 'stripe',
        checkout_session: null,
        payment_intent: null,
        refunded_minor: 0,
        recorded_by: null,
        created_at: t,
        updated_at: t,
      });
      const sale = {
        id: `sale:${id}`,
        amount: BigInt(minor) * M,
        currency: 'usd',
        creatorId: ids.cat!,
        source: { kind: 'processor' as const },
        terms: termsOf(c),
        ref: listingId,
      };
      for (const a of saleAccounts(sale)) openAccount(db, a, t);
      post(db, saleChain(sale), t);
    })();
    return id;
  });

const issue = (month: string, se = S.owner!) =>
  call(se, 'POST', '/api/v1/admin/billing/invoices/issue', { month });
const mine = async (se: Session) =>
  (await json<{ invoices: InvoiceView[] }>(call(se, 'GET', '/api/v1/billing/invoices'))).invoices;

let hostileListing = '';
let danInvoice: InvoiceView;

beforeAll(async () => {
  ai = await startOpenAIStub({ models: ['gpt-4o-mini'] });
  s = await inProcessServer({
    config: {
      providers: [{ id: 'stub', kind: 'openai', url: ai.url, location: 'on_prem', timeout_ms: 5_000 }],
      models: [{ alias: 'default', route: ['stub/gpt-4o-mini'] }],
      // The operator's own tax on its bills to platforms.
      billing: { operator_tax: { rates: [{ name: 'Operator VAT', percent: 20 }] } },
    },
  });
  const made = await s.operatorApi('POST', '/platforms', { slug: 'shop', template: 'creator' });
  const owner = ((await made.json()) as { admin: { email: string; password: string } }).admin;
  platformId = s.tenancy.get('shop').id;
  S.owner = await signInTo(s, 'shop', owner.email, owner.password);
  creds.owner = [owner.email, owner.password];
  for (const [name, role] of [
    ['cat', 'creator'],
    ['dan', 'member'],
    ['eve', 'member'],
    ['fay', 'member'],
    ['gus', 'member'],
    ['hal', 'member'],
  ] as const) {
    const email = `${name}@shop.test`;
    expect((await call(S.owner, 'POST', '/api/v1/users', { email, role, password: PASSWORD })).status).toBe(
      201,
    );
    S[name] = await signInTo(s, 'shop', email, PASSWORD);
    creds[name] = [email, PASSWORD];
    ids[name] = await onDb((db) => createUserRepository({ db }).byEmail(email)!.id);
  }
  // A billing section turns the tiers' limits on: the creator is on Enterprise (agents unlimited).
  expect(
    (
      await call(S.owner, 'POST', `/api/v1/admin/billing/subscriptions/${ids.cat}`, {
        tier: 'enterprise',
        note: 'a test creator with several listings',
      })
    ).status,
  ).toBe(200);
  // January 2026 (the test clock starts on the 15th).
  hostileListing = await listPaidAgent(HOSTILE, 500);
  const cardListing = await listPaidAgent('Card Helper', 999);
  await charge(ids.dan!, 1_250_000n, 'usage');
  await charge(ids.dan!, 1_250_000n, 'usage'); // 2.5 cents in all: 3 once rounded
  await onDb((db) => {
    // The subscriptions' contract: the payment into the user's account, then the charge.
    const t = now();
    const cash = openAccount(db, { kind: 'processor', currency: 'usd' }, t);
    const user = openAccount(db, { kind: 'end_user', owner: ids.dan!, currency: 'usd' }, t);
    post(
      db,
      [
        {
          id: 'pay1',
          debit: cash,
          credit: user,
          amount: 1000n * M,
          currency: 'usd',
          code: 'payment',
          ref: 'in_1',
        },
      ],
      t,
    );
  });
  await charge(ids.dan!, 1000n * M, 'subscription', 'pro');
  await charge(ids.dan!, 100n * M, 'agent_fee');
  await topup(ids.dan!, 2000);
  const r = await call(S.dan!, 'POST', `/api/v1/marketplace/${hostileListing}/install`, {
    pay_with: 'credits',
  });
  expect(r.status).toBe(201);
  const card = await cardPurchase(ids.dan!, cardListing, 999);
  await onDb((db) => expect(applyRefund(ctxOn(db), findPurchase(db, card)!, 300)).toBe(true));
  await charge(ids.eve!, 100n * M, 'usage');
  // A charge in February is not January's.
  s.clock.set(Date.UTC(2026, 1, 3));
  await charge(ids.eve!, 7n * M, 'usage');
  await resignIn();
});
afterAll(async () => {
  await s?.close();
  await ai?.stop();
});

describe('tax rates', () => {
  test('admins set them (billing:write); a member cannot; percentages take at most four decimals', async () => {
    expect((await call(S.dan!, 'PUT', '/api/v1/admin/billing/tax-rates', { rates: [] })).status).toBe(403);
    const bad = await call(S.owner!, 'PUT', '/api/v1/admin/billing/tax-rates', {
      rates: [{ name: 'VAT', percent: 1.23456 }],
    });
    expect(bad.status).toBe(400);
    const ok = await json<{ tax_behavior: string; rates: unknown[] }>(
      call(S.owner!, 'PUT', '/api/v1/admin/billing/tax-rates', {
        rates: [
          { name: 'VAT', percent: 20 },
          { name: 'City', percent: 0.5 },
        ],
      }),
    );
    expect(ok).toEqual({
      tax_behavior: 'exclusive',
      rates: [
        { name: 'VAT', percent: 20 },
        { name: 'City', percent: 0.5 },
      ],
    });
  });
});

describe('issuing a month', () => {
  test('a month that has not ended cannot be issued', async () => {
    const r = await issue('2026-02');
    expect(r.status).toBe(409);
    expect(((await r.json()) as { error: { code: string } }).error.code).toBe('billing.period_open');
  });

  test("the user's invoice: lines, credits applied, exclusive tax and total", async () => {
    const r = await json<{ issued: InvoiceView[]; existing: InvoiceView[] }>(issue('2026-01'));
    expect(r.existing).toEqual([]);
    expect(r.issued.map((i) => i.number).sort()).toEqual(['OP-SHOP-000001', 'SHOP-000001', 'SHOP-000002']);
    danInvoice = r.issued.find((i) => i.subject === ids.dan)!;
    expect(danInvoice.number).toBe('SHOP-000001'); // dan's id sorts before eve's
    expect(danInvoice.period).toEqual({
      month: '2026-01',
      start: '2026-01-01T00:00:00.000Z',
      end: '2026-02-01T00:00:00.000Z',
    });
    // The user's account's charges (a payment into it is no line), purchases, refunds, top-ups.
    expect(danInvoice.lines.map((l) => [l.description, l.amount_minor, l.code, l.taxable])).toEqual([
      ['AI usage', 3, 'usage', true],
      ['Subscription: pro', 1000, 'subscription', true],
      ['agent_fee', 100, 'agent_fee', true],
      [`Marketplace: ${HOSTILE}`, 500, 'purchase', true],
      ['Marketplace: Card Helper', 999, 'purchase', true],
      ['Refund: Card Helper', -300, 'refund', true],
      ['Credits top-up', 2000, 'topup', false],
    ]);
    expect(danInvoice.subtotal_minor).toBe(4302);
    // 20.5% of the taxable 2302 is 471.91: 472, allocated 20 : 0.5 (the remainder to VAT).
    expect(danInvoice.tax_behavior).toBe('exclusive');
    expect(danInvoice.tax_lines).toEqual([
      { name: 'VAT', percent: 20, amount_minor: 461 },
      { name: 'City', percent: 0.5, amount_minor: 11 },
    ]);
    expect(danInvoice.tax_minor).toBe(472);
    expect(danInvoice.credit_lines).toEqual([
      { description: `Credits applied: ${HOSTILE}`, amount_minor: 500, ref: expect.stringMatching(/^pur_/) },
    ]);
    expect(danInvoice.credits_minor).toBe(500);
    expect(danInvoice.total_minor).toBe(4302 + 472 - 500);
    const eve = r.issued.find((i) => i.subject === ids.eve)!;
    // February's usage is not on January's invoice.
    expect(eve.lines.map((l) => [l.description, l.amount_minor])).toEqual([['AI usage', 100]]);
    // 20.5% of 100 is 20.5: 21, allocated 20 : 0.5 (20.49 and 0.51: the remainder to VAT).
    expect(eve.tax_lines.map((t) => t.amount_minor)).toEqual([21, 0]);
    expect(eve.total_minor).toBe(121);
  });

  test("the operator's bill sums the platform's fee transfers to the operator", async () => {
    const bills = await json<{ invoices: InvoiceView[] }>(
      call(S.owner!, 'GET', '/api/v1/admin/billing/invoices?kind=platform'),
    );
    expect(bills.invoices).toHaveLength(1);
    const bill = bills.invoices[0]!;
    expect(bill.subject).toBe(platformId);
    // The platform's plan (Starter, the creator template's default: 99.00 a month); then
    // 15% of 5.00 and of 9.99 (75 + 149.85 = 224.85 → 225); of the 3.00 refunded, 45 returned.
    expect(bill.lines.map((l) => [l.code, l.amount_minor])).toEqual([
      ['plan', 9900],
      ['sale', 225],
      ['refund', -45],
    ]);
    expect(bill.lines[0]!.description).toBe('Starter plan, 2026-01');
    const operator = await onDb((db) => netCredit(findAccount(db, accountId('operator', '', 'usd'))!));
    expect(operator).toBe(17985n * 10_000n);
    // The operator's VAT (soulfra.yaml billing.operator_tax), added: 20% of 100.80.
    expect(bill.tax_lines).toEqual([expect.objectContaining({ name: 'Operator VAT', amount_minor: 2016 })]);
    expect(bill.total_minor).toBe(9900 + 180 + 2016);
  });

  test('issuing again answers the same invoices; numbers do not move', async () => {
    const r = await json<{ issued: InvoiceView[]; existing: InvoiceView[] }>(issue('2026-01'));
    expect(r.issued).toEqual([]);
    expect(r.existing.map((i) => i.number).sort()).toEqual(['OP-SHOP-000001', 'SHOP-000001', 'SHOP-000002']);
    // The operator's run over every platform (a monthly cron's call) finds them issued too.
    const op = await s.operatorApi('POST', '/billing/invoices/issue', { month: '2026-01' });
    expect(op.status).toBe(200);
    expect(await op.json()).toEqual({
      month: '2026-01',
      platforms: [{ slug: 'shop', issued: 0, existing: 3 }],
    });
    expect((await s.operatorApi('POST', '/billing/invoices/issue', { month: '2026-13' })).status).toBe(400);
  });

  test('two issue calls at once: numbers 1..N, no gap, no repeat, each invoice once', async () => {
    for (const u of ['dan', 'fay', 'gus', 'hal']) await charge(ids[u]!, 42n * M, 'usage');
    s.clock.set(Date.UTC(2026, 2, 1));
    await resignIn();
    // February is issued with the tax inclusive (the blueprint's setting, read when issuing).
    const patched = await s.operatorApi('PATCH', '/platforms/shop', {
      blueprint: { monetization: { payment_processing: { tax_behavior: 'inclusive' } } },
    });
    expect(patched.status).toBe(200);
    const [a, b] = await Promise.all([
      json<{ issued: InvoiceView[]; existing: InvoiceView[] }>(issue('2026-02')),
      json<{ issued: InvoiceView[]; existing: InvoiceView[] }>(issue('2026-02')),
    ]);
    const created = [...a.issued, ...b.issued].filter((i) => i.kind === 'user');
    expect(created).toHaveLength(5); // dan, eve, fay, gus, hal
    // Each call answers every invoice of the month: made by it, or by the other.
    // Five users' invoices and the operator's bill (its plan line at least).
    expect(a.issued.length + a.existing.length).toBe(6);
    expect(b.issued.length + b.existing.length).toBe(6);
    expect(new Set([...a.issued, ...a.existing].filter((i) => i.kind === 'user').map((i) => i.id))).toEqual(
      new Set(created.map((i) => i.id)),
    );
    const all = await json<{ invoices: InvoiceView[] }>(
      call(S.owner!, 'GET', '/api/v1/admin/billing/invoices?kind=user'),
    );
    const numbers = all.invoices.map((i) => i.number).sort();
    expect(numbers).toEqual([1, 2, 3, 4, 5, 6, 7].map((k) => `SHOP-${String(k).padStart(6, '0')}`));
    const feb = await json<{ invoices: InvoiceView[] }>(
      call(S.owner!, 'GET', '/api/v1/admin/billing/invoices?kind=user&month=2026-02'),
    );
    expect(new Set(feb.invoices.map((i) => i.subject)).size).toBe(5);
    expect(feb.invoices.map((i) => (i as InvoiceView & { billed_to: string }).billed_to).sort()).toEqual(
      ['dan', 'eve', 'fay', 'gus', 'hal'].map((u) => `${u}@shop.test`),
    );
    // dan's 0.42 of usage includes 20.5%: 42 split 1 : 0.2 : 0.005 is 34.85, 6.97 and 0.17;
    // of the two units left after flooring, one goes to the net and one to VAT (largest first).
    const dan = feb.invoices.find((i) => i.subject === ids.dan)!;
    expect(dan.tax_behavior).toBe('inclusive');
    expect(dan.tax_lines.map((t) => t.amount_minor)).toEqual([7, 0]);
    expect([dan.subtotal_minor, dan.tax_minor, dan.total_minor]).toEqual([42, 7, 42]);
    // January's invoices keep the tax they were issued with.
    const jan = await json<{ invoice: InvoiceView }>(
      call(S.dan!, 'GET', `/api/v1/billing/invoices/${danInvoice.id}`),
    );
    expect(jan.invoice.tax_behavior).toBe('exclusive');
  });
});

describe('immutability and voids', () => {
  test('an issued invoice refuses UPDATE and DELETE', async () => {
    await onDb((db) => {
      expect(() => db.run('UPDATE invoices SET total_minor = 0')).toThrow(/immutable/);
      expect(() => db.run('DELETE FROM invoices')).toThrow(/immutable/);
    });
  });

  test('a void is a new invoice that negates the original, which is unchanged', async () => {
    const v = await json<{ invoice: InvoiceView }>(
      call(S.owner!, 'POST', `/api/v1/admin/billing/invoices/${danInvoice.id}/void`),
    );
    expect(v.invoice).toMatchObject({
      status: 'void',
      voids: danInvoice.id,
      number: 'SHOP-000008',
      total_minor: -danInvoice.total_minor,
    });
    expect(v.invoice.lines[0]!.amount_minor).toBe(-danInvoice.lines[0]!.amount_minor);
    const again = await json<{ invoice: InvoiceView }>(
      call(S.owner!, 'POST', `/api/v1/admin/billing/invoices/${danInvoice.id}/void`),
    );
    expect(again.invoice.id).toBe(v.invoice.id);
    const orig = await json<{ invoice: InvoiceView }>(
      call(S.dan!, 'GET', `/api/v1/billing/invoices/${danInvoice.id}`),
    );
    expect(orig.invoice).toEqual(danInvoice);
  });
});

describe('reading', () => {
  test("a user lists and reads their own; another user's invoice or the operator's bill is a 404", async () => {
    const dans = await mine(S.dan!);
    expect(dans.every((i) => i.subject === ids.dan)).toBe(true);
    expect(dans.map((i) => i.number)).toContain('SHOP-000001');
    const eves = await mine(S.eve!);
    expect(eves.map((i) => i.number)).not.toContain('SHOP-000001');
    const bill = (
      await json<{ invoices: InvoiceView[] }>(
        call(S.owner!, 'GET', '/api/v1/admin/billing/invoices?kind=platform'),
      )
    ).invoices[0]!;
    for (const [who, path] of [
      [S.eve!, `/api/v1/billing/invoices/${danInvoice.id}`],
      [S.eve!, `/api/v1/billing/invoices/${danInvoice.id}?format=html`],
      [S.eve!, `/api/v1/billing/invoices/${danInvoice.id}?format=pdf`],
      [S.dan!, `/api/v1/billing/invoices/${bill.id}`],
      [S.dan!, `/api/v1/billing/invoices/inv_${'0'.repeat(26)}`],
    ] as const) {
      const r = await call(who, 'GET', path);
      expect(r.status).toBe(404);
      expect(((await r.json()) as { error: { code: string } }).error.code).toBe('billing.invoice_not_found');
    }
    expect((await call(S.eve!, 'GET', '/api/v1/admin/billing/invoices')).status).toBe(403);
    // An admin (billing:read) reads any.
    expect((await call(S.owner!, 'GET', `/api/v1/billing/invoices/${danInvoice.id}`)).status).toBe(200);
    expect((await call(S.owner!, 'GET', `/api/v1/billing/invoices/${bill.id}?format=pdf`)).status).toBe(200);
  });

  test('the HTML is printable, branded and escapes a hostile listing title', async () => {
    const r = await call(S.dan!, 'GET', `/api/v1/billing/invoices/${danInvoice.id}?format=html`);
    expect(r.status).toBe(200);
    expect(r.headers.get('content-type')).toStartWith('text/html');
    const html = await r.text();
    expect(html).not.toContain('<script>');
    expect(html).toContain('&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; Tax');
    expect(html).toContain('SHOP-000001');
    expect(html).toContain('42.74 USD');
    const color = s.tenancy.blueprintOf(platformId).identity.branding.colors.primary;
    expect(html).toContain(color);
    expect(html).toContain('@media print');
  });

  test('the PDF parses back with the number and the total', async () => {
    const r = await call(S.dan!, 'GET', `/api/v1/billing/invoices/${danInvoice.id}?format=pdf`);
    expect(r.status).toBe(200);
    expect(r.headers.get('content-type')).toBe('application/pdf');
    const text = await documentText(new Uint8Array(await r.arrayBuffer()), 'application/pdf');
    expect(text).toContain('SHOP-000001');
    expect(text).toContain('42.74 USD');
    expect(text).toContain('<script>alert("x")</script> & Tax');
    expect(text).toContain('VAT 20%');
  });
});

describe('the totals', () => {
  test('inclusive tax: the tax is within the lines; net + tax = the taxable subtotal', () => {
    const t = computeTotals(
      [
        { description: 'a', amountMicro: 1000n * M, code: 'x', ref: null, taxable: true },
        { description: 'b', amountMicro: 500n * M, code: 'topup', ref: null, taxable: false },
      ],
      [{ description: 'c', amountMicro: 200n * M, ref: null }],
      [{ name: 'VAT', percent_e4: 200_000 }],
      'inclusive',
    );
    // 1000 includes 20%: 1000 / 1.2 = 833.33 net, 166.67 tax → net 833 (+1 to the largest: 834), tax 166.
    expect(t.tax_lines).toEqual([{ name: 'VAT', percent: 20, amount_minor: 166 }]);
    expect(t.subtotal_minor).toBe(1500);
    expect(t.total_minor).toBe(1300);
  });

  test('property: lines sum to the subtotal, taxes to the tax, and the total is exact', () => {
    const micro = fc.bigInt({ min: -(10n ** 13n), max: 10n ** 13n });
    const line = fc.record({ amountMicro: micro, taxable: fc.boolean() });
    const rate = fc.integer({ min: 0, max: 1_000_000 });
    fc.assert(
      fc.property(
        fc.array(line, { maxLength: 12 }),
        fc.array(fc.bigInt({ min: 0n, max: 10n ** 12n }), { maxLength: 3 }),
        fc.array(rate, { maxLength: 3 }),
        fc.constantFrom('exclusive' as const, 'inclusive' as const),
        (ls, cs, rs, behavior) => {
          const drafts: DraftLine[] = ls.map((l, i) => ({
            description: `l${i}`,
            code: 'x',
            ref: null,
            ...l,
          }));
          const rates: TaxRate[] = rs.map((r, i) => ({ name: `r${i}`, percent_e4: r }));
          const t = computeTotals(
            drafts,
            cs.map((c) => ({ description: 'c', amountMicro: c, ref: null })),
            rates,
            behavior,
          );
          const sum = (xs: { amount_minor: number }[]) => xs.reduce((a, x) => a + BigInt(x.amount_minor), 0n);
          expect(sum(t.lines)).toBe(BigInt(t.subtotal_minor));
          expect(sum(t.tax_lines)).toBe(BigInt(t.tax_minor));
          expect(sum(t.credit_lines)).toBe(BigInt(t.credits_minor));
          // Each line is its exact amount rounded to the nearest minor unit (nothing else lost).
          t.lines.forEach((l, i) => {
            const d = BigInt(l.amount_minor) * M - drafts[i]!.amountMicro;
            expect(d <= M / 2n && d >= -M / 2n).toBe(true);
          });
          const taxable = BigInt(t.taxable_minor);
          expect(taxable).toBe(sum(t.lines.filter((l) => l.taxable)));
          const R = BigInt(rs.reduce((a, r) => a + r, 0));
          const tax = BigInt(t.tax_minor);
          if (behavior === 'exclusive') {
            expect(BigInt(t.total_minor)).toBe(BigInt(t.subtotal_minor) + tax - BigInt(t.credits_minor));
            const err = tax * 1_000_000n - taxable * R;
            expect(err <= 500_000n && err >= -500_000n).toBe(true);
          } else {
            expect(BigInt(t.total_minor)).toBe(BigInt(t.subtotal_minor) - BigInt(t.credits_minor));
            // tax / taxable = R / (1 + R), to within a minor unit per rate.
            const err = tax * (1_000_000n + R) - taxable * R;
            const bound = (1_000_000n + R) * BigInt(rs.length + 1);
            expect(err <= bound && err >= -bound).toBe(true);
          }
        },
      ),
      { numRuns: 500 },
    );
  });
});

describe("the plan's line on the operator's bill", () => {
  test('a yearly plan is billed in twelfths, the remainder in December; a free plan is no line', async () => {
    const made = await s.operatorApi('POST', '/plans', {
      id: 'yearly',
      name: 'Yearly',
      price_minor: 100_001,
      interval: 'year',
      ai_markup_percent: 20,
      transaction_fee_percent: 10,
    });
    expect(made.status).toBe(201);
    const yr = await s.operatorApi('POST', '/platforms', { slug: 'yr', template: 'creator' });
    expect(yr.status).toBe(201);
    expect((await s.operatorApi('PUT', '/platforms/yr/plan', { plan: 'yearly' })).status).toBe(200);
    const id = s.tenancy.get('yr').id;
    const line = (month: string) =>
      s.app.platformDbs.use(id, (db) =>
        planLineOf(
          { ...ctxOn(db), platform: { id, slug: 'yr', name: 'Yr' } } as unknown as PlatformRequestContext,
          month,
        ),
      );
    const months = await Promise.all(
      Array.from({ length: 12 }, (_, i) => line(`2026-${String(i + 1).padStart(2, '0')}`)),
    );
    expect(months[0]).toEqual({
      description: 'Yearly plan, 2026-01 (a twelfth of the yearly price)',
      amount_minor: 8333,
      currency: 'usd',
    });
    expect(months[11]!.amount_minor).toBe(100_001 - 11 * 8333);
    expect(months.reduce((a, m) => a + m!.amount_minor, 0)).toBe(100_001);
    const free = await s.operatorApi('POST', '/plans', {
      id: 'free-plan',
      name: 'Free',
      price_minor: 0,
      ai_markup_percent: 0,
      transaction_fee_percent: 0,
    });
    expect(free.status).toBe(201);
    expect((await s.operatorApi('PUT', '/platforms/yr/plan', { plan: 'free-plan' })).status).toBe(200);
    expect(await line('2026-05')).toBeNull();
  });
});
