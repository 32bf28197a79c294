/**
 * Buying a paid marketplace listing through Stripe (issue 13 items 4, 6, 7): the official SDK
 * pointed at a protocol-faithful Stripe server on 127.0.0.1 (tests/peers/stripe-stub.ts), its
 * webhooks delivered to the operator's endpoint through a loopback listener. A paid install
 * answers 402 with the checkout; paying posts the sale's creator, platform and operator legs;
 * the install then succeeds. Duplicate, replayed and reordered events change nothing; a
 * missing, tampered or stale signature is a 400 with no effect; partial and whole refunds
 * reverse the legs. Without Stripe, an admin records the payment by hand.
 */
import type { Database } from 'bun:sqlite';
import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import Stripe from 'stripe';
import { type InProcessServer, inProcessServer } from '../../tests/inproc.ts';
import { type OpenAIStub, startOpenAIStub } from '../../tests/peers/openai-stub.ts';
import { type StripeEmitted, type StripeStub, startStripeStub } from '../../tests/peers/stripe-stub.ts';
import { callAs, json, type Session, signInTo } from '../../tests/sessions.ts';
import { type LoopbackSmtp, startLoopbackSmtp } from '../../tests/smtp.ts';
import { waitFor } from '../../tests/wait.ts';
import { createUserRepository } from '../identity/index.ts';
import { accountId, findAccount, netCredit } from './index.ts';

const KEY_ENV = 'SOULFRA_TEST_STRIPE_KEY';
const WHSEC_ENV = 'SOULFRA_TEST_STRIPE_WHSEC';
const WHSEC = 'whsec_test_purchases';
const M = 1_000_000n;
const PASSWORD = 'a-long-password-12';

let stub: StripeStub;
let smtp: LoopbackSmtp;
let ai: OpenAIStub;
const models = () => ({
  providers: [
    { id: 'stub', kind: 'openai' as const, url: ai.url, location: 'on_prem' as const, timeout_ms: 5_000 },
  ],
  models: [{ alias: 'default', route: ['stub/gpt-4o-mini'] }],
});
let s: InProcessServer;
let hook: ReturnType<typeof Bun.serve>;
let platformId = '';
const S: Record<string, Session> = {};
let catId = '';
/** Deliveries held back instead of forwarded (to replay them in another order). */
let held: { payload: string; header: string }[] | null = null;

const call = (se: Session, method: string, path: string, body?: unknown) => callAs(s, se, method, path, body);
const toWebhook = (payload: string, header: string | null) =>
  s.request('localhost', '/_operator/api/billing/stripe/webhook', {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(header ? { 'stripe-signature': header } : {}) },
    body: payload,
  });
const onDb = <T>(fn: (db: Database) => T) => s.app.platformDbs.use(platformId, fn);
const balance = (id: string) => onDb((db) => (findAccount(db, id) ? netCredit(findAccount(db, id)!) : 0n));
const creator = () => balance(accountId('creator', catId, 'usd'));
const platform = () => balance(accountId('platform', '', 'usd'));
const operator = () => balance(accountId('operator', '', 'usd'));
const purchase = (id: string) =>
  onDb((db) =>
    db
      .query<{ status: string; refunded_minor: number }, [string]>(
        'SELECT status, refunded_minor FROM purchases WHERE id = ?',
      )
      .get(id),
  );

async function listPaidAgent(title: string, priceMinor: number): Promise<string> {
  const a = await json<{ agent: { id: string } }>(
    call(S.cat!, 'POST', '/api/v1/agents', { name: title, persona: 'Helps.' }),
  );
  expect((await call(S.cat!, 'POST', `/api/v1/agents/${a.agent.id}/publish`)).status).toBe(201);
  const l = await json<{ listing: { id: string; status: string } }>(
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
  expect(l.listing.status).toBe('published');
  return l.listing.id;
}

/** Pays a checkout on the stub's hosted page, as a buyer's browser would. */
async function pay(checkoutUrl: string): Promise<string> {
  const page = await fetch(checkoutUrl);
  expect(page.status).toBe(200);
  const done = await fetch(checkoutUrl, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: 'email=dan%40buy.test',
    redirect: 'manual',
  });
  expect(done.status).toBe(303);
  return done.headers.get('location')!;
}

