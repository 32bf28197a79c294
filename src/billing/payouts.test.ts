/**
 * Creator payouts through Stripe Connect (issue 13 item 6), with separate charges and
 * transfers: a sale charged on the operator's account, then the creator's earnings sent by a
 * transfer to the creator's connected account. The official SDK talks to the protocol-faithful
 * Stripe on 127.0.0.1 (tests/peers/stripe-stub.ts); its hosted onboarding is walked as a
 * browser would; `account.updated` reaches the operator's endpoint signed.
 */
import type { Database } from 'bun:sqlite';
import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { type InProcessServer, inProcessServer } from '../../tests/inproc.ts';
import { type OpenAIStub, startOpenAIStub } from '../../tests/peers/openai-stub.ts';
import { type StripeStub, startStripeStub } from '../../tests/peers/stripe-stub.ts';
import { callAs, json, type Session, signInTo } from '../../tests/sessions.ts';
import { createUserRepository } from '../identity/index.ts';
import { accountId, findAccount } from './index.ts';

const KEY_ENV = 'SOULFRA_TEST_STRIPE_KEY_PAYOUTS';
const WHSEC_ENV = 'SOULFRA_TEST_STRIPE_WHSEC_PAYOUTS';
const WHSEC = 'whsec_test_payouts';
const M = 1_000_000n;
const PASSWORD = 'a-long-password-12';

let stub: StripeStub;
let ai: OpenAIStub;
let s: InProcessServer;
let hook: ReturnType<typeof Bun.serve>;
let platformId = '';
const S: Record<string, Session> = {};
const ids: Record<string, string> = {};

const call = (se: Session, method: string, path: string, body?: unknown) => callAs(s, se, method, path, body);
const onDb = <T>(fn: (db: Database) => T) => s.app.platformDbs.use(platformId, fn);
const creatorAccount = (who: string) =>
  onDb((db) => {
    const a = findAccount(db, accountId('creator', ids[who]!, 'usd'));
    return a
      ? { posted: a.credits_posted - a.debits_posted, pending: a.debits_pending }
      : { posted: 0n, pending: 0n };
  });

/** A creator's paid listing, bought by dan through the stub's hosted checkout. */
async function sell(who: string, title: string, priceMinor: number): Promise<void> {
  const a = await json<{ agent: { id: string } }>(
    call(S[who]!, 'POST', '/api/v1/agents', { name: title, persona: 'Helps.' }),
  );
  expect((await call(S[who]!, 'POST', `/api/v1/agents/${a.agent.id}/publish`)).status).toBe(201);
  const l = await json<{ listing: { id: string } }>(
    call(S[who]!, 'POST', `/api/v1/agents/${a.agent.id}/listing`, {
      title,
      summary: 'A paid helper for payout tests.',
      category: 'productivity',
      tags: [],
      price_model: 'one_time',
      price_minor: priceMinor,
      currency: 'usd',
    }),
  );
  const r = await call(S.dan!, 'POST', `/api/v1/marketplace/${l.listing.id}/install`);
  expect(r.status).toBe(402);
  const url = ((await r.json()) as { error: { checkout_url: string } }).error.checkout_url;
  const done = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: 'email=dan%40pay.test',
    redirect: 'manual',
  });
  expect(done.status).toBe(303);
  // The buyer's return fulfils it (the install retried), whatever the webhook's timing.
  expect((await call(S.dan!, 'POST', `/api/v1/marketplace/${l.listing.id}/install`)).status).toBe(201);
}

const payout = (body: Record<string, unknown>) =>
  call(S.owner!, 'POST', '/api/v1/admin/billing/payouts', body);

beforeAll(async () => {
  process.env[KEY_ENV] = 'sk_test_payouts';
  process.env[WHSEC_ENV] = WHSEC;
  stub = await startStripeStub({ apiKey: 'sk_test_payouts' });
  ai = await startOpenAIStub({ models: ['gpt-4o-mini'] });
  s = await inProcessServer({
    config: {
      providers: [{ id: 'stub', kind: 'openai', url: ai.url, location: 'on_prem', timeout_ms: 5_000 }],
      models: [{ alias: 'default', route: ['stub/gpt-4o-mini'] }],
      billing: { stripe: { secret_key_env: KEY_ENV, webhook_secret_env: WHSEC_ENV, api_base: stub.url } },
    },
  });
  hook = Bun.serve({
    hostname: '127.0.0.1',
    port: 0,
    fetch: async (req) =>
      s.request('localhost', '/_operator/api/billing/stripe/webhook', {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          'stripe-signature': req.headers.get('stripe-signature') ?? '',
        },
        body: await req.text(),
      }),
  });
  stub.addEndpoint(`http://127.0.0.1:${hook.port}/`, WHSEC);
  const made = await s.operatorApi('POST', '/platforms', { slug: 'payouts', template: 'creator' });
  if (made.status !== 201) throw new Error(await made.text());
  const owner = ((await made.json()) as { admin: { email: string; password: string } }).admin;
  platformId = s.tenancy.get('payouts').id;
  S.owner = await signInTo(s, 'payouts', owner.email, owner.password);
  for (const [name, role] of [
    ['cat', 'creator'],
    ['fay', 'creator'],
    ['dan', 'member'],
  ] as const) {
    const email = `${name}@payouts.test`;
    expect((await call(S.owner, 'POST', '/api/v1/users', { email, role, password: PASSWORD })).status).toBe(
      201,
    );
    S[name] = await signInTo(s, 'payouts', email, PASSWORD);
    ids[name] = await onDb((db) => createUserRepository({ db }).byEmail(email)!.id);
  }
  // The creator template's free tier allows one agent; the creators are on Enterprise.
  for (const who of ['cat', 'fay'])
    expect(
      (
        await call(S.owner, 'POST', `/api/v1/admin/billing/subscriptions/${ids[who]}`, {
          tier: 'enterprise',
          note: 'a test creator with several listings',
        })
      ).status,
    ).toBe(200);
});
afterAll(async () => {
  await s?.close();
  hook?.stop(true);
  await stub?.stop();
  await ai?.stop();
});

