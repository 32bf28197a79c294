/**
 * The operator's plans for platforms (issue 13 item 1), end to end through the operator API
 * and a platform's own routes: the seeded plans; create, update, archive and delete with
 * validation naming the field; a template picks the default plan; a sale's operator fee follows
 * the platform's plan (past purchases keep their terms); usage posting adds the operator's
 * markup leg with its volume discount, and the chains balance; a platform over its user limit
 * is told (the status, exactly one mail over SMTP), stays open through the grace period, is
 * then held (sign-ups and new agents refused with billing.platform_held; existing users still
 * sign in and chat), and a bigger plan lifts the hold. A platform's admin cannot change its plan.
 */
import type { Database } from 'bun:sqlite';
import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { type InProcessServer, inProcessServer } from '../../tests/inproc.ts';
import { type OpenAIStub, startOpenAIStub } from '../../tests/peers/openai-stub.ts';
import { callAs, json, type Session, signInTo } from '../../tests/sessions.ts';
import { type LoopbackSmtp, startLoopbackSmtp } from '../../tests/smtp.ts';
import { waitFor } from '../../tests/wait.ts';
import { listOutbox } from '../identity/index.ts';
import {
  accountId,
  findAccount,
  listAccounts,
  markupOf,
  markupPercentFor,
  netCredit,
  type OperatorPlan,
  postUsage,
} from './index.ts';

const M = 1_000_000n;
const DAY = 86_400_000;
const PASSWORD = 'a-long-password-12';
const PRICE = { input: 15_000_000_000, output: 60_000_000_000, currency: 'usd' };

let s: InProcessServer;
let ai: OpenAIStub;
let smtp: LoopbackSmtp;

const op = (method: string, path: string, body?: unknown) => s.operatorApi(method, path, body);
const opJson = <T>(method: string, path: string, body?: unknown) => json<T>(op(method, path, body));
const onDb = <T>(slug: string, fn: (db: Database) => T) => s.app.platformDbs.use(s.tenancy.get(slug).id, fn);

type Status = {
  plan_status: {
    plan: OperatorPlan;
    users: number;
    max_users: number | null;
    over_limit: boolean;
    held: boolean;
    over_since: string | null;
    hold_at: string | null;
    message: string | null;
  };
};

async function makePlatform(slug: string, template: string, blueprint?: unknown) {
  const r = await op('POST', '/platforms', { slug, template, ...(blueprint ? { blueprint } : {}) });
  expect(r.status).toBe(201);
  return ((await r.json()) as { admin: { email: string; password: string } }).admin;
}

const signup = (slug: string, email: string) =>
  s.request(`${slug}.localhost`, '/api/v1/auth/signup', {
    method: 'POST',
    headers: { 'content-type': 'application/json', origin: `http://${slug}.localhost:8080` },
    body: JSON.stringify({ email, password: PASSWORD }),
  });

beforeAll(async () => {
  ai = await startOpenAIStub({ models: ['gpt-4o-mini'] });
  smtp = await startLoopbackSmtp();
  s = await inProcessServer({
    config: {
      providers: [{ id: 'stub', kind: 'openai', url: ai.url, location: 'on_prem', timeout_ms: 5_000 }],
      models: [{ alias: 'default', route: ['stub/gpt-4o-mini'] }],
      prices: { 'stub/gpt-4o-mini': PRICE },
      outbound: { allow: ['127.0.0.1/32'] },
      mail: { from: 'noreply@mail.test', smtp: { host: '127.0.0.1', port: smtp.port, starttls: 'never' } },
    },
  });
});
afterAll(async () => {
  await s?.close();
  await ai?.stop();
  await smtp?.close();
});

