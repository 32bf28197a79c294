import type { RoutePlan } from './router.ts';
import type { PriceTable } from './runtime.ts';

/*
 * Two blueprint settings applied to a call, apart from the router and the service so each is
 * one small function: `ai_settings.quality_gates.max_output_tokens` (the cap) and
 * `ai_settings.cost_optimization` (cheapest candidate first). docs/ai.md describes both.
 */

/**
 * The completion tokens a call is sent with: what the client asked for (`max_tokens`, else
 * `max_completion_tokens`; parseChatBody keeps the first as `max_tokens`), else the model's
 * default, and never more than the platform's cap. A request asking for more is capped, not
 * refused.
 */
export function outputTokens(asked: number | undefined, modelDefault: number, cap: number | null): number {
  const n = asked ?? modelDefault;
  return cap !== null && n > cap ? cap : n;
}

/**
 * The plan with its candidates cheapest first: by input plus output price per million tokens
 * (`prices` in soulfra.yaml; a candidate with no price costs 0, as the meter counts it). Equal
 * prices keep the route's order (the sort is stable). When the priced candidates are in more
 * than one currency their prices cannot be compared, and the route's order is kept.
 */
export function cheapestFirst(plan: RoutePlan, prices: PriceTable): RoutePlan {
  if (plan.candidates.length < 2) return plan;
  let currency: string | null = null;
  for (const c of plan.candidates) {
    const price = prices[c.key];
    if (!price) continue;
    if (currency === null) currency = price.currency;
    else if (price.currency !== currency) return plan;
  }
  const cost = (key: string) => {
    const price = prices[key];
    return price ? price.input + price.output : 0;
  };
  return { ...plan, candidates: [...plan.candidates].sort((a, b) => cost(a.key) - cost(b.key)) };
}
