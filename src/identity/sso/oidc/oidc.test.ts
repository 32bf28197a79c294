import type { Database } from 'bun:sqlite';
import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { operatorApi } from '../../../../tests/helpers.ts';
import { type OidcPeer, startOidcProvider } from '../../../../tests/peers/oidc-provider.ts';
import { PlatformClient, serverWithPlatform } from '../../../../tests/platform-client.ts';
import { secretsOf } from '../../../app/index.ts';
import { createOutboundGuard, type OutboundGuard } from '../../../shared/outbound.ts';
import { sealPending } from '../sso.ts';
import { mapRole, oidcCookieName, readOidc, safeReturnTo, startOidcLogin } from './oidc.ts';

const SECRET = 'acme-app-secret-0123456789';
const BETA_SECRET = 'beta-app-secret-0123456789';

let env: Awaited<ReturnType<typeof serverWithPlatform>>;
let idp: OidcPeer;
let other: OidcPeer;
let acmeHost: string;
let betaHost: string;
let beta: { id: string; owner: { email: string; password: string } };
let owner: PlatformClient;
let betaOwner: PlatformClient;

/** The platform's settings as the tests use them, unless a test changes them. */
const settings = () => ({
  issuer: idp.issuer,
  client_id: 'acme-app',
  client_secret: SECRET,
  scopes: ['openid', 'email', 'profile', 'groups'],
  role_claim: 'groups',
  role_map: { staff: 'creator', 'platform-admins': 'admin', auditors: 'auditor' },
  default_role: 'member',
});

function withDb<T>(platformId: string, fn: (db: Database) => T): T {
  const lease = env.s.app.platformDbs.acquire(platformId);
  try {
    return fn(lease.db);
  } finally {
    lease.release();
  }
}
const sessions = (platformId: string) =>
  withDb(platformId, (db) => db.query<{ n: number }, []>('SELECT count(*) AS n FROM sessions').get()!.n);
const lastSeq = (platformId: string) =>
  withDb(
    platformId,
    (db) => db.query<{ s: number }, []>('SELECT coalesce(max(seq), 0) AS s FROM audit_log').get()!.s,
  );
const auditSince = (platformId: string, seq: number) =>
  withDb(platformId, (db) =>
    db
      .query<{ actor: string; action: string; target: string; details: string }, [number]>(
        'SELECT actor, action, target, details FROM audit_log WHERE seq > ? ORDER BY seq',
      )
      .all(seq)
      .map((e) => ({ ...e, details: JSON.parse(e.details) as Record<string, unknown> })),
  );

