import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import net from 'node:net';
import { join } from 'node:path';
import { operatorApi, spawnServe, tempDir } from '../../../tests/helpers.ts';
import { PlatformClient, serverWithPlatform } from '../../../tests/platform-client.ts';
import { readOutbox } from '../mail/outbox.ts';

// Issue 8, points 5 and 12 (and the unlock route of point 3), against a running server on
// 127.0.0.1: login CSRF, reset links, reset flooding, key scopes and owner-only actions, keys
// on account routes. Every request here comes from 127.0.0.1, so each describe that makes
// failures uses its own platform (the per-address limits are per platform).

let env: Awaited<ReturnType<typeof serverWithPlatform>>;
const client = (host = env.host) => new PlatformClient(env.s.base, host);

/** A second platform on the same server, with its owner's credentials. */
async function platform(slug: string) {
  const res = await operatorApi(env.s.base, env.operatorToken, 'POST', '/platforms', { slug });
  const body = (await res.json()) as { admin: { email: string; password: string }; platform: { id: string } };
  return { host: `${slug}.localhost`, owner: body.admin, id: body.platform.id };
}

/** A signed-in owner of `host`. */
async function ownerOf(p: { host: string; owner: { email: string; password: string } }) {
  const c = client(p.host);
  expect((await c.signIn(p.owner.email, p.owner.password)).status).toBe(200);
  return c;
}

/** Adds a user with a password; returns its id. */
async function addUser(
  owner: PlatformClient,
  email: string,
  role = 'member',
  password = 'a-user-password-1',
) {
  const r = await owner.json<{ user: { id: string } }>('POST', '/api/v1/users', { email, password, role });
  expect(r.status).toBe(201);
  return r.body.user.id;
}

const outbox = (platformId: string, to: string) =>
  env.s.app.platformDbs.use(platformId, (db) =>
    // Bodies are sealed at rest; readOutbox opens them as the mailer would.
    readOutbox(db, { to, template: 'reset_password', includeSent: true }).map(
      (r) => /token=([A-Za-z0-9_-]+)/.exec(r.body)?.[1] ?? `unreadable: ${JSON.stringify(r)}`,
    ),
  );

beforeAll(async () => {
  env = await serverWithPlatform('attacks');
});
afterAll(async () => {
  await env.s.cleanup();
});

