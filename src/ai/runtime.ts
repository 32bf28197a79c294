import type { InstanceConfig, Logger } from '../app/index.ts';
import { type Clock, systemClock } from '../shared/time.ts';
import { CircuitBreaker } from './breaker.ts';
import { type AiMetrics, NO_AI_METRICS, type ProviderHealth, type ProviderStatus } from './observe.ts';
import type { Provider, ProviderConfig } from './provider.ts';
import { createAnthropicProvider } from './providers/anthropic.ts';
import { createOllamaProvider } from './providers/ollama.ts';
import { createOpenAIProvider } from './providers/openai.ts';
import type { RouterTables } from './router.ts';
import type { SafetyClassifier } from './safety.ts';
import { DEFAULT_MAX_STREAMS_PER_KEY, StreamSlots } from './streams.ts';

/** Completion tokens reserved against budgets when neither the request nor its alias names a maximum. */
export const DEFAULT_MAX_TOKENS = 4096;

/** Prices per 1M tokens in minor units, by `provider/model`. */
export type PriceTable = InstanceConfig['prices'];

/**
 * The AI runtime of an instance: its providers (built from the configuration), aliases,
 * prices, a circuit breaker per provider and the health loop that feeds them.
 */
export interface AiRuntime extends RouterTables {
  /** The clock of the breakers and of the providers' `created` stamps. */
  clock: Clock;
  prices: PriceTable;
  /** Provider configs by id (timeouts, locations). */
  configs: ReadonlyMap<string, ProviderConfig>;
  /** The safety classifier, when configured: labels in `block` at `minScore` or above refuse. */
  classifier: { classify: SafetyClassifier; block: readonly string[]; minScore: number } | null;
  /** Streamed completions open per API key (or signed-in user), capped by `ai.max_streams_per_key`. */
  streams: StreamSlots;
  /**
   * The completion tokens a call to `model` is assumed to produce when the request names no
   * maximum: its alias's `max_tokens`, else `ai.default_max_tokens`, else 4096. Budgets reserve
   * this much, and the router sends it as `max_tokens` so the provider keeps to it.
   */
  maxTokensFor(model: string): number;
  /** Every alias with its route, for /v1/models. */
  aliases(): { alias: string; route: readonly string[] }[];
  /** Providers never called, with why (their `api_key_env` names an unset variable). */
  down: ReadonlyMap<string, string>;
  /** The router's Prometheus series (nothing is counted without the server's registry). */
  metrics: AiMetrics;
  /** Each provider's health, circuit and last error, in configuration order. */
  statuses(): ProviderStatus[];
  /** Starts checking every provider's health every `everyMs` (stopped by close). */
  startHealthLoop(everyMs?: number): void;
  /** One round of health checks now (the loop's step; down providers are not asked). */
  checkHealth(): Promise<void>;
  close(): Promise<void>;
}

/** Builds a provider from its configuration. ONNX is imported only when configured. */
async function buildProvider(cfg: ProviderConfig, clock: Clock): Promise<Provider> {
  switch (cfg.kind) {
    case 'ollama':
      return createOllamaProvider(cfg, clock);
    case 'openai':
      return createOpenAIProvider(cfg, clock);
    case 'anthropic':
      return createAnthropicProvider(cfg, clock);
    case 'onnx': {
      // NB! Lazy: the executable must run without the ONNX library when no ONNX provider is set.
      const { createOnnxProvider } = await import('./providers/onnx.ts');
      return createOnnxProvider(cfg);
    }
  }
}

/** Why a provider may not be called: its `api_key_env` names a variable that is unset or empty. */
function downReason(p: ProviderConfig): string | null {
  if (!p.api_key_env || process.env[p.api_key_env]) return null;
  return `its API key variable ${p.api_key_env} is not set`;
}

/**
 * Builds the runtime from the instance configuration; `clock` stamps providers' answers and
 * feeds the breakers; `metrics` counts the router's series (the server's registry). A provider
 * whose API key variable is unset is logged now and marked down: planning skips it and the
 * health loop leaves it alone, so it is never sent a request without its key.
 */
