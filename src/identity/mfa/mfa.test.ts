import { Database } from 'bun:sqlite';
import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { Secret, TOTP } from 'otpauth';
import { operatorApi } from '../../../tests/helpers.ts';
import { PlatformClient, serverWithPlatform } from '../../../tests/platform-client.ts';
import { type App, type AuditInput, bindSecrets, Keyring, secretsOf } from '../../app/index.ts';
import { migrate, TENANT_MIGRATIONS } from '../../db/index.ts';
import { sha256Hex } from '../../shared/crypto.ts';
import { AppError } from '../../shared/errors.ts';
import { ManualClock } from '../../shared/time.ts';
import { createUserRepository } from '../accounts/users.repository.ts';
import { createSession } from '../sessions/sessions.ts';
import { DEFAULT_IDENTITY_SETTINGS, writeIdentitySettings } from '../settings.ts';
import { disableTotp, enableTotp, regenerateRecoveryCodes, startTotpSetup, verifySignInMfa } from './mfa.ts';

const STEP_MS = 30_000;
const RECOVERY_RE =
  /^[0-9a-hjkmnp-tv-z]{4}-[0-9a-hjkmnp-tv-z]{4}-[0-9a-hjkmnp-tv-z]{4}-[0-9a-hjkmnp-tv-z]{4}$/;

/** The code an authenticator shows for `secret` at time step `step` (time pinned by `timestamp`). */
const codeAt = (secret: string, step: number) =>
  TOTP.generate({ secret: Secret.fromBase32(secret), timestamp: step * STEP_MS + 1 });

/** A 6-digit code that is none of the codes valid at steps around `step`. */
function wrongCode(secret: string, step: number): string {
  const near = new Set([-2, -1, 0, 1, 2].map((d) => codeAt(secret, step + d)));
  let n = Number(codeAt(secret, step));
  do n = (n + 1) % 1_000_000;
  while (near.has(String(n).padStart(6, '0')));
  return String(n).padStart(6, '0');
}

/**
 * An authenticator on the server's pinned clock that never offers a time step twice (the server
 * refuses a reused code): it takes the oldest step inside the server's ±1 window, and when it
 * has run ahead it lets the clock pass one step (`advance`) instead of sleeping on the wall clock.
 */
class Authenticator {
  last = Number.NEGATIVE_INFINITY;
  constructor(
    readonly secret: string,
    readonly clock: ManualClock,
  ) {}
  /** The next unused code; the server will remember it as used. */
  async next(): Promise<string> {
    const { code, step } = this.#fresh();
    this.last = step;
    return code;
  }
  /** The code `next` would give, for a request the server refuses before looking at the code. */
  async peek(): Promise<string> {
    return this.#fresh().code;
  }
  #fresh(): { code: string; step: number } {
    for (;;) {
      const cur = Math.floor(this.clock.now() / STEP_MS);
      const step = Math.max(this.last + 1, cur - 1);
      if (step <= cur + 1) return { code: codeAt(this.secret, step), step };
      this.clock.advance(STEP_MS);
    }
  }
  wrong(): string {
    return wrongCode(this.secret, Math.floor(this.clock.now() / STEP_MS));
  }
}

type Err = { error: { code: string; message: string; details?: { path: string; reason: string }[] } };
// Several argon2id sign-ins on a shared machine; no test waits for a TOTP step any more.
const TOTP_TIMEOUT = 20_000;

// ---------------------------------------------------------------------------------------------
// The service against one platform's database, with time pinned.