describe('login CSRF: cross-site and form-encoded auth writes are refused, and sign nobody in', () => {
  const form = (o: Record<string, string>) => new URLSearchParams(o).toString();
  let p: Awaited<ReturnType<typeof platform>>;
  beforeAll(async () => {
    p = await platform('csrf');
  });
  const cases: {
    name: string;
    path: string;
    headers: (self: string) => Record<string, string>;
    body: (email: string, password: string) => string | FormData;
    status: number;
    code: string;
  }[] = [
    {
      name: 'a form post (application/x-www-form-urlencoded) to login',
      path: '/api/v1/auth/login',
      headers: () => ({ 'content-type': 'application/x-www-form-urlencoded' }),
      body: (email, password) => form({ email, password }),
      status: 415,
      code: 'request.unsupported_media_type',
    },
    {
      name: 'a multipart form post to login',
      path: '/api/v1/auth/login',
      headers: () => ({}),
      body: (email, password) => {
        const f = new FormData();
        f.set('email', email);
        f.set('password', password);
        return f;
      },
      status: 415,
      code: 'request.unsupported_media_type',
    },
    {
      name: 'JSON sent as text/plain (a no-preflight cross-site fetch) to login',
      path: '/api/v1/auth/login',
      headers: () => ({ 'content-type': 'text/plain' }),
      body: (email, password) => JSON.stringify({ email, password }),
      status: 415,
      code: 'request.unsupported_media_type',
    },
    {
      name: 'no content type at all',
      path: '/api/v1/auth/login',
      headers: () => ({}),
      body: (email, password) => JSON.stringify({ email, password }),
      status: 415,
      code: 'request.unsupported_media_type',
    },
    {
      name: 'JSON from another site (Origin: https://evil.example)',
      path: '/api/v1/auth/login',
      headers: () => ({ 'content-type': 'application/json', origin: 'https://evil.example' }),
      body: (email, password) => JSON.stringify({ email, password }),
      status: 403,
      code: 'auth.cross_origin',
    },
    {
      name: "JSON from a sibling platform's pages (same site, other origin)",
      path: '/api/v1/auth/login',
      headers: (self) => ({
        'content-type': 'application/json',
        origin: `http://attacks.localhost:${new URL(self).port}`,
      }),
      body: (email, password) => JSON.stringify({ email, password }),
      status: 403,
      code: 'auth.cross_origin',
    },
    {
      name: 'JSON from this host under another scheme (https: the stored origin is http)',
      path: '/api/v1/auth/login',
      headers: (self) => ({
        'content-type': 'application/json',
        origin: `https://${p.host}:${new URL(self).port}`,
      }),
      body: (email, password) => JSON.stringify({ email, password }),
      status: 403,
      code: 'auth.cross_origin',
    },
    {
      // The request's Host header (no port here) is not the platform's origin: the stored one is.
      name: 'JSON whose Origin only echoes the Host header, not the stored origin (port left out)',
      path: '/api/v1/auth/login',
      headers: () => ({ 'content-type': 'application/json', origin: `http://${p.host}` }),
      body: (email, password) => JSON.stringify({ email, password }),
      status: 403,
      code: 'auth.cross_origin',
    },
    {
      name: 'JSON with Origin: null (a sandboxed frame)',
      path: '/api/v1/auth/login',
      headers: () => ({ 'content-type': 'application/json', origin: 'null' }),
      body: (email, password) => JSON.stringify({ email, password }),
      status: 403,
      code: 'auth.cross_origin',
    },
    {
      name: 'JSON with Sec-Fetch-Site: cross-site (no Origin)',
      path: '/api/v1/auth/login',
      headers: () => ({ 'content-type': 'application/json', 'sec-fetch-site': 'cross-site' }),
      body: (email, password) => JSON.stringify({ email, password }),
      status: 403,
      code: 'auth.cross_origin',
    },
    {
      name: 'JSON with Sec-Fetch-Site: same-site (a sibling subdomain)',
      path: '/api/v1/auth/login',
      headers: () => ({ 'content-type': 'application/json', 'sec-fetch-site': 'same-site' }),
      body: (email, password) => JSON.stringify({ email, password }),
      status: 403,
      code: 'auth.cross_origin',
    },
    {
      name: 'a form post to password-reset',
      path: '/api/v1/auth/password-reset',
      headers: () => ({ 'content-type': 'application/x-www-form-urlencoded' }),
      body: (email) => form({ email }),
      status: 415,
      code: 'request.unsupported_media_type',
    },
    {
      name: 'a cross-site JSON post to password-reset/confirm',
      path: '/api/v1/auth/password-reset/confirm',
      headers: () => ({ 'content-type': 'application/json', origin: 'https://evil.example' }),
      body: () => JSON.stringify({ token: 'x'.repeat(43), password: 'a-new-password-123' }),
      status: 403,
      code: 'auth.cross_origin',
    },
    {
      name: 'a form post to verify-email',
      path: '/api/v1/auth/verify-email',
      headers: () => ({ 'content-type': 'application/x-www-form-urlencoded' }),
      body: () => form({ token: 'x'.repeat(43) }),
      status: 415,
      code: 'request.unsupported_media_type',
    },
  ];
  for (const c of cases) {
    test(c.name, async () => {
      const browser = client(p.host);
      const res = await browser.fetch(c.path, {
        method: 'POST',
        headers: c.headers(env.s.base),
        body: c.body(p.owner.email, p.owner.password),
      });
      expect(res.status).toBe(c.status);
      expect(((await res.json()) as { error: { code: string } }).error.code).toBe(c.code);
      expect(res.headers.get('set-cookie')).toBeNull();
      expect(browser.jar.size).toBe(0);
    });
  }

  test("the platform's own pages still sign in (Origin and Sec-Fetch-Site of this host)", async () => {
    const browser = client(p.host);
    const port = new URL(env.s.base).port;
    const res = await browser.fetch('/api/v1/auth/login', {
      method: 'POST',
      headers: {
        'content-type': 'application/json; charset=utf-8',
        origin: `http://${p.host}:${port}`,
        'sec-fetch-site': 'same-origin',
      },
      body: JSON.stringify(p.owner),
    });
    expect(res.status).toBe(200);
    expect(browser.jar.has('sf_session')).toBe(true);
  });
});

