/**
 * A platform's plans for its users through Stripe subscriptions (issue 13 items 2, 6, 7): the
 * official SDK pointed at a protocol-faithful Stripe on 127.0.0.1 (tests/peers/stripe-stub.ts),
 * its webhooks delivered to the operator's endpoint through a loopback listener. Subscribing
 * answers a Checkout in mode subscription; paying makes the plan active and posts one ledger
 * chain per paid invoice; a failed renewal is past due, kept within the grace period and the
 * free tier after it; a deleted subscription is the free tier. Duplicate, replayed and
 * reordered events change nothing; a tampered signature is a 400. Limits: requests_per_day
 * (429), agents (402), seats (402). A fast-check property drives random sequences of Stripe
 * events, held and delivered shuffled and duplicated.
 */
import type { Database } from 'bun:sqlite';
import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import fc from 'fast-check';
import Stripe from 'stripe';
import { type InProcessServer, inProcessServer } from '../../tests/inproc.ts';
import { type OpenAIStub, startOpenAIStub } from '../../tests/peers/openai-stub.ts';
import { type StripeStub, type StubObject, startStripeStub } from '../../tests/peers/stripe-stub.ts';
import { callAs, json, type Session, signInTo } from '../../tests/sessions.ts';
import { createUserRepository } from '../identity/index.ts';
import { accountId, findAccount, listAccounts, netCredit } from './index.ts';
import { platformOfStripeObject } from './stripe-objects.repository.ts';

const KEY = 'sk_test_subscriptions';
const KEY_ENV = 'SOULFRA_TEST_SUBS_KEY';
const WHSEC_ENV = 'SOULFRA_TEST_SUBS_WHSEC';
const WHSEC = 'whsec_test_subscriptions';
const M = 1_000_000n;
const DAY = 86_400_000;
const PASSWORD = 'a-long-password-12';
const TIERS = [
  {
    id: 'free',
    name: 'Free',
    price: { amount: 0, currency: 'usd' },
    interval: 'month',
    features: ['2 requests a day'],
    limits: { requests_per_day: 2, agents: 1, seats: 1 },
  },
  {
    id: 'pro',
    name: 'Pro',
    price: { amount: 1900, currency: 'usd' },
    interval: 'month',
    features: ['5 requests a day'],
    limits: { requests_per_day: 5, agents: 3, seats: 1 },
  },
  {
    id: 'team',
    name: 'Team',
    price: { amount: 4900, currency: 'usd' },
    interval: 'month',
    features: ['3 seats'],
    limits: { requests_per_day: 100, agents: 10, seats: 3 },
  },
];

let stub: StripeStub;
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
const ID: Record<string, string> = {};
/** Deliveries held back instead of forwarded (to replay them in another order). */
let held: { payload: string; header: string }[] | null = null;
let sdk: Stripe;
const PASSWORDS: Record<string, [string, string]> = {};

/** Moves the app's clock (sessions expire with it: everyone signs in again). */
async function advance(ms: number) {
  s.clock.advance(ms);
  for (const [name, [email, password]] of Object.entries(PASSWORDS))
    S[name] = await signInTo(s, 'club', email, password);
}

const call = (se: Session, method: string, path: string, body?: unknown) => callAs(s, se, method, path, body);
const toWebhook = (payload: string, header: string | null) =>
  s.request('localhost', '/_operator/api/billing/stripe/webhook', {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(header ? { 'stripe-signature': header } : {}) },
    body: payload,
  });
const onDb = <T>(fn: (db: Database) => T) => s.app.platformDbs.use(platformId, fn);
const balance = (id: string) => onDb((db) => (findAccount(db, id) ? netCredit(findAccount(db, id)!) : 0n));
/** Every account's balance that is not zero (AI usage at no cost opens accounts as it is posted). */
const balances = () =>
  onDb((db) =>
    Object.fromEntries(
      listAccounts(db)
        .map((a) => [a.id, netCredit(a)] as const)
        .filter(([, n]) => n !== 0n),
    ),
  );
const ledgerSum = () => onDb((db) => listAccounts(db).reduce((n, a) => n + netCredit(a), 0n));
const postings = (invoice: string) =>
  onDb((db) =>
    db
      .query<
        { id: string; debit: string; credit: string; amount: bigint; code: string; ref: string },
        [string]
      >(
        "SELECT id, debit, credit, amount, code, ref FROM ledger_postings WHERE id LIKE ? || ':%' ORDER BY seq",
      )
      .all(invoice)
      .map((t) => ({ ...t, amount: BigInt(t.amount) })),
  );
