import { Elysia } from 'elysia';
import { setCookie } from '../shared/cookies.ts';
import { AppError } from '../shared/errors.ts';
import { requestContext } from './context.ts';
import { actorOf, type Permission, roleOf } from './permissions.ts';
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
import { sessionCookie } from './sessions.ts';
import { linkingUser } from './sso.ts';

/** The saml routes and the permission each needs (merged into the platform's table). */
export const SAML_ROUTE_PERMISSIONS: Record<string, Permission> = {
  'GET /api/v1/sso/saml': 'sso:admin',
  'PUT /api/v1/sso/saml': 'sso:admin',
  'DELETE /api/v1/sso/saml': 'sso:admin',
  'GET /sso/saml/metadata': 'public',
  'GET /sso/saml/login': 'public',
  'POST /api/v1/sso/saml/link': 'signed_in',
  'POST /sso/saml/acs': 'public',
};

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

/**
 * SAML 2.0 single sign-on of a platform, the platform being the SP: its settings under
 * /api/v1/sso/saml (owners and admins; the SP private key never leaves the server), the SP
 * metadata, /sso/saml/login (SP-initiated, HTTP-Redirect) and the ACS (HTTP-POST), which
 * sets the session cookie and redirects to the RelayState path.
 */
export const samlRoutes = new Elysia({ name: 'saml.routes' })
  .get('/api/v1/sso/saml', ({ request }) => {
    const c = requestContext(request);
    const s = readSaml(c.db);
    if (!s) throw new AppError('sso.saml_not_configured', 'SAML single sign-on is not set up', 404);
    return { saml: samlView(s, c.origin) };
  })
  .put('/api/v1/sso/saml', ({ request, body }) => {
    const c = requestContext(request);
    const s = saveSaml(c.app, c.db, body, {
      actor: actorOf(c.principal),
      role: roleOf(c.principal),
      platformSlug: c.platform.slug,
    });
    return { saml: samlView(s, c.origin) };
  })
  .delete('/api/v1/sso/saml', ({ request }) => {
    const c = requestContext(request);
    if (!removeSaml(c.app, c.db, actorOf(c.principal), roleOf(c.principal)))
      throw new AppError('sso.saml_not_configured', 'SAML single sign-on is not set up', 404);
    return new Response(null, { status: 204 });
  })
  .get('/sso/saml/metadata', ({ request }) => {
    const c = requestContext(request);
    return new Response(samlMetadata(c.db, c.origin), {
      headers: { 'content-type': 'application/samlmetadata+xml; charset=utf-8' },
    });
  })
  .get('/sso/saml/login', async ({ request }) => {
    const c = requestContext(request);
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
  })
  // Link while signed in: the identity that comes back is linked to this (recently signed-in)
  // user. A POST with the CSRF token, so no other site can start it; the browser goes to `url`.
  .post('/api/v1/sso/saml/link', async ({ request, body }) => {
    const c = requestContext(request);
    const userId = linkingUser(c.app, c.db, c.principal);
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
  })
  .post('/sso/saml/acs', async ({ request, body }) => {
    const c = requestContext(request);
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
    if (r.requestId) headers.append('set-cookie', pendingCookie(samlCookieName(r.requestId), '', secure, 0));
    return new Response(null, { status: 302, headers });
  });
