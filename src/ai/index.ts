export { AI_ROUTE_PERMISSIONS, aiRoutes, countTokens, policyOf } from './ai.routes.ts';
export { CircuitBreaker } from './breaker.ts';
export { type Budget, costOf, Meter, periodStart, type UsageRecord } from './meter.ts';
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
export { type AiRuntime, createAiRuntime } from './runtime.ts';
export { findBlockedTerm, redactPii, type SafetyClassifier } from './safety.ts';