const paymentsOf = (invoice: string) =>
  onDb(
    (db) =>
      db
        .query<{ n: number }, [string]>(
          "SELECT count(*) AS n FROM ledger_postings WHERE code = 'payment' AND ref = ?",
        )
        .get(invoice)!.n,
  );

interface PlanBody {
  plan: {
    tier: { id: string } | null;
    status: string;
    via: string;
    seats: number;
    current_period_end: string | null;
    cancel_at_period_end: boolean;
    grace_ends_at: string | null;
    subscription: { tier: string; status: string } | null;
    method: string | null;
  };
  limits: { requests_per_day: number | null; agents: number | null; seats: number | null };
  usage: { requests_today: number; agents: number };
  tiers: { id: string; current: boolean }[];
}
const plan = (who: string) => json<PlanBody>(call(S[who]!, 'GET', '/api/v1/billing/subscription'));
const subOf = (who: string) =>
  onDb((db) =>
    db
      .query<{ stripe_subscription: string | null; status: string }, [string]>(
        'SELECT stripe_subscription, status FROM subscriptions WHERE user_id = ?',
      )
      .get(ID[who]!),
  );

/** Pays a checkout on the stub's hosted page, as a buyer's browser would. */
async function pay(checkoutUrl: string): Promise<string> {
  const page = await fetch(checkoutUrl);
  expect(page.status).toBe(200);
  const done = await fetch(checkoutUrl, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: 'email=buyer%40club.test',
    redirect: 'manual',
  });
  expect(done.status).toBe(303);
  return done.headers.get('location')!;
}

/** Subscribes `who` to `tier` and pays; answers the Stripe subscription's id. */
async function subscribePaid(who: string, tier: string, seats?: number): Promise<string> {
  const r = await call(S[who]!, 'POST', '/api/v1/billing/subscription', {
    tier,
    ...(seats ? { seats } : {}),
  });
  expect(r.status).toBe(201);
  const { checkout_url } = (await r.json()) as { checkout_url: string };
  await pay(checkout_url);
  await stub.idle();
  return (await subOf(who))!.stripe_subscription!;
}

const chat = (who: string) =>
  call(S[who]!, 'POST', '/v1/chat/completions', {
    model: 'default',
    messages: [{ role: 'user', content: 'hello' }],
  });

beforeAll(async () => {
  process.env[KEY_ENV] = KEY;
  process.env[WHSEC_ENV] = WHSEC;
  stub = await startStripeStub({ apiKey: KEY });
  sdk = new Stripe(KEY, { host: stub.host, port: stub.port, protocol: 'http' });
  ai = await startOpenAIStub({ models: ['gpt-4o-mini'] });
  s = await inProcessServer({
    config: {
      ...models(),
      billing: { stripe: { secret_key_env: KEY_ENV, webhook_secret_env: WHSEC_ENV, api_base: stub.url } },
    },
  });
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
  const made = await s.operatorApi('POST', '/platforms', {
    slug: 'club',
    template: 'creator',
    blueprint: { monetization: { subscription_tiers: TIERS } },
  });
  expect(made.status).toBe(201);
  const owner = ((await made.json()) as { admin: { email: string; password: string } }).admin;
  platformId = s.tenancy.get('club').id;
  S.owner = await signInTo(s, 'club', owner.email, owner.password);
  PASSWORDS.owner = [owner.email, owner.password];
  for (const [name, role] of [
    ['dan', 'member'],
    ['eve', 'creator'],
    ['fay', 'member'],
    ['gus', 'member'],
    ['hal', 'member'],
    ['pat', 'member'],
  ] as const) {
    const email = `${name}@club.test`;
    expect((await call(S.owner, 'POST', '/api/v1/users', { email, role, password: PASSWORD })).status).toBe(
      201,
    );
    S[name] = await signInTo(s, 'club', email, PASSWORD);
    PASSWORDS[name] = [email, PASSWORD];
    ID[name] = await onDb((db) => createUserRepository({ db }).byEmail(email)!.id);
  }
});
afterAll(async () => {
  await s?.close();
  hook?.stop(true);
  await stub?.stop();
  await ai?.stop();
});