describe('the MFA service with a pinned clock', () => {
  let now = 0;
  let entries: AuditInput[] = [];
  let db: Database;
  const app = {
    clock: { now: () => now },
    audit: {
      append: (_db: Database, input: AuditInput) => {
        entries.push(input);
        return {} as never;
      },
    },
  } as unknown as App;
  const T = 59_000_000; // a time step, far from any other test's
  let n = 0;

  function freshUser(role: 'member' | 'owner' = 'member') {
    n += 1;
    const id = `usr_unit${n}`;
    createUserRepository({ db }).insert({
      id,
      email: `unit${n}@mfa.test`,
      name: `Unit ${n}`,
      password_hash: null,
      role,
      status: 'active',
      email_verified_at: null,
      created_at: now,
      updated_at: now,
    });
    return id;
  }
  function pendingSession(userId: string) {
    const s = createSession(db, now, DEFAULT_IDENTITY_SETTINGS, {
      userId,
      via: 'password',
      mfaPending: true,
      ip: null,
      userAgent: null,
    });
    return { sessionIdHash: sha256Hex(s.token), userId };
  }
  const mfaPending = (idHash: string) =>
    db
      .query<{ mfa_pending: number }, [string]>('SELECT mfa_pending FROM sessions WHERE id_hash = ?')
      .get(idHash)?.mfa_pending;
  const codeOf = (f: () => unknown): string => {
    try {
      f();
    } catch (e) {
      return e instanceof AppError ? `${e.status} ${e.code}` : String(e);
    }
    return 'ok';
  };
  function enrolled(role: 'member' | 'owner' = 'member') {
    const id = freshUser(role);
    const { secret } = startTotpSetup(app, db, id, 'Unit Co');
    const { recoveryCodes } = enableTotp(app, db, id, { code: codeAt(secret, T - 1) }, null);
    return { id, secret, recoveryCodes };
  }

  beforeAll(() => {
    db = new Database(':memory:', { strict: true });
    db.exec('PRAGMA foreign_keys = ON');
    migrate(db, TENANT_MIGRATIONS, 'mfa unit test');
    bindSecrets(db, Keyring.ephemeral(), 'platform:plt_unit');
  });
  afterAll(() => db.close());

  test('setup gives a 160-bit base32 secret and an otpauth URL naming the platform and the email', () => {
    now = T * STEP_MS + 10_000;
    const id = freshUser();
    const r = startTotpSetup(app, db, id, 'Unit Co');
    expect(r.secret).toMatch(/^[A-Z2-7]{32}$/);
    expect(r.otpauth_url).toBe(
      `otpauth://totp/Unit%20Co:unit${n}%40mfa.test?issuer=Unit%20Co&secret=${r.secret}&algorithm=SHA1&digits=6&period=30`,
    );
    const row = createUserRepository({ db }).byId(id)!;
    // Stored sealed, bound to the user and to "pending".
    expect(row.totp_pending).toStartWith('sf1.');
    expect(row.totp_pending).not.toContain(r.secret);
    expect(secretsOf(db).unseal(row.totp_pending!, `user:${id}:totp_pending`)).toBe(r.secret);
    expect(() => secretsOf(db).unseal(row.totp_pending!, `user:${id}:totp`)).toThrow();
    expect(row.totp_secret).toBeNull();
  });

  test('enable accepts a code one step either side of now, not two', () => {
    now = T * STEP_MS + 10_000;
    for (const [delta, expected] of [
      [-2, '400 auth.mfa_invalid_code'],
      [2, '400 auth.mfa_invalid_code'],
      [1, 'ok'],
    ] as const) {
      const id = freshUser();
      const { secret } = startTotpSetup(app, db, id, 'Unit Co');
      expect(codeOf(() => enableTotp(app, db, id, { code: codeAt(secret, T + delta) }, null))).toBe(expected);
    }
  });

  test('enabling stores the secret, the step used, and ten recovery codes as SHA-256 hashes only', () => {
    now = T * STEP_MS + 10_000;
    entries = [];
    const id = freshUser();
    const session = pendingSession(id);
    const { secret } = startTotpSetup(app, db, id, 'Unit Co');
    const r = enableTotp(app, db, id, { code: codeAt(secret, T) }, session.sessionIdHash);
    expect(r.recoveryCodes).toHaveLength(10);
    expect(new Set(r.recoveryCodes).size).toBe(10);
    for (const c of r.recoveryCodes) expect(c).toMatch(RECOVERY_RE);
    const row = createUserRepository({ db }).byId(id)!;
    expect(row.totp_secret).toStartWith('sf1.');
    expect(secretsOf(db).unseal(row.totp_secret!, `user:${id}:totp`)).toBe(secret);
    expect(row.totp_pending).toBeNull();
    expect(row.totp_last_step).toBe(T);
    const stored = db
      .query<{ code_hash: string }, [string]>(
        'SELECT code_hash FROM recovery_codes WHERE user_id = ? ORDER BY code_hash',
      )
      .all(id)
      .map((x) => x.code_hash);
    expect(stored).toEqual(r.recoveryCodes.map((c) => sha256Hex(c.replaceAll('-', ''))).sort());
    expect(mfaPending(session.sessionIdHash)).toBe(0);
    expect(entries.map((e) => [e.action, e.details])).toEqual([
      ['user.mfa_enabled', { method: 'totp', completed_sign_in: true }],
    ]);
  });

  test('a code is accepted once: the same step, or an earlier one, is refused afterwards', () => {
    now = T * STEP_MS + 10_000;
    const u = enrolled(); // enabled with step T-1
    const s1 = pendingSession(u.id);
    // T-1 was used to enable: refused even though it is inside the window.
    expect(
      codeOf(() => verifySignInMfa(app, db, 'plt_unit', s1, { code: codeAt(u.secret, T - 1) }, { ip: null })),
    ).toBe('401 auth.mfa_invalid_code');
    expect(
      verifySignInMfa(app, db, 'plt_unit', s1, { code: codeAt(u.secret, T + 1) }, { ip: null }).method,
    ).toBe('totp');
    expect(mfaPending(s1.sessionIdHash)).toBe(0);
    // T is inside the window and was never used, but it is older than T+1: refused.
    const s2 = pendingSession(u.id);
    expect(
      codeOf(() => verifySignInMfa(app, db, 'plt_unit', s2, { code: codeAt(u.secret, T) }, { ip: null })),
    ).toBe('401 auth.mfa_invalid_code');
    expect(
      codeOf(() => verifySignInMfa(app, db, 'plt_unit', s2, { code: codeAt(u.secret, T + 1) }, { ip: null })),
    ).toBe('401 auth.mfa_invalid_code');
    expect(mfaPending(s2.sessionIdHash)).toBe(1);
    // The next step, once the clock reaches it, works.
    now = (T + 1) * STEP_MS + 5_000;
    expect(
      verifySignInMfa(app, db, 'plt_unit', s2, { code: codeAt(u.secret, T + 2) }, { ip: null }).method,
    ).toBe('totp');
  });

  test('recovery codes: typed in any case, with or without dashes, each works once', () => {
    now = T * STEP_MS + 10_000;
    const u = enrolled();
    const sloppy = u.recoveryCodes[0]!.toUpperCase().replaceAll('-', ' ');
    const r = verifySignInMfa(
      app,
      db,
      'plt_unit',
      pendingSession(u.id),
      { recovery_code: sloppy },
      { ip: null },
    );
    expect(r.method).toBe('recovery_code');
    expect(r.recoveryCodesLeft).toBe(9);
    expect(
      codeOf(() =>
        verifySignInMfa(
          app,
          db,
          'plt_unit',
          pendingSession(u.id),
          { recovery_code: u.recoveryCodes[0] },
          { ip: null },
        ),
      ),
    ).toBe('401 auth.mfa_invalid_code');
  });

  test('five wrong codes in 15 minutes throttle the user until the first leaves the window', () => {
    now = T * STEP_MS + 10_000;
    const start = now;
    entries = [];
    const u = enrolled();
    const s = pendingSession(u.id);
    for (let i = 0; i < 5; i++) {
      now = start + i * 1000;
      expect(
        codeOf(() => verifySignInMfa(app, db, 'plt_unit', s, { code: wrongCode(u.secret, T) }, { ip: null })),
      ).toBe('401 auth.mfa_invalid_code');
    }
    now = start + 5_000;
    let thrown: unknown;
    try {
      verifySignInMfa(app, db, 'plt_unit', s, { code: codeAt(u.secret, T) }, { ip: null });
    } catch (e) {
      thrown = e;
    }
    expect(thrown).toBeInstanceOf(AppError);
    expect((thrown as AppError).code).toBe('auth.throttled');
    expect((thrown as AppError).retryAfter).toBe(895);
    expect(entries.filter((e) => e.action === 'user.mfa_failed')).toHaveLength(5);
    // 15 minutes after the first failure, one more try is allowed.
    now = start + 15 * 60_000 + 1;
    const step = Math.floor(now / STEP_MS);
    expect(
      verifySignInMfa(app, db, 'plt_unit', s, { code: codeAt(u.secret, step) }, { ip: null }).method,
    ).toBe('totp');
  });

  test('malformed input is a 400 that names the field and does not count as a failure', () => {
    now = T * STEP_MS + 10_000;
    const u = enrolled();
    const s = pendingSession(u.id);
    for (const [input, field] of [
      [{}, '/code'],
      [{ code: '12345' }, '/code'],
      [{ code: 123456 }, '/code'],
      [{ code: '123456', recovery_code: 'x' }, '/code'],
      [{ recovery_code: 'too-short' }, '/recovery_code'],
    ] as const) {
      let thrown: AppError | undefined;
      try {
        verifySignInMfa(app, db, 'plt_unit', s, input, { ip: null });
      } catch (e) {
        thrown = e as AppError;
      }
      expect([thrown?.status, thrown?.code, thrown?.details?.[0]?.path]).toEqual([
        400,
        'auth.invalid_request',
        field,
      ]);
    }
    expect(verifySignInMfa(app, db, 'plt_unit', s, { code: codeAt(u.secret, T) }, { ip: null }).method).toBe(
      'totp',
    );
  });

  test('regenerating recovery codes invalidates the old ones; disabling clears everything', () => {
    now = T * STEP_MS + 10_000;
    const u = enrolled();
    const fresh = regenerateRecoveryCodes(app, db, 'plt_unit', u.id, { code: codeAt(u.secret, T) });
    expect(fresh).toHaveLength(10);
    expect(fresh.some((c) => u.recoveryCodes.includes(c))).toBe(false);
    expect(
      codeOf(() =>
        verifySignInMfa(
          app,
          db,
          'plt_unit',
          pendingSession(u.id),
          { recovery_code: u.recoveryCodes[1] },
          { ip: null },
        ),
      ),
    ).toBe('401 auth.mfa_invalid_code');
    const off = disableTotp(app, db, 'plt_unit', u.id, { recovery_code: fresh[0] });
    expect([off.totp_secret, off.totp_pending, off.totp_last_step]).toEqual([null, null, null]);
    expect(db.query('SELECT count(*) AS n FROM recovery_codes WHERE user_id = ?').get(u.id)).toEqual({
      n: 0,
    });
    expect(codeOf(() => disableTotp(app, db, 'plt_unit', u.id, { code: codeAt(u.secret, T + 1) }))).toBe(
      '409 auth.mfa_not_enabled',
    );
  });

  test('a pending sign-in can neither replace an authenticator nor skip it', () => {
    now = T * STEP_MS + 10_000;
    const u = enrolled();
    expect(codeOf(() => startTotpSetup(app, db, u.id, 'Unit Co'))).toBe('409 auth.mfa_already_enabled');
    expect(codeOf(() => enableTotp(app, db, u.id, { code: codeAt(u.secret, T) }, null))).toBe(
      '409 auth.mfa_already_enabled',
    );
  });

  test('under the policy the owner cannot turn MFA off, and without TOTP must enrol', () => {
    now = T * STEP_MS + 10_000;
    const u = enrolled('owner');
    writeIdentitySettings(db, { mfa_required_roles: ['owner', 'admin'] });
    expect(codeOf(() => disableTotp(app, db, 'plt_unit', u.id, { code: codeAt(u.secret, T) }))).toBe(
      '409 auth.mfa_required_by_policy',
    );
    const bare = freshUser('owner');
    expect(
      codeOf(() =>
        verifySignInMfa(app, db, 'plt_unit', pendingSession(bare), { code: '123456' }, { ip: null }),
      ),
    ).toBe('403 auth.mfa_enrolment_required');
    writeIdentitySettings(db, { mfa_required_roles: [] });
  });
});