describe('the plans as data', () => {
  test('the seeds exist in the operator currency, with their limits, markups and fees', async () => {
    const { plans } = await opJson<{ plans: (OperatorPlan & { platforms: number })[] }>('GET', '/plans');
    const by = Object.fromEntries(plans.map((p) => [p.id, p]));
    expect(Object.keys(by).sort()).toEqual(['business', 'enterprise', 'starter']);
    expect(by.starter).toMatchObject({
      price_minor: 9_900,
      max_users: 1_000,
      transaction_fee_percent: 15,
      currency: 'usd',
    });
    expect(by.business).toMatchObject({
      price_minor: 99_900,
      max_users: 50_000,
      transaction_fee_percent: 25,
    });
    expect(by.enterprise).toMatchObject({ price_minor: 999_900, price_is_minimum: true, max_users: null });
    for (const p of plans) {
      expect(p.ai_markup_percent).toBeGreaterThanOrEqual(20);
      expect(p.ai_markup_percent).toBeLessThanOrEqual(40);
    }
    expect(by.enterprise!.features).toContain('mobile_app_generation');
  });

  test('create, update, archive and delete, with errors naming the field', async () => {
    const bad = await op('POST', '/plans', {
      id: 'Bad Id',
      name: '',
      price_minor: -1,
      ai_markup_percent: 10,
      transaction_fee_percent: 150,
    });
    expect(bad.status).toBe(400);
    const e = ((await bad.json()) as { error: { code: string; details: { path: string }[] } }).error;
    expect(e.code).toBe('billing.plan_invalid');
    expect(e.details.map((d) => d.path)).toEqual([
      '/id',
      '/name',
      '/price_minor',
      '/transaction_fee_percent',
    ]);
    const wrongType = await op('POST', '/plans', { id: 'x', name: 'X', price_minor: 'ten' });
    expect(wrongType.status).toBe(400);
    expect(JSON.stringify(await wrongType.json())).toContain('/price_minor');
    const tiers = await op('POST', '/plans', {
      id: 'tiers',
      name: 'Tiers',
      price_minor: 0,
      ai_markup_percent: 30,
      transaction_fee_percent: 10,
      ai_markup_tiers: [
        { over_minor: 100, markup_percent: 20 },
        { over_minor: 50, markup_percent: 10 },
      ],
    });
    expect(tiers.status).toBe(400);
    expect(JSON.stringify(await tiers.json())).toContain('/ai_markup_tiers/1/over_minor');

    const made = await op('POST', '/plans', {
      id: 'pro',
      name: 'Pro',
      price_minor: 49_900,
      max_users: 10_000,
      ai_markup_percent: 33.5,
      transaction_fee_percent: 20,
      features: ['marketplace'],
    });
    expect(made.status).toBe(201);
    expect(((await made.json()) as { plan: OperatorPlan }).plan).toMatchObject({
      id: 'pro',
      currency: 'usd',
      interval: 'month',
    });
    expect(
      (
        await op('POST', '/plans', {
          id: 'pro',
          name: 'Again',
          price_minor: 1,
          ai_markup_percent: 1,
          transaction_fee_percent: 1,
        })
      ).status,
    ).toBe(409);
    const patched = await opJson<{ plan: OperatorPlan }>('PATCH', '/plans/pro', {
      transaction_fee_percent: 18.25,
    });
    expect(patched.plan.transaction_fee_percent).toBe(18.25);
    const badPatch = await op('PATCH', '/plans/pro', { ai_markup_percent: 1.234 });
    expect(badPatch.status).toBe(400);
    expect(JSON.stringify(await badPatch.json())).toContain('/ai_markup_percent');
    // Unused: deleted. In use: only archived.
    expect((await op('DELETE', '/plans/pro')).status).toBe(204);
    expect((await op('GET', '/plans/pro')).status).toBe(404);
    await makePlatform('seedling', 'creator');
    const again = await op('DELETE', '/plans/starter');
    expect(again.status).toBe(409);
    expect(((await again.json()) as { error: { code: string } }).error.code).toBe('billing.plan_in_use');
    const archived = await opJson<{ plan: OperatorPlan & { platforms: number } }>(
      'POST',
      '/plans/enterprise/archive',
    );
    expect(archived.plan.archived).toBe(true);
    expect((await op('PUT', '/platforms/seedling/plan', { plan: 'enterprise' })).status).toBe(409);
    expect((await op('PATCH', '/plans/enterprise', { archived: false })).status).toBe(200);
    const audit = await opJson<{ entries: { action: string }[] }>(
      'GET',
      '/audit?action=billing.plan_created',
    );
    expect(audit.entries.length).toBeGreaterThan(0);
  });

  test('a template picks the default plan', async () => {
    await makePlatform('crea', 'creator');
    await makePlatform('biz', 'business');
    expect((await opJson<Status>('GET', '/platforms/crea/plan')).plan_status.plan.id).toBe('starter');
    expect((await opJson<Status>('GET', '/platforms/biz/plan')).plan_status.plan.id).toBe('business');
  });

  test('volume tiers: the markup in force follows the month-to-date AI cost', () => {
    const plan = {
      ai_markup_percent: 40,
      ai_markup_tiers: [
        { over_minor: 100, markup_percent: 30 },
        { over_minor: 1_000, markup_percent: 20 },
      ],
    } as OperatorPlan;
    expect(markupPercentFor(plan, 0n)).toBe(40);
    expect(markupPercentFor(plan, 100n * M)).toBe(40);
    expect(markupPercentFor(plan, 100n * M + 1n)).toBe(30);
    expect(markupPercentFor(plan, 5_000n * M)).toBe(20);
    expect(markupOf(1_000_001n, 33.33)).toBe(333_300n);
    expect(markupOf(3n, 50)).toBe(2n);
  });
});