beforeAll(async () => {
  process.env[KEY_ENV] = 'sk_test_purchases';
  process.env[WHSEC_ENV] = WHSEC;
  stub = await startStripeStub({ apiKey: 'sk_test_purchases' });
  ai = await startOpenAIStub({ models: ['gpt-4o-mini'] });
  smtp = await startLoopbackSmtp();
  s = await inProcessServer({
    config: {
      ...models(),
      mail: { from: 'noreply@mail.test', smtp: { host: '127.0.0.1', port: smtp.port, starttls: 'never' } },
      billing: { stripe: { secret_key_env: KEY_ENV, webhook_secret_env: WHSEC_ENV, api_base: stub.url } },
    },
  });
  // Stripe reaches the operator's endpoint through a loopback listener (the server here has none).
  hook = Bun.serve({
    hostname: '127.0.0.1',
    port: 0,
    fetch: async (req) => {
      const payload = await req.text();
      const header = req.headers.get('stripe-signature') ?? '';
      if (held) {
        held.push({ payload, header });
        return new Response('held', { status: 200 });
      }
      return toWebhook(payload, header);
    },
  });
  stub.addEndpoint(`http://127.0.0.1:${hook.port}/`, WHSEC);
  const made = await s.operatorApi('POST', '/platforms', { slug: 'shop', template: 'creator' });
  const owner = ((await made.json()) as { admin: { email: string; password: string } }).admin;
  platformId = s.tenancy.get('shop').id;
  S.owner = await signInTo(s, 'shop', owner.email, owner.password);
  for (const [name, role] of [
    ['cat', 'creator'],
    ['dan', 'member'],
    ['eve', 'member'],
    ['flo', 'member'],
  ] as const) {
    const email = `${name}@shop.test`;
    expect((await call(S.owner, 'POST', '/api/v1/users', { email, role, password: PASSWORD })).status).toBe(
      201,
    );
    S[name] = await signInTo(s, 'shop', email, PASSWORD);
  }
  catId = await onDb((db) => createUserRepository({ db }).byEmail('cat@shop.test')!.id);
  // The creator template's free tier allows one agent; cat is on Enterprise (no agents limit).
  expect(
    (
      await call(S.owner, 'POST', `/api/v1/admin/billing/subscriptions/${catId}`, {
        tier: 'enterprise',
        note: 'a test creator with many listings',
      })
    ).status,
  ).toBe(200);
});
afterAll(async () => {
  await s?.close();
  hook?.stop(true);
  await stub?.stop();
  await ai?.stop();
  await smtp?.close();
});

