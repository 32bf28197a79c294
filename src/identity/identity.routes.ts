import { Elysia } from 'elysia';
import { AppError } from '../shared/errors.ts';
import { createApiKey, listApiKeys, revokeApiKey } from './apikeys.ts';
import {
  issueEmailToken,
  passwordSignIn,
  requestPasswordReset,
  resetPassword,
  unlockUser,
  verifyEmail,
} from './auth.service.ts';
import { type PlatformRequestContext, requestContext } from './context.ts';
import { actorOf, can, type Permission, ROLE_PERMISSIONS, roleOf, userIdOf } from './permissions.ts';
import {
  clearedSessionCookie,
  destroySession,
  destroyUserSessions,
  readCookie,
  SESSION_COOKIE,
  sessionCookie,
} from './sessions.ts';
import { ownerOnlyChanges, readIdentitySettings, writeIdentitySettings } from './settings.ts';
import { createUserRepository } from './users.repository.ts';
import {
  changeRole,
  createUser,
  listSsoIdentities,
  parseSsoIdentityId,
  removeSsoIdentity,
  setUserActive,
  userView,
} from './users.service.ts';

/** Every identity route and the permission it needs (merged into the platform's table). */
export const IDENTITY_ROUTE_PERMISSIONS: Record<string, Permission> = {
  'POST /api/v1/auth/login': 'public',
  // Session and account management: a session, or a key whose scopes name account:manage.
  'POST /api/v1/auth/logout': 'account:manage',
  'POST /api/v1/auth/logout-all': 'account:manage',
  'POST /api/v1/auth/verify-email': 'public',
  'POST /api/v1/auth/password-reset': 'public',
  'POST /api/v1/auth/password-reset/confirm': 'public',
  'GET /api/v1/me': 'signed_in',
  'POST /api/v1/me/verify-email': 'account:manage',
  'GET /api/v1/me/sso-identities': 'signed_in',
  'DELETE /api/v1/me/sso-identities/:kind/:link': 'account:manage',
  'GET /api/v1/users': 'users:read',
  'POST /api/v1/users': 'users:write',
  'GET /api/v1/users/:id': 'users:read',
  'PATCH /api/v1/users/:id': 'users:write',
  'POST /api/v1/users/:id/unlock': 'users:write',
  'GET /api/v1/users/:id/sso-identities': 'users:write',
  'DELETE /api/v1/users/:id/sso-identities/:kind/:link': 'users:write',
  'GET /api/v1/api-keys': 'apikeys:own',
  'POST /api/v1/api-keys': 'apikeys:own',
  'DELETE /api/v1/api-keys/:id': 'apikeys:own',
  'GET /api/v1/settings/identity': 'settings:write',
  'PATCH /api/v1/settings/identity': 'settings:write',
  'GET /api/v1/audit': 'audit:read',
};

/** The signed-in user's id (a session, or a key of a user); 403 for any other principal. */
function ownUserId(c: PlatformRequestContext): string {
  const uid = userIdOf(c.principal);
  if (!uid) throw new AppError('auth.forbidden', 'only a user has linked identities', 403);
  return uid;
}

/** The link a `:kind/:id` pair of a removal URL names; 404 when it names none. */
function linkOf(kind: string, id: string): { kind: string; issuer: string; subject: string } {
  const parsed = parseSsoIdentityId(id);
  if ((kind !== 'oidc' && kind !== 'saml') || !parsed)
    throw new AppError('sso.identity_not_found', 'this account has no such linked identity', 404);
  return { kind, ...parsed };
}

const obj = (b: unknown): Record<string, unknown> =>
  b && typeof b === 'object' && !Array.isArray(b) ? (b as Record<string, unknown>) : {};

/**
 * Guards the unauthenticated writes (sign-in, reset, email links) against cross-site requests
 * (login CSRF): the body must be `application/json` (a form or text/plain post, which any site
 * can make a browser send without a preflight, is refused with 415), `Sec-Fetch-Site` when
 * sent must be `same-origin` or `none` (`same-site` is refused too: other platforms are sibling
 * subdomains of the same site), and `Origin` when sent must be this platform's own origin.
 * Clients other than browsers send neither header and are unaffected.
 */