/** Rows in every table of a platform's database (name → count). */
const rowCounts = (platformId: string) =>
  withDb(platformId, (db) =>
    Object.fromEntries(
      db
        .query<{ name: string }, []>("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
        .all()
        .map((t) => [t.name, db.query<{ n: number }, []>(`SELECT count(*) AS n FROM "${t.name}"`).get()!.n]),
    ),
  );

/** What the sealed cookie of the sign-in with `state` carries, opened with the platform's keyring. */
const pendingOf = (b: PlatformClient, state: string, platformId = env.platformId) =>
  withDb(
    platformId,
    (db) =>
      JSON.parse(secretsOf(db).unseal(b.jar.get(oidcCookieName(state))!, 'sso:oidc:pending')) as Record<
        string,
        unknown
      >,
  );

/** Replaces the sign-in's cookie in the browser by one sealed (by the platform) with `patch` applied. */
const resealInJar = (b: PlatformClient, state: string, patch: Record<string, unknown>) => {
  const next = { ...pendingOf(b, state), ...patch };
  b.jar.set(
    oidcCookieName(state),
    withDb(env.platformId, (db) => sealPending(db, 'oidc', next)),
  );
};

/** A browser on the acme (or beta) host. */
const browser = (host = acmeHost) => new PlatformClient(env.s.base, host);

/** GET /sso/oidc/login, then through the IdP's forms; returns where the IdP sends the browser back. */
async function throughIdp(
  b: PlatformClient,
  login: string,
  opts: { returnTo?: string; peer?: OidcPeer } = {},
) {
  const start = await b.fetch(
    `/sso/oidc/login${opts.returnTo ? `?return_to=${encodeURIComponent(opts.returnTo)}` : ''}`,
  );
  expect(start.status).toBe(302);
  const authUrl = new URL(start.headers.get('location')!);
  const state = authUrl.searchParams.get('state')!;
  if (opts.peer) {
    // Sent to another provider than the configured one (the mix-up attack).
    const moved = new URL(authUrl.pathname + authUrl.search, opts.peer.issuer);
    const r = await opts.peer.authorize(moved, { login });
    if (r.kind !== 'redirect') throw new Error(`IdP error ${r.status}: ${r.body.slice(0, 300)}`);
    return { authUrl, state, callback: r.url };
  }
  const r = await idp.authorize(authUrl, { login });
  if (r.kind !== 'redirect') throw new Error(`IdP error ${r.status}: ${r.body.slice(0, 300)}`);
  return { authUrl, state, callback: r.url };
}

/** Fetches the callback URL the IdP redirected to, on the platform host of the browser. */
const callback = (b: PlatformClient, url: URL) => b.fetch(url.pathname + url.search);

/** A full sign-in; returns the callback response and the browser (now signed in). */
async function signInWithIdp(login: string, returnTo?: string) {
  const b = browser();
  const { callback: cb } = await throughIdp(b, login, { returnTo });
  const res = await callback(b, cb);
  return { b, res, cb };
}

beforeAll(async () => {
  // The test IdP runs on 127.0.0.1, which the outbound guard refuses unless the config opens it.
  env = await serverWithPlatform('acme', {}, { config: { outbound: { allow: ['127.0.0.1/32'] } } });
  acmeHost = `acme.localhost:${env.s.port}`;
  betaHost = `beta.localhost:${env.s.port}`;
  const res = await operatorApi(env.s.base, env.operatorToken, 'POST', '/platforms', { slug: 'beta' });
  const created = (await res.json()) as {
    admin: { email: string; password: string };
    platform: { id: string };
  };
  beta = { id: created.platform.id, owner: created.admin };
  const redirect = (host: string) => [`http://${host}/sso/oidc/callback`];
  idp = await startOidcProvider({
    clients: [
      { client_id: 'acme-app', client_secret: SECRET, redirect_uris: redirect(acmeHost) },
      { client_id: 'beta-app', client_secret: BETA_SECRET, redirect_uris: redirect(betaHost) },
    ],
    accounts: {
      alice: { email: 'Alice@Corp.test', name: 'Alice Example', groups: ['staff', 'platform-admins'] },
      bob: { email: 'bob@corp.test', name: 'Bob', groups: 'staff' },
      carol: { email: 'carol@corp.test', groups: ['visitors'] },
      dave: { email: 'dave@corp.test', groups: ['auditors'] },
      eve: { email: 'eve@corp.test', email_verified: false },
      mallory: { email: 'mallory@corp.test', groups: ['staff'] },
    },
  });
  // A second, independent provider that also knows the acme client (for the mix-up case).
  other = await startOidcProvider({
    idTokenClaims: true,
    clients: [{ client_id: 'acme-app', client_secret: SECRET, redirect_uris: redirect(acmeHost) }],
  });
  owner = browser();
  expect((await owner.signIn(env.owner.email, env.owner.password)).status).toBe(200);
  betaOwner = browser(betaHost);
  expect((await betaOwner.signIn(beta.owner.email, beta.owner.password)).status).toBe(200);
}, 30_000);

afterAll(async () => {
  await idp?.stop();
  await other?.stop();
  await env?.s.cleanup();
});

describe('OIDC settings (PUT/GET/DELETE /api/v1/sso/oidc)', () => {
  test('before setup, GET answers 404 and the login route says OIDC is not set up', async () => {
    const g = await owner.json<{ error: { code: string } }>('GET', '/api/v1/sso/oidc');
    expect(g.status).toBe(404);
    expect(g.body.error.code).toBe('sso.oidc_not_configured');
    const l = await browser().json<{ error: { code: string } }>('GET', '/sso/oidc/login');
    expect(l.status).toBe(404);
    expect(l.body.error.code).toBe('sso.oidc_not_configured');
  });

  test('the owner saves settings: discovery runs, GET hides the secret and gives the redirect URI', async () => {
    const seq = lastSeq(env.platformId);
    const put = await owner.json<{ oidc: Record<string, unknown> }>('PUT', '/api/v1/sso/oidc', settings());
    expect(put.status).toBe(200);
    expect(put.body.oidc.endpoints).toEqual({
      authorization: `${idp.issuer}/auth`,
      token: `${idp.issuer}/token`,
      userinfo: `${idp.issuer}/me`,
      jwks: `${idp.issuer}/jwks`,
    });
    const get = await owner.fetch('/api/v1/sso/oidc');
    const text = await get.text();
    expect(get.status).toBe(200);
    expect(text).not.toContain(SECRET);
    const view = (JSON.parse(text) as { oidc: Record<string, unknown> }).oidc;
    expect(view.client_secret).toBeUndefined();
    expect(view.client_secret_set).toBe(true);
    expect(view.redirect_uri).toBe(`http://${acmeHost}/sso/oidc/callback`);
    expect(view.issuer).toBe(idp.issuer);
    expect(view.client_id).toBe('acme-app');
    expect(view.scopes).toEqual(['openid', 'email', 'profile', 'groups']);
    expect(view.role_claim).toBe('groups');
    expect(view.default_role).toBe('member');
    expect(view.jit).toBe(true);
    expect(view.enabled).toBe(true);
    const audit = auditSince(env.platformId, seq);
    expect(audit.map((e) => e.action)).toEqual(['sso.oidc_configured']);
    expect(JSON.stringify(audit)).not.toContain(SECRET);
    expect(audit[0]!.details.client_id).toBe('acme-app');
    expect(audit[0]!.details.secret_changed).toBe(true);
    // The secret stays on the server, in the platform's own database, sealed.
    const stored = withDb(
      env.platformId,
      (db) =>
        db.query<{ config: string }, []>("SELECT config FROM sso_providers WHERE kind = 'oidc'").get()!
          .config,
    );
    expect(stored).not.toContain(SECRET);
    expect(JSON.parse(stored).client_secret).toStartWith('sf1.');
    expect(withDb(env.platformId, (db) => readOidc(db)!.client_secret)).toBe(SECRET);
  });

  const bad: { name: string; body: Record<string, unknown>; code: string; paths: string[] }[] = [
    {
      name: 'nothing at all',
      body: {},
      code: 'sso.oidc_invalid',
      paths: ['/issuer', '/client_id', '/client_secret'],
    },
    {
      name: 'a non-http issuer',
      body: { issuer: 'ftp://idp.test' },
      code: 'sso.oidc_invalid',
      paths: ['/issuer'],
    },
    {
      name: 'a plain-http issuer that is not this machine',
      body: { issuer: 'http://idp.example.com' },
      code: 'sso.oidc_invalid',
      paths: ['/issuer'],
    },
    {
      name: 'an issuer with a query',
      body: { issuer: 'https://idp.test/?x=1' },
      code: 'sso.oidc_invalid',
      paths: ['/issuer'],
    },
    {
      name: 'scopes without openid',
      body: { scopes: ['email'] },
      code: 'sso.oidc_invalid',
      paths: ['/scopes'],
    },
    {
      name: 'a scope with a space',
      body: { scopes: ['openid', 'a b'] },
      code: 'sso.oidc_invalid',
      paths: ['/scopes/1'],
    },
    {
      name: 'an unknown role in role_map (JSON Pointer escaped)',
      body: { role_map: { 'corp/admins': 'superuser' } },
      code: 'sso.oidc_invalid',
      paths: ['/role_map/corp~1admins'],
    },
    {
      name: 'role_map with a null role_claim',
      body: { role_claim: null, role_map: { staff: 'creator' } },
      code: 'sso.oidc_invalid',
      paths: ['/role_claim'],
    },
    {
      name: 'role_map without role_claim',
      body: { role_claim: undefined, role_map: { staff: 'creator' } },
      code: 'sso.oidc_invalid',
      paths: ['/role_claim'],
    },
    {
      name: 'owner as default role',
      body: { default_role: 'owner' },
      code: 'sso.oidc_invalid',
      paths: ['/default_role'],
    },
    {
      name: 'non-boolean switches and an unknown field',
      body: { jit: 'yes', enabled: 1, extra: true },
      code: 'sso.oidc_invalid',
      paths: ['/extra', '/jit', '/enabled'],
    },
    {
      name: 'a bad role claim name',
      body: { role_claim: 'a b' },
      code: 'sso.oidc_invalid',
      paths: ['/role_claim'],
    },
  ];
  for (const c of bad) {
    test(`refused with 400 naming the fields: ${c.name}`, async () => {
      const body = c.name === 'nothing at all' ? {} : { ...settings(), ...c.body };
      const r = await owner.json<{ error: { code: string; details: { path: string; reason: string }[] } }>(
        'PUT',
        '/api/v1/sso/oidc',
        body,
      );
      expect(r.status).toBe(400);
      expect(r.body.error.code).toBe(c.code);
      expect(r.body.error.details.map((d) => d.path)).toEqual(c.paths);
      expect(r.body.error.details.every((d) => d.reason.length > 0)).toBe(true);
    });
  }

  test('a wrong issuer is refused at save time (discovery) and the settings stay as they were', async () => {
    // Canaries on 127.0.0.1 (allowed here): an open port that is no IdP, one that redirects to a
    // second canary (openid-client asks for no redirects: the second must see nothing), one
    // whose discovery document names endpoints outside the allow list, and a closed port.
    let decoyCount = 0;
    const decoyCounter = Bun.serve({
      hostname: '127.0.0.1',
      port: 0,
      fetch: () => {
        decoyCount++;
        return new Response('no');
      },
    });
    const canary = Bun.serve({
      hostname: '127.0.0.1',
      port: 0,
      fetch(req) {
        const u = new URL(req.url);
        const base = `http://127.0.0.1:${u.port}`;
        if (u.pathname === '/redirect/.well-known/openid-configuration')
          return new Response(null, {
            status: 302,
            headers: { location: `http://127.0.0.1:${decoyCounter.port}/.well-known/openid-configuration` },
          });
        if (u.pathname.endsWith('/.well-known/openid-configuration') && u.pathname.startsWith('/inward/')) {
          const which = u.pathname.split('/')[2]!;
          const issuer = `${base}/inward/${which}`;
          return Response.json({
            issuer,
            authorization_endpoint: `${issuer}/auth`,
            token_endpoint: which === 'token' ? 'https://127.0.0.2/token' : `${issuer}/token`,
            jwks_uri: which === 'jwks' ? 'https://[::ffff:127.0.0.3]/jwks' : `${issuer}/jwks`,
            userinfo_endpoint: which === 'userinfo' ? 'https://[::1]:1/me' : `${issuer}/me`,
            response_types_supported: ['code'],
          });
        }
        return new Response('<html>an admin console, not an IdP</html>', {
          headers: { 'content-type': 'text/html' },
        });
      },
    });
    const gone = Bun.serve({ hostname: '127.0.0.1', port: 0, fetch: () => new Response('') });
    const closed = gone.port;
    await gone.stop(true);
    try {
      const generic = 'the issuer could not be reached, or did not answer as an OpenID provider';
      const cases: { name: string; issuer: string; reason: string }[] = [
        { name: 'a path with no discovery document', issuer: `${idp.issuer}/nowhere`, reason: generic },
        { name: 'a closed port', issuer: `http://127.0.0.1:${closed}`, reason: generic },
        { name: 'port 1', issuer: 'http://127.0.0.1:1', reason: generic },
        {
          name: 'an open port that is no IdP',
          issuer: `http://127.0.0.1:${canary.port}/plain`,
          reason: generic,
        },
        {
          name: 'TLS to a plain-http port',
          issuer: `https://127.0.0.1:${canary.port}/plain`,
          reason: generic,
        },
        { name: 'TLS to the IdP (plain http)', issuer: `https://127.0.0.1:${idp.port}`, reason: generic },
        {
          name: 'a redirect (not followed)',
          issuer: `http://127.0.0.1:${canary.port}/redirect`,
          reason: generic,
        },
        {
          name: 'a token endpoint outside the allow list',
          issuer: `http://127.0.0.1:${canary.port}/inward/token`,
          reason: "the provider's token_endpoint cannot be reached from this server",
        },
        {
          name: 'a JWKS URI outside the allow list (IPv4-mapped)',
          issuer: `http://127.0.0.1:${canary.port}/inward/jwks`,
          reason: "the provider's jwks_uri cannot be reached from this server",
        },
        {
          name: 'a userinfo endpoint on IPv6 loopback',
          issuer: `http://127.0.0.1:${canary.port}/inward/userinfo`,
          reason: "the provider's userinfo_endpoint cannot be reached from this server",
        },
      ];
      for (const c of cases) {
        const r = await owner.json<{
          error: { code: string; message: string; details: { path: string; reason: string }[] };
        }>('PUT', '/api/v1/sso/oidc', { ...settings(), issuer: c.issuer });
        expect({ name: c.name, status: r.status }).toEqual({ name: c.name, status: 400 });
        expect(r.body.error.code).toBe('sso.oidc_discovery_failed');
        // Open, closed, TLS, redirect: the same words, so the answer maps nothing.
        expect(r.body.error.message).toBe(`OpenID discovery at ${c.issuer} failed: ${c.reason}`);
        expect(r.body.error.details).toEqual([{ path: '/issuer', reason: c.reason }]);
      }
      expect(decoyCount).toBe(0);
      const g = await owner.json<{ oidc: { issuer: string } }>('GET', '/api/v1/sso/oidc');
      expect(g.body.oidc.issuer).toBe(idp.issuer);
    } finally {
      await Promise.all([decoyCounter.stop(true), canary.stop(true)]);
    }
  });

  test('the secret may be left out to keep it, only for the same issuer and client', async () => {
    const { client_secret: _s, ...rest } = settings();
    const keep = await owner.json<{ oidc: { client_secret_set: boolean } }>('PUT', '/api/v1/sso/oidc', rest);
    expect(keep.status).toBe(200);
    const stored = withDb(
      env.platformId,
      (db) =>
        db.query<{ config: string }, []>("SELECT config FROM sso_providers WHERE kind = 'oidc'").get()!
          .config,
    );
    expect(JSON.parse(stored).client_secret).toStartWith('sf1.');
    expect(withDb(env.platformId, (db) => readOidc(db)!.client_secret)).toBe(SECRET);
    const other = await owner.json<{ error: { details: { path: string }[] } }>('PUT', '/api/v1/sso/oidc', {
      ...rest,
      client_id: 'another-app',
    });
    expect(other.status).toBe(400);
    expect(other.body.error.details.map((d) => d.path)).toEqual(['/client_secret']);
  });

  test('a member gets 403 on PUT, GET and DELETE; an admin may not map a claim to owner', async () => {
    const pw = 'a-long-member-password-1';
    for (const [email, role] of [
      ['member@acme.test', 'member'],
      ['admin@acme.test', 'admin'],
    ] as const) {
      expect((await owner.json('POST', '/api/v1/users', { email, password: pw, role })).status).toBe(201);
    }
    const member = browser();
    await member.signIn('member@acme.test', pw);
    for (const method of ['PUT', 'GET', 'DELETE']) {
      const r = await member.json<{ error: { code: string } }>(
        method,
        '/api/v1/sso/oidc',
        method === 'PUT' ? settings() : undefined,
      );
      expect(r.status).toBe(403);
      expect(r.body.error.code).toBe('auth.forbidden');
    }
    const admin = browser();
    await admin.signIn('admin@acme.test', pw);
    const esc = await admin.json<{ error: { code: string } }>('PUT', '/api/v1/sso/oidc', {
      ...settings(),
      role_map: { 'platform-admins': 'owner' },
    });
    expect(esc.status).toBe(403);
    expect(esc.body.error.code).toBe('auth.forbidden');
    const ok = await admin.json('PUT', '/api/v1/sso/oidc', settings());
    expect(ok.status).toBe(200);
  }, 20_000);

  test('DELETE removes the settings (audited) and a second DELETE answers 404', async () => {
    const put = await betaOwner.json('PUT', '/api/v1/sso/oidc', {
      issuer: idp.issuer,
      client_id: 'beta-app',
      client_secret: BETA_SECRET,
    });
    expect(put.status).toBe(200);
    const seq = lastSeq(beta.id);
    expect((await betaOwner.fetch('/api/v1/sso/oidc', { method: 'DELETE' })).status).toBe(204);
    expect((await betaOwner.fetch('/api/v1/sso/oidc', { method: 'DELETE' })).status).toBe(404);
    expect(auditSince(beta.id, seq).map((e) => e.action)).toEqual(['sso.oidc_removed']);
    expect((await betaOwner.fetch('/api/v1/sso/oidc')).status).toBe(404);
  });
});

describe('OIDC sign-in round trip', () => {
  test('login redirects to the IdP with PKCE (S256), state and nonce kept for ten minutes', async () => {
    const b = browser();
    const res = await b.fetch('/sso/oidc/login?return_to=/agents');
    expect(res.status).toBe(302);
    const u = new URL(res.headers.get('location')!);
    expect(`${u.origin}${u.pathname}`).toBe(`${idp.issuer}/auth`);
    const p = u.searchParams;
    expect(p.get('client_id')).toBe('acme-app');
    expect(p.get('response_type')).toBe('code');
    expect(p.get('redirect_uri')).toBe(`http://${acmeHost}/sso/oidc/callback`);
    expect(p.get('scope')).toBe('openid email profile groups');
    expect(p.get('code_challenge_method')).toBe('S256');
    expect(p.get('code_challenge')).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(p.get('state')).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(p.get('nonce')).toMatch(/^[A-Za-z0-9_-]{43}$/);
    // The sign-in's state travels sealed in its own cookie, on the callback path only.
    const state = p.get('state')!;
    const name = oidcCookieName(state);
    expect(name).toMatch(/^sf_oidc_[0-9a-f]{16}$/);
    const set = res.headers.getSetCookie().join('\n');
    expect(set).toMatch(
      new RegExp(
        `^${name}=sf1\\.[A-Za-z0-9_-]+\\.[A-Za-z0-9_-]+; Path=/sso/oidc; HttpOnly; SameSite=Lax; Max-Age=600$`,
        'm',
      ),
    );
    expect(set).not.toContain(p.get('nonce')!);
    const data = pendingOf(b, state);
    expect(data.state).toBe(state);
    expect(data.nonce).toBe(p.get('nonce')!);
    expect(data.return_to).toBe('/agents');
    expect(data.code_verifier).toMatch(/^[A-Za-z0-9_-]{43}$/);
    const ttl = (data.exp as number) - Date.now();
    expect(ttl).toBeGreaterThan(590_000);
    expect(ttl).toBeLessThanOrEqual(600_000);
  });

  test('a full round trip creates the user just in time with the mapped role and signs them in', async () => {
    const before = lastSeq(env.platformId);
    const { b, res } = await signInWithIdp('alice', '/dashboard?tab=1');
    expect(res.status).toBe(302);
    expect(res.headers.get('location')).toBe('/dashboard?tab=1');
    expect(res.headers.getSetCookie().join('\n')).toMatch(
      /^sf_session=[A-Za-z0-9_-]{43}; Path=\/; HttpOnly; SameSite=Lax/m,
    );
    expect([...b.jar.keys()].filter((k) => k.startsWith('sf_oidc'))).toEqual([]);
    const me = await b.json<{
      user: { id: string; email: string; name: string; role: string };
      role: string;
    }>('GET', '/api/v1/me');
    expect(me.status).toBe(200);
    expect(me.body.user.email).toBe('alice@corp.test');
    expect(me.body.user.name).toBe('Alice Example');
    // staff → creator and platform-admins → admin: the more powerful one wins.
    expect(me.body.role).toBe('admin');
    const link = withDb(env.platformId, (db) =>
      db
        .query<{ user_id: string }, []>(
          "SELECT user_id FROM sso_identities WHERE kind = 'oidc' AND subject = 'alice'",
        )
        .all(),
    );
    expect(link).toEqual([{ user_id: me.body.user.id }]);
    const via = withDb(env.platformId, (db) =>
      db.query<{ via: string }, [string]>('SELECT via FROM sessions WHERE user_id = ?').all(me.body.user.id),
    );
    expect(via).toEqual([{ via: 'oidc' }]);
    const audit = auditSince(env.platformId, before);
    expect(audit.map((e) => e.action)).toEqual(['user.created', 'user.signed_in']);
    expect(audit[0]!.actor).toBe('sso:oidc');
    expect(audit[0]!.details).toEqual({ email: 'alice@corp.test', role: 'admin' });
    expect(audit[1]!.details.via).toBe('oidc');
  });

  test('a second sign-in links to the same user (no duplicate)', async () => {
    const first = await signInWithIdp('alice');
    const second = await signInWithIdp('alice');
    expect(second.res.status).toBe(302);
    expect(second.res.headers.get('location')).toBe('/');
    const a = await first.b.json<{ user: { id: string } }>('GET', '/api/v1/me');
    const c = await second.b.json<{ user: { id: string } }>('GET', '/api/v1/me');
    expect(c.body.user.id).toBe(a.body.user.id);
    const counts = withDb(env.platformId, (db) => ({
      users: db
        .query<{ n: number }, []>("SELECT count(*) AS n FROM users WHERE email = 'alice@corp.test'")
        .get()!.n,
      links: db
        .query<{ n: number }, []>("SELECT count(*) AS n FROM sso_identities WHERE subject = 'alice'")
        .get()!.n,
    }));
    expect(counts).toEqual({ users: 1, links: 1 });
  });

  test('roles: a string claim, an unmapped value (default role), and a mapped auditor', async () => {
    for (const [login, role] of [
      ['bob', 'creator'],
      ['carol', 'member'],
      ['dave', 'auditor'],
    ] as const) {
      const { b, res } = await signInWithIdp(login);
      expect(res.status).toBe(302);
      const me = await b.json<{ role: string }>('GET', '/api/v1/me');
      expect(me.body.role).toBe(role);
    }
  });

  test('an IdP role change is applied at the next sign-in (audited as a role change)', async () => {
    idp.setAccount('carol', { email: 'carol@corp.test', groups: ['visitors', 'staff'] });
    const seq = lastSeq(env.platformId);
    const { b } = await signInWithIdp('carol');
    expect((await b.json<{ role: string }>('GET', '/api/v1/me')).body.role).toBe('creator');
    const change = auditSince(env.platformId, seq).find((e) => e.action === 'user.role_changed')!;
    expect(change.details).toEqual({ from: 'member', to: 'creator' });
  });

  test('an existing account with the same email is linked, not duplicated', async () => {
    const made = await owner.json<{ user: { id: string } }>('POST', '/api/v1/users', {
      email: 'mallory@corp.test',
      name: 'Mallory',
    });
    expect(made.status).toBe(201);
    const { b } = await signInWithIdp('mallory');
    const me = await b.json<{ user: { id: string }; role: string }>('GET', '/api/v1/me');
    expect(me.body.user.id).toBe(made.body.user.id);
    expect(me.body.role).toBe('creator');
  });

  test('a return_to that could leave the origin is ignored (→ /)', async () => {
    for (const v of [
      '//evil.test/x',
      'https://evil.test/',
      '/\\evil.test',
      'javascript:alert(1)',
      'dashboard',
      '/a\nb',
    ]) {
      expect(safeReturnTo(v)).toBe('/');
    }
    expect(safeReturnTo('/x/y?z=1#h')).toBe('/x/y?z=1#h');
    const { res } = await signInWithIdp('bob', '//evil.test/steal');
    expect(res.status).toBe(302);
    expect(res.headers.get('location')).toBe('/');
  });

  test('mapRole picks the most powerful mapped role and falls back to the default', () => {
    const s = {
      role_map: { a: 'auditor', c: 'creator', x: 'admin' } as const,
      default_role: 'member' as const,
    };
    expect(mapRole(s, ['a', 'c'])).toBe('creator');
    expect(mapRole(s, ['a', 'x', 'c'])).toBe('admin');
    expect(mapRole(s, 'a')).toBe('auditor');
    expect(mapRole(s, ['nope', 7])).toBe('member');
    expect(mapRole(s, undefined)).toBe('member');
    expect(mapRole(s, 'toString')).toBe('member');
  });
});

/** Asserts a refused callback: status and code, no session, a `user.sign_in_failed` entry. */
async function expectRefused(
  res: Response,
  seq: number,
  want: {
    status: number;
    code?: string;
    reason: string;
    message?: RegExp;
    platformId?: string;
  },
  sessionsBefore: number,
) {
  const platformId = want.platformId ?? env.platformId;
  const body = (await res.json()) as { error: { code: string; message: string } };
  expect(res.status).toBe(want.status);
  expect(body.error.code).toBe(want.code ?? 'sso.oidc_failed');
  if (want.message) expect(body.error.message).toMatch(want.message);
  expect(res.headers.getSetCookie().some((c) => c.startsWith('sf_session='))).toBe(false);
  expect(sessions(platformId)).toBe(sessionsBefore);
  const failed = auditSince(platformId, seq).filter((e) => e.action === 'user.sign_in_failed');
  expect(failed.length).toBe(1);
  expect(failed[0]!.details.via).toBe('oidc');
  expect(failed[0]!.details.reason).toBe(want.reason);
  return failed[0]!;
}

/**
 * A refused callback that names no sign-in of ours (no state, or one never made or already
 * used): no session, and no audit entry, so anonymous requests cannot grow the audit chain
 * (issue 8, point 12); the server logs it instead.
 */
async function expectAnonymousRefusal(
  res: Response,
  seq: number,
  want: { status: number; reason: string; message?: RegExp; platformId?: string },
  sessionsBefore: number,
) {
  const platformId = want.platformId ?? env.platformId;
  const body = (await res.json()) as { error: { code: string; message: string } };
  expect(res.status).toBe(want.status);
  expect(body.error.code).toBe('sso.oidc_failed');
  if (want.message) expect(body.error.message).toMatch(want.message);
  expect(res.headers.getSetCookie().some((c) => c.startsWith('sf_session='))).toBe(false);
  expect(sessions(platformId)).toBe(sessionsBefore);
  expect(auditSince(platformId, seq).filter((e) => e.action === 'user.sign_in_failed')).toEqual([]);
}

describe('refused callbacks: never a session; an audit entry when tied to a sign-in of ours', () => {
  test('a forged state', async () => {
    const [seq, n] = [lastSeq(env.platformId), sessions(env.platformId)];
    const res = await browser().fetch('/sso/oidc/callback?code=abc&state=forged-state');
    await expectAnonymousRefusal(
      res,
      seq,
      { status: 400, reason: 'state_unknown', message: /unknown or already used/ },
      n,
    );
  });

  test('no state at all', async () => {
    const [seq, n] = [lastSeq(env.platformId), sessions(env.platformId)];
    const res = await browser().fetch('/sso/oidc/callback?code=abc');
    await expectAnonymousRefusal(res, seq, { status: 400, reason: 'state_missing' }, n);
  });

  test('a wrong nonce (the stored nonce tampered with): the ID token is refused', async () => {
    const b = browser();
    const { state, callback: cb } = await throughIdp(b, 'alice');
    resealInJar(b, state, { nonce: 'tampered' });
    const [seq, n] = [lastSeq(env.platformId), sessions(env.platformId)];
    const entry = await expectRefused(
      await callback(b, cb),
      seq,
      { status: 401, reason: 'code_exchange_failed', message: /nonce/ },
      n,
    );
    expect(entry.details.subject).toBeUndefined();
  });

  test('a callback replayed: the state is one use', async () => {
    const b = browser();
    const { callback: cb } = await throughIdp(b, 'bob');
    expect((await callback(b, cb)).status).toBe(302);
    const [seq, n] = [lastSeq(env.platformId), sessions(env.platformId)];
    await expectAnonymousRefusal(await callback(b, cb), seq, { status: 400, reason: 'state_unknown' }, n);
  });

  test('a code used twice (replayed with a fresh state): the IdP refuses it', async () => {
    const b = browser();
    const first = await throughIdp(b, 'bob');
    expect((await callback(b, first.callback)).status).toBe(302);
    const second = await throughIdp(b, 'bob');
    const forged = new URL(first.callback);
    forged.searchParams.set('state', second.state);
    const [seq, n] = [lastSeq(env.platformId), sessions(env.platformId)];
    await expectRefused(
      await callback(b, forged),
      seq,
      { status: 401, reason: 'code_exchange_failed', message: /invalid_grant/ },
      n,
    );
  });

  test('an expired code', async () => {
    const b = browser();
    const { callback: cb } = await throughIdp(b, 'bob');
    // The IdP's code outlives its lifetime (its store says so) rather than the test sleeping.
    idp.expireCodes();
    const [seq, n] = [lastSeq(env.platformId), sessions(env.platformId)];
    await expectRefused(
      await callback(b, cb),
      seq,
      { status: 401, reason: 'code_exchange_failed', message: /invalid_grant/ },
      n,
    );
  });

  test('an expired state (older than ten minutes)', async () => {
    const b = browser();
    const { state, callback: cb } = await throughIdp(b, 'bob');
    resealInJar(b, state, { exp: Date.now() - 1 });
    const kept = b.jar.get(oidcCookieName(state))!;
    const [seq, n] = [lastSeq(env.platformId), sessions(env.platformId)];
    await expectRefused(await callback(b, cb), seq, { status: 400, reason: 'state_expired' }, n);
    // Its holder may post it again and again: audited once, then only logged.
    b.jar.set(oidcCookieName(state), kept);
    const seq2 = lastSeq(env.platformId);
    await expectAnonymousRefusal(await callback(b, cb), seq2, { status: 400, reason: 'state_expired' }, n);
  });

  test('a response from another issuer (mix-up: the code comes from a second provider)', async () => {
    const b = browser();
    const { callback: cb } = await throughIdp(b, 'alice', { peer: other });
    expect(cb.searchParams.get('iss')).toBe(other.issuer);
    const [seq, n] = [lastSeq(env.platformId), sessions(env.platformId)];
    await expectRefused(
      await callback(b, cb),
      seq,
      { status: 401, reason: 'code_exchange_failed', message: /iss/ },
      n,
    );
  });

  test('a callback opened in another browser than the one that started the sign-in', async () => {
    const { callback: cb } = await throughIdp(browser(), 'bob');
    const [seq, n] = [lastSeq(env.platformId), sessions(env.platformId)];
    // No cookie of ours for this state: the server cannot tell it from a forged one (it keeps
    // nothing), so it is refused and logged, not audited.
    await expectAnonymousRefusal(
      await callback(browser(), cb),
      seq,
      { status: 400, reason: 'state_unknown', message: /started in another browser/ },
      n,
    );
  });

  test('an error sent back by the IdP', async () => {
    const b = browser();
    const start = await b.fetch('/sso/oidc/login');
    const state = new URL(start.headers.get('location')!).searchParams.get('state')!;
    const [seq, n] = [lastSeq(env.platformId), sessions(env.platformId)];
    const res = await b.fetch(
      `/sso/oidc/callback?error=access_denied&error_description=End-User+aborted&state=${state}`,
    );
    await expectRefused(
      res,
      seq,
      { status: 401, reason: 'idp_error', message: /access_denied: End-User aborted/ },
      n,
    );
  });

  test('an unverified email is refused', async () => {
    const b = browser();
    const { callback: cb } = await throughIdp(b, 'eve');
    const [seq, n] = [lastSeq(env.platformId), sessions(env.platformId)];
    const entry = await expectRefused(
      await callback(b, cb),
      seq,
      { status: 401, reason: 'email_unverified' },
      n,
    );
    expect(entry.target).toBe('email:eve@corp.test');
    const users = withDb(
      env.platformId,
      (db) =>
        db.query<{ n: number }, []>("SELECT count(*) AS n FROM users WHERE email = 'eve@corp.test'").get()!.n,
    );
    expect(users).toBe(0);
  });

  test('with JIT off, an unknown user gets 403 sso.user_not_provisioned and no account', async () => {
    const { client_secret: _s, ...rest } = settings();
    expect((await owner.json('PUT', '/api/v1/sso/oidc', { ...rest, jit: false })).status).toBe(200);
    try {
      idp.setAccount('frank', { email: 'frank@corp.test' });
      const b = browser();
      const { callback: cb } = await throughIdp(b, 'frank');
      const [seq, n] = [lastSeq(env.platformId), sessions(env.platformId)];
      await expectRefused(
        await callback(b, cb),
        seq,
        { status: 403, code: 'sso.user_not_provisioned', reason: 'user_not_provisioned' },
        n,
      );
      const users = withDb(
        env.platformId,
        (db) =>
          db
            .query<{ n: number }, []>("SELECT count(*) AS n FROM users WHERE email = 'frank@corp.test'")
            .get()!.n,
      );
      expect(users).toBe(0);
      // A known user still signs in.
      const known = await signInWithIdp('alice');
      expect(known.res.status).toBe(302);
    } finally {
      expect((await owner.json('PUT', '/api/v1/sso/oidc', { ...rest, jit: true })).status).toBe(200);
    }
  });

  test('a deactivated user is refused', async () => {
    const made = await owner.json<{ user: { id: string } }>('POST', '/api/v1/users', {
      email: 'gina@corp.test',
    });
    expect(
      (await owner.json('PATCH', `/api/v1/users/${made.body.user.id}`, { status: 'disabled' })).status,
    ).toBe(200);
    idp.setAccount('gina', { email: 'gina@corp.test' });
    const b = browser();
    const { callback: cb } = await throughIdp(b, 'gina');
    const [seq, n] = [lastSeq(env.platformId), sessions(env.platformId)];
    const entry = await expectRefused(
      await callback(b, cb),
      seq,
      { status: 401, reason: 'auth.user_disabled', message: /deactivated/ },
      n,
    );
    expect(entry.target).toBe(`user:${made.body.user.id}`);
  });

  test('isolation: a state from platform A is refused on platform B, and still works on A', async () => {
    expect(
      (
        await betaOwner.json('PUT', '/api/v1/sso/oidc', {
          issuer: idp.issuer,
          client_id: 'beta-app',
          client_secret: BETA_SECRET,
        })
      ).status,
    ).toBe(200);
    const a = browser();
    const { callback: cb } = await throughIdp(a, 'bob');
    // The same browser (same cookies) takes acme's callback to beta's host.
    const onBeta = new PlatformClient(env.s.base, betaHost);
    for (const [k, v] of a.jar) onBeta.jar.set(k, v);
    const [seqB, nB, nA] = [lastSeq(beta.id), sessions(beta.id), sessions(env.platformId)];
    await expectAnonymousRefusal(
      await callback(onBeta, cb),
      seqB,
      { status: 400, reason: 'state_unknown', platformId: beta.id },
      nB,
    );
    expect(sessions(env.platformId)).toBe(nA);
    const back = await callback(a, cb);
    expect(back.status).toBe(302);
    expect(sessions(env.platformId)).toBe(nA + 1);
  });

  test('an unknown client: the IdP shows its error, our flow makes no session and says why', async () => {
    expect(
      (
        await betaOwner.json('PUT', '/api/v1/sso/oidc', {
          issuer: idp.issuer,
          client_id: 'nobody-knows-me',
          client_secret: 'whatever-secret',
        })
      ).status,
    ).toBe(200);
    const b = browser(betaHost);
    const n = sessions(beta.id);
    const start = await b.fetch('/sso/oidc/login');
    expect(start.status).toBe(302);
    const authUrl = new URL(start.headers.get('location')!);
    const r = await idp.authorize(authUrl, { login: 'bob' });
    expect(r.kind).toBe('error');
    if (r.kind !== 'error') return;
    expect(r.status).toBe(400);
    expect(r.body).toContain('invalid_client');
    expect(sessions(beta.id)).toBe(n);
    // Should the IdP send the browser back with its error, the callback reports it clearly.
    const seq = lastSeq(beta.id);
    const res = await b.fetch(
      `/sso/oidc/callback?error=invalid_client&state=${authUrl.searchParams.get('state')}`,
    );
    await expectRefused(
      res,
      seq,
      { status: 401, reason: 'idp_error', message: /invalid_client/, platformId: beta.id },
      n,
    );
  });

  test('a wrong client secret: the token endpoint refuses and our callback says invalid_client', async () => {
    expect(
      (
        await betaOwner.json('PUT', '/api/v1/sso/oidc', {
          issuer: idp.issuer,
          client_id: 'beta-app',
          client_secret: 'not-the-secret',
        })
      ).status,
    ).toBe(200);
    const b = browser(betaHost);
    const start = await b.fetch('/sso/oidc/login');
    const r = await idp.authorize(new URL(start.headers.get('location')!), { login: 'bob' });
    if (r.kind !== 'redirect') throw new Error(`IdP error ${r.status}`);
    const [seq, n] = [lastSeq(beta.id), sessions(beta.id)];
    await expectRefused(
      await b.fetch(r.url.pathname + r.url.search),
      seq,
      { status: 401, reason: 'code_exchange_failed', message: /invalid_client/, platformId: beta.id },
      n,
    );
  });

  test('a disabled configuration: login answers 404 and a pending sign-in cannot finish', async () => {
    const b = browser(betaHost);
    const start = await b.fetch('/sso/oidc/login');
    expect(start.status).toBe(302);
    const r = await idp.authorize(new URL(start.headers.get('location')!), { login: 'bob' });
    if (r.kind !== 'redirect') throw new Error(`IdP error ${r.status}`);
    const put = await betaOwner.json<{ oidc: { enabled: boolean } }>('PUT', '/api/v1/sso/oidc', {
      issuer: idp.issuer,
      client_id: 'beta-app',
      client_secret: BETA_SECRET,
      enabled: false,
    });
    expect(put.body.oidc.enabled).toBe(false);
    const login = await b.json<{ error: { code: string } }>('GET', '/sso/oidc/login');
    expect(login.status).toBe(404);
    expect(login.body.error.code).toBe('sso.oidc_not_configured');
    const [seq, n] = [lastSeq(beta.id), sessions(beta.id)];
    await expectRefused(
      await b.fetch(r.url.pathname + r.url.search),
      seq,
      { status: 400, reason: 'not_configured', platformId: beta.id },
      n,
    );
  });
});

describe('sign-ins in flight live in the browser, sealed: anonymous starts write nothing (issue 8, point 9)', () => {
  test('5,000 starts from 5,000 addresses write no row anywhere; a sign-in started before them finishes', async () => {
    const honest = browser();
    const first = await throughIdp(honest, 'bob', { returnTo: '/honest' });
    const before = rowCounts(env.platformId);
    const origin = `http://${acmeHost}`;
    await withDb(env.platformId, async (db) => {
      for (let i = 0; i < 5_000; i++) {
        const started = await startOidcLogin(env.s.app, db, {
          origin,
          returnTo: '/',
          client: { scope: env.platformId, ip: `127.${1 + (i >> 8)}.${i & 255}.9` },
        });
        expect(started.cookie.name).toMatch(/^sf_oidc_[0-9a-f]{16}$/);
      }
    });
    expect(rowCounts(env.platformId)).toEqual(before);
    const res = await callback(honest, first.callback);
    expect(res.status).toBe(302);
    expect(res.headers.get('location')).toBe('/honest');
  }, 60_000);

  test('two tabs of one browser: two sign-ins in flight, finished in the other order, both work', async () => {
    const b = browser();
    const one = await throughIdp(b, 'bob', { returnTo: '/one' });
    const two = await throughIdp(b, 'alice', { returnTo: '/two' });
    expect([...b.jar.keys()].filter((k) => k.startsWith('sf_oidc_')).length).toBe(2);
    const r2 = await callback(b, two.callback);
    expect([r2.status, r2.headers.get('location')]).toEqual([302, '/two']);
    const r1 = await callback(b, one.callback);
    expect([r1.status, r1.headers.get('location')]).toEqual([302, '/one']);
  });

  test('a page that makes a browser start many sign-ins plants at most five cookies; the newest works', async () => {
    const b = browser();
    for (let i = 0; i < 12; i++) expect((await b.fetch('/sso/oidc/login')).status).toBe(302);
    expect([...b.jar.keys()].filter((k) => k.startsWith('sf_oidc_')).length).toBe(5);
    const last = await throughIdp(b, 'bob', { returnTo: '/newest' });
    expect([...b.jar.keys()].filter((k) => k.startsWith('sf_oidc_')).length).toBe(5);
    const res = await callback(b, last.callback);
    expect([res.status, res.headers.get('location')]).toEqual([302, '/newest']);
  });

  test('five sign-ins with the longest return paths keep the Cookie header small (return_to over 512 → /)', async () => {
    const b = browser();
    const long = `/${'p'.repeat(511)}`;
    for (let i = 0; i < 5; i++)
      expect(
        (await b.fetch(`/sso/oidc/login?return_to=${encodeURIComponent(`${long}${'q'.repeat(1480)}`)}`))
          .status,
      ).toBe(302);
    const header = [...b.jar].map(([k, v]) => `${k}=${v}`).join('; ');
    expect(header.length).toBeLessThan(8 * 1024);
    const kept = await throughIdp(b, 'bob', { returnTo: long });
    const res = await callback(b, kept.callback);
    expect([res.status, res.headers.get('location')]).toEqual([302, long]);
  });

  /** Puts a cookie under the sign-in's name in the browser's jar (what an attacker controls). */
  const attacks: {
    name: string;
    cookie: (b: PlatformClient, state: string) => string | null;
    reason: string;
  }[] = [
    { name: 'no cookie (browser binding)', cookie: () => null, reason: 'state_unknown' },
    {
      name: 'a tampered cookie',
      cookie: (b, state) => {
        const v = b.jar.get(oidcCookieName(state))!;
        return `${v.slice(0, -4)}${v.at(-4) === 'A' ? 'B' : 'A'}${v.slice(-3)}`;
      },
      reason: 'state_unknown',
    },
    {
      name: 'a cookie sealed for another kind (SAML)',
      cookie: (b, state) => withDb(env.platformId, (db) => sealPending(db, 'saml', pendingOf(b, state))),
      reason: 'state_unknown',
    },
    {
      name: 'a cookie sealed on platform B',
      cookie: (b, state) => withDb(beta.id, (db) => sealPending(db, 'oidc', pendingOf(b, state))),
      reason: 'state_unknown',
    },
    {
      name: "another sign-in's cookie under this state's name",
      cookie: () =>
        withDb(env.platformId, (db) => sealPending(db, 'oidc', { state: 'other', exp: Date.now() + 60_000 })),
      reason: 'state_unknown',
    },
  ];
  for (const c of attacks) {
    test(`refused, not audited, and the real cookie still works: ${c.name}`, async () => {
      const b = browser();
      const { state, callback: cb } = await throughIdp(b, 'bob');
      const real = b.jar.get(oidcCookieName(state))!;
      const forged = c.cookie(b, state);
      const attacker = browser();
      if (forged !== null) attacker.jar.set(oidcCookieName(state), forged);
      const [seq, n] = [lastSeq(env.platformId), sessions(env.platformId)];
      await expectAnonymousRefusal(await callback(attacker, cb), seq, { status: 400, reason: c.reason }, n);
      expect(b.jar.get(oidcCookieName(state))).toBe(real);
      expect((await callback(b, cb)).status).toBe(302);
    });
  }

  test('a cookie replayed after a successful sign-in: refused, audited once, then only logged', async () => {
    const b = browser();
    const { state, callback: cb } = await throughIdp(b, 'bob');
    const stolen = b.jar.get(oidcCookieName(state))!;
    expect((await callback(b, cb)).status).toBe(302);
    const used = withDb(
      env.platformId,
      (db) => db.query<{ n: number }, []>("SELECT count(*) AS n FROM sso_used WHERE kind = 'oidc'").get()!.n,
    );
    expect(used).toBeGreaterThan(0);
    const thief = browser();
    thief.jar.set(oidcCookieName(state), stolen);
    const [seq, n] = [lastSeq(env.platformId), sessions(env.platformId)];
    await expectRefused(await callback(thief, cb), seq, { status: 400, reason: 'state_replayed' }, n);
    const seq2 = lastSeq(env.platformId);
    await expectAnonymousRefusal(
      await callback(thief, cb),
      seq2,
      { status: 400, reason: 'state_replayed' },
      n,
    );
  });
});

describe('the IdP is reached only through the outbound guard', () => {
  /** Swaps the instance's guard for the duration of `fn` (the App's field is read at each call). */
  async function withGuard<T>(guard: OutboundGuard, fn: () => Promise<T>): Promise<T> {
    const app = env.s.app as { outbound: OutboundGuard };
    const real = app.outbound;
    app.outbound = guard;
    try {
      return await fn();
    } finally {
      app.outbound = real;
    }
  }

  test('discovery, token and userinfo calls all pass the guard', async () => {
    const real = env.s.app.outbound;
    const seen: string[] = [];
    const spy: OutboundGuard = {
      allow: real.allow,
      checkTarget: (u, s) => real.checkTarget(u, s),
      fetch: (u, init) => {
        seen.push(`${init?.method ?? 'GET'} ${new URL(String(u)).pathname}`);
        return real.fetch(u, init);
      },
    };
    await withGuard(spy, async () => {
      // A fresh save: new discovery, and a new client configuration (so the JWKS is fetched again).
      expect((await owner.json('PUT', '/api/v1/sso/oidc', settings())).status).toBe(200);
      const { res } = await signInWithIdp('alice');
      expect(res.status).toBe(302);
    });
    // No JWKS fetch: openid-client trusts an ID token that came straight from the token endpoint
    // over the connection it opened (OIDC Core 3.1.3.7); were keys needed, they would come this way.
    expect(seen).toEqual(['GET /.well-known/openid-configuration', 'POST /token', 'GET /me']);
  });

  test('when the IdP stops passing the guard after the save (rebinding), the callback is refused', async () => {
    expect((await owner.json('PUT', '/api/v1/sso/oidc', settings())).status).toBe(200);
    // The same instance without its allow list: 127.0.0.1 is now a refused address.
    const strict = createOutboundGuard({});
    const b = browser();
    const { callback: cb } = await throughIdp(b, 'alice');
    const [seq, n] = [lastSeq(env.platformId), sessions(env.platformId)];
    const res = await withGuard(strict, () => callback(b, cb));
    const failed = await expectRefused(
      res,
      seq,
      { status: 401, reason: 'code_exchange_failed', message: /could not be reached/ },
      n,
    );
    // The refusal says nothing of the address or why it was refused.
    expect(String(failed.details.message)).not.toMatch(new RegExp(`${idp.port}|loopback|forbidden`));
  });
});
