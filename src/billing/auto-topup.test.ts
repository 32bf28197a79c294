/**
 * Auto top-up (issue 13 item 2): a top-up by card saves the card to the user's Stripe customer;
 * with auto top-up on, a spend that takes the credits below the line charges that card
 * off-session once per crossing, and the credits are usable at once; a declined card turns
 * auto top-up off and mails the user. The official SDK against the protocol-faithful Stripe on
 * 127.0.0.1 (tests/peers/stripe-stub.ts).
 */
import type { Database } from 'bun:sqlite';
import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { type InProcessServer, inProcessServer } from '../../tests/inproc.ts';
import { type OpenAIStub, startOpenAIStub } from '../../tests/peers/openai-stub.ts';
import { type StripeStub, startStripeStub } from '../../tests/peers/stripe-stub.ts';
import { callAs, json, type Session, signInTo } from '../../tests/sessions.ts';
import { createUserRepository } from '../identity/index.ts';

const KEY_ENV = 'SOULFRA_TEST_STRIPE_KEY_AUTO';
const WHSEC_ENV = 'SOULFRA_TEST_STRIPE_WHSEC_AUTO';
const PASSWORD = 'a-long-password-12';

let stub: StripeStub;
let ai: OpenAIStub;
let s: InProcessServer;
let platformId = '';
const S: Record<string, Session> = {};
const ids: Record<string, string> = {};
const listings: string[] = [];

const call = (se: Session, method: string, path: string, body?: unknown) => callAs(s, se, method, path, body);
const onDb = <T>(fn: (db: Database) => T) => s.app.platformDbs.use(platformId, fn);
const balance = async () =>
  (await json<{ credits: { balance_minor: number } }>(call(S.mia!, 'GET', '/api/v1/billing/credits'))).credits
    .balance_minor;
const offSession = () => stub.requests.filter((r) => r.method === 'POST' && r.path === '/v1/payment_intents');
const buy = async (i: number) =>
  expect(
    (await call(S.mia!, 'POST', `/api/v1/marketplace/${listings[i]}/install`, { pay_with: 'credits' }))
      .status,
  ).toBe(201);

beforeAll(async () => {
  process.env[KEY_ENV] = 'sk_test_auto';
  process.env[WHSEC_ENV] = 'whsec_test_auto';
  stub = await startStripeStub({ apiKey: 'sk_test_auto' });
  ai = await startOpenAIStub({ models: ['gpt-4o-mini'] });
  s = await inProcessServer({
    config: {
      providers: [{ id: 'stub', kind: 'openai', url: ai.url, location: 'on_prem', timeout_ms: 5_000 }],
      models: [{ alias: 'default', route: ['stub/gpt-4o-mini'] }],
      billing: { stripe: { secret_key_env: KEY_ENV, webhook_secret_env: WHSEC_ENV, api_base: stub.url } },
    },
  });
  const made = await s.operatorApi('POST', '/platforms', { slug: 'auto', template: 'creator' });
  const owner = ((await made.json()) as { admin: { email: string; password: string } }).admin;
  platformId = s.tenancy.get('auto').id;
  S.owner = await signInTo(s, 'auto', owner.email, owner.password);
  for (const [name, role] of [
    ['cat', 'creator'],
    ['mia', 'member'],
  ] as const) {
    const email = `${name}@auto.test`;
    expect((await call(S.owner, 'POST', '/api/v1/users', { email, role, password: PASSWORD })).status).toBe(
      201,
    );
    S[name] = await signInTo(s, 'auto', email, PASSWORD);
    ids[name] = await onDb((db) => createUserRepository({ db }).byEmail(email)!.id);
  }
  expect(
    (
      await call(S.owner, 'POST', `/api/v1/admin/billing/subscriptions/${ids.cat}`, {
        tier: 'enterprise',
        note: 'a test creator with several listings',
      })
    ).status,
  ).toBe(200);
  for (let i = 0; i < 6; i++) {
    const a = await json<{ agent: { id: string } }>(
      call(S.cat!, 'POST', '/api/v1/agents', { name: `Helper ${i}`, persona: 'Helps.' }),
    );
    expect((await call(S.cat!, 'POST', `/api/v1/agents/${a.agent.id}/publish`)).status).toBe(201);
    const l = await json<{ listing: { id: string } }>(
      call(S.cat!, 'POST', `/api/v1/agents/${a.agent.id}/listing`, {
        title: `Helper ${i}`,
        summary: 'A paid helper for auto top-up tests.',
        category: 'productivity',
        tags: [],
        price_model: 'one_time',
        price_minor: 700,
        currency: 'usd',
      }),
    );
    listings.push(l.listing.id);
  }
});
afterAll(async () => {
  await s?.close();
  await stub?.stop();
  await ai?.stop();
});

