import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { hostFetch, operatorApi, startTestServer } from '../../tests/helpers.ts';

type Server = Awaited<ReturnType<typeof startTestServer>>;
let s: Server;
let token: string;

const api = (method: string, path: string, body?: unknown) => operatorApi(s.base, token, method, path, body);
const page = (host: string, path = '/', accept = 'text/html') =>
  hostFetch(s.base, host, path, { headers: { accept } });
const platformFiles = () => readdirSync(join(s.dataDir, 'platforms')).filter((f) => f.endsWith('.db'));
const auditCount = () =>
  s.app.control.query<{ n: number }, []>('SELECT count(*) AS n FROM audit_log').get()!.n;

async function create(body: Record<string, unknown>) {
  const res = await api('POST', '/platforms', body);
  const json = (await res.json()) as never;
  return { res, json };
}

beforeAll(async () => {
  s = await startTestServer();
  token = s.firstRun!.token;
});
afterAll(async () => {
  await s.cleanup();
});

describe('operator API: authentication', () => {
  test('no token → 401 auth.required; unknown token → 401 auth.invalid_token', async () => {
    const none = await hostFetch(s.base, 'localhost', '/_operator/api/platforms');
    expect(none.status).toBe(401);
    expect(((await none.json()) as { error: { code: string } }).error.code).toBe('auth.required');
    const bad = await operatorApi(s.base, 'sfo_nope', 'GET', '/platforms');
    expect(bad.status).toBe(401);
    expect(((await bad.json()) as { error: { code: string } }).error.code).toBe('auth.invalid_token');
  });

  test('an operator viewer can read but not change', async () => {
    const { sha256Hex } = await import('../shared/crypto.ts');
    const viewerToken = 'sfo_viewer-token-for-tests';
    s.app.control.exec(`INSERT INTO operators (id, email, password_hash, role, created_at, updated_at)
      VALUES ('op_viewer', 'viewer@localhost', 'x', 'operator_viewer', 0, 0)`);
    s.app.control
      .query(
        "INSERT INTO operator_tokens (id, operator_id, name, token_hash, created_at) VALUES ('opt_v', 'op_viewer', 'v', ?, 0)",
      )
      .run(sha256Hex(viewerToken));
    expect((await operatorApi(s.base, viewerToken, 'GET', '/platforms')).status).toBe(200);
    const w = await operatorApi(s.base, viewerToken, 'POST', '/platforms', { slug: 'viewer-made' });
    expect(w.status).toBe(403);
    expect(((await w.json()) as { error: { code: string } }).error.code).toBe('auth.forbidden');
    expect(s.tenancy.registry.bySlug('viewer-made')).toBeUndefined();
  });

  test('a new operator token works and the old one still does', async () => {
    const res = await api('POST', '/tokens', { name: 'ci' });
    expect(res.status).toBe(201);
    const t = (await res.json()) as { token: string };
    expect(t.token).toStartWith('sfo_');
    expect((await operatorApi(s.base, t.token, 'GET', '/platforms')).status).toBe(200);
  });
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
    const res = await hostFetch(s.base, 'localhost', '/_operator/api/platforms', {
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
      if (what === 'operator') expect(text).toContain('Soulfra operator');
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
    const res = await hostFetch(s.base, 'iso-a.localhost', '/_operator/api/platforms', {
      headers: { authorization: `Bearer ${token}`, accept: 'application/json' },
    });
    expect(res.status).toBe(404);
  });
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
    await Bun.sleep(50);
    // New requests are refused at once; the in-flight one still reads its database.
    expect((await page('busy.localhost')).status).toBe(410);
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
    await create({ slug: 'wl', name: 'Quiet Brand', blueprint: { features: { white_label: true } } });
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
    const text = await (await page('localhost', '/metrics', 'text/plain')).text();
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
