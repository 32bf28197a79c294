import { AppError } from '../shared/errors.ts';
import { systemClock } from '../shared/time.ts';
import type { CircuitBreaker } from './breaker.ts';
import { type Provider, UpstreamError } from './provider.ts';

/** What a platform's blueprint allows (ai_settings and compliance packs, resolved). */
export interface AiPolicy {
  /** Provider ids the platform may use; empty: every configured provider. */
  allowedProviders: readonly string[];
  /** Why cloud providers are off for this platform, or null when they may be used. */
  cloudBlocked: string | null;
}

/** One step of a route: `provider/model`. */
export interface Candidate {
  key: string;
  provider: Provider;
  model: string;
}

/** A route for one request: the candidates to try in order, and the ones policy removed. */
export interface RoutePlan {
  alias: string;
  candidates: Candidate[];
  skipped: { key: string; reason: string }[];
}

/** What the router knows: providers by id, aliases to routes, breakers by provider id. */
export interface RouterTables {
  providers: ReadonlyMap<string, Provider>;
  routes: ReadonlyMap<string, readonly string[]>;
  breakers: ReadonlyMap<string, CircuitBreaker>;
  /** Providers that are never called, with why (their API key is not set): planning skips them. */
  down?: ReadonlyMap<string, string>;
  /** Hears each failed attempt (the runtime keeps it as the provider's last error). */
  failed?(c: Candidate, err: UpstreamError): void;
}

/**
 * The route for `model`: a configured alias, or a direct `provider/model`. Candidates that the
 * platform's policy forbids are removed here, before anything is sent: a platform whose cloud
 * use is blocked never has a cloud provider in its plan, whatever fails later.
 */
export function planRoute(model: unknown, t: RouterTables, policy: AiPolicy): RoutePlan {
  if (typeof model !== 'string' || model.length === 0 || model.length > 200) {
    throw new AppError('ai.invalid_request', 'model is required', 400, [
      { path: '/model', reason: 'required' },
    ]);
  }
  const steps =
    t.routes.get(model) ??
    (model.includes('/') && t.providers.has(model.slice(0, model.indexOf('/'))) ? [model] : null);
  if (!steps) {
    throw new AppError(
      'ai.model_not_found',
      `the model '${model}' does not exist; GET /v1/models lists what is available`,
      404,
      [{ path: '/model', reason: 'unknown model' }],
    );
  }
  const plan: RoutePlan = { alias: model, candidates: [], skipped: [] };
  for (const key of steps) {
    const i = key.indexOf('/');
    const provider = t.providers.get(key.slice(0, i));
    if (!provider) {
      plan.skipped.push({ key, reason: 'provider not configured' });
      continue;
    }
    const down = t.down?.get(provider.id);
    if (down) {
      plan.skipped.push({ key, reason: `provider down: ${down}` });
      continue;
    }
    if (policy.allowedProviders.length > 0 && !policy.allowedProviders.includes(provider.id)) {
      plan.skipped.push({ key, reason: 'policy: provider not allowed for this platform' });
      continue;
    }
    if (provider.location === 'cloud' && policy.cloudBlocked) {
      plan.skipped.push({ key, reason: `policy: ${policy.cloudBlocked}` });
      continue;
    }
    plan.candidates.push({ key, provider, model: key.slice(i + 1) });
  }
  return plan;
}

/** One try of one candidate. */
export interface Attempt {
  key: string;
  outcome: 'ok' | 'circuit_open' | UpstreamError['kind'];
}

/** The outcome of running a plan: the result, who gave it, and every attempt. */
export interface Routed<T> {
  result: T;
  candidate: Candidate;
  attempts: Attempt[];
}

/**
 * Runs a plan: candidates in order, skipping open circuits, each with its own timeout; a
 * retryable failure (refused, timeout, 429, 5xx, malformed) moves on to the next, anything
 * else (the request itself is bad) goes straight back. `call` must resolve only once the
 * provider has produced its first byte (streams: the first chunk), so nothing has reached the
 * client when it falls back.
 */
export async function runPlan<T>(
  plan: RoutePlan,
  t: RouterTables,
  clientSignal: AbortSignal,
  timeoutMs: (c: Candidate) => number,
  call: (c: Candidate, signal: AbortSignal) => Promise<T>,
  now: () => number = systemClock.now,
): Promise<Routed<T>> {
  const attempts: Attempt[] = [];
  for (const c of plan.candidates) {
    const breaker = t.breakers.get(c.provider.id);
    if (breaker && !breaker.allow(now())) {
      attempts.push({ key: c.key, outcome: 'circuit_open' });
      continue;
    }
    // The timeout covers the first byte only: once `call` resolves (a stream's first chunk),
    // the timer is cleared and the stream lives on under the client's signal alone. One
    // controller carries both (cheaper than AbortSignal.any on this hot path).
    const ctrl = new AbortController();
    let timedOut = false;
    const ms = timeoutMs(c);
    const timer = setTimeout(() => {
      timedOut = true;
      ctrl.abort(new DOMException(`${c.key} did not answer within ${ms} ms`, 'TimeoutError'));
    }, ms);
    if (clientSignal.aborted) ctrl.abort(clientSignal.reason);
    else clientSignal.addEventListener('abort', () => ctrl.abort(clientSignal.reason), { once: true });
    try {
      const result = await call(c, ctrl.signal);
      clearTimeout(timer);
      breaker?.success();
      attempts.push({ key: c.key, outcome: 'ok' });
      return { result, candidate: c, attempts };
    } catch (e) {
      clearTimeout(timer);
      if (clientSignal.aborted) throw e;
      const err =
        e instanceof UpstreamError
          ? e
          : timedOut
            ? new UpstreamError(c.provider.id, 'timeout', `${c.key} did not answer within ${ms} ms`, {
                cause: e,
              })
            : new UpstreamError(c.provider.id, 'malformed', `${c.key} failed: ${(e as Error).message}`, {
                cause: e,
              });
      attempts.push({ key: c.key, outcome: err.kind });
      t.failed?.(c, err);
      if (!err.retryable) {
        breaker?.success();
        // The plan and the attempts go with the error, for the client's `x-ai-route`.
        throw Object.assign(err, { attempts, plan });
      }
      breaker?.failure(now());
    }
  }
  throw new NoRouteError(plan, attempts);
}

/** No candidate could answer: every one failed, had its circuit open, or policy removed it. */
export class NoRouteError extends Error {
  readonly plan: RoutePlan;
  readonly attempts: Attempt[];

  constructor(plan: RoutePlan, attempts: Attempt[]) {
    const parts = [
      ...attempts.map((a) => `${a.key}: ${a.outcome.replace(/_/g, ' ')}`),
      ...plan.skipped.map((s) => `${s.key}: skipped (${s.reason})`),
    ];
    super(
      plan.candidates.length === 0
        ? `no provider may serve '${plan.alias}' for this platform: ${parts.join('; ') || 'the route is empty'}`
        : `every provider for '${plan.alias}' failed: ${parts.join('; ')}`,
    );
    this.name = 'NoRouteError';
    this.plan = plan;
    this.attempts = attempts;
  }
}

/** The `x-ai-route` header: the alias, each attempt and each policy skip, in order. */
export function routeHeader(plan: RoutePlan, attempts: readonly Attempt[]): string {
  const parts = [
    ...attempts.map((a) => `${a.key}=${a.outcome}`),
    ...plan.skipped.map(
      (s) => `${s.key}=skipped(${s.reason.replace(/[^\x20-\x7e]/g, '').replace(/[;,]/g, ' ')})`,
    ),
  ];
  return `${plan.alias}; ${parts.join(', ')}`;
}
