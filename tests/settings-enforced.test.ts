import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { type InProcessServer, inProcessServer } from './inproc.ts';
import { type OpenAIStub, startOpenAIStub } from './peers/openai-stub.ts';
import { PlatformClient } from './platform-client.ts';

// Blueprint settings enforced by the request guard and the AI pipeline (issue 10 item 6):
// feature switches (`api_access`, `sso_integration`), `max_output_tokens`, `cost_optimization`,
// and what the operator API reports of the rest (docs/blueprint.md, "What each setting does today").

let s: InProcessServer;
let dear: OpenAIStub;
let cheap: OpenAIStub;
const owners: Record<string, PlatformClient> = {};
const keys: Record<string, string> = {};
const created: Record<string, { warnings: string[] }> = {};

async function platform(slug: string, body: Record<string, unknown>) {
  const res = await s.operatorApi('POST', '/platforms', { slug, ...body });
  expect(res.status).toBe(201);
  const r = (await res.json()) as { admin: { email: string; password: string }; warnings: string[] };
  created[slug] = r;
  const owner = new PlatformClient(s.request, `${slug}.localhost`);
  expect((await owner.signIn(r.admin.email, r.admin.password)).status).toBe(200);
  owners[slug] = owner;
  const k = await s.operatorApi('POST', `/platforms/${slug}/api-keys`, {
    name: 'sdk',
    scopes: ['admin', 'ai:invoke'],
  });
  expect(k.status).toBe(201);
  keys[slug] = ((await k.json()) as { key: string }).key;
}

beforeAll(async () => {
  process.env.SOULFRA_TEST_SETTINGS_KEY = 'sk-settings';
  dear = await startOpenAIStub({ apiKey: 'sk-settings' });
  cheap = await startOpenAIStub({ apiKey: 'sk-settings' });
  const provider = (id: string, url: string) => ({
    id,
    kind: 'openai' as const,
    url,
    api_key_env: 'SOULFRA_TEST_SETTINGS_KEY',
    timeout_ms: 2_000,
  });
  s = await inProcessServer({
    config: {
      providers: [provider('dear', dear.url), provider('cheap', cheap.url)],
      models: [{ alias: 'chat', route: ['dear/gpt-x', 'cheap/gpt-x'] }],
      prices: {
        'dear/gpt-x': { input: 500, output: 1_500, currency: 'usd' },
        'cheap/gpt-x': { input: 50, output: 150, currency: 'usd' },
      },
    },
  });
  await platform('gated', { blueprint: { features: { api_access: false, sso_integration: false } } });
  await platform('open', {});
  await platform('capped', {
    blueprint: { ai_settings: { cost_optimization: true, quality_gates: { max_output_tokens: 100 } } },
  });
  await platform('strict', { template: 'business' });
}, 30_000);

afterAll(async () => {
  await s?.close();
  await dear?.stop();
  await cheap?.stop();
});

type Who = 'anonymous' | 'owner session' | 'platform key' | 'unknown key';

async function send(slug: string, who: Who, method: string, path: string, json?: unknown) {
  const headers: Record<string, string> = { accept: 'application/json' };
  if (who === 'platform key') headers.authorization = `Bearer ${keys[slug]}`;
  if (who === 'unknown key') headers.authorization = 'Bearer sk_nope_0000000000000000000000';
  if (who === 'owner session') {
    const r = await owners[slug]!.json(method, path, json);
    return { status: r.status, code: (r.body as { error?: { code: string } } | null)?.error?.code ?? null };
  }
  if (json !== undefined) headers['content-type'] = 'application/json';
  const res = await s.request(`${slug}.localhost`, path, {
    method,
    headers,
    body: json === undefined ? undefined : JSON.stringify(json),
    redirect: 'manual',
  });
  const text = await res.text();
  let code: string | null = null;
  try {
    code = (JSON.parse(text) as { error?: { code: string } }).error?.code ?? null;
  } catch {}
  return { status: res.status, code };
}

