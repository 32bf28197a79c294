/**
 * Settled AI usage reaches the ledger from the meter's `usage.recorded` events (issue 13 item
 * 3): per payer and currency, the payer owes the platform cost plus markup and the platform
 * owes the AI cost; a redelivered event posts nothing twice; end to end, chat calls through
 * /v1/chat/completions end up as ledger balances equal to the usage rows' sums.
 */
import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { type InProcessServer, inProcessServer } from '../../tests/inproc.ts';
import { type OpenAIStub, startOpenAIStub } from '../../tests/peers/openai-stub.ts';
import { accountId, findAccount, listAccounts, markupOf, netCredit, postUsage } from './index.ts';

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
