/**
 * What the browser apps' viewers read: the platform list with its figures, AI usage by hour,
 * model and user, and the audit trails with filters and cursors (platform and control plane).
 */
import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { type InProcessServer, inProcessServer } from '../../tests/inproc.ts';
import { type OpenAIStub, startOpenAIStub } from '../../tests/peers/openai-stub.ts';

let s: InProcessServer;
let stub: OpenAIStub;
const owners: Record<string, { email: string; password: string }> = {};
let key = '';

interface Session {
  host: string;
  cookie: string;
  csrf: string;
}
let owner: Session;

beforeAll(async () => {
  stub = await startOpenAIStub({ models: ['gpt-4o-mini'] });
  s = await inProcessServer({
    config: {
      providers: [{ id: 'stub', kind: 'openai', url: stub.url, location: 'on_prem', timeout_ms: 10_000 }],
      models: [{ alias: 'default', route: ['stub/gpt-4o-mini'] }],
      prices: { 'stub/gpt-4o-mini': { input: 15_000_000, output: 60_000_000, currency: 'usd' } },
      outbound: { allow: ['127.0.0.1/32'] },
    },
  });
  for (const slug of ['vw', 'vx']) {
    const r = await s.operatorApi('POST', '/platforms', { slug, template: 'creator' });
    owners[slug] = ((await r.json()) as { admin: { email: string; password: string } }).admin;
  }
  const host = 'vw.localhost';
  const r = await s.request(host, '/api/v1/auth/login', {
    method: 'POST',
    headers: { 'content-type': 'application/json', origin: `http://${host}:8080` },
    body: JSON.stringify(owners.vw),
  });
  expect(r.status).toBe(200);
  owner = {
    host,
    cookie: (r.headers.get('set-cookie') ?? '').split(';')[0]!,
    csrf: ((await r.json()) as { csrf_token: string }).csrf_token,
  };
  const k = await call(owner, 'POST', '/api/v1/api-keys', { name: 'usage' });
  expect(k.status).toBe(201);
  key = ((await k.json()) as { key: string }).key;
  const c = await s.request(host, '/v1/chat/completions', {
    method: 'POST',
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
    body: JSON.stringify({
      model: 'default',
      messages: [{ role: 'user', content: 'count me in the charts' }],
    }),
  });
  expect(c.status).toBe(200);
});
afterAll(async () => {
  await s.close();
  await stub.stop();
});