describe('buying a listing with Stripe Checkout', () => {
  let listing = '';
  let checkout = '';
  let paid: StripeEmitted;

  test('a paid install answers 402 with a checkout made from the stored public origin', async () => {
    listing = await listPaidAgent('Tax Pro', 999);
    const r = await call(S.dan!, 'POST', `/api/v1/marketplace/${listing}/install`);
    expect(r.status).toBe(402);
    const body = (await r.json()) as { error: { code: string; checkout_url: string; purchase_id: string } };
    expect(body.error.code).toBe('billing.payment_required');
    expect(body.error.checkout_url).toStartWith(`${stub.url}/pay/cs_`);
    checkout = body.error.checkout_url;
    const session = [...stub.state.checkoutSessions.values()].at(-1)!;
    expect(session.success_url).toBe(
      `http://shop.localhost:8080/app/marketplace/${listing}?checkout=success`,
    );
    expect(session.amount_total).toBe(999);
    expect(session.metadata).toEqual({
      platform_id: platformId,
      purchase_id: body.error.purchase_id,
      listing_id: listing,
    });
    // Asking again while it is open gives the same checkout, not a second one.
    const again = (await (
      await call(S.dan!, 'POST', `/api/v1/marketplace/${listing}/install`)
    ).json()) as typeof body;
    expect(again.error.checkout_url).toBe(checkout);
    expect(stub.state.checkoutSessions.size).toBe(1);
  });

  test('paying posts the creator, platform and operator legs; the install then succeeds', async () => {
    const back = await pay(checkout);
    expect(back).toBe(`http://shop.localhost:8080/app/marketplace/${listing}?checkout=success`);
    paid = await stub.delivered('checkout.session.completed');
    expect(paid.status).toBe(200);
    // 9.99 at 70/30 with the operator's 15% from the platform's side.
    expect(await creator()).toBe(6993n * 100_000n);
    expect(await operator()).toBe(14985n * 10_000n);
    expect(await platform()).toBe(999n * M - 6993n * 100_000n - 14985n * 10_000n);
    expect((await call(S.dan!, 'POST', `/api/v1/marketplace/${listing}/install`)).status).toBe(201);
    const mine = await json<{ purchases: { status: string; listing_id: string }[] }>(
      call(S.dan!, 'GET', '/api/v1/billing/purchases'),
    );
    expect(mine.purchases).toMatchObject([{ status: 'paid', listing_id: listing }]);
  });

  test('a duplicate or replayed event changes nothing', async () => {
    const before = [await creator(), await platform(), await operator()];
    const r = await toWebhook(paid.payload, paid.header);
    expect(r.status).toBe(200);
    expect(((await r.json()) as { applied: string }).applied).toBe('duplicate');
    expect([await creator(), await platform(), await operator()]).toEqual(before);
  });

  test('attack table: a missing, tampered, foreign or stale signature is a 400 with no effect', async () => {
    const before = [await creator(), await platform(), await operator()];
    const tampered = paid.payload.replace(/"amount_total":(\s*)999/, '"amount_total":$11');
    expect(tampered).not.toBe(paid.payload);
    const other = await Stripe.webhooks.generateTestHeaderStringAsync({
      payload: paid.payload,
      secret: 'whsec_someone_else',
    });
    const stale = await Stripe.webhooks.generateTestHeaderStringAsync({
      payload: paid.payload,
      secret: WHSEC,
      timestamp: Math.floor(Date.now() / 1000) - 3600,
    });
    for (const [name, payload, header] of [
      ['missing', paid.payload, null],
      ['tampered', tampered, paid.header],
      ['foreign secret', paid.payload, other],
      ['stale', paid.payload, stale],
      ['garbage', paid.payload, 't=1,v1=00'],
    ] as const) {
      const r = await toWebhook(payload, header);
      expect([name, r.status, ((await r.json()) as { error?: { code: string } }).error?.code]).toEqual([
        name,
        400,
        'billing.signature_invalid',
      ]);
    }
    expect([await creator(), await platform(), await operator()]).toEqual(before);
  });

  test('a partial then a whole refund reverse the legs; an older refund event changes nothing', async () => {
    const pi = [...stub.state.paymentIntents.values()].at(-1)!.id;
    const purchaseId = String(
      (stub.state.checkoutSessions.values().next().value!.metadata as Record<string, string>).purchase_id,
    );
    await stub.refund({ payment_intent: pi, amount: 333 });
    const first = await stub.delivered('charge.refunded');
    expect(first.status).toBe(200);
    expect(await purchase(purchaseId)).toEqual({ status: 'paid', refunded_minor: 333 });
    // 3.33 of 9.99 refunded: a third of each leg.
    expect(await creator()).toBe(4662n * 100_000n);
    await stub.refund({ payment_intent: pi });
    await stub.idle();
    expect(await purchase(purchaseId)).toEqual({ status: 'refunded', refunded_minor: 999 });
    expect([await creator(), await platform(), await operator()]).toEqual([0n, 0n, 0n]);
    // The first refund's event again, under a new id (as a resend would be): nothing more.
    const resent = first.payload.replace(String(first.event.id), `${String(first.event.id)}x`);
    const header = await Stripe.webhooks.generateTestHeaderStringAsync({ payload: resent, secret: WHSEC });
    expect((await toWebhook(resent, header)).status).toBe(200);
    expect([await creator(), await platform(), await operator()]).toEqual([0n, 0n, 0n]);
    // Refunded: installing again needs a new purchase.
    expect((await call(S.dan!, 'POST', `/api/v1/marketplace/${listing}/install`)).status).toBe(402);
  });

  test('events out of order: the refund before the checkout still posts the sale, then the refund', async () => {
    const l2 = await listPaidAgent('Chef Pro', 500);
    const r = (await (await call(S.eve!, 'POST', `/api/v1/marketplace/${l2}/install`)).json()) as {
      error: { checkout_url: string; purchase_id: string };
    };
    held = [];
    await pay(r.error.checkout_url);
    await stub.idle();
    const pi = [...stub.state.paymentIntents.values()].at(-1)!.id;
    await stub.refund({ payment_intent: pi, amount: 100 });
    await stub.idle();
    const deliveries = held;
    held = null;
    const types = deliveries.map((d) => (JSON.parse(d.payload) as { type: string }).type);
    expect(types).toContain('checkout.session.completed');
    expect(types).toContain('charge.refunded');
    const before = await creator();
    for (const d of [...deliveries].reverse())
      expect((await toWebhook(d.payload, d.header)).status).toBe(200);
    expect(await purchase(r.error.purchase_id)).toEqual({ status: 'paid', refunded_minor: 100 });
    // 5.00 sold, 1.00 refunded: the creator keeps 70% of 4.00.
    expect((await creator()) - before).toBe(280n * M);
    // And all of them once more, in order: nothing changes.
    const after = [await creator(), await platform(), await operator()];
    for (const d of deliveries) expect((await toWebhook(d.payload, d.header)).status).toBe(200);
    expect([await creator(), await platform(), await operator()]).toEqual(after);
  });
});

