import { Elysia } from 'elysia';
import { parseAuditQuery, searchAudit } from '../app/index.ts';
import { AppError } from '../shared/errors.ts';
import { assertOwnJson } from '../shared/own-json.ts';
import {
  issueEmailToken,
  passwordSignIn,
  requestPasswordReset,
  resetPassword,
  unlockUser,
  verifyEmail,
} from './accounts/auth.service.ts';
import { createUserRepository } from './accounts/users.repository.ts';
import {
  changeRole,
  createUser,
  listSsoIdentities,
  parseSsoIdentityId,
  removeSsoIdentity,
  setUserActive,
  userView,
} from './accounts/users.service.ts';
import { createApiKey, listApiKeys, revokeApiKey } from './apikeys/apikeys.ts';
import type { PlatformRequestContext } from './context.ts';
import { platformGuard } from './guard.routes.ts';
import {
  ApiKeyCreate,
  AuditQuery,
  EmailToken,
  IdParams,
  LinkParams,
  Login,
  PasswordResetConfirm,
  PasswordResetRequest,
  SettingsPatch,
  UserCreate,
  UserLinkParams,
  UserPatch,
} from './identity.models.ts';
import { actorOf, can, ROLE_PERMISSIONS, roleOf, userIdOf } from './permissions.ts';
import {
  clearedSessionCookie,
  destroySession,
  destroyUserSessions,
  readCookie,
  SESSION_COOKIE,
  sessionCookie,
} from './sessions/sessions.ts';
import { ownerOnlyChanges, readIdentitySettings, writeIdentitySettings } from './settings.ts';

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

/**
 * Guards the unauthenticated writes (sign-in, reset, email links) against cross-site requests
 * (login CSRF): the body must be `application/json` (a form or text/plain post, which any site
 * can make a browser send without a preflight, is refused with 415), `Sec-Fetch-Site` when
 * sent must be `same-origin` or `none` (`same-site` is refused too: other platforms are sibling
 * subdomains of the same site), and `Origin` when sent must be this platform's own origin.
 * Clients other than browsers send neither header and are unaffected.
 */
function requireOwnJson(request: Request, c: PlatformRequestContext): void {
  // The platform's own origin is the stored one (public URL scheme and port, stored host).
  assertOwnJson(
    request,
    c.origin,
    "sign-in and account requests are accepted only from this platform's own pages",
  );
}

/**
 * `requireOwnJson` as a route's transform hook: it runs after the platform app's own (which
 * sets `ctx`) and before the body is validated, so a form post is a 415, not a 400.
 */
export const ownJsonOnly = ({ request, ctx }: Record<string, unknown>): void =>
  requireOwnJson(request as Request, ctx as PlatformRequestContext);

/**
 * A platform's identity API under /api/v1: sign-in and out, email verification and password
 * reset, the signed-in user, users and roles, API keys, identity settings, the audit trail.
 * Handlers read their platform, database and principal from the request context.
 */
