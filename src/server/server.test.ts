import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { type InProcessServer, inProcessServer } from '../../tests/inproc.ts';
import { errorCode, scenarios } from '../../tests/scenario.ts';
import { stillPending, waitFor } from '../../tests/wait.ts';
import { sha256Hex } from '../shared/crypto.ts';

// In process: the server's fetch handler, a pinned clock, no socket. Host parsing, body framing
// and the listener itself are tested over real sockets in tests/host-and-body.test.ts and
// tests/cli.test.ts.
let s: InProcessServer;
let token: string;

const api = (method: string, path: string, body?: unknown) => s.operatorApi(method, path, body);
const page = (host: string, path = '/', accept = 'text/html') =>
  s.request(host, path, { headers: { accept } });
const platformFiles = () => readdirSync(join(s.dataDir, 'platforms')).filter((f) => f.endsWith('.db'));
const auditCount = () =>
  s.app.control.query<{ n: number }, []>('SELECT count(*) AS n FROM audit_log').get()!.n;

async function create(body: Record<string, unknown>) {
  const res = await api('POST', '/platforms', body);
  const json = (await res.json()) as never;
  return { res, json };
}

beforeAll(async () => {
  s = await inProcessServer();
  token = s.operator.token;
});
afterAll(async () => {
  await s.close();
});

const VIEWER_TOKEN = 'sfo_viewer-token-for-tests';
const bearer = (t: string) => ({ authorization: `Bearer ${t}` });

describe('operator API: authentication', () => {
  scenarios(
    () => s,
    [
      {
        name: 'no token → 401 auth.required',
        url: '/_operator/api/platforms',
        expectedStatus: 401,
        expectedContent: (b) => expect(errorCode(b)).toBe('auth.required'),
      },
      {
        name: 'unknown token → 401 auth.invalid_token',
        url: '/_operator/api/platforms',
        headers: bearer('sfo_nope'),
        expectedStatus: 401,
        expectedContent: (b) => expect(errorCode(b)).toBe('auth.invalid_token'),
      },
      {
        name: 'no token and a body that is not JSON → 401, not 400 (authentication answers first)',
        method: 'POST',
        url: '/_operator/api/platforms',
        headers: { 'content-type': 'application/json' },
        body: '{"slug": ',
        expectedStatus: 401,
        expectedContent: (b) => expect(errorCode(b)).toBe('auth.required'),
      },
      {
        name: 'an operator viewer can read',
        url: '/_operator/api/platforms',
        headers: bearer(VIEWER_TOKEN),
        before(s) {
          s.app.control.exec(`INSERT INTO operators (id, email, password_hash, role, created_at, updated_at)
            VALUES ('op_viewer', 'viewer@localhost', 'x', 'operator_viewer', 0, 0)`);
          s.app.control
            .query(
              "INSERT INTO operator_tokens (id, operator_id, name, token_hash, created_at) VALUES ('opt_v', 'op_viewer', 'v', ?, 0)",
            )
            .run(sha256Hex(VIEWER_TOKEN));
        },
        expectedStatus: 200,
      },
      {
        name: 'an operator viewer cannot change: 403, nothing created, no event, no audit entry',
        method: 'POST',
        url: '/_operator/api/platforms',
        headers: bearer(VIEWER_TOKEN),
        body: { slug: 'viewer-made' },
        expectedStatus: 403,
        expectedContent: (b) => expect(errorCode(b)).toBe('auth.forbidden'),
        after: (s) => expect(s.tenancy.registry.bySlug('viewer-made')).toBeUndefined(),
      },
      {
        name: 'a viewer with a malformed body is refused 403 before the body is read as JSON',
        method: 'POST',
        url: '/_operator/api/platforms',
        headers: { ...bearer(VIEWER_TOKEN), 'content-type': 'application/json' },
        body: '{"slug": ',
        expectedStatus: 403,
      },
      {
        name: 'a new operator token works (201, audited)',
        method: 'POST',
        url: '/_operator/api/tokens',
        headers: () => bearer(token),
        body: { name: 'ci' },
        expectedStatus: 201,
        expectedContent: ['"token":"sfo_'],
        expectedAudit: ['operator_token.created'],
        async after(s, _res, body) {
          const made = (body as { token: string }).token;
          expect((await s.operatorApi('GET', '/platforms', undefined, made)).status).toBe(200);
        },
      },
      {
        name: 'and the old one still does',
        url: '/_operator/api/platforms',
        headers: () => bearer(token),
        expectedStatus: 200,
      },
    ],
  );
});

