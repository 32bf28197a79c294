import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { PlatformClient, serverWithPlatform } from '../../tests/platform-client.ts';
import { readOutbox } from './mail/outbox.ts';

let env: Awaited<ReturnType<typeof serverWithPlatform>>;
const client = () => new PlatformClient(env.s.base, env.host);

beforeAll(async () => {
  env = await serverWithPlatform('idp');
});
afterAll(async () => {
  await env.s.cleanup();
});

describe('password sign-in and sessions', () => {
  test('the owner signs in: HttpOnly SameSite=Lax cookie, CSRF token, /me', async () => {
    const c = client();
    const r = await c.signIn(env.owner.email, env.owner.password);
    expect(r.status).toBe(200);
    const cookie = (await c.fetch('/api/v1/auth/login', { method: 'POST', json: env.owner })).headers.get(
      'set-cookie',
    )!;
    expect(cookie).toMatch(/^sf_session=[A-Za-z0-9_-]{43}; Path=\/; HttpOnly; SameSite=Lax; Max-Age=\d+$/);
    const me = await c.json<{ user: { email: string }; role: string; permissions: string[] }>(
      'GET',
      '/api/v1/me',
    );
    expect(me.status).toBe(200);
    expect(me.body.user.email).toBe(env.owner.email);
    expect(me.body.role).toBe('owner');
    expect(me.body.permissions).toContain('users:write');
  });

  test("a session records the client's address (read from the socket)", async () => {
    const c = client();
    expect((await c.signIn(env.owner.email, env.owner.password)).status).toBe(200);
    const ips = await env.s.app.platformDbs.use(env.platformId, (db) =>
      db.query<{ ip: string | null }, []>('SELECT ip FROM sessions ORDER BY created_at DESC LIMIT 1').all(),
    );
    expect(ips.map((r) => r.ip)).toEqual(['127.0.0.1']);
  });

  test('the session id rotates at every sign-in', async () => {
    const c = client();
    await c.signIn(env.owner.email, env.owner.password);
    const first = c.jar.get('sf_session');
    await c.signIn(env.owner.email, env.owner.password);
    expect(c.jar.get('sf_session')).not.toBe(first);
  });

  test('a wrong password and an unknown email get the same answer', async () => {
    const a = await client().signIn(env.owner.email, 'not-the-password-at-all');
    const b = await client().signIn('nobody@nowhere.test', 'not-the-password-at-all');
    expect(a.status).toBe(401);
    expect(b.status).toBe(401);
    expect(a.body).toEqual(b.body);
  });

  test('writes with the cookie need the CSRF token', async () => {
    const c = client();
    await c.signIn(env.owner.email, env.owner.password);
    const token = c.csrf;
    c.csrf = null;
    const bad = await c.json<{ error: { code: string } }>('POST', '/api/v1/users', {
      email: 'x@idp.test',
      password: 'a-long-password-1',
    });
    expect(bad.status).toBe(403);
    expect(bad.body.error.code).toBe('auth.csrf');
    c.csrf = token;
    const ok = await c.json('POST', '/api/v1/users', { email: 'x@idp.test', password: 'a-long-password-1' });
    expect(ok.status).toBe(201);
  });

  test('sign out everywhere ends every session of the user', async () => {
    const a = client();
    const b = client();
    await a.signIn(env.owner.email, env.owner.password);
    await b.signIn(env.owner.email, env.owner.password);
    expect((await a.json('POST', '/api/v1/auth/logout-all')).status).toBe(200);
    expect((await b.json('GET', '/api/v1/me')).status).toBe(401);
  });
});

describe('throttling', () => {
  test('five failures for one account → 429 with Retry-After, even with the right password', async () => {
    await (async () => {
      const owner = client();
      await owner.signIn(env.owner.email, env.owner.password);
      await owner.json('POST', '/api/v1/users', { email: 'tom@idp.test', password: 'tom-password-123' });
    })();
    const statuses: number[] = [];
    for (let i = 0; i < 5; i++)
      statuses.push((await client().signIn('tom@idp.test', `wrong-password-${i}`)).status);
    expect(statuses).toEqual([401, 401, 401, 401, 401]);
    const c = client();
    const res = await c.fetch('/api/v1/auth/login', {
      method: 'POST',
      json: { email: 'tom@idp.test', password: 'tom-password-123' },
    });
    expect(res.status).toBe(429);
    expect(Number(res.headers.get('retry-after'))).toBeGreaterThan(800);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe('auth.throttled');
  });

  test('every failure is audited without saying more to the client', async () => {
    const owner = client();
    await owner.signIn(env.owner.email, env.owner.password);
    const audit = await owner.json<{
      entries: { action: string; target: string; details: { reason?: string } }[];
    }>('GET', '/api/v1/audit?limit=500');
    const failed = audit.body.entries.filter((e) => e.action === 'user.sign_in_failed');
    expect(failed.map((e) => e.details.reason)).toContain('unknown_email');
    expect(failed.map((e) => e.details.reason)).toContain('bad_password');
    expect(audit.body.entries.filter((e) => e.action === 'user.signed_in').length).toBeGreaterThan(3);
  });
});

