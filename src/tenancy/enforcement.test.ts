import { describe, expect, test } from 'bun:test';
import { join } from 'node:path';
import { Type as t } from '@sinclair/typebox';
import { templateBlueprint } from './blueprint.ts';
import {
  blueprintWarnings,
  ENFORCEMENT,
  renderEnforcementTable,
  settingPaths,
  TABLE_BEGIN,
  TABLE_END,
  unenforcedSettings,
  withEnforcementTable,
} from './enforcement.ts';

const noClassifier = { classifier: false };

describe('the enforcement table', () => {
  test('every setting of the schema has a row, and every row names a setting', () => {
    const paths = settingPaths();
    expect(paths.filter((p) => !ENFORCEMENT[p])).toEqual([]);
    expect(Object.keys(ENFORCEMENT).filter((k) => !paths.includes(k))).toEqual([]);
  });

  test('settingPaths walks objects, arrays of objects and leaves (it would miss nothing new)', () => {
    const schema = t.Object({
      a: t.Boolean(),
      b: t.Object({ c: t.Optional(t.Integer()), list: t.Array(t.String()) }),
      rows: t.Array(t.Object({ id: t.String(), deep: t.Object({ x: t.Number() }) })),
    });
    expect(settingPaths(schema)).toEqual(['a', 'b.c', 'b.list', 'rows[].id', 'rows[].deep.x']);
    // A setting added to the schema without a row fails the first test.
    expect(settingPaths()).toContain('features.api_access');
    expect(settingPaths()).toContain('monetization.subscription_tiers[].limits.requests_per_day');
  });

  test('docs/blueprint.md carries exactly the generated table', async () => {
    const doc = await Bun.file(join(import.meta.dir, '..', '..', 'docs', 'blueprint.md')).text();
    expect(doc).toContain(TABLE_BEGIN);
    expect(doc).toContain(TABLE_END);
    // Run `bun run scripts/blueprint-settings.ts --write` when this fails.
    expect(withEnforcementTable(doc)).toBe(doc);
    expect(doc).toContain(renderEnforcementTable());
  });

  test('a stale docs table is detected', () => {
    const stale = `x\n${TABLE_BEGIN}\n| old |\n${TABLE_END}\ny`;
    expect(withEnforcementTable(stale)).not.toBe(stale);
    expect(() => withEnforcementTable('no markers')).toThrow('markers');
  });

  test('what the issue names is enforced now', () => {
    for (const path of [
      'features.api_access',
      'ai_settings.quality_gates.max_output_tokens',
      'ai_settings.cost_optimization',
      'governance.user_verification.email_required',
    ]) {
      expect([path, ENFORCEMENT[path]!.status]).toEqual([path, 'enforced']);
    }
    expect(ENFORCEMENT['ai_settings.safety_filters.level']!.status).toBe('conditional');
    expect(ENFORCEMENT['governance.data_retention.chat_history_days']!.status).toBe('planned');
  });
});

describe('settings a platform sets that nothing enforces', () => {
  const names = (bp: ReturnType<typeof templateBlueprint>, classifier = false) =>
    unenforcedSettings(bp, { classifier }).map((s) => s.setting);

  test('blank: only the deleted-user grace period (nothing else it sets asks for anything)', () => {
    expect(names(templateBlueprint('blank'))).toEqual(['governance.data_retention.deleted_user_grace_days']);
  });

  test('creator: billing, retention, and the safety level without a classifier', () => {
    const bp = templateBlueprint('creator');
    const got = names(bp);
    for (const s of [
      'monetization.pricing_strategy',
      'monetization.payment_processing.provider',
      // Tier limits: enforced on an instance that bills (none here).
      'monetization.subscription_tiers[].limits.agents',
      'governance.data_retention.chat_history_days',
      'governance.content_moderation.enabled',
      'ai_settings.safety_filters.level',
    ]) {
      expect(got).toContain(s);
    }
    // Enforced settings are never listed; the level is enforced once a classifier exists.
    expect(got).not.toContain('features.api_access');
    expect(got).not.toContain('features.agent_creation');
    expect(got).not.toContain('features.agent_marketplace');
    expect(got).not.toContain('features.viral_sharing');
    expect(got).not.toContain('ai_settings.cost_optimization');
    expect(names(bp, true)).not.toContain('ai_settings.safety_filters.level');
    const row = unenforcedSettings(bp, noClassifier).find(
      (s) => s.setting === 'features.analytics_dashboard',
    );
    expect(row).toEqual({
      setting: 'features.analytics_dashboard',
      gates: 'the analytics dashboard',
      enforced_by: 'portal (issue 11)',
    });
  });

  test('values that ask for nothing are not listed; compliance packs: hipaa is enforced, soc2 is not', () => {
    const bp = templateBlueprint('blank');
    bp.governance.compliance_packs = ['hipaa'];
    bp.ai_settings.quality_gates.min_response_quality = 0;
    expect(names(bp)).not.toContain('governance.compliance_packs');
    expect(names(bp)).not.toContain('ai_settings.quality_gates.min_response_quality');
    bp.governance.compliance_packs = ['hipaa', 'soc2'];
    bp.ai_settings.quality_gates.min_response_quality = 0.5;
    expect(names(bp)).toContain('governance.compliance_packs');
    expect(names(bp)).toContain('ai_settings.quality_gates.min_response_quality');
    // Every approval process is enforced now (the marketplace).
    bp.governance.agent_approval_process = 'manual';
    expect(names(bp)).not.toContain('governance.agent_approval_process');
    // The marketplace's split is enforced (billing's sales).
    bp.monetization.creator_revenue_share = 70;
    bp.monetization.marketplace_commission = 30;
    expect(names(bp)).not.toContain('monetization.creator_revenue_share');
    expect(names(bp)).not.toContain('monetization.marketplace_commission');
  });
});

describe('blueprint warnings', () => {
  test('a safety level above minimal with no classifier is a warning, never silent', () => {
    const bp = templateBlueprint('business');
    expect(blueprintWarnings(bp, noClassifier)).toEqual([
      "ai_settings.safety_filters.level is 'maximum' but this instance has no safety_classifier configured: prompts are not classified (blocked_terms and redact_pii still apply)",
    ]);
    expect(blueprintWarnings(bp, { classifier: true })).toEqual([]);
    expect(blueprintWarnings(templateBlueprint('blank'), noClassifier)).toEqual([]);
  });
});