describe('prepaid credits', () => {
  test('a top-up is usable at once: a listing bought with credits, an overspend refused', async () => {
    const l3 = await listPaidAgent('Poem Pro', 700);
    // Bad amounts name the field.
    const bad = await call(S.eve!, 'POST', '/api/v1/billing/topups', { amount_minor: 5 });
    expect(bad.status).toBe(400);
    const top = await json<{ topup: { id: string; status: string }; checkout_url: string }>(
      call(S.eve!, 'POST', '/api/v1/billing/topups', { amount_minor: 1000 }),
    );
    expect(top.topup.status).toBe('open');
    const session = [...stub.state.checkoutSessions.values()].at(-1)!;
    expect(session.success_url).toBe('http://shop.localhost:8080/app/billing?topup=success');
    // Not paid yet: no credits; credits cannot be forced.
    const none = await json<{ credits: { balance_minor: number } }>(
      call(S.eve!, 'GET', '/api/v1/billing/credits'),
    );
    expect(none.credits.balance_minor).toBe(0);
    const forced = await call(S.eve!, 'POST', `/api/v1/marketplace/${l3}/install`, { pay_with: 'credits' });
    expect([forced.status, ((await forced.json()) as { error: { code: string } }).error.code]).toEqual([
      402,
      'billing.credits_insufficient',
    ]);
    await pay(top.checkout_url);
    await stub.idle();
    // The buyer's return checks it again: nothing more is posted.
    const back = await json<{ topup: { status: string } }>(
      call(S.eve!, 'POST', `/api/v1/billing/topups/${top.topup.id}/sync`),
    );
    expect(back.topup.status).toBe('paid');
    const mine = await json<{
      credits: { balance_minor: number; balance_micro: number };
      topups: { status: string }[];
    }>(call(S.eve!, 'GET', '/api/v1/billing/credits'));
    expect(mine.credits.balance_minor).toBe(1000);
    expect(mine.topups.map((t) => t.status)).toEqual(['paid']);
    // Someone else cannot see or sync it.
    expect((await call(S.dan!, 'POST', `/api/v1/billing/topups/${top.topup.id}/sync`)).status).toBe(404);
    // Credits cover 7.00: bought at once, no checkout; the sale's legs come from the credits.
    const sessions = stub.state.checkoutSessions.size;
    const before = await creator();
    expect((await call(S.eve!, 'POST', `/api/v1/marketplace/${l3}/install`)).status).toBe(201);
    expect(stub.state.checkoutSessions.size).toBe(sessions);
    expect((await creator()) - before).toBe(490n * M);
    const left = await json<{ credits: { balance_minor: number } }>(
      call(S.eve!, 'GET', '/api/v1/billing/credits'),
    );
    expect(left.credits.balance_minor).toBe(300);
    // 3.00 left cannot buy a 5.00 listing with credits; by default it goes to a checkout.
    const l4 = await listPaidAgent('Song Pro', 500);
    const over = await call(S.eve!, 'POST', `/api/v1/marketplace/${l4}/install`, { pay_with: 'credits' });
    expect(over.status).toBe(402);
    const card = (await (await call(S.eve!, 'POST', `/api/v1/marketplace/${l4}/install`)).json()) as {
      error: { checkout_url: string };
    };
    expect(card.error.checkout_url).toStartWith(`${stub.url}/pay/`);
    expect(await onDb((db) => findAccount(db, accountId('credits', '', 'usd')))).toBeNull();
  });
});

