import type { Registry } from 'prom-client';
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

/** One series' labels and value, as prom-client renders them. */
interface SeriesValue {
  metricName?: string;
  labels: Record<string, string>;
  value: number;
}

/**
 * A metric kept in plain maps and handed to prom-client's registry only when it is scraped (a
 * metric object with `get()`, as prom-client's own are). NB! The hot path: prom-client hashes the
 * label object on every `inc`/`observe` (its cached children too), ~1.5 µs for a counter and ~3 µs
 * for a histogram here; a joined key and a map lookup cost a few dozen nanoseconds.
 */
function registered(
  registry: Registry,
  name: string,
  help: string,
  type: 'counter' | 'histogram',
  values: () => SeriesValue[],
): void {
  registry.registerMetric({
    name,
    help,
    get: async () => ({ name, help, type, values: values(), aggregator: 'sum' }),
  } as unknown as Parameters<Registry['registerMetric']>[0]);
}

/** Counts per label set, by a joined key. */
class Counts {
  readonly #series = new Map<string, { labels: Record<string, string>; value: number }>();

  add(key: string, labels: () => Record<string, string>, n: number): void {
    const s = this.#series.get(key);
    if (s) s.value += n;
    else this.#series.set(key, { labels: labels(), value: n });
  }

  values(): SeriesValue[] {
    return [...this.#series.values()].map((s) => ({ labels: s.labels, value: s.value }));
  }
}

/** A histogram per label set: counts per bucket (cumulative when rendered), sum and count. */
class Buckets {
  readonly #bounds: readonly number[];
  readonly #series = new Map<
    string,
    { labels: Record<string, string>; counts: number[]; sum: number; count: number }
  >();

  constructor(bounds: readonly number[]) {
    this.#bounds = bounds;
  }

  observe(key: string, labels: () => Record<string, string>, v: number): void {
    let s = this.#series.get(key);
    if (!s) {
      s = { labels: labels(), counts: new Array(this.#bounds.length + 1).fill(0), sum: 0, count: 0 };
      this.#series.set(key, s);
    }
    let i = 0;
    while (i < this.#bounds.length && v > this.#bounds[i]!) i++;
    s.counts[i]!++;
    s.sum += v;
    s.count++;
  }

  values(name: string): SeriesValue[] {
    const out: SeriesValue[] = [];
    for (const s of this.#series.values()) {
      let acc = 0;
      this.#bounds.forEach((b, i) => {
        acc += s.counts[i]!;
        out.push({ metricName: `${name}_bucket`, labels: { ...s.labels, le: String(b) }, value: acc });
      });
      out.push({ metricName: `${name}_bucket`, labels: { ...s.labels, le: '+Inf' }, value: s.count });
      out.push({ metricName: `${name}_sum`, labels: s.labels, value: s.sum });
      out.push({ metricName: `${name}_count`, labels: s.labels, value: s.count });
    }
    return out;
  }
}

/** The router's series on `registry` (rendered with the rest of /metrics). */
export function createAiMetrics(registry: Registry): AiMetrics {
  const calls = new Counts();
  const tokens = new Counts();
  const ttfbName = 'soulfra_ai_time_to_first_byte_seconds';
  const ttfb = new Buckets([0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30]);
  registered(
    registry,
    'soulfra_ai_calls_total',
    'AI calls by platform, answering provider and model, outcome, and whether the router fell back',
    'counter',
    () => calls.values(),
  );
  registered(
    registry,
    ttfbName,
    "Time from the call to its answer's first byte (a stream's first chunk), fallback included, by provider and model",
    'histogram',
    () => ttfb.values(ttfbName),
  );
  registered(
    registry,
    'soulfra_ai_tokens_total',
    'Tokens of answered AI calls by platform, provider, model and direction (in: prompt, out: completion)',
    'counter',
    () => tokens.values(),
  );
  return {
    call(l) {
      const fallback = l.fallback ? 'true' : 'false';
      calls.add(
        `${l.platform}\0${l.provider}\0${l.model}\0${l.outcome}\0${fallback}`,
        () => ({ platform: l.platform, provider: l.provider, model: l.model, outcome: l.outcome, fallback }),
        1,
      );
    },
    firstByte(provider, model, seconds) {
      ttfb.observe(`${provider}\0${model}`, () => ({ provider, model }), seconds);
    },
    tokens(platform, provider, model, tokensIn, tokensOut) {
      const k = `${platform}\0${provider}\0${model}`;
      if (tokensIn > 0)
        tokens.add(`${k}\0in`, () => ({ platform, provider, model, direction: 'in' }), tokensIn);
      if (tokensOut > 0)
        tokens.add(`${k}\0out`, () => ({ platform, provider, model, direction: 'out' }), tokensOut);
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