describe('subscribing through Stripe', () => {
  let subId = '';
  let invoice = '';

  test('a user without a subscription is on the free tier: its limits and usage', async () => {
    const p = await plan('dan');
    expect(p.plan).toMatchObject({ tier: { id: 'free' }, status: 'free', via: 'free', subscription: null });
    expect(p.limits).toEqual({ requests_per_day: 2, agents: 1, seats: 1 });
    expect(p.usage).toEqual({ requests_today: 0, agents: 0 });
    expect(p.tiers.map((t) => [t.id, t.current])).toEqual([
      ['free', true],
      ['pro', false],
      ['team', false],
    ]);
    // Choosing the free tier needs no checkout.
    const r = await call(S.dan!, 'POST', '/api/v1/billing/subscription', { tier: 'free' });
    expect(r.status).toBe(200);
    expect(stub.state.checkoutSessions.size).toBe(0);
    // An unknown tier, or more seats than the tier has, are refused.
    expect((await call(S.dan!, 'POST', '/api/v1/billing/subscription', { tier: 'gold' })).status).toBe(404);
    const seats = await call(S.dan!, 'POST', '/api/v1/billing/subscription', { tier: 'team', seats: 4 });
    expect(seats.status).toBe(400);
  });

  test('subscribe: 201 with a Checkout in mode subscription for a recorded customer, links from the stored origin', async () => {
    const r = await call(S.dan!, 'POST', '/api/v1/billing/subscription', { tier: 'pro' });
    expect(r.status).toBe(201);
    const { checkout_url } = (await r.json()) as { checkout_url: string };
    expect(checkout_url).toStartWith(`${stub.url}/pay/cs_`);
    const session = [...stub.state.checkoutSessions.values()].at(-1)!;
    expect(session.mode).toBe('subscription');
    expect(session.success_url).toBe('http://club.localhost:8080/app/billing?subscription=success');
    expect(session.cancel_url).toBe('http://club.localhost:8080/app/pricing?subscription=cancel');
    expect(session.metadata).toEqual({ platform_id: platformId, user_id: ID.dan, tier_id: 'pro' });
    const customer = String(session.customer);
    expect(customer).toStartWith('cus_');
    expect(platformOfStripeObject(s.app.control, customer)).toBe(platformId);
    const made = stub.requests.find((q) => q.method === 'POST' && q.path === '/v1/checkout/sessions')!;
    expect(made.headers['idempotency-key']).toBeTruthy();
    expect(made.body.line_items).toEqual([
      {
        quantity: '1',
        price_data: {
          currency: 'usd',
          unit_amount: '1900',
          recurring: { interval: 'month' },
          product_data: { name: expect.stringContaining('Pro') },
        },
      },
    ]);
    // Not paid yet: still the free tier. Asking again gives the same checkout; another tier
    // expires it and makes a new one (never two open checkouts).
    expect((await plan('dan')).plan.tier?.id).toBe('free');
    const same = await json<{ checkout_url: string }>(
      call(S.dan!, 'POST', '/api/v1/billing/subscription', { tier: 'pro' }),
    );
    expect(same.checkout_url).toBe(checkout_url);
    const other = await json<{ checkout_url: string }>(
      call(S.dan!, 'POST', '/api/v1/billing/subscription', { tier: 'team' }),
    );
    expect(other.checkout_url).not.toBe(checkout_url);
    expect(session.status).toBe('expired');
    const back2 = await json<{ checkout_url: string }>(
      call(S.dan!, 'POST', '/api/v1/billing/subscription', { tier: 'pro' }),
    );
    const checkout_url2 = back2.checkout_url;

    // Paying: the subscription is active, its period recorded, and one chain posted.
    expect(await pay(checkout_url2)).toBe('http://club.localhost:8080/app/billing?subscription=success');
    await stub.idle();
    subId = (await subOf('dan'))!.stripe_subscription!;
    expect(subId).toStartWith('sub_');
    expect(platformOfStripeObject(s.app.control, subId)).toBe(platformId);
    const p = await plan('dan');
    expect(p.plan).toMatchObject({ tier: { id: 'pro' }, status: 'active', via: 'own', seats: 1 });
    expect(p.plan.current_period_end).not.toBeNull();
    expect(p.limits).toEqual({ requests_per_day: 5, agents: 3, seats: 1 });
    invoice = String(stub.state.subscriptions.get(subId)!.latest_invoice);
    const user = accountId('end_user', ID.dan!, 'usd');
    expect(await postings(invoice)).toEqual([
      {
        id: `${invoice}:payment`,
        debit: 'processor::usd',
        credit: user,
        amount: 1900n * M,
        code: 'payment',
        ref: invoice,
      },
      {
        id: `${invoice}:subscription`,
        debit: user,
        credit: 'platform::usd',
        amount: 1900n * M,
        code: 'subscription',
        ref: 'pro',
      },
      // The operator's 15% transaction fee from the platform's side.
      {
        id: `${invoice}:fee`,
        debit: 'platform::usd',
        credit: 'operator::usd',
        amount: 285n * M,
        code: 'fee',
        ref: 'pro',
      },
    ]);
    expect(await balance(accountId('platform', '', 'usd'))).toBe(1615n * M);
    expect(await balance(accountId('operator', '', 'usd'))).toBe(285n * M);
    expect(await balance(user)).toBe(0n);
    expect(await ledgerSum()).toBe(0n);
    // The return syncs too (nothing new to post).
    const back = await json<PlanBody>(call(S.dan!, 'POST', '/api/v1/billing/subscription/sync'));
    expect(back.plan.status).toBe('active');
    expect(await paymentsOf(invoice)).toBe(1);
    // Subscribing again while subscribed: change tier instead.
    expect((await call(S.dan!, 'POST', '/api/v1/billing/subscription', { tier: 'team' })).status).toBe(409);
  });

  test('requests_per_day: the free tier refuses the third call with 429 and the upgrade; Pro allows more', async () => {
    for (let i = 0; i < 2; i++) expect((await chat('eve')).status).toBe(200);
    const r = await chat('eve');
    expect(r.status).toBe(429);
    const body = (await r.json()) as { error: Record<string, unknown> };
    expect(body.error).toMatchObject({
      code: 'billing.limit_reached',
      limit: 'requests_per_day',
      limit_value: 2,
      used: 2,
      upgrade_tier: 'pro',
      upgrade_url: 'http://club.localhost:8080/app/pricing',
    });
    expect(String(body.error.message)).toContain('requests_per_day');
    for (let i = 0; i < 3; i++) expect((await chat('dan')).status).toBe(200);
    expect((await plan('dan')).usage.requests_today).toBe(3);
    // The platform's staff are not limited.
    for (let i = 0; i < 3; i++) expect((await chat('owner')).status).toBe(200);
  });

  test("requests_per_day: a chat's messages count too, with the same limit", async () => {
    const conv = (
      await json<{ conversation: { id: string } }>(call(S.hal!, 'POST', '/api/v1/conversations', {}))
    ).conversation;
    for (let i = 0; i < 2; i++) {
      const r = await call(S.hal!, 'POST', `/api/v1/conversations/${conv.id}/messages`, { content: 'hi' });
      expect(r.status).toBe(200);
      expect(await r.text()).toContain('event: done');
    }
    const over = await call(S.hal!, 'POST', `/api/v1/conversations/${conv.id}/messages`, { content: 'hi' });
    expect(over.status).toBe(429);
    expect(((await over.json()) as { error: unknown }).error).toMatchObject({
      code: 'billing.limit_reached',
      limit: 'requests_per_day',
      used: 2,
    });
    // The same count answers the API.
    expect((await chat('hal')).status).toBe(429);
  });

  test('agents: the free tier allows one; the second is 402 with the upgrade path', async () => {
    expect((await call(S.eve!, 'POST', '/api/v1/agents', { name: 'One', persona: 'x' })).status).toBe(201);
    const r = await call(S.eve!, 'POST', '/api/v1/agents', { name: 'Two', persona: 'x' });
    expect(r.status).toBe(402);
    expect(((await r.json()) as { error: unknown }).error).toMatchObject({
      code: 'billing.payment_required',
      limit: 'agents',
      limit_value: 1,
      upgrade_tier: 'pro',
      upgrade_url: 'http://club.localhost:8080/app/pricing',
    });
  });

  test('a duplicate, a replay and the same state again change nothing; a tampered signature is a 400', async () => {
    const before = await balances();
    const paid = await stub.delivered('invoice.paid', invoice);
    const again = await toWebhook(paid.payload, paid.header);
    expect(((await again.json()) as { applied: string }).applied).toBe('duplicate');
    // The same invoice under a new event id: applied, and still posted once.
    const fresh = await stub.emit('invoice.paid', stub.state.invoices.get(invoice)!);
    expect(fresh.status).toBe(200);
    expect(await paymentsOf(invoice)).toBe(1);
    expect(await balances()).toEqual(before);
    const tampered = paid.payload.replace(/"amount_paid": ?1900/, '"amount_paid": 190000');
    expect(tampered).not.toBe(paid.payload);
    const bad = await toWebhook(tampered, paid.header);
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { error: { code: string } }).error.code).toBe('billing.signature_invalid');
    expect((await toWebhook(paid.payload, null)).status).toBe(400);
    expect(await balances()).toEqual(before);
  });

  test('a failed renewal: past due, the tier kept within the grace period, the free tier after; paid again: active', async () => {
    const failed = await stub.failInvoice(subId);
    await stub.idle();
    let p = await plan('dan');
    expect(p.plan).toMatchObject({ tier: { id: 'pro' }, status: 'past_due' });
    expect(p.plan.grace_ends_at).toBe(new Date(s.clock.now() + 7 * DAY).toISOString());
    expect(await paymentsOf(failed.id)).toBe(0);
    await advance(6 * DAY);
    expect((await plan('dan')).plan.tier?.id).toBe('pro');
    await advance(2 * DAY);
    p = await plan('dan');
    expect(p.plan).toMatchObject({
      tier: { id: 'free' },
      via: 'free',
      subscription: { tier: 'pro', status: 'past_due' },
    });
    expect(p.limits.requests_per_day).toBe(2);
    // Paid on retry: active again, that invoice posted once.
    await stub.payInvoice(subId);
    await stub.idle();
    p = await plan('dan');
    expect(p.plan).toMatchObject({ tier: { id: 'pro' }, status: 'active', grace_ends_at: null });
    expect(await paymentsOf(failed.id)).toBe(1);
    expect(await ledgerSum()).toBe(0n);
  });

  test('events out of order: a failure and a payment delivered backwards end as Stripe has it', async () => {
    held = [];
    const failed = await stub.failInvoice(subId);
    await stub.payInvoice(subId);
    await stub.idle();
    const got = held;
    held = null;
    expect(got.length).toBe(4);
    for (const d of [...got].reverse()) expect((await toWebhook(d.payload, d.header)).status).toBe(200);
    const p = await plan('dan');
    expect(stub.state.subscriptions.get(subId)!.status).toBe('active');
    expect(p.plan).toMatchObject({ tier: { id: 'pro' }, status: 'active' });
    expect(await paymentsOf(failed.id)).toBe(1);
    const before = await balances();
    for (const d of got) await toWebhook(d.payload, d.header);
    expect(await balances()).toEqual(before);
  });

  test('upgrade: the item gets the new price with proration; the new limits apply at once', async () => {
    const r = await call(S.dan!, 'PATCH', '/api/v1/billing/subscription', { tier: 'team' });
    expect(r.status).toBe(200);
    const p = (await r.json()) as PlanBody;
    expect(p.plan.tier?.id).toBe('team');
    expect(p.limits.requests_per_day).toBe(100);
    const update = stub.requests
      .filter((q) => q.method === 'POST' && q.path === `/v1/subscriptions/${subId}`)
      .at(-1)!;
    expect(update.body.proration_behavior).toBe('create_prorations');
    const item = (update.body.items as Record<string, unknown>[])[0] as {
      id: string;
      price_data: { unit_amount: string; recurring: { interval: string } };
      quantity: string;
    };
    expect(item.price_data.unit_amount).toBe('4900');
    expect(item.price_data.recurring.interval).toBe('month');
    expect(item.quantity).toBe('1');
    const sub = stub.state.subscriptions.get(subId)!;
    expect((sub.metadata as Record<string, string>).tier_id).toBe('team');
    const items = (sub.items as { data: { id: string; price: StubObject }[] }).data;
    expect(items.map((i) => [i.id, i.price.unit_amount])).toEqual([[item.id, 4900]]);
    await stub.idle();
    expect((await plan('dan')).plan.tier?.id).toBe('team');
    // The next invoice is posted under the new tier.
    const next = await stub.payInvoice(subId);
    await stub.idle();
    expect((await postings(next.id)).map((t) => [t.code, t.ref, t.amount])).toEqual([
      ['payment', next.id, 4900n * M],
      ['subscription', 'team', 4900n * M],
      ['fee', 'team', 735n * M],
    ]);
  });

  test("a refund of an invoice's charge reverses its legs: partial, then the rest; a replay changes nothing", async () => {
    const inv = [...stub.state.invoices.values()]
      .filter(
        (i) =>
          i.subscription === subId ||
          (i.parent as { subscription_details?: { subscription?: string } } | null)?.subscription_details
            ?.subscription === subId,
      )
      .at(-1)!;
    const pi = (inv.payments as { data: { payment: { payment_intent: string } }[] }).data[0]!.payment
      .payment_intent;
    const before = await balances();
    const user = `end_user:${ID.dan}:usd`;
    const net = (b: Record<string, bigint>, k: string) => b[k] ?? 0n;
    await stub.refund({ payment_intent: pi, amount: 900 });
    const first = await stub.delivered('charge.refunded');
    expect(first.status).toBe(200);
    let after = await balances();
    // 9.00 of 49.00 back: the platform gives back 9.00 less the operator's 15% of it (1.35).
    expect(net(before, 'platform::usd') - net(after, 'platform::usd')).toBe(900n * M - 135n * M);
    expect(net(before, 'operator::usd') - net(after, 'operator::usd')).toBe(135n * M);
    expect(net(after, user)).toBe(net(before, user));
    await stub.refund({ payment_intent: pi });
    await stub.idle();
    after = await balances();
    expect(net(before, 'platform::usd') - net(after, 'platform::usd')).toBe(4900n * M - 735n * M);
    expect(net(before, 'operator::usd') - net(after, 'operator::usd')).toBe(735n * M);
    expect(await ledgerSum()).toBe(0n);
    // The first refund's event again under a new id (a resend): nothing more.
    const resent = first.payload.replace(String(first.event.id), `${String(first.event.id)}x`);
    const header = await Stripe.webhooks.generateTestHeaderStringAsync({ payload: resent, secret: WHSEC });
    expect((await toWebhook(resent, header)).status).toBe(200);
    expect(await balances()).toEqual(after);
    expect((await postings(String(inv.id))).filter((t) => t.code === 'refund')).toHaveLength(6);
  });

  test('seats: one seat bought covers its owner only; a team of two adds one member, then 402', async () => {
    const one = await call(S.dan!, 'POST', '/api/v1/billing/subscription/members', { user_id: ID.gus });
    expect(one.status).toBe(402);
    expect(((await one.json()) as { error: unknown }).error).toMatchObject({
      code: 'billing.payment_required',
      limit: 'seats',
      limit_value: 1,
    });
    await subscribePaid('fay', 'team', 2);
    const fay = await plan('fay');
    expect(fay.plan).toMatchObject({ tier: { id: 'team' }, seats: 2 });
    const made = stub.requests.filter((q) => q.path === '/v1/checkout/sessions').at(-1)!;
    expect((made.body.line_items as { quantity: string }[])[0]!.quantity).toBe('2');
    expect(
      (await call(S.fay!, 'POST', '/api/v1/billing/subscription/members', { user_id: ID.gus })).status,
    ).toBe(200);
    expect((await plan('gus')).plan).toMatchObject({ tier: { id: 'team' }, via: 'team' });
    const full = await call(S.fay!, 'POST', '/api/v1/billing/subscription/members', { user_id: ID.hal });
    expect(full.status).toBe(402);
    expect(((await full.json()) as { error: unknown }).error).toMatchObject({
      code: 'billing.payment_required',
      limit: 'seats',
      limit_value: 2,
      used: 2,
    });
    expect((await plan('hal')).plan.tier?.id).toBe('free');
    // The owner removes a member: their plan is their own again; a member may leave too.
    expect((await call(S.fay!, 'DELETE', `/api/v1/billing/subscription/members/${ID.gus}`)).status).toBe(200);
    expect((await plan('gus')).plan.tier?.id).toBe('free');
    expect(
      (await call(S.fay!, 'POST', '/api/v1/billing/subscription/members', { user_id: ID.hal })).status,
    ).toBe(200);
    expect((await plan('hal')).plan.via).toBe('team');
    expect((await call(S.hal!, 'DELETE', `/api/v1/billing/subscription/members/${ID.hal}`)).status).toBe(200);
    expect((await plan('hal')).plan.via).toBe('free');
  });

  test('cancel at the period end keeps the tier; the portal link is for the customer', async () => {
    const r = await call(S.dan!, 'DELETE', '/api/v1/billing/subscription?at=period_end');
    expect(r.status).toBe(200);
    const p = (await r.json()) as PlanBody;
    expect(p.plan).toMatchObject({ tier: { id: 'team' }, status: 'active', cancel_at_period_end: true });
    expect(stub.state.subscriptions.get(subId)!.cancel_at_period_end).toBe(true);
    const portal = await json<{ url: string }>(call(S.dan!, 'POST', '/api/v1/billing/portal'));
    expect(portal.url).toStartWith(`${stub.url}/portal/bps_`);
    const ps = [...stub.state.portalSessions.values()].at(-1)!;
    expect(ps.return_url).toBe('http://club.localhost:8080/app/billing');
    // No customer yet: 409.
    expect((await call(S.hal!, 'POST', '/api/v1/billing/portal')).status).toBe(409);
  });

  test('customer.subscription.deleted: the free tier', async () => {
    const before = await balances();
    const metrics = () =>
      json<{ mrr_micro: number; subscribers: number; tiers: { tier: string; paying: number }[] }>(
        call(S.owner!, 'GET', '/api/v1/admin/billing/subscriptions/metrics'),
      );
    const m0 = await metrics();
    await stub.cancelSubscription(subId);
    await stub.idle();
    // MRR loses dan's Team (49.00 a month, one seat); one subscriber fewer.
    const m1 = await metrics();
    expect(m0.mrr_micro - m1.mrr_micro).toBe(4900 * 1_000_000);
    expect(m0.subscribers - m1.subscribers).toBe(1);
    expect((await call(S.dan!, 'GET', '/api/v1/admin/billing/subscriptions/metrics')).status).toBe(403);
    const p = await plan('dan');
    expect(p.plan).toMatchObject({ tier: { id: 'free' }, via: 'free', subscription: { status: 'canceled' } });
    expect(await balances()).toEqual(before);
    // A replay of the deletion changes nothing; subscribing anew is possible.
    const del = await stub.delivered('customer.subscription.deleted', subId);
    expect(((await (await toWebhook(del.payload, del.header)).json()) as { applied: string }).applied).toBe(
      'duplicate',
    );
    expect((await call(S.dan!, 'POST', '/api/v1/billing/subscription', { tier: 'pro' })).status).toBe(201);
  });
});