describe('reports', () => {
  test("creator earnings, the platform's revenue and the operator's fees agree with the ledger", async () => {
    const earn = await json<{
      earned_micro: number;
      listings: { listing_id: string; earned_micro: number }[];
    }>(call(S.cat!, 'GET', '/api/v1/billing/earnings'));
    expect(BigInt(earn.earned_micro)).toBe(await creator());
    expect(earn.listings.reduce((a, l) => a + BigInt(l.earned_micro), 0n)).toBe(await creator());
    // Members are not creators; the revenue is for billing:read.
    expect((await call(S.dan!, 'GET', '/api/v1/billing/earnings')).status).toBe(403);
    expect((await call(S.dan!, 'GET', '/api/v1/admin/billing/revenue')).status).toBe(403);
    const rev = await json<{
      marketplace: {
        gross_micro: number;
        creators_micro: number;
        platform_net_micro: number;
        operator_fees_micro: number;
        sales: number;
        refunds: number;
      };
    }>(call(S.owner!, 'GET', '/api/v1/admin/billing/revenue'));
    const m = rev.marketplace;
    expect(BigInt(m.creators_micro)).toBe(await creator());
    expect(BigInt(m.operator_fees_micro)).toBe(await operator());
    expect(BigInt(m.gross_micro)).toBe(
      BigInt(m.creators_micro) + BigInt(m.platform_net_micro) + BigInt(m.operator_fees_micro),
    );
    // Sales so far less refunds: 9.99 (refunded), 5.00 − 1.00, 7.00 from credits.
    expect(BigInt(m.gross_micro)).toBe((400n + 700n) * M);
    // Three sales (9.99, 5.00, 7.00); three refunds (3.33 and the rest of 9.99, 1.00 of 5.00).
    expect([m.sales, m.refunds]).toEqual([3, 3]);
    const fees = await json<{ platforms: { slug: string; operator_fees_micro: number }[] }>(
      s.operatorApi('GET', '/billing/fees'),
    );
    expect(fees.platforms.find((p) => p.slug === 'shop')?.operator_fees_micro).toBe(m.operator_fees_micro);
    expect((await s.operatorApi('GET', '/billing/fees', undefined, 'sf_op_bogus')).status).toBe(401);
    // Per month: every fee so far is this month's.
    const monthly = await json<{
      platforms: { slug: string; months: { month: string; operator_fees_micro: number }[] }[];
    }>(s.operatorApi('GET', '/billing/fees/monthly'));
    const shop = monthly.platforms.find((p) => p.slug === 'shop')!;
    expect(shop.months).toHaveLength(12);
    expect(shop.months.at(-1)).toEqual({
      month: new Date(s.app.clock.now()).toISOString().slice(0, 7),
      operator_fees_micro: m.operator_fees_micro,
    });
    expect(shop.months.slice(0, -1).every((x) => x.operator_fees_micro === 0)).toBe(true);
    expect((await s.operatorApi('GET', '/billing/fees/monthly', undefined, 'sf_op_bogus')).status).toBe(401);
  });
});

