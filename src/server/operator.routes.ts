import { Elysia } from 'elysia';
import type { App } from '../app/index.ts';
import { exportMasterKey, type OperatorActions, rotateDataKey, rotateMasterKey } from '../flows/index.ts';
import {
  authenticateOperatorToken,
  endOperatorSession,
  finishOperatorOidc,
  LOCAL_ROOT,
  OIDC_REQUEST_TTL_MS,
  OPERATOR_SESSION_COOKIE,
  type OperatorPrincipal,
  oidcCookie,
  oidcCookieName,
  oidcView,
  readCookie,
  readOidc,
  removeOidc,
  resolveOperatorSession,
  saveOidc,
  startOidcLogin,
} from '../identity/index.ts';
import { clearCookie, setCookie } from '../shared/cookies.ts';
import { AppError } from '../shared/errors.ts';
import type { Tenancy } from '../tenancy/index.ts';
import { objectBody, parseJsonLenient, refuseUnparsed, toErrorResponse } from './errors.ts';
import type { Metrics } from './metrics.ts';
import { htmlResponse, operatorHomePage } from './pages.ts';

/** What the operator routes need. `trusted` holds requests that came over the control socket. */
export interface OperatorRoutesDeps {
  app: App;
  tenancy: Tenancy;
  actions: OperatorActions;
  metrics: Metrics;
  trusted: WeakSet<Request>;
  routeOf: WeakMap<Request, string>;
  /** The client's address, read from the socket when a route asks. */
  ipOf: (request: Request) => string | null;
  /** Whether the request came through a proxy (forwarding headers, or a trusted proxy's socket). */
  proxied: (request: Request) => boolean;
  readiness: () => { ok: boolean; checks: Record<string, string> };
}

/**
 * The permission a route needs: reading the control plane, or changing it; `local:root` routes
 * (the master key) answer only over the control socket, to the machine's owner, never to a token.
 */
export type OperatorPermission = 'public' | 'operator:read' | 'operator:write' | 'local:root';

/**
 * The operator host: the console page, /metrics, and the operator API under /_operator/api
 * (Bearer operator token, or the control socket). Every route names its permission here.
 */
