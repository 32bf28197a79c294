import { Elysia } from 'elysia';
import type { App } from '../app/index.ts';
import type { OperatorActions } from '../flows/index.ts';
import { authenticateOperatorToken, LOCAL_ROOT, type OperatorPrincipal } from '../identity/index.ts';
import { AppError } from '../shared/errors.ts';
import type { Tenancy } from '../tenancy/index.ts';
import { objectBody, toErrorResponse } from './errors.ts';
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
  readiness: () => { ok: boolean; checks: Record<string, string> };
}

/** The permission a route needs: reading the control plane, or changing it. */
export type OperatorPermission = 'public' | 'operator:read' | 'operator:write';

/**
 * The operator host: the console page, /metrics, and the operator API under /_operator/api
 * (Bearer operator token, or the control socket). Every route names its permission here.
 */
export function operatorRoutes(d: OperatorRoutesDeps) {
  const principalOf = (request: Request, need: Exclude<OperatorPermission, 'public'>): OperatorPrincipal => {
    if (d.trusted.has(request)) return LOCAL_ROOT;
    const auth = request.headers.get('authorization') ?? '';
    const m = /^Bearer\s+(\S+)$/i.exec(auth);
    if (!m) throw new AppError('auth.required', 'this needs Authorization: Bearer <operator token>', 401);
    const p = authenticateOperatorToken(d.app, m[1]!);
    if (!p) throw new AppError('auth.invalid_token', 'the operator token is unknown or revoked', 401);
    if (need === 'operator:write' && p.role !== 'operator_admin') {
      throw new AppError('auth.forbidden', 'this needs the operator admin role', 403);
    }
    return p;
  };
  const CREATE_FIELDS = ['slug', 'template', 'blueprint', 'name', 'domain', 'owner_email'] as const;

  return new Elysia({ name: 'operator.routes' })
    .onError(({ code, error }) => toErrorResponse(code, error, d.app.log))
    .resolve({ as: 'global' }, ({ request, route }) => {
      d.routeOf.set(request, route);
      // Deny by default: a route missing from the permission table cannot be reached.
      const need = OPERATOR_ROUTE_PERMISSIONS[`${request.method} ${route}`];
      if (!need)
        throw new AppError('internal.route_without_permission', `route ${route} declares no permission`, 500);
      return { principal: need === 'public' ? ANONYMOUS : principalOf(request, need) };
    })
    .get('/', () => htmlResponse(operatorHomePage(d.tenancy.registry.size)))
    .get('/readyz', () => {
      const r = d.readiness();
      return Response.json(
        { status: r.ok ? 'ready' : 'not_ready', checks: r.checks },
        { status: r.ok ? 200 : 503 },
      );
    })
    .get('/metrics', async ({ request }) => {
      const token = d.app.config.metrics_token;
      if (token && request.headers.get('authorization') !== `Bearer ${token}`) {
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
        .post('/platforms/:slug/resume', ({ principal, params }) => d.actions.resume(principal, params.slug))
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
        .post('/tokens', ({ principal, body }) =>
          Response.json(d.actions.createToken(principal, objectBody(body, ['name'])), { status: 201 }),
        )
        .get('/audit/verify', ({ query }) => {
          const slug = typeof query.platform === 'string' && query.platform ? query.platform : undefined;
          return d.actions.verifyAudit(slug);
        }),
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
  'GET /_operator/api/audit/verify': 'operator:read',
};
