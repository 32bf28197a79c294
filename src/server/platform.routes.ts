import type { Database } from 'bun:sqlite';
import { Elysia } from 'elysia';
import { agentRoutes, conversationRoutes, federationRoutes, sharingRoutes } from '../agents/index.ts';
import { type AiRuntime, aiRoutes, type Meter } from '../ai/index.ts';
import type { App } from '../app/index.ts';
import { billingRoutes, invoicesRoutes, requireAiAllowance } from '../billing/index.ts';
import { isCurrent, readMeta, TENANT_MIGRATIONS } from '../db/index.ts';
import {
  actorOf,
  authenticate,
  can,
  declaredPermission,
  identityRoutes,
  mfaRoutes,
  oidcRoutes,
  onboardingRoutes,
  type Permission,
  type PlatformRequestContext,
  platformGuard,
  samlRoutes,
  scimRoutes,
  signInOptions,
} from '../identity/index.ts';
import { AppError } from '../shared/errors.ts';
import {
  BLUEPRINT_RULES,
  checkLogo,
  deleteBrandAssetsExcept,
  domainUrl,
  getBrandAsset,
  localLogoName,
  PACK_LOCKS,
  type PlatformHead,
  putBrandAsset,
  type Tenancy,
} from '../tenancy/index.ts';
import { accountPages } from './account-pages.ts';
import { lazyDocument, PLATFORM_SPEC } from './api-docs.ts';
import { parseJsonLenient, refuseUnparsed, toErrorResponse } from './errors.ts';
import { apiAccessDisabled, featureDisabled, GATED_ROUTES } from './feature-gates.ts';
import { docsResponse } from './openapi.ts';
import { PlatformUpdate } from './operator.models.ts';
import { htmlResponse, platformHomePage, platformStatusPage } from './pages.ts';
import { assetResponse, type WebBuild } from './web-assets.ts';
import {
  brandAssetResponse,
  brandCssResponse,
  monogramIcon,
  platformShell,
  webManifest,
} from './web-shell.ts';

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
  /** The browser apps' build; null: /app and /admin answer 503 until it is built. */
  web: WebBuild | null;
}

/**
 * Every route of an app and the permission it declares: its metadata (`permission` option,
 * stored as `detail['x-permission']`). A route without one is missing here, and answers 500.
 */
export function routePermissions(app: {
  routes: { method: string; path: string; hooks: unknown }[];
}): Map<string, string> {
  const out = new Map<string, string>();
  for (const r of app.routes) {
    const key = `${r.method} ${r.path}`;
    const need = declaredPermission(r.hooks);
    if (need) out.set(key, need);
  }
  return out;
}

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

/**
 * A platform's own host. The dispatcher only hands this app requests for an active platform,
 * with that platform's database leased; here, in the transform phase (before Elysia validates
 * the body, query and params), the route's declared permission is looked up (none: 500, never
 * reached), the credentials are read against this platform's database only, the permission is
 * checked, cookie-authenticated writes must carry the CSRF token, a body that did not parse is
 * refused, and the request context is handed to the handler (`ctx`).
 */