export function operatorRoutes(d: OperatorRoutesDeps) {
  const principalOf = (request: Request, need: Exclude<OperatorPermission, 'public'>): OperatorPrincipal => {
    if (d.trusted.has(request)) return LOCAL_ROOT;
    const auth = request.headers.get('authorization');
    let p: OperatorPrincipal | null;
    if (auth) {
      const m = /^Bearer\s+(\S+)$/i.exec(auth);
      p = m ? authenticateOperatorToken(d.app, m[1]!) : null;
      if (!p)
        throw new AppError(
          'auth.invalid_token',
          'the operator token is unknown, revoked or expired, or its operator is disabled',
          401,
        );
    } else {
      // The console's session cookie (after SSO); its writes must carry the CSRF token.
      const cookie = readCookie(request.headers.get('cookie'), OPERATOR_SESSION_COOKIE);
      const s = cookie ? resolveOperatorSession(d.app, cookie) : null;
      if (!s)
        throw new AppError(
          'auth.required',
          'this needs Authorization: Bearer <operator token> or a console session',
          401,
        );
      if (request.method !== 'GET' && request.headers.get('x-csrf-token') !== s.csrfToken) {
        throw new AppError('auth.csrf', 'console writes need the x-csrf-token header', 403);
      }
      p = s;
    }
    if (need === 'local:root') {
      throw new AppError(
        'auth.control_socket_only',
        'this is only answered over the control socket: run `soulfra keys ...` on the server',
        403,
      );
    }
    if (need === 'operator:write' && p.role !== 'operator_admin') {
      throw new AppError('auth.forbidden', 'this needs the operator admin role', 403);
    }
    return p;
  };
  // The console's origin is the stored public URL (the bare base domain), never the Host header.
  const originOf = (_request: Request) => new URL(d.tenancy.settings().public_url).origin;
  const CREATE_FIELDS = ['slug', 'template', 'blueprint', 'name', 'domain', 'owner_email'] as const;

  return (
    new Elysia({ name: 'operator.routes' })
      .onError(({ code, error }) => toErrorResponse(code, error, d.app.log))
      // JSON that does not parse is answered after the permission check (401/403 first).
      .onParse({ as: 'global' }, ({ request, contentType }) => parseJsonLenient(request, contentType))
      .resolve({ as: 'global' }, ({ request, route, body }) => {
        d.routeOf.set(request, route);
        // Deny by default: a route missing from the permission table cannot be reached.
        const need = OPERATOR_ROUTE_PERMISSIONS[`${request.method} ${route}`];
        if (!need)
          throw new AppError(
            'internal.route_without_permission',
            `route ${route} declares no permission`,
            500,
          );
        const principal = need === 'public' ? ANONYMOUS : principalOf(request, need);
        refuseUnparsed(body);
        return { principal };
      })
      .get('/', () => htmlResponse(operatorHomePage(d.tenancy.registry.size)))
      // The console's own single sign-on (same flow as a platform's, over the control plane).
      .get('/sso/oidc/login', async ({ request }) => {
        // The sign-in's state travels sealed in its own cookie: a start writes nothing to
        // control.db; starts are limited per address, as on platforms (it bounds the CPU spent).
        const secure = originOf(request).startsWith('https:');
        const { url, cookie, drop } = await startOidcLogin(d.app, d.app.control, {
          origin: originOf(request),
          client: { scope: 'operator', ip: d.ipOf(request) },
          returnTo: new URL(request.url).searchParams.get('return_to'),
          cookies: request.headers.get('cookie'),
        });
        const headers = new Headers({ location: url.href, 'cache-control': 'no-store' });
        for (const name of drop) headers.append('set-cookie', oidcCookie(name, '', secure, 0));
        headers.append(
          'set-cookie',
          oidcCookie(cookie.name, cookie.value, secure, OIDC_REQUEST_TTL_MS / 1000),
        );
        return new Response(null, { status: 302, headers });
      })
      .get('/sso/oidc/callback', async ({ request }) => {
        const query = new URL(request.url).searchParams;
        const r = await finishOperatorOidc(d.app, {
          query,
          cookies: request.headers.get('cookie'),
          ip: d.ipOf(request),
        });
        const secure = originOf(request).startsWith('https:');
        const headers = new Headers({ location: r.returnTo, 'cache-control': 'no-store' });
        const maxAge = Math.floor((r.expiresAt - d.app.clock.now()) / 1000);
        headers.append(
          'set-cookie',
          setCookie(OPERATOR_SESSION_COOKIE, r.token, {
            path: '/',
            sameSite: 'Lax',
            maxAgeSec: maxAge,
            secure,
          }),
        );
        headers.append('set-cookie', oidcCookie(oidcCookieName(query.get('state') ?? ''), '', secure, 0));
        return new Response(null, { status: 302, headers });
      })
      .get('/readyz', () => {
        const r = d.readiness();
        return Response.json(
          { status: r.ok ? 'ready' : 'not_ready', checks: r.checks },
          { status: r.ok ? 200 : 503 },
        );
      })
      .get('/metrics', async ({ request }) => {
        // Open on a loopback-only listener reached directly; through a proxy, on any other
        // address, or with metrics_token set, it needs the token.
        if (
          !d.trusted.has(request) &&
          !d.metrics.admits(request.headers.get('authorization'), d.proxied(request))
        ) {
          throw new AppError('auth.required', 'this needs Authorization: Bearer <metrics token>', 401);
        }
        return new Response(await d.metrics.render(), { headers: { 'content-type': d.metrics.contentType } });
      })
      .group('/_operator/api', (api) =>
        api
          .get('/platforms', () => ({ platforms: d.actions.listPlatforms() }))
          .post('/platforms', async ({ principal, body }) => {
            const input = objectBody(body, CREATE_FIELDS);
            for (const k of ['template', 'name', 'domain', 'owner_email'] as const) {
              if (input[k] !== undefined && typeof input[k] !== 'string') {
                throw new AppError('request.invalid', `${k} must be text`, 400, [
                  { path: `/${k}`, reason: 'must be text' },
                ]);
              }
            }
            const r = await d.actions.createPlatform(principal, input as never);
            return Response.json(
              { slug: r.slug, url: r.url, admin: r.admin, platform: r.platform },
              {
                status: 201,
                headers: {
                  'server-timing': `argon2;dur=${r.timings.argon2_ms.toFixed(2)}, create;dur=${r.timings.total_ms.toFixed(2)}`,
                },
              },
            );
          })
          .get('/platforms/:slug', ({ params }) => d.actions.showPlatform(params.slug))
          .post('/platforms/:slug/suspend', ({ principal, params, body }) =>
            d.actions.suspend(principal, params.slug, objectBody(body, ['reason'])),
          )
          .post('/platforms/:slug/resume', ({ principal, params }) =>
            d.actions.resume(principal, params.slug),
          )
          .post('/platforms/:slug/archive', ({ principal, params, body }) =>
            d.actions.archive(principal, params.slug, objectBody(body, ['reason'])),
          )
          .post('/platforms/:slug/unarchive', ({ principal, params }) =>
            d.actions.unarchive(principal, params.slug),
          )
          .post('/platforms/:slug/domains', ({ principal, params, body }) =>
            d.actions.addDomain(principal, params.slug, objectBody(body, ['host'])),
          )
          .delete('/platforms/:slug/domains/:host', ({ principal, params }) =>
            d.actions.removeDomain(principal, params.slug, params.host),
          )
          .post('/platforms/:slug/api-keys', async ({ principal, params, body }) =>
            Response.json(
              await d.actions.createApiKey(
                principal,
                params.slug,
                objectBody(body, ['name', 'scopes', 'expires_at', 'rate_per_min']),
              ),
              { status: 201, headers: { 'cache-control': 'no-store' } },
            ),
          )
          .get('/me', ({ principal }) => ({
            actor: principal.actor,
            operator_id: principal.operatorId,
            role: principal.role,
            csrf_token: (principal as { csrfToken?: string }).csrfToken ?? null,
          }))
          .post('/logout', ({ request }) => {
            const cookie = readCookie(request.headers.get('cookie'), OPERATOR_SESSION_COOKIE);
            if (cookie) endOperatorSession(d.app, cookie);
            return new Response(null, {
              status: 204,
              headers: {
                'set-cookie': clearCookie(OPERATOR_SESSION_COOKIE, {
                  path: '/',
                  sameSite: 'Lax',
                  secure: originOf(request).startsWith('https:'),
                }),
              },
            });
          })
          .get('/operators', () => ({ operators: d.actions.listOperators() }))
          .post('/operators', ({ principal, body }) =>
            Response.json(
              { operator: d.actions.createOperator(principal, objectBody(body, ['email', 'role'])) },
              { status: 201 },
            ),
          )
          .get('/sso/oidc', ({ request }) => {
            const s = readOidc(d.app.control);
            if (!s)
              throw new AppError(
                'sso.oidc_not_configured',
                'the console has no OIDC single sign-on set up',
                404,
              );
            return { oidc: oidcView(s, originOf(request)) };
          })
          .put('/sso/oidc', async ({ request, principal, body }) => {
            const s = await saveOidc(d.app, d.app.control, body, { actor: principal.actor, role: null });
            return { oidc: oidcView(s, originOf(request)) };
          })
          .delete('/sso/oidc', ({ principal }) => {
            if (!removeOidc(d.app, d.app.control, principal.actor)) {
              throw new AppError(
                'sso.oidc_not_configured',
                'the console has no OIDC single sign-on set up',
                404,
              );
            }
            return new Response(null, { status: 204 });
          })
          .post('/operators/:id/disable', ({ principal, params }) =>
            d.actions.disableOperator(principal, params.id),
          )
          .post('/operators/:id/enable', ({ principal, params }) =>
            d.actions.enableOperator(principal, params.id),
          )
          .patch('/operators/:id', ({ principal, params, body }) =>
            d.actions.setOperatorRole(principal, params.id, objectBody(body, ['role'])),
          )
          .delete('/operators/:id', ({ principal, params }) => d.actions.removeOperator(principal, params.id))
          .post('/tokens', ({ principal, body }) =>
            Response.json(
              d.actions.createToken(
                principal,
                objectBody(body, ['name', 'operator', 'role', 'expires_at', 'expires_in']),
              ),
              { status: 201, headers: { 'cache-control': 'no-store' } },
            ),
          )
          .get('/tokens', ({ principal, query }) =>
            d.actions.listTokens(
              principal,
              typeof query.operator === 'string' && query.operator ? query.operator : undefined,
            ),
          )
          .delete('/tokens/:id', ({ principal, params }) => d.actions.revokeToken(principal, params.id))
          .get('/audit/verify', ({ query }) => {
            const slug = typeof query.platform === 'string' && query.platform ? query.platform : undefined;
            return d.actions.verifyAudit(slug);
          })
          .post('/keys/rotate', async ({ principal, body }) => {
            const { master } = objectBody(body, ['master']);
            if (master !== undefined && typeof master !== 'boolean')
              throw new AppError('keys.invalid', 'master must be true or false', 400, [
                { path: '/master', reason: 'must be a boolean' },
              ]);
            const r = master
              ? rotateMasterKey(d.app, principal)
              : await rotateDataKey(d.app, d.tenancy, principal);
            return Response.json(r, { headers: { 'cache-control': 'no-store' } });
          })
          .post('/keys/export', ({ principal }) =>
            Response.json(exportMasterKey(d.app, principal), { headers: { 'cache-control': 'no-store' } }),
          ),
      )
  );
}

