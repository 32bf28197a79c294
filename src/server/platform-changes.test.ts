import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { type InProcessServer, inProcessWithPlatform } from '../../tests/inproc.ts';
import { PlatformClient } from '../../tests/platform-client.ts';
import { errorCode, runScenario, scenarios } from '../../tests/scenario.ts';

// Issue 10 items 1 and 5: change a platform (operator and platform admin), delete an archived
// platform, and its API keys from the operator API. In process, one server per table.

const op = (s: InProcessServer) => ({ authorization: `Bearer ${s.operator.token}` });
const key = (k: string) => () => ({ authorization: `Bearer ${k}` });
const home = async (s: InProcessServer, host = 'acme.localhost') =>
  (await s.request(host, '/', { headers: { accept: 'text/html' } })).text();
const blueprintOf = (b: unknown) => (b as { blueprint: Record<string, Record<string, unknown>> }).blueprint;

async function makeKey(
  s: InProcessServer,
  slug: string,
  scopes: string[],
): Promise<{ id: string; key: string }> {
  const res = await s.operatorApi('POST', `/platforms/${slug}/api-keys`, { name: scopes.join('+'), scopes });
  expect(res.status).toBe(201);
  return (await res.json()) as { id: string; key: string };
}

describe('PATCH /_operator/api/platforms/:slug (the operator changes a blueprint)', () => {
  let s: InProcessServer;
  beforeAll(async () => {
    ({ s } = await inProcessWithPlatform('acme', { template: 'creator', name: 'Acme' }));
    // The operator's rebrand turns white-label on: a plan that includes it (Business).
    expect((await s.operatorApi('PUT', '/platforms/acme/plan', { plan: 'business' })).status).toBe(200);
  });
  afterAll(() => s.close());

  scenarios(
    () => s,
    [
      {
        name: 'before: the home page shows the old brand',
        host: 'acme.localhost',
        url: '/',
        headers: { accept: 'text/html' },
        expectedStatus: 200,
        expectedContent: ['<h1>Acme</h1>', '--brand-primary:#7c3aed', 'Powered by Soulfra'],
      },
      {
        name: 'a rebrand → 200 with the diff; audited on both chains; platform.updated published',
        method: 'PATCH',
        url: '/_operator/api/platforms/acme',
        headers: op,
        body: {
          blueprint: {
            identity: { name: 'Acme Studio', branding: { colors: { primary: '#112233' } } },
            features: { white_label: true },
          },
        },
        expectedStatus: 200,
        expectedContent: (b) => {
          const r = b as {
            platform: { name: string };
            changes: { path: string; from: unknown; to: unknown }[];
          };
          expect(r.platform.name).toBe('Acme Studio');
          expect(r.changes).toEqual([
            { path: '/features/white_label', from: false, to: true },
            { path: '/identity/branding/colors/primary', from: '#7c3aed', to: '#112233' },
            { path: '/identity/name', from: 'Acme', to: 'Acme Studio' },
          ]);
        },
        expectedEvents: ['platform.updated'],
        expectedAudit: ['platform.updated', 'acme:platform.updated'],
      },
      {
        name: 'the rebrand shows on the home page at once (no restart), white-labeled',
        host: 'acme.localhost',
        url: '/',
        headers: { accept: 'text/html' },
        expectedStatus: 200,
        expectedContent: ['<h1>Acme Studio</h1>', '--brand-primary:#112233', '© Acme Studio'],
        notExpectedContent: ['Soulfra', '#7c3aed'],
      },
      {
        name: 'the operator API shows the new name and blueprint',
        url: '/_operator/api/platforms/acme',
        headers: op,
        expectedStatus: 200,
        expectedContent: (b) => {
          expect((b as { name: string }).name).toBe('Acme Studio');
          expect(blueprintOf(b).identity!.name).toBe('Acme Studio');
        },
      },
      {
        name: 'the same change again → 200, no changes, nothing audited or published',
        method: 'PATCH',
        url: '/_operator/api/platforms/acme',
        headers: op,
        body: { blueprint: { identity: { name: 'Acme Studio' } } },
        expectedStatus: 200,
        expectedContent: (b) => expect((b as { changes: unknown[] }).changes).toEqual([]),
      },
      {
        name: 'an invalid value → 400 blueprint.invalid, the same shape as at create; nothing written',
        method: 'PATCH',
        url: '/_operator/api/platforms/acme',
        headers: op,
        body: { blueprint: { identity: { branding: { colors: { primary: 'red' } } }, feature: {} } },
        expectedStatus: 400,
        expectedContent: (b) => {
          expect(errorCode(b)).toBe('blueprint.invalid');
          const paths = (b as { error: { details: { path: string }[] } }).error.details.map((d) => d.path);
          expect(paths).toEqual(['/feature', '/identity/branding/colors/primary']);
        },
      },
      {
        name: 'the same invalid value at create answers the same details',
        method: 'POST',
        url: '/_operator/api/platforms',
        headers: op,
        body: {
          slug: 'other',
          blueprint: { identity: { branding: { colors: { primary: 'red' } } }, feature: {} },
        },
        expectedStatus: 400,
        expectedContent: (b) => {
          const paths = (b as { error: { details: { path: string }[] } }).error.details.map((d) => d.path);
          expect(paths).toEqual(['/feature', '/identity/branding/colors/primary']);
        },
      },
      {
        name: 'identity.domain is not changed by an update → 400 blueprint.not_changeable',
        method: 'PATCH',
        url: '/_operator/api/platforms/acme',
        headers: op,
        body: { blueprint: { identity: { domain: 'ai.acme.example' } } },
        expectedStatus: 400,
        expectedContent: (b) => expect(errorCode(b)).toBe('blueprint.not_changeable'),
      },
      {
        name: 'no blueprint → 400 naming /blueprint',
        method: 'PATCH',
        url: '/_operator/api/platforms/acme',
        headers: op,
        body: {},
        expectedStatus: 400,
        expectedContent: ['/blueprint'],
      },
      {
        name: 'an unknown platform → 404 platform.not_found',
        method: 'PATCH',
        url: '/_operator/api/platforms/ghost',
        headers: op,
        body: { blueprint: {} },
        expectedStatus: 404,
        expectedContent: (b) => expect(errorCode(b)).toBe('platform.not_found'),
      },
      {
        name: 'the operator may set what only it may: HIPAA pack and cloud_fallback',
        method: 'PATCH',
        url: '/_operator/api/platforms/acme',
        headers: op,
        body: {
          blueprint: {
            governance: { compliance_packs: ['hipaa'] },
            ai_settings: { cloud_fallback: 'never' },
          },
        },
        expectedStatus: 200,
        expectedEvents: ['platform.updated'],
        expectedAudit: ['platform.updated', 'acme:platform.updated'],
      },
    ],
  );

  test("the audit entries carry the diff, and the platform chain's entry names the operator", () => {
    const control = s.app.control
      .query<{ details: string; actor: string }, []>(
        "SELECT details, actor FROM audit_log WHERE action = 'platform.updated' ORDER BY seq LIMIT 1",
      )
      .get()!;
    expect(JSON.parse(control.details).changes[2]).toEqual({
      path: '/identity/name',
      from: 'Acme',
      to: 'Acme Studio',
    });
    const id = s.tenancy.get('acme').id;
    const lease = s.app.platformDbs.acquire(id);
    try {
      const row = lease.db
        .query<{ actor: string; details: string }, []>(
          "SELECT actor, details FROM audit_log WHERE action = 'platform.updated' ORDER BY seq LIMIT 1",
        )
        .get()!;
      expect(row.actor).toBe(control.actor);
      expect(JSON.parse(row.details).by).toBe('operator');
    } finally {
      lease.release();
    }
  });

  test('the AI policy in force is the new one at once (cache keyed by the blueprint object)', async () => {
    const { platformAiPolicy } = await import('../ai/policy.ts');
    const policy = platformAiPolicy(s.tenancy.blueprintOf(s.tenancy.get('acme').id));
    expect(policy.cloudBlocked).toBe("cloud_fallback is 'never'");
  });
});

