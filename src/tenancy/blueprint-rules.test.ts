import { describe, expect, test } from 'bun:test';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { isAppError } from '../shared/errors.ts';
import type { PlatformBlueprint } from './blueprint.models.ts';
import { mergeBlueprintUpdate, templateBlueprint } from './blueprint.ts';
import {
  auditedChanges,
  authorityOf,
  type BlueprintEditor,
  blueprintDiff,
  blueprintRulesMarkdown,
  checkBlueprintChange,
} from './blueprint-rules.ts';

const base = (packs: PlatformBlueprint['governance']['compliance_packs'] = []): PlatformBlueprint => {
  const bp = templateBlueprint('creator');
  bp.identity.name = 'Acme';
  bp.governance.compliance_packs = packs;
  return bp;
};

/** What a change by `by` answers: 'ok' with the paths changed, or the error code and paths refused. */
function outcome(
  by: BlueprintEditor,
  partial: unknown,
  packs: PlatformBlueprint['governance']['compliance_packs'] = [],
) {
  const current = base(packs);
  try {
    const changes = checkBlueprintChange(current, mergeBlueprintUpdate(current, partial), by);
    return { ok: changes.map((c) => c.path) };
  } catch (e) {
    if (!isAppError(e)) throw e;
    return { code: e.code, status: e.status, paths: (e.details ?? []).map((d) => d.path) };
  }
}

