import { type DocumentDecoration, Elysia } from 'elysia';
import type { AiRuntime, Meter } from '../ai/index.ts';
import { type App, parseAuditQuery } from '../app/index.ts';
import {
  applyEvent,
  archivePlan,
  createPlan,
  deletePlan,
  getPlan,
  issueMonthlyInvoices,
  listPlans,
  planStatus,
  platformOfEvent,
  platformRevenue,
  revenueSeries,
  setPlatformPlan,
  stripeAccount,
  updatePlan,
  verifiedEvent,
} from '../billing/index.ts';
import { tx } from '../db/index.ts';
import { exportMasterKey, type OperatorActions, rotateDataKey, rotateMasterKey } from '../flows/index.ts';
import {
  authenticateOperatorToken,
  declaredPermission,
  enableOperatorTotp,
  endOperatorSession,
  finishOperatorMfa,
  finishOperatorOidc,
  LOCAL_ROOT,
  listOutbox,
  MAIL_STATUSES,
  type Mailer,
  type MailStatus,
  OIDC_REQUEST_TTL_MS,
  OPERATOR_SESSION_COOKIE,
  type OperatorPrincipal,
  oidcCookie,
  oidcCookieName,
  oidcView,
  operatorPasswordSignIn,
  PERMISSION_KEY,
  readCookie,
  readOidc,
  removeOidc,
  resetOperatorTotp,
  resolveOperatorSession,
  saveOidc,
  startOidcLogin,
  startOperatorTotp,
} from '../identity/index.ts';
import { clearCookie, setCookie } from '../shared/cookies.ts';
import { AppError } from '../shared/errors.ts';
import { assertOwnJson } from '../shared/own-json.ts';
import { iso } from '../shared/time.ts';
import { platformUrl, type Tenancy } from '../tenancy/index.ts';
import { lazyDocument, OPERATOR_SPEC } from './api-docs.ts';
import { parseJsonLenient, refuseUnparsed, toErrorResponse } from './errors.ts';
import type { Metrics } from './metrics.ts';
import { docsResponse } from './openapi.ts';
import {
  AuditVerifyQuery,
  DomainAdd,
  IdParams,
  IssueMonth,
  KeysRotate,
  MailListQuery,
  MailTest,
  MfaCode,
  OidcSettings as OidcSettingsInput,
  OperatorAuditQuery,
  OperatorCreate,
  OperatorRole,
  OperatorSignInBody,
  OwnerReset,
  PlanCreate,
  PlanParams,
  PlanUpdate,
  PlatformApiKeyCreate,
  PlatformCreate,
  PlatformDeleteQuery,
  PlatformListQuery,
  PlatformPlanSet,
  PlatformUpdate,
  Reason,
  ReturnToQuery,
  RevocationFetch,
  RevocationListBody,
  SlugHostParams,
  SlugIdParams,
  SlugKeyParams,
  SlugParams,
  TokenCreate,
  TokenListQuery,
  TrustedKeyAdd,
} from './operator.models.ts';
import { assetResponse, type WebBuild } from './web-assets.ts';
import { CONSOLE_PAGES, consoleFavicon, consoleShell } from './web-shell.ts';

/** What the operator routes need. `trusted` holds requests that came over the control socket. */
export interface OperatorRoutesDeps {
  app: App;
  /** The browser apps' build; null: the console page answers 503 until it is built. */
  web: WebBuild | null;
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
  /** The AI runtime, for the providers' status. */
  ai: { runtime: AiRuntime; meter: Meter };
  /** The mail queues' delivery; none: every message is reported undelivered. */
  mailer?: Mailer;
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
  const sessionCookie = (request: Request, token: string, expiresAt: number) =>
    setCookie(OPERATOR_SESSION_COOKIE, token, {
      path: '/',
      sameSite: 'Lax',
      maxAgeSec: Math.floor((expiresAt - d.app.clock.now()) / 1000),
      secure: originOf(request).startsWith('https:'),
    });
  const platformIdOf = (slug: string) => d.tenancy.get(slug).id;
  /**
   * The console's sign-in routes take JSON from the console's own pages only (as a platform's
   * sign-in does): a form another site posts (login CSRF: signing a browser in as the
   * attacker's operator) is 415, a cross-site fetch 403, before a password is hashed or counted.
   */
  const consoleOwnJsonOnly = ({ request }: { request: Request }): void =>
    assertOwnJson(
      request,
      originOf(request),
      "sign-in requests are accepted only from the console's own pages",
    );

  // Filled from the route table once the app is built (the `permission` beside each route).
  let permissions = new Map<string, string>();
  const document = lazyDocument(() => app.routes, OPERATOR_SPEC);