describe("the plan's fee and markup are enforced", () => {
  let owner: Session;
  let cat: Session;
  let dan: Session;
  const bal = (id: string) =>
    onDb('mkt', (db) => (findAccount(db, id) ? netCredit(findAccount(db, id)!) : 0n));

  beforeAll(async () => {
    const admin = await makePlatform('mkt', 'creator');
    owner = await signInTo(s, 'mkt', admin.email, admin.password);
    for (const [name, role] of [
      ['cat', 'creator'],
      ['dan', 'member'],
    ] as const)
      expect(
        (
          await callAs(s, owner, 'POST', '/api/v1/users', {
            email: `${name}@mkt.test`,
            role,
            password: PASSWORD,
          })
        ).status,
      ).toBe(201);
    cat = await signInTo(s, 'mkt', 'cat@mkt.test', PASSWORD);
    dan = await signInTo(s, 'mkt', 'dan@mkt.test', PASSWORD);
  });

  async function sell(title: string): Promise<string> {
    const a = await json<{ agent: { id: string } }>(
      callAs(s, cat, 'POST', '/api/v1/agents', { name: title, persona: 'Helps.' }),
    );
    expect((await callAs(s, cat, 'POST', `/api/v1/agents/${a.agent.id}/publish`)).status).toBe(201);
    const l = await json<{ listing: { id: string } }>(
      callAs(s, cat, 'POST', `/api/v1/agents/${a.agent.id}/listing`, {
        title,
        summary: 'A paid helper for tests.',
        category: 'productivity',
        tags: ['test'],
        price_model: 'one_time',
        price_minor: 1_000,
        currency: 'usd',
      }),
    );
    // No Stripe here: the purchase waits for an admin to record its payment.
    const r = await callAs(s, dan, 'POST', `/api/v1/marketplace/${l.listing.id}/install`);
    expect(r.status).toBe(402);
    const pid = ((await r.json()) as { error: { purchase_id: string } }).error.purchase_id;
    return pid;
  }

  test("a sale's operator fee follows the plan; a past purchase keeps its terms", async () => {
    const first = await sell('Fee One');
    // Changed after the purchase opened, before it is paid: the purchase keeps its terms.
    expect((await op('PUT', '/platforms/mkt/plan', { plan: 'business' })).status).toBe(200);
    expect(
      (await callAs(s, owner, 'POST', `/api/v1/admin/billing/purchases/${first}/payment`, { note: 'cash' }))
        .status,
    ).toBe(200);
    const fee = accountId('operator', '', 'usd');
    expect(await bal(fee)).toBe(150n * M); // 15% of 10.00 (starter, the terms it was opened under)
    const second = await sell('Fee Two');
    expect(
      (await callAs(s, owner, 'POST', `/api/v1/admin/billing/purchases/${second}/payment`, { note: 'cash' }))
        .status,
    ).toBe(200);
    expect(await bal(fee)).toBe(150n * M + 250n * M); // then 25% (business)
    const terms = await onDb('mkt', (db) =>
      db
        .query<{ id: string; terms: string }, []>('SELECT id, terms FROM purchases ORDER BY created_at')
        .all()
        .map((p) => [p.id, (JSON.parse(p.terms) as { operatorFee: number }).operatorFee]),
    );
    expect(terms).toEqual([
      [first, 15],
      [second, 25],
    ]);
    const audit = await opJson<{ entries: { action: string; details: { from: string; to: string } }[] }>(
      'GET',
      '/audit?action=billing.platform_plan_changed',
    );
    expect(audit.entries[0]!.details).toMatchObject({ from: 'starter', to: 'business' });
  });

  test('usage posts the operator markup leg with its volume discount, and the chains balance', async () => {
    expect(
      (
        await op('POST', '/plans', {
          id: 'volume',
          name: 'Volume',
          price_minor: 0,
          ai_markup_percent: 40,
          ai_markup_tiers: [{ over_minor: 1, markup_percent: 10 }],
          transaction_fee_percent: 15,
        })
      ).status,
    ).toBe(201);
    expect((await op('PUT', '/platforms/mkt/plan', { plan: 'volume' })).status).toBe(200);
    const chat = async () => {
      const r = await callAs(s, dan, 'POST', '/v1/chat/completions', {
        model: 'default',
        messages: [{ role: 'user', content: 'hello there' }],
      });
      expect(r.status).toBe(200);
      await s.ai.meter.flush();
      await s.app.events.idle();
    };
    const opAcct = accountId('operator', '', 'usd');
    const aiAcct = accountId('ai_cost', '', 'usd');
    const before = { op: await bal(opAcct), ai: await bal(aiAcct) };
    await chat();
    const one = { op: (await bal(opAcct)) - before.op, ai: (await bal(aiAcct)) - before.ai };
    // The month's AI cost was 0 before this batch: the base markup, 40%.
    expect(one.ai > M).toBe(true);
    expect(one.op).toBe(markupOf(one.ai, 40));
    await chat();
    const two = {
      op: (await bal(opAcct)) - before.op - one.op,
      ai: (await bal(aiAcct)) - before.ai - one.ai,
    };
    // Past 0.01 this month: the tier's 10%.
    expect(two.op).toBe(markupOf(two.ai, 10));
    const legs = await onDb('mkt', (db) =>
      db
        .query<{ code: string; n: number }, []>(
          "SELECT code, count(*) AS n FROM ledger_transfers WHERE code LIKE 'usage%' GROUP BY code ORDER BY code",
        )
        .all(),
    );
    expect(legs).toEqual([
      { code: 'usage', n: 2 },
      { code: 'usage.cost', n: 2 },
      { code: 'usage.operator', n: 2 },
    ]);
    // Delivered again after the tier moved (or the plan changed): nothing posts, nothing fails.
    const events = await onDb('mkt', (db) =>
      db
        .query<{ payload: string }, []>("SELECT payload FROM events WHERE name = 'usage.recorded'")
        .all()
        .map((r) => JSON.parse(r.payload) as { firstRowId: number; lastRowId: number }),
    );
    const other = { percentFor: () => 99, posted: () => undefined };
    expect(await onDb('mkt', (db) => events.map((e) => postUsage(db, e, s.app.clock.now(), other)))).toEqual(
      events.map(() => 0),
    );
    // Every account's debits and credits sum to the same: the ledger balances.
    const accounts = await onDb('mkt', (db) => listAccounts(db));
    const debits = accounts.reduce((a, x) => a + x.debits_posted, 0n);
    const credits = accounts.reduce((a, x) => a + x.credits_posted, 0n);
    expect(debits).toBe(credits);
  });
});

