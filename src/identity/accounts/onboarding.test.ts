import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { type InProcessServer, inProcessServer } from '../../../tests/inproc.ts';
import { type ApiScenario, auditMark, errorCode, runScenario } from '../../../tests/scenario.ts';
import { readOutbox } from '../mail/outbox.ts';
import { MAX_PENDING_SIGNUPS } from './signup.ts';
import { createUserRepository } from './users.repository.ts';

// Issue 10 item 2: sign-up (with email and age verification), invitations, a password change,
// an admin's MFA reset, the owner reset by the operator, and the pages the mailed links open.

let s: InProcessServer;
/** Platforms by slug: their id and first owner's credentials. */
const P: Record<string, { id: string; host: string; owner: { email: string; password: string } }> = {};

async function platform(slug: string, body: Record<string, unknown>) {
  const res = await s.operatorApi('POST', '/platforms', { slug, ...body });
  expect(res.status).toBe(201);
  const r = (await res.json()) as { admin: { email: string; password: string }; platform: { id: string } };
  P[slug] = { id: r.platform.id, host: `${slug}.localhost`, owner: r.admin };
}

beforeAll(async () => {
  s = await inProcessServer();
  await platform('crt', { template: 'creator' });
  await platform('edu', { template: 'education' });
  await platform('plain', {}); // blank: no sign-up
  await platform('open', {
    template: 'creator',
    blueprint: { governance: { user_verification: { email_required: false, age_verification: false } } },
  });
  await platform('wl', { template: 'business', name: 'Acme Corp' }); // white-labeled
  await platform('cap', { template: 'creator' });
  await platform('thr', { template: 'creator' });
});
afterAll(() => s.close());

type Answer = {
  status: number;
  body: Record<string, unknown> & { error?: { code?: string } };
  res: Response;
};

/** A JSON request to a platform host, optionally with a session. */
async function api(
  slug: string,
  method: string,
  path: string,
  body?: unknown,
  session?: { cookie: string; csrf: string },
): Promise<Answer> {
  const headers: Record<string, string> = {};
  if (body !== undefined) headers['content-type'] = 'application/json';
  if (session) {
    headers.cookie = session.cookie;
    headers['x-csrf-token'] = session.csrf;
  }
  const res = await s.request(P[slug]!.host, path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  let parsed: Answer['body'] = {};
  try {
    parsed = JSON.parse(text);
  } catch {
    parsed = { text };
  }
  return { status: res.status, body: parsed, res };
}

/** A form post to a page on a platform host. */
function form(
  slug: string,
  path: string,
  fields: Record<string, string>,
  headers: Record<string, string> = {},
) {
  return s.request(P[slug]!.host, path, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers },
    body: new URLSearchParams(fields).toString(),
  });
}

async function signIn(slug: string, email: string, password: string) {
  const r = await api(slug, 'POST', '/api/v1/auth/login', { email, password });
  const cookie = (r.res.headers.get('set-cookie') ?? '').split(';')[0]!;
  return { ...r, session: { cookie, csrf: String(r.body.csrf_token ?? '') } };
}

/** The links mailed to `to` on a platform (newest last), from the outbox. */
function links(slug: string, to: string, template: string): Promise<string[]> {
  return s.app.platformDbs.use(P[slug]!.id, (db) =>
    readOutbox(db, { to, template, includeSent: true }).map(
      (m) => /(https?:\/\/\S+\?token=\S+)/.exec(m.body)?.[1] ?? '',
    ),
  );
}
const userCount = (slug: string) =>
  s.app.platformDbs.use(P[slug]!.id, (db) => createUserRepository({ db }).count());
const tokenOf = (link: string) => new URL(link).searchParams.get('token') ?? '';

async function lastLink(slug: string, to: string, template: string): Promise<string> {
  const all = await links(slug, to, template);
  expect(all.length).toBeGreaterThan(0);
  return all.at(-1)!;
}

const PW = 'a-long-enough-password';