describe('email verification and password reset (messages go to the outbox)', () => {
  const outboxLink = async (to: string, template: string) => {
    // Bodies are sealed at rest; readOutbox opens them as the mailer would.
    const row = await env.s.app.platformDbs.use(env.platformId, (db) =>
      readOutbox(db, { to, template, includeSent: true }).at(-1),
    );
    return /token=([A-Za-z0-9_-]+)/.exec(row?.body ?? '')?.[1] ?? null;
  };

  test('reset: the same answer for unknown emails; the link sets a new password and ends every session', async () => {
    const owner = client();
    await owner.signIn(env.owner.email, env.owner.password);
    await owner.json('POST', '/api/v1/users', { email: 'rita@idp.test', password: 'rita-password-123' });
    const rita = client();
    await rita.signIn('rita@idp.test', 'rita-password-123');
    const a = await client().json('POST', '/api/v1/auth/password-reset', { email: 'rita@idp.test' });
    const b = await client().json('POST', '/api/v1/auth/password-reset', { email: 'ghost@idp.test' });
    expect([a.status, b.status]).toEqual([202, 202]);
    expect(a.body).toEqual(b.body);
    expect(await outboxLink('ghost@idp.test', 'reset_password')).toBeNull();
    const token = await outboxLink('rita@idp.test', 'reset_password');
    expect(token).not.toBeNull();
    const short = await client().json<{ error: { details: { path: string }[] } }>(
      'POST',
      '/api/v1/auth/password-reset/confirm',
      { token, password: 'short' },
    );
    expect(short.status).toBe(400);
    expect(short.body.error.details[0]!.path).toBe('/password');
    expect(
      (
        await client().json('POST', '/api/v1/auth/password-reset/confirm', {
          token,
          password: 'rita-new-password-456',
        })
      ).status,
    ).toBe(200);
    expect(
      (
        await client().json('POST', '/api/v1/auth/password-reset/confirm', {
          token,
          password: 'rita-other-password-789',
        })
      ).status,
    ).toBe(400);
    expect((await rita.json('GET', '/api/v1/me')).status).toBe(401);
    expect((await client().signIn('rita@idp.test', 'rita-password-123')).status).toBe(401);
    expect((await client().signIn('rita@idp.test', 'rita-new-password-456')).status).toBe(200);
  });

  test('verify email: a link from the outbox marks the address verified, once', async () => {
    const owner = client();
    await owner.signIn(env.owner.email, env.owner.password);
    // The owner the operator made counts as verified (issue 10): nothing to send.
    expect((await owner.json<{ status: string }>('POST', '/api/v1/me/verify-email')).body.status).toBe(
      'already verified',
    );
    await owner.json('POST', '/api/v1/users', { email: 'vera@idp.test', password: 'vera-password-123' });
    const vera = client();
    await vera.signIn('vera@idp.test', 'vera-password-123');
    expect((await vera.json('POST', '/api/v1/me/verify-email')).status).toBe(202);
    const token = await outboxLink('vera@idp.test', 'verify_email');
    const r = await client().json<{ user: { email_verified: boolean } }>(
      'POST',
      '/api/v1/auth/verify-email',
      { token },
    );
    expect(r.status).toBe(200);
    expect(r.body.user.email_verified).toBe(true);
    expect((await client().json('POST', '/api/v1/auth/verify-email', { token })).status).toBe(400);
  });
});

describe('identity settings', () => {
  test('admins change session timeouts; bad values are named', async () => {
    const owner = client();
    await owner.signIn(env.owner.email, env.owner.password);
    const bad = await owner.json<{ error: { details: { path: string }[] } }>(
      'PATCH',
      '/api/v1/settings/identity',
      { session_idle_minutes: 1, mfa_required_roles: ['boss'] },
    );
    expect(bad.status).toBe(400);
    expect(bad.body.error.details.map((d) => d.path).sort()).toEqual([
      '/mfa_required_roles/0',
      '/session_idle_minutes',
    ]);
    const ok = await owner.json<{ session_idle_minutes: number }>('PATCH', '/api/v1/settings/identity', {
      session_idle_minutes: 30,
    });
    expect(ok.body.session_idle_minutes).toBe(30);
  });

  test('a session idle past the limit is over', async () => {
    const c = client();
    await c.signIn(env.owner.email, env.owner.password);
    await env.s.app.platformDbs.use(env.platformId, (db) =>
      db.query('UPDATE sessions SET last_seen_at = last_seen_at - ?').run(31 * 60_000),
    );
    expect((await c.json('GET', '/api/v1/me')).status).toBe(401);
  });
});