// who, partial blueprint, packs in force → what happens. The rule of docs/blueprint.md, by case.
const CASES: [
  string,
  BlueprintEditor,
  unknown,
  PlatformBlueprint['governance']['compliance_packs'],
  unknown,
][] = [
  [
    'platform rebrands',
    'platform',
    { identity: { name: 'New', branding: { colors: { primary: '#000' } } } },
    [],
    { ok: ['/identity/branding/colors/primary', '/identity/name'] },
  ],
  [
    'platform sets a logo',
    'platform',
    { identity: { branding: { logo: 'https://cdn.example.com/l.png' } } },
    [],
    { ok: ['/identity/branding/logo'] },
  ],
  [
    'platform toggles a feature',
    'platform',
    { features: { agent_marketplace: false } },
    [],
    { ok: ['/features/agent_marketplace'] },
  ],
  [
    'platform turns API access off',
    'platform',
    { features: { api_access: false } },
    [],
    { ok: ['/features/api_access'] },
  ],
  [
    'platform tunes AI safety',
    'platform',
    { ai_settings: { safety_filters: { level: 'maximum', redact_pii: true } } },
    [],
    { ok: ['/ai_settings/safety_filters/level', '/ai_settings/safety_filters/redact_pii'] },
  ],
  [
    'platform narrows providers',
    'platform',
    { ai_settings: { allowed_providers: ['local'] } },
    [],
    { ok: ['/ai_settings/allowed_providers'] },
  ],
  [
    'platform changes retention',
    'platform',
    { governance: { data_retention: { chat_history_days: 30 } } },
    [],
    { ok: ['/governance/data_retention/chat_history_days'] },
  ],
  [
    'platform: cloud_fallback is the operator’s',
    'platform',
    { ai_settings: { cloud_fallback: 'never' } },
    [],
    { code: 'blueprint.operator_only', status: 403, paths: ['/ai_settings/cloud_fallback'] },
  ],
  [
    'platform: the sender address is the operator’s (the relay sends as it)',
    'platform',
    { identity: { email_from: 'ceo@bank.example' } },
    [],
    { code: 'blueprint.operator_only', status: 403, paths: ['/identity/email_from'] },
  ],
  [
    'platform: white_label is the operator’s',
    'platform',
    { features: { white_label: true } },
    [],
    { code: 'blueprint.operator_only', status: 403, paths: ['/features/white_label'] },
  ],
  [
    'platform: white_label_mobile is the operator’s',
    'platform',
    { features: { white_label_mobile: true } },
    [],
    { code: 'blueprint.operator_only', status: 403, paths: ['/features/white_label_mobile'] },
  ],
  [
    'platform: compliance packs are the operator’s',
    'platform',
    { governance: { compliance_packs: ['gdpr'] } },
    [],
    { code: 'blueprint.operator_only', status: 403, paths: ['/governance/compliance_packs'] },
  ],
  [
    'platform: the BAA is the operator’s',
    'platform',
    { governance: { hipaa_baa_signed: true } },
    ['hipaa'],
    { code: 'blueprint.operator_only', status: 403, paths: ['/governance/hipaa_baa_signed'] },
  ],
  [
    'platform: monetization is the operator’s',
    'platform',
    { monetization: { marketplace_commission: 20, creator_revenue_share: 80 } },
    [],
    {
      code: 'blueprint.operator_only',
      status: 403,
      paths: ['/monetization/creator_revenue_share', '/monetization/marketplace_commission'],
    },
  ],
  [
    'platform: a new optional section under monetization',
    'platform',
    { monetization: { usage_pricing: { markup_percent: 5 } } },
    [],
    { code: 'blueprint.operator_only', status: 403, paths: ['/monetization/usage_pricing'] },
  ],
  [
    'platform: one refused path refuses the whole change',
    'platform',
    { identity: { name: 'X' }, ai_settings: { cloud_fallback: 'never' } },
    [],
    { code: 'blueprint.operator_only', status: 403, paths: ['/ai_settings/cloud_fallback'] },
  ],
  [
    'platform under HIPAA: providers locked',
    'platform',
    { ai_settings: { allowed_providers: ['cloud'] } },
    ['hipaa'],
    { code: 'blueprint.operator_only', status: 403, paths: ['/ai_settings/allowed_providers'] },
  ],
  [
    'platform under HIPAA: redaction locked',
    'platform',
    { ai_settings: { safety_filters: { redact_pii: true } } },
    ['hipaa'],
    { code: 'blueprint.operator_only', status: 403, paths: ['/ai_settings/safety_filters/redact_pii'] },
  ],
  [
    'platform under HIPAA: retention locked',
    'platform',
    { governance: { data_retention: { chat_history_days: 1 } } },
    ['hipaa'],
    { code: 'blueprint.operator_only', status: 403, paths: ['/governance/data_retention/chat_history_days'] },
  ],
  [
    'platform under HIPAA: branding still its own',
    'platform',
    { identity: { name: 'Clinic' } },
    ['hipaa'],
    { ok: ['/identity/name'] },
  ],
  [
    'platform under SOC 2: audit retention locked',
    'platform',
    { governance: { data_retention: { audit_log_days: 1 } } },
    ['soc2'],
    { code: 'blueprint.operator_only', status: 403, paths: ['/governance/data_retention/audit_log_days'] },
  ],
  [
    'platform under SOC 2: chat retention its own',
    'platform',
    { governance: { data_retention: { chat_history_days: 10 } } },
    ['soc2'],
    { ok: ['/governance/data_retention/chat_history_days'] },
  ],
  [
    'platform under GDPR: erasure grace locked',
    'platform',
    { governance: { data_retention: { deleted_user_grace_days: 90 } } },
    ['gdpr'],
    {
      code: 'blueprint.operator_only',
      status: 403,
      paths: ['/governance/data_retention/deleted_user_grace_days'],
    },
  ],
  [
    'operator: cloud_fallback',
    'operator',
    { ai_settings: { cloud_fallback: 'never' } },
    [],
    { ok: ['/ai_settings/cloud_fallback'] },
  ],
  [
    'operator: packs and BAA',
    'operator',
    { governance: { compliance_packs: ['hipaa'], hipaa_baa_signed: true } },
    [],
    { ok: ['/governance/compliance_packs', '/governance/hipaa_baa_signed'] },
  ],
  [
    'operator: what HIPAA locks',
    'operator',
    { ai_settings: { allowed_providers: ['cloud'] } },
    ['hipaa'],
    { ok: ['/ai_settings/allowed_providers'] },
  ],
  [
    'operator: monetization',
    'operator',
    { monetization: { pricing_strategy: 'usage' } },
    [],
    { ok: ['/monetization/pricing_strategy'] },
  ],
  [
    'nobody: identity.domain (domain add|remove)',
    'operator',
    { identity: { domain: 'ai.example.com' } },
    [],
    { code: 'blueprint.not_changeable', status: 400, paths: ['/identity/domain'] },
  ],
  [
    'nobody: identity.domain, for a platform too',
    'platform',
    { identity: { domain: 'ai.example.com' } },
    [],
    { code: 'blueprint.not_changeable', status: 400, paths: ['/identity/domain'] },
  ],
  [
    'invalid input: the create validator answers',
    'platform',
    { identity: { branding: { colors: { primary: 'red' } } } },
    [],
    { code: 'blueprint.invalid', status: 400, paths: ['/identity/branding/colors/primary'] },
  ],
  [
    'invalid input: null is not "delete"',
    'operator',
    { identity: { branding: { logo: null } } },
    [],
    { code: 'blueprint.invalid', status: 400, paths: ['/identity/branding/logo'] },
  ],
  [
    'invalid input: version stays 1',
    'operator',
    { version: 2 },
    [],
    { code: 'blueprint.invalid', status: 400, paths: ['/version'] },
  ],
  [
    'invalid input: not an object',
    'operator',
    ['x'],
    [],
    { code: 'blueprint.invalid', status: 400, paths: [''] },
  ],
  ['no change: nothing to do', 'platform', { identity: { name: 'Acme' } }, [], { ok: [] }],
];