describe('without Stripe', () => {
  let t: InProcessServer;
  afterAll(async () => {
    await t?.close();
  });

  test('an admin records the payment by hand; the same legs are posted', async () => {
    t = await inProcessServer({ config: models() });
    const made = await t.operatorApi('POST', '/platforms', { slug: 'offline', template: 'creator' });
    const owner = ((await made.json()) as { admin: { email: string; password: string } }).admin;
    const pid = t.tenancy.get('offline').id;
    const own = await signInTo(t, 'offline', owner.email, owner.password);
    for (const [email, role] of [
      ['cat@off.test', 'creator'],
      ['dan@off.test', 'member'],
    ])
      expect(
        (await callAs(t, own, 'POST', '/api/v1/users', { email, role, password: PASSWORD })).status,
      ).toBe(201);
    const cat = await signInTo(t, 'offline', 'cat@off.test', PASSWORD);
    const dan = await signInTo(t, 'offline', 'dan@off.test', PASSWORD);
    const a = await json<{ agent: { id: string } }>(
      callAs(t, cat, 'POST', '/api/v1/agents', { name: 'Offline', persona: 'x' }),
    );
    await callAs(t, cat, 'POST', `/api/v1/agents/${a.agent.id}/publish`);
    const l = await json<{ listing: { id: string } }>(
      callAs(t, cat, 'POST', `/api/v1/agents/${a.agent.id}/listing`, {
        title: 'Offline helper',
        summary: 'Paid by hand.',
        category: 'productivity',
        tags: [],
        price_model: 'one_time',
        price_minor: 2000,
        currency: 'usd',
      }),
    );
    const r = await callAs(t, dan, 'POST', `/api/v1/marketplace/${l.listing.id}/install`);
    expect(r.status).toBe(402);
    const id = ((await r.json()) as { error: { purchase_id: string } }).error.purchase_id;
    expect(id).toMatch(/^pur_/);
    // A member cannot record it; a missing note is refused; the owner records it.
    expect(
      (await callAs(t, dan, 'POST', `/api/v1/admin/billing/purchases/${id}/payment`, { note: 'cash' }))
        .status,
    ).toBe(403);
    expect((await callAs(t, own, 'POST', `/api/v1/admin/billing/purchases/${id}/payment`, {})).status).toBe(
      400,
    );
    const ok = await callAs(t, own, 'POST', `/api/v1/admin/billing/purchases/${id}/payment`, {
      note: 'bank transfer 42',
    });
    expect(ok.status).toBe(200);
    expect(
      (await callAs(t, own, 'POST', `/api/v1/admin/billing/purchases/${id}/payment`, { note: 'again' }))
        .status,
    ).toBe(409);
    expect((await callAs(t, dan, 'POST', `/api/v1/marketplace/${l.listing.id}/install`)).status).toBe(201);
    const ledger = await json<{ accounts: { id: string; credits_posted_micro: number }[] }>(
      callAs(t, own, 'GET', '/api/v1/admin/billing/ledger'),
    );
    const creatorId = await t.app.platformDbs.use(
      pid,
      (db) => createUserRepository({ db }).byEmail('cat@off.test')!.id,
    );
    expect(
      ledger.accounts.find((x) => x.id === accountId('creator', creatorId, 'usd'))?.credits_posted_micro,
    ).toBe(1400 * 1_000_000);
    // The webhook answers 404 on an instance with no Stripe account.
    const w = await t.request('localhost', '/_operator/api/billing/stripe/webhook', {
      method: 'POST',
      body: '{}',
      headers: { 'stripe-signature': 't=1,v1=0' },
    });
    expect(w.status).toBe(404);
  });
});

