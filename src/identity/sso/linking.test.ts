import type { Database } from 'bun:sqlite';
import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import net from 'node:net';
import { type OidcPeer, startOidcProvider } from '../../../tests/peers/oidc-provider.ts';
import { PlatformClient, serverWithPlatform } from '../../../tests/platform-client.ts';
import { issueEmailToken } from '../accounts/auth.service.ts';
import { createUserRepository } from '../accounts/users.repository.ts';
import { readOutbox } from '../mail/outbox.ts';
import { assertMayMapOwner, type OwnerMapping, SSO_STARTS_PER_MIN } from './sso.ts';

// Issue 8, point 1: an admin must not become owner. SSO links an identity to an existing
// account only deliberately (already linked, provisioned for SSO, or by an owner-set per-IdP
// setting; never an owner, never an unconfirmed password account), and owners are managed by
// owners only on every path: the users API, SCIM and the settings.

const SECRET = 'link-app-secret-0123456789';
const PASSWORD = 'a-long-password-1';

let env: Awaited<ReturnType<typeof serverWithPlatform>>;
let host: string;
let idp: OidcPeer;
let owner: PlatformClient;
let admin: PlatformClient;
let ids: { owner: string; owner2: string; admin: string; pw: string; confirmed: string };
let scimToken: string;

const browser = () => new PlatformClient(env.s.base, host);

function withDb<T>(fn: (db: Database) => T): T {
  const lease = env.s.app.platformDbs.acquire(env.platformId);
  try {
    return fn(lease.db);
  } finally {
    lease.release();
  }
}
const lastSeq = () =>
  withDb((db) => db.query<{ s: number }, []>('SELECT coalesce(max(seq), 0) AS s FROM audit_log').get()!.s);
const auditSince = (seq: number) =>
  withDb((db) =>
    db
      .query<{ actor: string; action: string; target: string; details: string }, [number]>(
        'SELECT actor, action, target, details FROM audit_log WHERE seq > ? ORDER BY seq',
      )
      .all(seq)
      .map((e) => ({ ...e, details: JSON.parse(e.details) as Record<string, unknown> })),
  );
const linksOf = (userId: string) =>
  withDb(
    (db) =>
      db
        .query<{ n: number }, [string]>('SELECT count(*) AS n FROM sso_identities WHERE user_id = ?')
        .get(userId)!.n,
  );

/** The settings the admin saves: an IdP the admin controls (the attack's premise). */
const settings = (extra: Record<string, unknown> = {}) => ({
  issuer: idp.issuer,
  client_id: 'link-app',
  client_secret: SECRET,
  scopes: ['openid', 'email', 'profile'],
  ...extra,
});

/** A whole OIDC sign-in as `login` at the IdP, in a fresh browser; the callback's answer. */
async function ssoSignIn(
  login: string,
): Promise<{ res: Response; b: PlatformClient; code: string | null; message: string | null }> {
  const b = browser();
  const start = await b.fetch('/sso/oidc/login');
  expect(start.status).toBe(302);
  const r = await idp.authorize(new URL(start.headers.get('location')!), { login });
  if (r.kind !== 'redirect') throw new Error(`IdP error ${r.status}: ${r.body.slice(0, 300)}`);
  const res = await b.fetch(r.url.pathname + r.url.search);
  const error =
    res.status >= 400 ? ((await res.json()) as { error: { code: string; message: string } }).error : null;
  return { res, b, code: error?.code ?? null, message: error?.message ?? null };
}

const sessionSet = (res: Response) =>
  res.headers.getSetCookie().some((c) => c.startsWith('sf_session=') && !/Max-Age=0/.test(c));

async function makeUser(body: Record<string, unknown>): Promise<string> {
  const r = await owner.json<{ user: { id: string } }>('POST', '/api/v1/users', body);
  if (r.status !== 201) throw new Error(`create user: ${r.status} ${JSON.stringify(r.body)}`);
  return r.body.user.id;
}

beforeAll(async () => {
  env = await serverWithPlatform('linkco', {}, { config: { outbound: { allow: ['127.0.0.1/32'] } } });
  host = `linkco.localhost:${env.s.port}`;
  owner = browser();
  expect((await owner.signIn(env.owner.email, env.owner.password)).status).toBe(200);
  const me = await owner.json<{ user: { id: string } }>('GET', '/api/v1/me');
  ids = {
    owner: me.body.user.id,
    owner2: await makeUser({ email: 'second-owner@linkco.test', password: PASSWORD, role: 'owner' }),
    admin: await makeUser({ email: 'admin@linkco.test', password: PASSWORD, role: 'admin' }),
    pw: await makeUser({ email: 'pw@linkco.test', password: PASSWORD }),
    confirmed: await makeUser({ email: 'confirmed@linkco.test', password: PASSWORD }),
  };
  withDb((db) =>
    db.query('UPDATE users SET email_verified_at = ? WHERE id = ?').run(Date.now(), ids.confirmed),
  );
  admin = browser();
  expect((await admin.signIn('admin@linkco.test', PASSWORD)).status).toBe(200);
  const t = await admin.json<{ token: string }>('POST', '/api/v1/scim/tokens', { name: 'admin-made' });
  expect(t.status).toBe(201);
  scimToken = t.body.token;
  idp = await startOidcProvider({
    clients: [
      { client_id: 'link-app', client_secret: SECRET, redirect_uris: [`http://${host}/sso/oidc/callback`] },
    ],
    accounts: {
      // The admin's IdP asserts whatever email the admin likes, verified.
      twin: { email: env.owner.email },
      twin2: { email: 'SECOND-OWNER@linkco.test' },
      pwtwin: { email: 'pw@linkco.test' },
      conftwin: { email: 'confirmed@linkco.test' },
      nover: { email: 'nover@linkco.test', email_verified: undefined },
      strver: { email: 'strver@linkco.test', email_verified: 'true' },
      falsever: { email: 'falsever@linkco.test', email_verified: false },
      newbie: { email: 'newbie@linkco.test' },
      invitee: { email: 'invitee@linkco.test' },
      mailinvite: { email: 'mail-invite@linkco.test' },
      lateinvite: { email: 'late-invite@linkco.test' },
      'okta-00u1': { email: 'renamed-at-idp@linkco.test' },
      invitepw: { email: 'invite-pw@linkco.test' },
      inviteonce: { email: 'invite-once@linkco.test' },
      inviteonce2: { email: 'invite-once@linkco.test' },
      intruder: { email: 'intruder@evil.test' },
      mine: { email: 'mine-at-idp@linkco.test' },
    },
  });
  // The admin may set up SSO (no owner signs in through it yet).
  const put = await admin.json('PUT', '/api/v1/sso/oidc', settings());
  expect(put.status).toBe(200);
}, 30_000);

