import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { operatorApi, startTestServer } from './helpers.ts';

// Issue 8 point 10: operator tokens can be listed, revoked, expire, be narrowed, and die with
// their operator's status; operators can be disabled, demoted and removed, never the last admin.

type Server = Awaited<ReturnType<typeof startTestServer>>;
let s: Server;
let root: string;
let seq = 0;

const api = (token: string, method: string, path: string, body?: unknown) =>
  operatorApi(s.base, token, method, path, body);
async function ok<T>(res: Promise<Response>, status = 200): Promise<T> {
  const r = await res;
  const text = await r.text();
  if (r.status !== status) throw new Error(`expected ${status}, got ${r.status}: ${text}`);
  return JSON.parse(text) as T;
}
/** A fresh operator (by the first admin's token). */
async function newOperator(role: 'operator_admin' | 'operator_viewer') {
  const email = `op${++seq}@ops.test`;
  const r = await ok<{ operator: { id: string } }>(api(root, 'POST', '/operators', { email, role }), 201);
  return { id: r.operator.id, email };
}
/** A new token for `email`, made by the first admin. */
async function tokenFor(email: string, extra: Record<string, unknown> = {}) {
  return ok<{ id: string; token: string; role: string; expires_at: string }>(
    api(root, 'POST', '/tokens', { name: 'test', operator: email, ...extra }),
    201,
  );
}
/**
 * Admin A (with a token of its own) makes a token for admin B; it works; then the first admin
 * demotes, disables or removes A. Returns B's token (which A has seen).
 */
async function tokenMadeByThenUndo(undo: 'demote' | 'disable' | 'remove') {
  const a = await newOperator('operator_admin');
  const b = await newOperator('operator_admin');
  const aToken = (await tokenFor(a.email)).token;
  const made = await ok<{ id: string; token: string }>(
    api(aToken, 'POST', '/tokens', { name: 'for-b', operator: b.email }),
    201,
  );
  expect((await api(made.token, 'GET', '/platforms')).status).toBe(200);
  if (undo === 'demote') await ok(api(root, 'PATCH', `/operators/${a.id}`, { role: 'operator_viewer' }));
  else if (undo === 'disable') await ok(api(root, 'POST', `/operators/${a.id}/disable`, {}));
  else await ok(api(root, 'DELETE', `/operators/${a.id}`));
  return made;
}
const errorOf = async (r: Response) => ((await r.json()) as { error: { code: string } }).error.code;
const auditActions = () =>
  s.app.control
    .query<{ action: string; target: string }, []>('SELECT action, target FROM audit_log ORDER BY seq')
    .all();

beforeAll(async () => {
  s = await startTestServer();
  root = s.firstRun!.token;
});
afterAll(async () => {
  await s.cleanup();
});

