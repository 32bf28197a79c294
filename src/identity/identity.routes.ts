import { Elysia } from 'elysia';
import { AppError } from '../shared/errors.ts';
import { createApiKey, listApiKeys, revokeApiKey } from './apikeys.ts';
import { issueEmailToken, passwordSignIn, resetPassword, verifyEmail } from './auth.service.ts';
import { requestContext } from './context.ts';
import {
  actorOf,
  can,
  type Permission,
  type Principal,
  ROLE_PERMISSIONS,
  roleOf,
  userIdOf,
} from './permissions.ts';
import {
  clearedSessionCookie,
  destroySession,
  destroyUserSessions,
  readCookie,
  SESSION_COOKIE,
  sessionCookie,
} from './sessions.ts';
import { readIdentitySettings, writeIdentitySettings } from './settings.ts';
import { createUserRepository } from './users.repository.ts';
import { changeRole, createUser, setUserActive, userView } from './users.service.ts';

/** Every identity route and the permission it needs (merged into the platform's table). */
export const IDENTITY_ROUTE_PERMISSIONS: Record<string, Permission> = {
  'POST /api/v1/auth/login': 'public',
  'POST /api/v1/auth/logout': 'signed_in',
  'POST /api/v1/auth/logout-all': 'signed_in',
  'POST /api/v1/auth/verify-email': 'public',
  'POST /api/v1/auth/password-reset': 'public',
  'POST /api/v1/auth/password-reset/confirm': 'public',
  'GET /api/v1/me': 'signed_in',
  'POST /api/v1/me/verify-email': 'signed_in',
  'GET /api/v1/users': 'users:read',
  'POST /api/v1/users': 'users:write',
  'GET /api/v1/users/:id': 'users:read',
  'PATCH /api/v1/users/:id': 'users:write',
  'GET /api/v1/api-keys': 'apikeys:own',
  'POST /api/v1/api-keys': 'apikeys:own',
  'DELETE /api/v1/api-keys/:id': 'apikeys:own',
  'GET /api/v1/settings/identity': 'settings:write',
  'PATCH /api/v1/settings/identity': 'settings:write',
  'GET /api/v1/audit': 'audit:read',
};

const obj = (b: unknown): Record<string, unknown> =>
  b && typeof b === 'object' && !Array.isArray(b) ? (b as Record<string, unknown>) : {};

/**
 * A platform's identity API under /api/v1: sign-in and out, email verification and password
 * reset, the signed-in user, users and roles, API keys, identity settings, the audit trail.
 * Handlers read their platform, database and principal from the request context.
 */