describe('creator payouts with Stripe Connect', () => {
  test('before onboarding: no payout account, and a payout is refused', async () => {
    await sell('cat', 'Payout Pro', 1000);
    expect((await creatorAccount('cat')).posted).toBe(700n * M);
    const mine = await json<{ connected: boolean; payouts_enabled: boolean; available_micro: number }>(
      call(S.cat!, 'GET', '/api/v1/billing/payouts/account'),
    );
    expect(mine).toMatchObject({
      connected: false,
      payouts_enabled: false,
      available_micro: 700 * 1_000_000,
    });
    const r = await payout({ creator_id: ids.cat });
    expect(r.status).toBe(409);
    expect(((await r.json()) as { error: { code: string } }).error.code).toBe('billing.payouts_not_enabled');
    expect(stub.state.transfers.size).toBe(0);
  });

  test("onboarding: an Express account, Stripe's hosted page, account.updated enables payouts", async () => {
    const link = await json<{ url: string }>(call(S.cat!, 'POST', '/api/v1/billing/payouts/account/link'));
    expect(link.url).toStartWith(`${stub.url}/connect/onboard/acct_`);
    const acct = [...stub.state.accounts.values()].at(-1)!;
    expect(acct.type).toBe('express');
    expect(acct.metadata).toEqual({ platform_id: platformId, user_id: ids.cat });
    // A second link reuses the account (one per creator).
    await json(call(S.cat!, 'POST', '/api/v1/billing/payouts/account/link'));
    expect(stub.state.accounts.size).toBe(1);
    expect((await fetch(link.url)).status).toBe(200);
    const done = await fetch(link.url, { method: 'POST', redirect: 'manual' });
    expect(done.status).toBe(303);
    expect(done.headers.get('location')).toBe('http://payouts.localhost:8080/app/billing?payouts=return');
    const updated = await stub.delivered('account.updated', String(acct.id));
    expect(updated.status).toBe(200);
    const row = await onDb((db) =>
      db
        .query<{ payouts_enabled: number }, [string]>(
          'SELECT payouts_enabled FROM creator_accounts WHERE user_id = ?',
        )
        .get(ids.cat!),
    );
    expect(row?.payouts_enabled).toBe(1);
  });

  test('a payout reserves, transfers and posts; more than the earnings is refused', async () => {
    const over = await payout({ creator_id: ids.cat, amount_minor: 701 });
    expect(over.status).toBe(409);
    expect(((await over.json()) as { error: { code: string } }).error.code).toBe(
      'billing.payout_exceeds_earnings',
    );
    const r = await payout({ creator_id: ids.cat, amount_minor: 300 });
    expect(r.status).toBe(201);
    const p = ((await r.json()) as { payout: { id: string; status: string; stripe_transfer: string } })
      .payout;
    expect(p.status).toBe('paid');
    const tr = stub.state.transfers.get(p.stripe_transfer)!;
    expect(tr).toMatchObject({ amount: 300, currency: 'usd', transfer_group: p.id });
    expect(tr.destination).toBe([...stub.state.accounts.values()][0]!.id);
    expect(await creatorAccount('cat')).toEqual({ posted: 400n * M, pending: 0n });
    // The rest, by default all that is available; then nothing is left to pay.
    const rest = await json<{ payout: { amount_minor: number } }>(payout({ creator_id: ids.cat }));
    expect(rest.payout.amount_minor).toBe(400);
    expect((await payout({ creator_id: ids.cat })).status).toBe(409);
    const earnings = await json<{ earned_micro: number; paid_out_micro: number }>(
      call(S.cat!, 'GET', '/api/v1/billing/earnings'),
    );
    expect(earnings).toMatchObject({ earned_micro: 700 * 1_000_000, paid_out_micro: 700 * 1_000_000 });
    const mine = await json<{ payouts: { amount_minor: number; status: string }[] }>(
      call(S.cat!, 'GET', '/api/v1/billing/payouts'),
    );
    expect(mine.payouts.map((x) => [x.amount_minor, x.status]).sort()).toEqual([
      [300, 'paid'],
      [400, 'paid'],
    ]);
    // The platform's report keeps the creators' earnings whole (payouts are not refunds).
    const rev = await json<{ marketplace: { creators_micro: number } }>(
      call(S.owner!, 'GET', '/api/v1/admin/billing/revenue'),
    );
    expect(rev.marketplace.creators_micro).toBe(700 * 1_000_000);
  });

  test('two payouts at once cannot spend the same earnings', async () => {
    await sell('cat', 'Payout Pro 2', 2000);
    const [a, b] = await Promise.all([
      payout({ creator_id: ids.cat, amount_minor: 1400 }),
      payout({ creator_id: ids.cat, amount_minor: 1400 }),
    ]);
    expect([a.status, b.status].sort()).toEqual([201, 409]);
    expect(await creatorAccount('cat')).toEqual({ posted: 0n, pending: 0n });
    expect(stub.state.transfers.size).toBe(3);
  });

  test('a transfer Stripe refuses voids the reservation and marks the payout failed', async () => {
    await sell('fay', 'Refused Pro', 1000);
    await json(call(S.fay!, 'POST', '/api/v1/billing/payouts/account/link'));
    // Onboarding not finished, yet our row says enabled (a stale state): Stripe refuses the transfer.
    await onDb((db) =>
      db.run('UPDATE creator_accounts SET payouts_enabled = 1 WHERE user_id = ?', [ids.fay!]),
    );
    const r = await payout({ creator_id: ids.fay });
    expect(r.status).toBe(409);
    const err = ((await r.json()) as { error: { code: string; payout_id: string } }).error;
    expect(err.code).toBe('billing.payout_refused');
    expect(await creatorAccount('fay')).toEqual({ posted: 700n * M, pending: 0n });
    const all = await json<{ payouts: { id: string; status: string; failure: string | null }[] }>(
      call(S.owner!, 'GET', '/api/v1/admin/billing/payouts'),
    );
    expect(all.payouts.find((x) => x.id === err.payout_id)).toMatchObject({ status: 'failed' });
    expect(all.payouts.find((x) => x.id === err.payout_id)?.failure).toContain('capabilities');
  });

  test('a manual payout needs a note and posts at once; members cannot pay out', async () => {
    expect((await payout({ creator_id: ids.fay, method: 'manual' })).status).toBe(400);
    const ok = await json<{ payout: { status: string; method: string } }>(
      payout({ creator_id: ids.fay, method: 'manual', amount_minor: 200, note: 'bank transfer 7' }),
    );
    expect(ok.payout).toMatchObject({ status: 'paid', method: 'manual' });
    expect(await creatorAccount('fay')).toEqual({ posted: 500n * M, pending: 0n });
    expect(
      (await call(S.dan!, 'POST', '/api/v1/admin/billing/payouts', { creator_id: ids.fay })).status,
    ).toBe(403);
    expect((await call(S.dan!, 'GET', '/api/v1/admin/billing/payouts')).status).toBe(403);
    const summary = await json<{ creators: { creator_id: string; available_micro: number }[] }>(
      call(S.owner!, 'GET', '/api/v1/admin/billing/payouts'),
    );
    expect(summary.creators.find((x) => x.creator_id === ids.fay)?.available_micro).toBe(500 * 1_000_000);
  });

  test('the monthly revenue series: every month present, this one with the sales, fees and payouts', async () => {
    const r = await json<{
      months: {
        month: string;
        sales: number;
        marketplace_gross_micro: number;
        operator_fees_micro: number;
        payouts_micro: number;
        refunds_micro: number;
      }[];
    }>(call(S.owner!, 'GET', '/api/v1/admin/billing/revenue/monthly?months=3'));
    expect(r.months.map((m) => m.month)).toHaveLength(3);
    const now = new Date(s.app.clock.now()).toISOString().slice(0, 7);
    expect(r.months.at(-1)).toEqual({
      month: now,
      sales: 3,
      marketplace_gross_micro: 4000 * 1_000_000,
      refunds_micro: 0,
      subscriptions_micro: 0,
      ai_charged_micro: 0,
      ai_cost_micro: 0,
      operator_fees_micro: 600 * 1_000_000,
      payouts_micro: 2300 * 1_000_000,
    } as never);
    expect(r.months.slice(0, 2).every((m) => m.sales === 0 && m.marketplace_gross_micro === 0)).toBe(true);
    expect(r.months[0]!.month < r.months[1]!.month).toBe(true);
    const bad = await call(S.owner!, 'GET', '/api/v1/admin/billing/revenue/monthly?months=61');
    expect(bad.status).toBe(400);
    expect((await call(S.dan!, 'GET', '/api/v1/admin/billing/revenue/monthly')).status).toBe(403);
  });
});