describe('creating platforms', () => {
  test('201 with the contract shape, and the host serves the brand at once', async () => {
    const { res, json } = await create({ slug: 'acme', template: 'creator', name: 'Acme AI' });
    expect(res.status).toBe(201);
    expect(json).toMatchObject({
      slug: 'acme',
      url: expect.stringContaining('acme.localhost'),
      admin: { email: 'owner@acme.localhost' },
    });
    expect((json as { admin: { password: string } }).admin.password).toHaveLength(20);
    expect(res.headers.get('server-timing')).toMatch(/argon2;dur=[\d.]+, create;dur=[\d.]+/);
    const home = await page('acme.localhost');
    expect(home.status).toBe(200);
    const html = await home.text();
    expect(html).toContain('<title>Acme AI</title>');
    expect(html).toContain('--brand-primary:#');
  });

  const invalid: { name: string; body: Record<string, unknown>; code: string; paths: string[] }[] = [
    {
      name: 'percentage over 100',
      body: { blueprint: { monetization: { marketplace_commission: 101 } } },
      code: 'blueprint.invalid',
      paths: ['/monetization/marketplace_commission'],
    },
    {
      name: 'negative money',
      body: { blueprint: { monetization: { agent_creation_fees: { amount: -1, currency: 'usd' } } } },
      code: 'blueprint.invalid',
      paths: ['/monetization/agent_creation_fees/amount'],
    },
    {
      name: 'money as a float',
      body: { blueprint: { monetization: { agent_creation_fees: { amount: 9.99, currency: 'usd' } } } },
      code: 'blueprint.invalid',
      paths: ['/monetization/agent_creation_fees/amount'],
    },
    {
      name: 'bad color',
      body: { blueprint: { identity: { branding: { colors: { primary: 'red' } } } } },
      code: 'blueprint.invalid',
      paths: ['/identity/branding/colors/primary'],
    },
    {
      name: 'unknown feature (typo)',
      body: { blueprint: { features: { agent_creaton: true } } },
      code: 'blueprint.invalid',
      paths: ['/features/agent_creaton'],
    },
    {
      name: 'unknown pricing strategy',
      body: { blueprint: { monetization: { pricing_strategy: 'free' } } },
      code: 'blueprint.invalid',
      paths: ['/monetization/pricing_strategy'],
    },
    {
      name: 'cloud_fallback not allowed/never',
      body: { blueprint: { ai_settings: { cloud_fallback: 'sometimes' } } },
      code: 'blueprint.invalid',
      paths: ['/ai_settings/cloud_fallback'],
    },
    {
      name: 'unknown compliance pack',
      body: { blueprint: { governance: { compliance_packs: ['pci'] } } },
      code: 'blueprint.invalid',
      paths: ['/governance/compliance_packs/0'],
    },
    {
      name: 'shares that do not add up',
      body: { template: 'creator', blueprint: { monetization: { creator_revenue_share: 80 } } },
      code: 'blueprint.invalid',
      paths: ['/monetization/creator_revenue_share'],
    },
    {
      name: 'custom CSS closing the style element',
      body: { blueprint: { identity: { branding: { custom_css: 'a{}</style><script>x</script>' } } } },
      code: 'blueprint.invalid',
      paths: ['/identity/branding/custom_css'],
    },
    {
      name: 'blueprint that is not an object',
      body: { blueprint: [1, 2] },
      code: 'blueprint.invalid',
      paths: [''],
    },
    {
      name: 'unknown template',
      body: { template: 'shop' },
      code: 'blueprint.unknown_template',
      paths: ['/template'],
    },
    {
      name: 'several errors at once, all listed',
      body: {
        blueprint: {
          identity: { branding: { colors: { text: 'blue' } } },
          governance: { agent_approval_process: 'never' },
          features: { white_label: 'yes' },
        },
      },
      code: 'blueprint.invalid',
      paths: [
        '/features/white_label',
        '/governance/agent_approval_process',
        '/identity/branding/colors/text',
      ],
    },
    {
      name: 'custom domain not a host name',
      body: { domain: 'https://x.example.com/' },
      code: 'platform.domain_invalid',
      paths: ['/domain'],
    },
    {
      name: 'custom domain an IP address',
      body: { domain: '10.0.0.1' },
      code: 'platform.domain_ip_address',
      paths: ['/domain'],
    },
    {
      name: 'unknown request field',
      body: { templat: 'creator' },
      code: 'request.invalid',
      paths: ['/templat'],
    },
  ];

  test(`a table of ${invalid.length} invalid requests: 400 naming the fields, nothing created`, async () => {
    const filesBefore = platformFiles();
    const auditBefore = auditCount();
    const listBefore = s.tenancy.list().length;
    for (const [i, c] of invalid.entries()) {
      const slug = `bad-${i}`;
      const { res, json } = await create({ slug, ...c.body });
      const err = (
        json as { error: { code: string; message: string; details?: { path: string; reason: string }[] } }
      ).error;
      expect({ case: c.name, status: res.status, code: err.code }).toEqual({
        case: c.name,
        status: 400,
        code: c.code,
      });
      expect({ case: c.name, paths: (err.details ?? []).map((d) => d.path).sort() }).toEqual({
        case: c.name,
        paths: [...c.paths].sort(),
      });
      for (const d of err.details ?? []) expect(d.reason.length).toBeGreaterThan(0);
      expect(s.tenancy.registry.bySlug(slug)).toBeUndefined();
    }
    expect(platformFiles()).toEqual(filesBefore);
    expect(readdirSync(join(s.dataDir, 'platforms')).filter((f) => f.startsWith('.tmp-'))).toEqual([]);
    expect(auditCount()).toBe(auditBefore);
    expect(s.tenancy.list().length).toBe(listBefore);
  });

  const slugs: [string, number, string][] = [
    ['a', 400, 'platform.slug_invalid'],
    ['x'.repeat(64), 400, 'platform.slug_invalid'],
    ['Acme', 400, 'platform.slug_invalid'],
    ['-acme', 400, 'platform.slug_invalid'],
    ['acme-', 400, 'platform.slug_invalid'],
    ['ac_me', 400, 'platform.slug_invalid'],
    ['ac.me', 400, 'platform.slug_invalid'],
    ['xn--acme', 400, 'platform.slug_invalid'],
    ['admin', 400, 'platform.slug_reserved'],
    ['soulfra', 400, 'platform.slug_reserved'],
    ['www', 400, 'platform.slug_reserved'],
    ['acme', 409, 'platform.slug_taken'],
  ];
  for (const [slug, status, code] of slugs) {
    test(`slug '${slug.length > 20 ? `${slug.slice(0, 8)}…(${slug.length})` : slug}' → ${status} ${code}`, async () => {
      const { res, json } = await create({ slug });
      expect(res.status).toBe(status);
      expect((json as { error: { code: string; details: { path: string }[] } }).error.code).toBe(code);
      expect((json as { error: { details: { path: string }[] } }).error.details[0]!.path).toBe('/slug');
    });
  }
  test('slugs at the edges of the rule are accepted', async () => {
    for (const slug of ['a1', 'z'.repeat(63), '9lives', 'my-ai-2']) {
      const { res } = await create({ slug });
      expect({ slug, status: res.status }).toEqual({ slug, status: 201 });
    }
  });

  test('malformed JSON → 400 request.invalid_json', async () => {
    const res = await s.request('localhost', '/_operator/api/platforms', {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: '{"slug": ',
    });
    expect(res.status).toBe(400);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe('request.invalid_json');
  });

  test('concurrent creates of one slug: exactly one wins, the rest get 409, one file', async () => {
    const before = platformFiles().length;
    const results = await Promise.all(Array.from({ length: 6 }, () => create({ slug: 'race' })));
    const statuses = results.map((r) => r.res.status).sort();
    expect(statuses).toEqual([201, 409, 409, 409, 409, 409]);
    expect(platformFiles().length).toBe(before + 1);
  });
});

