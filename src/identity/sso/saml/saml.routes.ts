import { type DocumentDecoration, Elysia } from 'elysia';
import { setCookie } from '../../../shared/cookies.ts';
import { AppError } from '../../../shared/errors.ts';
import { platformGuard } from '../../guard.routes.ts';
import { actorOf, roleOf } from '../../permissions.ts';
import { sessionCookie } from '../../sessions/sessions.ts';
import { linkingUser } from '../sso.ts';
import {
  documentedBody,
  type OperationDoc,
  SAML_LOGIN_DETAIL,
  SamlAcsForm,
  SamlSettingsBody,
  SsoLinkBody,
} from './saml.models.ts';
import {
  finishSamlLogin,
  readSaml,
  removeSaml,
  SAML_REQUEST_TTL_MS,
  samlCookieName,
  samlMetadata,
  samlView,
  saveSaml,
  startSamlLogin,
} from './saml.ts';

/**
 * The cookie of a SAML sign-in in flight (its sealed request; see SAML_BROWSER_COOKIE), on the
 * SAML paths only (the login sees them too, to keep their number bounded). The IdP posts to the ACS from its own site, and a Lax cookie is not sent on a
 * cross-site POST: on https it is `SameSite=None; Secure`. On http (loopback development,
 * tests) browsers refuse `None` without Secure, so it is Lax there (an IdP on the same site
 * still works).
 */
function pendingCookie(name: string, value: string, secure: boolean, maxAgeSec: number): string {
  return setCookie(name, value, { path: '/sso/saml', sameSite: secure ? 'None' : 'Lax', maxAgeSec, secure });
}

/** A documented operation (saml.models.ts) as Elysia's route detail. */
const doc = (d: OperationDoc) => d as DocumentDecoration;

/**
 * SAML 2.0 single sign-on of a platform, the platform being the SP: its settings under
 * /api/v1/sso/saml (owners and admins; the SP private key never leaves the server), the SP
 * metadata, /sso/saml/login (SP-initiated, HTTP-Redirect) and the ACS (HTTP-POST), which
 * sets the session cookie and redirects to the RelayState path.
 */
export const samlRoutes = new Elysia({ name: 'saml.routes' })
  .use(platformGuard)
  .get(
    '/api/v1/sso/saml',
    ({ ctx: c }) => {
      const s = readSaml(c.db);
      if (!s) throw new AppError('sso.saml_not_configured', 'SAML single sign-on is not set up', 404);
      return { saml: samlView(s, c.origin) };
    },
    { permission: 'sso:admin', detail: { summary: "The platform's SAML settings", tags: ['sso'] } },
  )
  .put(
    '/api/v1/sso/saml',
    ({ ctx: c, body }) => {
      const s = saveSaml(c.app, c.db, body, {
        actor: actorOf(c.principal),
        role: roleOf(c.principal),
        platformSlug: c.platform.slug,
      });
      return { saml: samlView(s, c.origin) };
    },
    // The service checks the body (every fault at once); the schema documents it.
    { permission: 'sso:admin', detail: doc(documentedBody(SamlSettingsBody, 'Set up SAML single sign-on')) },
  )
  .delete(
    '/api/v1/sso/saml',
    ({ ctx: c }) => {
      if (!removeSaml(c.app, c.db, actorOf(c.principal), roleOf(c.principal)))
        throw new AppError('sso.saml_not_configured', 'SAML single sign-on is not set up', 404);
      return new Response(null, { status: 204 });
    },
    { permission: 'sso:admin', detail: { summary: 'Remove SAML single sign-on', tags: ['sso'] } },
  )
  .get(
    '/sso/saml/metadata',
    ({ ctx: c }) =>
      new Response(samlMetadata(c.db, c.origin), {
        headers: { 'content-type': 'application/samlmetadata+xml; charset=utf-8' },
      }),
    { permission: 'public', detail: { summary: "The SP's SAML metadata (XML)", tags: ['sso'] } },
  )
  .get(
    '/sso/saml/login',
    async ({ ctx: c, request }) => {
      const { url, cookie, drop } = await startSamlLogin(c.app, c.db, {
        origin: c.origin,
        returnTo: new URL(request.url).searchParams.get('return_to'),
        client: { scope: c.platform.id, ip: c.ip },
        cookies: request.headers.get('cookie'),
      });
      const headers = new Headers({ location: url, 'cache-control': 'no-store' });
      for (const name of drop)
        headers.append('set-cookie', pendingCookie(name, '', c.origin.startsWith('https:'), 0));
      headers.append(
        'set-cookie',
        pendingCookie(
          cookie.name,
          cookie.value,
          c.origin.startsWith('https:'),
          Math.floor(SAML_REQUEST_TTL_MS / 1000),
        ),
      );
      return new Response(null, { status: 302, headers });
    },
    { permission: 'public', detail: doc(SAML_LOGIN_DETAIL) },
  )
  // Link while signed in: the identity that comes back is linked to this (recently signed-in)
  // user. A POST with the CSRF token, so no other site can start it; the browser goes to `url`.
  .post(
    '/api/v1/sso/saml/link',
    async ({ ctx: c, body }) => {
      const userId = linkingUser(c.app, c.db, c.principal);
      // Anything but a string path (or no body at all) returns to '/', as before the schema.
      const returnTo =
        body && typeof body === 'object' ? (body as Record<string, unknown>).return_to : undefined;
      const { url, cookie } = await startSamlLogin(c.app, c.db, {
        origin: c.origin,
        returnTo,
        client: { scope: c.platform.id, ip: c.ip },
        linkUserId: userId,
      });
      const headers = new Headers({ 'cache-control': 'no-store' });
      headers.append(
        'set-cookie',
        pendingCookie(
          cookie.name,
          cookie.value,
          c.origin.startsWith('https:'),
          Math.floor(SAML_REQUEST_TTL_MS / 1000),
        ),
      );
      return Response.json({ url }, { headers });
    },
    {
      permission: 'signed_in',
      detail: doc(
        documentedBody(SsoLinkBody, 'Link a SAML identity to your account (the URL to go to)', false),
      ),
    },
  )
  .post(
    '/sso/saml/acs',
    async ({ ctx: c, request, body }) => {
      const r = await finishSamlLogin(c.app, c.db, {
        origin: c.origin,
        body,
        ip: c.ip,
        userAgent: request.headers.get('user-agent'),
        cookies: request.headers.get('cookie'),
        scope: c.platform.id,
      });
      const secure = c.origin.startsWith('https:');
      const headers = new Headers({ location: r.returnTo, 'cache-control': 'no-store' });
      headers.append(
        'set-cookie',
        sessionCookie(r.token, {
          secure,
          maxAgeSec: Math.floor((r.expiresAt - c.app.clock.now()) / 1000),
        }),
      );
      if (r.requestId)
        headers.append('set-cookie', pendingCookie(samlCookieName(r.requestId), '', secure, 0));
      return new Response(null, { status: 302, headers });
    },
    // finishSamlLogin reads the form (its refusals are audited and counted); the schema documents it.
    {
      permission: 'public',
      detail: doc(
        documentedBody(
          SamlAcsForm,
          "The assertion consumer service: the IdP's POST (sets the session cookie, 302 to RelayState)",
          true,
          'application/x-www-form-urlencoded',
        ),
      ),
    },
  );
