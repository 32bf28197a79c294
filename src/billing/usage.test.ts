/**
 * Settled AI usage reaches the ledger from the meter's `usage.recorded` events (issue 13 item
 * 3): per payer and currency, the payer owes the platform cost plus markup and the platform
 * owes the AI cost; a redelivered event posts nothing twice; end to end, chat calls through
 * /v1/chat/completions end up as ledger balances equal to the usage rows' sums.
 */
import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { type InProcessServer, inProcessServer } from '../../tests/inproc.ts';
import { type OpenAIStub, startOpenAIStub } from '../../tests/peers/openai-stub.ts';
import { callAs, json, signInTo } from '../../tests/sessions.ts';
import {
  accountId,
  findAccount,
  listAccounts,
  markupOf,
  netCredit,
  openAccount,
  post,
  postUsage,
} from './index.ts';

let s: InProcessServer;
let stub: OpenAIStub;
let key = '';
let platformId = '';
const PRICE = { input: 15_000_000, output: 60_000_000, currency: 'usd' };

beforeAll(async () => {
  stub = await startOpenAIStub({ models: ['gpt-4o-mini'] });
  s = await inProcessServer({
    config: {
      providers: [{ id: 'stub', kind: 'openai', url: stub.url, location: 'on_prem', timeout_ms: 5_000 }],
      models: [{ alias: 'default', route: ['stub/gpt-4o-mini'] }],
      prices: { 'stub/gpt-4o-mini': PRICE },
      outbound: { allow: ['127.0.0.1/32'] },
    },
  });
  const made = await s.operatorApi('POST', '/platforms', { slug: 'ledg', template: 'creator' });
  expect(made.status).toBe(201);
  platformId = s.tenancy.get('ledg').id;
  const k = await s.operatorApi('POST', '/platforms/ledg/api-keys', { name: 'sdk', scopes: ['ai:invoke'] });
  key = ((await k.json()) as { key: string }).key;
});
afterAll(async () => {
  await s?.close();
  await stub?.stop();
});

const chat = (content: string) =>
  s.request('ledg.localhost', '/v1/chat/completions', {
    method: 'POST',
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'default', messages: [{ role: 'user', content }] }),
  });

const onDb = <T>(fn: (db: import('bun:sqlite').Database) => T) => s.app.platformDbs.use(platformId, fn);

describe('usage into the ledger', () => {
  test('chat calls become ledger balances equal to the usage rows, posted once', async () => {
    for (const q of ['one', 'two', 'three']) expect((await chat(q)).status).toBe(200);
    await s.ai.meter.flush();
    await s.app.events.idle();
    const sums = await onDb(
      (db) =>
        db
          .query<{ cost: bigint; markup: bigint; n: number }, []>(
            'SELECT sum(cost_micro) AS cost, sum(markup_micro) AS markup, count(*) AS n FROM usage_events',
          )
          .safeIntegers(true)
          .get()!,
    );
    expect(Number(sums.n)).toBe(3);
    expect(sums.cost > 0n).toBe(true);
    const got = await onDb((db) => ({
      payer: findAccount(db, accountId('end_user', '', 'usd')),
      platform: findAccount(db, accountId('platform', '', 'usd')),
      ai: findAccount(db, accountId('ai_cost', '', 'usd')),
      operator: findAccount(db, accountId('operator', '', 'usd')),
    }));
    // The API key has no user: the platform's unattributed payer account.
    expect(got.payer?.debits_posted).toBe(sums.cost + sums.markup);
    expect(netCredit(got.ai!)).toBe(sums.cost);
    // The operator's markup on the AI cost (the creator template's Starter plan: 40%) comes out
    // of the platform's side (src/billing/operator-plans.test.ts covers the tiers).
    expect(netCredit(got.operator!)).toBe(markupOf(sums.cost, 40));
    expect(netCredit(got.platform!)).toBe(sums.markup - markupOf(sums.cost, 40));

    // The same event delivered again (at least once) posts nothing new.
    const events = await onDb((db) =>
      db
        .query<{ payload: string }, []>("SELECT payload FROM events WHERE name = 'usage.recorded'")
        .all()
        .map((r) => JSON.parse(r.payload) as { firstRowId: number; lastRowId: number }),
    );
    expect(events.length).toBeGreaterThan(0);
    const balances = () =>
      onDb((db) => listAccounts(db).map((a) => [a.id, a.debits_posted, a.credits_posted]));
    const before = await balances();
    const again = await onDb((db) => events.map((e) => postUsage(db, e, s.app.clock.now())));
    expect(again).toEqual(events.map(() => 0));
    expect(await balances()).toEqual(before);
  });
});

