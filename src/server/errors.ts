import type { Logger } from '../app/index.ts';
import { AppError, isAppError } from '../shared/errors.ts';

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
  if (code === 'VALIDATION') {
    return errorResponse(
      new AppError('request.invalid', String((error as Error).message).slice(0, 500), 400),
    );
  }
  log.error('unhandled error', {
    err: error instanceof Error ? (error.stack ?? error.message) : String(error),
  });
  return errorResponse(
    new AppError('internal', 'internal error; the operator can find it in the server log', 500),
  );
}

/** A body that must be a JSON object whose keys are all in `allowed`. */
export function objectBody(body: unknown, allowed: readonly string[]): Record<string, unknown> {
  if (body === undefined || body === null || body === '') return {};
  if (typeof body !== 'object' || Array.isArray(body)) {
    throw new AppError('request.invalid', 'the request body must be a JSON object', 400, [
      { path: '', reason: 'must be an object' },
    ]);
  }
  const unknown = Object.keys(body).filter((k) => !allowed.includes(k));
  if (unknown.length) {
    throw new AppError(
      'request.invalid',
      `unknown field(s): ${unknown.join(', ')}; allowed: ${allowed.join(', ')}`,
      400,
      unknown.map((k) => ({ path: `/${k}`, reason: 'unknown field' })),
    );
  }
  return body as Record<string, unknown>;
}
