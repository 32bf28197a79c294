export {
  BudgetBody,
  type BudgetInput,
  BudgetParams,
  ChatCompletionBody,
  type ChatInput,
  EmbeddingsBody,
  type EmbeddingsInput,
  parseBudgetBody,
  parseChatBody,
  parseEmbeddingsBody,
  parseUsageQuery,
  UsageQuery,
} from './ai.models.ts';
export { aiRoutes } from './ai.routes.ts';
export { CircuitBreaker, type CircuitState } from './breaker.ts';
export {
  type Budget,
  type BudgetRefusal,
  type CostEstimate,
  costMicro,
  describeRefusal,
  Meter,
  markupMicro,
  periodStart,
  type Reservation,
  type UsageRecord,
} from './meter.ts';
export {
  type AiMetrics,
  type CallLabels,
  type CallOutcome,
  createAiMetrics,
  NO_AI_METRICS,
  type ProviderStatus,
} from './observe.ts';
export { openAiError, toOpenAiError } from './openai-errors.ts';
export { type PlatformAiPolicy, platformAiPolicy, policyOf, resolveAiPolicy } from './policy.ts';
export * from './provider.ts';
export {
  type AiPolicy,
  type Attempt,
  type Candidate,
  NoRouteError,
  planRoute,
  type RoutePlan,
  routeHeader,
  runPlan,
} from './router.ts';
export { type AiRuntime, createAiRuntime, DEFAULT_MAX_TOKENS } from './runtime.ts';
export { findBlockedTerm, foldForMatching, redactPii, type SafetyClassifier } from './safety.ts';
export {
  type AiCaller,
  type AiDeps,
  aiDeps,
  aiDepsOf,
  budgets,
  type ChatAnswer,
  type ChatStreamAnswer,
  completeChat,
  countTokens,
  type EmbeddingsAnswer,
  embed,
  estimateCost,
  listModels,
  promptTokenBound,
  type Routing,
  removeBudget,
  safetyVerdict,
  setBudget,
  usageReport,
} from './service.ts';
export { SSE_HEADERS, sseStream } from './sse.ts';
export { DEFAULT_MAX_STREAMS_PER_KEY, StreamSlots } from './streams.ts';
export { chatCallsSince, type UsageByPayer, usageByPayer, usageTotalsSince } from './usage.repository.ts';
