import type { Database } from 'bun:sqlite';
import type { AiRuntime, Meter } from '../ai/index.ts';
import type { App } from '../app/index.ts';
import { CONTROL_MIGRATIONS, isCurrent, type Lease, ping } from '../db/index.ts';
import type { OperatorActions } from '../flows/index.ts';
import {
  authenticate,
  authenticateOperatorToken,
  type Mailer,
  OPERATOR_SESSION_COOKIE,
  readCookie,
  resolveOperatorSession,
} from '../identity/index.ts';
import { clientAddress, trustedRanges, viaProxy } from '../shared/client-address.ts';
import { AppError } from '../shared/errors.ts';
import type { PlatformHead, Tenancy } from '../tenancy/index.ts';
import {
  bodyLimitFor,
  DEFAULT_BODY_LIMIT,
  errorResponse,
  largeBodyNeedsCaller,
  toErrorResponse,
} from './errors.ts';
import type { Metrics } from './metrics.ts';
import { operatorRoutes } from './operator.routes.ts';
import { htmlResponse, plainPage, platformStatusPage } from './pages.ts';
import { platformRoutes, wantsHtml } from './platform.routes.ts';
import type { WebBuild } from './web-assets.ts';

/** The two ways in: the public HTTP listener and the owner-only control socket. */
export interface HttpHandlers {
  /** Public listener: routes by Host to the operator app or one platform's app. */
  fetch(request: Request, server?: { requestIP(r: Request): { address: string } | null }): Promise<Response>;
  /** Control socket: the operator API, acting as the local root (`cli`). */
  socketFetch(request: Request): Promise<Response>;
  /** /readyz's checks. */
  readiness(): { ok: boolean; checks: Record<string, string> };
}

/**
 * Builds the request handlers. Host routing happens here, before any Elysia app runs:
 * `<slug>.<base>` or a mapped custom domain → that platform's app; the bare base domain or an
 * IP → the operator app; anything else → 404. A request only ever holds its own platform.
 */
