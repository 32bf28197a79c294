import type { Database } from 'bun:sqlite';
import { Elysia } from 'elysia';
import { AI_ROUTE_PERMISSIONS, type AiRuntime, aiRoutes, type Meter } from '../ai/index.ts';
import type { App } from '../app/index.ts';
import { isCurrent, TENANT_MIGRATIONS } from '../db/index.ts';
import {
  authenticate,
  can,
  IDENTITY_ROUTE_PERMISSIONS,
  identityRoutes,
  MFA_ROUTE_PERMISSIONS,
  mfaRoutes,
  OIDC_ROUTE_PERMISSIONS,
  oidcRoutes,
  type Permission,
  requestContext,
  SAML_ROUTE_PERMISSIONS,
  SCIM_ROUTE_PERMISSIONS,
  samlRoutes,
  scimRoutes,
  setRequestContext,
} from '../identity/index.ts';
import { AppError } from '../shared/errors.ts';
import { domainUrl, type PlatformHead, type Tenancy } from '../tenancy/index.ts';
import { parseJsonLenient, refuseUnparsed, toErrorResponse } from './errors.ts';
import { htmlResponse, platformHomePage, platformStatusPage } from './pages.ts';

/** What the platform routes need; the dispatcher fills `platformOf` and `dbOf` per request. */
export interface PlatformRoutesDeps {
  app: App;
  tenancy: Tenancy;
  platformOf: WeakMap<Request, PlatformHead>;
  /** The stored host the request matched (`<slug>.<base>` or a mapped domain). */
  hostOf: WeakMap<Request, string>;
  dbOf: WeakMap<Request, () => Database>;
  /** The client's address, read from the socket when a route asks. */
  ipOf: (request: Request) => string | null;
  routeOf: WeakMap<Request, string>;
  ai: { runtime: AiRuntime; meter: Meter };
}

/** The server's own platform routes. */
const SERVER_ROUTE_PERMISSIONS: Record<string, Permission> = {
  'GET /': 'public',
  'GET /readyz': 'public',
};

/** Every platform route's permission, checked before its handler (deny by default). */
export const PLATFORM_ROUTE_PERMISSIONS: Record<string, Permission> = {
  ...SERVER_ROUTE_PERMISSIONS,
  ...IDENTITY_ROUTE_PERMISSIONS,
  ...MFA_ROUTE_PERMISSIONS,
  ...OIDC_ROUTE_PERMISSIONS,
  ...SAML_ROUTE_PERMISSIONS,
  ...SCIM_ROUTE_PERMISSIONS,
  ...AI_ROUTE_PERMISSIONS,
};

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

/**
 * A platform's own host. The dispatcher only hands this app requests for an active platform,
 * with that platform's database leased; here, before any handler, the route's permission is
 * looked up (none: 500, never reached), the credentials are read against this platform's
 * database only, the permission is checked, cookie-authenticated writes must carry the CSRF
 * token, and the request context is set for the handlers.
 */
export function platformRoutes(d: PlatformRoutesDeps) {
  return (
    new Elysia({ name: 'platform.routes' })
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
      // JSON that does not parse is answered after the permission check (401/403 first); SCIM
      // reads its bodies itself.
      .onParse({ as: 'global' }, ({ request, contentType, path }) =>
        path.startsWith('/scim/') ? undefined : parseJsonLenient(request, contentType),
      )
      .onBeforeHandle({ as: 'global' }, ({ request, route, body }) => {
        d.routeOf.set(request, route);
        const platform = d.platformOf.get(request);
        const db = d.dbOf.get(request);
        if (!platform || !db)
          throw new AppError(
            'internal.no_platform',
            'request reached a platform route without a platform',
            500,
          );
        const need = PLATFORM_ROUTE_PERMISSIONS[`${request.method} ${route}`];
        if (!need)
          throw new AppError(
            'internal.route_without_permission',
            `route ${route} declares no permission`,
            500,
          );
        const now = d.app.clock.now();
        // Credentials are read (and the database opened) only when there are any, or when needed.
        const hasCredentials = request.headers.has('authorization') || request.headers.has('cookie');
        const a =
          need === 'public' && !hasCredentials
            ? { principal: null, pendingMfa: null, via: null }
            : authenticate(request, db(), platform.id, now, need !== 'public');
        if (need === 'mfa_pending') {
          if (!a.pendingMfa && a.principal?.kind !== 'user')
            throw new AppError('auth.required', 'sign in first', 401);
        } else if (!can(a.principal, need)) {
          if (!a.principal) {
            throw new AppError(
              a.pendingMfa ? 'auth.mfa_required' : 'auth.required',
              a.pendingMfa ? 'finish signing in with your second factor' : 'sign in or send an API key',
              401,
            );
          }
          throw new AppError('auth.forbidden', `this needs the ${need} permission`, 403);
        }
        if (a.via === 'cookie' && !SAFE_METHODS.has(request.method) && need !== 'public') {
          const expected =
            a.principal?.kind === 'user' ? a.principal.csrfToken : (a.pendingMfa?.csrfToken ?? null);
          const sent = request.headers.get('x-csrf-token');
          if (expected !== null && sent !== expected) {
            throw new AppError(
              'auth.csrf',
              'writes made with a session cookie need the x-csrf-token header from sign-in',
              403,
            );
          }
        }
        refuseUnparsed(body);
        // The client's address and the public origin are worked out only by the routes that use
        // them (sign-in, SSO, SCIM), not on the path of every AI call.
        setRequestContext(request, {
          app: d.app,
          platform: { id: platform.id, slug: platform.slug, name: platform.name },
          get db() {
            return db();
          },
          principal: a.principal,
          pendingMfa: a.pendingMfa,
          get ip() {
            return d.ipOf(request);
          },
          blueprint: () => d.tenancy.blueprintOf(platform.id),
          // Scheme and port from the stored public URL, the host from storage: never the header.
          get origin() {
            const host = d.hostOf.get(request) ?? `${platform.slug}.${d.tenancy.settings().base_domain}`;
            return new URL(domainUrl(d.tenancy.settings(), host)).origin;
          },
        });
      })
      .get('/', ({ request }) =>
        htmlResponse(platformHomePage(d.tenancy.blueprintOf(requestContext(request).platform.id))),
      )
      .get('/readyz', ({ request }) => {
        // The platform's own database: reachable, current, and really this platform's file.
        const { db, platform } = requestContext(request);
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
      })
      .use(identityRoutes)
      .use(mfaRoutes)
      .use(oidcRoutes)
      .use(samlRoutes)
      .use(scimRoutes)
      .use(aiRoutes(d.ai))
  );
}

/** Whether the client asked for a page rather than JSON. */
export function wantsHtml(request: Request): boolean {
  const accept = request.headers.get('accept') ?? '';
  return accept === '' || accept.includes('text/html') || accept.includes('*/*');
}