  const app = new Elysia({ name: 'operator.routes', normalize: false })
    .macro({
      /** The permission a route needs, kept in its metadata (`detail['x-permission']`). */
      permission: (need: OperatorPermission) => ({
        detail: { [PERMISSION_KEY]: need } as DocumentDecoration,
      }),
    })
    .onError(({ code, error }) => toErrorResponse(code, error, d.app.log))
    // JSON that does not parse is answered after the permission check (401/403 first).
    .onParse({ as: 'global' }, async ({ request, contentType, path }) =>
      // Stripe's signature is over the raw body: the webhook reads it as text.
      path === '/_operator/api/billing/stripe/webhook'
        ? await request.text()
        : parseJsonLenient(request, contentType),
    )
    // In the transform phase, so 401/403 answer before Elysia validates body, query and params.
    .derive({ as: 'global' }, ({ request, route, body }) => {
      d.routeOf.set(request, route);
      // Deny by default: a route that declares no permission cannot be reached.
      // HEAD is served by the GET route (Elysia), so it needs what GET needs.
      const method = request.method === 'HEAD' ? 'GET' : request.method;
      const need = permissions.get(`${method} ${route}`) as OperatorPermission | undefined;
      if (!need)
        throw new AppError('internal.route_without_permission', `route ${route} declares no permission`, 500);
      const principal = need === 'public' ? ANONYMOUS : principalOf(request, need);
      refuseUnparsed(body);
      // An empty JSON body reads as an empty object, so optional fields stay optional.
      return body === '' ? { principal, body: {} } : { principal };
    })
    // The console: one page for each of its screens, and its assets.
    .get('/favicon.ico', () => consoleFavicon(), {
      permission: 'public',
      detail: { summary: "The console's icon", tags: ['pages'] },
    })
    .get('/assets/:name', ({ params, request }) => assetResponse(d.web, params.name, request), {
      permission: 'public',
      detail: { summary: 'A file of the console (hashed name, precompressed, immutable)', tags: ['pages'] },
    })
    // The console's own single sign-on (same flow as a platform's, over the control plane).
    .get(
      '/sso/oidc/login',
      async ({ request, query }) => {
        // The sign-in's state travels sealed in its own cookie: a start writes nothing to
        // control.db; starts are limited per address, as on platforms (it bounds the CPU spent).
        const secure = originOf(request).startsWith('https:');
        const { url, cookie, drop } = await startOidcLogin(d.app, d.app.control, {
          origin: originOf(request),
          client: { scope: 'operator', ip: d.ipOf(request) },
          returnTo: query.return_to ?? null,
          cookies: request.headers.get('cookie'),
        });
        const headers = new Headers({ location: url.href, 'cache-control': 'no-store' });
        for (const name of drop) headers.append('set-cookie', oidcCookie(name, '', secure, 0));
        headers.append(
          'set-cookie',
          oidcCookie(cookie.name, cookie.value, secure, OIDC_REQUEST_TTL_MS / 1000),
        );
        return new Response(null, { status: 302, headers });
      },
      {
        permission: 'public',
        query: ReturnToQuery,
        detail: { summary: "Start the console's OIDC sign-in (302 to the IdP)", tags: ['sso'] },
      },
    )
    .get(
      '/sso/oidc/callback',
      async ({ request }) => {
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
      },
      {
        permission: 'public',
        detail: { summary: "Finish the console's OIDC sign-in (sets the session cookie)", tags: ['sso'] },
      },
    )
    .get(
      '/readyz',
      () => {
        const r = d.readiness();
        return Response.json(
          { status: r.ok ? 'ready' : 'not_ready', checks: r.checks },
          { status: r.ok ? 200 : 503 },
        );
      },
      { permission: 'public', detail: { summary: 'Whether the server is ready', tags: ['health'] } },
    )
    .get(
      '/metrics',
      async ({ request }) => {
        // Open on a loopback-only listener reached directly; through a proxy, on any other
        // address, or with metrics_token set, it needs the token.
        if (
          !d.trusted.has(request) &&
          !d.metrics.admits(request.headers.get('authorization'), d.proxied(request))
        ) {
          throw new AppError('auth.required', 'this needs Authorization: Bearer <metrics token>', 401);
        }
        return new Response(await d.metrics.render(), {
          headers: { 'content-type': d.metrics.contentType },
        });
      },
      {
        permission: 'public',
        detail: {
          summary: 'Prometheus metrics (the metrics token unless on loopback)',
          tags: ['health'],
          security: [{ metricsToken: [] }, {}],
        },
      },
    )
    // Federation: this instance's signed revocation list, for the instances that trust its key.
    .get('/federation/revocations', () => d.actions.revocationList(), {
      permission: 'public',
      detail: {
        summary: "This instance's revoked agent versions, signed with its federation key (public, read-only)",
        tags: ['federation'],
      },
    })
    .group('/_operator/api', (api) =>
      api
        // The operator API's description and its reference page (public, offline).
        .get('/openapi.json', ({ request }) => ({ ...document(), servers: [{ url: originOf(request) }] }), {
          permission: 'public',
          detail: { summary: 'This API, as an OpenAPI 3.1 document', tags: ['docs'] },
        })
        .get('/docs', () => docsResponse(document()), {
          permission: 'public',
          detail: { summary: "This API's reference page", tags: ['docs'] },
        })
        .get('/health/databases', async () => ({ databases: await d.actions.databaseHealth() }), {
          permission: 'operator:read',
          detail: {
            summary:
              "Each platform's database: file, size, schema version against this build's, whether it opens",
            tags: ['health'],
          },
        })
        .post(
          '/billing/stripe/webhook',
          async ({ body, request }) => {
            if (typeof body !== 'string')
              throw new AppError('billing.invalid', 'the body must be the raw event', 400);
            const e = await verifiedEvent(
              stripeAccount(d.app.config),
              body,
              request.headers.get('stripe-signature'),
            );
            const id = await platformOfEvent(d.app, e);
            const platform = id ? d.tenancy.list().find((p) => p.id === id) : undefined;
            // Not one of ours (or a platform since deleted): acknowledged, so Stripe stops sending it.
            if (!platform) return { received: true, applied: 'ignored' };
            const applied = await d.app.platformDbs.use(platform.id, (db) =>
              applyEvent(
                {
                  app: d.app,
                  platform: { id: platform.id, slug: platform.slug, name: platform.name },
                  db,
                  principal: null,
                  pendingMfa: null,
                  ip: null,
                  blueprint: () => d.tenancy.blueprintOf(platform.id),
                  origin: new URL(platformUrl(d.tenancy.settings(), platform.slug)).origin,
                },
                e,
              ),
            );
            return { received: true, applied };
          },
          {
            permission: 'public',
            detail: {
              summary:
                "Stripe's webhook for the operator's account (every platform's checkouts): Stripe-Signature verified, each event applied once",
              tags: ['billing'],
            },
          },
        )
        .get(
          '/billing/fees',
          async ({ query }) => {
            const currency =
              typeof query.currency === 'string' && /^[a-z]{3}$/.test(query.currency)
                ? query.currency
                : 'usd';
            const platforms = [];
            for (const p of d.tenancy.list().filter((x) => x.status !== 'archived')) {
              const r = await d.app.platformDbs.use(p.id, (db) => platformRevenue(db, currency));
              platforms.push({ slug: p.slug, name: p.name, ...r.marketplace });
            }
            return { currency, platforms };
          },
          {
            permission: 'operator:read',
            detail: {
              summary:
                "The operator's fee income per platform, with each platform's marketplace sales (from its ledger)",
              tags: ['billing'],
            },
          },
        )
        // The operator's plans for platforms (issue 13 item 1): data, enforced by billing.
        .get(
          '/plans',
          () => {
            const r = listPlans(d.app);
            const slugOf = new Map(d.tenancy.list().map((p) => [p.id, p.slug]));
            return {
              plans: r.plans,
              over_limit: r.over_limit.map(({ platform_id, ...o }) => ({
                platform: slugOf.get(platform_id) ?? platform_id,
                ...o,
              })),
            };
          },
          {
            permission: 'operator:read',
            detail: {
              summary:
                "The operator's plans for platforms, with how many platforms are on each, and the platforms over their plan's limit",
              tags: ['billing'],
            },
          },
        )
        .post(
          '/plans',
          ({ principal, body }) => Response.json(createPlan(d.app, principal.actor, body), { status: 201 }),
          {
            permission: 'operator:write',
            body: PlanCreate,
            detail: {
              summary: 'Make a plan (price, user limit, AI markup and its volume tiers, transaction fee)',
              tags: ['billing'],
            },
          },
        )
        .get('/plans/:id', ({ params }) => getPlan(d.app, params.id), {
          permission: 'operator:read',
          params: PlanParams,
          detail: { summary: 'Show a plan', tags: ['billing'] },
        })
        .patch(
          '/plans/:id',
          ({ principal, params, body }) => updatePlan(d.app, principal.actor, params.id, body),
          {
            permission: 'operator:write',
            params: PlanParams,
            body: PlanUpdate,
            detail: {
              summary:
                'Change a plan (the next sale and usage batch follow it; past purchases keep their terms)',
              tags: ['billing'],
            },
          },
        )
        .post(
          '/plans/:id/archive',
          ({ principal, params }) => archivePlan(d.app, principal.actor, params.id),
          {
            permission: 'operator:write',
            params: PlanParams,
            detail: {
              summary: 'Archive a plan (its platforms stay on it; no new ones go on it)',
              tags: ['billing'],
            },
          },
        )
        .delete(
          '/plans/:id',
          ({ principal, params }) => {
            deletePlan(d.app, principal.actor, params.id);
            return new Response(null, { status: 204 });
          },
          {
            permission: 'operator:write',
            params: PlanParams,
            detail: {
              summary: 'Delete a plan no platform is on (409 billing.plan_in_use otherwise: archive it)',
              tags: ['billing'],
            },
          },
        )
        .get(
          '/platforms/:slug/plan',
          async ({ params }) => {
            const p = d.tenancy.get(params.slug);
            if (p.status === 'archived')
              throw new AppError('platform.archived', `platform '${params.slug}' is archived`, 409);
            return { plan_status: await planStatus(d.app, p.id) };
          },
          {
            permission: 'operator:read',
            params: SlugParams,
            detail: {
              summary: "A platform's plan and its standing: users against the limit, over since, held or not",
              tags: ['billing'],
            },
          },
        )
        .put(
          '/platforms/:slug/plan',
          async ({ principal, params, body }) => {
            const p = d.tenancy.get(params.slug);
            return {
              plan_status: await setPlatformPlan(
                d.app,
                principal.actor,
                { id: p.id, slug: p.slug },
                body,
                d.tenancy.blueprintOf(p.id).features,
              ),
            };
          },
          {
            permission: 'operator:write',
            params: SlugParams,
            body: PlatformPlanSet,
            detail: {
              summary: 'Put a platform on a plan (audited; a hold lifts at once on a plan it fits)',
              tags: ['billing'],
            },
          },
        )
        .get(
          '/billing/fees/monthly',
          async ({ query }) => {
            const currency =
              typeof query.currency === 'string' && /^[a-z]{3}$/.test(query.currency)
                ? query.currency
                : 'usd';
            const months = 12;
            const now = d.app.clock.now();
            const platforms = [];
            for (const p of d.tenancy.list().filter((x) => x.status !== 'archived')) {
              const r = await d.app.platformDbs.use(p.id, (db) => revenueSeries(db, currency, months, now));
              platforms.push({
                slug: p.slug,
                name: p.name,
                months: r.months.map((m) => ({ month: m.month, operator_fees_micro: m.operator_fees_micro })),
              });
            }
            return { currency, platforms };
          },
          {
            permission: 'operator:read',
            detail: {
              summary:
                "The operator's fee income per platform and UTC month, the last 12 months (from each platform's ledger)",
              tags: ['billing'],
            },
          },
        )
        .post(
          '/billing/invoices/issue',
          async ({ principal, body }) => {
            const platforms = [];
            for (const p of d.tenancy.list().filter((x) => x.status !== 'archived')) {
              const r = await d.app.platformDbs.use(p.id, (db) =>
                issueMonthlyInvoices(
                  {
                    app: d.app,
                    db,
                    platform: { id: p.id, slug: p.slug, name: p.name },
                    blueprint: () => d.tenancy.blueprintOf(p.id),
                  },
                  body.month,
                  { by: principal.actor },
                ),
              );
              platforms.push({ slug: p.slug, issued: r.issued.length, existing: r.existing.length });
            }
            return { month: body.month, platforms };
          },
          {
            permission: 'operator:write',
            body: IssueMonth,
            detail: {
              summary:
                "Issue a month's invoices on every platform (users' invoices and the operator's bills; again: nothing new): what a monthly cron calls",
              tags: ['billing'],
            },
          },
        )
        .get('/providers', () => ({ providers: d.ai.runtime.statuses() }), {
          permission: 'operator:read',
          detail: {
            summary: "The AI providers: each one's health, circuit state, last error, and why it is down",
            tags: ['ai'],
          },
        })
        .get(
          '/platforms',
          async ({ query }) => {
            if (query.include === undefined || query.include === '')
              return { platforms: d.actions.listPlatforms() };
            if (query.include !== 'stats')
              throw new AppError('request.invalid', 'include must be stats', 400, [
                { path: '/include', reason: 'must be stats' },
              ]);
            // Calls metered a moment ago count: the meter's batch is written first.
            await d.ai.meter.flush();
            return { platforms: await d.actions.listPlatformsWithStats() };
          },
          {
            permission: 'operator:read',
            query: PlatformListQuery,
            detail: {
              summary:
                'List the platforms (include=stats: users, and AI calls, tokens and cost over 30 days)',
              tags: ['platforms'],
            },
          },
        )
        .post(
          '/platforms',
          async ({ principal, body }) => {
            const r = await d.actions.createPlatform(principal, body);
            return Response.json(
              { slug: r.slug, url: r.url, admin: r.admin, platform: r.platform, warnings: r.warnings },
              {
                status: 201,
                headers: {
                  'server-timing': `argon2;dur=${r.timings.argon2_ms.toFixed(2)}, create;dur=${r.timings.total_ms.toFixed(2)}`,
                },
              },
            );
          },
          {
            permission: 'operator:write',
            body: PlatformCreate,
            detail: {
              summary: 'Create a platform (its database, blueprint and first owner)',
              tags: ['platforms'],
            },
          },
        )
        .get('/platforms/:slug', ({ params }) => d.actions.showPlatform(params.slug), {
          permission: 'operator:read',
          params: SlugParams,
          detail: { summary: 'Show a platform', tags: ['platforms'] },
        })
        .patch(
          '/platforms/:slug',
          ({ principal, params, body }) => d.actions.updatePlatform(principal, params.slug, body),
          {
            permission: 'operator:write',
            params: SlugParams,
            body: PlatformUpdate,
            detail: {
              summary: "Change a platform's blueprint (a partial blueprint merged over the current one)",
              tags: ['platforms'],
            },
          },
        )
        .delete(
          '/platforms/:slug',
          ({ principal, params, query }) =>
            d.actions.deletePlatform(principal, params.slug, {
              confirm: query.confirm,
              slug_grace_days:
                query.slug_grace_days === undefined ? undefined : Number(query.slug_grace_days),
            }),
          {
            permission: 'operator:write',
            params: SlugParams,
            query: PlatformDeleteQuery,
            detail: {
              summary:
                'Delete an archived platform (?confirm=<slug>): its file removed, its slug reserved for a grace period',
              tags: ['platforms'],
            },
          },
        )
        .post(
          '/platforms/:slug/suspend',
          ({ principal, params, body }) => d.actions.suspend(principal, params.slug, body),
          {
            permission: 'operator:write',
            params: SlugParams,
            body: Reason,
            detail: { summary: 'Suspend a platform (its host answers 503)', tags: ['platforms'] },
          },
        )
        .post(
          '/platforms/:slug/resume',
          ({ principal, params }) => d.actions.resume(principal, params.slug),
          {
            permission: 'operator:write',
            params: SlugParams,
            detail: { summary: 'Resume a suspended platform', tags: ['platforms'] },
          },
        )
        .post(
          '/platforms/:slug/archive',
          ({ principal, params, body }) => d.actions.archive(principal, params.slug, body),
          {
            permission: 'operator:write',
            params: SlugParams,
            body: Reason,
            detail: {
              summary: 'Archive a platform (its database closed, kept on disk)',
              tags: ['platforms'],
            },
          },
        )
        .post(
          '/platforms/:slug/unarchive',
          ({ principal, params }) => d.actions.unarchive(principal, params.slug),
          {
            permission: 'operator:write',
            params: SlugParams,
            detail: { summary: 'Bring an archived platform back', tags: ['platforms'] },
          },
        )
        .post(
          '/platforms/:slug/domains',
          ({ principal, params, body }) => d.actions.addDomain(principal, params.slug, body),
          {
            permission: 'operator:write',
            params: SlugParams,
            body: DomainAdd,
            detail: { summary: 'Map a custom domain to a platform', tags: ['platforms'] },
          },
        )
        .delete(
          '/platforms/:slug/domains/:host',
          ({ principal, params }) => d.actions.removeDomain(principal, params.slug, params.host),
          {
            permission: 'operator:write',
            params: SlugHostParams,
            detail: { summary: 'Unmap a custom domain', tags: ['platforms'] },
          },
        )
        .post(
          '/platforms/:slug/api-keys',
          async ({ principal, params, body }) =>
            Response.json(await d.actions.createApiKey(principal, params.slug, body), {
              status: 201,
              headers: { 'cache-control': 'no-store' },
            }),
          {
            permission: 'operator:write',
            params: SlugParams,
            body: PlatformApiKeyCreate,
            detail: { summary: 'Make an API key on a platform (its secret shown once)', tags: ['platforms'] },
          },
        )
        .get('/platforms/:slug/api-keys', ({ params }) => d.actions.listApiKeys(params.slug), {
          permission: 'operator:read',
          params: SlugParams,
          detail: { summary: "List a platform's API keys (no secrets)", tags: ['platforms'] },
        })
        .delete(
          '/platforms/:slug/api-keys/:id',
          ({ principal, params }) => d.actions.revokeApiKey(principal, params.slug, params.id),
          {
            permission: 'operator:write',
            params: SlugIdParams,
            detail: {
              summary: 'Revoke a platform API key (refused from the next request)',
              tags: ['platforms'],
            },
          },
        )
        // Federation (issue 12 item 8): the instance key, each platform's trusted keys, and
        // the revocation lists of trusted peers.
        .get('/federation/key', () => d.actions.federationKey(), {
          permission: 'operator:read',
          detail: {
            summary: "This instance's federation key (Ed25519): the id and public key other instances pin",
            tags: ['federation'],
          },
        })
        .post(
          '/federation/revocations',
          ({ principal, body }) => d.actions.acceptRevocations(principal, body),
          {
            permission: 'operator:write',
            body: RevocationListBody,
            detail: {
              summary:
                "Take in a trusted instance's signed revocation list: the versions it revoked stop working here",
              tags: ['federation'],
            },
          },
        )
        .post(
          '/federation/revocations/fetch',
          ({ principal, body }) => d.actions.fetchRevocations(principal, body),
          {
            permission: 'operator:write',
            body: RevocationFetch,
            detail: {
              summary:
                "Fetch a trusted instance's signed revocation list from its URL (through the outbound guard) and take it in",
              tags: ['federation'],
            },
          },
        )
        .get('/platforms/:slug/trusted-keys', ({ params }) => d.actions.trustedKeys(params.slug), {
          permission: 'operator:read',
          params: SlugParams,
          detail: {
            summary: "The other instances' keys a platform accepts agent packages from",
            tags: ['federation'],
          },
        })
        .post(
          '/platforms/:slug/trusted-keys',
          ({ principal, params, body }) =>
            Response.json(d.actions.trustKey(principal, params.slug, body), { status: 201 }),
          {
            permission: 'operator:write',
            params: SlugParams,
            body: TrustedKeyAdd,
            detail: {
              summary: "Pin another instance's federation key for a platform (audited)",
              tags: ['federation'],
            },
          },
        )
        .delete(
          '/platforms/:slug/trusted-keys/:key',
          ({ principal, params }) =>
            d.actions.untrustKey(principal, params.slug, decodeURIComponent(params.key)),
          {
            permission: 'operator:write',
            params: SlugKeyParams,
            detail: { summary: 'Stop trusting a key for a platform (audited)', tags: ['federation'] },
          },
        )
        .post(
          '/platforms/:slug/owner-reset',
          async ({ principal, params, body }) =>
            Response.json(await d.actions.ownerReset(principal, params.slug, body), {
              headers: { 'cache-control': 'no-store' },
            }),
          {
            permission: 'operator:write',
            params: SlugParams,
            body: OwnerReset,
            detail: {
              summary: "A one-time link to reset a platform owner's password (shown once)",
              tags: ['platforms'],
            },
          },
        )
        .get(
          '/me',
          ({ principal }) => ({
            actor: principal.actor,
            operator_id: principal.operatorId,
            role: principal.role,
            csrf_token: (principal as { csrfToken?: string }).csrfToken ?? null,
          }),
          { permission: 'operator:read', detail: { summary: 'Who is asking', tags: ['operators'] } },
        )
        .post(
          '/logout',
          ({ request }) => {
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
          },
          {
            permission: 'operator:read',
            detail: { summary: 'End the console session', tags: ['operators'] },
          },
        )
        .post(
          '/sign-in',
          async ({ request, body }) => {
            const r = await operatorPasswordSignIn(d.app, body, { ip: d.ipOf(request) });
            return Response.json(
              {
                operator: r.operator,
                mfa_required: r.mfaPending,
                csrf_token: r.csrfToken,
                expires_at: iso(r.expiresAt),
              },
              {
                headers: {
                  'set-cookie': sessionCookie(request, r.token, r.expiresAt),
                  'cache-control': 'no-store',
                },
              },
            );
          },
          {
            // Anyone may try; the limits of a platform sign-in hold (429 when locked).
            permission: 'public',
            transform: consoleOwnJsonOnly,
            body: OperatorSignInBody,
            detail: {
              summary: 'Sign in to the console with email and password (sets the session cookie)',
              tags: ['operators'],
            },
          },
        )
        .post(
          '/sign-in/mfa',
          ({ request, body }) => {
            const cookie = readCookie(request.headers.get('cookie'), OPERATOR_SESSION_COOKIE);
            const operator = finishOperatorMfa(d.app, cookie, body, { ip: d.ipOf(request) });
            return Response.json(
              { operator, mfa_required: false },
              { headers: { 'cache-control': 'no-store' } },
            );
          },
          {
            // The pending session's cookie is the credential (it does nothing else until this).
            permission: 'public',
            transform: consoleOwnJsonOnly,
            body: MfaCode,
            detail: { summary: "A console sign-in's second step: the TOTP code", tags: ['operators'] },
          },
        )
        .post(
          '/me/mfa/totp/setup',
          ({ principal }) =>
            Response.json(startOperatorTotp(d.app, principal, d.tenancy.settings().base_domain), {
              headers: { 'cache-control': 'no-store' },
            }),
          {
            permission: 'operator:read',
            detail: { summary: 'Start setting up an authenticator (TOTP) for yourself', tags: ['operators'] },
          },
        )
        .post(
          '/me/mfa/totp/enable',
          ({ principal, body }) => ({ operator: enableOperatorTotp(d.app, principal, body) }),
          {
            permission: 'operator:read',
            body: MfaCode,
            detail: {
              summary: 'Confirm your authenticator with a code (TOTP on from now on)',
              tags: ['operators'],
            },
          },
        )
        .delete(
          '/operators/:id/mfa',
          ({ principal, params }) => ({ operator: resetOperatorTotp(d.app, principal, params.id) }),
          {
            permission: 'operator:write',
            params: IdParams,
            detail: {
              summary: "Remove an operator's authenticator (their sessions end)",
              tags: ['operators'],
            },
          },
        )
        .get(
          '/mail',
          async ({ query }) => {
            const statuses = mailStatuses(query.status);
            const platforms = (query.platform ? [d.tenancy.get(query.platform)] : d.tenancy.list()).filter(
              (p) => p.status !== 'archived',
            );
            const messages: unknown[] = [];
            for (const p of platforms) {
              const rows = await d.app.platformDbs.use(p.id, (db) => listOutbox(db, statuses));
              for (const m of rows)
                messages.push({
                  platform: p.slug,
                  id: m.id,
                  to: m.to_email,
                  template: m.template,
                  subject: m.subject,
                  status: m.status,
                  attempts: m.attempts,
                  last_error: m.last_error,
                  created_at: iso(m.created_at),
                  last_attempt_at: m.last_attempt_at === null ? null : iso(m.last_attempt_at),
                  next_attempt_at: m.status === 'queued' ? iso(m.next_attempt_at) : null,
                  sent_at: m.sent_at === null ? null : iso(m.sent_at),
                });
            }
            return {
              delivery: d.mailer?.configured
                ? { smtp: true, problem: null }
                : { smtp: false, problem: d.mailer?.problem ?? 'no mailer runs in this process' },
              messages,
            };
          },
          {
            permission: 'operator:read',
            query: MailListQuery,
            detail: {
              summary:
                "The platforms' mail by delivery state (default: everything not delivered; never bodies)",
              tags: ['mail'],
            },
          },
        )
        .post(
          '/mail/test',
          async ({ principal, body }) => {
            const to = body.to.trim();
            if (!/^[^\s@<>"]+@[^\s@<>"]+$/.test(to) || to.length > 254)
              throw new AppError('mail.invalid', 'to must be an email address', 400, [
                { path: '/to', reason: 'must be an email address' },
              ]);
            if (!d.mailer) throw new AppError('mail.not_configured', 'no mailer runs in this process', 409);
            const platformId = body.platform ? platformIdOf(body.platform) : null;
            const r = await d.mailer.sendTest(to, platformId);
            tx(d.app.control, () =>
              d.app.audit.append(d.app.control, {
                actor: principal.actor,
                action: 'mail.test_sent',
                target: `email:${to}`,
                details: { platform: body.platform ?? null, message_id: r.message_id },
              }),
            );
            return r;
          },
          {
            permission: 'operator:write',
            body: MailTest,
            detail: {
              summary: "Send a test message now through SMTP (502 with the server's answer when refused)",
              tags: ['mail'],
            },
          },
        )
        .get('/operators', () => ({ operators: d.actions.listOperators() }), {
          permission: 'operator:read',
          detail: { summary: 'List the operators', tags: ['operators'] },
        })
        .post(
          '/operators',
          ({ principal, body }) =>
            Response.json({ operator: d.actions.createOperator(principal, body) }, { status: 201 }),
          {
            permission: 'operator:write',
            body: OperatorCreate,
            detail: { summary: 'Invite an operator (they sign in through SSO)', tags: ['operators'] },
          },
        )
        .get(
          '/sso/oidc',
          ({ request }) => {
            const s = readOidc(d.app.control);
            if (!s)
              throw new AppError(
                'sso.oidc_not_configured',
                'the console has no OIDC single sign-on set up',
                404,
              );
            return { oidc: oidcView(s, originOf(request)) };
          },
          { permission: 'operator:read', detail: { summary: "The console's OIDC settings", tags: ['sso'] } },
        )
        .put(
          '/sso/oidc',
          async ({ request, principal, body }) => {
            const s = await saveOidc(d.app, d.app.control, body, { actor: principal.actor, role: null });
            return { oidc: oidcView(s, originOf(request)) };
          },
          {
            permission: 'operator:write',
            body: OidcSettingsInput,
            detail: { summary: "Set the console's OIDC single sign-on", tags: ['sso'] },
          },
        )
        .delete(
          '/sso/oidc',
          ({ principal }) => {
            if (!removeOidc(d.app, d.app.control, principal.actor)) {
              throw new AppError(
                'sso.oidc_not_configured',
                'the console has no OIDC single sign-on set up',
                404,
              );
            }
            return new Response(null, { status: 204 });
          },
          { permission: 'operator:write', detail: { summary: "Remove the console's OIDC", tags: ['sso'] } },
        )
        .post(
          '/operators/:id/disable',
          ({ principal, params }) => d.actions.disableOperator(principal, params.id),
          {
            permission: 'operator:write',
            params: IdParams,
            detail: { summary: 'Disable an operator (their tokens stop working)', tags: ['operators'] },
          },
        )
        .post(
          '/operators/:id/enable',
          ({ principal, params }) => d.actions.enableOperator(principal, params.id),
          {
            permission: 'operator:write',
            params: IdParams,
            detail: { summary: 'Enable an operator again', tags: ['operators'] },
          },
        )
        .patch(
          '/operators/:id',
          ({ principal, params, body }) => d.actions.setOperatorRole(principal, params.id, body),
          {
            permission: 'operator:write',
            params: IdParams,
            body: OperatorRole,
            detail: { summary: "Change an operator's role", tags: ['operators'] },
          },
        )
        .delete('/operators/:id', ({ principal, params }) => d.actions.removeOperator(principal, params.id), {
          permission: 'operator:write',
          params: IdParams,
          detail: { summary: 'Remove an operator', tags: ['operators'] },
        })
        .post(
          '/tokens',
          ({ principal, body }) =>
            Response.json(d.actions.createToken(principal, body), {
              status: 201,
              headers: { 'cache-control': 'no-store' },
            }),
          {
            permission: 'operator:write',
            body: TokenCreate,
            detail: { summary: 'Make an operator token (its secret shown once)', tags: ['tokens'] },
          },
        )
        .get(
          '/tokens',
          ({ principal, query }) => d.actions.listTokens(principal, query.operator || undefined),
          {
            // A viewer sees only their own tokens.
            permission: 'operator:read',
            query: TokenListQuery,
            detail: { summary: 'List operator tokens', tags: ['tokens'] },
          },
        )
        .delete('/tokens/:id', ({ principal, params }) => d.actions.revokeToken(principal, params.id), {
          // Anyone may revoke their own; admins any.
          permission: 'operator:read',
          params: IdParams,
          detail: { summary: 'Revoke an operator token', tags: ['tokens'] },
        })
        .get(
          '/audit',
          ({ query }) => d.actions.listAudit(query.platform || undefined, parseAuditQuery(query)),
          {
            permission: 'operator:read',
            query: OperatorAuditQuery,
            detail: {
              summary:
                "The control plane's audit trail, or a platform's (platform=<slug>): filters by action, actor, target and time",
              tags: ['audit'],
            },
          },
        )
        .get('/audit/verify', ({ query }) => d.actions.verifyAudit(query.platform || undefined), {
          permission: 'operator:read',
          query: AuditVerifyQuery,
          detail: { summary: "Verify the control plane's and platforms' audit chains", tags: ['audit'] },
        })
        .post(
          '/keys/rotate',
          async ({ principal, body }) => {
            const r = body.master
              ? rotateMasterKey(d.app, principal)
              : await rotateDataKey(d.app, d.tenancy, principal);
            return Response.json(r, { headers: { 'cache-control': 'no-store' } });
          },
          {
            permission: 'local:root',
            body: KeysRotate,
            detail: {
              summary: 'Rotate the data key or the master key (control socket only)',
              tags: ['keys'],
            },
          },
        )
        .post(
          '/keys/export',
          ({ principal }) =>
            Response.json(exportMasterKey(d.app, principal), { headers: { 'cache-control': 'no-store' } }),
          {
            permission: 'local:root',
            detail: { summary: 'Export the master key (control socket only)', tags: ['keys'] },
          },
        ),
    );
  // The console's screens are one page (the client routes among them).
  for (const page of CONSOLE_PAGES)
    app.get(page, () => consoleShell(d.web, { sso: readOidc(d.app.control) !== null }), {
      permission: 'public',
      detail: {
        summary: page === '/' ? 'The operator console' : `The operator console (${page})`,
        tags: ['pages'],
      },
    });
  permissions = routePermissionsOf(app);
  return app;
}