export const identityRoutes = new Elysia({ name: 'identity.routes', prefix: '/api/v1' })
  .post('/auth/login', async ({ request, body }) => {
    const c = requestContext(request);
    const r = await passwordSignIn(c.app, c.db, c.platform.id, obj(body), {
      ip: c.ip,
      userAgent: request.headers.get('user-agent'),
    });
    const secure = c.origin.startsWith('https:');
    return Response.json(
      {
        user: userView(r.user),
        csrf_token: r.csrfToken,
        mfa_required: r.mfaPending,
        expires_at: new Date(r.expiresAt).toISOString(),
      },
      {
        headers: {
          'set-cookie': sessionCookie(r.token, {
            secure,
            maxAgeSec: Math.floor((r.expiresAt - c.app.clock.now()) / 1000),
          }),
          'cache-control': 'no-store',
        },
      },
    );
  })
  .post('/auth/logout', ({ request }) => {
    const c = requestContext(request);
    const token = readCookie(request.headers.get('cookie'), SESSION_COOKIE);
    if (token) destroySession(c.db, token);
    c.app.audit.append(c.db, {
      actor: actorOf(c.principal),
      action: 'user.signed_out',
      target: `user:${userIdOf(c.principal)}`,
    });
    return new Response(null, {
      status: 204,
      headers: { 'set-cookie': clearedSessionCookie(c.origin.startsWith('https:')) },
    });
  })
  .post('/auth/logout-all', ({ request }) => {
    const c = requestContext(request);
    const uid = userIdOf(c.principal);
    if (!uid) throw new AppError('auth.forbidden', 'only a user can sign out everywhere', 403);
    const n = c.db
      .transaction(() => {
        const ended = destroyUserSessions(c.db, uid);
        c.app.audit.append(c.db, {
          actor: actorOf(c.principal),
          action: 'user.signed_out_everywhere',
          target: `user:${uid}`,
          details: { sessions_ended: ended },
        });
        return ended;
      })
      .immediate();
    return Response.json(
      { sessions_ended: n },
      { headers: { 'set-cookie': clearedSessionCookie(c.origin.startsWith('https:')) } },
    );
  })
  .post('/auth/verify-email', ({ request, body }) => {
    const c = requestContext(request);
    return { user: userView(verifyEmail(c.app, c.db, obj(body).token)) };
  })
  .post('/auth/password-reset', ({ request, body }) => {
    const c = requestContext(request);
    const email = obj(body).email;
    if (typeof email !== 'string')
      throw new AppError('auth.invalid_request', 'email is required', 400, [
        { path: '/email', reason: 'required' },
      ]);
    const user = createUserRepository({ db: c.db }).byEmail(email.trim().toLowerCase());
    if (user && user.status === 'active') issueEmailToken(c.app, c.db, user, 'reset_password', c.origin);
    // The same answer whether or not the account exists.
    return Response.json({ status: 'if the account exists, a reset link is on its way' }, { status: 202 });
  })
  .post('/auth/password-reset/confirm', async ({ request, body }) => {
    const c = requestContext(request);
    const b = obj(body);
    await resetPassword(c.app, c.db, b.token, b.password);
    return { status: 'password changed; sign in again' };
  })
  .get('/me', ({ request }) => {
    const c = requestContext(request);
    const p = c.principal!;
    const uid = userIdOf(p);
    const user = uid ? createUserRepository({ db: c.db }).byId(uid) : null;
    const role = roleOf(p);
    return {
      user: user ? userView(user) : null,
      principal: p.kind,
      role,
      scopes: p.kind === 'api_key' ? p.scopes : undefined,
      // After an SSO redirect the browser has no other way to learn its CSRF token.
      csrf_token: p.kind === 'user' ? p.csrfToken : undefined,
      permissions: role ? ROLE_PERMISSIONS[role].filter((perm) => can(p, perm)) : [],
    };
  })
  .post('/me/verify-email', ({ request }) => {
    const c = requestContext(request);
    const uid = userIdOf(c.principal);
    const user = uid ? createUserRepository({ db: c.db }).byId(uid) : null;
    if (!user) throw new AppError('auth.forbidden', 'only a user has an email to verify', 403);
    if (user.email_verified_at === null) issueEmailToken(c.app, c.db, user, 'verify_email', c.origin);
    return Response.json(
      { status: user.email_verified_at === null ? 'sent' : 'already verified' },
      { status: 202 },
    );
  })
  .get('/users', ({ request }) => {
    const c = requestContext(request);
    return { users: createUserRepository({ db: c.db }).all().map(userView) };
  })
  .post('/users', async ({ request, body }) => {
    const c = requestContext(request);
    const u = await createUser(c.app, c.db, obj(body), {
      actor: actorOf(c.principal),
      role: roleOf(c.principal),
    });
    return Response.json({ user: userView(u) }, { status: 201 });
  })
  .get('/users/:id', ({ request, params }) => {
    const c = requestContext(request);
    const u = createUserRepository({ db: c.db }).byId(params.id);
    if (!u) throw new AppError('user.not_found', `no user ${params.id}`, 404);
    return { user: userView(u) };
  })
  .patch('/users/:id', ({ request, params, body }) => {
    const c = requestContext(request);
    const b = obj(body);
    const unknown = Object.keys(b).filter((k) => k !== 'role' && k !== 'status');
    if (unknown.length) {
      throw new AppError(
        'request.invalid',
        `only role and status can be changed here; unknown: ${unknown.join(', ')}`,
        400,
        unknown.map((k) => ({ path: `/${k}`, reason: 'unknown field' })),
      );
    }
    let u = createUserRepository({ db: c.db }).byId(params.id);
    if (!u) throw new AppError('user.not_found', `no user ${params.id}`, 404);
    if (b.role !== undefined) {
      if (!can(c.principal, 'roles:write'))
        throw new AppError('auth.forbidden', 'changing roles needs roles:write', 403);
      u = changeRole(c.app, c.db, params.id, b.role, {
        actor: actorOf(c.principal),
        role: roleOf(c.principal),
      });
    }
    if (b.status !== undefined) {
      if (b.status !== 'active' && b.status !== 'disabled') {
        throw new AppError('user.status_invalid', 'status must be active or disabled', 400, [
          { path: '/status', reason: 'must be active or disabled' },
        ]);
      }
      u = setUserActive(c.app, c.db, params.id, b.status === 'active', actorOf(c.principal));
    }
    return { user: userView(u) };
  })
  .get('/api-keys', ({ request }) => {
    const c = requestContext(request);
    return { api_keys: listApiKeys(c.db, can(c.principal, 'apikeys:admin') ? null : userIdOf(c.principal)) };
  })
  .post('/api-keys', ({ request, body }) => {
    const c = requestContext(request);
    const p = c.principal!;
    if (p.kind !== 'user') throw new AppError('auth.forbidden', 'API keys are made by signed-in users', 403);
    const r = createApiKey(c.app, c.db, obj(body), { userId: p.userId, role: p.role }, actorOf(p));
    return Response.json(
      { id: r.id, key: r.key, api_key: r.view },
      { status: 201, headers: { 'cache-control': 'no-store' } },
    );
  })
  .delete('/api-keys/:id', ({ request, params }) => {
    const c = requestContext(request);
    const owner = can(c.principal, 'apikeys:admin') ? null : userIdOf(c.principal);
    return { api_key: revokeApiKey(c.app, c.db, params.id, owner, actorOf(c.principal)) };
  })
  .get('/settings/identity', ({ request }) => readIdentitySettings(requestContext(request).db))
  .patch('/settings/identity', ({ request, body }) => {
    const c = requestContext(request);
    return c.db
      .transaction(() => {
        const before = readIdentitySettings(c.db);
        const next = writeIdentitySettings(c.db, body);
        c.app.audit.append(c.db, {
          actor: actorOf(c.principal),
          action: 'settings.identity_changed',
          target: `platform:${c.platform.slug}`,
          details: { before, after: next },
        });
        return next;
      })
      .immediate();
  })
  .get('/audit', ({ request, query }) => {
    const c = requestContext(request);
    const after = Number.parseInt(String(query.after ?? '0'), 10) || 0;
    const limit = Math.min(500, Math.max(1, Number.parseInt(String(query.limit ?? '100'), 10) || 100));
    const entries = c.db
      .query<Record<string, unknown>, [number, number]>(
        'SELECT * FROM audit_log WHERE seq > ? ORDER BY seq LIMIT ?',
      )
      .all(after, limit)
      .map((e) => ({
        ...e,
        seq: e.seq as number,
        ts: new Date(e.ts as number).toISOString(),
        details: JSON.parse(e.details as string) as unknown,
      }));
    return { entries, next_after: entries.length === limit ? (entries.at(-1)?.seq ?? null) : null };
  });