describe('limits and holds', () => {
  let owner: Session;
  let ownerEmail = '';
  let ownerPassword = '';

  beforeAll(async () => {
    expect(
      (
        await op('POST', '/plans', {
          id: 'tiny',
          name: 'Tiny',
          price_minor: 100,
          max_users: 2,
          ai_markup_percent: 20,
          transaction_fee_percent: 15,
        })
      ).status,
    ).toBe(201);
    const admin = await makePlatform('lim', 'creator', {
      governance: { self_signup: true, user_verification: { email_required: false } },
    });
    ownerEmail = admin.email;
    ownerPassword = admin.password;
    owner = await signInTo(s, 'lim', admin.email, admin.password);
    expect((await op('PUT', '/platforms/lim/plan', { plan: 'tiny' })).status).toBe(200);
  });

  const planMails = () =>
    onDb('lim', (db) =>
      listOutbox(db, ['queued', 'sending', 'sent', 'failed'] as never).filter(
        (m) => m.template === 'plan_over_limit',
      ),
    );

  test('over the limit: told once (console status, one mail), still open within the grace period', async () => {
    expect((await signup('lim', 'u1@lim.test')).status).toBe(201);
    let st = (await opJson<Status>('GET', '/platforms/lim/plan')).plan_status;
    expect(st).toMatchObject({ users: 2, max_users: 2, over_limit: false, held: false });
    expect((await signup('lim', 'u2@lim.test')).status).toBe(201);
    st = (await opJson<Status>('GET', '/platforms/lim/plan')).plan_status;
    expect(st).toMatchObject({ users: 3, over_limit: true, held: false });
    expect(st.message).toContain('limit of 2');
    expect(Date.parse(st.hold_at!) - Date.parse(st.over_since!)).toBe(14 * DAY);
    const list = await opJson<{ over_limit: { platform: string; plan: string; held: boolean }[] }>(
      'GET',
      '/plans',
    );
    expect(list.over_limit).toEqual([
      expect.objectContaining({ platform: 'lim', plan: 'tiny', held: false }),
    ]);
    // Within the grace period: still open, and no second mail.
    s.clock.advance(13 * DAY);
    expect((await signup('lim', 'u3@lim.test')).status).toBe(201);
    await opJson<Status>('GET', '/platforms/lim/plan');
    const mails = await planMails();
    expect(mails.map((m) => m.to_email)).toEqual([ownerEmail]);
    const got = await waitFor(
      () => smtp.received.find((r) => r.mail.subject?.includes('over its Tiny plan')),
      {
        what: 'the over-limit mail',
      },
    );
    expect(got.to).toContain(ownerEmail);
    expect(got.mail.text).toContain('new sign-ups, invitations and agents will be refused');
  });

  test('after the grace period: sign-ups and new agents refused; existing users sign in and chat', async () => {
    s.clock.advance(2 * DAY);
    const r = await signup('lim', 'u4@lim.test');
    expect(r.status).toBe(402);
    const e = ((await r.json()) as { error: { code: string; message: string } }).error;
    expect(e.code).toBe('billing.platform_held');
    expect(e.message).toContain("over its Tiny plan's limit of 2");
    expect(e.message).toContain('Existing users keep working');
    // Existing users sign in (the owner's session of 15 days ago has lapsed).
    owner = await signInTo(s, 'lim', ownerEmail, ownerPassword);
    const agent = await callAs(s, owner, 'POST', '/api/v1/agents', { name: 'Another', persona: 'Helps.' });
    expect(agent.status).toBe(402);
    expect(((await agent.json()) as { error: { code: string } }).error.code).toBe('billing.platform_held');
    const invite = await callAs(s, owner, 'POST', '/api/v1/users', {
      email: 'new@lim.test',
      role: 'member',
      password: PASSWORD,
    });
    expect(invite.status).toBe(402);
    // Existing users keep working.
    const u1 = await signInTo(s, 'lim', 'u1@lim.test', PASSWORD);
    const c = await callAs(s, u1, 'POST', '/v1/chat/completions', {
      model: 'default',
      messages: [{ role: 'user', content: 'still here?' }],
    });
    expect(c.status).toBe(200);
    const st = (await opJson<Status>('GET', '/platforms/lim/plan')).plan_status;
    expect(st).toMatchObject({ held: true, over_limit: true });
    expect((await planMails()).length).toBe(1);
    const audit = await opJson<{ entries: { action: string }[] }>(
      'GET',
      '/audit?action=billing.platform_held',
    );
    expect(audit.entries.length).toBe(1);
  });

  test("a platform's owner cannot change its own plan", async () => {
    const key = await json<{ key: string }>(callAs(s, owner, 'POST', '/api/v1/api-keys', { name: 'mine' }));
    const attempts: [string, Response][] = [
      [
        'the platform host',
        await callAs(s, owner, 'PUT', '/_operator/api/platforms/lim/plan', { plan: 'enterprise' }),
      ],
      [
        'the operator host with the platform cookie',
        await s.request('localhost', '/_operator/api/platforms/lim/plan', {
          method: 'PUT',
          headers: { cookie: owner.cookie, 'x-csrf-token': owner.csrf, 'content-type': 'application/json' },
          body: JSON.stringify({ plan: 'enterprise' }),
        }),
      ],
      [
        "the operator host with the platform's API key",
        await s.request('localhost', '/_operator/api/platforms/lim/plan', {
          method: 'PUT',
          headers: { authorization: `Bearer ${key.key}`, 'content-type': 'application/json' },
          body: JSON.stringify({ plan: 'enterprise' }),
        }),
      ],
      [
        'a blueprint change',
        await callAs(s, owner, 'PATCH', '/api/v1/admin/platform', { billing: { plan: 'enterprise' } }),
      ],
    ];
    for (const [what, r] of attempts) {
      expect({ what, ok: r.status < 300 }).toEqual({ what, ok: false });
    }
    expect((await opJson<Status>('GET', '/platforms/lim/plan')).plan_status.plan.id).toBe('tiny');
  });

  test('a bigger plan lifts the hold at once', async () => {
    const st = (await opJson<Status>('PUT', '/platforms/lim/plan', { plan: 'business' })).plan_status;
    expect(st).toMatchObject({ held: false, over_limit: false, users: 4 });
    expect((await signup('lim', 'u5@lim.test')).status).toBe(201);
    expect(
      (await callAs(s, owner, 'POST', '/api/v1/agents', { name: 'Another', persona: 'Helps.' })).status,
    ).toBe(201);
    const audit = await opJson<{ entries: { action: string }[] }>(
      'GET',
      '/audit?action=billing.platform_hold_lifted',
    );
    expect(audit.entries.length).toBe(1);
  });
});