describe('self sign-up with email verification', () => {
  test('sign-up → verification mail → sign-in refused until the link is used → sign-in', async () => {
    const r = await api('crt', 'POST', '/api/v1/auth/signup', { email: 'Sam@Example.test', password: PW });
    expect(r.status).toBe(202);
    expect(r.body.status).toBe('pending');
    const refused = await signIn('crt', 'sam@example.test', PW);
    expect(refused.status).toBe(403);
    expect(errorCode(refused.body)).toBe('auth.email_unverified');
    const link = await lastLink('crt', 'sam@example.test', 'verify_email');
    // From the stored public URL (scheme and port), never the Host header the request carried.
    expect(link).toStartWith('http://crt.localhost:8080/app/verify-email?token=');
    // Opening the link spends nothing (a mail scanner's prefetch is harmless); the form confirms.
    const page = await s.request(
      P.crt!.host,
      new URL(link).pathname.replace(/^\/app\//, '/') + new URL(link).search,
    );
    expect(page.status).toBe(200);
    expect(page.headers.get('referrer-policy')).toBe('no-referrer');
    expect(await page.text()).toContain(`value="${tokenOf(link)}"`);
    expect((await signIn('crt', 'sam@example.test', PW)).status).toBe(403);
    const done = await form('crt', '/verify-email', { token: tokenOf(link) });
    expect(done.status).toBe(200);
    expect(await done.text()).toContain('Address confirmed');
    const ok = await signIn('crt', 'sam@example.test', PW);
    expect(ok.status).toBe(200);
    expect((ok.body.user as { email_verified: boolean; role: string }).role).toBe('member');
    // The link works once.
    expect((await form('crt', '/verify-email', { token: tokenOf(link) })).status).toBe(400);
  });

  test("the operator's printed owner credentials sign in on a platform that requires confirmed emails", async () => {
    const r = await signIn('crt', P.crt!.owner.email, P.crt!.owner.password);
    expect(r.status).toBe(200);
    expect((r.body.user as { email_verified: boolean }).email_verified).toBe(true);
  });

  test('a taken email gets the same answer, and its holder a notice instead of a second account', async () => {
    const before = await userCount('crt');
    const r = await api('crt', 'POST', '/api/v1/auth/signup', { email: P.crt!.owner.email, password: PW });
    expect(r.status).toBe(202);
    expect(r.body.status).toBe('pending');
    expect(await userCount('crt')).toBe(before);
    const notices = await s.app.platformDbs.use(P.crt!.id, (db) =>
      readOutbox(db, { to: P.crt!.owner.email, template: 'signup_exists' }),
    );
    expect(notices.length).toBe(1);
    expect(notices[0]!.body).toContain('http://crt.localhost:8080/reset-password');
  });

  test('without email_required the account is active at once (201) and a taken email is 409', async () => {
    const r = await api('open', 'POST', '/api/v1/auth/signup', { email: 'ann@example.test', password: PW });
    expect(r.status).toBe(201);
    expect((await signIn('open', 'ann@example.test', PW)).status).toBe(200);
    const again = await api('open', 'POST', '/api/v1/auth/signup', {
      email: 'ann@example.test',
      password: PW,
    });
    expect(again.status).toBe(409);
    expect(errorCode(again.body)).toBe('user.email_taken');
  });

  test('age verification: a date of birth is required and checked against minimum_age (education: 13)', async () => {
    const missing = await api('edu', 'POST', '/api/v1/auth/signup', {
      email: 'kid@example.test',
      password: PW,
    });
    expect(missing.status).toBe(400);
    expect(JSON.stringify(missing.body)).toContain('/date_of_birth');
    const bad = await api('edu', 'POST', '/api/v1/auth/signup', {
      email: 'kid@example.test',
      password: PW,
      date_of_birth: '2013-02-30',
    });
    expect(bad.status).toBe(400);
    // The clock is 2026-01-15: born 2013-01-16 is 12, born 2013-01-15 is 13 today.
    const young = await api('edu', 'POST', '/api/v1/auth/signup', {
      email: 'kid@example.test',
      password: PW,
      date_of_birth: '2013-01-16',
    });
    expect(young.status).toBe(403);
    expect(errorCode(young.body)).toBe('auth.underage');
    const ok = await api('edu', 'POST', '/api/v1/auth/signup', {
      email: 'teen@example.test',
      password: PW,
      date_of_birth: '2013-01-15',
    });
    expect(ok.status).toBe(202);
  });

  test('sign-ups are limited per address (5 an hour), before any hashing', async () => {
    const statuses: number[] = [];
    for (let i = 0; i < 6; i++)
      statuses.push(
        (await api('thr', 'POST', '/api/v1/auth/signup', { email: `t${i}@example.test`, password: PW }))
          .status,
      );
    expect(statuses).toEqual([202, 202, 202, 202, 202, 429]);
    s.clock.advance(61 * 60_000);
    expect(
      (await api('thr', 'POST', '/api/v1/auth/signup', { email: 't9@example.test', password: PW })).status,
    ).toBe(202);
  });

  test('unconfirmed sign-ups are capped per platform, and lapse after 48 hours', async () => {
    const start = s.clock.now();
    await s.app.platformDbs.use(P.cap!.id, (db) => {
      const users = createUserRepository({ db });
      db.transaction(() => {
        for (let i = 0; i < MAX_PENDING_SIGNUPS; i++)
          users.insert({
            id: `usr_pending_${i}`,
            email: `p${i}@example.test`,
            name: '',
            password_hash: 'x',
            role: 'member',
            status: 'active',
            email_verified_at: null,
            created_at: start,
            updated_at: start,
            provisioned_via: 'signup',
          });
      })();
    });
    const full = await api('cap', 'POST', '/api/v1/auth/signup', {
      email: 'late@example.test',
      password: PW,
    });
    expect(full.status).toBe(503);
    expect(errorCode(full.body)).toBe('auth.signup_busy');
    s.clock.advance(48 * 3_600_000 + 1);
    const mark = auditMark(s);
    const later = await api('cap', 'POST', '/api/v1/auth/signup', {
      email: 'late@example.test',
      password: PW,
    });
    expect(later.status).toBe(202);
    expect(mark.since()).toEqual(['cap:user.signup_lapsed', 'cap:user.signed_up']);
    // The owner and the new sign-up: the lapsed ones are gone.
    expect(await userCount('cap')).toBe(2);
  });
});

describe('invitations', () => {
  let owner: { cookie: string; csrf: string };
  beforeAll(async () => {
    owner = (await signIn('crt', P.crt!.owner.email, P.crt!.owner.password)).session;
  });

  test('invite → mailed link → the page → accept with a password → a verified user with the role', async () => {
    const mark = auditMark(s);
    const r = await api(
      'crt',
      'POST',
      '/api/v1/invitations',
      { email: 'ivy@example.test', role: 'creator' },
      owner,
    );
    expect(r.status).toBe(201);
    const inv = r.body.invitation as { id: string; status: string; role: string };
    expect(inv).toMatchObject({ status: 'pending', role: 'creator' });
    expect(JSON.stringify(r.body)).not.toContain('token');
    expect(mark.since()).toEqual(['crt:user.created', 'crt:user.invited']);
    const link = await lastLink('crt', 'ivy@example.test', 'invitation');
    expect(link).toStartWith('http://crt.localhost:8080/app/accept-invite?token=');
    const page = await s.request(
      P.crt!.host,
      new URL(link).pathname.replace(/^\/app\//, '/') + new URL(link).search,
    );
    expect(page.status).toBe(200);
    const html = await page.text();
    expect(html).toContain('Accept the invitation');
    expect(html).toContain('Powered by Soulfra'); // not white-labeled
    const ok = await form('crt', '/accept-invite', { token: tokenOf(link), password: PW, name: 'Ivy' });
    expect(ok.status).toBe(200);
    const signed = await signIn('crt', 'ivy@example.test', PW);
    expect(signed.status).toBe(200);
    expect(signed.body.user).toMatchObject({ role: 'creator', email_verified: true, name: 'Ivy' });
    const list = await api('crt', 'GET', '/api/v1/invitations', undefined, owner);
    expect(
      (list.body.invitations as { id: string; status: string }[]).find((i) => i.id === inv.id)?.status,
    ).toBe('accepted');
  });

  test('accept through the API; resend makes the old link stop working', async () => {
    const r = await api('crt', 'POST', '/api/v1/invitations', { email: 'rex@example.test' }, owner);
    const id = (r.body.invitation as { id: string }).id;
    const first = tokenOf(await lastLink('crt', 'rex@example.test', 'invitation'));
    const again = await api('crt', 'POST', `/api/v1/invitations/${id}/resend`, undefined, owner);
    expect(again.status).toBe(200);
    expect((again.body.invitation as { sends: number }).sends).toBe(2);
    const second = tokenOf(await lastLink('crt', 'rex@example.test', 'invitation'));
    expect(second).not.toBe(first);
    const old = await api('crt', 'POST', '/api/v1/invitations/accept', { token: first, password: PW });
    expect(old.status).toBe(400);
    expect(errorCode(old.body)).toBe('auth.token_invalid');
    const ok = await api('crt', 'POST', '/api/v1/invitations/accept', { token: second, password: PW });
    expect(ok.status).toBe(200);
    expect(ok.body.user).toMatchObject({ email: 'rex@example.test', role: 'member', email_verified: true });
  });

  test('who may invite: a member may not; an admin may not invite an owner', async () => {
    await api(
      'crt',
      'POST',
      '/api/v1/users',
      { email: 'adm@example.test', role: 'admin', password: PW },
      owner,
    );
    await api(
      'crt',
      'POST',
      '/api/v1/users',
      { email: 'mem@example.test', role: 'member', password: PW },
      owner,
    );
    const admin = (await signIn('crt', 'adm@example.test', PW)).session;
    const member = (await signIn('crt', 'mem@example.test', PW)).session;
    const m = await api('crt', 'POST', '/api/v1/invitations', { email: 'x@example.test' }, member);
    expect(m.status).toBe(403);
    const a = await api(
      'crt',
      'POST',
      '/api/v1/invitations',
      { email: 'x@example.test', role: 'owner' },
      admin,
    );
    expect(a.status).toBe(403);
    expect((await api('crt', 'GET', '/api/v1/invitations', undefined, member)).status).toBe(403);
  });
});

describe('attack table: links, sign-up and sign-in that must be refused', () => {
  let owner: { cookie: string; csrf: string };
  const T: Record<string, string> = {};
  beforeAll(async () => {
    owner = (await signIn('crt', P.crt!.owner.email, P.crt!.owner.password)).session;
    // expired: made 7 days and a minute ago (every other link below is made after, so live)
    await api('crt', 'POST', '/api/v1/invitations', { email: 'late@example.test' }, owner);
    T.expired = tokenOf(await lastLink('crt', 'late@example.test', 'invitation'));
    s.clock.advance(7 * 24 * 3_600_000 + 60_000);
    owner = (await signIn('crt', P.crt!.owner.email, P.crt!.owner.password)).session;
    // used: accepted once already
    await api('crt', 'POST', '/api/v1/invitations', { email: 'used@example.test' }, owner);
    T.used = tokenOf(await lastLink('crt', 'used@example.test', 'invitation'));
    expect(
      (await api('crt', 'POST', '/api/v1/invitations/accept', { token: T.used, password: PW })).status,
    ).toBe(200);
    // revoked
    const rv = await api('crt', 'POST', '/api/v1/invitations', { email: 'revoked@example.test' }, owner);
    T.revoked = tokenOf(await lastLink('crt', 'revoked@example.test', 'invitation'));
    const del = await api(
      'crt',
      'DELETE',
      `/api/v1/invitations/${(rv.body.invitation as { id: string }).id}`,
      undefined,
      owner,
    );
    expect(del.status).toBe(200);
    expect((del.body.invitation as { status: string }).status).toBe('revoked');
    // wrong platform: a live invitation of another platform, used on crt
    const edu = (await signIn('edu', P.edu!.owner.email, P.edu!.owner.password)).session;
    await api('edu', 'POST', '/api/v1/invitations', { email: 'other@example.test' }, edu);
    T.other = tokenOf(await lastLink('edu', 'other@example.test', 'invitation'));
    // an unverified sign-up
    await api('crt', 'POST', '/api/v1/auth/signup', { email: 'unverified@example.test', password: PW });
  });
  test("the other platform's link is live on its own platform (so the refusal on crt is about the platform)", async () => {
    const r = await api(
      'edu',
      'GET',
      '/api/v1/invitations',
      undefined,
      (await signIn('edu', P.edu!.owner.email, P.edu!.owner.password)).session,
    );
    expect(
      (r.body.invitations as { email: string; status: string }[]).find(
        (i) => i.email === 'other@example.test',
      )?.status,
    ).toBe('pending');
  });
  const json = { 'content-type': 'application/json' };
  const accept = (name: string, token: () => string): ApiScenario => ({
    name,
    method: 'POST',
    host: 'crt.localhost',
    url: '/api/v1/invitations/accept',
    headers: json,
    get body() {
      return { token: token(), password: PW };
    },
    expectedStatus: 400,
    expectedContent: (b) => expect(errorCode(b)).toBe('auth.token_invalid'),
  });
  const table: ApiScenario[] = [
    accept('an invitation link used twice', () => T.used!),
    accept('a revoked invitation link', () => T.revoked!),
    accept('an expired invitation link (7 days)', () => T.expired!),
    accept("another platform's invitation link", () => T.other!),
    accept('a made-up token', () => 'x'.repeat(43)),
    {
      name: 'sign-up where the platform takes none (blank template)',
      method: 'POST',
      host: 'plain.localhost',
      url: '/api/v1/auth/signup',
      headers: json,
      body: { email: 'nobody@example.test', password: PW },
      expectedStatus: 403,
      expectedContent: (b) => expect(errorCode(b)).toBe('auth.signup_disabled'),
    },
    {
      name: 'sign-up under the minimum age',
      method: 'POST',
      host: 'edu.localhost',
      url: '/api/v1/auth/signup',
      headers: json,
      body: { email: 'young@example.test', password: PW, date_of_birth: '2020-01-01' },
      expectedStatus: 403,
      expectedContent: (b) => expect(errorCode(b)).toBe('auth.underage'),
    },
    {
      name: 'sign-in before the email is confirmed',
      method: 'POST',
      host: 'crt.localhost',
      url: '/api/v1/auth/login',
      headers: json,
      body: { email: 'unverified@example.test', password: PW },
      expectedStatus: 403,
      expectedContent: (b) => expect(errorCode(b)).toBe('auth.email_unverified'),
    },
    {
      name: 'a sign-up form posted from another site',
      method: 'POST',
      host: 'crt.localhost',
      url: '/api/v1/auth/signup',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: 'email=a%40b.test&password=a-long-enough-password',
      expectedStatus: 415,
    },
    {
      name: 'an invitation page form posted cross-site',
      method: 'POST',
      host: 'crt.localhost',
      url: '/accept-invite',
      headers: { 'content-type': 'application/x-www-form-urlencoded', 'sec-fetch-site': 'cross-site' },
      body: 'token=x&password=a-long-enough-password',
      expectedStatus: 403,
    },
  ];
  for (const sc of table) test(sc.name, () => runScenario(s, sc));
});

describe('password change, MFA reset, owner reset', () => {
  test('POST /me/password: the current password is checked, other sessions end, audited', async () => {
    const o = P.open!;
    await api('open', 'POST', '/api/v1/auth/signup', { email: 'pat@example.test', password: PW });
    const a = (await signIn('open', 'pat@example.test', PW)).session;
    const b = (await signIn('open', 'pat@example.test', PW)).session;
    const wrong = await api(
      'open',
      'POST',
      '/api/v1/me/password',
      { current_password: 'nope-nope-nope', new_password: 'the-new-password-1' },
      a,
    );
    expect(wrong.status).toBe(400);
    expect(errorCode(wrong.body)).toBe('auth.invalid_credentials');
    const short = await api(
      'open',
      'POST',
      '/api/v1/me/password',
      { current_password: PW, new_password: 'short' },
      a,
    );
    expect(short.status).toBe(400);
    const mark = auditMark(s);
    const ok = await api(
      'open',
      'POST',
      '/api/v1/me/password',
      { current_password: PW, new_password: 'the-new-password-1' },
      a,
    );
    expect(ok.status).toBe(200);
    expect(ok.body.other_sessions_ended).toBe(1);
    expect(mark.since()).toEqual(['open:user.password_changed']);
    expect((await api('open', 'GET', '/api/v1/me', undefined, a)).status).toBe(200);
    expect((await api('open', 'GET', '/api/v1/me', undefined, b)).status).toBe(401);
    expect((await signIn('open', 'pat@example.test', PW)).status).toBe(401);
    expect((await signIn('open', 'pat@example.test', 'the-new-password-1')).status).toBe(200);
    // Days later, after another sign-up: an account made where no confirmation is required
    // is an ordinary one, never lapsed as an unconfirmed sign-up.
    expect((await signIn('open', 'ann@example.test', PW)).status).toBe(200);
    expect(o.id).toBeTruthy();
  });

  test("an admin resets a user's MFA (their sessions end); owners' only by owners; audited", async () => {
    const owner = (await signIn('open', P.open!.owner.email, P.open!.owner.password)).session;
    await api(
      'open',
      'POST',
      '/api/v1/users',
      { email: 'boss@example.test', role: 'admin', password: PW },
      owner,
    );
    await api(
      'open',
      'POST',
      '/api/v1/users',
      { email: 'lost@example.test', role: 'member', password: PW },
      owner,
    );
    const member = (await signIn('open', 'lost@example.test', PW)).session;
    const admin = (await signIn('open', 'boss@example.test', PW)).session;
    const ids = await s.app.platformDbs.use(P.open!.id, (db) => {
      const users = createUserRepository({ db });
      const lost = users.byEmail('lost@example.test')!;
      const own = users.byEmail(P.open!.owner.email)!;
      // As if enrolled (the secret's content does not matter to a reset).
      users.update(lost.id, { totp_secret: 'sealed-secret' }, s.clock.now());
      users.update(own.id, { totp_secret: 'sealed-secret' }, s.clock.now());
      return { lost: lost.id, owner: own.id };
    });
    expect((await api('open', 'POST', `/api/v1/users/${ids.lost}/mfa/reset`, undefined, member)).status).toBe(
      403,
    );
    const onOwner = await api('open', 'POST', `/api/v1/users/${ids.owner}/mfa/reset`, undefined, admin);
    expect(onOwner.status).toBe(403);
    expect(errorCode(onOwner.body)).toBe('user.owner_protected');
    const mark = auditMark(s);
    const r = await api('open', 'POST', `/api/v1/users/${ids.lost}/mfa/reset`, undefined, admin);
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ user: { mfa_enabled: false }, sessions_ended: 1 });
    expect(mark.since()).toEqual(['open:user.mfa_reset']);
    expect((await api('open', 'GET', '/api/v1/me', undefined, member)).status).toBe(401);
    const twice = await api('open', 'POST', `/api/v1/users/${ids.lost}/mfa/reset`, undefined, admin);
    expect(twice.status).toBe(409);
  });

  test('owner-reset: a one-time link on the platform host, audited on both chains, that works once', async () => {
    const mark = auditMark(s);
    const res = await s.operatorApi('POST', '/platforms/wl/owner-reset', {});
    expect(res.status).toBe(200);
    expect(res.headers.get('cache-control')).toBe('no-store');
    const r = (await res.json()) as { link: string; email: string };
    expect(r.email).toBe(P.wl!.owner.email);
    expect(r.link).toStartWith('http://wl.localhost:8080/app/reset-password?token=');
    expect(mark.since()).toEqual(['platform.owner_reset', 'wl:user.owner_reset_issued']);
    // The page is branded, and a white-labeled platform's never names Soulfra.
    const page = await s.request(
      P.wl!.host,
      new URL(r.link).pathname.replace(/^\/app\//, '/') + new URL(r.link).search,
    );
    const html = await page.text();
    expect(page.status).toBe(200);
    expect(html).toContain('Acme Corp');
    expect(html).not.toContain('Soulfra');
    const done = await form('wl', '/reset-password', {
      token: tokenOf(r.link),
      password: 'owner-new-password-1',
    });
    expect(done.status).toBe(200);
    expect((await signIn('wl', P.wl!.owner.email, P.wl!.owner.password)).status).toBe(401);
    expect((await signIn('wl', P.wl!.owner.email, 'owner-new-password-1')).status).toBe(200);
    const again = await form('wl', '/reset-password', {
      token: tokenOf(r.link),
      password: 'owner-new-password-2',
    });
    expect(again.status).toBe(400);
    expect(await again.text()).not.toContain('Soulfra');
    const missing = await s.operatorApi('POST', '/platforms/wl/owner-reset', {
      email: 'nobody@example.test',
    });
    expect(missing.status).toBe(404);
  });

  test('the reset page without a token asks for an email and queues a link to the page', async () => {
    await api('open', 'POST', '/api/v1/auth/signup', { email: 'forgot@example.test', password: PW });
    const r = await form('open', '/reset-password', { email: 'forgot@example.test' });
    expect(r.status).toBe(202);
    expect(await lastLink('open', 'forgot@example.test', 'reset_password')).toStartWith(
      'http://open.localhost:8080/app/reset-password?token=',
    );
  });
});