describe('host routing and isolation', () => {
  let a: { id: string };
  let b: { id: string };
  beforeAll(async () => {
    a = (await create({ slug: 'iso-a', name: 'Alpha Co', domain: 'ai.alpha.test' })).json as never as {
      id: string;
    };
    a = { id: s.tenancy.registry.bySlug('iso-a')!.id };
    await create({ slug: 'iso-b', name: 'Beta Co' });
    b = { id: s.tenancy.registry.bySlug('iso-b')!.id };
  });

  test("each host shows its own brand and never the other's", async () => {
    const ha = await (await page('iso-a.localhost')).text();
    const hb = await (await page('iso-b.localhost:8080')).text();
    expect(ha).toContain('<title>Alpha Co</title>');
    expect(ha).not.toContain('Beta Co');
    expect(hb).toContain('<title>Beta Co</title>');
    expect(hb).not.toContain('Alpha Co');
  });

  test("a platform's requests hold only its own database", async () => {
    await s.app.platformDbs.closeAll();
    const ra = (await (await page('iso-a.localhost', '/readyz', 'application/json')).json()) as {
      id: string;
    };
    expect(ra.id).toBe(a.id);
    expect(s.app.platformDbs.has(a.id)).toBe(true);
    expect(s.app.platformDbs.has(b.id)).toBe(false);
    const rb = (await (await page('iso-b.localhost', '/readyz', 'application/json')).json()) as {
      id: string;
    };
    expect(rb.id).toBe(b.id);
  });

  test('a public page with no credentials never opens the database', async () => {
    await s.app.platformDbs.closeAll();
    expect((await page('iso-a.localhost')).status).toBe(200);
    expect(s.app.platformDbs.has(a.id)).toBe(false);
  });

  test('a mapped custom domain reaches its platform', async () => {
    const res = await page('ai.alpha.test');
    expect(res.status).toBe(200);
    expect(await res.text()).toContain('<title>Alpha Co</title>');
    const dup = await create({ slug: 'iso-c', domain: 'ai.alpha.test' });
    expect(dup.res.status).toBe(409);
    expect((dup.json as { error: { code: string } }).error.code).toBe('platform.domain_taken');
  });

  test('domains can be added and removed later; each change is audited', async () => {
    const add = await api('POST', '/platforms/iso-b/domains', { host: 'beta.example.org' });
    expect(add.status).toBe(200);
    expect(((await add.json()) as { domains: string[] }).domains).toEqual(['beta.example.org']);
    expect(await (await page('beta.example.org')).text()).toContain('<title>Beta Co</title>');
    const taken = await api('POST', '/platforms/iso-b/domains', { host: 'ai.alpha.test' });
    expect(taken.status).toBe(409);
    const bad = await api('POST', '/platforms/iso-b/domains', { host: 'Beta Example' });
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { error: { details: { path: string }[] } }).error.details[0]!.path).toBe(
      '/host',
    );
    const under = await api('POST', '/platforms/iso-b/domains', { host: 'x.localhost' });
    expect(under.status).toBe(400);
    // An IP address can never route to a platform (its Host is the operator's): refused, named.
    for (const host of ['203.0.113.7', '2001:db8::7', '[2001:db8::7]']) {
      const ip = await api('POST', '/platforms/iso-b/domains', { host });
      const err = ((await ip.json()) as { error: { code: string; details: { path: string }[] } }).error;
      expect({ host, status: ip.status, code: err.code, path: err.details[0]!.path }).toEqual({
        host,
        status: 400,
        code: 'platform.domain_ip_address',
        path: '/host',
      });
    }
    expect((await api('DELETE', '/platforms/iso-b/domains/ai.alpha.test')).status).toBe(404);
    expect((await api('DELETE', '/platforms/iso-b/domains/beta.example.org')).status).toBe(200);
    expect((await page('beta.example.org')).status).toBe(404);
    const actions = s.app.control
      .query<{ action: string }, []>(
        "SELECT action FROM audit_log WHERE target = 'platform:iso-b' ORDER BY seq",
      )
      .all()
      .map((r) => r.action);
    expect(actions).toEqual(['platform.created', 'platform.domain_added', 'platform.domain_removed']);
  });

  const hosts: [string, number, string][] = [
    ['nosuch.localhost', 404, 'no platform'],
    ['iso-a.iso-b.localhost', 404, 'no platform'],
    ['iso-a.localhost.evil.test', 404, 'no platform'],
    ['unmapped.example.com', 404, 'no platform'],
    ['localhost', 200, 'operator'],
    ['127.0.0.1:8080', 200, 'operator'],
  ];
  for (const [host, status, what] of hosts) {
    test(`Host ${host} → ${status} (${what})`, async () => {
      const res = await page(host);
      expect(res.status).toBe(status);
      const text = await res.text();
      if (what === 'operator') expect(text).toContain('<title>Soulfra console</title>');
      else {
        expect(text).not.toContain('Alpha Co');
        expect(text).not.toContain('Beta Co');
      }
    });
  }

  test('/healthz answers on every host', async () => {
    for (const host of ['localhost', 'iso-a.localhost', 'nosuch.localhost']) {
      const res = await page(host, '/healthz', 'application/json');
      expect(await res.json()).toEqual({ status: 'ok' });
    }
  });

  test('the operator API is not reachable on a platform host', async () => {
    const res = await s.request('iso-a.localhost', '/_operator/api/platforms', {
      headers: { authorization: `Bearer ${token}`, accept: 'application/json' },
    });
    expect(res.status).toBe(404);
  });
});