afterAll(async () => {
  await idp?.stop();
  await env?.s.cleanup();
});

describe('SSO linking attacks: refused, no session, audited', () => {
  const cases: {
    name: string;
    login: string;
    status: number;
    code: string;
    reason: string;
    /** The account the attempt aimed at (audit target, and it must stay unlinked). */
    victim?: () => string;
  }[] = [
    {
      name: "the admin's IdP asserts the owner's email",
      login: 'twin',
      status: 409,
      code: 'sso.account_exists',
      reason: 'account_exists',
      victim: () => ids.owner,
    },
    {
      name: "the admin's IdP asserts another owner's email, in another case",
      login: 'twin2',
      status: 409,
      code: 'sso.account_exists',
      reason: 'account_exists',
      victim: () => ids.owner2,
    },
    {
      name: "a password account's email (unconfirmed), linking by email off",
      login: 'pwtwin',
      status: 409,
      code: 'sso.account_exists',
      reason: 'account_exists',
      victim: () => ids.pw,
    },
    {
      name: "a confirmed password account's email, linking by email off",
      login: 'conftwin',
      status: 409,
      code: 'sso.account_exists',
      reason: 'account_exists',
      victim: () => ids.confirmed,
    },
    {
      name: 'email_verified missing (no claim is no verification)',
      login: 'nover',
      status: 401,
      code: 'sso.oidc_failed',
      reason: 'email_unverified',
    },
    {
      name: 'email_verified "true" as a string',
      login: 'strver',
      status: 401,
      code: 'sso.oidc_failed',
      reason: 'email_unverified',
    },
    {
      name: 'email_verified false',
      login: 'falsever',
      status: 401,
      code: 'sso.oidc_failed',
      reason: 'email_unverified',
    },
  ];
  for (const c of cases) {
    test(c.name, async () => {
      const seq = lastSeq();
      const { res, code } = await ssoSignIn(c.login);
      expect(res.status).toBe(c.status);
      expect(code).toBe(c.code);
      expect(sessionSet(res)).toBe(false);
      const entries = auditSince(seq);
      expect(entries.some((e) => e.action === 'user.signed_in' || e.action === 'user.sso_linked')).toBe(
        false,
      );
      const failed = entries.filter((e) => e.action === 'user.sign_in_failed');
      expect(failed).toHaveLength(1);
      expect(failed[0]!.details.reason).toBe(c.reason);
      if (c.victim) {
        expect(failed[0]!.target).toBe(`user:${c.victim()}`);
        expect(linksOf(c.victim())).toBe(0);
      }
    });
  }

  test('the refusal says how to link: sign in with the password, or ask an owner', async () => {
    const { message } = await ssoSignIn('twin');
    expect(message).toMatch(/sign in with its password and link it from there, or ask an owner/);
  });
});