describe('password reset: links, sessions and keys after a completed reset', () => {
  let p: Awaited<ReturnType<typeof platform>>;
  let owner: PlatformClient;
  beforeAll(async () => {
    p = await platform('reset');
    owner = await ownerOf(p);
  });

  test('completing a reset spends every outstanding link, ends sessions, revokes keys; audited', async () => {
    await addUser(owner, 'rhea@reset.test', 'member', 'rhea-password-123');
    const rhea = client(p.host);
    expect((await rhea.signIn('rhea@reset.test', 'rhea-password-123')).status).toBe(200);
    const made = await rhea.json<{ key: string }>('POST', '/api/v1/api-keys', {
      name: 'k',
      scopes: ['ai:invoke'],
    });
    expect(made.status).toBe(201);
    const key = client(p.host);
    key.bearer = made.body.key;
    expect((await key.json('GET', '/api/v1/me')).status).toBe(200);
    for (let i = 0; i < 2; i++)
      expect(
        (await client(p.host).json('POST', '/api/v1/auth/password-reset', { email: 'rhea@reset.test' }))
          .status,
      ).toBe(202);
    const [older, newer] = await outbox(p.id, 'rhea@reset.test');
    expect(older).not.toBe(newer);
    expect(
      (
        await client(p.host).json('POST', '/api/v1/auth/password-reset/confirm', {
          token: newer,
          password: 'rhea-new-password-456',
        })
      ).status,
    ).toBe(200);
    const attacks: { name: string; run: () => Promise<number>; expected: number }[] = [
      {
        name: 'the older link, after the newer completed',
        run: async () =>
          (
            await client(p.host).json('POST', '/api/v1/auth/password-reset/confirm', {
              token: older,
              password: 'mallory-password-789',
            })
          ).status,
        expected: 400,
      },
      {
        name: 'the used link again',
        run: async () =>
          (
            await client(p.host).json('POST', '/api/v1/auth/password-reset/confirm', {
              token: newer,
              password: 'mallory-password-789',
            })
          ).status,
        expected: 400,
      },
      {
        name: "the user's old session",
        run: async () => (await rhea.json('GET', '/api/v1/me')).status,
        expected: 401,
      },
      {
        name: "the user's API key made before the reset",
        run: async () => (await key.json('GET', '/api/v1/me')).status,
        expected: 401,
      },
      {
        name: 'the old password',
        run: async () => (await client(p.host).signIn('rhea@reset.test', 'rhea-password-123')).status,
        expected: 401,
      },
    ];
    for (const a of attacks)
      expect({ name: a.name, status: await a.run() }).toEqual({ name: a.name, status: a.expected });
    expect((await client(p.host).signIn('rhea@reset.test', 'rhea-new-password-456')).status).toBe(200);
    const audit = await owner.json<{ entries: { action: string; details: Record<string, unknown> }[] }>(
      'GET',
      '/api/v1/audit?limit=500',
    );
    const entry = audit.body.entries.find((e) => e.action === 'user.password_reset');
    expect(entry?.details).toEqual({
      sessions_ended: 1,
      keys_revoked: 1,
      other_reset_links_spent: 1,
      locks_lifted: 0,
      sso_links_removed: [],
    });
  });

  test('a bad link costs no hashing and counts against the address', async () => {
    const q = await platform('badlinks');
    const statuses: number[] = [];
    for (let i = 0; i < 31; i++) {
      const r = await client(q.host).json('POST', '/api/v1/auth/password-reset/confirm', {
        token: `not-a-real-token-${i}-${'x'.repeat(30)}`,
        password: 'a-new-password-123',
      });
      statuses.push(r.status);
    }
    expect(statuses.slice(0, 30).every((s) => s === 400)).toBe(true);
    expect(statuses[30]).toBe(429);
    // The address is held on every unauthenticated route of that platform, sign-in included.
    expect((await client(q.host).signIn(q.owner.email, q.owner.password)).status).toBe(429);
    // Not on another platform's.
    expect((await client(p.host).signIn(p.owner.email, p.owner.password)).status).toBe(200);
  });
});