describe('operator API scenarios: a platform through its life (events and audit per step)', () => {
  const op = () => bearer(token);
  scenarios(
    () => s,
    [
      {
        name: "create → 201, platform.created published, audited on the control chain and the new platform's",
        method: 'POST',
        url: '/_operator/api/platforms',
        headers: op,
        body: { slug: 'story', name: 'Story Co' },
        expectedStatus: 201,
        expectedContent: ['"slug":"story"', 'story.localhost'],
        expectedEvents: ['platform.created'],
        expectedAudit: ['platform.created', 'story:platform.created'],
      },
      {
        name: 'its host serves its brand (no event, no audit)',
        host: 'story.localhost',
        url: '/',
        headers: { accept: 'text/html' },
        expectedStatus: 200,
        expectedContent: ['<title>Story Co</title>'],
        notExpectedContent: ['Soulfra operator'],
      },
      {
        name: 'suspend → 200, status_changed published and audited',
        method: 'POST',
        url: '/_operator/api/platforms/story/suspend',
        headers: op,
        body: { reason: 'unpaid invoice' },
        expectedStatus: 200,
        expectedContent: (b) =>
          expect(b).toMatchObject({ status: 'suspended', status_reason: 'unpaid invoice' }),
        expectedEvents: ['platform.status_changed'],
        expectedAudit: ['platform.suspended'],
      },
      {
        name: 'the suspended host answers 503 platform.suspended to API clients',
        host: 'story.localhost',
        url: '/',
        headers: { accept: 'application/json' },
        expectedStatus: 503,
        expectedContent: (b, res) => {
          expect(errorCode(b)).toBe('platform.suspended');
          expect(res.headers.get('retry-after')).toBe('3600');
        },
      },
      {
        name: 'resume → 200, status_changed published and audited',
        method: 'POST',
        url: '/_operator/api/platforms/story/resume',
        headers: op,
        expectedStatus: 200,
        expectedEvents: ['platform.status_changed'],
        expectedAudit: ['platform.resumed'],
      },
      {
        name: 'archive → 200, platform.archived published and audited',
        method: 'POST',
        url: '/_operator/api/platforms/story/archive',
        headers: op,
        body: {},
        expectedStatus: 200,
        expectedContent: ['"status":"archived"'],
        expectedEvents: ['platform.archived'],
        expectedAudit: ['platform.archived'],
      },
      {
        name: 'the archived host answers 410',
        host: 'story.localhost',
        url: '/',
        headers: { accept: 'application/json' },
        expectedStatus: 410,
        expectedContent: (b) => expect(errorCode(b)).toBe('platform.archived'),
      },
      {
        name: 'a viewer may not unarchive: 403, no event, no audit',
        method: 'POST',
        url: '/_operator/api/platforms/story/unarchive',
        headers: bearer(VIEWER_TOKEN),
        expectedStatus: 403,
      },
      {
        name: 'unarchive → 200, platform.unarchived published and audited',
        method: 'POST',
        url: '/_operator/api/platforms/story/unarchive',
        headers: op,
        expectedStatus: 200,
        expectedEvents: ['platform.unarchived'],
        expectedAudit: ['platform.unarchived'],
        after: async (s) => expect((await s.request('story.localhost', '/')).status).toBe(200),
      },
      {
        name: 'an unknown platform → 404 platform.not_found, nothing published',
        method: 'POST',
        url: '/_operator/api/platforms/ghost/suspend',
        headers: op,
        body: {},
        expectedStatus: 404,
        expectedContent: (b) => expect(errorCode(b)).toBe('platform.not_found'),
      },
    ],
  );
});