describe("a tier's included usage", () => {
  let t: InProcessServer;
  afterAll(async () => {
    await t?.close();
  });

  test('usage up to the allowance is given back each month; beyond it the member is charged', async () => {
    // Dear calls, so that a cent of allowance is used up in a few of them.
    t = await inProcessServer({
      config: {
        providers: [{ id: 'stub', kind: 'openai', url: stub.url, location: 'on_prem', timeout_ms: 5_000 }],
        models: [{ alias: 'default', route: ['stub/gpt-4o-mini'] }],
        prices: { 'stub/gpt-4o-mini': { input: 40_000, output: 160_000, currency: 'usd' } },
        outbound: { allow: ['127.0.0.1/32'] },
      },
    });
    const made = await t.operatorApi('POST', '/platforms', { slug: 'incl', template: 'creator' });
    const admin = ((await made.json()) as { admin: { email: string; password: string } }).admin;
    const pid = t.tenancy.get('incl').id;
    const owner = await signInTo(t, 'incl', admin.email, admin.password);
    expect(
      (
        await callAs(t, owner, 'POST', '/api/v1/users', {
          email: 'mia@incl.test',
          role: 'member',
          password: 'a-long-password-12',
        })
      ).status,
    ).toBe(201);
    const mia = await signInTo(t, 'incl', 'mia@incl.test', 'a-long-password-12');
    const key = (await json<{ key: string }>(callAs(t, mia, 'POST', '/api/v1/api-keys', { name: 'mine' })))
      .key;
    const miaId = await t.app.platformDbs.use(
      pid,
      (db) =>
        db.query<{ id: string }, [string]>('SELECT id FROM users WHERE email = ?').get('mia@incl.test')!.id,
    );
    const call = async () => {
      const r = await t.request('incl.localhost', '/v1/chat/completions', {
        method: 'POST',
        headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'default', messages: [{ role: 'user', content: 'hi' }] }),
      });
      expect(r.status).toBe(200);
      await t.ai.meter.flush();
      await t.app.events.idle();
    };
    const account = () =>
      t.app.platformDbs.use(pid, (db) => findAccount(db, accountId('end_user', miaId, 'usd')));
    // One call with no allowance: what a call charges.
    await call();
    const c = (await account())!.debits_posted;
    expect(c > 200_000n && c < 1_000_000n).toBe(true);
    // The free tier (mia's) now includes one cent of usage a month.
    const bp = t.tenancy.blueprintOf(pid);
    const tiers = bp.monetization.subscription_tiers.map((x) =>
      x.id === 'free' ? { ...x, included_usage: { amount: 1, currency: 'usd' } } : x,
    );
    const patched = await t.operatorApi('PATCH', '/platforms/incl', {
      blueprint: { monetization: { subscription_tiers: tiers } },
    });
    expect(patched.status).toBe(200);
    const calls = Number(1_000_000n / c) + 2;
    for (let i = 0; i < calls; i++) await call();
    const a = (await account())!;
    // Charged for every call; given back one cent in all, not more.
    expect(a.debits_posted).toBe(c * BigInt(calls + 1));
    expect(a.credits_posted).toBe(1_000_000n);
    const legs = await t.app.platformDbs.use(
      pid,
      (db) =>
        db
          .query<{ n: number }, []>(
            "SELECT count(*) AS n FROM ledger_transfers WHERE code = 'usage.included'",
          )
          .get()!.n,
    );
    expect(legs).toBe(Number(1_000_000n / c) + 1);
    // Next month the allowance is whole again.
    t.clock.set(Date.UTC(new Date(t.app.clock.now()).getUTCFullYear() + 1, 0, 2));
    const before = (await account())!.credits_posted;
    await call();
    expect((await account())!.credits_posted - before).toBe(c);
  });
});