describe('auto top-up', () => {
  test('needs a saved card: a top-up by card saves it to the customer', async () => {
    const early = await call(S.mia!, 'PUT', '/api/v1/billing/credits/settings', {
      auto_topup: { below_minor: 500, amount_minor: 2000 },
    });
    expect(early.status).toBe(409);
    expect(((await early.json()) as { error: { code: string } }).error.code).toBe('billing.no_saved_card');
    const top = await json<{ topup: { id: string }; checkout_url: string }>(
      call(S.mia!, 'POST', '/api/v1/billing/topups', { amount_minor: 1000 }),
    );
    const made = stub.requests.filter((r) => r.path === '/v1/checkout/sessions').at(-1)!;
    expect(made.body.customer).toMatch(/^cus_/);
    expect((made.body.payment_intent_data as { setup_future_usage: string }).setup_future_usage).toBe(
      'off_session',
    );
    const paid = await fetch(top.checkout_url, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: 'email=mia%40auto.test',
      redirect: 'manual',
    });
    expect(paid.status).toBe(303);
    await json(call(S.mia!, 'POST', `/api/v1/billing/topups/${top.topup.id}/sync`));
    expect(await balance()).toBe(1000);
    const settings = await json<{ settings: { card_saved: boolean } }>(
      call(S.mia!, 'GET', '/api/v1/billing/credits/settings'),
    );
    expect(settings.settings.card_saved).toBe(true);
  });

  test('bad amounts name the field; on, a crossing charges the saved card once, usable at once', async () => {
    for (const [auto, field] of [
      [{ below_minor: 500, amount_minor: 5 }, 'amount_minor'],
      [{ below_minor: -1, amount_minor: 2000 }, 'below_minor'],
    ] as const) {
      const r = await call(S.mia!, 'PUT', '/api/v1/billing/credits/settings', { auto_topup: auto });
      expect(r.status).toBe(400);
      expect(((await r.json()) as { error: { message: string } }).error.message).toContain(
        `auto_topup.${field}`,
      );
    }
    const on = await json<{ settings: { auto_topup: unknown } }>(
      call(S.mia!, 'PUT', '/api/v1/billing/credits/settings', {
        auto_topup: { below_minor: 500, amount_minor: 2000 },
      }),
    );
    expect(on.settings.auto_topup).toEqual({ below_minor: 500, amount_minor: 2000 });
    // 10.00 − 7.00 = 3.00, below 5.00: 20.00 charged off-session, posted at once.
    await buy(0);
    expect(await balance()).toBe(2300);
    const charges = offSession();
    expect(charges).toHaveLength(1);
    expect(charges[0]!.body).toMatchObject({
      amount: '2000',
      currency: 'usd',
      confirm: 'true',
      off_session: 'true',
    });
    expect(charges[0]!.body.customer).toMatch(/^cus_/);
    expect(charges[0]!.body.payment_method).toMatch(/^pm_/);
    // 16.00 and 9.00 stay above the line: nothing; 2.00 crosses again: a second charge.
    await buy(1);
    await buy(2);
    expect(offSession()).toHaveLength(1);
    await buy(3);
    expect(await balance()).toBe(2200);
    expect(offSession()).toHaveLength(2);
    const tops = await json<{ topups: { status: string }[] }>(call(S.mia!, 'GET', '/api/v1/billing/credits'));
    expect(tops.topups.filter((t) => t.status === 'paid')).toHaveLength(3);
  });

  test('a declined card turns auto top-up off, mails the user and posts nothing', async () => {
    const pm = String(offSession()[0]!.body.payment_method);
    stub.declinePaymentMethod(pm);
    // 22.00 − 7.00 = 15.00: above the line, nothing charged.
    await buy(4);
    expect(await balance()).toBe(1500);
    // Lower the line above the balance: the next spend crosses it, and the card is declined.
    await json(
      call(S.mia!, 'PUT', '/api/v1/billing/credits/settings', {
        auto_topup: { below_minor: 1000, amount_minor: 2000 },
      }),
    );
    await buy(5);
    expect(offSession()).toHaveLength(3);
    expect(await balance()).toBe(800);
    const settings = await json<{ settings: { auto_topup: unknown } }>(
      call(S.mia!, 'GET', '/api/v1/billing/credits/settings'),
    );
    expect(settings.settings.auto_topup).toBeNull();
    const mails = await onDb(
      (db) =>
        db
          .query<{ n: number }, []>(
            "SELECT count(*) AS n FROM outbox WHERE template = 'credits_auto_declined' AND to_email = 'mia@auto.test'",
          )
          .get()!.n,
    );
    expect(mails).toBe(1);
  });
});
