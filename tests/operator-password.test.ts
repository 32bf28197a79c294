import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { Secret, TOTP } from 'otpauth';
import { type InProcessServer, inProcessServer } from './inproc.ts';

let s: InProcessServer;

beforeAll(async () => {
  s = await inProcessServer();
});
afterAll(() => s.close());

const consoleApi = (
  path: string,
  init: { method?: string; body?: unknown; cookie?: string; csrf?: string } = {},
) =>
  s.request('localhost', `/_operator/api${path}`, {
    method: init.method ?? 'GET',
    headers: {
      ...(init.body === undefined ? {} : { 'content-type': 'application/json' }),
      ...(init.cookie ? { cookie: `sf_operator_session=${init.cookie}` } : {}),
      ...(init.csrf ? { 'x-csrf-token': init.csrf } : {}),
    },
    body: init.body === undefined ? undefined : JSON.stringify(init.body),
  });

async function signIn(email: string, password: string) {
  const res = await consoleApi('/sign-in', { method: 'POST', body: { email, password } });
  const cookie = /sf_operator_session=([^;]+)/.exec(res.headers.get('set-cookie') ?? '')?.[1] ?? null;
  const body = (await res.json()) as {
    mfa_required?: boolean;
    csrf_token?: string;
    operator?: { id: string; email: string };
    error?: { code: string };
  };
  return { status: res.status, cookie, body, retryAfter: res.headers.get('retry-after') };
}

const auditActions = (): string[] =>
  s.app.control
    .query<{ action: string }, []>('SELECT action FROM audit_log ORDER BY seq')
    .all()
    .map((r) => r.action);

describe('console sign-in takes JSON from its own pages only (login CSRF; found by review)', () => {
  const post = (path: string, headers: Record<string, string>, body: string) =>
    s.request('localhost', `/_operator/api${path}`, { method: 'POST', headers, body });
  const json = () => JSON.stringify({ email: s.operator.email, password: s.operator.password });
  const form = () =>
    `email=${encodeURIComponent(s.operator.email)}&password=${encodeURIComponent(s.operator.password)}`;
  const cases: [string, string, Record<string, string>, () => string, number, string][] = [
    [
      'a form another site posts',
      '/sign-in',
      { 'content-type': 'application/x-www-form-urlencoded', origin: 'https://evil.example' },
      form,
      415,
      'request.unsupported_media_type',
    ],
    [
      'a form with no Origin',
      '/sign-in',
      { 'content-type': 'application/x-www-form-urlencoded' },
      form,
      415,
      'request.unsupported_media_type',
    ],
    [
      'text/plain (a simple request)',
      '/sign-in',
      { 'content-type': 'text/plain', origin: 'https://evil.example' },
      json,
      415,
      'request.unsupported_media_type',
    ],
    [
      'JSON from another origin',
      '/sign-in',
      { 'content-type': 'application/json', origin: 'https://evil.example' },
      json,
      403,
      'auth.cross_origin',
    ],
    [
      'JSON, Sec-Fetch-Site cross-site',
      '/sign-in',
      { 'content-type': 'application/json', 'sec-fetch-site': 'cross-site' },
      json,
      403,
      'auth.cross_origin',
    ],
    [
      'JSON, Origin null',
      '/sign-in',
      { 'content-type': 'application/json', origin: 'null' },
      json,
      403,
      'auth.cross_origin',
    ],
    [
      'the MFA step from another origin',
      '/sign-in/mfa',
      { 'content-type': 'application/json', origin: 'https://evil.example' },
      () => '{"code":"123456"}',
      403,
      'auth.cross_origin',
    ],
  ];
  for (const [name, path, headers, body, status, code] of cases) {
    test(`${name}: ${status} ${code}, no session cookie`, async () => {
      const res = await post(path, headers, body());
      expect(res.status).toBe(status);
      expect(((await res.json()) as { error: { code: string } }).error.code).toBe(code);
      expect(res.headers.get('set-cookie')).toBeNull();
    });
  }
  test("the console's own origin signs in (and the refusals above counted no failure)", async () => {
    const res = await post(
      '/sign-in',
      {
        'content-type': 'application/json',
        origin: 'http://localhost:8080',
        'sec-fetch-site': 'same-origin',
      },
      json(),
    );
    expect(res.status).toBe(200);
    expect(res.headers.get('set-cookie')).toContain('sf_operator_session=');
  });
});