describe('suspend, resume, archive, unarchive', () => {
  beforeAll(async () => {
    await create({ slug: 'life', name: 'Life Cycle', template: 'business' });
  });

  test('suspend → 503 branded page (and JSON for API clients); resume → 200', async () => {
    const r = await api('POST', '/platforms/life/suspend', { reason: 'unpaid invoice' });
    expect(r.status).toBe(200);
    expect(await r.json()).toMatchObject({ status: 'suspended', status_reason: 'unpaid invoice' });
    const p = await page('life.localhost');
    expect(p.status).toBe(503);
    expect(p.headers.get('retry-after')).toBe('3600');
    expect(await p.text()).toContain('Life Cycle');
    const j = await page('life.localhost', '/', 'application/json');
    expect(j.status).toBe(503);
    expect(((await j.json()) as { error: { code: string } }).error.code).toBe('platform.suspended');
    expect((await api('POST', '/platforms/life/resume')).status).toBe(200);
    expect((await page('life.localhost')).status).toBe(200);
  });

  test('archive → 410, the file moved aside and kept, the slug still taken; unarchive brings it back', async () => {
    const id = s.tenancy.registry.bySlug('life')!.id;
    const live = join(s.dataDir, 'platforms', `${id}.db`);
    const archived = join(s.dataDir, 'platforms', 'archive', `${id}.db`);
    await page('life.localhost', '/readyz', 'application/json'); // the pool holds it open
    const r = await api('POST', '/platforms/life/archive', {});
    expect(r.status).toBe(200);
    expect(await r.json()).toMatchObject({ status: 'archived', db_file: `platforms/archive/${id}.db` });
    expect(existsSync(live)).toBe(false);
    expect(existsSync(archived)).toBe(true);
    expect((await page('life.localhost')).status).toBe(410);
    expect((await create({ slug: 'life' })).res.status).toBe(409);
    const sus = await api('POST', '/platforms/life/suspend', {});
    expect(sus.status).toBe(409);
    expect(((await sus.json()) as { error: { code: string } }).error.code).toBe('platform.archived');

    const u = await api('POST', '/platforms/life/unarchive');
    expect(u.status).toBe(200);
    expect(existsSync(live)).toBe(true);
    expect(existsSync(archived)).toBe(false);
    expect((await page('life.localhost')).status).toBe(200);
    expect((await page('life.localhost', '/readyz', 'application/json')).status).toBe(200);
  });

  test('archive waits for an in-flight request that holds the database', async () => {
    await create({ slug: 'busy' });
    const id = s.tenancy.registry.bySlug('busy')!.id;
    const lease = s.app.platformDbs.acquire(id);
    const archiving = api('POST', '/platforms/busy/archive', {});
    // New requests are refused at once; the in-flight one still reads its database.
    await waitFor(async () => (await page('busy.localhost')).status === 410, { what: 'busy answering 410' });
    expect(await stillPending(archiving)).toBe(true);
    expect(
      lease.db.query<{ value: string }, []>("SELECT value FROM meta WHERE key = 'slug'").get()?.value,
    ).toBe('busy');
    lease.release();
    expect((await archiving).status).toBe(200);
    expect(existsSync(join(s.dataDir, 'platforms', 'archive', `${id}.db`))).toBe(true);
  });

  test('unknown platform → 404 platform.not_found', async () => {
    const r = await api('POST', '/platforms/ghost/suspend', {});
    expect(r.status).toBe(404);
    expect(((await r.json()) as { error: { code: string } }).error.code).toBe('platform.not_found');
  });

  test('every change is in the control audit chain, which verifies', async () => {
    const actions = s.app.control
      .query<{ action: string }, []>(
        "SELECT action FROM audit_log WHERE target = 'platform:life' ORDER BY seq",
      )
      .all()
      .map((r) => r.action);
    expect(actions).toEqual([
      'platform.created',
      'platform.suspended',
      'platform.resumed',
      'platform.archived',
      'platform.unarchived',
    ]);
    const v = (await (await api('GET', '/audit/verify')).json()) as {
      ok: boolean;
      chains: { chain: string; ok: boolean }[];
    };
    expect(v.ok).toBe(true);
    expect(v.chains.map((c) => c.chain)).toContain('control');
    expect(v.chains.map((c) => c.chain)).toContain('busy');
  });
});

