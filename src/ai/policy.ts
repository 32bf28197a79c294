import type { PlatformBlueprint } from '../tenancy/index.ts';
import type { AiPolicy } from './router.ts';

/**
 * What the AI pipeline enforces for one platform, resolved from its blueprint (ai_settings,
 * compliance packs, monetization): the pipeline reads this and nothing else, never a pack's
 * name. The compliance packs feed it through `resolveAiPolicy`.
 */
export interface PlatformAiPolicy extends AiPolicy {
  /** Terms refused in prompts (400 `ai.blocked_by_policy`), matched case- and accent-folded. */
  blockedTerms: readonly string[];
  /** Whether personal data is redacted from what goes to a cloud provider. */
  redactPiiBeforeCloud: boolean;
  /** Whether the instance's safety classifier (when configured) screens prompts. */
  classify: boolean;
  /** Whether each call to a cloud provider is written to the platform's audit chain. */
  auditCloudCalls: boolean;
  /** The platform's markup on provider cost, in percent (0: none). */
  markupPercent: number;
  /** The most completion tokens a call is sent with (`quality_gates.max_output_tokens`), or null. */
  maxOutputTokens: number | null;
  /** Whether a route's candidates are tried cheapest first (`cost_optimization`). */
  costOptimization: boolean;
  /** The policy as the audit entry of a cloud call states it. */
  auditView: { cloud_fallback: 'allowed'; allowed_providers: readonly string[] | 'all' };
}

/** What a compliance pack adds to a policy; the compliance-packs module will own these. */
interface PackRule {
  /** Why cloud providers are off under this pack for this blueprint, or null when they may be used. */
  cloudBlocked(bp: PlatformBlueprint): string | null;
}

/** The packs' effects on the AI pipeline. HIPAA: no cloud provider without a signed BAA. */
const PACK_RULES: Partial<Record<PlatformBlueprint['governance']['compliance_packs'][number], PackRule>> = {
  hipaa: {
    cloudBlocked: (bp) => (bp.governance.hipaa_baa_signed ? null : 'HIPAA pack without a signed BAA'),
  },
};

/**
 * The one place a blueprint becomes the AI policy: ai_settings first (`cloud_fallback: never`),
 * then each compliance pack in order.
 */
export function resolveAiPolicy(bp: PlatformBlueprint): PlatformAiPolicy {
  let cloudBlocked: string | null =
    bp.ai_settings.cloud_fallback === 'never' ? "cloud_fallback is 'never'" : null;
  for (const pack of bp.governance.compliance_packs) {
    if (cloudBlocked) break;
    cloudBlocked = PACK_RULES[pack]?.cloudBlocked(bp) ?? null;
  }
  const allowedProviders = bp.ai_settings.allowed_providers;
  return {
    allowedProviders,
    cloudBlocked,
    blockedTerms: bp.ai_settings.safety_filters.blocked_terms,
    redactPiiBeforeCloud: bp.ai_settings.safety_filters.redact_pii,
    classify: bp.ai_settings.safety_filters.level !== 'minimal',
    auditCloudCalls: true,
    markupPercent: bp.monetization.usage_pricing?.markup_percent ?? 0,
    maxOutputTokens: bp.ai_settings.quality_gates.max_output_tokens ?? null,
    costOptimization: bp.ai_settings.cost_optimization,
    auditView: {
      cloud_fallback: 'allowed',
      allowed_providers: allowedProviders.length ? allowedProviders : 'all',
    },
  };
}

/** A platform's AI policy from its blueprint (the name the routes and tests have used). */
export const policyOf = resolveAiPolicy;

/** Resolved policies by blueprint object. */
const resolved = new WeakMap<PlatformBlueprint, PlatformAiPolicy>();

/**
 * `resolveAiPolicy`, cached per blueprint object, so the hot path allocates nothing for it.
 * NB! For blueprints that are not changed in place: the tenancy's cached ones (a change
 * replaces the object), not one a caller is still editing.
 */
export function platformAiPolicy(bp: PlatformBlueprint): PlatformAiPolicy {
  let policy = resolved.get(bp);
  if (!policy) {
    policy = resolveAiPolicy(bp);
    resolved.set(bp, policy);
  }
  return policy;
}
