import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { operatorApi } from './helpers.ts';
import { type OidcPeer, startOidcProvider } from './peers/oidc-provider.ts';
import { PlatformClient, serverWithPlatform } from './platform-client.ts';

// The operator console signs in through its own OpenID Provider, the same flow as a platform.
let env: Awaited<ReturnType<typeof serverWithPlatform>>;
let idp: OidcPeer;
let consoleHost: string;
const SECRET = 'console-secret-0123456789';

async function signIn(login: string) {
  const b = new PlatformClient(env.s.base, consoleHost);
  const start = await b.fetch('/sso/oidc/login?return_to=/');
  expect(start.status).toBe(302);
  const r = await idp.authorize(new URL(start.headers.get('location')!), { login });
  if (r.kind !== 'redirect') throw new Error(`IdP error ${r.status}`);
  const cb = await b.fetch(r.url.pathname + r.url.search);
  return { b, cb };
}

beforeAll(async () => {
  // The test IdP runs on 127.0.0.1, which the outbound guard refuses unless the config opens it.
  env = await serverWithPlatform('ops', {}, { config: { outbound: { allow: ['127.0.0.1/32'] } } });
  consoleHost = `localhost:${env.s.port}`;
  idp = await startOidcProvider({
    clients: [
      {
        client_id: 'console',
        client_secret: SECRET,
        redirect_uris: [`http://${consoleHost}/sso/oidc/callback`],
      },
    ],
    accounts: {
      olga: { email: 'olga@ops.test' },
      vic: { email: 'vic@ops.test' },
      dora: { email: 'dora@ops.test' },
      stranger: { email: 'stranger@ops.test' },
    },
  });
  const cfg = await operatorApi(env.s.base, env.operatorToken, 'PUT', '/sso/oidc', {
    issuer: idp.issuer,
    client_id: 'console',
    client_secret: SECRET,
  });
  expect(cfg.status).toBe(200);
  for (const [email, role] of [
    ['olga@ops.test', 'operator_admin'],
    ['vic@ops.test', 'operator_viewer'],
    ['dora@ops.test', 'operator_admin'],
  ]) {
    expect(
      (await operatorApi(env.s.base, env.operatorToken, 'POST', '/operators', { email, role })).status,
    ).toBe(201);
  }
}, 30_000);
afterAll(async () => {
  await idp?.stop();
  await env?.s.cleanup();
});