describe('PATCH /api/v1/platform (a platform admin changes its own settings)', () => {
  let s: InProcessServer;
  let admin: { id: string; key: string };
  let invoker: { id: string; key: string };
  let owner: PlatformClient;
  beforeAll(async () => {
    // A model route to a port where nothing listens: the blocked-term check refuses first.
    const made = await inProcessWithPlatform(
      'acme',
      { template: 'creator', name: 'Acme' },
      {
        config: {
          providers: [{ id: 'local', kind: 'ollama', url: 'http://127.0.0.1:9', timeout_ms: 500 }],
          models: [{ alias: 'any', route: ['local/x'] }],
        },
      },
    );
    s = made.s;
    admin = await makeKey(s, 'acme', ['admin']);
    invoker = await makeKey(s, 'acme', ['ai:invoke']);
    owner = new PlatformClient(s.request, 'acme.localhost');
    expect((await owner.signIn(made.owner.email, made.owner.password)).status).toBe(200);
  });
  afterAll(() => s.close());

  scenarios(
    () => s,
    [
      {
        name: 'no credentials → 401',
        method: 'PATCH',
        host: 'acme.localhost',
        url: '/api/v1/platform',
        body: { blueprint: {} },
        expectedStatus: 401,
      },
      {
        name: 'an ai:invoke key → 403 auth.forbidden (needs settings:write)',
        method: 'PATCH',
        host: 'acme.localhost',
        url: '/api/v1/platform',
        headers: () => key(invoker.key)(),
        body: { blueprint: { identity: { name: 'Nope' } } },
        expectedStatus: 403,
        expectedContent: (b) => expect(errorCode(b)).toBe('auth.forbidden'),
      },
      {
        name: 'GET shows the blueprint and the rules',
        host: 'acme.localhost',
        url: '/api/v1/platform',
        headers: () => key(admin.key)(),
        expectedStatus: 200,
        expectedContent: ['"/ai_settings/cloud_fallback"', '"operator"', '"hipaa"'],
      },
      {
        name: 'branding, features and AI settings → 200; audited on the platform chain only; published',
        method: 'PATCH',
        host: 'acme.localhost',
        url: '/api/v1/platform',
        headers: () => key(admin.key)(),
        body: {
          blueprint: {
            identity: { name: 'Acme Learning', branding: { fonts: { heading: 'Lora' } } },
            features: { viral_sharing: false },
            ai_settings: { safety_filters: { blocked_terms: ['forbidden-word'] } },
          },
        },
        expectedStatus: 200,
        expectedContent: (b) => {
          const r = b as {
            platform: { name: string };
            changes: { path: string; from?: unknown; to?: unknown }[];
          };
          expect(r.platform.name).toBe('Acme Learning');
          expect(r.changes).toEqual([
            { path: '/ai_settings/safety_filters/blocked_terms', from: [], to: ['forbidden-word'] },
            { path: '/features/viral_sharing', from: true, to: false },
            { path: '/identity/branding/fonts/heading', from: 'Poppins', to: 'Lora' },
            { path: '/identity/name', from: 'Acme', to: 'Acme Learning' },
          ]);
        },
        expectedEvents: ['platform.updated'],
        expectedAudit: ['acme:platform.updated'],
        after: async (s) => {
          const html = await home(s);
          expect(html).toContain('<h1>Acme Learning</h1>');
          expect(html).toContain('"Lora"');
          expect(html).not.toContain('Share agents with anyone');
        },
      },
      {
        name: 'an operator-only setting (cloud_fallback) → 403 blueprint.operator_only; nothing written',
        method: 'PATCH',
        host: 'acme.localhost',
        url: '/api/v1/platform',
        headers: () => key(admin.key)(),
        body: { blueprint: { identity: { name: 'Sneaky' }, ai_settings: { cloud_fallback: 'never' } } },
        expectedStatus: 403,
        expectedContent: (b) => {
          expect(errorCode(b)).toBe('blueprint.operator_only');
          expect((b as { error: { details: { path: string }[] } }).error.details.map((d) => d.path)).toEqual([
            '/ai_settings/cloud_fallback',
          ]);
        },
        after: async (s) => expect(await home(s)).toContain('<h1>Acme Learning</h1>'),
      },
      {
        name: 'white_label and compliance packs are the operator’s → 403',
        method: 'PATCH',
        host: 'acme.localhost',
        url: '/api/v1/platform',
        headers: () => key(admin.key)(),
        body: { blueprint: { features: { white_label: true }, governance: { compliance_packs: [] } } },
        expectedStatus: 403,
        expectedContent: ['/features/white_label', 'blueprint.operator_only'],
      },
      {
        name: 'an unknown field beside blueprint → 400',
        method: 'PATCH',
        host: 'acme.localhost',
        url: '/api/v1/platform',
        headers: () => key(admin.key)(),
        body: { blueprint: {}, slug: 'x' },
        expectedStatus: 400,
        expectedContent: ['/slug'],
      },
      {
        name: 'the operator puts the platform under HIPAA',
        method: 'PATCH',
        url: '/_operator/api/platforms/acme',
        headers: op,
        body: { blueprint: { governance: { compliance_packs: ['hipaa'] } } },
        expectedStatus: 200,
        expectedEvents: ['platform.updated'],
        expectedAudit: ['platform.updated', 'acme:platform.updated'],
      },
      {
        name: 'under HIPAA the platform may not change what the pack locks → 403, the pack named',
        method: 'PATCH',
        host: 'acme.localhost',
        url: '/api/v1/platform',
        headers: () => key(admin.key)(),
        body: { blueprint: { governance: { data_retention: { chat_history_days: 5000 } } } },
        expectedStatus: 403,
        expectedContent: ['blueprint.operator_only', 'hipaa'],
      },
    ],
  );

  test('an owner signed in with a session (cookie + CSRF) changes the name; the actor is the user', async () => {
    const r = await owner.json<{ changes: { path: string }[] }>('PATCH', '/api/v1/platform', {
      blueprint: { identity: { name: 'Acme by Owner' } },
    });
    expect(r.status).toBe(200);
    expect(r.body.changes.map((c) => c.path)).toEqual(['/identity/name']);
    expect(await home(s)).toContain('<h1>Acme by Owner</h1>');
    const lease = s.app.platformDbs.acquire(s.tenancy.get('acme').id);
    try {
      const row = lease.db
        .query<{ actor: string }, []>(
          "SELECT actor FROM audit_log WHERE action = 'platform.updated' ORDER BY seq DESC LIMIT 1",
        )
        .get()!;
      expect(row.actor).toMatch(/^user:usr_/);
    } finally {
      lease.release();
    }
  });

  test('the new blocked term is enforced on the very next AI call', async () => {
    const res = await s.request('acme.localhost', '/v1/chat/completions', {
      method: 'POST',
      headers: { authorization: `Bearer ${invoker.key}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'any', messages: [{ role: 'user', content: 'say forbidden-word now' }] }),
    });
    const body = (await res.json()) as { error: { code: string } };
    expect({ status: res.status, code: body.error.code }).toEqual({
      status: 400,
      code: 'ai.blocked_by_policy',
    });
  });
});

describe('DELETE /_operator/api/platforms/:slug (archived platforms, slug grace period)', () => {
  let s: InProcessServer;
  let file = '';
  beforeAll(async () => {
    ({ s } = await inProcessWithPlatform('gone', {}, { config: { deleted_slug_grace_days: 7 } }));
  });
  afterAll(() => s.close());

  scenarios(
    () => s,
    [
      {
        name: 'an active platform → 409 platform.not_archived',
        method: 'DELETE',
        url: '/_operator/api/platforms/gone?confirm=gone',
        headers: op,
        expectedStatus: 409,
        expectedContent: (b) => expect(errorCode(b)).toBe('platform.not_archived'),
      },
      {
        name: 'archive it',
        method: 'POST',
        url: '/_operator/api/platforms/gone/archive',
        headers: op,
        body: {},
        expectedStatus: 200,
        expectedEvents: ['platform.archived'],
        expectedAudit: ['platform.archived'],
        after: (s) => {
          file = join(s.dataDir, s.tenancy.get('gone').db_file);
          expect(existsSync(file)).toBe(true);
        },
      },
      {
        name: 'no confirm → 400 platform.confirm_mismatch',
        method: 'DELETE',
        url: '/_operator/api/platforms/gone',
        headers: op,
        expectedStatus: 400,
        expectedContent: (b) => expect(errorCode(b)).toBe('platform.confirm_mismatch'),
      },
      {
        name: 'a wrong confirm → 400 platform.confirm_mismatch, the file kept',
        method: 'DELETE',
        url: '/_operator/api/platforms/gone?confirm=gon',
        headers: op,
        expectedStatus: 400,
        expectedContent: ['/confirm'],
        after: () => expect(existsSync(file)).toBe(true),
      },
      {
        name: 'a bad grace period → 400 platform.grace_invalid',
        method: 'DELETE',
        url: '/_operator/api/platforms/gone?confirm=gone&slug_grace_days=soon',
        headers: op,
        expectedStatus: 400,
        expectedContent: (b) => expect(errorCode(b)).toBe('platform.grace_invalid'),
      },
      {
        name: 'an unknown operator token → 401',
        method: 'DELETE',
        url: '/_operator/api/platforms/gone?confirm=gone',
        headers: { authorization: 'Bearer sfo_nope' },
        expectedStatus: 401,
      },
      {
        name: 'delete → 200: file removed, audited on the control chain, platform.deleted published',
        method: 'DELETE',
        url: '/_operator/api/platforms/gone?confirm=gone',
        headers: op,
        expectedStatus: 200,
        expectedContent: (b) =>
          expect((b as { deleted: { slug: string; slug_free_at: string } }).deleted).toMatchObject({
            slug: 'gone',
            slug_free_at: new Date(s.clock.now() + 7 * 86_400_000).toISOString(),
          }),
        expectedEvents: ['platform.deleted'],
        expectedAudit: ['platform.deleted'],
        after: (s) => {
          expect(existsSync(file)).toBe(false);
          expect(s.tenancy.list().map((p) => p.slug)).toEqual([]);
        },
      },
      {
        name: 'the host is unknown now',
        host: 'gone.localhost',
        url: '/',
        headers: { accept: 'application/json' },
        expectedStatus: 404,
      },
      {
        name: 'deleting it again → 404 platform.not_found',
        method: 'DELETE',
        url: '/_operator/api/platforms/gone?confirm=gone',
        headers: op,
        expectedStatus: 404,
      },
      {
        name: 'within the grace period a create with the slug → 409 platform.slug_reserved',
        method: 'POST',
        url: '/_operator/api/platforms',
        headers: op,
        body: { slug: 'gone' },
        expectedStatus: 409,
        expectedContent: (b) => expect(errorCode(b)).toBe('platform.slug_reserved'),
      },
      {
        name: 'after the grace period the slug is free again → 201',
        method: 'POST',
        url: '/_operator/api/platforms',
        headers: op,
        body: { slug: 'gone' },
        before: (s) => s.clock.advance(7 * 86_400_000),
        expectedStatus: 201,
        expectedEvents: ['platform.created'],
        expectedAudit: ['platform.created', 'gone:platform.created'],
      },
    ],
  );
});

describe('/_operator/api/platforms/:slug/api-keys (list and revoke)', () => {
  let s: InProcessServer;
  let k: { id: string; key: string };
  beforeAll(async () => {
    ({ s } = await inProcessWithPlatform('acme'));
    k = await makeKey(s, 'acme', ['ai:invoke']);
  });
  afterAll(() => s.close());

  scenarios(
    () => s,
    [
      {
        name: 'the key works',
        host: 'acme.localhost',
        url: '/api/v1/me',
        headers: () => key(k.key)(),
        expectedStatus: 200,
      },
      {
        name: 'list → the key, no secret',
        url: '/_operator/api/platforms/acme/api-keys',
        headers: op,
        expectedStatus: 200,
        expectedContent: (b) => {
          const keys = (b as { api_keys: { id: string; revoked_at: string | null }[] }).api_keys;
          expect(keys.map((x) => [x.id, x.revoked_at])).toEqual([[k.id, null]]);
          expect(JSON.stringify(b)).not.toContain(k.key.split('_')[2]!);
        },
      },
      {
        name: 'an unknown key → 404 apikey.not_found',
        method: 'DELETE',
        url: '/_operator/api/platforms/acme/api-keys/key_nope',
        headers: op,
        expectedStatus: 404,
        expectedContent: (b) => expect(errorCode(b)).toBe('apikey.not_found'),
      },
    ],
  );

  test('revoke → 200, audited on the platform chain, nothing published', () =>
    runScenario(s, {
      name: 'revoke',
      method: 'DELETE',
      url: `/_operator/api/platforms/acme/api-keys/${k.id}`,
      headers: op,
      expectedStatus: 200,
      expectedContent: (b) =>
        expect((b as { api_key: { revoked_at: string } }).api_key.revoked_at).toBeString(),
      expectedAudit: ['acme:apikey.revoked'],
    }));

  test('the revoked key is refused on the very next request (no wait), and revoking again is the same', async () => {
    const res = await s.request('acme.localhost', '/api/v1/me', {
      headers: { authorization: `Bearer ${k.key}` },
    });
    expect(res.status).toBe(401);
    const again = await s.operatorApi('DELETE', `/platforms/acme/api-keys/${k.id}`);
    expect(again.status).toBe(200);
  });
});

describe('revocation drops the cached key: a key used just before is refused just after', () => {
  let s: InProcessServer;
  beforeAll(async () => {
    ({ s } = await inProcessWithPlatform('acme'));
  });
  afterAll(() => s.close());

  test('use → revoke → next request 401, with the clock standing still', async () => {
    const k = await makeKey(s, 'acme', ['ai:invoke']);
    const me = () =>
      s.request('acme.localhost', '/api/v1/me', { headers: { authorization: `Bearer ${k.key}` } });
    expect((await me()).status).toBe(200);
    expect((await me()).status).toBe(200); // served from the key cache now
    expect((await s.operatorApi('DELETE', `/platforms/acme/api-keys/${k.id}`)).status).toBe(200);
    const res = await me();
    expect(res.status).toBe(401);
  });
});