export function createHttpHandlers(d: {
  app: App;
  tenancy: Tenancy;
  actions: OperatorActions;
  metrics: Metrics;
  ai: { runtime: AiRuntime; meter: Meter };
  /** The mail queues' delivery (the operator's mail routes); none: mail is reported undelivered. */
  mailer?: Mailer;
  /** The browser apps' build (web/dist or embedded); none: their pages answer 503. */
  web?: WebBuild | null;
}): HttpHandlers {
  const { app, tenancy, metrics } = d;
  const trusted = new WeakSet<Request>();
  const routeOf = new WeakMap<Request, string>();
  const platformOf = new WeakMap<Request, PlatformHead>();
  const hostOf = new WeakMap<Request, string>();
  const dbOf = new WeakMap<Request, () => Database>();
  // The one TCP server (the control socket has none), kept from its first request: a WeakMap
  // entry per request for it measured 10–20 µs of the hot path.
  let tcp: { requestIP(r: Request): { address: string } | null } | null = null;
  // A request whose chunked body was read ahead (to cap it) is a copy; its socket is the original's.
  const originalOf = new WeakMap<Request, Request>();
  const copyOf = new WeakMap<Request, Request>();
  // The client's address: the socket peer's, or, from a trusted proxy, its X-Forwarded-For.
  const proxies = trustedRanges(app.config.trusted_proxies ?? []);
  const peerOf = (request: Request) => tcp?.requestIP(originalOf.get(request) ?? request)?.address ?? null;
  const ipOf = (request: Request) => {
    const peer = peerOf(request);
    return proxies.length ? clientAddress(peer, request.headers.get('x-forwarded-for'), proxies) : peer;
  };
  const proxied = (request: Request) => viaProxy(peerOf(request), request.headers, proxies);

  const readiness = () => {
    const checks: Record<string, string> = {};
    try {
      ping(app.control);
      checks.control_db = 'ok';
      checks.control_schema = isCurrent(app.control, CONTROL_MIGRATIONS) ? 'ok' : 'behind';
    } catch (e) {
      checks.control_db = `error: ${(e as Error).message}`;
    }
    return { ok: Object.values(checks).every((v) => v === 'ok'), checks };
  };

  const operator = operatorRoutes({ ...d, web: d.web ?? null, trusted, routeOf, ipOf, proxied, readiness });
  const platform = platformRoutes({
    app,
    tenancy,
    platformOf,
    hostOf,
    dbOf,
    ipOf,
    routeOf,
    ai: d.ai,
    web: d.web ?? null,
  });

  /**
   * Whether a request to an active platform carries credentials valid on it (a session, an API
   * key, a SCIM token): read against that platform's database, leased for the check only.
   */
  const callerIsKnown = (request: Request, platformId: string): boolean => {
    if (!request.headers.has('authorization') && !request.headers.has('cookie')) return false;
    const lease = app.platformDbs.acquire(platformId);
    try {
      const a = authenticate(request, lease.db, platformId, app.clock.now(), false, { rateLimit: false });
      return a.principal !== null;
    } catch {
      return false;
    } finally {
      lease.release();
    }
  };

  /** Whether a request to the operator host carries a valid operator token or console session. */
  const operatorIsKnown = (request: Request): boolean => {
    const auth = request.headers.get('authorization');
    if (auth) {
      const m = /^Bearer\s+(\S+)$/i.exec(auth);
      return m ? authenticateOperatorToken(app, m[1]!) !== null : false;
    }
    const cookie = readCookie(request.headers.get('cookie'), OPERATOR_SESSION_COOKIE);
    return cookie ? resolveOperatorSession(app, cookie) !== null : false;
  };

  const route = async (incoming: Request): Promise<{ kind: string; res: Response }> => {
    // Before anything else: a Host that is not `name[:digits]` (userinfo, `@`, junk after the
    // colon) is refused, and so is a body larger than its route takes, unread.
    const target = tenancy.resolveHost(incoming.headers.get('host'));
    if (target.kind === 'invalid') {
      return {
        kind: 'unknown',
        res: errorResponse(
          new AppError(
            'request.bad_host',
            'the Host header must be a host name or address with an optional port',
            400,
          ),
          { connection: 'close' },
        ),
      };
    }
    const path = pathOf(incoming.url);
    const admitted = await admitBody(incoming, bodyLimitFor(path), largeBodyNeedsCaller(path), () =>
      target.kind === 'platform' && target.platform.status === 'active'
        ? callerIsKnown(incoming, target.platform.id)
          ? 'known'
          : 'anonymous'
        : target.kind === 'operator'
          ? operatorIsKnown(incoming)
            ? 'known'
            : 'anonymous'
          : // An unknown host, or a platform that is archived or suspended: no route takes it.
            'nobody',
    );
    if (admitted instanceof Response)
      return { kind: target.kind === 'operator' ? 'operator' : 'platform', res: admitted };
    const request = admitted;
    if (request !== incoming) {
      originalOf.set(request, incoming);
      copyOf.set(incoming, request);
    }
    if (path === '/healthz') return { kind: 'any', res: Response.json({ status: 'ok' }) };
    if (target.kind === 'operator') return { kind: 'operator', res: await operator.handle(request) };
    if (target.kind === 'unknown') {
      return {
        kind: 'unknown',
        res: wantsHtml(request)
          ? htmlResponse(plainPage('Not found', 'There is no platform at this address.'), 404)
          : errorResponse(new AppError('host.unknown', `no platform is served at ${target.host}`, 404)),
      };
    }
    const p = target.platform;
    if (p.status === 'archived') {
      return {
        kind: 'platform',
        res: wantsHtml(request)
          ? htmlResponse(plainPage('Gone', 'This platform has been archived.'), 410)
          : errorResponse(new AppError('platform.archived', 'this platform has been archived', 410)),
      };
    }
    if (p.status === 'suspended') {
      const headers = { 'retry-after': '3600' };
      if (!wantsHtml(request)) {
        return {
          kind: 'platform',
          res: errorResponse(new AppError('platform.suspended', 'this platform is suspended', 503), headers),
        };
      }
      const bp = tenancy.blueprintOf(p.id);
      const page = platformStatusPage(
        bp,
        'Temporarily unavailable',
        `${bp.identity.name} is suspended for now. Please try again later or contact its administrator.`,
      );
      return { kind: 'platform', res: htmlResponse(page, 503, headers) };
    }
    platformOf.set(request, p);
    hostOf.set(request, target.host);
    // The platform's database is leased for this request only, and only this platform's, on
    // first use: a public page with no credentials never opens it.
    let lease: Lease | null = null;
    dbOf.set(request, () => {
      lease ??= app.platformDbs.acquire(p.id);
      return lease.db;
    });
    try {
      return { kind: 'platform', res: await platform.handle(request) };
    } finally {
      // NB! Responses here are complete bodies; a streaming route (AI) must hold the lease
      // until its stream ends.
      (lease as Lease | null)?.release();
    }
  };

  return {
    async fetch(request, server) {
      const t0 = performance.now();
      if (server && tcp !== server) tcp = server;
      let kind = 'unknown';
      let res: Response;
      try {
        ({ kind, res } = await route(request));
      } catch (e) {
        res = toErrorResponse('UNKNOWN', e, app.log);
      }
      const r =
        routeOf.get(copyOf.get(request) ?? request) ??
        (pathOf(request.url) === '/healthz' ? '/healthz' : 'unmatched');
      // Counted once the answer is on its way (prom-client's label hashing is ~5 µs a call).
      setImmediate(metrics.observe, kind, r, res.status, (performance.now() - t0) / 1000);
      return res;
    },
    async socketFetch(request) {
      trusted.add(request);
      try {
        return await operator.handle(request);
      } catch (e) {
        return toErrorResponse('UNKNOWN', e, app.log);
      }
    },
    readiness,
  };
}