describe('operator console single sign-on', () => {
  test('an invited operator admin signs in and manages platforms with the session (CSRF on writes)', async () => {
    const { b, cb } = await signIn('olga');
    expect(cb.status).toBe(302);
    expect(cb.headers.get('location')).toBe('/');
    expect(b.jar.get('sf_operator_session')).toBeDefined();
    const me = await b.json<{ role: string; csrf_token: string }>('GET', '/_operator/api/me');
    expect(me.status).toBe(200);
    expect(me.body.role).toBe('operator_admin');
    expect((await b.json('GET', '/_operator/api/platforms')).status).toBe(200);
    const noCsrf = await b.json<{ error: { code: string } }>(
      'POST',
      '/_operator/api/platforms/ops/suspend',
      {},
    );
    expect(noCsrf.status).toBe(403);
    expect(noCsrf.body.error.code).toBe('auth.csrf');
    b.csrf = me.body.csrf_token;
    expect((await b.json('POST', '/_operator/api/platforms/ops/suspend', {})).status).toBe(200);
    expect((await b.json('POST', '/_operator/api/platforms/ops/resume', {})).status).toBe(200);
  });

  test('an operator viewer signs in and can only read', async () => {
    const { b } = await signIn('vic');
    const me = await b.json<{ role: string; csrf_token: string }>('GET', '/_operator/api/me');
    expect(me.body.role).toBe('operator_viewer');
    b.csrf = me.body.csrf_token;
    expect((await b.json('GET', '/_operator/api/platforms')).status).toBe(200);
    expect((await b.json('POST', '/_operator/api/platforms/ops/suspend', {})).status).toBe(403);
  });

  test('someone the IdP knows but no operator invited is refused, and it is audited', async () => {
    const { b, cb } = await signIn('stranger');
    expect(cb.status).toBe(403);
    expect(b.jar.get('sf_operator_session')).toBeUndefined();
    const row = env.s.app.control
      .query<{ details: string }, []>(
        "SELECT details FROM audit_log WHERE action = 'operator.sign_in_failed' ORDER BY seq DESC LIMIT 1",
      )
      .get();
    expect(JSON.parse(row!.details).reason).toBe('operator_unknown');
  });

  test('anonymous callbacks naming no sign-in of ours write no audit entry (no write amplification)', async () => {
    const count = () =>
      Number(
        env.s.app.control
          .query<{ n: number }, []>(
            "SELECT count(*) AS n FROM audit_log WHERE action = 'operator.sign_in_failed'",
          )
          .get()?.n,
      );
    const before = count();
    const b = new PlatformClient(env.s.base, consoleHost);
    for (const q of [
      '',
      '?code=x',
      '?state=forged&code=x',
      '?state=&code=x',
      '?error=access_denied&state=nope',
    ]) {
      const res = await b.fetch(`/sso/oidc/callback${q}`);
      expect(res.status).toBeGreaterThanOrEqual(400);
      expect(res.status).toBeLessThan(500);
    }
    expect(count()).toBe(before);
  });

  test("a platform's session cookie means nothing to the console", async () => {
    const p = new PlatformClient(env.s.base, env.host);
    await p.signIn(env.owner.email, env.owner.password);
    const b = new PlatformClient(env.s.base, consoleHost);
    b.jar.set('sf_operator_session', p.jar.get('sf_session')!);
    expect((await b.json('GET', '/_operator/api/me')).status).toBe(401);
  });

  test('sign-out ends the console session', async () => {
    const { b } = await signIn('olga');
    const me = await b.json<{ csrf_token: string }>('GET', '/_operator/api/me');
    b.csrf = me.body.csrf_token;
    expect((await b.json('POST', '/_operator/api/logout')).status).toBe(204);
    expect((await b.json('GET', '/_operator/api/me')).status).toBe(401);
  });

  test('a console session follows its operator: demoted → read only; disabled → ended, also after enable', async () => {
    const root = (method: string, path: string, body?: unknown) =>
      operatorApi(env.s.base, env.operatorToken, method, path, body);
    const { b } = await signIn('dora');
    const me = await b.json<{ role: string; csrf_token: string }>('GET', '/_operator/api/me');
    expect(me.body.role).toBe('operator_admin');
    b.csrf = me.body.csrf_token;
    expect((await b.json('POST', '/_operator/api/platforms/ops/suspend', {})).status).toBe(200);
    expect((await b.json('POST', '/_operator/api/platforms/ops/resume', {})).status).toBe(200);
    expect((await root('PATCH', '/operators/dora@ops.test', { role: 'operator_viewer' })).status).toBe(200);
    expect((await b.json('POST', '/_operator/api/platforms/ops/suspend', {})).status).toBe(403);
    expect((await b.json<{ role: string }>('GET', '/_operator/api/me')).body.role).toBe('operator_viewer');
    expect((await root('POST', '/operators/dora@ops.test/disable', {})).status).toBe(200);
    expect((await b.json('GET', '/_operator/api/me')).status).toBe(401);
    expect((await root('POST', '/operators/dora@ops.test/enable', {})).status).toBe(200);
    expect((await b.json('GET', '/_operator/api/me')).status).toBe(401);
    // Signing in again works; removing the operator ends that session too.
    const again = await signIn('dora');
    expect((await again.b.json('GET', '/_operator/api/me')).status).toBe(200);
    expect((await root('DELETE', '/operators/dora@ops.test')).status).toBe(200);
    expect((await again.b.json('GET', '/_operator/api/me')).status).toBe(401);
    expect(env.s.tenancy.get('ops').status).toBe('active');
  });

  test('operator invitations are validated and listed', async () => {
    const bad = await operatorApi(env.s.base, env.operatorToken, 'POST', '/operators', {
      email: 'nope',
      role: 'god',
    });
    expect(bad.status).toBe(400);
    const paths = ((await bad.json()) as { error: { details: { path: string }[] } }).error.details.map(
      (d) => d.path,
    );
    expect(paths).toEqual(['/email', '/role']);
    const list = (await (await operatorApi(env.s.base, env.operatorToken, 'GET', '/operators')).json()) as {
      operators: { email: string; sso_linked: boolean }[];
    };
    expect(list.operators.find((o) => o.email === 'olga@ops.test')?.sso_linked).toBe(true);
  });
});

// Last: it spends this address's sign-in starts for the minute.
describe('operator console sign-in limits', () => {
  test('console sign-in starts are limited per client address', async () => {
    const b = new PlatformClient(env.s.base, consoleHost);
    const statuses: number[] = [];
    for (let i = 0; i < 80; i++) statuses.push((await b.fetch('/sso/oidc/login?return_to=/')).status);
    expect(statuses.filter((s) => s === 302).length).toBeLessThanOrEqual(60);
    expect(statuses.at(-1)).toBe(429);
  });
});