describe('white label', () => {
  test('a white-labeled platform never says Soulfra, in pages or headers', async () => {
    // White-label needs a plan that includes it: the business template's (Business).
    await create({
      slug: 'wl',
      name: 'Quiet Brand',
      template: 'business',
      blueprint: { features: { white_label: true } },
    });
    const check = async (res: Response) => {
      const headers = [...res.headers.entries()].map(([k, v]) => `${k}: ${v}`).join('\n');
      const body = await res.text();
      expect(body).toContain('Quiet Brand');
      expect(`${headers}\n${body}`.toLowerCase()).not.toContain('soulfra');
    };
    await check(await page('wl.localhost'));
    const missing = await page('wl.localhost', '/no/such/page');
    expect(missing.status).toBe(404);
    await check(missing);
    await api('POST', '/platforms/wl/suspend', {});
    const suspended = await page('wl.localhost');
    expect(suspended.status).toBe(503);
    await check(suspended);
  });

  test('a platform that is not white-labeled says Powered by Soulfra', async () => {
    expect(await (await page('acme.localhost')).text()).toContain('Powered by Soulfra');
  });
});

describe('health, readiness, metrics', () => {
  test('/readyz on the operator host checks the control database', async () => {
    const r = await page('localhost', '/readyz', 'application/json');
    expect(r.status).toBe(200);
    expect(await r.json()).toEqual({ status: 'ready', checks: { control_db: 'ok', control_schema: 'ok' } });
  });

  test('/metrics: requests by route and status, latency histogram, platforms, open handles', async () => {
    await page('acme.localhost');
    // Requests are counted once their answer is on its way (setImmediate).
    const text = await waitFor(async () => {
      const t = await (await page('localhost', '/metrics', 'text/plain')).text();
      return /soulfra_http_requests_total\{host_kind="platform",route="\/",status="200"\} [1-9]/.test(t) && t;
    });
    expect(text).toMatch(/soulfra_http_requests_total\{host_kind="platform",route="\/",status="200"\} [1-9]/);
    expect(text).toMatch(
      /soulfra_http_request_duration_seconds_bucket\{le="0.005",host_kind="platform",route="\/"\}/,
    );
    const active = s.tenancy.countByStatus().active;
    expect(text).toContain(`soulfra_platforms{status="active"} ${active}`);
    expect(text).toMatch(/soulfra_platform_db_open_handles \d+/);
  });

  test('/metrics is not served on platform hosts', async () => {
    expect((await page('acme.localhost', '/metrics', 'text/plain')).status).toBe(404);
  });
});
