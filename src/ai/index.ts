export {
  AI_ROUTE_PERMISSIONS,
  aiRoutes,
  countTokens,
  estimateCost,
  policyOf,
  promptTokenBound,
} from './ai.routes.ts';
export { CircuitBreaker } from './breaker.ts';
export {
  type Budget,
  type BudgetRefusal,
  type CostEstimate,
  costOf,
  Meter,
  periodStart,
  type Reservation,
  type UsageRecord,
} from './meter.ts';
export * from './provider.ts';
export {
  type AiPolicy,
  type Candidate,
  NoRouteError,
  planRoute,
  type RoutePlan,
  routeHeader,
  runPlan,
} from './router.ts';
export { type AiRuntime, createAiRuntime, DEFAULT_MAX_TOKENS } from './runtime.ts';
export { findBlockedTerm, foldForMatching, redactPii, type SafetyClassifier } from './safety.ts';
export { DEFAULT_MAX_STREAMS_PER_KEY, StreamSlots } from './streams.ts';