function requireOwnJson(request: Request, c: PlatformRequestContext): void {
  const type = (request.headers.get('content-type') ?? '').split(';')[0]!.trim().toLowerCase();
  if (type !== 'application/json') {
    throw new AppError(
      'request.unsupported_media_type',
      'this route takes a JSON body (application/json)',
      415,
      [{ path: '', reason: 'content-type must be application/json' }],
    );
  }
  const site = request.headers.get('sec-fetch-site');
  const origin = request.headers.get('origin');
  let own = site === null || site === 'same-origin' || site === 'none';
  if (own && origin !== null) {
    // The platform's own origin is the stored one (public URL scheme and port, stored host),
    // never the request's Host header.
    let sent: string | null = null;
    try {
      sent = origin === 'null' ? null : new URL(origin).origin;
    } catch {}
    own = sent !== null && sent === c.origin;
  }
  if (!own) {
    throw new AppError(
      'auth.cross_origin',
      "sign-in and account requests are accepted only from this platform's own pages",
      403,
    );
  }
}

/**
 * A platform's identity API under /api/v1: sign-in and out, email verification and password
 * reset, the signed-in user, users and roles, API keys, identity settings, the audit trail.
 * Handlers read their platform, database and principal from the request context.
 */
export const identityRoutes = new Elysia({ name: 'identity.routes', prefix: '/api/v1' })
  .post('/auth/login', async ({ request, body }) => {
    const c = requestContext(request);
    requireOwnJson(request, c);
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
    requireOwnJson(request, c);
    return { user: userView(verifyEmail(c.app, c.db, obj(body).token, { ip: c.ip })) };
  })
  .post('/auth/password-reset', ({ request, body }) => {
    const c = requestContext(request);
    requireOwnJson(request, c);
    requestPasswordReset(c.app, c.db, obj(body).email, { ip: c.ip }, c.origin);
    // The same answer whether or not the account exists (and when its requests are used up).
    return Response.json({ status: 'if the account exists, a reset link is on its way' }, { status: 202 });
  })
  .post('/auth/password-reset/confirm', async ({ request, body }) => {
    const c = requestContext(request);
    requireOwnJson(request, c);
    const b = obj(body);
    await resetPassword(c.app, c.db, c.platform.id, b.token, b.password, { ip: c.ip });
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
  .get('/me/sso-identities', ({ request }) => {
    const c = requestContext(request);
    return { sso_identities: listSsoIdentities(c.db, ownUserId(c)) };
  })
  .delete('/me/sso-identities/:kind/:link', ({ request, params }) => {
    const c = requestContext(request);
    removeSsoIdentity(c.app, c.db, ownUserId(c), linkOf(params.kind, params.link), {
      actor: actorOf(c.principal),
      role: null,
    });
    return new Response(null, { status: 204 });
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
      u = setUserActive(
        c.app,
        c.db,
        params.id,
        b.status === 'active',
        actorOf(c.principal),
        roleOf(c.principal),
      );
    }
    return { user: userView(u) };
  })
  .post('/users/:id/unlock', ({ request, params }) => {
    const c = requestContext(request);
    const r = unlockUser(c.app, c.db, params.id, { actor: actorOf(c.principal), role: roleOf(c.principal) });
    return { user: userView(r.user), locks_lifted: r.locksLifted };
  })
  .get('/users/:id/sso-identities', ({ request, params }) => {
    const c = requestContext(request);
    const u = createUserRepository({ db: c.db }).byId(params.id);
    if (!u) throw new AppError('user.not_found', `no user ${params.id}`, 404);
    return { sso_identities: listSsoIdentities(c.db, u.id) };
  })
  .delete('/users/:id/sso-identities/:kind/:link', ({ request, params }) => {
    const c = requestContext(request);
    removeSsoIdentity(c.app, c.db, params.id, linkOf(params.kind, params.link), {
      actor: actorOf(c.principal),
      role: roleOf(c.principal),
    });
    return new Response(null, { status: 204 });
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
        const role = roleOf(c.principal);
        const owners = ownerOnlyChanges(before, body);
        // Settings that decide who can reach owner accounts are the owners' to change.
        if (owners.length && role !== null && role !== 'owner')
          throw new AppError(
            'auth.forbidden',
            `only an owner can change ${owners.join(', ')}`,
            403,
            owners.map((k) => ({ path: `/${k}`, reason: 'owner only' })),
          );
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