// Issue 8 follow-up (point 3): the address lock must not let one client behind a shared
// address (a corporate NAT) block everyone's reset and verification links: a link carries its
// own unguessable token. The lock still holds bad tokens, reset requests and sign-ins.
describe('a locked address still lets live reset and verification links through', () => {
  let q: Awaited<ReturnType<typeof platform>>;
  let owner: PlatformClient;
  const mailed = (to: string, template: string) =>
    env.s.app.platformDbs.use(q.id, (db) =>
      readOutbox(db, { to, template, includeSent: true }).map(
        (r) => /token=([A-Za-z0-9_-]+)/.exec(r.body)![1]!,
      ),
    );
  beforeAll(async () => {
    q = await platform('natlock');
    owner = await ownerOf(q);
    await addUser(owner, 'colleague@natlock.test', 'member', 'colleague-password-1');
    await addUser(owner, 'other@natlock.test', 'member', 'other-password-123');
    // Before the lock: the colleague asks for a reset link and a verification link.
    expect(
      (await client(q.host).json('POST', '/api/v1/auth/password-reset', { email: 'colleague@natlock.test' }))
        .status,
    ).toBe(202);
    const other = client(q.host);
    expect((await other.signIn('other@natlock.test', 'other-password-123')).status).toBe(200);
    expect((await other.json('POST', '/api/v1/me/verify-email')).status).toBe(202);
    // One bad actor on the shared address burns the address's 30 failures with made-up links.
    for (let i = 0; i < 30; i++)
      await client(q.host).json('POST', '/api/v1/auth/password-reset/confirm', {
        token: `made-up-token-${i}-${'y'.repeat(30)}`,
        password: 'a-new-password-123',
      });
  });
  const cases: { name: string; send: () => Promise<Response>; status: number; code?: string }[] = [
    {
      name: 'a made-up (well-formed) reset token is still refused by the lock',
      send: () =>
        client(q.host).fetch('/api/v1/auth/password-reset/confirm', {
          method: 'POST',
          json: { token: 'Zm9vYmFyYmF6cXV4cXV1eGZvb2JhcmJhenF1eHF1dXg', password: 'a-new-password-123' },
        }),
      status: 429,
      code: 'auth.throttled',
    },
    {
      name: 'a made-up verification token is still refused by the lock',
      send: () =>
        client(q.host).fetch('/api/v1/auth/verify-email', {
          method: 'POST',
          json: { token: 'Zm9vYmFyYmF6cXV4cXV1eGZvb2JhcmJhenF1eHF1dXg' },
        }),
      status: 429,
      code: 'auth.throttled',
    },
    {
      name: 'a sign-in from the address is still refused',
      send: () =>
        client(q.host).fetch('/api/v1/auth/login', {
          method: 'POST',
          json: { email: 'colleague@natlock.test', password: 'colleague-password-1' },
        }),
      status: 429,
      code: 'auth.throttled',
    },
    {
      name: 'a reset request from the address is still refused',
      send: () =>
        client(q.host).fetch('/api/v1/auth/password-reset', {
          method: 'POST',
          json: { email: 'colleague@natlock.test' },
        }),
      status: 429,
      code: 'auth.throttled',
    },
    {
      name: "the colleague's live reset link goes through",
      send: async () =>
        client(q.host).fetch('/api/v1/auth/password-reset/confirm', {
          method: 'POST',
          json: {
            token: (await mailed('colleague@natlock.test', 'reset_password')).at(-1),
            password: 'colleague-new-pw-2',
          },
        }),
      status: 200,
    },
    {
      name: "another user's live verification link goes through",
      send: async () =>
        client(q.host).fetch('/api/v1/auth/verify-email', {
          method: 'POST',
          json: { token: (await mailed('other@natlock.test', 'verify_email')).at(-1) },
        }),
      status: 200,
    },
  ];
  for (const c of cases) {
    test(c.name, async () => {
      const res = await c.send();
      const body = (await res.json()) as { error?: { code: string } };
      expect([res.status, body.error?.code]).toEqual([c.status, c.code]);
    });
  }
  test('a used link replayed from the locked address is refused again', async () => {
    const token = (await mailed('colleague@natlock.test', 'reset_password')).at(-1);
    const res = await client(q.host).json('POST', '/api/v1/auth/password-reset/confirm', {
      token,
      password: 'mallory-password-789',
    });
    expect(res.status).toBe(429);
  });
});

