import { isAppError } from '../shared/errors.ts';
import { UpstreamError } from './provider.ts';
import { type Attempt, NoRouteError, type RoutePlan, routeHeader } from './router.ts';

/** OpenAI's error `type` for a status. */
function typeOf(status: number): string {
  return status === 401
    ? 'authentication_error'
    : status === 403
      ? 'permission_error'
      : status === 404
        ? 'not_found_error'
        : status === 429
          ? 'rate_limit_error'
          : status >= 500
            ? 'api_error'
            : 'invalid_request_error';
}

/** An error in OpenAI's wire shape (`error.message/type/param/code`), our dotted code as `code`. */
export function openAiError(
  status: number,
  code: string,
  message: string,
  param: string | null = null,
  headers: Record<string, string> = {},
): Response {
  return Response.json({ error: { message, type: typeOf(status), param, code } }, { status, headers });
}

/**
 * A failed AI call as OpenAI's SDKs expect it: no route (503, with the `x-ai-route` of what was
 * tried and skipped), an upstream that refused the request itself (its 4xx, else 400), or one
 * of our errors (its status and code; the first detail's path as `param`). Anything else is a
 * bug and is thrown on.
 */
export function toOpenAiError(e: unknown): Response {
  if (e instanceof NoRouteError) {
    return openAiError(503, 'ai.no_provider_available', e.message, null, {
      'x-ai-route': routeHeader(e.plan, e.attempts),
    });
  }
  if (e instanceof UpstreamError) {
    // runPlan attaches the plan and the attempts to the error it gives back.
    const routed = e as UpstreamError & { plan?: RoutePlan; attempts?: Attempt[] };
    const h: Record<string, string> = routed.plan
      ? { 'x-ai-route': routeHeader(routed.plan, routed.attempts ?? []), 'x-ai-provider': e.provider }
      : {};
    return openAiError(
      e.status && e.status >= 400 && e.status < 500 ? e.status : 400,
      'ai.upstream_rejected',
      e.message,
      null,
      h,
    );
  }
  if (isAppError(e)) {
    const h: Record<string, string> = e.retryAfter ? { 'retry-after': String(e.retryAfter) } : {};
    return openAiError(e.status, e.code, e.message, e.details?.[0]?.path.replace(/^\//, '') || null, h);
  }
  throw e;
}
