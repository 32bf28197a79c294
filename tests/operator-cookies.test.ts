import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { operatorApi } from './helpers.ts';
import { type OidcPeer, startOidcProvider } from './peers/oidc-provider.ts';
import { PlatformClient, serverWithPlatform } from './platform-client.ts';

// Under an https public URL, every cookie of the operator console's sign-in carries Secure
// (start, callback, sign-out): built in one place (shared/cookies.ts).
let env: Awaited<ReturnType<typeof serverWithPlatform>>;
let idp: OidcPeer;
let consoleHost: string;
const SECRET = 'console-secret-0123456789';

beforeAll(async () => {
  env = await serverWithPlatform('opsc', {}, { config: { outbound: { allow: ['127.0.0.1/32'] } } });
  consoleHost = `localhost:${env.s.port}`;
  // The TLS-terminating proxy in front is not here: the public URL says https, requests come in plain.
  env.s.tenancy.updateSettings({ ...env.s.tenancy.settings(), public_url: `https://${consoleHost}` });
  idp = await startOidcProvider({
    clients: [
      {
        client_id: 'console',
        client_secret: SECRET,
        redirect_uris: [`https://${consoleHost}/sso/oidc/callback`],
      },
    ],
    accounts: { olga: { email: 'olga@ops.test' } },
  });
  expect(
    (
      await operatorApi(env.s.base, env.operatorToken, 'PUT', '/sso/oidc', {
        issuer: idp.issuer,
        client_id: 'console',
        client_secret: SECRET,
      })
    ).status,
  ).toBe(200);
  expect(
    (
      await operatorApi(env.s.base, env.operatorToken, 'POST', '/operators', {
        email: 'olga@ops.test',
        role: 'operator_admin',
      })
    ).status,
  ).toBe(201);
}, 30_000);
afterAll(async () => {
  await idp?.stop();
  await env?.s.cleanup();
});

describe('operator console cookies under an https public URL', () => {
  test('every Set-Cookie of the sign-in and the sign-out carries Secure', async () => {
    const b = new PlatformClient(env.s.base, consoleHost);
    const seen: string[] = [];
    const start = await b.fetch('/sso/oidc/login?return_to=/');
    expect(start.status).toBe(302);
    seen.push(...start.headers.getSetCookie());
    const r = await idp.authorize(new URL(start.headers.get('location')!), { login: 'olga' });
    if (r.kind !== 'redirect') throw new Error(`IdP error ${r.status}`);
    const cb = await b.fetch(r.url.pathname + r.url.search);
    expect(cb.status).toBe(302);
    const cbCookies = cb.headers.getSetCookie();
    seen.push(...cbCookies);
    expect(cbCookies.some((c) => c.startsWith('sf_operator_session=') && !/Max-Age=0/.test(c))).toBe(true);
    const me = await b.json<{ csrf_token: string }>('GET', '/_operator/api/me');
    expect(me.status).toBe(200);
    b.csrf = me.body.csrf_token;
    const out = await b.json('POST', '/_operator/api/logout');
    expect(out.status).toBe(204);
    const outCookies = out.res.headers.getSetCookie();
    expect(outCookies).toEqual(['sf_operator_session=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0; Secure']);
    seen.push(...outCookies);
    // start: the sealed sign-in; callback: the session and the sign-in cleared; sign-out: cleared.
    expect(seen.length).toBeGreaterThanOrEqual(4);
    for (const c of seen) expect(c).toMatch(/; Secure$/);
    for (const c of seen) expect(c).toContain('; HttpOnly;');
  });
});