// ---------------------------------------------------------------------------------------------
// Over HTTP, against a running server on a pinned clock.

/** The server's clock: TOTP steps pass when a test's authenticator lets them (no sleeping). */
const serverClock = new ManualClock(Date.UTC(2026, 10, 26, 12));

let env: Awaited<ReturnType<typeof serverWithPlatform>>;
const client = (host = env.host) => new PlatformClient(env.s.base, host);
let ownerClient: PlatformClient;
let userN = 0;

/** A new member of the `mfa` platform, signed in with a password (no MFA yet). */
async function newMember(): Promise<{ c: PlatformClient; email: string; password: string }> {
  userN += 1;
  const email = `member${userN}@mfa.test`;
  const password = 'a-long-password-1';
  const made = await ownerClient.json('POST', '/api/v1/users', { email, password, role: 'member' });
  expect(made.status).toBe(201);
  const c = client();
  expect((await c.signIn(email, password)).status).toBe(200);
  return { c, email, password };
}

/** A member with TOTP enabled: the signed-in client, its authenticator and recovery codes. */
async function enrolledMember() {
  const m = await newMember();
  const setup = await m.c.json<{ secret: string }>('POST', '/api/v1/me/mfa/totp/setup');
  expect(setup.status).toBe(200);
  const auth = new Authenticator(setup.body.secret, serverClock);
  const on = await m.c.json<{ recovery_codes: string[] }>('POST', '/api/v1/me/mfa/totp/enable', {
    code: await auth.next(),
  });
  expect(on.status).toBe(200);
  return { ...m, auth, recovery: on.body.recovery_codes };
}