describe('attacks: operator credentials that must stop working (refused, nothing done)', () => {
  const cases: {
    name: string;
    /** Prepares the attacker's bearer token (and whatever the admin did to it). */
    setup: () => Promise<string>;
    method: string;
    path: string | (() => string);
    body?: () => unknown;
    status: number;
    code: string;
  }[] = [
    {
      name: "a disabled operator admin's token creates a platform (it did before the fix)",
      setup: async () => {
        const op = await newOperator('operator_admin');
        const t = await tokenFor(op.email);
        expect((await api(t.token, 'GET', '/platforms')).status).toBe(200);
        await ok(api(root, 'POST', `/operators/${op.id}/disable`, {}));
        return t.token;
      },
      method: 'POST',
      path: '/platforms',
      body: () => ({ slug: `made-by-disabled-${seq}` }),
      status: 401,
      code: 'auth.invalid_token',
    },
    {
      name: "a disabled operator viewer's token reads platforms",
      setup: async () => {
        const op = await newOperator('operator_viewer');
        const t = await tokenFor(op.email);
        await ok(api(root, 'POST', `/operators/${encodeURIComponent(op.email)}/disable`, {}));
        return t.token;
      },
      method: 'GET',
      path: '/platforms',
      status: 401,
      code: 'auth.invalid_token',
    },
    {
      name: "a removed operator's token",
      setup: async () => {
        const op = await newOperator('operator_admin');
        const t = await tokenFor(op.email);
        await ok(api(root, 'DELETE', `/operators/${op.id}`));
        return t.token;
      },
      method: 'GET',
      path: '/platforms',
      status: 401,
      code: 'auth.invalid_token',
    },
    {
      name: 'a revoked token, used a moment before',
      setup: async () => {
        const t = await tokenFor((await newOperator('operator_admin')).email);
        expect((await api(t.token, 'GET', '/platforms')).status).toBe(200);
        await ok(api(root, 'DELETE', `/tokens/${t.id}`));
        return t.token;
      },
      method: 'POST',
      path: '/platforms',
      body: () => ({ slug: `made-by-revoked-${seq}` }),
      status: 401,
      code: 'auth.invalid_token',
    },
    {
      name: 'an expired token',
      setup: async () => {
        const t = await tokenFor((await newOperator('operator_admin')).email, { expires_in: '1h' });
        s.app.control
          .query('UPDATE operator_tokens SET expires_at = ? WHERE id = ?')
          .run(Date.now() - 1, t.id);
        return t.token;
      },
      method: 'GET',
      path: '/platforms',
      status: 401,
      code: 'auth.invalid_token',
    },
    {
      name: "an admin's token capped at operator_viewer creates a platform",
      setup: async () =>
        (await tokenFor((await newOperator('operator_admin')).email, { role: 'operator_viewer' })).token,
      method: 'POST',
      path: '/platforms',
      body: () => ({ slug: `made-by-capped-${seq}` }),
      status: 403,
      code: 'auth.forbidden',
    },
    {
      name: "a demoted admin's old token (made while admin) creates a platform",
      setup: async () => {
        const op = await newOperator('operator_admin');
        const t = await tokenFor(op.email);
        await ok(api(root, 'PATCH', `/operators/${op.id}`, { role: 'operator_viewer' }));
        return t.token;
      },
      method: 'POST',
      path: '/platforms',
      body: () => ({ slug: `made-by-demoted-${seq}` }),
      status: 403,
      code: 'auth.forbidden',
    },
    {
      name: "a demoted admin's token made with an explicit operator_admin role",
      setup: async () => {
        const op = await newOperator('operator_admin');
        const t = await tokenFor(op.email, { role: 'operator_admin' });
        await ok(api(root, 'PATCH', `/operators/${op.id}`, { role: 'operator_viewer' }));
        return t.token;
      },
      method: 'POST',
      path: '/operators',
      body: () => ({ email: `planted-${seq}@ops.test`, role: 'operator_admin' }),
      status: 403,
      code: 'auth.forbidden',
    },
    // Red-team variants: admin A makes a token for operator B, so A holds B's secret; once A
    // loses the admin role (or the account), that token must not keep A's old power.
    {
      name: 'a token admin A made for admin B, after A is demoted, creates a platform',
      setup: async () => (await tokenMadeByThenUndo('demote')).token,
      method: 'POST',
      path: '/platforms',
      body: () => ({ slug: `made-by-demoted-maker-${seq}` }),
      status: 403,
      code: 'auth.forbidden',
    },
    {
      name: 'a token admin A made for admin B, after A is disabled, reads platforms',
      setup: async () => (await tokenMadeByThenUndo('disable')).token,
      method: 'GET',
      path: '/platforms',
      status: 401,
      code: 'auth.invalid_token',
    },
    {
      name: 'a token admin A made for admin B, after A is removed, makes an operator',
      setup: async () => (await tokenMadeByThenUndo('remove')).token,
      method: 'POST',
      path: '/operators',
      body: () => ({ email: `planted-by-removed-maker-${seq}@ops.test`, role: 'operator_admin' }),
      status: 401,
      code: 'auth.invalid_token',
    },
    {
      name: 'a viewer makes themselves a token',
      setup: async () => (await tokenFor((await newOperator('operator_viewer')).email)).token,
      method: 'POST',
      path: '/tokens',
      body: () => ({ name: 'mine' }),
      status: 403,
      code: 'auth.forbidden',
    },
    {
      name: 'a viewer makes a token for the first admin',
      setup: async () => (await tokenFor((await newOperator('operator_viewer')).email)).token,
      method: 'POST',
      path: '/tokens',
      body: () => ({ name: 'theirs', operator: 'admin@localhost' }),
      status: 403,
      code: 'auth.forbidden',
    },
    {
      name: 'a viewer disables the first admin',
      setup: async () => (await tokenFor((await newOperator('operator_viewer')).email)).token,
      method: 'POST',
      path: `/operators/${encodeURIComponent('admin@localhost')}/disable`,
      body: () => ({}),
      status: 403,
      code: 'auth.forbidden',
    },
    {
      name: 'a viewer promotes themselves',
      setup: async () => {
        const op = await newOperator('operator_viewer');
        return (await tokenFor(op.email)).token;
      },
      method: 'PATCH',
      path: () => `/operators/op${seq}@ops.test`,
      body: () => ({ role: 'operator_admin' }),
      status: 403,
      code: 'auth.forbidden',
    },
    {
      name: "a viewer revokes the first admin's token (someone else's token is not found)",
      setup: async () => (await tokenFor((await newOperator('operator_viewer')).email)).token,
      method: 'DELETE',
      path: '/tokens/FIRST_ADMIN_TOKEN',
      status: 404,
      code: 'operator_token.not_found',
    },
    {
      name: 'a viewer removes an admin',
      setup: async () => (await tokenFor((await newOperator('operator_viewer')).email)).token,
      method: 'DELETE',
      path: `/operators/${encodeURIComponent('admin@localhost')}`,
      status: 403,
      code: 'auth.forbidden',
    },
  ];
  for (const c of cases) {
    test(c.name, async () => {
      const token = await c.setup();
      const platformsBefore = s.tenancy.list().length;
      const operatorsBefore = JSON.stringify(
        s.app.control.query('SELECT * FROM operators ORDER BY id').all(),
      );
      const tokensBefore = s.app.control
        .query<{ n: number }, []>('SELECT count(*) AS n FROM operator_tokens')
        .get()!.n;
      const firstTokenId = s.app.control
        .query<{ id: string }, []>("SELECT id FROM operator_tokens WHERE name = 'initial'")
        .get()!.id;
      const path = (typeof c.path === 'string' ? c.path : c.path()).replace(
        'FIRST_ADMIN_TOKEN',
        firstTokenId,
      );
      const res = await api(token, c.method, path, c.body?.());
      expect({ status: res.status, code: await errorOf(res) }).toEqual({ status: c.status, code: c.code });
      // Nothing was done: no platform, no operator change, no new token, the root token still works.
      expect(s.tenancy.list().length).toBe(platformsBefore);
      expect(JSON.stringify(s.app.control.query('SELECT * FROM operators ORDER BY id').all())).toBe(
        operatorsBefore,
      );
      expect(
        s.app.control.query<{ n: number }, []>('SELECT count(*) AS n FROM operator_tokens').get()!.n,
      ).toBe(tokensBefore);
      expect((await api(root, 'GET', '/platforms')).status).toBe(200);
    });
  }
});