describe('feature switches gate the end-user feature they name, never administration', () => {
  // [platform (its switches), who, method, path, body, expected status, expected code]
  const cases: [string, Who, string, string, unknown, number, string | null][] = [
    // api_access off: every API-key call is refused, sessions still work, keys stay manageable.
    ['gated', 'platform key', 'GET', '/v1/models', undefined, 403, 'platform.api_access_disabled'],
    ['gated', 'platform key', 'GET', '/api/v1/me', undefined, 403, 'platform.api_access_disabled'],
    ['gated', 'platform key', 'GET', '/api/v1/users', undefined, 403, 'platform.api_access_disabled'],
    ['gated', 'unknown key', 'GET', '/v1/models', undefined, 401, 'auth.invalid_token'],
    ['gated', 'owner session', 'GET', '/api/v1/me', undefined, 200, null],
    ['gated', 'owner session', 'GET', '/v1/models', undefined, 200, null],
    ['gated', 'owner session', 'GET', '/api/v1/users', undefined, 200, null],
    ['gated', 'owner session', 'GET', '/api/v1/api-keys', undefined, 200, null],
    ['gated', 'owner session', 'POST', '/api/v1/api-keys', { name: 'later' }, 201, null],
    ['gated', 'anonymous', 'GET', '/', undefined, 200, null],
    // sso_integration off: sign-in and linking are 404 feature.disabled for everyone ...
    ['gated', 'anonymous', 'GET', '/sso/oidc/login', undefined, 404, 'feature.disabled'],
    ['gated', 'anonymous', 'GET', '/sso/oidc/callback?state=x&code=y', undefined, 404, 'feature.disabled'],
    ['gated', 'anonymous', 'GET', '/sso/saml/login', undefined, 404, 'feature.disabled'],
    ['gated', 'anonymous', 'POST', '/sso/saml/acs', {}, 404, 'feature.disabled'],
    ['gated', 'owner session', 'POST', '/api/v1/sso/oidc/link', {}, 404, 'feature.disabled'],
    ['gated', 'owner session', 'POST', '/api/v1/sso/saml/link', {}, 404, 'feature.disabled'],
    // ... while the owner still administers SSO.
    ['gated', 'owner session', 'GET', '/api/v1/sso/oidc', undefined, 404, 'sso.oidc_not_configured'],
    ['gated', 'owner session', 'GET', '/api/v1/sso/saml', undefined, 404, 'sso.saml_not_configured'],
    ['gated', 'owner session', 'PUT', '/api/v1/sso/oidc', {}, 400, 'sso.oidc_invalid'],
    // The blank template keeps both on: a key works, SSO answers as SSO (here: not set up).
    ['open', 'platform key', 'GET', '/v1/models', undefined, 200, null],
    ['open', 'platform key', 'GET', '/api/v1/me', undefined, 200, null],
    ['open', 'anonymous', 'GET', '/sso/oidc/login', undefined, 404, 'sso.oidc_not_configured'],
  ];
  for (const [slug, who, method, path, body, status, code] of cases) {
    test(`${slug}: ${who} ${method} ${path} → ${status} ${code ?? ''}`, async () => {
      expect(await send(slug, who, method, path, body)).toEqual({ status, code });
    });
  }
});

describe('AI settings', () => {
  const chat = async (slug: string, extra: Record<string, unknown> = {}) => {
    const res = await s.request(`${slug}.localhost`, '/v1/chat/completions', {
      method: 'POST',
      headers: { authorization: `Bearer ${keys[slug]}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'chat', messages: [{ role: 'user', content: 'hi there' }], ...extra }),
    });
    expect(res.status).toBe(200);
    return res.headers.get('x-ai-provider');
  };
  const lastSent = (stub: OpenAIStub) => stub.requests.at(-1)!.body as { max_tokens?: number };

  test('max_output_tokens caps what the client asks for, under either name, and fills in a missing one', async () => {
    for (const [extra, sent] of [
      [{ max_tokens: 5_000 }, 100],
      [{ max_completion_tokens: 5_000 }, 100],
      [{}, 100],
      [{ max_tokens: 40 }, 40],
    ] as const) {
      expect(await chat('capped', extra)).toBe('cheap');
      expect([extra, lastSent(cheap).max_tokens]).toEqual([extra, sent]);
    }
    // Without a cap the client's value goes through as asked.
    expect(await chat('open', { max_tokens: 5_000 })).toBe('dear');
    expect(lastSent(dear).max_tokens).toBe(5_000);
  });

  test('cost_optimization tries the cheapest allowed candidate first; off, the route order holds', async () => {
    expect(await chat('capped')).toBe('cheap');
    expect(await chat('open')).toBe('dear');
    // Cheapest first still falls back: the cheap provider down, the dear one answers.
    cheap.setFault('refuse');
    try {
      expect(await chat('capped')).toBe('dear');
    } finally {
      cheap.setFault(null);
    }
  });
});

describe('what the operator is told', () => {
  test('GET /_operator/api/platforms/:slug lists the settings set but not enforced, and warnings', async () => {
    const show = async (slug: string) =>
      (await (await s.operatorApi('GET', `/platforms/${slug}`)).json()) as {
        settings_not_enforced: { setting: string; enforced_by: string }[];
        warnings: string[];
      };
    const open = await show('open');
    expect(open.settings_not_enforced.map((x) => x.setting)).toEqual([
      'governance.data_retention.deleted_user_grace_days',
    ]);
    expect(open.warnings).toEqual([]);
    const strict = await show('strict');
    const pending = strict.settings_not_enforced.map((x) => x.setting);
    expect(pending).toContain('governance.compliance_packs');
    expect(pending).not.toContain('ai_settings.quality_gates.require_citations');
    expect(pending).toContain('ai_settings.safety_filters.level');
    expect(pending).not.toContain('features.api_access');
    expect(
      strict.settings_not_enforced.find((x) => x.setting === 'governance.compliance_packs'),
    ).toMatchObject({
      enforced_by: 'hipaa: the router; soc2, gdpr: compliance packs (issue 15)',
    });
    const warning =
      "ai_settings.safety_filters.level is 'maximum' but this instance has no safety_classifier configured: prompts are not classified (blocked_terms and redact_pii still apply)";
    expect(strict.warnings).toEqual([warning]);
    // The same warning came back from the create call.
    expect(created.strict!.warnings).toEqual([warning]);
    expect(created.open!.warnings).toEqual([]);
  });
});