describe('the usage strategy: AI calls paid from prepaid credits', () => {
  let t: InProcessServer;
  afterAll(async () => {
    await t?.close();
  });

  test('no credits: 402 with where to top up; credits pay the calls, the rest is owed; one low-balance mail', async () => {
    t = await inProcessServer({
      config: {
        providers: [{ id: 'stub', kind: 'openai', url: stub.url, location: 'on_prem', timeout_ms: 5_000 }],
        models: [{ alias: 'default', route: ['stub/gpt-4o-mini'] }],
        prices: { 'stub/gpt-4o-mini': { input: 40_000, output: 160_000, currency: 'usd' } },
        outbound: { allow: ['127.0.0.1/32'] },
        billing: {},
      },
    });
    const made = await t.operatorApi('POST', '/platforms', {
      slug: 'pay',
      template: 'creator',
      blueprint: { monetization: { pricing_strategy: 'usage' } },
    });
    expect(made.status).toBe(201);
    const admin = ((await made.json()) as { admin: { email: string; password: string } }).admin;
    const pid = t.tenancy.get('pay').id;
    const owner = await signInTo(t, 'pay', admin.email, admin.password);
    const pw = 'a-long-password-12';
    expect(
      (
        await callAs(t, owner, 'POST', '/api/v1/users', {
          email: 'mia@pay.test',
          role: 'member',
          password: pw,
        })
      ).status,
    ).toBe(201);
    const mia = await signInTo(t, 'pay', 'mia@pay.test', pw);
    const key = (await json<{ key: string }>(callAs(t, mia, 'POST', '/api/v1/api-keys', { name: 'mine' })))
      .key;
    const ownKey = (
      await json<{ key: string }>(callAs(t, owner, 'POST', '/api/v1/api-keys', { name: 'own' }))
    ).key;
    const miaId = await t.app.platformDbs.use(
      pid,
      (db) =>
        db.query<{ id: string }, [string]>('SELECT id FROM users WHERE email = ?').get('mia@pay.test')!.id,
    );
    const call = async (k: string) => {
      const r = await t.request('pay.localhost', '/v1/chat/completions', {
        method: 'POST',
        headers: { authorization: `Bearer ${k}`, 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'default', messages: [{ role: 'user', content: 'hi' }] }),
      });
      await t.ai.meter.flush();
      await t.app.events.idle();
      return r;
    };
    const refused = await call(key);
    expect(refused.status).toBe(402);
    expect(((await refused.json()) as { error: unknown }).error).toMatchObject({
      code: 'billing.payment_required',
      reason: 'credits',
      checkout_url: 'http://pay.localhost:8080/app/billing',
    });
    // The owner is not limited.
    expect((await call(ownKey)).status).toBe(200);
    // One cent of credits (as a paid top-up posts them).
    await t.app.platformDbs.use(pid, (db) => {
      const now = t.app.clock.now();
      const from = openAccount(db, { kind: 'processor', currency: 'usd' }, now);
      const to = openAccount(db, { kind: 'credits', owner: miaId, currency: 'usd' }, now);
      post(
        db,
        [{ id: 'grant', debit: from, credit: to, amount: 1_000_000n, currency: 'usd', code: 'topup' }],
        now,
      );
    });
    const acct = (kind: 'credits' | 'end_user') =>
      t.app.platformDbs.use(pid, (db) => findAccount(db, accountId(kind, miaId, 'usd'))!);
    expect((await call(key)).status).toBe(200);
    const c = (await acct('end_user')).debits_posted;
    expect(c > 200_000n && c < 1_000_000n).toBe(true);
    // Paid from the credits in full: nothing owed.
    expect(netCredit(await acct('end_user'))).toBe(0n);
    expect(netCredit(await acct('credits'))).toBe(1_000_000n - c);
    // The second call takes the rest of the credits; what they did not cover is owed.
    expect((await call(key)).status).toBe(200);
    expect(netCredit(await acct('credits'))).toBe(0n);
    expect(netCredit(await acct('end_user'))).toBe(1_000_000n - 2n * c);
    // Used up: refused again.
    expect((await call(key)).status).toBe(402);
    // The low-balance notice went once (below 5.00 from the first draw), not on every draw.
    const mails = await t.app.platformDbs.use(
      pid,
      (db) =>
        db
          .query<{ n: number }, []>(
            "SELECT count(*) AS n FROM outbox WHERE template = 'credits_low' AND to_email = 'mia@pay.test'",
          )
          .get()!.n,
    );
    expect(mails).toBe(1);
  });
});