describe('attacks: tokens wider or longer-lived than allowed are not made', () => {
  const cases: {
    name: string;
    body: () => Promise<Record<string, unknown>>;
    status: number;
    code: string;
    path?: string;
  }[] = [
    {
      name: 'a token for a viewer with the admin role',
      body: async () => ({ operator: (await newOperator('operator_viewer')).email, role: 'operator_admin' }),
      status: 400,
      code: 'operator_token.role_too_wide',
      path: '/role',
    },
    {
      name: 'a token with a role that does not exist',
      body: async () => ({ role: 'operator_root' }),
      status: 400,
      code: 'operator_token.role_invalid',
      path: '/role',
    },
    {
      name: 'a token for a disabled operator',
      body: async () => {
        const op = await newOperator('operator_admin');
        await ok(api(root, 'POST', `/operators/${op.id}/disable`, {}));
        return { operator: op.email };
      },
      status: 409,
      code: 'operator.disabled',
    },
    {
      name: 'a token for an operator that does not exist',
      body: async () => ({ operator: 'ghost@ops.test' }),
      status: 404,
      code: 'operator.not_found',
    },
    {
      name: 'a token living longer than 365 days (lifetime)',
      body: async () => ({ expires_in: '366d' }),
      status: 400,
      code: 'operator_token.expiry_invalid',
      path: '/expires_in',
    },
    {
      name: 'a token living longer than 365 days (date)',
      body: async () => ({ expires_at: new Date(Date.now() + 367 * 86_400_000).toISOString() }),
      status: 400,
      code: 'operator_token.expiry_invalid',
      path: '/expires_at',
    },
    {
      name: 'a token that expired already',
      body: async () => ({ expires_at: '2020-01-01' }),
      status: 400,
      code: 'operator_token.expiry_invalid',
      path: '/expires_at',
    },
    {
      name: 'a token that never expires',
      body: async () => ({ expires_at: 'never' }),
      status: 400,
      code: 'operator_token.expiry_invalid',
      path: '/expires_at',
    },
    {
      name: 'a zero lifetime',
      body: async () => ({ expires_in: '0d' }),
      status: 400,
      code: 'operator_token.expiry_invalid',
      path: '/expires_in',
    },
    {
      name: 'a numeric lifetime (no unit)',
      body: async () => ({ expires_in: 30 }),
      status: 400,
      code: 'operator_token.expiry_invalid',
      path: '/expires_in',
    },
  ];
  for (const c of cases) {
    test(c.name, async () => {
      const body = await c.body();
      const before = s.app.control
        .query<{ n: number }, []>('SELECT count(*) AS n FROM operator_tokens')
        .get()!.n;
      const res = await api(root, 'POST', '/tokens', { name: 'x', ...body });
      const doc = (await res.json()) as { error: { code: string; details?: { path: string }[] } };
      expect({ status: res.status, code: doc.error.code }).toEqual({ status: c.status, code: c.code });
      if (c.path) expect(doc.error.details?.map((d) => d.path)).toEqual([c.path]);
      expect(
        s.app.control.query<{ n: number }, []>('SELECT count(*) AS n FROM operator_tokens').get()!.n,
      ).toBe(before);
    });
  }
});

