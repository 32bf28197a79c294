import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { operatorApi } from '../../../tests/helpers.ts';
import { PlatformClient, serverWithPlatform } from '../../../tests/platform-client.ts';

let env: Awaited<ReturnType<typeof serverWithPlatform>>;
const makeKey = async (body: Record<string, unknown>) => {
  const res = await operatorApi(env.s.base, env.operatorToken, 'POST', `/platforms/keys/api-keys`, body);
  return {
    status: res.status,
    body: (await res.json()) as {
      id: string;
      key: string;
      error?: { code: string; details?: { path: string }[] };
    },
  };
};
const withKey = (key: string) => {
  const c = new PlatformClient(env.s.base, env.host);
  c.bearer = key;
  return c;
};

beforeAll(async () => {
  env = await serverWithPlatform('keys');
});
afterAll(async () => {
  await env.s.cleanup();
});

describe('API keys', () => {
  test('sf_<prefix>_<secret>; only a hash is stored; scopes cap what the key may do', async () => {
    const r = await makeKey({ name: 'bot', scopes: ['ai:invoke'] });
    expect(r.status).toBe(201);
    expect(r.body.key).toMatch(/^sf_[a-z0-9]{10}_[A-Za-z0-9_-]{43}$/);
    const secret = r.body.key.split('_').slice(2).join('_');
    const stored = await env.s.app.platformDbs.use(env.platformId, (db) =>
      db.query('SELECT * FROM api_keys').all(),
    );
    expect(JSON.stringify(stored)).not.toContain(secret);
    const c = withKey(r.body.key);
    const me = await c.json<{ principal: string; permissions: string[] }>('GET', '/api/v1/me');
    expect(me.status).toBe(200);
    expect(me.body.principal).toBe('api_key');
    expect(me.body.permissions).toEqual(['ai:invoke']);
    expect((await c.json('GET', '/api/v1/users')).status).toBe(403);
  });

  test('an admin-scoped key may manage users; no CSRF is needed with a bearer', async () => {
    const r = await makeKey({ name: 'admin-bot', scopes: ['admin'] });
    const c = withKey(r.body.key);
    expect((await c.json('GET', '/api/v1/users')).status).toBe(200);
    expect((await c.json('POST', '/api/v1/users', { email: 'made-by-key@keys.test' })).status).toBe(201);
  });

  test('bad requests name their fields', async () => {
    const r = await makeKey({ name: '', scopes: ['ai:invoke', 'root'], expires_at: '2001-01-01T00:00:00Z' });
    expect(r.status).toBe(400);
    expect(r.body.error?.details?.map((d) => d.path).sort()).toEqual(['/expires_at', '/name', '/scopes/1']);
  });

  test('revoked and expired keys are refused at once', async () => {
    const a = await makeKey({ name: 'to-revoke', scopes: ['ai:invoke'] });
    const b = await makeKey({
      name: 'to-expire',
      scopes: ['ai:invoke'],
      expires_at: new Date(Date.now() + 3_600_000).toISOString(),
    });
    const owner = new PlatformClient(env.s.base, env.host);
    await owner.signIn(env.owner.email, env.owner.password);
    // Used first, so the server knows the key (it keeps verified keys in memory).
    expect((await withKey(a.body.key).json('GET', '/api/v1/me')).status).toBe(200);
    expect((await owner.json('DELETE', `/api/v1/api-keys/${a.body.id}`)).status).toBe(200);
    const revoked = await withKey(a.body.key).json<{ error: { code: string; message: string } }>(
      'GET',
      '/api/v1/me',
    );
    expect(revoked.status).toBe(401);
    expect(revoked.body.error.message).toContain('revoked');
    await env.s.app.platformDbs.use(env.platformId, (db) =>
      db.query('UPDATE api_keys SET expires_at = 1 WHERE id = ?').run(b.body.id),
    );
    const expired = await withKey(b.body.key).json<{ error: { message: string } }>('GET', '/api/v1/me');
    expect(expired.status).toBe(401);
    expect(expired.body.error.message).toContain('expired');
    const audit = await owner.json<{ entries: { action: string }[] }>('GET', '/api/v1/audit?limit=500');
    expect(audit.body.entries.map((e) => e.action)).toContain('apikey.revoked');
  });

  test('a per-key rate limit answers 429 with Retry-After', async () => {
    const r = await makeKey({ name: 'slow', scopes: ['ai:invoke'], rate_per_min: 3 });
    const c = withKey(r.body.key);
    const statuses: number[] = [];
    let retry: string | null = null;
    for (let i = 0; i < 4; i++) {
      const res = await c.fetch('/api/v1/me');
      statuses.push(res.status);
      if (res.status === 429) retry = res.headers.get('retry-after');
    }
    expect(statuses).toEqual([200, 200, 200, 429]);
    expect(Number(retry)).toBeGreaterThanOrEqual(1);
    expect(Number(retry)).toBeLessThanOrEqual(20);
  });

  test("a user's key acts with the user's role; deactivating the user ends it", async () => {
    const owner = new PlatformClient(env.s.base, env.host);
    await owner.signIn(env.owner.email, env.owner.password);
    const made = await owner.json<{ user: { id: string } }>('POST', '/api/v1/users', {
      email: 'mia@keys.test',
      password: 'mia-password-123',
      role: 'member',
    });
    const mia = new PlatformClient(env.s.base, env.host);
    await mia.signIn('mia@keys.test', 'mia-password-123');
    const tooWide = await mia.json<{ error: { code: string } }>('POST', '/api/v1/api-keys', {
      name: 'x',
      scopes: ['admin'],
    });
    expect(tooWide.status).toBe(403);
    expect(tooWide.body.error.code).toBe('apikey.scope_not_allowed');
    const k = await mia.json<{ key: string }>('POST', '/api/v1/api-keys', {
      name: 'mine',
      scopes: ['ai:invoke', 'agents:read'],
    });
    expect(k.status).toBe(201);
    expect((await withKey(k.body.key).json('GET', '/api/v1/me')).status).toBe(200);
    const off = await owner.json('PATCH', `/api/v1/users/${made.body.user.id}`, { status: 'disabled' });
    expect(off.status).toBe(200);
    expect((await withKey(k.body.key).json('GET', '/api/v1/me')).status).toBe(401);
    expect((await mia.json('GET', '/api/v1/me')).status).toBe(401);
  });

  test("a user's key follows a role change at once, both ways", async () => {
    const owner = new PlatformClient(env.s.base, env.host);
    await owner.signIn(env.owner.email, env.owner.password);
    const made = await owner.json<{ user: { id: string } }>('POST', '/api/v1/users', {
      email: 'rae@keys.test',
      password: 'rae-password-123',
      role: 'admin',
    });
    const rae = new PlatformClient(env.s.base, env.host);
    await rae.signIn('rae@keys.test', 'rae-password-123');
    const k = await rae.json<{ key: string }>('POST', '/api/v1/api-keys', { name: 'ops', scopes: ['admin'] });
    expect(k.status).toBe(201);
    const key = withKey(k.body.key);
    expect((await key.json('GET', '/api/v1/users')).status).toBe(200);
    const setRole = (role: string) =>
      owner.json('PATCH', `/api/v1/users/${made.body.user.id}`, { role }).then((r) => r.status);
    expect(await setRole('member')).toBe(200);
    const demoted = await key.json<{ error: { code: string } }>('GET', '/api/v1/users');
    expect(demoted.status).toBe(403);
    expect(demoted.body.error.code).toBe('auth.forbidden');
    expect(await setRole('admin')).toBe(200);
    expect((await key.json('GET', '/api/v1/users')).status).toBe(200);
  });
});