export function platformRoutes(d: PlatformRoutesDeps) {
  const shell = (app: 'admin' | 'portal', p: { id: string; slug: string }, db: Database) =>
    platformShell(d.web, app, p, d.tenancy.blueprintOf(p.id), {
      customCssOrigins: d.app.config.web?.custom_css_origins ?? [],
      signIn: signInOptions(db),
    });
  // Filled from the route table once the app is built (the metadata beside each route).
  let permissions = new Map<string, string>();
  const document = lazyDocument(
    () => app.routes,
    PLATFORM_SPEC,
    (route) => permissions.get(route),
  );
  const app = new Elysia({ name: 'platform.routes', normalize: false })
    .use(platformGuard)
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
    .onParse({ as: 'global' }, async ({ request, contentType, path }) =>
      // Stripe's signature is over the raw body: the webhook reads it as text.
      path === '/api/v1/billing/stripe/webhook'
        ? await request.text()
        : path === '/api/v1/platform/logo' ||
            (/^\/api\/v1\/agents\/[^/]+\/knowledge$/.test(path) &&
              contentType.toLowerCase() !== 'application/json')
          ? new Uint8Array(await request.arrayBuffer())
          : path.startsWith('/scim/') && !contentType.toLowerCase().startsWith('multipart/form-data')
            ? undefined
            : parseJsonLenient(request, contentType),
    )
    .derive({ as: 'global' }, ({ request, route, body }) => {
      d.routeOf.set(request, route);
      const platform = d.platformOf.get(request);
      const db = d.dbOf.get(request);
      if (!platform || !db)
        throw new AppError(
          'internal.no_platform',
          'request reached a platform route without a platform',
          500,
        );
      // HEAD is served by the GET route (Elysia), so it needs what GET needs.
      const method = request.method === 'HEAD' ? 'GET' : request.method;
      const need = permissions.get(`${method} ${route}`) as Permission | undefined;
      if (!need)
        throw new AppError('internal.route_without_permission', `route ${route} declares no permission`, 500);
      // A feature that is off answers the same to everyone, before credentials are read.
      const feature = GATED_ROUTES.get(`${method} ${route}`);
      if (feature && !d.tenancy.blueprintOf(platform.id).features[feature]) throw featureDisabled(feature);
      const now = d.app.clock.now();
      // Credentials are read (and the database opened) only when there are any, or when needed.
      const hasCredentials = request.headers.has('authorization') || request.headers.has('cookie');
      const a =
        need === 'public' && !hasCredentials
          ? { principal: null, pendingMfa: null, via: null }
          : authenticate(request, db(), platform.id, now, need !== 'public');
      if (
        a.principal?.kind === 'api_key' &&
        need !== 'public' &&
        !d.tenancy.blueprintOf(platform.id).features.api_access
      )
        throw apiAccessDisabled();
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
      const ctx: PlatformRequestContext = {
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
      };
      // An empty JSON body reads as an empty object, so optional fields stay optional.
      return body === '' ? { ctx, body: {} } : { ctx };
    })
    .get('/', ({ ctx }) => htmlResponse(platformHomePage(d.tenancy.blueprintOf(ctx.platform.id))), {
      permission: 'public',
      detail: { summary: "The platform's landing page", tags: ['pages'] },
    })
    .get(
      '/readyz',
      ({ ctx }) => {
        // The platform's own database: reachable, current, and really this platform's file.
        const { db, platform } = ctx;
        const id = readMeta(db, 'platform_id');
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
      },
      {
        permission: 'public',
        detail: { summary: "Whether the platform's database is ready", tags: ['health'] },
      },
    )
    // The platform API's description and its reference page (public, offline).
    .get(
      '/api/v1/openapi.json',
      ({ ctx }) => ({
        ...document(),
        info: { ...document().info, title: `${ctx.platform.name} API` },
        servers: [{ url: ctx.origin }],
      }),
      { permission: 'public', detail: { summary: 'This API, as an OpenAPI 3.1 document', tags: ['docs'] } },
    )
    .get(
      '/api/v1/docs',
      ({ ctx }) =>
        docsResponse({ ...document(), info: { ...document().info, title: `${ctx.platform.name} API` } }),
      { permission: 'public', detail: { summary: "This API's reference page", tags: ['docs'] } },
    )
    // The platform's own settings: what an owner or admin may change of its blueprint.
    .get(
      '/api/v1/platform',
      ({ ctx }) => ({
        platform: ctx.platform,
        blueprint: d.tenancy.blueprintOf(ctx.platform.id),
        rules: { settings: BLUEPRINT_RULES, pack_locks: PACK_LOCKS },
      }),
      {
        permission: 'settings:write',
        detail: {
          summary: "The platform's blueprint, and who may change which of its settings",
          tags: ['settings'],
        },
      },
    )
    .patch(
      '/api/v1/platform',
      ({ ctx, body }) => {
        const r = d.tenancy.updateBlueprint(ctx.platform.slug, body.blueprint, {
          kind: 'platform',
          actor: actorOf(ctx.principal),
        });
        // The same answer as the operator's change: the platform (its new name), blueprint, diff.
        // (Only the platform's own reference: its file and status are the operator's business.)
        const { id, slug, name } = r.platform;
        return { platform: { id, slug, name }, blueprint: r.blueprint, changes: r.changes };
      },
      {
        permission: 'settings:write',
        body: PlatformUpdate,
        detail: {
          summary:
            "Change the platform's own branding, features and AI settings (a partial blueprint; operator-only settings answer 403)",
          tags: ['settings'],
        },
      },
    )
    // The browser apps: the end-user portal and the platform admin (pages are public; every
    // API call they make checks its own permission), their assets and the brand stylesheet.
    .get('/app', ({ ctx }) => shell('portal', ctx.platform, ctx.db), {
      permission: 'public',
      detail: { summary: 'The end-user portal (sign-in, chat, profile)', tags: ['pages'] },
    })
    .get('/app/*', ({ ctx }) => shell('portal', ctx.platform, ctx.db), {
      permission: 'public',
      detail: { summary: "The portal's screens", tags: ['pages'] },
    })
    .get('/admin', ({ ctx }) => shell('admin', ctx.platform, ctx.db), {
      permission: 'public',
      detail: { summary: 'The platform admin (owners and admins)', tags: ['pages'] },
    })
    .get('/admin/*', ({ ctx }) => shell('admin', ctx.platform, ctx.db), {
      permission: 'public',
      detail: { summary: "The platform admin's screens", tags: ['pages'] },
    })
    .get('/assets/:name', ({ params, request }) => assetResponse(d.web, params.name, request), {
      permission: 'public',
      detail: {
        summary: 'A file of the browser apps (hashed name, precompressed, immutable)',
        tags: ['pages'],
      },
    })
    // The uploaded logo: stored in the platform's database, branding.logo points at it.
    .post(
      '/api/v1/platform/logo',
      ({ ctx, body }) => {
        const bytes = body instanceof Uint8Array ? body : new Uint8Array(0);
        const { name, type } = checkLogo(bytes);
        const db = ctx.db;
        putBrandAsset(db, { name, content_type: type, bytes, created_at: d.app.clock.now() });
        const logo = `/brand/${name}`;
        // The blueprint change is audited as any other; the asset it replaced goes after it.
        const r = d.tenancy.updateBlueprint(
          ctx.platform.slug,
          { identity: { branding: { logo } } },
          { kind: 'platform', actor: actorOf(ctx.principal) },
        );
        deleteBrandAssetsExcept(db, name);
        return Response.json(
          { logo, bytes: bytes.byteLength, content_type: type, changes: r.changes },
          { status: 201 },
        );
      },
      {
        permission: 'settings:write',
        detail: {
          summary:
            'Upload the logo (the body is a PNG, JPEG, GIF or WebP image, at most 256 KB): stored in the platform, branding.logo points at it',
          tags: ['settings'],
        },
      },
    )
    .get(
      '/brand/:name',
      ({ ctx, params }) => {
        const a = /^logo-[0-9a-f]{16}\.(png|jpg|gif|webp)$/.test(params.name)
          ? getBrandAsset(ctx.db, params.name)
          : null;
        if (!a) throw new AppError('asset.not_found', `no brand file ${params.name}`, 404);
        return brandAssetResponse(a);
      },
      {
        permission: 'public',
        detail: { summary: "The platform's uploaded logo (named by its hash, immutable)", tags: ['pages'] },
      },
    )
    .get(
      '/favicon.ico',
      ({ ctx }) => {
        const bp = d.tenancy.blueprintOf(ctx.platform.id);
        const local = localLogoName(bp.identity.branding.logo);
        const a = local ? getBrandAsset(ctx.db, local) : null;
        return a ? brandAssetResponse(a, 'public, max-age=3600') : monogramIcon(bp);
      },
      {
        permission: 'public',
        detail: {
          summary:
            "The platform's icon: its uploaded logo, or its initial in its brand color (never Soulfra's)",
          tags: ['pages'],
        },
      },
    )
    .get('/manifest.webmanifest', ({ ctx }) => webManifest(d.tenancy.blueprintOf(ctx.platform.id)), {
      permission: 'public',
      detail: { summary: "The platform's web app manifest (its name, colors and icon)", tags: ['pages'] },
    })
    .get(
      '/brand/theme.css',
      ({ ctx, request }) => brandCssResponse(d.tenancy.blueprintOf(ctx.platform.id), request),
      {
        permission: 'public',
        detail: {
          summary: "The platform's brand as CSS custom properties, then its custom CSS",
          tags: ['pages'],
        },
      },
    )
    .use(accountPages)
    .use(identityRoutes)
    .use(onboardingRoutes)
    .use(mfaRoutes)
    .use(oidcRoutes)
    .use(samlRoutes)
    .use(scimRoutes)
    .use(aiRoutes({ ...d.ai, admit: requireAiAllowance }))
    .use(conversationRoutes(d.ai))
    .use(agentRoutes(d.ai))
    .use(federationRoutes(d.ai))
    .use(sharingRoutes)
    .use(billingRoutes(d.ai))
    .use(invoicesRoutes);
  permissions = routePermissions(app);
  return app;
}

/** Whether the client asked for a page rather than JSON. */
export function wantsHtml(request: Request): boolean {
  const accept = request.headers.get('accept') ?? '';
  return accept === '' || accept.includes('text/html') || accept.includes('*/*');
}