describe('operator tokens: list, revoke, expiry, narrower roles', () => {
  test('a new token expires in 365 days by default, or when asked; the list shows no secret', async () => {
    const t0 = Date.now();
    const dflt = await ok<{ id: string; token: string; expires_at: string; role: string }>(
      api(root, 'POST', '/tokens', { name: 'default' }),
      201,
    );
    const days = (Date.parse(dflt.expires_at) - t0) / 86_400_000;
    expect(days).toBeGreaterThan(364.99);
    expect(days).toBeLessThan(365.01);
    expect(dflt.role).toBe('operator_admin');
    const thirty = await ok<{ id: string; expires_at: string }>(
      api(root, 'POST', '/tokens', { name: 'thirty', expires_in: '30d' }),
      201,
    );
    expect(Math.round((Date.parse(thirty.expires_at) - t0) / 86_400_000)).toBe(30);
    const dated = await ok<{ expires_at: string }>(
      api(root, 'POST', '/tokens', { name: 'dated', expires_at: '2027-06-30T12:00:00Z' }),
      201,
    );
    expect(dated.expires_at).toBe('2027-06-30T12:00:00.000Z');

    const res = await api(root, 'GET', '/tokens');
    const text = await res.text();
    expect(res.status).toBe(200);
    expect(text).not.toContain(dflt.token);
    expect(text).not.toContain('token_hash');
    const list = (
      JSON.parse(text) as { tokens: { id: string; name: string; status: string; operator_email: string }[] }
    ).tokens;
    expect(list.find((t) => t.id === dflt.id)).toMatchObject({
      name: 'default',
      status: 'active',
      operator_email: 'admin@localhost',
    });
    const initial = list.find((t) => t.name === 'initial')!;
    expect(initial.status).toBe('active');
    expect(Date.parse((initial as unknown as { expires_at: string }).expires_at)).toBeGreaterThan(
      t0 + 364 * 86_400_000,
    );
  });

  test('revoking takes effect on the next request; the list says revoked; it is audited', async () => {
    const t = await ok<{ id: string; token: string }>(api(root, 'POST', '/tokens', { name: 'doomed' }), 201);
    expect((await api(t.token, 'GET', '/platforms')).status).toBe(200);
    const r = await ok<{ token: { status: string; revoked_at: string } }>(
      api(root, 'DELETE', `/tokens/${t.id}`),
    );
    expect(r.token.status).toBe('revoked');
    expect((await api(t.token, 'GET', '/platforms')).status).toBe(401);
    const list = await ok<{ tokens: { id: string; status: string }[] }>(api(root, 'GET', '/tokens'));
    expect(list.tokens.find((x) => x.id === t.id)?.status).toBe('revoked');
    expect((await api(root, 'DELETE', '/tokens/opt_nosuch')).status).toBe(404);
    expect(auditActions().filter((a) => a.action === 'operator_token.revoked').length).toBeGreaterThan(0);
  });

  test('a viewer lists only their own tokens, and may revoke their own', async () => {
    const viewer = await newOperator('operator_viewer');
    const mine = await tokenFor(viewer.email);
    expect(mine.role).toBe('operator_viewer');
    const spare = await tokenFor(viewer.email);
    const list = await ok<{ tokens: { id: string; operator_email: string }[] }>(
      api(mine.token, 'GET', '/tokens'),
    );
    expect(new Set(list.tokens.map((t) => t.operator_email))).toEqual(new Set([viewer.email]));
    expect(list.tokens.map((t) => t.id).sort()).toEqual([mine.id, spare.id].sort());
    expect((await api(mine.token, 'DELETE', `/tokens/${spare.id}`)).status).toBe(200);
    expect((await api(spare.token, 'GET', '/platforms')).status).toBe(401);
    expect((await api(mine.token, 'GET', '/platforms')).status).toBe(200);
  });

  test("an admin's token capped at viewer reads; the cap shows in the list", async () => {
    const admin = await newOperator('operator_admin');
    const capped = await tokenFor(admin.email, { role: 'operator_viewer' });
    expect(capped.role).toBe('operator_viewer');
    expect((await api(capped.token, 'GET', '/platforms')).status).toBe(200);
    const me = await ok<{ role: string }>(api(capped.token, 'GET', '/me'));
    expect(me.role).toBe('operator_viewer');
    const list = await ok<{ tokens: { id: string; role: string }[] }>(
      api(root, 'GET', `/tokens?operator=${encodeURIComponent(admin.email)}`),
    );
    expect(list.tokens).toEqual([expect.objectContaining({ id: capped.id, role: 'operator_viewer' })]);
  });

  test('a disabled operator enabled again: their unrevoked tokens work again', async () => {
    const op = await newOperator('operator_admin');
    const t = await tokenFor(op.email);
    await ok(api(root, 'POST', `/operators/${op.id}/disable`, {}));
    expect((await api(t.token, 'GET', '/platforms')).status).toBe(401);
    const list = await ok<{ tokens: { id: string; status: string }[] }>(
      api(root, 'GET', `/tokens?operator=${op.id}`),
    );
    expect(list.tokens[0]?.status).toBe('operator_disabled');
    const en = await ok<{ operator: { status: string } }>(
      api(root, 'POST', `/operators/${op.id}/enable`, {}),
    );
    expect(en.operator.status).toBe('active');
    expect((await api(t.token, 'GET', '/platforms')).status).toBe(200);
  });

  test('every change is in the control audit chain, which verifies', async () => {
    const actions = new Set(auditActions().map((a) => a.action));
    for (const a of [
      'operator_token.created',
      'operator_token.revoked',
      'operator.disabled',
      'operator.enabled',
      'operator.removed',
      'operator.role_changed',
    ]) {
      expect({ a, seen: actions.has(a) }).toEqual({ a, seen: true });
    }
    const v = await ok<{ ok: boolean }>(api(root, 'GET', '/audit/verify'));
    expect(v.ok).toBe(true);
  });
});