describe('random sequences of subscription and invoice events (property)', () => {
  type Step = 'pay' | 'fail' | 'update' | 'delete';
  const statusOf = (st: string) => (st === 'unpaid' ? 'past_due' : st);

  test('the ledger balances, the plan is what Stripe says, and each paid invoice posts once', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.constantFrom<Step>('pay', 'fail', 'update', 'delete'), { minLength: 1, maxLength: 6 }),
        fc.array(fc.nat(), { minLength: 0, maxLength: 6 }),
        fc.boolean(),
        fc.boolean(),
        async (steps, dupes, reverse, together) => {
          held = [];
          const r = await call(S.pat!, 'POST', '/api/v1/billing/subscription', { tier: 'pro' });
          expect(r.status).toBe(201);
          await pay(((await r.json()) as { checkout_url: string }).checkout_url);
          await stub.idle();
          const session = [...stub.state.checkoutSessions.values()].at(-1)!;
          const id = String(session.subscription);
          for (const step of steps) {
            if (stub.state.subscriptions.get(id)!.status === 'canceled') break;
            if (step === 'pay') await stub.payInvoice(id);
            else if (step === 'fail') await stub.failInvoice(id);
            else if (step === 'update')
              await sdk.subscriptions.update(id, {
                cancel_at_period_end: !stub.state.subscriptions.get(id)!.cancel_at_period_end,
              });
            else await stub.cancelSubscription(id);
          }
          await stub.idle();
          const got = held;
          held = null;
          // Delivered in another order, some twice.
          const order = reverse ? [...got].reverse() : [...got.slice(1), got[0]!];
          for (const d of dupes) order.splice(d % (order.length + 1), 0, got[d % got.length]!);
          // One after another, or all at once (Stripe may send several at the same time).
          if (together)
            for (const r of await Promise.all(order.map((d) => toWebhook(d.payload, d.header))))
              expect(r.status).toBe(200);
          else for (const d of order) expect((await toWebhook(d.payload, d.header)).status).toBe(200);

          const sub = stub.state.subscriptions.get(id)!;
          const row = await subOf('pat');
          expect(row?.stripe_subscription).toBe(id);
          expect(row?.status).toBe(statusOf(String(sub.status)));
          for (const inv of stub.state.invoices.values()) {
            const of = (inv.parent as { subscription_details: { subscription: string } }).subscription_details
              .subscription;
            if (of !== id) continue;
            expect(await paymentsOf(inv.id)).toBe(inv.status === 'paid' && inv.amount_paid > 0 ? 1 : 0);
          }
          expect(await ledgerSum()).toBe(0n);
          expect(await balance(accountId('end_user', ID.pat!, 'usd'))).toBe(0n);
          // Ready for the next run: the subscription ended (delivered as it comes).
          if (sub.status !== 'canceled') await stub.cancelSubscription(id);
          await stub.idle();
          expect((await subOf('pat'))?.status).toBe('canceled');
        },
      ),
      { numRuns: 16 },
    );
  });
});

