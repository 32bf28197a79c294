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
  extra: Record<string, string | number | boolean> = {},
): Response {
  return Response.json(
    { error: { ...extra, message, type: typeOf(status), param, code } },
    { status, headers },
  );
}

/**
 * Tells the official SDKs not to retry. openai-node and openai-python read `x-should-retry`
 * before anything else (`true`/`false`), then retry 408, 409, 429 and 5xx on their own (twice by
 * default, with backoff, honouring a `Retry-After` under a minute): a refusal that a retry cannot
 * change says `false`, so the client raises at once instead of hanging on retries.
 */
const NO_RETRY = { 'x-should-retry': 'false' } as const;

/**
 * A failed AI call as OpenAI's SDKs expect it: no route (503, with the `x-ai-route` of what was
 * tried and skipped), an upstream that refused the request itself (its 4xx, else 400), or one
 * of our errors (its status and code; the first detail's path as `param`). Anything else is a
 * bug and is thrown on.
 *
 * Retries: only what may succeed on a retry invites one. An error of ours with `retryAfter` (a
 * budget whose room calls in flight hold, the stream cap) sends `Retry-After`; every other
 * refusal (a spent budget, a policy or safety refusal, a route that policy emptied, a request the
 * upstream refused) sends `x-should-retry: false`. A route whose providers all failed is the one
 * 503 left to the SDKs' own retries: a provider may be back a second later.
 */
export function toOpenAiError(e: unknown): Response {
  if (e instanceof NoRouteError) {
    const h: Record<string, string> = { 'x-ai-route': routeHeader(e.plan, e.attempts) };
    // No candidate at all (policy removed every step): no retry can change that.
    return openAiError(
      503,
      'ai.no_provider_available',
      e.message,
      null,
      e.plan.candidates.length === 0 ? { ...h, ...NO_RETRY } : h,
    );
  }
  if (e instanceof UpstreamError) {
    // runPlan attaches the plan and the attempts to the error it gives back.
    const routed = e as UpstreamError & { plan?: RoutePlan; attempts?: Attempt[] };
    const h: Record<string, string> = routed.plan
      ? {
          'x-ai-route': routeHeader(routed.plan, routed.attempts ?? []),
          'x-ai-provider': e.provider,
          ...NO_RETRY,
        }
      : { ...NO_RETRY };
    return openAiError(
      e.status && e.status >= 400 && e.status < 500 ? e.status : 400,
      'ai.upstream_rejected',
      e.message,
      null,
      h,
    );
  }
  if (isAppError(e)) {
    const h: Record<string, string> = e.retryAfter
      ? { 'retry-after': String(e.retryAfter) }
      : { ...NO_RETRY };
    return openAiError(
      e.status,
      e.code,
      e.message,
      e.details?.[0]?.path.replace(/^\//, '') || null,
      h,
      e.extra,
    );
  }
  throw e;
}
