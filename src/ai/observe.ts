import { Counter, Histogram, type Registry } from 'prom-client';
import type { Logger } from '../app/index.ts';
import type { Attempt, RoutePlan } from './router.ts';

/*
 * What the router lets an operator see: Prometheus series of AI calls, a log line for every
 * fallback, timeout, circuit change and policy skip, and each provider's status (health, circuit,
 * last error) for GET /_operator/api/providers. The series are counted through `AiMetrics`, a
 * port the server fills with its registry (`createAiMetrics`); with none, nothing is counted.
 */

/** How a call ended, for `soulfra_ai_calls_total{outcome}`. */
export type CallOutcome =
  /** Answered (a stream: ended normally). */
  | 'ok'
  /** A stream failed or stalled after its first byte. */
  | 'error'
  /** Refused before any provider was asked (budget, policy, safety, stream cap). */
  | 'refused'
  /** No candidate could answer (all failed, open circuits, or policy removed them). */
  | 'no_route'
  /** The provider refused the request itself (a 4xx). */
  | 'upstream_rejected';

/** One AI call as the series count it. */
export interface CallLabels {
  platform: string;
  /** The provider that answered, or 'none'. */
  provider: string;
  /** The provider's model that answered, or the alias asked for when none did. */
  model: string;
  outcome: CallOutcome;
  /** Whether a candidate after the first answered (or was tried). */
  fallback: boolean;
}

/** The router's series. */
export interface AiMetrics {
  /** One call: `soulfra_ai_calls_total`. */
  call(l: CallLabels): void;
  /** Time to the first byte of the answer (a stream's first chunk), fallback included. */
  firstByte(provider: string, model: string, seconds: number): void;
  /** Tokens of an answered call: `soulfra_ai_tokens_total{direction=in|out}`. */
  tokens(platform: string, provider: string, model: string, tokensIn: number, tokensOut: number): void;
}

/** Counts nothing (a runtime built without the server's registry: tests, agents). */
export const NO_AI_METRICS: AiMetrics = { call() {}, firstByte() {}, tokens() {} };

/**
 * The router's series on `registry`. NB! The hot path: each label set's child is looked up once
 * and kept in a map by a joined key (cheaper than prom-client hashing the label object per call).
 */
export function createAiMetrics(registry: Registry): AiMetrics {
  const calls = new Counter({
    name: 'soulfra_ai_calls_total',
    help: 'AI calls by platform, answering provider and model, outcome, and whether the router fell back',
    labelNames: ['platform', 'provider', 'model', 'outcome', 'fallback'] as const,
    registers: [registry],
  });
  const ttfb = new Histogram({
    name: 'soulfra_ai_time_to_first_byte_seconds',
    help: "Time from the call to its answer's first byte (a stream's first chunk), fallback included, by provider and model",
    labelNames: ['provider', 'model'] as const,
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: [registry],
  });
  const tokens = new Counter({
    name: 'soulfra_ai_tokens_total',
    help: 'Tokens of answered AI calls by platform, provider, model and direction (in: prompt, out: completion)',
    labelNames: ['platform', 'provider', 'model', 'direction'] as const,
    registers: [registry],
  });
  const callChildren = new Map<string, { inc(): void }>();
  const ttfbChildren = new Map<string, { observe(v: number): void }>();
  const tokenChildren = new Map<string, { in: { inc(n: number): void }; out: { inc(n: number): void } }>();
  return {
    call(l) {
      const fallback = l.fallback ? 'true' : 'false';
      const k = `${l.platform}\0${l.provider}\0${l.model}\0${l.outcome}\0${fallback}`;
      let c = callChildren.get(k);
      if (!c) {
        c = calls.labels(l.platform, l.provider, l.model, l.outcome, fallback);
        callChildren.set(k, c);
      }
      c.inc();
    },
    firstByte(provider, model, seconds) {
      const k = `${provider}\0${model}`;
      let h = ttfbChildren.get(k);
      if (!h) {
        h = ttfb.labels(provider, model);
        ttfbChildren.set(k, h);
      }
      h.observe(seconds);
    },
    tokens(platform, provider, model, tokensIn, tokensOut) {
      const k = `${platform}\0${provider}\0${model}`;
      let t = tokenChildren.get(k);
      if (!t) {
        t = {
          in: tokens.labels(platform, provider, model, 'in'),
          out: tokens.labels(platform, provider, model, 'out'),
        };
        tokenChildren.set(k, t);
      }
      if (tokensIn > 0) t.in.inc(tokensIn);
      if (tokensOut > 0) t.out.inc(tokensOut);
    },
  };
}

/** A provider's status as the operator API shows it. */
export interface ProviderStatus {
  id: string;
  kind: string;
  location: 'on_prem' | 'cloud';
  /** 'down' when it may not be called at all (see `down_reason`), else its last health check. */
  health: 'up' | 'down' | 'unknown';
  /** When the last health check ran (ISO-8601), null before the first. */
  checked_at: string | null;
  circuit: 'closed' | 'open' | 'half_open';
  /** Failures in a row the breaker has counted. */
  failures: number;
  /** Why it is never called (its API key is not set), or null. */
  down_reason: string | null;
  /** The last failure of a call or health check, null when none yet. */
  last_error: { message: string; at: string } | null;
}

/** What the runtime keeps of a provider between checks, for ProviderStatus. */
export interface ProviderHealth {
  health: 'up' | 'down' | 'unknown';
  checkedAt: number | null;
  lastError: { message: string; at: number } | null;
}

/**
 * Logs what routing did beyond the plain path: each candidate that failed before another was
 * tried (a fallback), each timeout, and each step the plan skipped (policy, an unconfigured or
 * down provider). Nothing is logged for a call its first candidate answered with no skips.
 */
export function logRouting(
  log: Logger,
  platform: string,
  plan: RoutePlan,
  attempts: readonly Attempt[],
  answered: boolean,
): void {
  for (const s of plan.skipped) {
    log.info('AI route step skipped', { platform, alias: plan.alias, step: s.key, reason: s.reason });
  }
  for (let i = 0; i < attempts.length; i++) {
    const a = attempts[i]!;
    if (a.outcome === 'ok') continue;
    if (a.outcome === 'timeout') {
      log.warn('AI provider timed out', { platform, alias: plan.alias, step: a.key });
    }
    const next = attempts[i + 1];
    if (next) {
      log.warn('AI fallback', { platform, alias: plan.alias, from: a.key, outcome: a.outcome, to: next.key });
    } else if (!answered) {
      log.warn('AI route exhausted', { platform, alias: plan.alias, last: a.key, outcome: a.outcome });
    }
  }
}