describe('trials, and the return without webhooks', () => {
  let t: InProcessServer;
  afterAll(async () => {
    await t?.close();
  });

  test("a user's first subscription gets billing.trial_days; the return syncs it; the next gets none", async () => {
    t = await inProcessServer({
      config: {
        ...models(),
        billing: {
          trial_days: 14,
          stripe: { secret_key_env: KEY_ENV, webhook_secret_env: WHSEC_ENV, api_base: stub.url },
        },
      },
    });
    const made = await t.operatorApi('POST', '/platforms', {
      slug: 'trial',
      template: 'creator',
      blueprint: { monetization: { subscription_tiers: TIERS } },
    });
    const owner = ((await made.json()) as { admin: { email: string; password: string } }).admin;
    const os = await signInTo(t, 'trial', owner.email, owner.password);
    expect(
      (
        await callAs(t, os, 'POST', '/api/v1/users', {
          email: 'tia@trial.test',
          role: 'member',
          password: PASSWORD,
        })
      ).status,
    ).toBe(201);
    const tia = await signInTo(t, 'trial', 'tia@trial.test', PASSWORD);
    const subscribe = async () => {
      const r = await callAs(t, tia, 'POST', '/api/v1/billing/subscription', { tier: 'pro' });
      expect(r.status).toBe(201);
      const made = stub.requests.filter((q) => q.path === '/v1/checkout/sessions').at(-1)!;
      return {
        url: ((await r.json()) as { checkout_url: string }).checkout_url,
        data: made.body.subscription_data as Record<string, unknown>,
      };
    };
    const first = await subscribe();
    expect(first.data.trial_period_days).toBe('14');
    await pay(first.url);
    // This server gets no webhooks: the buyer's return checks the checkout with Stripe.
    const back = await json<PlanBody>(callAs(t, tia, 'POST', '/api/v1/billing/subscription/sync'));
    expect(back.plan).toMatchObject({ tier: { id: 'pro' }, status: 'active', via: 'own' });
    const cancelled = await json<PlanBody>(callAs(t, tia, 'DELETE', '/api/v1/billing/subscription?at=now'));
    expect(cancelled.plan).toMatchObject({ tier: { id: 'free' }, subscription: { status: 'canceled' } });
    const second = await subscribe();
    expect(second.data.trial_period_days).toBeUndefined();
  });
});