/** Signs in with the password and checks that the second factor is owed. */
async function pendingSignIn(email: string, password: string, host = env.host): Promise<PlatformClient> {
  const c = client(host);
  const r = await c.signIn(email, password);
  expect(r.status).toBe(200);
  expect(r.body.mfa_required).toBe(true);
  return c;
}

beforeAll(async () => {
  env = await serverWithPlatform('mfa', { name: 'Mfa Test Co' }, { clock: serverClock });
  ownerClient = client();
  expect((await ownerClient.signIn(env.owner.email, env.owner.password)).status).toBe(200);
});
afterAll(async () => {
  await env.s.cleanup();
});

describe('TOTP enrolment and the second step of sign-in', () => {
  test(
    'enrol, sign out, sign in: /me is 401 until /auth/mfa takes a valid code, then 200',
    async () => {
      const m = await newMember();
      const setup = await m.c.json<{ secret: string; otpauth_url: string }>(
        'POST',
        '/api/v1/me/mfa/totp/setup',
      );
      expect(setup.status).toBe(200);
      expect(setup.res.headers.get('cache-control')).toBe('no-store');
      expect(setup.body.secret).toMatch(/^[A-Z2-7]{32}$/);
      const url = new URL(setup.body.otpauth_url);
      expect([url.protocol, url.host]).toEqual(['otpauth:', 'totp']);
      expect(decodeURIComponent(url.pathname)).toBe(`/Mfa Test Co:${m.email}`);
      expect(url.searchParams.get('issuer')).toBe('Mfa Test Co');
      expect(url.searchParams.get('secret')).toBe(setup.body.secret);
      const auth = new Authenticator(setup.body.secret, serverClock);

      const bad = await m.c.json<Err>('POST', '/api/v1/me/mfa/totp/enable', { code: auth.wrong() });
      expect(bad.status).toBe(400);
      expect(bad.body.error.code).toBe('auth.mfa_invalid_code');
      const on = await m.c.json<{ user: { mfa_enabled: boolean }; recovery_codes: string[] }>(
        'POST',
        '/api/v1/me/mfa/totp/enable',
        { code: await auth.next() },
      );
      expect(on.status).toBe(200);
      expect(on.body.user.mfa_enabled).toBe(true);
      expect(on.body.recovery_codes).toHaveLength(10);
      for (const c of on.body.recovery_codes) expect(c).toMatch(RECOVERY_RE);
      const me = await m.c.json<{ user: { mfa_enabled: boolean } }>('GET', '/api/v1/me');
      expect(me.body.user.mfa_enabled).toBe(true);

      expect((await m.c.json('POST', '/api/v1/auth/logout')).status).toBe(204);
      const c = await pendingSignIn(m.email, m.password);
      const before = await c.json<Err>('GET', '/api/v1/me');
      expect(before.status).toBe(401);
      expect(before.body.error.code).toBe('auth.mfa_required');
      const done = await c.json<{ mfa_required: boolean; method: string; recovery_codes_left: number }>(
        'POST',
        '/api/v1/auth/mfa',
        { code: await auth.next() },
      );
      expect(done.status).toBe(200);
      expect(done.body).toMatchObject({ mfa_required: false, method: 'totp', recovery_codes_left: 10 });
      const after = await c.json<{ user: { email: string } }>('GET', '/api/v1/me');
      expect(after.status).toBe(200);
      expect(after.body.user.email).toBe(m.email);
      const again = await c.json<Err>('POST', '/api/v1/auth/mfa', { code: '123456' });
      expect(again.status).toBe(409);
      expect(again.body.error.code).toBe('auth.mfa_not_pending');
    },
    TOTP_TIMEOUT,
  );

  test(
    'a code that completed one sign-in cannot complete another',
    async () => {
      const m = await enrolledMember();
      const first = await pendingSignIn(m.email, m.password);
      const code = await m.auth.next();
      expect((await first.json('POST', '/api/v1/auth/mfa', { code })).status).toBe(200);
      const second = await pendingSignIn(m.email, m.password);
      const reused = await second.json<Err>('POST', '/api/v1/auth/mfa', { code });
      expect(reused.status).toBe(401);
      expect(reused.body.error.code).toBe('auth.mfa_invalid_code');
      expect((await second.json('GET', '/api/v1/me')).status).toBe(401);
    },
    TOTP_TIMEOUT,
  );

  test(
    'wrong codes are 401; after five the user waits (429 with Retry-After), even with the right code',
    async () => {
      const m = await enrolledMember();
      const c = await pendingSignIn(m.email, m.password);
      for (let i = 0; i < 5; i++) {
        const r = await c.json<Err>('POST', '/api/v1/auth/mfa', { code: m.auth.wrong() });
        expect(r.status).toBe(401);
        expect(r.body.error.code).toBe('auth.mfa_invalid_code');
      }
      const r = await c.json<Err>('POST', '/api/v1/auth/mfa', { code: await m.auth.peek() });
      expect(r.status).toBe(429);
      expect(r.body.error.code).toBe('auth.throttled');
      const wait = Number(r.res.headers.get('retry-after'));
      expect(wait).toBeGreaterThan(890);
      expect(wait).toBeLessThanOrEqual(900);
      expect((await c.json('GET', '/api/v1/me')).status).toBe(401);
    },
    TOTP_TIMEOUT,
  );

  test(
    'a recovery code works once and only once',
    async () => {
      const m = await enrolledMember();
      const a = await pendingSignIn(m.email, m.password);
      const ok = await a.json<{ method: string; recovery_codes_left: number }>('POST', '/api/v1/auth/mfa', {
        recovery_code: m.recovery[0],
      });
      expect(ok.status).toBe(200);
      expect(ok.body).toMatchObject({ method: 'recovery_code', recovery_codes_left: 9 });
      expect((await a.json('GET', '/api/v1/me')).status).toBe(200);
      const b = await pendingSignIn(m.email, m.password);
      const used = await b.json<Err>('POST', '/api/v1/auth/mfa', { recovery_code: m.recovery[0] });
      expect(used.status).toBe(401);
      expect(used.body.error.code).toBe('auth.mfa_invalid_code');
      expect(used.body.error.details).toEqual([
        { path: '/recovery_code', reason: 'wrong, expired or already used' },
      ]);
    },
    TOTP_TIMEOUT,
  );

  test(
    'new recovery codes replace the old; turning MFA off needs a current code and ends the second step',
    async () => {
      const m = await enrolledMember();
      const fresh = await m.c.json<{ recovery_codes: string[] }>('POST', '/api/v1/me/mfa/recovery-codes', {
        code: await m.auth.next(),
      });
      expect(fresh.status).toBe(200);
      expect(fresh.body.recovery_codes).toHaveLength(10);
      const old = await pendingSignIn(m.email, m.password);
      expect((await old.json('POST', '/api/v1/auth/mfa', { recovery_code: m.recovery[1] })).status).toBe(401);
      expect(
        (await old.json('POST', '/api/v1/auth/mfa', { recovery_code: fresh.body.recovery_codes[0] })).status,
      ).toBe(200);

      const wrong = await m.c.json<Err>('DELETE', '/api/v1/me/mfa/totp', { code: m.auth.wrong() });
      expect(wrong.status).toBe(400);
      expect(wrong.body.error.code).toBe('auth.mfa_invalid_code');
      const off = await m.c.json<{ user: { mfa_enabled: boolean } }>('DELETE', '/api/v1/me/mfa/totp', {
        code: await m.auth.next(),
      });
      expect(off.status).toBe(200);
      expect(off.body.user.mfa_enabled).toBe(false);
      const r = await client().signIn(m.email, m.password);
      expect(r.body.mfa_required).toBe(false);
    },
    TOTP_TIMEOUT,
  );

  test(
    'CSRF: pending and signed-in sessions both need x-csrf-token on these writes',
    async () => {
      const m = await enrolledMember();
      const p = await pendingSignIn(m.email, m.password);
      const token = p.csrf;
      expect(token).toBeString();
      p.csrf = null;
      const noCsrf = await p.json<Err>('POST', '/api/v1/auth/mfa', { code: await m.auth.peek() });
      expect(noCsrf.status).toBe(403);
      expect(noCsrf.body.error.code).toBe('auth.csrf');
      const wrongCsrf = await p.fetch('/api/v1/auth/mfa', {
        method: 'POST',
        headers: { 'x-csrf-token': 'not-the-token' },
        json: { recovery_code: m.recovery[0] },
      });
      expect(wrongCsrf.status).toBe(403);
      p.csrf = token;
      expect((await p.json('POST', '/api/v1/auth/mfa', { recovery_code: m.recovery[0] })).status).toBe(200);

      const signedIn = m.c;
      const saved = signedIn.csrf;
      signedIn.csrf = null;
      for (const [method, path] of [
        ['DELETE', '/api/v1/me/mfa/totp'],
        ['POST', '/api/v1/me/mfa/recovery-codes'],
        ['POST', '/api/v1/me/mfa/totp/setup'],
      ] as const) {
        const r = await signedIn.json<Err>(method, path, { recovery_code: m.recovery[1] });
        expect([path, r.status, r.body.error.code]).toEqual([path, 403, 'auth.csrf']);
      }
      signedIn.csrf = saved;
      expect((await signedIn.json('GET', '/api/v1/me')).status).toBe(200);
    },
    TOTP_TIMEOUT,
  );

  test(
    'a pending session reaches only the MFA routes, and cannot swap the authenticator',
    async () => {
      const m = await enrolledMember();
      const p = await pendingSignIn(m.email, m.password);
      const setup = await p.json<Err>('POST', '/api/v1/me/mfa/totp/setup');
      expect(setup.status).toBe(409);
      expect(setup.body.error.code).toBe('auth.mfa_already_enabled');
      const off = await p.json<Err>('DELETE', '/api/v1/me/mfa/totp', { code: await m.auth.peek() });
      expect(off.status).toBe(401);
      expect(off.body.error.code).toBe('auth.mfa_required');
      const codes = await p.json<Err>('POST', '/api/v1/me/mfa/recovery-codes', { code: '123456' });
      expect(codes.status).toBe(401);
      const anon = await client().json<Err>('POST', '/api/v1/auth/mfa', { code: '123456' });
      expect(anon.status).toBe(401);
      expect(anon.body.error.code).toBe('auth.required');
    },
    TOTP_TIMEOUT,
  );

  test(
    'enabling, passing, failing and using a recovery code are audited',
    async () => {
      const m = await enrolledMember();
      const p = await pendingSignIn(m.email, m.password);
      expect((await p.json('POST', '/api/v1/auth/mfa', { code: m.auth.wrong() })).status).toBe(401);
      expect((await p.json('POST', '/api/v1/auth/mfa', { code: await m.auth.next() })).status).toBe(200);
      const q = await pendingSignIn(m.email, m.password);
      expect((await q.json('POST', '/api/v1/auth/mfa', { recovery_code: m.recovery[2] })).status).toBe(200);
      const me = await m.c.json<{ user: { id: string } }>('GET', '/api/v1/me');
      const audit = await ownerClient.json<{
        entries: { action: string; target: string; details: Record<string, unknown> }[];
      }>('GET', '/api/v1/audit?limit=500');
      expect(audit.status).toBe(200);
      const mine = audit.body.entries
        .filter((e) => e.target === `user:${me.body.user.id}` && e.action.startsWith('user.mfa_'))
        .map((e) => [e.action, e.details.method]);
      expect(mine).toEqual([
        ['user.mfa_enabled', 'totp'],
        ['user.mfa_failed', 'totp'],
        ['user.mfa_passed', 'totp'],
        ['user.mfa_passed', 'recovery_code'],
      ]);
    },
    TOTP_TIMEOUT,
  );
});