describe('reset requests are throttled without saying whether the account exists', () => {
  test('per account (known or not): the fourth request in 15 minutes queues no message, same 202', async () => {
    const q = await platform('resetflood');
    const owner = await ownerOf(q);
    await addUser(owner, 'known@resetflood.test');
    const ask = (email: string) => client(q.host).json('POST', '/api/v1/auth/password-reset', { email });
    const known = [];
    const unknown = [];
    for (let i = 0; i < 5; i++) known.push(await ask('known@resetflood.test'));
    for (let i = 0; i < 5; i++) unknown.push(await ask('ghost@resetflood.test'));
    expect(known.map((r) => [r.status, r.body])).toEqual(unknown.map((r) => [r.status, r.body]));
    expect(known.every((r) => r.status === 202)).toBe(true);
    expect((await outbox(q.id, 'known@resetflood.test')).length).toBe(3);
  });

  test('per address: past 10 requests in 15 minutes, 429 whatever the email', async () => {
    const q = await platform('resetspray');
    const statuses: number[] = [];
    for (let i = 0; i < 11; i++)
      statuses.push(
        (await client(q.host).json('POST', '/api/v1/auth/password-reset', { email: `x${i}@resetspray.test` }))
          .status,
      );
    expect(statuses).toEqual([...Array(10).fill(202), 429]);
  });
});

describe('unlock over HTTP', () => {
  test('POST /api/v1/users/:id/unlock needs users:write; it lifts the lock; audited', async () => {
    const q = await platform('unlock');
    const owner = await ownerOf(q);
    const id = await addUser(owner, 'lou@unlock.test', 'member', 'lou-password-1234');
    for (let i = 0; i < 5; i++) await client(q.host).signIn('lou@unlock.test', `wrong-password-${i}`);
    expect((await client(q.host).signIn('lou@unlock.test', 'lou-password-1234')).status).toBe(429);
    const lou2 = await addUser(owner, 'member@unlock.test', 'member', 'member-password-1');
    const member = client(q.host);
    expect((await member.signIn('member@unlock.test', 'member-password-1')).status).toBe(200);
    expect((await member.json('POST', `/api/v1/users/${id}/unlock`)).status).toBe(403);
    const r = await owner.json<{ locks_lifted: number; user: { id: string } }>(
      'POST',
      `/api/v1/users/${id}/unlock`,
    );
    expect([r.status, r.body.locks_lifted, r.body.user.id]).toEqual([200, 1, id]);
    expect((await client(q.host).signIn('lou@unlock.test', 'lou-password-1234')).status).toBe(200);
    expect((await owner.json('POST', '/api/v1/users/usr_nobody/unlock')).status).toBe(404);
    const audit = await owner.json<{ entries: { action: string; target: string }[] }>(
      'GET',
      '/api/v1/audit?limit=500',
    );
    expect(audit.body.entries.filter((e) => e.target === `user:${id}`).map((e) => e.action)).toContain(
      'user.unlocked',
    );
    expect(audit.body.entries.filter((e) => e.target === `user:${id}`).map((e) => e.action)).toContain(
      'user.locked_out',
    );
    expect(lou2).toStartWith('usr_');
  });
});