/** The states `?status=` asks for: a comma list, or `undelivered` (the default: all but sent). */
function mailStatuses(q: string | undefined): MailStatus[] {
  if (!q || q === 'undelivered') return MAIL_STATUSES.filter((s) => s !== 'sent');
  const out: MailStatus[] = [];
  for (const part of q.split(',').map((x) => x.trim())) {
    if (part === 'undelivered') out.push(...MAIL_STATUSES.filter((s) => s !== 'sent'));
    else if ((MAIL_STATUSES as readonly string[]).includes(part)) out.push(part as MailStatus);
    else
      throw new AppError(
        'mail.status_invalid',
        `status must be a comma list of: ${MAIL_STATUSES.join(', ')}, undelivered`,
        400,
        [{ path: '/status', reason: `unknown state '${part}'` }],
      );
  }
  return [...new Set(out)];
}

/** The principal of public routes: it may do nothing that needs a permission. */
const ANONYMOUS: OperatorPrincipal = { actor: 'anonymous', operatorId: null, role: 'operator_viewer' };

/** Every route of an app and the permission its metadata declares (`detail['x-permission']`). */
export function routePermissionsOf(app: {
  routes: { method: string; path: string; hooks: unknown }[];
}): Map<string, string> {
  const out = new Map<string, string>();
  for (const r of app.routes) {
    const need = declaredPermission(r.hooks);
    if (need) out.set(`${r.method} ${r.path}`, need);
  }
  return out;
}