/**
 * A request whose body fits `limit` bytes, or the 413 answer. A declared Content-Length over the
 * limit is refused before a byte of the body is read; a chunked body is read up to the limit
 * (then refused) and handed on as a copy. Requests without a body pass through untouched.
 * NB! Past DEFAULT_BODY_LIMIT, a body is read only for a known caller (`caller`: valid
 * credentials, checked once and only then) unless `needsCaller` is false (the SAML ACS); anyone
 * else gets 401 unread (413 where no platform would take the request at all), so anonymous
 * clients cannot make the server hold the large bodies of AI and SCIM routes.
 */
async function admitBody(
  request: Request,
  routeLimit: number,
  needsCaller: boolean,
  caller: () => 'known' | 'anonymous' | 'nobody',
): Promise<Request | Response> {
  let limit = routeLimit;
  let anonymous = false;
  const tooLarge = () =>
    anonymous
      ? errorResponse(
          new AppError(
            'auth.required',
            `sign in or send an API key to send a body over ${limit} bytes on this route`,
            401,
          ),
          { connection: 'close' },
        )
      : errorResponse(
          new AppError(
            'request.too_large',
            `the request body must be at most ${limit} bytes on this route`,
            413,
          ),
          { connection: 'close' },
        );
  const declared = request.headers.get('content-length');
  const mayBeLarge = declared === null ? Boolean(request.body) : Number(declared) > DEFAULT_BODY_LIMIT;
  if (routeLimit > DEFAULT_BODY_LIMIT && mayBeLarge) {
    const who = caller();
    // Anonymous callers keep the route's cap only where they belong (the SAML ACS).
    if (who === 'nobody' || (who === 'anonymous' && needsCaller)) {
      limit = DEFAULT_BODY_LIMIT;
      anonymous = who === 'anonymous';
    }
  }
  if (declared !== null) {
    const n = Number(declared);
    return Number.isSafeInteger(n) && n >= 0 && n <= limit ? request : tooLarge();
  }
  if (!request.body || request.method === 'GET' || request.method === 'HEAD') return request;
  const reader = request.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > limit) {
      await reader.cancel().catch(() => {});
      return tooLarge();
    }
    chunks.push(value);
  }
  return new Request(request.url, {
    method: request.method,
    headers: request.headers,
    body: Buffer.concat(chunks),
    signal: request.signal,
  });
}

/** The path of a URL without building a URL object (hot path). */
function pathOf(url: string): string {
  const start = url.indexOf('/', url.indexOf('//') + 2);
  if (start < 0) return '/';
  const q = url.indexOf('?', start);
  return q < 0 ? url.slice(start) : url.slice(start, q);
}