describe('deliberate links still work', () => {
  test('a brand-new email is created just in time and linked', async () => {
    const { res, b } = await ssoSignIn('newbie');
    expect(res.status).toBe(302);
    const me = await b.json<{ user: { email: string; id: string }; role: string }>('GET', '/api/v1/me');
    expect(me.body.user.email).toBe('newbie@linkco.test');
    expect(me.body.role).toBe('member');
    // The second sign-in finds the link (a).
    const again = await ssoSignIn('newbie');
    expect(again.res.status).toBe(302);
    expect(linksOf(me.body.user.id)).toBe(1);
  });

  test('an invited account (added without a password) links on its first SSO sign-in', async () => {
    const id = await makeUser({ email: 'invitee@linkco.test' });
    const seq = lastSeq();
    const { res, b } = await ssoSignIn('invitee');
    expect(res.status).toBe(302);
    expect((await b.json<{ user: { id: string } }>('GET', '/api/v1/me')).body.user.id).toBe(id);
    const linked = auditSince(seq).find((e) => e.action === 'user.sso_linked')!;
    expect(linked.details).toMatchObject({ kind: 'oidc', subject: 'invitee', via: 'provisioned' });
  });

  test('an invitation (POST /invitations) is accepted by the invitee signing in with SSO: the invite binds the email', async () => {
    const inv = await owner.json<{ invitation: { id: string; user_id: string } }>(
      'POST',
      '/api/v1/invitations',
      {
        email: 'mail-invite@linkco.test',
        role: 'creator',
      },
    );
    expect(inv.status).toBe(201);
    const { res, b } = await ssoSignIn('mailinvite');
    expect(res.status).toBe(302);
    const me = await b.json<{ user: { id: string; role: string } }>('GET', '/api/v1/me');
    expect(me.body.user).toMatchObject({ id: inv.body.invitation.user_id, role: 'creator' });
    const list = await owner.json<{ invitations: { id: string; status: string }[] }>(
      'GET',
      '/api/v1/invitations',
    );
    expect(list.body.invitations.find((i) => i.id === inv.body.invitation.id)?.status).toBe('accepted');
    // The mailed link no longer works once the account is claimed.
    const token = withDb((db) => readOutbox(db, { to: 'mail-invite@linkco.test', template: 'invitation' }))
      .at(-1)!
      .body.match(/token=([A-Za-z0-9_-]+)/)![1]!;
    const late = await browser().json('POST', '/api/v1/invitations/accept', { token, password: PASSWORD });
    expect(late.status).toBe(400);
  });

  test('an expired invitation no longer links by SSO (found by review): refused, the placeholder stays unclaimed', async () => {
    const inv = await owner.json<{ invitation: { id: string; user_id: string } }>(
      'POST',
      '/api/v1/invitations',
      { email: 'late-invite@linkco.test', role: 'creator' },
    );
    expect(inv.status).toBe(201);
    // The invitation's week has passed (the server's clock is the wall clock: move the expiry).
    withDb((db) =>
      db.query('UPDATE invitations SET expires_at = 1 WHERE id = ?').run(inv.body.invitation.id),
    );
    const { res, code, message } = await ssoSignIn('lateinvite');
    expect(res.status).toBe(409);
    expect(code).toBe('sso.account_exists');
    expect(message).toContain('invitation has expired');
    const list = await owner.json<{ invitations: { id: string; status: string }[] }>(
      'GET',
      '/api/v1/invitations',
    );
    expect(list.body.invitations.find((i) => i.id === inv.body.invitation.id)?.status).toBe('expired');
  });

  test("a SCIM-provisioned account links by the IdP's subject (its externalId), whatever the email", async () => {
    const made = await fetch(`${env.s.base}/scim/v2/Users`, {
      method: 'POST',
      headers: {
        host,
        authorization: `Bearer ${scimToken}`,
        'content-type': 'application/scim+json',
      },
      body: JSON.stringify({ userName: 'provisioned@linkco.test', externalId: 'okta-00u1' }),
    });
    expect(made.status).toBe(201);
    const id = ((await made.json()) as { id: string }).id;
    const { res, b } = await ssoSignIn('okta-00u1');
    expect(res.status).toBe(302);
    expect((await b.json<{ user: { id: string } }>('GET', '/api/v1/me')).body.user.id).toBe(id);
  });

  test('only an owner turns on link_existing_by_email; then confirmed accounts link, owners and unconfirmed ones never', async () => {
    const byAdmin = await admin.json<{ error: { code: string; details: { path: string }[] } }>(
      'PUT',
      '/api/v1/sso/oidc',
      settings({ link_existing_by_email: true }),
    );
    expect(byAdmin.status).toBe(403);
    expect(byAdmin.body.error.details.map((d) => d.path)).toEqual(['/link_existing_by_email']);
    const byOwner = await owner.json<{ oidc: { link_existing_by_email: boolean } }>(
      'PUT',
      '/api/v1/sso/oidc',
      settings({ link_existing_by_email: true }),
    );
    expect(byOwner.status).toBe(200);
    expect(byOwner.body.oidc.link_existing_by_email).toBe(true);
    try {
      expect((await ssoSignIn('twin')).code).toBe('sso.account_exists');
      expect((await ssoSignIn('pwtwin')).code).toBe('sso.account_exists');
      const ok = await ssoSignIn('conftwin');
      expect(ok.res.status).toBe(302);
      expect((await ok.b.json<{ user: { id: string } }>('GET', '/api/v1/me')).body.user.id).toBe(
        ids.confirmed,
      );
      // An admin's later save of the same IdP keeps it; another IdP turns it off.
      const keep = await admin.json<{ oidc: { link_existing_by_email: boolean } }>(
        'PUT',
        '/api/v1/sso/oidc',
        settings({ jit: true }),
      );
      expect(keep.body.oidc.link_existing_by_email).toBe(true);
    } finally {
      await owner.json('PUT', '/api/v1/sso/oidc', settings({ link_existing_by_email: false }));
    }
  });

  test('a link belongs to its IdP: the same subject at another issuer reaches nothing', async () => {
    // A link made (e.g. before this release) for the owner at another IdP, same subject.
    withDb((db) =>
      db
        .query(
          "INSERT INTO sso_identities (kind, issuer, subject, user_id, created_at) VALUES ('oidc', 'https://old-idp.example', 'twin', ?, 0)",
        )
        .run(ids.owner),
    );
    try {
      expect((await ssoSignIn('twin')).code).toBe('sso.account_exists');
    } finally {
      withDb((db) => db.query("DELETE FROM sso_identities WHERE issuer = 'https://old-idp.example'").run());
    }
  });

  test('once an owner signs in through the IdP, only an owner may replace it; SSO never demotes the owner', async () => {
    withDb((db) =>
      db
        .query(
          "INSERT INTO sso_identities (kind, issuer, subject, user_id, created_at) VALUES ('oidc', ?, 'twin', ?, 0)",
        )
        .run(idp.issuer, ids.owner2),
    );
    try {
      // The owner's link works (a), and a role claim mapping to admin leaves the owner an owner.
      const put = await admin.json('PUT', '/api/v1/sso/oidc', {
        ...settings(),
        scopes: ['openid', 'email', 'profile', 'groups'],
        role_claim: 'groups',
        default_role: 'member',
      });
      expect(put.status).toBe(200);
      const { res, b } = await ssoSignIn('twin');
      expect(res.status).toBe(302);
      expect((await b.json<{ role: string; user: { id: string } }>('GET', '/api/v1/me')).body).toMatchObject({
        role: 'owner',
        user: { id: ids.owner2 },
      });
      const moved = await admin.json<{ error: { code: string } }>(
        'PUT',
        '/api/v1/sso/oidc',
        settings({ issuer: `${idp.issuer}/`, client_secret: SECRET }),
      );
      expect(moved.status).toBe(403);
      expect(moved.body.error.code).toBe('sso.owner_linked');
    } finally {
      withDb((db) => db.query("DELETE FROM sso_identities WHERE subject = 'twin'").run());
      await owner.json('PUT', '/api/v1/sso/oidc', settings());
    }
  });
});

// Red-team (issue 8, point 1): taking the IdP away from an owner who signs in through it is
// managing the owner too: with password sign-in off (or no password) the owner is locked out.
describe('once an owner signs in through the IdP, an admin cannot remove or switch it off', () => {
  const cases: { name: string; send: () => Promise<Response> }[] = [
    { name: 'DELETE the OIDC settings', send: () => admin.fetch('/api/v1/sso/oidc', { method: 'DELETE' }) },
    {
      name: 'save the same IdP with enabled: false',
      send: () => admin.fetch('/api/v1/sso/oidc', { method: 'PUT', json: settings({ enabled: false }) }),
    },
  ];
  for (const c of cases) {
    test(c.name, async () => {
      withDb((db) =>
        db
          .query(
            "INSERT INTO sso_identities (kind, issuer, subject, user_id, created_at) VALUES ('oidc', ?, 'twin', ?, 0)",
          )
          .run(idp.issuer, ids.owner2),
      );
      try {
        const res = await c.send();
        expect(res.status).toBe(403);
        expect(((await res.json()) as { error: { code: string } }).error.code).toBe('sso.owner_linked');
        const now = await owner.json<{ oidc: { enabled: boolean } }>('GET', '/api/v1/sso/oidc');
        expect(now.status).toBe(200);
        expect(now.body.oidc.enabled).toBe(true);
        // The owner still signs in through it.
        expect((await ssoSignIn('twin')).res.status).toBe(302);
      } finally {
        withDb((db) => db.query("DELETE FROM sso_identities WHERE subject = 'twin'").run());
        await owner.json('PUT', '/api/v1/sso/oidc', settings());
      }
    });
  }

  test('an owner may, and an admin may while no owner signs in through it', async () => {
    expect((await admin.json('PUT', '/api/v1/sso/oidc', settings({ enabled: false }))).status).toBe(200);
    expect((await admin.json('PUT', '/api/v1/sso/oidc', settings())).status).toBe(200);
    withDb((db) =>
      db
        .query(
          "INSERT INTO sso_identities (kind, issuer, subject, user_id, created_at) VALUES ('oidc', ?, 'twin', ?, 0)",
        )
        .run(idp.issuer, ids.owner2),
    );
    try {
      expect((await owner.json('PUT', '/api/v1/sso/oidc', settings({ enabled: false }))).status).toBe(200);
    } finally {
      withDb((db) => db.query("DELETE FROM sso_identities WHERE subject = 'twin'").run());
      await owner.json('PUT', '/api/v1/sso/oidc', settings());
    }
  });
});