export async function createAiRuntime(
  config: InstanceConfig,
  log: Logger,
  clock: Clock = systemClock,
  metrics: AiMetrics = NO_AI_METRICS,
): Promise<AiRuntime> {
  const providers = new Map<string, Provider>();
  const configs = new Map<string, ProviderConfig>();
  const breakers = new Map<string, CircuitBreaker>();
  const down = new Map<string, string>();
  const health = new Map<string, ProviderHealth>();
  for (const p of config.providers) {
    providers.set(p.id, await buildProvider(p, clock));
    configs.set(p.id, p);
    const onChange = (from: string, to: string) => {
      if (to === 'closed') log.info('AI provider circuit changed', { provider: p.id, from, to });
      else log.warn('AI provider circuit changed', { provider: p.id, from, to });
    };
    breakers.set(p.id, new CircuitBreaker({ onChange }));
    health.set(p.id, { health: 'unknown', checkedAt: null, lastError: null });
    const why = downReason(p);
    if (why) {
      down.set(p.id, why);
      log.warn('AI provider down: it will not be called', { provider: p.id, reason: why });
    }
  }
  const routes = new Map(config.models.map((m) => [m.alias, m.route] as const));
  let classifier: AiRuntime['classifier'] = null;
  let closeClassifier: (() => Promise<void>) | null = null;
  if (config.safety_classifier) {
    const sc = config.safety_classifier;
    // Lazy, like the ONNX provider: no ONNX library is loaded unless configured.
    const { createOnnxClassifier } = await import('./providers/onnx.ts');
    const c = createOnnxClassifier(sc.model_dir, sc.labels);
    classifier = { classify: c, block: sc.block, minScore: sc.min_score ?? 0.5 };
    closeClassifier = () => c.close();
  }
  const aliasMaxTokens = new Map(
    config.models.flatMap((m) => (m.max_tokens ? [[m.alias, m.max_tokens] as const] : [])),
  );
  const defaultMaxTokens = config.ai?.default_max_tokens ?? DEFAULT_MAX_TOKENS;
  let timer: ReturnType<typeof setInterval> | null = null;
  const check = async () => {
    for (const p of providers.values()) {
      if (down.has(p.id)) continue;
      const b = breakers.get(p.id)!;
      const h = health.get(p.id)!;
      let failed: string | null = null;
      try {
        if (await p.health(AbortSignal.timeout(2_000))) b.success();
        else failed = 'health check failed';
      } catch (e) {
        failed = `health check failed: ${(e as Error).message}`;
      }
      const at = clock.now();
      h.checkedAt = at;
      h.health = failed ? 'down' : 'up';
      if (failed) {
        h.lastError = { message: failed, at };
        b.failure(at);
      }
    }
  };
  const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());
  return {
    providers,
    routes,
    breakers,
    configs,
    clock,
    prices: config.prices,
    classifier,
    streams: new StreamSlots(config.ai?.max_streams_per_key ?? DEFAULT_MAX_STREAMS_PER_KEY),
    maxTokensFor: (model) => aliasMaxTokens.get(model) ?? defaultMaxTokens,
    down,
    metrics,
    failed(c, err) {
      const h = health.get(c.provider.id);
      if (h) h.lastError = { message: `${err.kind}: ${err.message}`, at: clock.now() };
    },
    statuses() {
      const now = clock.now();
      return config.providers.map((p) => {
        const h = health.get(p.id)!;
        const b = breakers.get(p.id)!;
        return {
          id: p.id,
          kind: p.kind,
          location: providers.get(p.id)!.location,
          health: down.has(p.id) ? 'down' : h.health,
          checked_at: iso(h.checkedAt),
          circuit: b.state(now),
          failures: b.failures,
          down_reason: down.get(p.id) ?? null,
          last_error: h.lastError ? { message: h.lastError.message, at: iso(h.lastError.at)! } : null,
        };
      });
    },
    checkHealth: check,
    aliases: () => config.models.map((m) => ({ alias: m.alias, route: m.route })),
    startHealthLoop(everyMs = 10_000) {
      if (timer || providers.size === 0) return;
      timer = setInterval(() => {
        check().catch((e) => log.warn('provider health check failed', { err: String(e) }));
      }, everyMs);
      timer.unref?.();
    },
    async close() {
      if (timer) clearInterval(timer);
      await Promise.all([...providers.values()].map((p) => p.close?.()));
      await closeClassifier?.();
    },
  };
}