describe("key scopes × owner-only actions: an owner's key acts as owner only with the owner scope", () => {
  let p: Awaited<ReturnType<typeof platform>>;
  let owner: PlatformClient;
  const keyOf = async (who: PlatformClient, scopes: string[]) => {
    const r = await who.json<{ key: string; error?: { code: string } }>('POST', '/api/v1/api-keys', {
      name: scopes.join('+'),
      scopes,
    });
    return r;
  };
  const bearer = (key: string) => {
    const c = client(p.host);
    c.bearer = key;
    return c;
  };
  beforeAll(async () => {
    p = await platform('scopes');
    owner = await ownerOf(p);
    // A second owner, so demoting or disabling one is not refused as the last owner.
    await addUser(owner, 'second-owner@scopes.test', 'owner');
  });

  let seq = 0;
  const actions: {
    name: string;
    run: (c: PlatformClient) => Promise<number>;
  }[] = [
    {
      name: 'make a new owner',
      run: async (c) =>
        (await c.json('POST', '/api/v1/users', { email: `new-owner-${++seq}@scopes.test`, role: 'owner' }))
          .status,
    },
    {
      name: 'promote an admin to owner',
      run: async (c) => {
        const id = await addUser(owner, `admin-${++seq}@scopes.test`, 'admin');
        return (await c.json('PATCH', `/api/v1/users/${id}`, { role: 'owner' })).status;
      },
    },
    {
      name: 'demote an owner',
      run: async (c) => {
        const id = await addUser(owner, `owner-${++seq}@scopes.test`, 'owner');
        return (await c.json('PATCH', `/api/v1/users/${id}`, { role: 'member' })).status;
      },
    },
    {
      name: 'disable an owner',
      run: async (c) => {
        const id = await addUser(owner, `owner-${++seq}@scopes.test`, 'owner');
        return (await c.json('PATCH', `/api/v1/users/${id}`, { status: 'disabled' })).status;
      },
    },
    {
      name: 'change an owner-only setting (whether SCIM manages owners)',
      run: async (c) => {
        const now = await owner.json<{ scim_manages_owners: boolean }>('GET', '/api/v1/settings/identity');
        const flip = !now.body.scim_manages_owners;
        return (await c.json('PATCH', '/api/v1/settings/identity', { scim_manages_owners: flip })).status;
      },
    },
  ];
  const cases: { scopes: string[]; expected: number }[] = [
    { scopes: ['admin'], expected: 403 },
    { scopes: ['admin', 'ai:invoke', 'users:read', 'billing:read'], expected: 403 },
    { scopes: ['owner'], expected: 0 },
  ];
  for (const c of cases) {
    for (const a of actions) {
      test(`${c.scopes.join(',')} key of an owner: ${a.name} → ${c.expected || 'allowed'}`, async () => {
        const k = await keyOf(owner, c.scopes);
        expect(k.status).toBe(201);
        const status = await a.run(bearer(k.body.key));
        if (c.expected) expect(status).toBe(c.expected);
        else expect([200, 201]).toContain(status);
      });
    }
  }

  test('/me of an admin-scoped owner key says admin; of an owner-scoped one, owner', async () => {
    const a = await keyOf(owner, ['admin']);
    const o = await keyOf(owner, ['owner']);
    expect((await bearer(a.body.key).json<{ role: string }>('GET', '/api/v1/me')).body.role).toBe('admin');
    expect((await bearer(o.body.key).json<{ role: string }>('GET', '/api/v1/me')).body.role).toBe('owner');
  });

  test('only an owner can grant the owner scope (not an admin, not the operator)', async () => {
    await addUser(owner, 'an-admin@scopes.test', 'admin', 'admin-password-12');
    const admin = client(p.host);
    expect((await admin.signIn('an-admin@scopes.test', 'admin-password-12')).status).toBe(200);
    const r = await keyOf(admin, ['owner']);
    expect([r.status, r.body.error?.code]).toEqual([403, 'apikey.scope_not_allowed']);
    const op = await operatorApi(env.s.base, env.operatorToken, 'POST', '/platforms/scopes/api-keys', {
      name: 'op',
      scopes: ['owner'],
    });
    expect(op.status).toBe(403);
  });
});

