import { Elysia } from 'elysia';
import { AppError } from '../shared/errors.ts';
import { requestContext } from './context.ts';
import { actorOf, type Permission, roleOf } from './permissions.ts';
import {
  finishSamlLogin,
  readSaml,
  removeSaml,
  samlMetadata,
  samlView,
  saveSaml,
  startSamlLogin,
} from './saml.ts';
import { sessionCookie } from './sessions.ts';

/** The saml routes and the permission each needs (merged into the platform's table). */
export const SAML_ROUTE_PERMISSIONS: Record<string, Permission> = {
  'GET /api/v1/sso/saml': 'sso:admin',
  'PUT /api/v1/sso/saml': 'sso:admin',
  'DELETE /api/v1/sso/saml': 'sso:admin',
  'GET /sso/saml/metadata': 'public',
  'GET /sso/saml/login': 'public',
  'POST /sso/saml/acs': 'public',
};

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
    if (!removeSaml(c.app, c.db, actorOf(c.principal)))
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
    const url = await startSamlLogin(c.app, c.db, {
      origin: c.origin,
      returnTo: new URL(request.url).searchParams.get('return_to'),
    });
    return new Response(null, { status: 302, headers: { location: url, 'cache-control': 'no-store' } });
  })
  .post('/sso/saml/acs', async ({ request, body }) => {
    const c = requestContext(request);
    const r = await finishSamlLogin(c.app, c.db, {
      origin: c.origin,
      body,
      ip: c.ip,
      userAgent: request.headers.get('user-agent'),
    });
    const headers = new Headers({ location: r.returnTo, 'cache-control': 'no-store' });
    headers.append(
      'set-cookie',
      sessionCookie(r.token, {
        secure: c.origin.startsWith('https:'),
        maxAgeSec: Math.floor((r.expiresAt - c.app.clock.now()) / 1000),
      }),
    );
    return new Response(null, { status: 302, headers });
  });