describe('a platform that requires MFA for owners and admins', () => {
  const host = 'mfapol.localhost';
  let owner: { email: string; password: string };
  let ownerAuth: Authenticator;
  let ownerSignedIn: PlatformClient;

  beforeAll(async () => {
    const res = await operatorApi(env.s.base, env.operatorToken, 'POST', '/platforms', {
      slug: 'mfapol',
      name: 'Policy Co',
    });
    expect(res.status).toBe(201);
    owner = ((await res.json()) as { admin: { email: string; password: string } }).admin;
    const c = client(host);
    expect((await c.signIn(owner.email, owner.password)).status).toBe(200);
    for (const [email, role] of [
      ['member@mfapol.test', 'member'],
      ['admin@mfapol.test', 'admin'],
    ]) {
      const made = await c.json('POST', '/api/v1/users', { email, password: 'a-long-password-1', role });
      expect(made.status).toBe(201);
    }
    const set = await c.json<{ mfa_required_roles: string[] }>('PATCH', '/api/v1/settings/identity', {
      mfa_required_roles: ['owner', 'admin'],
    });
    expect(set.status).toBe(200);
    expect(set.body.mfa_required_roles).toEqual(['owner', 'admin']);
  });

  test(
    'the owner without TOTP signs in pending, is told to enrol, and setup+enable completes the sign-in',
    async () => {
      const c = client(host);
      const r = await c.signIn(owner.email, owner.password);
      expect(r.body.mfa_required).toBe(true);
      expect(r.body.csrf_token).toBeString();
      expect((await c.json<Err>('GET', '/api/v1/me')).body.error.code).toBe('auth.mfa_required');
      const step = await c.json<Err>('POST', '/api/v1/auth/mfa', { code: '123456' });
      expect(step.status).toBe(403);
      expect(step.body.error.code).toBe('auth.mfa_enrolment_required');
      expect(step.body.error.message).toContain('POST /api/v1/me/mfa/totp/setup');

      const csrf = c.csrf;
      c.csrf = null;
      expect((await c.json<Err>('POST', '/api/v1/me/mfa/totp/setup')).body.error.code).toBe('auth.csrf');
      c.csrf = csrf;
      const setup = await c.json<{ secret: string; otpauth_url: string }>(
        'POST',
        '/api/v1/me/mfa/totp/setup',
      );
      expect(setup.status).toBe(200);
      expect(new URL(setup.body.otpauth_url).searchParams.get('issuer')).toBe('Policy Co');
      ownerAuth = new Authenticator(setup.body.secret, serverClock);
      const on = await c.json<{ recovery_codes: string[]; mfa_required: boolean }>(
        'POST',
        '/api/v1/me/mfa/totp/enable',
        {
          code: await ownerAuth.next(),
        },
      );
      expect(on.status).toBe(200);
      expect(on.body.mfa_required).toBe(false);
      expect(on.body.recovery_codes).toHaveLength(10);
      const me = await c.json<{ role: string; user: { mfa_enabled: boolean } }>('GET', '/api/v1/me');
      expect(me.status).toBe(200);
      expect(me.body.role).toBe('owner');
      expect(me.body.user.mfa_enabled).toBe(true);
      ownerSignedIn = c;
    },
    TOTP_TIMEOUT,
  );

  test('a member is not affected; an admin without TOTP must enrol', async () => {
    const member = client(host);
    const r = await member.signIn('member@mfapol.test', 'a-long-password-1');
    expect(r.body.mfa_required).toBe(false);
    expect((await member.json('GET', '/api/v1/me')).status).toBe(200);
    const admin = client(host);
    const a = await admin.signIn('admin@mfapol.test', 'a-long-password-1');
    expect(a.body.mfa_required).toBe(true);
    const step = await admin.json<Err>('POST', '/api/v1/auth/mfa', { code: '123456' });
    expect([step.status, step.body.error.code]).toEqual([403, 'auth.mfa_enrolment_required']);
  });

  test(
    'the owner cannot turn MFA off while the policy holds, and signs in with a code after',
    async () => {
      const off = await ownerSignedIn.json<Err>('DELETE', '/api/v1/me/mfa/totp', {
        code: await ownerAuth.peek(),
      });
      expect(off.status).toBe(409);
      expect(off.body.error.code).toBe('auth.mfa_required_by_policy');
      expect(
        (await ownerSignedIn.json<{ user: { mfa_enabled: boolean } }>('GET', '/api/v1/me')).body.user
          .mfa_enabled,
      ).toBe(true);
      const again = await pendingSignIn(owner.email, owner.password, host);
      const done = await again.json<{ method: string }>('POST', '/api/v1/auth/mfa', {
        code: await ownerAuth.next(),
      });
      expect(done.status).toBe(200);
      expect(done.body.method).toBe('totp');
    },
    TOTP_TIMEOUT,
  );
});