function call(se: Session, method: string, path: string, body?: unknown) {
  return s.request(se.host, path, {
    method,
    headers: {
      cookie: se.cookie,
      ...(method === 'GET' ? {} : { 'x-csrf-token': se.csrf }),
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
}

interface Entry {
  seq: number;
  ts: string;
  actor: string;
  action: string;
  target: string;
}

describe('the platform list with its figures', () => {
  test('include=stats gives users, 30 days of calls, tokens and cost; a bad include is named', async () => {
    const r = await s.operatorApi('GET', '/platforms?include=stats');
    expect(r.status).toBe(200);
    const { platforms } = (await r.json()) as {
      platforms: {
        slug: string;
        stats: {
          users: number;
          calls_30d: number;
          tokens_30d: number;
          cost_micro_30d: number;
          currency: string | null;
        };
      }[];
    };
    const vw = platforms.find((p) => p.slug === 'vw')!.stats;
    const vx = platforms.find((p) => p.slug === 'vx')!.stats;
    expect(vw.users).toBe(1);
    expect(vw.calls_30d).toBe(1);
    expect(vw.tokens_30d).toBeGreaterThan(0);
    expect(vw.cost_micro_30d).toBeGreaterThan(0);
    expect(vw.currency).toBe('usd');
    expect(vx).toEqual({ users: 1, calls_30d: 0, tokens_30d: 0, cost_micro_30d: 0, currency: null });
    // Without include, the list is as before (no figures).
    const plain = (await (await s.operatorApi('GET', '/platforms')).json()) as { platforms: object[] };
    expect(plain.platforms.every((p) => !('stats' in p))).toBe(true);
    const bad = await s.operatorApi('GET', '/platforms?include=secrets');
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { error: { details: { path: string }[] } }).error.details[0]!.path).toBe(
      '/include',
    );
  });
});

describe('AI usage by hour', () => {
  test('one hour bucket per model alias and user, with the email; money as exact integers', async () => {
    const r = await call(owner, 'GET', '/api/v1/ai/usage/hourly');
    expect(r.status).toBe(200);
    const body = (await r.json()) as {
      from: string;
      to: string;
      hours: {
        hour: string;
        alias: string;
        user_email: string | null;
        calls: number;
        tokens_in: number;
        cost_micro: number;
        currency: string;
      }[];
    };
    expect(Date.parse(body.to) - Date.parse(body.from)).toBeGreaterThanOrEqual(30 * 86_400_000);
    expect(body.hours).toHaveLength(1);
    const h = body.hours[0]!;
    expect(h).toMatchObject({ alias: 'default', calls: 1, currency: 'usd', user_email: owners.vw!.email });
    expect(new Date(h.hour).getUTCMinutes()).toBe(0);
    expect(Date.parse(h.hour)).toBeLessThanOrEqual(Date.now());
    expect(Number.isInteger(h.cost_micro)).toBe(true);
    // A range that ends before the call has none; a malformed time is named.
    const before = await call(
      owner,
      'GET',
      '/api/v1/ai/usage/hourly?to=2020-01-01T00:00:00Z&from=2019-12-01T00:00:00Z',
    );
    expect(((await before.json()) as { hours: unknown[] }).hours).toEqual([]);
    const bad = await call(owner, 'GET', '/api/v1/ai/usage/hourly?from=yesterday');
    expect(bad.status).toBe(400);
  });

  test('attack table: no session, an API key of a member-less role, and another platform read nothing', async () => {
    const anon = await s.request('vw.localhost', '/api/v1/ai/usage/hourly');
    expect(anon.status).toBe(401);
    // vw's session cookie is vw's: on vx it is no session at all.
    const cross = await s.request('vx.localhost', '/api/v1/ai/usage/hourly', {
      headers: { cookie: owner.cookie },
    });
    expect(cross.status).toBe(401);
    // vx's own owner sees vx's (empty) usage, never vw's call.
    const lx = await s.request('vx.localhost', '/api/v1/auth/login', {
      method: 'POST',
      headers: { 'content-type': 'application/json', origin: 'http://vx.localhost:8080' },
      body: JSON.stringify(owners.vx),
    });
    const cx = (lx.headers.get('set-cookie') ?? '').split(';')[0]!;
    const own = await s.request('vx.localhost', '/api/v1/ai/usage/hourly', { headers: { cookie: cx } });
    expect(((await own.json()) as { hours: unknown[] }).hours).toEqual([]);
  });
});

describe('the audit viewers', () => {
  test("a platform's trail newest first, paged with before, filtered by action prefix and actor", async () => {
    const all = (await (await call(owner, 'GET', '/api/v1/audit?limit=500')).json()) as { entries: Entry[] };
    expect(all.entries.length).toBeGreaterThanOrEqual(3);
    const seqs = all.entries.map((e) => e.seq);
    expect(seqs).toEqual([...seqs].sort((a, b) => a - b));
    const page1 = (await (await call(owner, 'GET', '/api/v1/audit?order=desc&limit=2')).json()) as {
      entries: Entry[];
      next_before: number | null;
    };
    expect(page1.entries.map((e) => e.seq)).toEqual([seqs.at(-1)!, seqs.at(-2)!]);
    expect(page1.next_before).toBe(seqs.at(-2)!);
    const page2 = (await (
      await call(owner, 'GET', `/api/v1/audit?before=${page1.next_before}&limit=2`)
    ).json()) as {
      entries: Entry[];
    };
    expect(page2.entries.map((e) => e.seq)).toEqual([
      seqs.at(-3)!,
      ...(seqs.length > 3 ? [seqs.at(-4)!] : []),
    ]);
    // An action prefix ending in a dot, and an exact action.
    const actions = [...new Set(all.entries.map((e) => e.action))];
    const prefix = `${actions[0]!.split('.')[0]}.`;
    const byPrefix = (await (
      await call(owner, 'GET', `/api/v1/audit?action=${prefix}&limit=500`)
    ).json()) as {
      entries: Entry[];
    };
    expect(byPrefix.entries.length).toBe(all.entries.filter((e) => e.action.startsWith(prefix)).length);
    const actor = all.entries.at(-1)!.actor;
    const byActor = (await (
      await call(owner, 'GET', `/api/v1/audit?actor=${encodeURIComponent(actor)}&limit=500`)
    ).json()) as {
      entries: Entry[];
    };
    expect(byActor.entries.length).toBe(all.entries.filter((e) => e.actor === actor).length);
    // LIKE's wildcards in a target filter are text, not patterns.
    const wild = (await (await call(owner, 'GET', '/api/v1/audit?target=%25')).json()) as {
      entries: Entry[];
    };
    expect(wild.entries).toEqual([]);
  });

  test('bad filters are refused naming the parameter; no session reads nothing', async () => {
    for (const [q, path] of [
      ['limit=ten', '/limit'],
      ['order=sideways', '/order'],
      ['before=-1', '/before'],
      ['from=not-a-time', '/from'],
    ] as const) {
      const r = await call(owner, 'GET', `/api/v1/audit?${q}`);
      expect(r.status).toBe(400);
      const e = ((await r.json()) as { error: { code: string; details: { path: string }[] } }).error;
      expect(e.code).toBe('audit.query_invalid');
      expect(e.details[0]!.path).toBe(path);
    }
    expect((await s.request('vw.localhost', '/api/v1/audit')).status).toBe(401);
  });

  test("the operator reads the control plane's trail and a platform's, filtered", async () => {
    const control = (await (
      await s.operatorApi('GET', '/audit?action=platform.created&order=desc')
    ).json()) as {
      chain: string;
      entries: Entry[];
    };
    expect(control.chain).toBe('control');
    expect(control.entries.length).toBe(2);
    expect(control.entries.every((e) => e.action === 'platform.created')).toBe(true);
    expect(control.entries[0]!.seq).toBeGreaterThan(control.entries[1]!.seq);
    const vw = (await (await s.operatorApi('GET', '/audit?platform=vw')).json()) as {
      chain: string;
      entries: Entry[];
    };
    expect(vw.chain).toBe('vw');
    const own = (await (await call(owner, 'GET', '/api/v1/audit?limit=500')).json()) as { entries: Entry[] };
    expect(vw.entries.map((e) => e.seq)).toEqual(own.entries.map((e) => e.seq).slice(0, 100));
    const none = await s.operatorApi('GET', '/audit?platform=nope');
    expect(none.status).toBe(404);
    const anon = await s.request('localhost', '/_operator/api/audit');
    expect(anon.status).toBe(401);
  });
});

describe("the platforms' databases on the health screen", () => {
  test('each file with its size and schema against the build; an archived one is only looked at', async () => {
    const r = await s.operatorApi('GET', '/health/databases');
    expect(r.status).toBe(200);
    const { databases } = (await r.json()) as {
      databases: {
        slug: string;
        status: string;
        bytes: number;
        schema: number | null;
        latest: number;
        ok: boolean;
        problem: string | null;
      }[];
    };
    expect(databases.map((x) => x.slug).sort()).toEqual(['vw', 'vx']);
    for (const x of databases) {
      expect(x).toMatchObject({ status: 'active', ok: true, problem: null });
      expect(x.schema).toBe(x.latest);
      expect(x.bytes).toBeGreaterThan(0);
    }
    expect((await s.operatorApi('POST', '/platforms/vx/archive', {})).status).toBe(200);
    const after = (await (await s.operatorApi('GET', '/health/databases')).json()) as {
      databases: { slug: string; status: string; schema: number | null; ok: boolean }[];
    };
    expect(after.databases.find((x) => x.slug === 'vx')).toMatchObject({
      status: 'archived',
      schema: null,
      ok: true,
    });
    expect((await s.request('localhost', '/_operator/api/health/databases')).status).toBe(401);
  });
});
