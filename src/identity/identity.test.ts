import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { PlatformClient, serverWithPlatform } from '../../tests/platform-client.ts';

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
    const cookie = (await c.fetch('/api/v1/auth/login', { method: 'POST', json: env.owner })).headers.get('set-cookie')!;
    expect(cookie).toMatch(/^sf_session=[A-Za-z0-9_-]{43}; Path=\/; HttpOnly; SameSite=Lax; Max-Age=\d+$/);
    const me = await c.json<{ user: { email: string }; role: string; permissions: string[] }>('GET', '/api/v1/me');
    expect(me.status).toBe(200);
    expect(me.body.user.email).toBe(env.owner.email);
    expect(me.body.role).toBe('owner');
    expect(me.body.permissions).toContain('users:write');
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
    const bad = await c.json<{ error: { code: string } }>('POST', '/api/v1/users', { email: 'x@idp.test', password: 'a-long-password-1' });
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