export const identityRoutes = new Elysia({ name: 'identity.routes', prefix: '/api/v1' })
  .use(platformGuard)
  .post(
    '/auth/login',
    async ({ request, body, ctx: c }) => {
      const r = await passwordSignIn(
        c.app,
        c.db,
        c.platform.id,
        body,
        { ip: c.ip, userAgent: request.headers.get('user-agent') },
        c.blueprint().governance,
      );
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
    },
    {
      permission: 'public',
      transform: ownJsonOnly,
      body: Login,
      detail: { summary: 'Sign in with email and password (sets the session cookie)', tags: ['auth'] },
    },
  )
  .post(
    '/auth/logout',
    ({ request, ctx: c }) => {
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
    },
    { permission: 'account:manage', detail: { summary: 'Sign out this session', tags: ['auth'] } },
  )
  .post(
    '/auth/logout-all',
    ({ ctx: c }) => {
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
    },
    { permission: 'account:manage', detail: { summary: "End all of this user's sessions", tags: ['auth'] } },
  )
  .post(
    '/auth/verify-email',
    ({ body, ctx: c }) => ({ user: userView(verifyEmail(c.app, c.db, body.token, { ip: c.ip })) }),
    {
      permission: 'public',
      transform: ownJsonOnly,
      body: EmailToken,
      detail: { summary: 'Verify an email address with the emailed token', tags: ['auth'] },
    },
  )
  .post(
    '/auth/password-reset',
    ({ body, ctx: c }) => {
      requestPasswordReset(c.app, c.db, body.email, { ip: c.ip }, c.origin);
      // The same answer whether or not the account exists (and when its requests are used up).
      return Response.json({ status: 'if the account exists, a reset link is on its way' }, { status: 202 });
    },
    {
      permission: 'public',
      transform: ownJsonOnly,
      body: PasswordResetRequest,
      detail: { summary: 'Ask for a password reset link', tags: ['auth'] },
    },
  )
  .post(
    '/auth/password-reset/confirm',
    async ({ body, ctx: c }) => {
      await resetPassword(c.app, c.db, c.platform.id, body.token, body.password, { ip: c.ip });
      return { status: 'password changed; sign in again' };
    },
    {
      permission: 'public',
      transform: ownJsonOnly,
      body: PasswordResetConfirm,
      detail: { summary: 'Set a new password with the emailed token', tags: ['auth'] },
    },
  )
  .get(
    '/me',
    ({ ctx: c }) => {
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
    },
    {
      permission: 'signed_in',
      detail: { summary: 'Who is asking, and what they may do', tags: ['account'] },
    },
  )
  .post(
    '/me/verify-email',
    ({ ctx: c }) => {
      const uid = userIdOf(c.principal);
      const user = uid ? createUserRepository({ db: c.db }).byId(uid) : null;
      if (!user) throw new AppError('auth.forbidden', 'only a user has an email to verify', 403);
      if (user.email_verified_at === null) issueEmailToken(c.app, c.db, user, 'verify_email', c.origin);
      return Response.json(
        { status: user.email_verified_at === null ? 'sent' : 'already verified' },
        { status: 202 },
      );
    },
    { permission: 'account:manage', detail: { summary: 'Send a verification email', tags: ['account'] } },
  )
  .get('/me/sso-identities', ({ ctx: c }) => ({ sso_identities: listSsoIdentities(c.db, ownUserId(c)) }), {
    permission: 'signed_in',
    detail: { summary: 'My linked SSO identities', tags: ['account'] },
  })
  .delete(
    '/me/sso-identities/:kind/:link',
    ({ params, ctx: c }) => {
      removeSsoIdentity(c.app, c.db, ownUserId(c), linkOf(params.kind, params.link), {
        actor: actorOf(c.principal),
        role: null,
      });
      return new Response(null, { status: 204 });
    },
    {
      permission: 'account:manage',
      params: LinkParams,
      detail: { summary: 'Unlink one of my SSO identities', tags: ['account'] },
    },
  )
  .get('/users', ({ ctx: c }) => ({ users: createUserRepository({ db: c.db }).all().map(userView) }), {
    permission: 'users:read',
    detail: { summary: 'List the users', tags: ['users'] },
  })
  .post(
    '/users',
    async ({ body, ctx: c }) => {
      const u = await createUser(c.app, c.db, body, {
        actor: actorOf(c.principal),
        role: roleOf(c.principal),
      });
      return Response.json({ user: userView(u) }, { status: 201 });
    },
    {
      permission: 'users:write',
      body: UserCreate,
      detail: { summary: 'Create a user (without a password: an SSO invitation)', tags: ['users'] },
    },
  )
  .get(
    '/users/:id',
    ({ params, ctx: c }) => {
      const u = createUserRepository({ db: c.db }).byId(params.id);
      if (!u) throw new AppError('user.not_found', `no user ${params.id}`, 404);
      return { user: userView(u) };
    },
    { permission: 'users:read', params: IdParams, detail: { summary: 'Show a user', tags: ['users'] } },
  )
  .patch(
    '/users/:id',
    ({ params, body, ctx: c }) => {
      let u = createUserRepository({ db: c.db }).byId(params.id);
      if (!u) throw new AppError('user.not_found', `no user ${params.id}`, 404);
      if (body.role !== undefined) {
        if (!can(c.principal, 'roles:write'))
          throw new AppError('auth.forbidden', 'changing roles needs roles:write', 403);
        u = changeRole(c.app, c.db, params.id, body.role, {
          actor: actorOf(c.principal),
          role: roleOf(c.principal),
        });
      }
      if (body.status !== undefined) {
        u = setUserActive(
          c.app,
          c.db,
          params.id,
          body.status === 'active',
          actorOf(c.principal),
          roleOf(c.principal),
        );
      }
      return { user: userView(u) };
    },
    {
      permission: 'users:write',
      params: IdParams,
      body: UserPatch,
      detail: { summary: "Change a user's role or status", tags: ['users'] },
    },
  )
  .post(
    '/users/:id/unlock',
    ({ params, ctx: c }) => {
      const r = unlockUser(c.app, c.db, params.id, {
        actor: actorOf(c.principal),
        role: roleOf(c.principal),
      });
      return { user: userView(r.user), locks_lifted: r.locksLifted };
    },
    {
      permission: 'users:write',
      params: IdParams,
      detail: { summary: "Lift a user's sign-in locks", tags: ['users'] },
    },
  )
  .get(
    '/users/:id/sso-identities',
    ({ params, ctx: c }) => {
      const u = createUserRepository({ db: c.db }).byId(params.id);
      if (!u) throw new AppError('user.not_found', `no user ${params.id}`, 404);
      return { sso_identities: listSsoIdentities(c.db, u.id) };
    },
    {
      permission: 'users:write',
      params: IdParams,
      detail: { summary: "A user's linked SSO identities", tags: ['users'] },
    },
  )
  .delete(
    '/users/:id/sso-identities/:kind/:link',
    ({ params, ctx: c }) => {
      removeSsoIdentity(c.app, c.db, params.id, linkOf(params.kind, params.link), {
        actor: actorOf(c.principal),
        role: roleOf(c.principal),
      });
      return new Response(null, { status: 204 });
    },
    {
      permission: 'users:write',
      params: UserLinkParams,
      detail: { summary: "Unlink one of a user's SSO identities", tags: ['users'] },
    },
  )
  .get(
    '/api-keys',
    ({ ctx: c }) => ({
      api_keys: listApiKeys(c.db, can(c.principal, 'apikeys:admin') ? null : userIdOf(c.principal)),
    }),
    {
      permission: 'apikeys:own',
      detail: { summary: 'List API keys (your own; admins: all)', tags: ['api-keys'] },
    },
  )
  .post(
    '/api-keys',
    ({ body, ctx: c }) => {
      const p = c.principal!;
      if (p.kind !== 'user')
        throw new AppError('auth.forbidden', 'API keys are made by signed-in users', 403);
      const r = createApiKey(c.app, c.db, body, { userId: p.userId, role: p.role }, actorOf(p));
      return Response.json(
        { id: r.id, key: r.key, api_key: r.view },
        { status: 201, headers: { 'cache-control': 'no-store' } },
      );
    },
    {
      permission: 'apikeys:own',
      body: ApiKeyCreate,
      detail: { summary: 'Make an API key (its secret shown once)', tags: ['api-keys'] },
    },
  )
  .delete(
    '/api-keys/:id',
    ({ params, ctx: c }) => {
      const owner = can(c.principal, 'apikeys:admin') ? null : userIdOf(c.principal);
      return { api_key: revokeApiKey(c.app, c.db, params.id, owner, actorOf(c.principal)) };
    },
    {
      permission: 'apikeys:own',
      params: IdParams,
      detail: { summary: 'Revoke an API key', tags: ['api-keys'] },
    },
  )
  .get('/settings/identity', ({ ctx: c }) => readIdentitySettings(c.db), {
    permission: 'settings:write',
    detail: { summary: "The platform's identity settings", tags: ['settings'] },
  })
  .patch(
    '/settings/identity',
    ({ body, ctx: c }) =>
      c.db
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
        .immediate(),
    {
      permission: 'settings:write',
      body: SettingsPatch,
      detail: { summary: "Change the platform's identity settings", tags: ['settings'] },
    },
  )
  .get(
    '/audit',
    ({ query, ctx: c }) => {
      c.app.audit.flush();
      return searchAudit(c.db, parseAuditQuery(query));
    },
    {
      permission: 'audit:read',
      query: AuditQuery,
      detail: {
        summary: "The platform's audit trail: oldest first after a seq, or newest first (order=desc, before)",
        tags: ['audit'],
      },
    },
  );
