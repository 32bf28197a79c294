/**
 * A platform's own Stripe account (issue 13 item 6): the owner sets its keys (tried against
 * Stripe first), they are sealed at rest and never shown again, the platform's checkouts then go
 * through its own key, and its webhook endpoint verifies with its own signing secret. Removing
 * the keys falls back to the operator's account. The official SDK talks to the protocol-faithful
 * Stripe on 127.0.0.1 (one stub for both accounts: which key was used is read off its requests).
 */
import type { Database } from 'bun:sqlite';
import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import Stripe from 'stripe';
import { type InProcessServer, inProcessServer } from '../../tests/inproc.ts';
import { type StripeStub, startStripeStub } from '../../tests/peers/stripe-stub.ts';
import { callAs, json, type Session, signInTo } from '../../tests/sessions.ts';
import { rotateDataKey } from '../flows/keys.ts';
import { LOCAL_ROOT } from '../identity/index.ts';

const KEY_ENV = 'SOULFRA_TEST_STRIPE_KEY_OWN';
const WHSEC_ENV = 'SOULFRA_TEST_STRIPE_WHSEC_OWN';
const OPERATOR_KEY = 'sk_test_operator0001';
const OPERATOR_WHSEC = 'whsec_operator0001';
const OWN_KEY = 'sk_test_platformown5678';
const OWN_WHSEC = 'whsec_platformown5678';
const PASSWORD = 'a-long-password-12';

let stub: StripeStub;
let s: InProcessServer;
let hook: ReturnType<typeof Bun.serve>;
let platformId = '';
const S: Record<string, Session> = {};

const call = (se: Session, method: string, path: string, body?: unknown) => callAs(s, se, method, path, body);
const onDb = <T>(fn: (db: Database) => T) => s.app.platformDbs.use(platformId, fn);
const toPlatformWebhook = (payload: string, header: string) =>
  s.request('own.localhost', '/api/v1/billing/stripe/webhook', {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'stripe-signature': header },
    body: payload,
  });
/** The secret key the last request to `path` was made with. */
const keyOfLast = (path: string) =>
  stub.requests
    .filter((r) => r.path === path)
    .at(-1)
    ?.headers.authorization?.replace(/^Bearer /, '');

beforeAll(async () => {
  process.env[KEY_ENV] = OPERATOR_KEY;
  process.env[WHSEC_ENV] = OPERATOR_WHSEC;
  // Any sk_test_ key is accepted (the operator's and the platform's); live keys are refused.
  stub = await startStripeStub();
  s = await inProcessServer({
    config: {
      billing: { stripe: { secret_key_env: KEY_ENV, webhook_secret_env: WHSEC_ENV, api_base: stub.url } },
    },
  });
  // The platform's own account sends its events to the platform's own endpoint.
  hook = Bun.serve({
    hostname: '127.0.0.1',
    port: 0,
    fetch: async (req) => toPlatformWebhook(await req.text(), req.headers.get('stripe-signature') ?? ''),
  });
  const made = await s.operatorApi('POST', '/platforms', { slug: 'own', template: 'creator' });
  const owner = ((await made.json()) as { admin: { email: string; password: string } }).admin;
  platformId = s.tenancy.get('own').id;
  S.owner = await signInTo(s, 'own', owner.email, owner.password);
  for (const [name, role] of [
    ['ada', 'admin'],
    ['dan', 'member'],
  ] as const) {
    const email = `${name}@own.test`;
    expect((await call(S.owner, 'POST', '/api/v1/users', { email, role, password: PASSWORD })).status).toBe(
      201,
    );
    S[name] = await signInTo(s, 'own', email, PASSWORD);
  }
});
afterAll(async () => {
  await s?.close();
  hook?.stop(true);
  await stub?.stop();
});

