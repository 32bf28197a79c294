import { Elysia } from 'elysia';
import type { App } from '../app/index.ts';
import { isCurrent, TENANT_MIGRATIONS } from '../db/index.ts';
import { AppError } from '../shared/errors.ts';
import type { PlatformHead, Tenancy } from '../tenancy/index.ts';
import { toErrorResponse } from './errors.ts';
import { htmlResponse, platformHomePage, platformStatusPage } from './pages.ts';

/** What the platform routes need; `platformOf` holds the platform the dispatcher resolved. */
export interface PlatformRoutesDeps {
  app: App;
  tenancy: Tenancy;
  platformOf: WeakMap<Request, PlatformHead>;
  routeOf: WeakMap<Request, string>;
}

/** Who may reach a platform route (identity adds user, key and role permissions). */
export type PlatformPermission = 'public';

/** Every platform route's permission, checked before its handler (deny by default). */
export const PLATFORM_ROUTE_PERMISSIONS: Record<string, PlatformPermission> = {
  'GET /': 'public',
  'GET /readyz': 'public',
};

/**
 * A platform's own host: its branded home page (the real UI comes later). The dispatcher only
 * hands this app requests for an active platform, resolved from the Host header; no handler
 * ever sees another platform.
 */
export function platformRoutes(d: PlatformRoutesDeps) {
  return new Elysia({ name: 'platform.routes' })
    .onError(({ code, error, request }) => {
      const platform = d.platformOf.get(request);
      if (code === 'NOT_FOUND' && platform && wantsHtml(request)) {
        const bp = d.tenancy.blueprintOf(platform.id);
        return htmlResponse(
          platformStatusPage(bp, 'Page not found', 'There is nothing at this address.'),
          404,
        );
      }
      return toErrorResponse(code, error, d.app.log);
    })
    .resolve({ as: 'global' }, ({ request, route }) => {
      d.routeOf.set(request, route);
      const platform = d.platformOf.get(request);
      if (!platform)
        throw new AppError(
          'internal.no_platform',
          'request reached a platform route without a platform',
          500,
        );
      const need = PLATFORM_ROUTE_PERMISSIONS[`${request.method} ${route}`];
      if (!need)
        throw new AppError('internal.route_without_permission', `route ${route} declares no permission`, 500);
      return { platform };
    })
    .get('/', ({ platform }) => htmlResponse(platformHomePage(d.tenancy.blueprintOf(platform.id))))
    .get('/readyz', ({ platform }) =>
      // The platform's own database: reachable, current, and really this platform's file.
      d.app.platformDbs.use(platform.id, (db) => {
        const id = db
          .query<{ value: string }, []>("SELECT value FROM meta WHERE key = 'platform_id'")
          .get()?.value;
        if (id !== platform.id) {
          d.app.log.error('platform database holds another platform', {
            expected: platform.id,
            found: id ?? null,
          });
          throw new AppError(
            'internal.platform_mismatch',
            'platform database does not belong to this platform',
            500,
          );
        }
        const current = isCurrent(db, TENANT_MIGRATIONS);
        return Response.json(
          {
            status: current ? 'ready' : 'not_ready',
            platform: platform.slug,
            id,
            checks: { database: 'ok', schema: current ? 'ok' : 'behind' },
          },
          { status: current ? 200 : 503 },
        );
      }),
    );
}

/** Whether the client asked for a page rather than JSON. */
export function wantsHtml(request: Request): boolean {
  const accept = request.headers.get('accept') ?? '';
  return accept === '' || accept.includes('text/html') || accept.includes('*/*');
}