describe('operator password sign-in on the console host', () => {
  test('the password printed at first run signs in; the cookie works on operator routes, writes with the CSRF token', async () => {
    const r = await signIn(s.operator.email, s.operator.password);
    expect(r.status).toBe(200);
    expect(r.body.mfa_required).toBe(false);
    expect(r.body.operator?.email).toBe(s.operator.email);
    expect(r.cookie).toMatch(/^[A-Za-z0-9_-]{40,}$/);
    const me = await consoleApi('/me', { cookie: r.cookie! });
    expect(me.status).toBe(200);
    expect(((await me.json()) as { role: string }).role).toBe('operator_admin');
    const noCsrf = await consoleApi('/tokens', { method: 'POST', body: { name: 'x' }, cookie: r.cookie! });
    expect(noCsrf.status).toBe(403);
    const made = await consoleApi('/tokens', {
      method: 'POST',
      body: { name: 'from-console' },
      cookie: r.cookie!,
      csrf: r.body.csrf_token!,
    });
    expect(made.status).toBe(201);
    expect(auditActions()).toContain('operator.signed_in');
  });

  test('wrong passwords are refused alike (unknown email too), then throttled: 429 even for the right one', async () => {
    const unknown = await signIn('nobody@localhost', 'whatever-password');
    expect([unknown.status, unknown.body.error?.code]).toEqual([401, 'auth.invalid_credentials']);
    const codes: number[] = [];
    for (let i = 0; i < 5; i++) codes.push((await signIn(s.operator.email, `wrong-${i}`)).status);
    expect(codes).toEqual([401, 401, 401, 401, 401]);
    const locked = await signIn(s.operator.email, s.operator.password);
    expect(locked.status).toBe(429);
    expect(locked.body.error?.code).toBe('auth.throttled');
    expect(Number(locked.retryAfter)).toBeGreaterThan(0);
    expect(auditActions().filter((a) => a === 'operator.sign_in_failed').length).toBe(6);
    // The lock lapses (15 minutes, on the injected clock); the right password works again.
    s.clock.advance(15 * 60_000 + 1_000);
    expect((await signIn(s.operator.email, s.operator.password)).status).toBe(200);
  });

  test('an operator with TOTP: the session waits for the code; wrong codes refused; the right one completes it', async () => {
    const first = await signIn(s.operator.email, s.operator.password);
    const setup = await consoleApi('/me/mfa/totp/setup', {
      method: 'POST',
      cookie: first.cookie!,
      csrf: first.body.csrf_token!,
    });
    expect(setup.status).toBe(200);
    const { secret } = (await setup.json()) as { secret: string };
    const totp = new TOTP({ secret: Secret.fromBase32(secret) });
    const enable = await consoleApi('/me/mfa/totp/enable', {
      method: 'POST',
      body: { code: totp.generate({ timestamp: s.clock.now() }) },
      cookie: first.cookie!,
      csrf: first.body.csrf_token!,
    });
    expect(enable.status).toBe(200);
    s.clock.advance(60_000);

    const pending = await signIn(s.operator.email, s.operator.password);
    expect(pending.status).toBe(200);
    expect(pending.body.mfa_required).toBe(true);
    // Until the code, the cookie opens nothing.
    expect((await consoleApi('/me', { cookie: pending.cookie! })).status).toBe(401);
    const wrong = await consoleApi('/sign-in/mfa', {
      method: 'POST',
      body: { code: '000000' },
      cookie: pending.cookie!,
    });
    expect(wrong.status).toBe(401);
    const code = totp.generate({ timestamp: s.clock.now() });
    const ok = await consoleApi('/sign-in/mfa', { method: 'POST', body: { code }, cookie: pending.cookie! });
    expect(ok.status).toBe(200);
    expect((await consoleApi('/me', { cookie: pending.cookie! })).status).toBe(200);
    // The code is spent: a second pending sign-in cannot reuse it.
    const again = await signIn(s.operator.email, s.operator.password);
    const replay = await consoleApi('/sign-in/mfa', {
      method: 'POST',
      body: { code },
      cookie: again.cookie!,
    });
    expect(replay.status).toBe(401);
    expect(auditActions()).toEqual(
      expect.arrayContaining(['operator.mfa_enabled', 'operator.mfa_failed', 'operator.mfa_passed']),
    );

    // An admin (here with the API token) removes a lost authenticator; the operator's sessions end.
    const reset = await s.operatorApi('DELETE', `/operators/${first.body.operator!.id}/mfa`);
    expect(reset.status).toBe(200);
    expect((await consoleApi('/me', { cookie: pending.cookie! })).status).toBe(401);
    const plain = await signIn(s.operator.email, s.operator.password);
    expect(plain.body.mfa_required).toBe(false);
  });

  test('five wrong codes lock the second step (429)', async () => {
    // The replayed code above counted once; let that window pass.
    s.clock.advance(15 * 60_000 + 1_000);
    const op = (await signIn(s.operator.email, s.operator.password)).body;
    const c = await signIn(s.operator.email, s.operator.password);
    const setup = await consoleApi('/me/mfa/totp/setup', {
      method: 'POST',
      cookie: c.cookie!,
      csrf: c.body.csrf_token!,
    });
    const { secret } = (await setup.json()) as { secret: string };
    const totp = new TOTP({ secret: Secret.fromBase32(secret) });
    await consoleApi('/me/mfa/totp/enable', {
      method: 'POST',
      body: { code: totp.generate({ timestamp: s.clock.now() }) },
      cookie: c.cookie!,
      csrf: c.body.csrf_token!,
    });
    s.clock.advance(60_000);
    const pending = await signIn(s.operator.email, s.operator.password);
    const codes: number[] = [];
    for (let i = 0; i < 6; i++)
      codes.push(
        (
          await consoleApi('/sign-in/mfa', {
            method: 'POST',
            body: { code: '000000' },
            cookie: pending.cookie!,
          })
        ).status,
      );
    expect(codes).toEqual([401, 401, 401, 401, 401, 429]);
    const right = await consoleApi('/sign-in/mfa', {
      method: 'POST',
      body: { code: totp.generate({ timestamp: s.clock.now() }) },
      cookie: pending.cookie!,
    });
    expect(right.status).toBe(429);
    expect(op.operator?.email).toBe(s.operator.email);
  });
});