describe('owners are managed by owners: an admin is refused on every path', () => {
  const scim = (method: string, path: string, body?: unknown) =>
    fetch(`${env.s.base}/scim/v2${path}`, {
      method,
      headers: {
        host,
        authorization: `Bearer ${scimToken}`,
        ...(body === undefined ? {} : { 'content-type': 'application/scim+json' }),
      },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  const patchOp = (...ops: unknown[]) => ({
    schemas: ['urn:ietf:params:scim:api:messages:2.0:PatchOp'],
    Operations: ops,
  });
  const cases: {
    name: string;
    send: () => Promise<Response>;
    status: number;
    code?: string;
  }[] = [
    {
      name: 'users API: deactivate an owner',
      send: () =>
        admin.fetch(`/api/v1/users/${ids.owner2}`, { method: 'PATCH', json: { status: 'disabled' } }),
      status: 403,
      code: 'user.owner_protected',
    },
    {
      name: 'users API: demote an owner',
      send: () => admin.fetch(`/api/v1/users/${ids.owner2}`, { method: 'PATCH', json: { role: 'member' } }),
      status: 403,
      code: 'auth.forbidden',
    },
    {
      name: 'users API: make themselves owner',
      send: () => admin.fetch(`/api/v1/users/${ids.admin}`, { method: 'PATCH', json: { role: 'owner' } }),
      status: 403,
      code: 'auth.forbidden',
    },
    {
      name: 'users API: create an owner',
      send: () =>
        admin.fetch('/api/v1/users', { method: 'POST', json: { email: 'o3@linkco.test', role: 'owner' } }),
      status: 403,
      code: 'auth.forbidden',
    },
    {
      name: "SCIM: rename an owner's userName (then reset its password)",
      send: () =>
        scim(
          'PATCH',
          `/Users/${ids.owner2}`,
          patchOp({ op: 'replace', path: 'userName', value: 'attacker@evil.test' }),
        ),
      status: 403,
    },
    {
      name: "SCIM: rename an owner's userName through a path-less value object",
      send: () =>
        scim(
          'PATCH',
          `/Users/${ids.owner2}`,
          patchOp({ op: 'replace', value: { userName: 'attacker@evil.test' } }),
        ),
      status: 403,
    },
    {
      name: 'SCIM: PUT an owner with another userName',
      send: () => scim('PUT', `/Users/${ids.owner2}`, { userName: 'attacker@evil.test' }),
      status: 403,
    },
    {
      name: "SCIM: change an owner's displayName",
      send: () =>
        scim('PATCH', `/Users/${ids.owner2}`, patchOp({ op: 'replace', path: 'displayName', value: 'x' })),
      status: 403,
    },
    {
      name: 'SCIM: deactivate an owner',
      send: () =>
        scim('PATCH', `/Users/${ids.owner2}`, patchOp({ op: 'replace', path: 'active', value: false })),
      status: 403,
    },
    {
      name: 'SCIM: deactivate an owner, Entra style ("False")',
      send: () =>
        scim('PATCH', `/Users/${ids.owner2}`, patchOp({ op: 'Replace', path: 'active', value: 'False' })),
      status: 403,
    },
    {
      name: 'SCIM: delete an owner',
      send: () => scim('DELETE', `/Users/${ids.owner2}`),
      status: 403,
    },
    {
      name: 'settings: let SCIM manage owners',
      send: () =>
        admin.fetch('/api/v1/settings/identity', { method: 'PATCH', json: { scim_manages_owners: true } }),
      status: 403,
      code: 'auth.forbidden',
    },
    {
      name: 'settings: turn off password sign-in (the owners’ own way in)',
      send: () =>
        admin.fetch('/api/v1/settings/identity', { method: 'PATCH', json: { password_login: false } }),
      status: 403,
      code: 'auth.forbidden',
    },
  ];
  for (const c of cases) {
    test(c.name, async () => {
      const before = withDb((db) => db.query('SELECT * FROM users WHERE role = ? ORDER BY id').all('owner'));
      const res = await c.send();
      expect(res.status).toBe(c.status);
      const body = (await res.json()) as { error?: { code: string }; detail?: string };
      if (c.code) expect(body.error?.code).toBe(c.code);
      else expect(body.detail).toMatch(/may not .* an owner account/);
      // Nothing about any owner changed.
      expect(withDb((db) => db.query('SELECT * FROM users WHERE role = ? ORDER BY id').all('owner'))).toEqual(
        before,
      );
    });
  }

  test('an owner may do these; SCIM may once an owner grants it, and reading an owner stays open', async () => {
    expect((await scim('GET', `/Users/${ids.owner2}`)).status).toBe(200);
    const grant = await owner.json('PATCH', '/api/v1/settings/identity', { scim_manages_owners: true });
    expect(grant.status).toBe(200);
    try {
      const renamed = await scim(
        'PATCH',
        `/Users/${ids.owner2}`,
        patchOp({ op: 'replace', path: 'displayName', value: 'Second Owner' }),
      );
      expect(renamed.status).toBe(200);
    } finally {
      await owner.json('PATCH', '/api/v1/settings/identity', { scim_manages_owners: false });
    }
    const off = await owner.json('PATCH', `/api/v1/users/${ids.owner2}`, { status: 'disabled' });
    expect(off.status).toBe(200);
    const on = await owner.json('PATCH', `/api/v1/users/${ids.owner2}`, { status: 'active' });
    expect(on.status).toBe(200);
  });

  test('an admin may still require MFA of other roles, but not stop requiring it of owners', async () => {
    expect(
      (await owner.json('PATCH', '/api/v1/settings/identity', { mfa_required_roles: ['owner'] })).status,
    ).toBe(200);
    try {
      expect(
        (await admin.json('PATCH', '/api/v1/settings/identity', { mfa_required_roles: ['owner', 'auditor'] }))
          .status,
      ).toBe(200);
      const drop = await admin.json<{ error: { details: { path: string }[] } }>(
        'PATCH',
        '/api/v1/settings/identity',
        { mfa_required_roles: ['auditor'] },
      );
      expect(drop.status).toBe(403);
      expect(drop.body.error.details.map((d) => d.path)).toEqual(['/mfa_required_roles']);
    } finally {
      await owner.json('PATCH', '/api/v1/settings/identity', { mfa_required_roles: [] });
    }
  });
});

describe('OIDC starts are limited per address (issue 8, point 9)', () => {
  /** A GET from a chosen local address (127.0.0.x) to the server on 127.0.0.1, over a raw socket. */
  function getFrom(localAddress: string, hostHeader: string, path: string): Promise<number> {
    return new Promise((resolve, reject) => {
      const sock = net.connect({ host: '127.0.0.1', port: env.s.port, localAddress });
      let out = '';
      sock.on('connect', () =>
        sock.write(
          `GET ${path} HTTP/1.1\r\nHost: ${hostHeader}\r\nAccept: application/json\r\nConnection: close\r\n\r\n`,
        ),
      );
      sock.on('data', (d) => {
        out += d.toString('latin1');
      });
      sock.on('close', () => resolve(Number(out.split(' ')[1])));
      sock.on('error', reject);
    });
  }

  test('one address flooding /sso/oidc/login gets 429 and writes no rows; another address still starts', async () => {
    const seq = lastSeq();
    let started = 0;
    let status = 0;
    for (let i = 0; i < SSO_STARTS_PER_MIN * 2; i++) {
      status = await getFrom('127.0.0.3', host, '/sso/oidc/login');
      if (status !== 302) break;
      started++;
    }
    expect(status).toBe(429);
    expect(started).toBeGreaterThanOrEqual(SSO_STARTS_PER_MIN);
    expect(started).toBeLessThan(SSO_STARTS_PER_MIN + 10);
    const before = withDb(
      (db) =>
        db.query<{ n: number }, []>("SELECT count(*) AS n FROM sso_requests WHERE kind = 'oidc'").get()!.n,
    );
    for (let i = 0; i < 20; i++) expect(await getFrom('127.0.0.3', host, '/sso/oidc/login')).toBe(429);
    const after = withDb(
      (db) =>
        db.query<{ n: number }, []>("SELECT count(*) AS n FROM sso_requests WHERE kind = 'oidc'").get()!.n,
    );
    expect(after).toBe(before);
    // Nor did the accepted starts: a sign-in in flight lives sealed in its browser's cookie.
    expect(before).toBe(0);
    expect(await getFrom('127.0.0.4', host, '/sso/oidc/login')).toBe(302);
    // Starting a sign-in is not an audited event, refused or not.
    expect(auditSince(seq)).toEqual([]);
  });
});

describe('link while signed in (re-authenticated)', () => {
  /** A fresh password sign-in of `email`, then POST /api/v1/sso/oidc/link and the IdP as `login`. */
  async function linkAs(email: string, password: string, login: string) {
    const b = browser();
    expect((await b.signIn(email, password)).status).toBe(200);
    const start = await b.json<{ url: string; error?: { code: string } }>('POST', '/api/v1/sso/oidc/link', {
      return_to: '/settings',
    });
    if (start.status !== 200) return { status: start.status, code: start.body.error?.code, b };
    const r = await idp.authorize(new URL(start.body.url), { login });
    if (r.kind !== 'redirect') throw new Error(`IdP error ${r.status}`);
    const res = await b.fetch(r.url.pathname + r.url.search);
    const code =
      res.status >= 400 ? ((await res.json()) as { error: { code: string } }).error.code : undefined;
    return { status: res.status, code, b, res };
  }

  test('an owner links an identity to their own account; it then signs them in', async () => {
    const seq = lastSeq();
    const r = await linkAs('second-owner@linkco.test', PASSWORD, 'twin2');
    expect(r.status).toBe(302);
    expect(r.res!.headers.get('location')).toBe('/settings');
    const linked = auditSince(seq).find((e) => e.action === 'user.sso_linked')!;
    expect(linked.actor).toBe(`user:${ids.owner2}`);
    expect(linked.details).toMatchObject({ subject: 'twin2', via: 'signed_in' });
    const later = await ssoSignIn('twin2');
    expect(later.res.status).toBe(302);
    expect((await later.b.json<{ user: { id: string } }>('GET', '/api/v1/me')).body.user.id).toBe(ids.owner2);
  });

  const refusals: {
    name: string;
    send: () => Promise<{ status: number; code?: string | undefined }>;
    status: number;
    code: string;
  }[] = [
    {
      name: 'an identity already linked to another account',
      send: () => linkAs('admin@linkco.test', PASSWORD, 'newbie'),
      status: 409,
      code: 'sso.identity_linked_elsewhere',
    },
    {
      name: 'without the CSRF token (another site cannot start a link)',
      send: async () => {
        const b = browser();
        await b.signIn('admin@linkco.test', PASSWORD);
        b.csrf = null;
        const r = await b.json<{ error: { code: string } }>('POST', '/api/v1/sso/oidc/link', {});
        return { status: r.status, code: r.body.error.code };
      },
      status: 403,
      code: 'auth.csrf',
    },
    {
      name: 'a session whose sign-in is older than the re-authentication window',
      send: async () => {
        const b = browser();
        await b.signIn('admin@linkco.test', PASSWORD);
        withDb((db) =>
          db
            .query('UPDATE sessions SET created_at = created_at - ? WHERE user_id = ?')
            .run(16 * 60_000, ids.admin),
        );
        const r = await b.json<{ error: { code: string } }>('POST', '/api/v1/sso/oidc/link', {});
        return { status: r.status, code: r.body.error.code };
      },
      status: 403,
      code: 'sso.reauth_required',
    },
    {
      name: 'an API key (a key is no re-authentication)',
      send: async () => {
        const made = await admin.json<{ key: string }>('POST', '/api/v1/api-keys', { name: 'linker' });
        const b = browser();
        b.bearer = made.body.key;
        const r = await b.json<{ error: { code: string } }>('POST', '/api/v1/sso/oidc/link', {});
        return { status: r.status, code: r.body.error.code };
      },
      status: 403,
      code: 'auth.forbidden',
    },
  ];
  for (const c of refusals) {
    test(`refused: ${c.name}`, async () => {
      const r = await c.send();
      expect([r.status, r.code]).toEqual([c.status, c.code]);
      expect(linksOf(ids.admin)).toBe(0);
    });
  }
});

// Issue 8 follow-up (points 1 and 3 of the red-team round): account recovery and linking.

/** Issues a one-time email link to `userId` as the server would, and answers its token (from the outbox). */
function mailLink(userId: string, purpose: 'verify_email' | 'reset_password'): string {
  return withDb((db) => {
    const u = createUserRepository({ db }).byId(userId)!;
    issueEmailToken(env.s.app, db, u, purpose, `http://${host}`);
    const body = readOutbox(db, { to: u.email, template: purpose, includeSent: true }).at(-1)!.body;
    return /token=([A-Za-z0-9_-]+)/.exec(body)![1]!;
  });
}
const resetWith = (token: string, password = 'a-brand-new-password-9') =>
  browser().fetch('/api/v1/auth/password-reset/confirm', { method: 'POST', json: { token, password } });
const verifyWith = (token: string) =>
  browser().fetch('/api/v1/auth/verify-email', { method: 'POST', json: { token } });
const scimCall = (method: string, path: string, body?: unknown) =>
  fetch(`${env.s.base}/scim/v2${path}`, {
    method,
    headers: {
      host,
      authorization: `Bearer ${scimToken}`,
      ...(body === undefined ? {} : { 'content-type': 'application/scim+json' }),
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
const patchOps = (...ops: unknown[]) => ({
  schemas: ['urn:ietf:params:scim:api:messages:2.0:PatchOp'],
  Operations: ops,
});
const userRow = (id: string) => withDb((db) => createUserRepository({ db }).byId(id)!);
const linkRows = (userId: string) =>
  withDb((db) =>
    db
      .query<{ subject: string; via: string }, [string]>(
        'SELECT subject, via FROM sso_identities WHERE user_id = ? ORDER BY subject',
      )
      .all(userId),
  );

/** A fresh password sign-in of `email`, then a link of the IdP identity `login` to that account. */
async function linkWhileSignedIn(email: string, password: string, login: string): Promise<number> {
  const b = browser();
  expect((await b.signIn(email, password)).status).toBe(200);
  const start = await b.json<{ url: string }>('POST', '/api/v1/sso/oidc/link', { return_to: '/settings' });
  expect(start.status).toBe(200);
  const r = await idp.authorize(new URL(start.body.url), { login });
  if (r.kind !== 'redirect') throw new Error(`IdP error ${r.status}`);
  return (await b.fetch(r.url.pathname + r.url.search)).status;
}

describe('SCIM email changes: the new address is unconfirmed and old email links are spent', () => {
  const cases: { name: string; send: (id: string, to: string) => Promise<Response> }[] = [
    {
      name: 'PUT with another userName',
      send: (id, to) => scimCall('PUT', `/Users/${id}`, { userName: to }),
    },
    {
      name: 'PATCH path userName',
      send: (id, to) =>
        scimCall('PATCH', `/Users/${id}`, patchOps({ op: 'replace', path: 'userName', value: to })),
    },
    {
      name: 'PATCH a path-less value object { userName }',
      send: (id, to) =>
        scimCall('PATCH', `/Users/${id}`, patchOps({ op: 'replace', value: { userName: to } })),
    },
    {
      name: 'PATCH Replace (Entra capitalisation) userName, another case',
      send: (id, to) =>
        scimCall(
          'PATCH',
          `/Users/${id}`,
          patchOps({ op: 'Replace', path: 'userName', value: to.toUpperCase() }),
        ),
    },
  ];
  cases.forEach((c, i) => {
    test(c.name, async () => {
      const made = await scimCall('POST', '/Users', { userName: `mail-change-${i}@linkco.test` });
      expect(made.status).toBe(201);
      const id = ((await made.json()) as { id: string }).id;
      withDb((db) => db.query('UPDATE users SET email_verified_at = ? WHERE id = ?').run(Date.now(), id));
      const reset = mailLink(id, 'reset_password');
      const verify = mailLink(id, 'verify_email');
      const seq = lastSeq();
      const res = await c.send(id, `moved-${i}@linkco.test`);
      expect(res.status).toBe(200);
      const u = userRow(id);
      expect(u.email).toBe(`moved-${i}@linkco.test`);
      expect(u.email_verified_at).toBeNull();
      const changed = auditSince(seq).find((e) => e.action === 'user.email_changed');
      expect(changed?.details).toMatchObject({
        from: `mail-change-${i}@linkco.test`,
        to: `moved-${i}@linkco.test`,
        email_links_spent: 2,
      });
      // The links mailed for the old address no longer recover or confirm anything.
      const r = await resetWith(reset);
      expect([r.status, ((await r.json()) as { error: { code: string } }).error.code]).toEqual([
        400,
        'auth.token_invalid',
      ]);
      const v = await verifyWith(verify);
      expect(v.status).toBe(400);
      expect(userRow(id).password_hash).toBeNull();
      expect(userRow(id).email_verified_at).toBeNull();
    });
  });

  test('a SCIM update that keeps the email keeps the confirmation and the links', async () => {
    const made = await scimCall('POST', '/Users', { userName: 'keeps-mail@linkco.test' });
    const id = ((await made.json()) as { id: string }).id;
    withDb((db) => db.query('UPDATE users SET email_verified_at = ? WHERE id = ?').run(Date.now(), id));
    const verify = mailLink(id, 'verify_email');
    const res = await scimCall(
      'PATCH',
      `/Users/${id}`,
      patchOps({ op: 'replace', path: 'displayName', value: 'K' }),
    );
    expect(res.status).toBe(200);
    expect(userRow(id).email_verified_at).not.toBeNull();
    expect((await verifyWith(verify)).status).toBe(200);
  });
});

describe('an invitation links only until it is claimed', () => {
  const cases: { name: string; email: string; login: string; claim: (id: string) => Promise<void> }[] = [
    {
      name: 'its holder set a password through a reset link',
      email: 'invite-pw@linkco.test',
      login: 'invitepw',
      claim: async (id) => {
        expect((await resetWith(mailLink(id, 'reset_password'))).status).toBe(200);
      },
    },
    {
      name: 'its holder signed in through SSO once (that link since removed)',
      email: 'invite-once@linkco.test',
      login: 'inviteonce2',
      claim: async (id) => {
        expect((await ssoSignIn('inviteonce')).res.status).toBe(302);
        withDb((db) => db.query('DELETE FROM sso_identities WHERE user_id = ?').run(id));
      },
    },
  ];
  for (const c of cases) {
    test(`refused: ${c.name}`, async () => {
      const id = await makeUser({ email: c.email });
      await c.claim(id);
      const seq = lastSeq();
      const { res, code } = await ssoSignIn(c.login);
      expect([res.status, code]).toEqual([409, 'sso.account_exists']);
      expect(sessionSet(res)).toBe(false);
      expect(linksOf(id)).toBe(0);
      expect(auditSince(seq).some((e) => e.action === 'user.sso_linked')).toBe(false);
    });
  }
});

describe('linked identities: listed and removed by the holder and by admins; a reset removes self-made links', () => {
  let victim: string;
  let member: PlatformClient;
  const VPW = 'victim-password-123';
  beforeAll(async () => {
    victim = await makeUser({ email: 'victim@linkco.test', password: VPW });
    member = browser();
    await makeUser({ email: 'plain-member@linkco.test', password: PASSWORD });
    expect((await member.signIn('plain-member@linkco.test', PASSWORD)).status).toBe(200);
  });

  test('a completed reset removes the link an intruder made through the link route; IdP-made links stay; audited', async () => {
    // The intruder knew the password for a while and linked their own IdP identity.
    expect(await linkWhileSignedIn('victim@linkco.test', VPW, 'intruder')).toBe(302);
    withDb((db) =>
      db
        .query(
          "INSERT INTO sso_identities (kind, issuer, subject, user_id, created_at, via) VALUES ('saml', 'https://idp.example/saml', 'victim-scim', ?, 0, 'provisioned')",
        )
        .run(victim),
    );
    expect(linkRows(victim)).toEqual([
      { subject: 'intruder', via: 'signed_in' },
      { subject: 'victim-scim', via: 'provisioned' },
    ]);
    const seq = lastSeq();
    expect((await resetWith(mailLink(victim, 'reset_password'))).status).toBe(200);
    expect(linkRows(victim)).toEqual([{ subject: 'victim-scim', via: 'provisioned' }]);
    const reset = auditSince(seq).find((e) => e.action === 'user.password_reset')!;
    expect(reset.details.sso_links_removed).toEqual([
      { kind: 'oidc', issuer: idp.issuer, subject: 'intruder' },
    ]);
    // The intruder's identity no longer reaches the account.
    const back = await ssoSignIn('intruder');
    if (back.res.status === 302) {
      const me = await back.b.json<{ user: { id: string } }>('GET', '/api/v1/me');
      expect(me.body.user.id).not.toBe(victim);
    }
    withDb((db) => db.query("DELETE FROM sso_identities WHERE subject = 'victim-scim'").run());
  });

  test('the holder lists their links and removes one (session + CSRF); audited', async () => {
    const b = browser();
    expect((await b.signIn('victim@linkco.test', 'a-brand-new-password-9')).status).toBe(200);
    expect(await linkWhileSignedIn('victim@linkco.test', 'a-brand-new-password-9', 'mine')).toBe(302);
    const list = await b.json<{
      sso_identities: {
        id: string;
        kind: string;
        issuer: string;
        subject: string;
        via: string;
        created_at: string;
      }[];
    }>('GET', '/api/v1/me/sso-identities');
    expect(list.status).toBe(200);
    expect(list.body.sso_identities).toHaveLength(1);
    const link = list.body.sso_identities[0]!;
    expect(link).toMatchObject({ kind: 'oidc', issuer: idp.issuer, subject: 'mine', via: 'signed_in' });
    expect(Number.isNaN(Date.parse(link.created_at))).toBe(false);
    const path = `/api/v1/me/sso-identities/oidc/${link.id}`;
    const noCsrf = browser();
    expect((await noCsrf.signIn('victim@linkco.test', 'a-brand-new-password-9')).status).toBe(200);
    noCsrf.csrf = null;
    expect((await noCsrf.fetch(path, { method: 'DELETE' })).status).toBe(403);
    expect(linksOf(victim)).toBe(1);
    const seq = lastSeq();
    expect((await b.fetch(path, { method: 'DELETE' })).status).toBe(204);
    expect(linksOf(victim)).toBe(0);
    const gone = auditSince(seq).find((e) => e.action === 'user.sso_unlinked')!;
    expect(gone).toMatchObject({ actor: `user:${victim}`, target: `user:${victim}` });
    expect((await b.fetch(path, { method: 'DELETE' })).status).toBe(404);
  });

  test('admin routes: an admin lists and removes a member’s link; an owner’s only an owner; a member neither', async () => {
    expect(await linkWhileSignedIn('victim@linkco.test', 'a-brand-new-password-9', 'mine')).toBe(302);
    withDb((db) =>
      db
        .query(
          "INSERT INTO sso_identities (kind, issuer, subject, user_id, created_at, via) VALUES ('oidc', 'https://other-idp.example', 'owner-sub', ?, 0, 'signed_in')",
        )
        .run(ids.owner2),
    );
    const ownerBefore = linksOf(ids.owner2);
    try {
      const mine = await admin.json<{ sso_identities: { id: string; subject: string }[] }>(
        'GET',
        `/api/v1/users/${victim}/sso-identities`,
      );
      expect(mine.status).toBe(200);
      expect(mine.body.sso_identities.map((l) => l.subject)).toEqual(['mine']);
      const ownerLinks = await owner.json<{ sso_identities: { id: string; subject: string }[] }>(
        'GET',
        `/api/v1/users/${ids.owner2}/sso-identities`,
      );
      const ownerPath = `/api/v1/users/${ids.owner2}/sso-identities/oidc/${ownerLinks.body.sso_identities.find((l) => l.subject === 'owner-sub')!.id}`;
      const refusals: {
        name: string;
        who: () => PlatformClient;
        method: string;
        path: string;
        status: number;
      }[] = [
        {
          name: 'a member lists',
          who: () => member,
          method: 'GET',
          path: `/api/v1/users/${victim}/sso-identities`,
          status: 403,
        },
        {
          name: 'a member removes',
          who: () => member,
          method: 'DELETE',
          path: `/api/v1/users/${victim}/sso-identities/oidc/${mine.body.sso_identities[0]!.id}`,
          status: 403,
        },
        {
          name: "an admin removes an owner's link",
          who: () => admin,
          method: 'DELETE',
          path: ownerPath,
          status: 403,
        },
      ];
      for (const r of refusals) {
        const res = await r.who().fetch(r.path, { method: r.method });
        expect([r.name, res.status]).toEqual([r.name, r.status]);
      }
      expect(linksOf(victim)).toBe(1);
      expect(linksOf(ids.owner2)).toBe(ownerBefore);
      const del = await admin.fetch(
        `/api/v1/users/${victim}/sso-identities/oidc/${mine.body.sso_identities[0]!.id}`,
        {
          method: 'DELETE',
        },
      );
      expect(del.status).toBe(204);
      expect(linksOf(victim)).toBe(0);
      expect((await owner.fetch(ownerPath, { method: 'DELETE' })).status).toBe(204);
      expect(linksOf(ids.owner2)).toBe(ownerBefore - 1);
    } finally {
      withDb((db) => db.query("DELETE FROM sso_identities WHERE subject = 'owner-sub'").run());
    }
  });
});

describe('owner role mappings: an admin may save settings whose owner mapping is unchanged, not change it', () => {
  const mapped = (extra: Record<string, unknown> = {}) =>
    settings({
      scopes: ['openid', 'email', 'profile', 'groups'],
      role_claim: 'groups',
      role_map: { 'platform-owners': 'owner', staff: 'admin' },
      ...extra,
    });
  beforeAll(async () => {
    expect((await owner.json('PUT', '/api/v1/sso/oidc', mapped())).status).toBe(200);
    withDb((db) =>
      db
        .query(
          "INSERT INTO sso_identities (kind, issuer, subject, user_id, created_at) VALUES ('oidc', ?, 'twin', ?, 0)",
        )
        .run(idp.issuer, ids.owner2),
    );
  });
  afterAll(async () => {
    withDb((db) => db.query("DELETE FROM sso_identities WHERE subject = 'twin'").run());
    await owner.json('PUT', '/api/v1/sso/oidc', settings());
  });
  const cases: { name: string; body: () => Record<string, unknown>; status: number }[] = [
    { name: 'saved again unchanged', body: () => mapped(), status: 200 },
    { name: 'another default role', body: () => mapped({ default_role: 'creator' }), status: 200 },
    {
      name: 'a non-owner mapping changed',
      body: () => mapped({ role_map: { 'platform-owners': 'owner', staff: 'creator' } }),
      status: 200,
    },
    {
      name: 'a second value mapped to owner',
      body: () => mapped({ role_map: { 'platform-owners': 'owner', staff: 'owner' } }),
      status: 403,
    },
    {
      name: 'the owner value renamed',
      body: () => mapped({ role_map: { everyone: 'owner', staff: 'admin' } }),
      status: 403,
    },
    {
      name: 'the role claim changed under the owner mapping',
      body: () => mapped({ role_claim: 'nickname' }),
      status: 403,
    },
  ];
  for (const c of cases) {
    test(`${c.name} → ${c.status}`, async () => {
      const res = await admin.json<{ error?: { code: string; details: { path: string }[] } }>(
        'PUT',
        '/api/v1/sso/oidc',
        c.body(),
      );
      expect(res.status).toBe(c.status);
      if (c.status === 403) {
        expect(res.body.error?.code).toBe('auth.forbidden');
        expect(res.body.error?.details.map((d) => d.path)).toEqual(['/role_map']);
        const now = await owner.json<{ oidc: { role_map: Record<string, string>; role_claim: string } }>(
          'GET',
          '/api/v1/sso/oidc',
        );
        expect(now.body.oidc.role_map['platform-owners']).toBe('owner');
      }
      expect((await owner.json('PUT', '/api/v1/sso/oidc', mapped())).status).toBe(200);
    });
  }
});

describe('assertMayMapOwner (OIDC and SAML share it): the change is compared', () => {
  const was: OwnerMapping = {
    idp: 'https://idp.example',
    roleKey: 'groups',
    roleMap: { a: 'owner', b: 'admin' },
  };
  const cases: {
    name: string;
    previous: OwnerMapping | null;
    next: OwnerMapping;
    role: 'admin' | 'owner' | null;
    ok: boolean;
  }[] = [
    { name: 'admin, unchanged', previous: was, next: was, role: 'admin', ok: true },
    {
      name: 'admin, other entries changed',
      previous: was,
      next: { ...was, roleMap: { a: 'owner' } },
      role: 'admin',
      ok: true,
    },
    {
      name: 'admin, owner mapping removed',
      previous: was,
      next: { ...was, roleMap: { b: 'admin' } },
      role: 'admin',
      ok: true,
    },
    {
      name: 'admin, a value added to owner',
      previous: was,
      next: { ...was, roleMap: { a: 'owner', b: 'owner' } },
      role: 'admin',
      ok: false,
    },
    { name: 'admin, first settings map to owner', previous: null, next: was, role: 'admin', ok: false },
    {
      name: 'admin, another IdP with the same map',
      previous: was,
      next: { ...was, idp: 'https://evil.example' },
      role: 'admin',
      ok: false,
    },
    {
      name: 'admin, a new signing certificate (SAML) with the same map',
      previous: { ...was, trust: ['fp-a'] },
      next: { ...was, trust: ['fp-a', 'fp-b'] },
      role: 'admin',
      ok: false,
    },
    {
      name: 'admin, an old signing certificate dropped (SAML)',
      previous: { ...was, trust: ['fp-a', 'fp-b'] },
      next: { ...was, trust: ['fp-b'] },
      role: 'admin',
      ok: true,
    },
    {
      name: 'admin, another role claim',
      previous: was,
      next: { ...was, roleKey: 'nickname' },
      role: 'admin',
      ok: false,
    },
    { name: 'owner, anything', previous: null, next: was, role: 'owner', ok: true },
    { name: 'the system, anything', previous: null, next: was, role: null, ok: true },
  ];
  for (const c of cases) {
    test(`${c.name} → ${c.ok ? 'allowed' : 'refused'}`, () => {
      const run = () => assertMayMapOwner(c.previous, c.next, c.role, 'a claim');
      if (c.ok) expect(run).not.toThrow();
      else expect(run).toThrow(/only an owner can map a claim to the owner role/);
    });
  }
});
