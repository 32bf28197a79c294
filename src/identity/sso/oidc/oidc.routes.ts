import { type DocumentDecoration, Elysia } from 'elysia';
import { AppError } from '../../../shared/errors.ts';
import { platformGuard } from '../../guard.routes.ts';
import { actorOf, roleOf } from '../../permissions.ts';
import { sessionCookie } from '../../sessions/sessions.ts';
import { linkingUser } from '../sso.ts';
import {
  documentedBody,
  OIDC_CALLBACK_DETAIL,
  OIDC_LOGIN_DETAIL,
  OidcSettingsBody,
  type OperationDoc,
  SsoLinkBody,
} from './oidc.models.ts';
import {
  finishOidcLogin,
  OIDC_REQUEST_TTL_MS,
  oidcCookie,
  oidcCookieName,
  oidcView,
  readOidc,
  removeOidc,
  saveOidc,
  startOidcLogin,
} from './oidc.ts';

/** The Set-Cookie of a started sign-in: its sealed state, on the OIDC paths, ten minutes. */
function pendingCookie(cookie: { name: string; value: string }, secure: boolean): string {
  return oidcCookie(cookie.name, cookie.value, secure, Math.floor(OIDC_REQUEST_TTL_MS / 1000));
}

/** A documented operation (oidc.models.ts) as Elysia's route detail. */
const doc = (d: OperationDoc) => d as DocumentDecoration;

/**
 * OIDC single sign-on of a platform: its settings under /api/v1/sso/oidc (owners and admins;
 * the client secret never leaves the server), and the browser flow: /sso/oidc/login sends the
 * browser to the IdP (authorization code with PKCE, state and nonce), /sso/oidc/callback
 * finishes it and sets the session cookie.
 */
export const oidcRoutes = new Elysia({ name: 'oidc.routes' })
  .use(platformGuard)
  .get(
    '/api/v1/sso/oidc',
    ({ ctx: c }) => {
      const s = readOidc(c.db);
      if (!s) throw new AppError('sso.oidc_not_configured', 'OIDC single sign-on is not set up', 404);
      return { oidc: oidcView(s, c.origin) };
    },
    { permission: 'sso:admin', detail: { summary: "The platform's OIDC settings", tags: ['sso'] } },
  )
  .put(
    '/api/v1/sso/oidc',
    async ({ ctx: c, body }) => {
      const s = await saveOidc(c.app, c.db, body, { actor: actorOf(c.principal), role: roleOf(c.principal) });
      return { oidc: oidcView(s, c.origin) };
    },
    // The service checks the body (every fault at once); the schema documents it.
    { permission: 'sso:admin', detail: doc(documentedBody(OidcSettingsBody, 'Set up OIDC single sign-on')) },
  )
  .delete(
    '/api/v1/sso/oidc',
    ({ ctx: c }) => {
      if (!removeOidc(c.app, c.db, actorOf(c.principal), roleOf(c.principal)))
        throw new AppError('sso.oidc_not_configured', 'OIDC single sign-on is not set up', 404);
      return new Response(null, { status: 204 });
    },
    { permission: 'sso:admin', detail: { summary: 'Remove OIDC single sign-on', tags: ['sso'] } },
  )
  .get(
    '/sso/oidc/login',
    async ({ ctx: c, request }) => {
      const { url, cookie, drop } = await startOidcLogin(c.app, c.db, {
        origin: c.origin,
        returnTo: new URL(request.url).searchParams.get('return_to'),
        client: { scope: c.platform.id, ip: c.ip },
        cookies: request.headers.get('cookie'),
      });
      const headers = new Headers({ location: url.href, 'cache-control': 'no-store' });
      for (const name of drop)
        headers.append('set-cookie', oidcCookie(name, '', c.origin.startsWith('https:'), 0));
      headers.append('set-cookie', pendingCookie(cookie, c.origin.startsWith('https:')));
      return new Response(null, { status: 302, headers });
    },
    { permission: 'public', detail: doc(OIDC_LOGIN_DETAIL) },
  )
  // Link while signed in: the identity that comes back is linked to this (recently signed-in)
  // user. A POST with the CSRF token, so no other site can start it; the browser goes to `url`.
  .post(
    '/api/v1/sso/oidc/link',
    async ({ ctx: c, body }) => {
      const userId = linkingUser(c.app, c.db, c.principal);
      // Anything but a string path (or no body at all) returns to '/', as before the schema.
      const returnTo =
        body && typeof body === 'object' ? (body as Record<string, unknown>).return_to : undefined;
      const { url, cookie } = await startOidcLogin(c.app, c.db, {
        origin: c.origin,
        returnTo,
        client: { scope: c.platform.id, ip: c.ip },
        linkUserId: userId,
      });
      const headers = new Headers({ 'cache-control': 'no-store' });
      headers.append('set-cookie', pendingCookie(cookie, c.origin.startsWith('https:')));
      return Response.json({ url: url.href }, { headers });
    },
    {
      permission: 'signed_in',
      detail: doc(
        documentedBody(SsoLinkBody, 'Link an OIDC identity to your account (the URL to go to)', false),
      ),
    },
  )
  .get(
    '/sso/oidc/callback',
    async ({ ctx: c, request }) => {
      const secure = c.origin.startsWith('https:');
      // openid-client reads the whole query (code, state, iss, error, …).
      const query = new URL(request.url).searchParams;
      const r = await finishOidcLogin(c.app, c.db, {
        origin: c.origin,
        query,
        cookies: request.headers.get('cookie'),
        ip: c.ip,
        userAgent: request.headers.get('user-agent'),
        scope: c.platform.id,
      });
      const headers = new Headers({ location: r.returnTo, 'cache-control': 'no-store' });
      headers.append(
        'set-cookie',
        sessionCookie(r.token, { secure, maxAgeSec: Math.floor((r.expiresAt - c.app.clock.now()) / 1000) }),
      );
      headers.append('set-cookie', oidcCookie(oidcCookieName(query.get('state') ?? ''), '', secure, 0));
      return new Response(null, { status: 302, headers });
    },
    { permission: 'public', detail: doc(OIDC_CALLBACK_DETAIL) },
  );
