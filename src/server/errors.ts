import type { ValidationError } from 'elysia';
import type { Logger } from '../app/index.ts';
import { AppError, isAppError } from '../shared/errors.ts';
import { invalidFieldsMessage, validationDetails } from '../shared/validation.ts';

const WHAT: Record<string, string> = {
  body: 'the request body',
  query: 'the query string',
  params: 'the URL path',
  headers: 'the request headers',
  cookie: 'the cookies',
};

/**
 * Elysia's validation failure (a route's body, query or params schema) as the contract's 400:
 * `request.invalid` (or the `errorCode` the failing schema names) with one detail per field,
 * JSON Pointer paths, ranked, did-you-mean for unknown keys (shared/validation.ts).
 */
export function validationError(error: ValidationError): AppError {
  const { details, code } = validationDetails(error.all as never);
  // A schema may name the code of the whole (`errorCode` on its root), e.g. `settings.invalid`.
  const root = (error.validator as { schema?: { errorCode?: unknown } } | undefined)?.schema?.errorCode;
  const what = WHAT[error.type] ?? `the ${error.type}`;
  const list = details.length ? details : [{ path: '', reason: 'is invalid' }];
  const fallback = typeof root === 'string' ? root : 'request.invalid';
  return new AppError(code ?? fallback, invalidFieldsMessage(what, list), 400, list);
}

/** The contract's error body, as a JSON response with the error's status. */
export function errorResponse(e: AppError, headers: Record<string, string> = {}): Response {
  const h = e.retryAfter ? { 'retry-after': String(e.retryAfter), ...headers } : headers;
  return Response.json(e.toJSON(), { status: e.status, headers: h });
}

/**
 * Maps anything thrown in a handler to the contract's problem JSON: AppErrors keep their code
 * and status; Elysia's parse and not-found errors get codes of their own; anything else is a
 * 500 `internal` whose details go to the log, never to the client.
 */
export function toErrorResponse(code: string | number, error: unknown, log: Logger): Response {
  if (isAppError(error)) return errorResponse(error);
  if (code === 'PARSE')
    return errorResponse(new AppError('request.invalid_json', 'the request body is not valid JSON', 400));
  if (code === 'NOT_FOUND') return errorResponse(new AppError('route.not_found', 'no such route', 404));
  if (code === 'VALIDATION') return errorResponse(validationError(error as ValidationError));
  log.error('unhandled error', {
    err: error instanceof Error ? (error.stack ?? error.message) : String(error),
  });
  return errorResponse(
    new AppError('internal', 'internal error; the operator can find it in the server log', 500),
  );
}

/**
 * What a JSON body that did not parse becomes. Bodies are parsed before Elysia runs the
 * permission check, so the parse itself must not answer: the check runs first (401/403 for
 * anyone without the right), and only then does `refuseUnparsed` turn this into a 400.
 */
export const UNPARSED_JSON: Readonly<{ unparsed: true }> = Object.freeze({ unparsed: true });
/** The marker of a multipart body that did not parse (answered after the permission check). */
export const UNPARSED_FORM: Readonly<{ unparsed: 'form' }> = Object.freeze({ unparsed: 'form' });

/**
 * Elysia parse hook for JSON bodies: the value, '' for an empty body, or UNPARSED_JSON.
 * Elysia hands over the media type without parameters but keeps its case (RFC 9110: media
 * types are case-insensitive), so `APPLICATION/JSON` is JSON too.
 */
export async function parseJsonLenient(request: Request, contentType: string): Promise<unknown> {
  const type = contentType.toLowerCase();
  // Multipart that does not parse waits for the permission check too (Elysia's own parser
  // threw first, so an anonymous caller got 400 before 401; found by review).
  if (type.startsWith('multipart/form-data')) {
    try {
      const out: Record<string, unknown> = {};
      for (const [k, v] of await request.formData()) out[k] = v;
      return out;
    } catch {
      return UNPARSED_FORM;
    }
  }
  if (type !== 'application/json') return undefined;
  const text = await request.text();
  if (text === '') return '';
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return UNPARSED_JSON;
  }
}

/** After the permission check: a body that did not parse is the client's error (400). */
export function refuseUnparsed(body: unknown): void {
  if (body === UNPARSED_JSON)
    throw new AppError('request.invalid_json', 'the request body is not valid JSON', 400);
  if (body === UNPARSED_FORM)
    throw new AppError('request.invalid_body', 'the request body is not valid multipart/form-data', 400);
}

/** The most a request body may hold by default (sign-in, settings, most of the API). */
export const DEFAULT_BODY_LIMIT = 64 * 1024;

/**
 * The largest body a route takes, by path: larger only where big bodies belong (AI requests,
 * SCIM, SAML responses, blueprints). Checked before routing, parsing and authentication.
 */
export function bodyLimitFor(path: string): number {
  if (path.startsWith('/v1/')) return 8 * 1024 * 1024;
  if (path.startsWith('/scim/')) return 1024 * 1024;
  if (path === '/sso/saml/acs') return 512 * 1024;
  // A logo upload: the image itself (tenancy's MAX_LOGO_BYTES, 256 KB) and a little room.
  if (path === '/api/v1/platform/logo') return 256 * 1024 + 1024;
  // A knowledge document: its text (at most 2 MB, agents/knowledge.service.ts) as JSON.
  if (/^\/api\/v1\/agents\/[^/]+\/knowledge$/.test(path)) return 3 * 1024 * 1024;
  if (path.startsWith('/_operator/api/platforms')) return 1024 * 1024;
  // A federation package (a spec: at most ~100 KB as JSON), and a peer's revocation list.
  if (path === '/api/v1/agents/import') return 256 * 1024;
  if (path === '/_operator/api/federation/revocations') return 4 * 1024 * 1024;
  return DEFAULT_BODY_LIMIT;
}

/**
 * Whether a path's cap above DEFAULT_BODY_LIMIT is for known callers only (credentials valid
 * on the host): every route with a larger cap but the SAML ACS, which is anonymous by nature
 * (the IdP's signed answer, posted by the browser) and keeps its own cap for everyone.
 */
export function largeBodyNeedsCaller(path: string): boolean {
  return path !== '/sso/saml/acs';
}

/** The largest of `bodyLimitFor`'s answers: Bun.serve's own cap (`maxRequestBodySize`). */
export const MAX_BODY_LIMIT = 8 * 1024 * 1024;