describe('without Stripe', () => {
  let t: InProcessServer;
  afterAll(async () => {
    await t?.close();
  });

  test('subscribing is a 409 with a clear message; an admin sets the tier by hand, audited', async () => {
    t = await inProcessServer({ config: { ...models(), billing: {} } });
    const made = await t.operatorApi('POST', '/platforms', {
      slug: 'quiet',
      template: 'creator',
      blueprint: { monetization: { subscription_tiers: TIERS } },
    });
    const owner = ((await made.json()) as { admin: { email: string; password: string } }).admin;
    const os = await signInTo(t, 'quiet', owner.email, owner.password);
    expect(
      (
        await callAs(t, os, 'POST', '/api/v1/users', {
          email: 'ann@quiet.test',
          role: 'creator',
          password: PASSWORD,
        })
      ).status,
    ).toBe(201);
    const ann = await signInTo(t, 'quiet', 'ann@quiet.test', PASSWORD);
    const pid = t.tenancy.get('quiet').id;
    const annId = await t.app.platformDbs.use(
      pid,
      (db) => createUserRepository({ db }).byEmail('ann@quiet.test')!.id,
    );
    const r = await callAs(t, ann, 'POST', '/api/v1/billing/subscription', { tier: 'pro' });
    expect(r.status).toBe(409);
    const e = ((await r.json()) as { error: { code: string; message: string } }).error;
    expect(e.code).toBe('billing.stripe_disabled');
    expect(e.message).toContain('an admin sets your plan');
    // The free tier's one agent, then 402; the admin sets Pro by hand; three agents allowed.
    expect((await callAs(t, ann, 'POST', '/api/v1/agents', { name: 'A', persona: 'x' })).status).toBe(201);
    expect((await callAs(t, ann, 'POST', '/api/v1/agents', { name: 'B', persona: 'x' })).status).toBe(402);
    // Members may not set tiers.
    expect(
      (
        await callAs(t, ann, 'POST', `/api/v1/admin/billing/subscriptions/${annId}`, {
          tier: 'pro',
          note: 'x',
        })
      ).status,
    ).toBe(403);
    const set = await callAs(t, os, 'POST', `/api/v1/admin/billing/subscriptions/${annId}`, {
      tier: 'pro',
      note: 'paid by bank transfer',
    });
    expect(set.status).toBe(200);
    expect(((await set.json()) as { subscription: unknown }).subscription).toMatchObject({
      tier: 'pro',
      status: 'active',
      method: 'manual',
    });
    const p = await json<PlanBody>(callAs(t, ann, 'GET', '/api/v1/billing/subscription'));
    expect(p.plan).toMatchObject({ tier: { id: 'pro' }, status: 'active', method: 'manual' });
    expect((await callAs(t, ann, 'POST', '/api/v1/agents', { name: 'B', persona: 'x' })).status).toBe(201);
    const audit = await t.app.platformDbs.use(pid, (db) =>
      db
        .query<{ action: string; details: string }, []>(
          "SELECT action, details FROM audit_log WHERE action = 'billing.subscription_set'",
        )
        .all(),
    );
    expect(audit.length).toBe(1);
    expect(JSON.parse(audit[0]!.details)).toMatchObject({ tier: 'pro', note: 'paid by bank transfer' });
  });
});