/** The principal of public routes: it may do nothing that needs a permission. */
const ANONYMOUS: OperatorPrincipal = { actor: 'anonymous', operatorId: null, role: 'operator_viewer' };

/**
 * The permission of every operator route, checked before its handler runs (deny by default).
 * Tests walk the route table and fail on a route missing here.
 */
export const OPERATOR_ROUTE_PERMISSIONS: Record<string, OperatorPermission> = {
  'GET /': 'public',
  'GET /readyz': 'public',
  'GET /metrics': 'public',
  'GET /_operator/api/platforms': 'operator:read',
  'POST /_operator/api/platforms': 'operator:write',
  'GET /_operator/api/platforms/:slug': 'operator:read',
  'POST /_operator/api/platforms/:slug/suspend': 'operator:write',
  'POST /_operator/api/platforms/:slug/resume': 'operator:write',
  'POST /_operator/api/platforms/:slug/archive': 'operator:write',
  'POST /_operator/api/platforms/:slug/unarchive': 'operator:write',
  'POST /_operator/api/platforms/:slug/domains': 'operator:write',
  'DELETE /_operator/api/platforms/:slug/domains/:host': 'operator:write',
  'POST /_operator/api/platforms/:slug/api-keys': 'operator:write',
  'POST /_operator/api/tokens': 'operator:write',
  'GET /_operator/api/tokens': 'operator:read', // a viewer sees only their own tokens
  'DELETE /_operator/api/tokens/:id': 'operator:read', // anyone may revoke their own; admins any
  'POST /_operator/api/operators/:id/disable': 'operator:write',
  'POST /_operator/api/operators/:id/enable': 'operator:write',
  'PATCH /_operator/api/operators/:id': 'operator:write',
  'DELETE /_operator/api/operators/:id': 'operator:write',
  'GET /sso/oidc/login': 'public',
  'GET /sso/oidc/callback': 'public',
  'GET /_operator/api/me': 'operator:read',
  'POST /_operator/api/logout': 'operator:read',
  'GET /_operator/api/operators': 'operator:read',
  'POST /_operator/api/operators': 'operator:write',
  'GET /_operator/api/sso/oidc': 'operator:read',
  'PUT /_operator/api/sso/oidc': 'operator:write',
  'DELETE /_operator/api/sso/oidc': 'operator:write',
  'GET /_operator/api/audit/verify': 'operator:read',
  'POST /_operator/api/keys/rotate': 'local:root',
  'POST /_operator/api/keys/export': 'local:root',
};