describe('keys on session and account routes: only a session, or a key whose scopes say so', () => {
  let p: Awaited<ReturnType<typeof platform>>;
  let owner: PlatformClient;
  beforeAll(async () => {
    p = await platform('accountkeys');
    owner = await ownerOf(p);
  });
  const routes: { method: string; path: string }[] = [
    { method: 'POST', path: '/api/v1/auth/logout-all' },
    { method: 'POST', path: '/api/v1/auth/logout' },
    { method: 'POST', path: '/api/v1/me/verify-email' },
    { method: 'DELETE', path: '/api/v1/me/sso-identities/oidc/bm9uZQ' },
  ];
  const scopes: { scopes: string[]; expected: number }[] = [
    { scopes: ['ai:invoke'], expected: 403 },
    { scopes: ['agents:write'], expected: 403 },
    { scopes: ['admin'], expected: 403 },
    { scopes: ['owner'], expected: 403 },
  ];
  for (const s of scopes) {
    for (const r of routes) {
      test(`a ${s.scopes.join(',')} key: ${r.method} ${r.path} → ${s.expected}; the owner's session lives`, async () => {
        const k = await owner.json<{ key: string }>('POST', '/api/v1/api-keys', {
          name: 'k',
          scopes: s.scopes,
        });
        const c = client(p.host);
        c.bearer = k.body.key;
        const res = await c.json<{ error: { code: string } }>(r.method, r.path);
        expect([res.status, res.body.error.code]).toEqual([s.expected, 'auth.forbidden']);
        expect((await owner.json('GET', '/api/v1/me')).status).toBe(200);
      });
    }
  }

  test('a key still reads /me (introspection), and a key scoped account:manage may sign its owner out', async () => {
    const a = await owner.json<{ key: string }>('POST', '/api/v1/api-keys', {
      name: 'ai',
      scopes: ['ai:invoke'],
    });
    const ai = client(p.host);
    ai.bearer = a.body.key;
    expect((await ai.json('GET', '/api/v1/me')).status).toBe(200);
    const m = await owner.json<{ key: string }>('POST', '/api/v1/api-keys', {
      name: 'acct',
      scopes: ['account:manage'],
    });
    const acct = client(p.host);
    acct.bearer = m.body.key;
    expect((await acct.json('POST', '/api/v1/auth/logout-all')).status).toBe(200);
    expect((await owner.json('GET', '/api/v1/me')).status).toBe(401);
  });

  test('a session signs out everywhere, as before', async () => {
    const a = await ownerOf(p);
    const b = await ownerOf(p);
    expect((await a.json('POST', '/api/v1/auth/logout-all')).status).toBe(200);
    expect((await b.json('GET', '/api/v1/me')).status).toBe(401);
  });
});

describe('a restart keeps the lock (a new server process on the same data dir)', () => {
  test('five wrong passwords, the server restarts, the right one is still refused', async () => {
    const t = tempDir();
    const dataDir = join(t.dir, 'data');
    let srv = await spawnServe(dataDir);
    try {
      const res = await operatorApi(srv.base, srv.info.operator!.token, 'POST', '/platforms', {
        slug: 'restart',
      });
      const { admin } = (await res.json()) as { admin: { email: string; password: string } };
      const c = () => new PlatformClient(srv.base, 'restart.localhost');
      for (let i = 0; i < 5; i++)
        expect((await c().signIn(admin.email, `wrong-password-${i}`)).status).toBe(401);
      expect((await c().signIn(admin.email, admin.password)).status).toBe(429);
      expect(await srv.stop()).toBe(0);
      srv = await spawnServe(dataDir);
      const after = await c().fetch('/api/v1/auth/login', { method: 'POST', json: admin });
      expect(after.status).toBe(429);
      expect(Number(after.headers.get('retry-after'))).toBeGreaterThan(800);
    } finally {
      await srv.stop();
      t.cleanup();
    }
  });
});