describe('who may change what of a blueprint (docs/blueprint.md, "Changing a platform")', () => {
  for (const [name, by, partial, packs, expected] of CASES) {
    test(name, () => expect(outcome(by, partial, packs)).toEqual(expected as never));
  }
});

describe('the rule lookup', () => {
  test('the longest rule wins; a change above a stricter rule takes the stricter one', () => {
    expect(authorityOf('/features/agent_creation').who).toBe('platform');
    expect(authorityOf('/features/white_label').who).toBe('operator');
    expect(authorityOf('/identity/domain').who).toBe('nobody');
    expect(authorityOf('/identity').who).toBe('nobody');
    expect(authorityOf('/ai_settings').who).toBe('operator');
    expect(authorityOf('/nonsense').who).toBe('nobody');
  });

  test('every setting of the schema is covered by a rule (nothing falls to "not a blueprint setting")', () => {
    for (const c of blueprintDiff({}, base())) {
      expect({ path: c.path, why: authorityOf(c.path).why }).not.toEqual({
        path: c.path,
        why: 'not a blueprint setting',
      });
    }
  });
});

describe('the diff', () => {
  test('objects by key, arrays whole, absent values left out', () => {
    expect(blueprintDiff({ a: { b: 1, c: [1, 2] }, d: 'x' }, { a: { b: 2, c: [1, 2, 3] }, e: true })).toEqual(
      [
        { path: '/a/b', from: 1, to: 2 },
        { path: '/a/c', from: [1, 2], to: [1, 2, 3] },
        { path: '/d', from: 'x' },
        { path: '/e', to: true },
      ],
    );
  });

  test('the audit keeps long values (a data: logo) by hash and length', () => {
    const logo = `data:image/png;base64,${'A'.repeat(1000)}`;
    const [c] = auditedChanges([{ path: '/identity/branding/logo', to: logo }]);
    expect(c!.path).toBe('/identity/branding/logo');
    expect(c!.to).toMatchObject({ length: logo.length + 2 });
    expect((c!.to as { sha256: string }).sha256).toMatch(/^[0-9a-f]{64}$/);
    expect('from' in c!).toBe(false);
  });
});

test('docs/blueprint.md carries the rule table exactly as the code states it', () => {
  const doc = readFileSync(join(import.meta.dir, '..', '..', 'docs', 'blueprint.md'), 'utf8');
  expect(doc).toContain(blueprintRulesMarkdown());
});