describe("a plan's features switch the blueprint's", () => {
  const code = async (r: Response) =>
    ((await r.json()) as { error?: { code: string; message: string } }).error;
  test('white-label needs Business or Enterprise; the mobile app, Enterprise; moves and creation checked too', async () => {
    expect((await op('POST', '/platforms', { slug: 'gate', template: 'creator' })).status).toBe(201);
    // On Starter (the creator template's plan): white-label is refused, naming the field and the plans that have it.
    const on = await op('PATCH', '/platforms/gate', { blueprint: { features: { white_label: true } } });
    expect(on.status).toBe(409);
    const e = await code(on);
    expect(e?.code).toBe('billing.plan_feature');
    expect(e?.message).toContain('features.white_label');
    expect(e?.message).toContain('Business');
    expect(s.tenancy.blueprintOf(s.tenancy.get('gate').id).features.white_label).toBe(false);
    // On Business: allowed; then a move back to Starter is refused while it is on.
    expect((await op('PUT', '/platforms/gate/plan', { plan: 'business' })).status).toBe(200);
    expect(
      (await op('PATCH', '/platforms/gate', { blueprint: { features: { white_label: true } } })).status,
    ).toBe(200);
    const back = await op('PUT', '/platforms/gate/plan', { plan: 'starter' });
    expect(back.status).toBe(409);
    expect((await code(back))?.code).toBe('billing.plan_feature');
    // The white-labeled mobile app: Enterprise only.
    const mobile = await op('PATCH', '/platforms/gate', {
      blueprint: { features: { white_label_mobile: true } },
    });
    expect(mobile.status).toBe(409);
    expect((await op('PUT', '/platforms/gate/plan', { plan: 'enterprise' })).status).toBe(200);
    expect(
      (await op('PATCH', '/platforms/gate', { blueprint: { features: { white_label_mobile: true } } }))
        .status,
    ).toBe(200);
    // Creating a white-labeled platform on a template whose plan lacks it: refused, nothing made.
    const made = await op('POST', '/platforms', {
      slug: 'gate2',
      template: 'creator',
      blueprint: { features: { white_label: true } },
    });
    expect(made.status).toBe(409);
    expect((await op('GET', '/platforms/gate2')).status).toBe(404);
    expect(
      (
        await op('POST', '/platforms', {
          slug: 'gate3',
          template: 'business',
          blueprint: { features: { white_label: true } },
        })
      ).status,
    ).toBe(201);
  });
});