// Red-team (issue 8, point 3): the docs put a reverse proxy in front of Soulfra, and then every
// client has the proxy's address: 30 failures anywhere locked the platform's sign-in and resets
// for everyone, and 5 wrong passwords locked an account for everyone. With `trusted_proxies`
// the proxy's X-Forwarded-For names the client; a peer that is not trusted cannot pick one.
describe('behind a trusted reverse proxy, limits are per client, and nobody else chooses an address', () => {
  let px: Awaited<ReturnType<typeof serverWithPlatform>>;
  beforeAll(async () => {
    px = await serverWithPlatform('proxied', {}, { config: { trusted_proxies: ['127.0.0.1/32'] } });
  });
  afterAll(async () => {
    await px.s.cleanup();
  });
  /** A JSON POST over a raw socket from `from` (127.0.0.x) to the server on 127.0.0.1. */
  function post(from: string, path: string, body: unknown, xff?: string): Promise<number> {
    const json = JSON.stringify(body);
    return new Promise((resolve, reject) => {
      const sock = net.connect({ host: '127.0.0.1', port: px.s.port, localAddress: from });
      let out = '';
      sock.on('connect', () =>
        sock.write(
          `POST ${path} HTTP/1.1\r\nHost: ${px.host}\r\nContent-Type: application/json\r\n` +
            `${xff === undefined ? '' : `X-Forwarded-For: ${xff}\r\n`}Content-Length: ${Buffer.byteLength(json)}\r\nConnection: close\r\n\r\n${json}`,
        ),
      );
      sock.on('data', (d) => {
        out += d.toString('latin1');
      });
      sock.on('close', () => resolve(Number(out.split(' ')[1])));
      sock.on('error', reject);
    });
  }
  const login = (from: string, email: string, password: string, xff?: string) =>
    post(from, '/api/v1/auth/login', { email, password }, xff);
  let n = 0;
  const cases: {
    name: string;
    attack: () => Promise<void>;
    /** The honest request afterwards, and its expected status. */
    honest: () => Promise<number>;
    expected: number;
  }[] = [
    {
      name: "one client's 30 failures through the proxy: another client still signs in",
      attack: async () => {
        for (let i = 0; i < 30; i++)
          await login('127.0.0.1', `nobody${n++}@proxied.test`, 'wrong-password-x', '203.0.113.1');
      },
      honest: () => login('127.0.0.1', px.owner.email, px.owner.password, '203.0.113.2'),
      expected: 200,
    },
    {
      name: "one client's 30 failures through the proxy: another client still asks for a reset",
      attack: async () => {
        for (let i = 0; i < 30; i++)
          await login('127.0.0.1', `nobody${n++}@proxied.test`, 'wrong-password-x', '203.0.113.3');
      },
      honest: () =>
        post('127.0.0.1', '/api/v1/auth/password-reset', { email: px.owner.email }, '203.0.113.4'),
      expected: 202,
    },
    {
      name: '5 wrong passwords for the owner from one client: the owner signs in from another',
      attack: async () => {
        for (let i = 0; i < 5; i++)
          await login('127.0.0.1', px.owner.email, `wrong-password-${i}`, '203.0.113.5');
      },
      honest: () => login('127.0.0.1', px.owner.email, px.owner.password, '203.0.113.6'),
      expected: 200,
    },
    {
      name: 'the attacking client itself stays locked',
      attack: async () => {
        for (let i = 0; i < 5; i++)
          await login('127.0.0.1', px.owner.email, `wrong-password-${i}`, '203.0.113.7');
      },
      honest: () => login('127.0.0.1', px.owner.email, px.owner.password, '203.0.113.7'),
      expected: 429,
    },
    {
      name: 'a client prepending forged hops through the proxy is limited by the hop the proxy added',
      attack: async () => {
        for (let i = 0; i < 5; i++)
          await login('127.0.0.1', px.owner.email, `wrong-password-${i}`, `198.51.100.${i}, 203.0.113.8`);
      },
      honest: () => login('127.0.0.1', px.owner.email, px.owner.password, '198.51.100.99, 203.0.113.8'),
      expected: 429,
    },
    {
      name: 'a peer that is not a trusted proxy rotating X-Forwarded-For is limited by its own address',
      attack: async () => {
        for (let i = 0; i < 5; i++)
          await login('127.0.0.2', px.owner.email, `wrong-password-${i}`, `203.0.113.${20 + i}`);
      },
      honest: () => login('127.0.0.2', px.owner.email, px.owner.password, '203.0.113.99'),
      expected: 429,
    },
  ];
  for (const c of cases) {
    test(c.name, async () => {
      await c.attack();
      expect(await c.honest()).toBe(c.expected);
    });
  }
});