describe('the last active operator admin is protected', () => {
  let t: Server;
  let admin: string;
  const call = (token: string, method: string, path: string, body?: unknown) =>
    operatorApi(t.base, token, method, path, body);
  beforeAll(async () => {
    t = await startTestServer();
    admin = t.firstRun!.token;
  });
  afterAll(async () => {
    await t.cleanup();
  });

  const cases: { name: string; method: string; path: string; body?: unknown }[] = [
    { name: 'disable it', method: 'POST', path: '/operators/admin@localhost/disable', body: {} },
    {
      name: 'demote it',
      method: 'PATCH',
      path: '/operators/admin@localhost',
      body: { role: 'operator_viewer' },
    },
    { name: 'remove it', method: 'DELETE', path: '/operators/admin@localhost' },
    { name: 'disable it by id', method: 'POST', path: '/operators/FIRST_ID/disable', body: {} },
  ];
  for (const c of cases) {
    test(`${c.name} → 409 operator.last_admin, nothing changes`, async () => {
      const id = t.app.control.query<{ id: string }, []>('SELECT id FROM operators LIMIT 1').get()!.id;
      const res = await call(admin, c.method, c.path.replace('FIRST_ID', id), c.body);
      expect({ status: res.status, code: await errorOf(res) }).toEqual({
        status: 409,
        code: 'operator.last_admin',
      });
      expect(t.app.control.query('SELECT role, status FROM operators').all()).toEqual([
        { role: 'operator_admin', status: 'active' },
      ]);
      expect((await call(admin, 'GET', '/platforms')).status).toBe(200);
    });
  }

  test('a disabled admin does not count; two admins disabled at once: one stays', async () => {
    const mk = async (email: string) =>
      (
        (await (await call(admin, 'POST', '/operators', { email, role: 'operator_admin' })).json()) as {
          operator: { id: string };
        }
      ).operator.id;
    const dormant = await mk('dormant@ops.test');
    expect((await call(admin, 'POST', `/operators/${dormant}/disable`, {})).status).toBe(200);
    const b = await mk('b@ops.test');
    const first = t.app.control
      .query<{ id: string }, []>("SELECT id FROM operators WHERE email = 'admin@localhost'")
      .get()!.id;
    // Over the control socket (the local root), so neither request loses its own credential.
    const viaSocket = (id: string) =>
      fetch(`http://soulfra/_operator/api/operators/${id}/disable`, {
        method: 'POST',
        unix: t.socketPath,
        headers: { 'content-type': 'application/json' },
        body: '{}',
      } as RequestInit);
    const answers = await Promise.all([viaSocket(b), viaSocket(first)]);
    expect(answers.map((r) => r.status).sort()).toEqual([200, 409]);
    const active = t.app.control
      .query<{ n: number }, []>(
        "SELECT count(*) AS n FROM operators WHERE role = 'operator_admin' AND status = 'active'",
      )
      .get()!.n;
    expect(active).toBe(1);
  });
});