describe('the low-balance notice', () => {
  const lowMails = () =>
    onDb((db) =>
      db
        .query<{ to_email: string }, []>(
          "SELECT to_email FROM outbox WHERE template = 'credits_low' AND to_email = 'flo@shop.test'",
        )
        .all(),
    );
  const topUp = async (who: string, amount: number) => {
    const t = await json<{ checkout_url: string }>(
      call(S[who]!, 'POST', '/api/v1/billing/topups', { amount_minor: amount }),
    );
    await pay(t.checkout_url);
    await stub.idle();
  };

  test('one mail per crossing below the threshold, re-armed by a top-up; the field is named', async () => {
    // The default threshold is 5.00; flo sets hers to 4.00.
    const d = await json<{ settings: { low_balance_minor: number; low_balance_default: boolean } }>(
      call(S.flo!, 'GET', '/api/v1/billing/credits/settings'),
    );
    expect(d.settings).toMatchObject({ low_balance_minor: 500, low_balance_default: true });
    for (const bad of [-1, 2.5, 2_000_000]) {
      const r = await call(S.flo!, 'PUT', '/api/v1/billing/credits/settings', { low_balance_minor: bad });
      expect(r.status).toBe(400);
      const e = ((await r.json()) as { error: { message: string } }).error;
      expect(e.message).toContain('low_balance_minor');
    }
    const set = await json<{ settings: { low_balance_minor: number; low_balance_default: boolean } }>(
      call(S.flo!, 'PUT', '/api/v1/billing/credits/settings', { low_balance_minor: 400 }),
    );
    expect(set.settings).toMatchObject({ low_balance_minor: 400, low_balance_default: false });

    await topUp('flo', 1000);
    const [a, b, c2, d2, e2, f2] = [
      await listPaidAgent('Low One', 300),
      await listPaidAgent('Low Two', 300),
      await listPaidAgent('Low Three', 100),
      await listPaidAgent('Low Four', 700),
      await listPaidAgent('Low Five', 100),
      await listPaidAgent('Low Six', 600),
    ];
    const buy = async (l: string) =>
      expect((await call(S.flo!, 'POST', `/api/v1/marketplace/${l}/install`)).status).toBe(201);
    // 10.00 → 7.00 → 4.00: not below 4.00, no mail.
    await buy(a);
    await buy(b);
    expect(await lowMails()).toEqual([]);
    // 4.00 → 3.00: below; one mail.
    await buy(c2);
    expect((await lowMails()).map((m) => m.to_email)).toEqual(['flo@shop.test']);
    const got = await waitFor(
      () =>
        smtp.received.find(
          (r) => r.mail.subject?.includes('credits are running low') && r.to.includes('flo@shop.test'),
        ),
      { what: 'the low-balance mail' },
    );
    expect(got.to).toContain('flo@shop.test');
    expect(got.mail.text).toContain('3.00 USD');
    // A top-up back above the threshold re-arms it: 8.00 → 1.00 mails once more.
    await topUp('flo', 500);
    expect((await lowMails()).length).toBe(1);
    await buy(d2);
    expect((await lowMails()).length).toBe(2);
    // Another spend while still below (1.00 → 0.00): no third mail.
    await buy(e2);
    expect((await lowMails()).length).toBe(2);
    // Re-armed by a top-up (6.00), crossed again (0.00): a third mail.
    await topUp('flo', 600);
    await buy(f2);
    expect((await lowMails()).length).toBe(3);
    const left = await json<{ credits: { balance_minor: number } }>(
      call(S.flo!, 'GET', '/api/v1/billing/credits'),
    );
    expect(left.credits.balance_minor).toBe(0);
  });
});