describe('roles', () => {
  test('only an owner makes owners; the last owner cannot be demoted; changes are audited', async () => {
    const owner = new PlatformClient(env.s.base, env.host);
    await owner.signIn(env.owner.email, env.owner.password);
    const me = await owner.json<{ user: { id: string } }>('GET', '/api/v1/me');
    const last = await owner.json<{ error: { code: string } }>('PATCH', `/api/v1/users/${me.body.user.id}`, {
      role: 'admin',
    });
    expect(last.status).toBe(409);
    expect(last.body.error.code).toBe('user.last_owner');
    await owner.json('POST', '/api/v1/users', {
      email: 'ada@keys.test',
      password: 'ada-password-123',
      role: 'admin',
    });
    const ada = new PlatformClient(env.s.base, env.host);
    await ada.signIn('ada@keys.test', 'ada-password-123');
    const bob = await ada.json<{ user: { id: string } }>('POST', '/api/v1/users', {
      email: 'bob@keys.test',
      role: 'member',
    });
    expect(bob.status).toBe(201);
    expect((await ada.json('PATCH', `/api/v1/users/${bob.body.user.id}`, { role: 'owner' })).status).toBe(
      403,
    );
    expect((await ada.json('PATCH', `/api/v1/users/${bob.body.user.id}`, { role: 'creator' })).status).toBe(
      200,
    );
    const audit = await owner.json<{
      entries: { action: string; target: string; details: { to?: string } }[];
    }>('GET', '/api/v1/audit?limit=500');
    expect(
      audit.body.entries
        .filter((e) => e.action === 'user.role_changed' && e.target === `user:${bob.body.user.id}`)
        .map((e) => e.details.to),
    ).toEqual(['creator']);
  });

  test('an auditor reads the audit trail and nothing else', async () => {
    const owner = new PlatformClient(env.s.base, env.host);
    await owner.signIn(env.owner.email, env.owner.password);
    await owner.json('POST', '/api/v1/users', {
      email: 'aud@keys.test',
      password: 'aud-password-123',
      role: 'auditor',
    });
    const aud = new PlatformClient(env.s.base, env.host);
    await aud.signIn('aud@keys.test', 'aud-password-123');
    expect((await aud.json('GET', '/api/v1/audit')).status).toBe(200);
    expect((await aud.json('GET', '/api/v1/users')).status).toBe(403);
    expect((await aud.json('POST', '/api/v1/api-keys', { name: 'x' })).status).toBe(403);
  });
});