describe("a platform's own Stripe account", () => {
  test('attack table: only the owner sets keys; malformed or refused keys change nothing', async () => {
    const view = await json<{ account: string; webhook_url: string }>(
      call(S.owner!, 'GET', '/api/v1/admin/billing/stripe'),
    );
    expect(view).toMatchObject({
      account: 'operator',
      webhook_url: 'http://own.localhost:8080/api/v1/billing/stripe/webhook',
    });
    const good = { secret_key: OWN_KEY, webhook_secret: OWN_WHSEC };
    for (const [name, who, body, status, code] of [
      ['an admin', 'ada', good, 403, null],
      ['a member', 'dan', good, 403, null],
      ['not a key', 'owner', { ...good, secret_key: 'pk_test_publishable1' }, 400, null],
      ['not a webhook secret', 'owner', { ...good, webhook_secret: 'secret' }, 400, null],
      [
        'a key Stripe refuses',
        'owner',
        { ...good, secret_key: 'sk_live_notacceptedhere' },
        422,
        'billing.stripe_key_invalid',
      ],
    ] as const) {
      const r = await call(S[who]!, 'PUT', '/api/v1/admin/billing/stripe', body);
      const e = ((await r.json()) as { error?: { code: string; message: string } }).error;
      expect([name, r.status]).toEqual([name, status]);
      if (code) expect(e?.code).toBe(code);
      if (status === 400) expect(e?.message).toMatch(/secret_key|webhook_secret/);
    }
    expect(await onDb((db) => db.query('SELECT count(*) AS n FROM stripe_settings').get())).toEqual({ n: 0 });
    expect((await call(S.ada!, 'DELETE', '/api/v1/admin/billing/stripe')).status).toBe(403);
  });

  test('set: sealed at rest, shown only as a hint, and checkouts use the platform key', async () => {
    const r = await json<{ account: string; key_hint: string; live: boolean }>(
      call(S.owner!, 'PUT', '/api/v1/admin/billing/stripe', {
        secret_key: OWN_KEY,
        webhook_secret: OWN_WHSEC,
      }),
    );
    expect(r).toMatchObject({ account: 'own', key_hint: 'sk_test_…5678', live: false });
    expect(keyOfLast('/v1/account')).toBe(OWN_KEY);
    const row = await onDb((db) =>
      db.query<{ secret_key: string; webhook_secret: string }, []>('SELECT * FROM stripe_settings').get(),
    );
    expect(row!.secret_key).toStartWith('sf1.');
    expect(row!.webhook_secret).toStartWith('sf1.');
    expect(JSON.stringify(row)).not.toContain('platformown5678');
    const shown = await (await call(S.owner!, 'GET', '/api/v1/admin/billing/stripe')).text();
    expect(shown).not.toContain(OWN_KEY);
    expect(shown).not.toContain(OWN_WHSEC);
    // A top-up's checkout is made with the platform's key, not the operator's.
    const top = await json<{ topup: { id: string }; checkout_url: string }>(
      call(S.dan!, 'POST', '/api/v1/billing/topups', { amount_minor: 1500 }),
    );
    expect(keyOfLast('/v1/checkout/sessions')).toBe(OWN_KEY);
    // Paid: the event reaches the platform's endpoint, verified with the platform's secret.
    stub.addEndpoint(`http://127.0.0.1:${hook.port}/`, OWN_WHSEC);
    const done = await fetch(top.checkout_url, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: 'email=dan%40own.test',
      redirect: 'manual',
    });
    expect(done.status).toBe(303);
    const paid = await stub.delivered('checkout.session.completed');
    expect(paid.status).toBe(200);
    const credits = await json<{ credits: { balance_minor: number } }>(
      call(S.dan!, 'GET', '/api/v1/billing/credits'),
    );
    expect(credits.credits.balance_minor).toBe(1500);
    expect(keyOfLast(`/v1/checkout/sessions/${String(paid.event.data.object.id)}`)).toBe(OWN_KEY);
  });

  test("the platform's endpoint refuses an event signed with the operator's secret", async () => {
    const payload = JSON.stringify({
      id: 'evt_forged',
      object: 'event',
      type: 'checkout.session.completed',
      data: { object: { id: 'cs_x' } },
    });
    const withOperator = await Stripe.webhooks.generateTestHeaderStringAsync({
      payload,
      secret: OPERATOR_WHSEC,
    });
    const r = await toPlatformWebhook(payload, withOperator);
    expect(r.status).toBe(400);
    expect(((await r.json()) as { error: { code: string } }).error.code).toBe('billing.signature_invalid');
    const withOwn = await Stripe.webhooks.generateTestHeaderStringAsync({ payload, secret: OWN_WHSEC });
    expect((await toPlatformWebhook(payload, withOwn)).status).toBe(200);
  });

  test('keys rotate re-seals the keys; payments keep using the platform key', async () => {
    const sealed = () =>
      onDb(
        (db) =>
          db.query<{ secret_key: string }, []>('SELECT secret_key FROM stripe_settings').get()!.secret_key,
      );
    const before = await sealed();
    const rotated = await rotateDataKey(s.app, s.tenancy, LOCAL_ROOT);
    expect(rotated.resealed.platform_secrets).toBeGreaterThanOrEqual(2);
    expect(await sealed()).not.toBe(before);
    await json(call(S.dan!, 'POST', '/api/v1/billing/topups', { amount_minor: 1200 }));
    expect(keyOfLast('/v1/checkout/sessions')).toBe(OWN_KEY);
  });

  test("removed: the platform's payments go through the operator's account again", async () => {
    const r = await json<{ account: string }>(call(S.owner!, 'DELETE', '/api/v1/admin/billing/stripe'));
    expect(r.account).toBe('operator');
    expect((await call(S.owner!, 'DELETE', '/api/v1/admin/billing/stripe')).status).toBe(404);
    await json(call(S.dan!, 'POST', '/api/v1/billing/topups', { amount_minor: 1000 }));
    expect(keyOfLast('/v1/checkout/sessions')).toBe(OPERATOR_KEY);
    const audit = await onDb((db) =>
      db
        .query<{ action: string }, []>(
          "SELECT action FROM audit_log WHERE action LIKE 'billing.stripe_keys%' ORDER BY seq",
        )
        .all()
        .map((x) => x.action),
    );
    expect(audit).toEqual(['billing.stripe_keys_set', 'billing.stripe_keys_cleared']);
  });
});
