import { describe, expect, test } from 'bun:test';
import { templateBlueprint } from '../tenancy/index.ts';
import { platformAiPolicy, resolveAiPolicy } from './policy.ts';

describe('the AI policy resolved from a blueprint', () => {
  test('settings and packs become what the pipeline enforces', () => {
    const bp = templateBlueprint('creator');
    bp.ai_settings.safety_filters.blocked_terms = ['zeus'];
    bp.ai_settings.safety_filters.redact_pii = true;
    bp.monetization.usage_pricing = { markup_percent: 20 };
    expect(resolveAiPolicy(bp)).toEqual({
      allowedProviders: [],
      cloudBlocked: null,
      blockedTerms: ['zeus'],
      redactPiiBeforeCloud: true,
      classify: bp.ai_settings.safety_filters.level !== 'minimal',
      auditCloudCalls: true,
      markupPercent: 20,
      maxOutputTokens: null,
      costOptimization: true,
      auditView: { cloud_fallback: 'allowed', allowed_providers: 'all' },
    });
    bp.ai_settings.quality_gates.max_output_tokens = 300;
    bp.ai_settings.cost_optimization = false;
    expect(resolveAiPolicy(bp)).toMatchObject({ maxOutputTokens: 300, costOptimization: false });
    bp.ai_settings.allowed_providers = ['local'];
    expect(resolveAiPolicy(bp)).toMatchObject({
      allowedProviders: ['local'],
      auditView: { allowed_providers: ['local'] },
    });
    expect(resolveAiPolicy(templateBlueprint('blank')).classify).toBe(false);
  });

  test('HIPAA blocks the cloud until a BAA is signed; cloud_fallback never blocks it whatever the packs', () => {
    const bp = templateBlueprint('business');
    bp.governance.compliance_packs = ['soc2', 'hipaa'];
    expect(resolveAiPolicy(bp).cloudBlocked).toBe('HIPAA pack without a signed BAA');
    bp.governance.hipaa_baa_signed = true;
    expect(resolveAiPolicy(bp).cloudBlocked).toBeNull();
    bp.ai_settings.cloud_fallback = 'never';
    expect(resolveAiPolicy(bp).cloudBlocked).toBe("cloud_fallback is 'never'");
    bp.governance.hipaa_baa_signed = false;
    expect(resolveAiPolicy(bp).cloudBlocked).toBe("cloud_fallback is 'never'");
    bp.governance.compliance_packs = ['soc2', 'gdpr'];
    bp.ai_settings.cloud_fallback = 'allowed';
    expect(resolveAiPolicy(bp).cloudBlocked).toBeNull();
  });

  test('the cached resolution answers one object per blueprint object', () => {
    const a = templateBlueprint('creator');
    const b = templateBlueprint('creator');
    expect(platformAiPolicy(a)).toBe(platformAiPolicy(a));
    expect(platformAiPolicy(b)).not.toBe(platformAiPolicy(a));
    expect(platformAiPolicy(b)).toEqual(platformAiPolicy(a));
  });
});
