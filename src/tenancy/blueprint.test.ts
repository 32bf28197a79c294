import { describe, expect, test } from 'bun:test';
import { readdirSync, readFileSync } from 'node:fs';
import { basename, extname, join } from 'node:path';
import { AppError } from '../shared/errors.ts';
import type { PartialBlueprint, PlatformBlueprint } from './blueprint.models.ts';
import {
  assertBlueprintDepth,
  deepMerge,
  isTemplateName,
  MAX_BLUEPRINT_DEPTH,
  parseBlueprintText,
  resolveBlueprint,
  TEMPLATES,
  templateBlueprint,
  titleFromSlug,
  validateBlueprint,
} from './blueprint.ts';

const EXAMPLES = join(import.meta.dir, '../../examples/blueprints');

/** Runs `fn`, expecting an AppError, and returns it. */
function appError(fn: () => unknown): AppError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(AppError);
    return e as AppError;
  }
  throw new Error('expected an AppError, nothing was thrown');
}

/** Deep-freezes a value so any mutation throws. */
function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null) {
    for (const item of Object.values(value)) deepFreeze(item);
    Object.freeze(value);
  }
  return value;
}

/** A creator template with a name, i.e. a complete valid blueprint. */
function named(template: (typeof TEMPLATES)[number] = 'creator'): PlatformBlueprint {
  const b = templateBlueprint(template);
  b.identity.name = 'Test Platform';
  return b;
}

describe('templates', () => {
  test('there are exactly the four documented templates', () => {
    expect([...TEMPLATES]).toEqual(['creator', 'business', 'education', 'blank']);
    expect(isTemplateName('creator')).toBe(true);
    expect(isTemplateName('enterprise')).toBe(false);
  });

  for (const name of TEMPLATES) {
    test(`${name} validates once named, and only the name placeholder is missing`, () => {
      expect(validateBlueprint(named(name))).toEqual({ ok: true, value: named(name) });
      const raw = validateBlueprint(templateBlueprint(name));
      expect(raw.ok).toBe(false);
      if (!raw.ok) expect(raw.details.map((d) => d.path)).toEqual(['/identity/name']);
    });

    test(`${name} splits marketplace revenue to exactly 100`, () => {
      const m = templateBlueprint(name).monetization;
      expect(m.creator_revenue_share + m.marketplace_commission).toBe(100);
    });
  }

  test('templates carry their documented defaults', () => {
    const creator = templateBlueprint('creator');
    expect(creator.monetization.pricing_strategy).toBe('freemium');
    expect(creator.monetization.creator_revenue_share).toBe(70);
    expect(creator.monetization.marketplace_commission).toBe(30);
    expect(creator.monetization.subscription_tiers.map((t) => [t.id, t.price.amount])).toEqual([
      ['free', 0],
      ['pro', 1900],
      ['enterprise', 49900],
    ]);
    expect(creator.ai_settings.safety_filters.level).toBe('moderate');
    expect(creator.ai_settings.cloud_fallback).toBe('allowed');
    expect(creator.governance.agent_approval_process).toBe('automatic');
    const on = (b: PlatformBlueprint) =>
      Object.entries(b.features)
        .filter(([, v]) => v)
        .map(([k]) => k)
        .sort();
    expect(on(creator)).toEqual(
      [
        'agent_creation',
        'agent_marketplace',
        'analytics_dashboard',
        'api_access',
        'revenue_reporting',
        'viral_sharing',
      ].sort(),
    );

    const business = templateBlueprint('business');
    expect(business.monetization.pricing_strategy).toBe('subscription');
    expect(business.monetization.subscription_tiers.map((t) => t.id)).toEqual([
      'team',
      'business',
      'enterprise',
    ]);
    expect(business.monetization.usage_pricing?.markup_percent).toBe(20);
    expect(business.monetization.enterprise_contracts).toBe(true);
    expect(business.ai_settings.safety_filters).toMatchObject({ level: 'maximum', redact_pii: true });
    expect(business.governance.agent_approval_process).toBe('manual');
    expect(business.governance.compliance_packs).toEqual(['soc2']);
    for (const f of [
      'sso_integration',
      'compliance_reporting',
      'user_management',
      'analytics_dashboard',
      'api_access',
      'white_label',
    ] as const) {
      expect(business.features[f]).toBe(true);
    }

    const education = templateBlueprint('education');
    expect(education.monetization.subscription_tiers.map((t) => t.id)).toEqual([
      'basic',
      'premium',
      'family',
    ]);
    expect(education.ai_settings.safety_filters).toMatchObject({
      level: 'maximum',
      age_appropriate_filtering: true,
    });
    expect(education.features.progress_tracking).toBe(true);
    expect(education.governance.content_moderation).toEqual({
      enabled: true,
      level: 'maximum',
      human_review: true,
    });
    expect(education.governance.user_verification.age_verification).toBe(true);
    expect(education.governance.agent_approval_process).toBe('manual');

    const blank = templateBlueprint('blank');
    expect(blank.monetization.subscription_tiers).toEqual([]);
    expect(blank.monetization.payment_processing.provider).toBe('none');
    // On: api_access and sso_integration (they do nothing until an admin makes a key or sets SSO up).
    expect(Object.entries(blank.features).filter(([, v]) => v)).toEqual([
      ['api_access', true],
      ['sso_integration', true],
    ]);
    expect(blank.ai_settings.safety_filters.level).toBe('minimal');
  });

  test('each template has its own palette', () => {
    const primaries = TEMPLATES.map((n) => templateBlueprint(n).identity.branding.colors.primary);
    expect(new Set(primaries).size).toBe(4);
  });

  test('templateBlueprint returns a fresh deep copy each time', () => {
    const a = templateBlueprint('creator');
    a.monetization.subscription_tiers[0]!.price.amount = 12345;
    a.features.white_label = true;
    const b = templateBlueprint('creator');
    expect(b.monetization.subscription_tiers[0]!.price.amount).toBe(0);
    expect(b.features.white_label).toBe(false);
  });
});

describe('deepMerge', () => {
  test('merges objects recursively, replaces arrays and scalars', () => {
    const base = { a: { b: 1, c: [1, 2, 3], d: { e: 'x' } }, f: true };
    const merged = deepMerge(base, { a: { c: [9], d: { g: 2 } }, f: false });
    expect(merged).toEqual({ a: { b: 1, c: [9], d: { e: 'x', g: 2 } }, f: false });
  });

  test('keeps null (validation reports it) and skips undefined', () => {
    expect(deepMerge({ a: 1, b: 2 }, { a: null, b: undefined })).toEqual({ a: null, b: 2 });
  });

  test('does not mutate either input, and the result shares nothing with them', () => {
    const base = deepFreeze(named());
    const partial = deepFreeze({
      identity: { branding: { colors: { primary: '#000000' } } },
      features: { white_label: true },
    });
    const merged = deepMerge(base, partial) as PlatformBlueprint;
    expect(merged.identity.branding.colors.primary).toBe('#000000');
    expect(base.identity.branding.colors.primary).toBe('#7c3aed');
    merged.monetization.subscription_tiers[0]!.name = 'changed';
    expect(base.monetization.subscription_tiers[0]!.name).toBe('Free');
  });

  test('a __proto__ key stays a plain own field (no prototype pollution)', () => {
    const merged = deepMerge({}, JSON.parse('{"__proto__": {"polluted": true}}')) as Record<string, unknown>;
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect(Object.getPrototypeOf(merged)).toBe(Object.prototype);
    expect(Object.keys(merged)).toEqual(['__proto__']);
  });
});

describe('resolveBlueprint', () => {
  test('a partial over a template changes only what it names', () => {
    const partial: PartialBlueprint = {
      identity: { branding: { colors: { primary: '#112233' } } },
      monetization: { creator_revenue_share: 80, marketplace_commission: 20 },
      features: { collaborative_agents: true },
    };
    const b = resolveBlueprint({ template: 'creator', blueprint: partial, slug: 'acme' });
    const expected = named('creator');
    expected.identity.name = 'Acme';
    expected.identity.branding.colors.primary = '#112233';
    expected.monetization.creator_revenue_share = 80;
    expected.monetization.marketplace_commission = 20;
    expected.features.collaborative_agents = true;
    expect(b).toEqual(expected);
  });

  test('defaults to the blank template', () => {
    const b = resolveBlueprint({ slug: 'acme' });
    const expected = named('blank');
    expected.identity.name = 'Acme';
    expect(b).toEqual(expected);
  });

  test('name and domain arguments override the blueprint', () => {
    const b = resolveBlueprint({
      template: 'education',
      blueprint: { identity: { name: 'From File', domain: 'file.example.com' } },
      name: 'Brightpath',
      domain: 'learn.example.edu',
      slug: 'bp',
    });
    expect(b.identity.name).toBe('Brightpath');
    expect(b.identity.domain).toBe('learn.example.edu');
  });

  test('the blueprint name wins over the slug; the slug is the last resort, title-cased', () => {
    expect(
      resolveBlueprint({ blueprint: { identity: { name: 'Named' } }, slug: 'acme-labs' }).identity.name,
    ).toBe('Named');
    expect(resolveBlueprint({ template: 'creator', slug: 'acme-labs' }).identity.name).toBe('Acme Labs');
    expect(titleFromSlug('acme_ai-labs2')).toBe('Acme Ai Labs2');
    expect(titleFromSlug('x')).toBe('X');
  });

  test('does not mutate the partial it is given', () => {
    const partial = deepFreeze({
      identity: { name: 'Frozen' },
      ai_settings: { allowed_providers: ['ollama'] },
    });
    const b = resolveBlueprint({ template: 'business', blueprint: partial, slug: 's' });
    b.ai_settings.allowed_providers.push('openai');
    expect(partial.ai_settings.allowed_providers).toEqual(['ollama']);
  });

  test('an unknown template is a 400 naming the templates', () => {
    const e = appError(() => resolveBlueprint({ template: 'enterprise', slug: 'x' }));
    expect(e.code).toBe('blueprint.unknown_template');
    expect(e.status).toBe(400);
    expect(e.message).toBe(
      "template 'enterprise' does not exist; use one of: creator, business, education, blank",
    );
    expect(e.details).toEqual([
      { path: '/template', reason: 'must be one of: creator, business, education, blank' },
    ]);
  });

  for (const bad of [null, [], 'identity: x', 42]) {
    test(`a blueprint that is not an object (${JSON.stringify(bad)}) is rejected at path ''`, () => {
      const e = appError(() => resolveBlueprint({ blueprint: bad, slug: 'x' }));
      expect(e.code).toBe('blueprint.invalid');
      expect(e.details?.map((d) => d.path)).toEqual(['']);
    });
  }

  test('the error message counts the fields and names the first ones', () => {
    const e = appError(() =>
      resolveBlueprint({
        template: 'creator',
        blueprint: { monetization: { currency: 'USD' }, features: { api_acess: true } },
        slug: 'x',
      }),
    );
    expect(e.status).toBe(400);
    expect(e.message).toBe(
      "the blueprint has 2 invalid field(s): /features/api_acess (unknown field (did you mean 'api_access'?)); " +
        "/monetization/currency (must be a lowercase ISO 4217 currency code such as 'usd')",
    );
    expect(e.toJSON().error.details).toHaveLength(2);
  });
});

describe('validation errors', () => {
  const tier = (id: string, amount: number | string = 100, currency = 'usd') => ({
    id,
    name: id.toUpperCase(),
    price: { amount, currency },
    interval: 'month',
  });

  // Each row: a partial merged over a template, and exactly the paths that must be reported.
  const cases: { name: string; template?: string; partial: unknown; paths: string[]; reasons?: string[] }[] =
    [
      {
        name: 'percentage 101',
        partial: { monetization: { marketplace_commission: 101 } },
        paths: ['/monetization/marketplace_commission'],
        reasons: ['must be at most 100, got 101'],
      },
      {
        name: 'negative money',
        partial: { monetization: { agent_creation_fees: { amount: -5 } } },
        paths: ['/monetization/agent_creation_fees/amount'],
      },
      {
        name: 'money as a float',
        partial: { monetization: { subscription_tiers: [tier('free', 0), tier('pro', 9.99)] } },
        paths: ['/monetization/subscription_tiers/1/price/amount'],
        reasons: ['must be a whole number of minor units ≥ 0 (e.g. 1999 for 19.99)'],
      },
      {
        name: 'money as a string',
        partial: { monetization: { agent_creation_fees: { amount: '100' } } },
        paths: ['/monetization/agent_creation_fees/amount'],
      },
      {
        name: "currency 'USD' (uppercase)",
        partial: { monetization: { currency: 'USD' } },
        paths: ['/monetization/currency'],
      },
      {
        name: "color 'red'",
        partial: { identity: { branding: { colors: { primary: 'red' } } } },
        paths: ['/identity/branding/colors/primary'],
        reasons: ['must be a hex color like #1a2b3c or #abc'],
      },
      {
        name: 'unknown feature key (typo)',
        partial: { features: { agent_creaton: true } },
        paths: ['/features/agent_creaton'],
        reasons: ["unknown field (did you mean 'agent_creation'?)"],
      },
      {
        name: 'unknown section',
        partial: { billing: { plan: 'x' } },
        paths: ['/billing'],
        reasons: ['unknown field'],
      },
      {
        name: "pricing_strategy 'free'",
        partial: { monetization: { pricing_strategy: 'free' } },
        paths: ['/monetization/pricing_strategy'],
        reasons: ['must be one of: freemium, subscription, usage, marketplace, custom'],
      },
      {
        name: "cloud_fallback 'sometimes'",
        partial: { ai_settings: { cloud_fallback: 'sometimes' } },
        paths: ['/ai_settings/cloud_fallback'],
        reasons: ['must be one of: allowed, never'],
      },
      {
        name: "compliance pack 'pci'",
        partial: { governance: { compliance_packs: ['soc2', 'pci'] } },
        paths: ['/governance/compliance_packs/1'],
        reasons: ['must be one of: hipaa, soc2, gdpr'],
      },
      {
        name: 'duplicate compliance pack',
        partial: { governance: { compliance_packs: ['gdpr', 'soc2', 'gdpr'] } },
        paths: ['/governance/compliance_packs/2'],
      },
      {
        name: 'duplicate tier ids',
        partial: { monetization: { subscription_tiers: [tier('free', 0), tier('pro'), tier('free', 500)] } },
        paths: ['/monetization/subscription_tiers/2/id'],
        reasons: ["duplicate tier id 'free' (already at /monetization/subscription_tiers/0/id)"],
      },
      {
        name: 'tier id not a slug',
        partial: { monetization: { subscription_tiers: [tier('Pro Plan')] } },
        paths: ['/monetization/subscription_tiers/0/id'],
      },
      {
        name: 'tier without an interval',
        partial: {
          monetization: {
            subscription_tiers: [{ id: 'pro', name: 'Pro', price: { amount: 1, currency: 'usd' } }],
          },
        },
        paths: ['/monetization/subscription_tiers/0/interval'],
        reasons: ['is required'],
      },
      {
        name: 'revenue split 80 + 30',
        partial: { monetization: { creator_revenue_share: 80 } },
        paths: ['/monetization/creator_revenue_share'],
        reasons: ['creator_revenue_share (80) + marketplace_commission (30) must equal 100, got 110'],
      },
      {
        name: 'tier currency differs from the platform currency',
        partial: { monetization: { subscription_tiers: [tier('free', 0), tier('pro', 900, 'eur')] } },
        paths: ['/monetization/subscription_tiers/1/price/currency'],
        reasons: ["must equal monetization.currency 'usd', got 'eur'"],
      },
      {
        name: 'switching currency without re-pricing tiers and fees',
        partial: { monetization: { currency: 'eur' } },
        paths: [
          '/monetization/agent_creation_fees/currency',
          '/monetization/subscription_tiers/0/price/currency',
          '/monetization/subscription_tiers/1/price/currency',
          '/monetization/subscription_tiers/2/price/currency',
        ],
      },
      {
        name: 'custom_css closing the style element',
        partial: { identity: { branding: { custom_css: 'a{color:red}</STYLE><script>alert(1)</script>' } } },
        paths: ['/identity/branding/custom_css'],
        reasons: ['must not contain </style'],
      },
      {
        name: "allowed_providers with 'Bad Id'",
        partial: { ai_settings: { allowed_providers: ['ollama', 'Bad Id'] } },
        paths: ['/ai_settings/allowed_providers/1'],
      },
      {
        name: 'duplicate providers',
        partial: { ai_settings: { allowed_providers: ['ollama', 'openai', 'ollama'] } },
        paths: ['/ai_settings/allowed_providers/2'],
      },
      {
        name: 'blank name',
        partial: { identity: { name: '   ' } },
        paths: ['/identity/name'],
        reasons: ['must contain a non-space character and no control characters'],
      },
      {
        name: 'null is an error, not a delete',
        partial: { identity: { branding: { colors: null } } },
        paths: ['/identity/branding/colors'],
        reasons: ["must be an object, not null (omit the field to keep the template's value)"],
      },
      {
        name: 'domain without a dot',
        partial: { identity: { domain: 'localhost' } },
        paths: ['/identity/domain'],
      },
      {
        name: 'uppercase domain',
        partial: { identity: { domain: 'Learn.Example.edu' } },
        paths: ['/identity/domain'],
        reasons: ['must be a lowercase DNS name with at least one dot, like learn.example.edu'],
      },
      {
        name: 'logo with a javascript: URL',
        partial: { identity: { branding: { logo: 'javascript:alert(1)' } } },
        paths: ['/identity/branding/logo'],
      },
      {
        name: 'font that escapes the CSS declaration',
        partial: { identity: { branding: { fonts: { body: 'Inter; } body { display:none' } } } },
        paths: ['/identity/branding/fonts/body'],
      },
      {
        name: 'a font stack instead of one family name',
        partial: { identity: { branding: { fonts: { heading: 'Inter, sans-serif' } } } },
        paths: ['/identity/branding/fonts/heading'],
      },
      {
        name: 'version 2',
        partial: { version: 2 },
        paths: ['/version'],
        reasons: ['must be 1'],
      },
      {
        name: 'quality and token limits out of range',
        template: 'business',
        partial: { ai_settings: { quality_gates: { min_response_quality: 1.5, max_output_tokens: 0 } } },
        paths: [
          '/ai_settings/quality_gates/max_output_tokens',
          '/ai_settings/quality_gates/min_response_quality',
        ],
      },
      {
        name: 'several errors at once are all listed, sorted by path',
        template: 'education',
        partial: {
          identity: { branding: { colors: { text: '#12' } } },
          monetization: {
            currency: 'USD',
            marketplace_commission: -1,
            payment_processing: { provider: 'paypal' },
          },
          features: { progres_tracking: true, api_access: 'yes' },
          ai_settings: { safety_filters: { level: 'extreme' } },
          governance: { user_verification: { minimum_age: 200 }, data_retention: { chat_history_days: 1.5 } },
        },
        paths: [
          '/ai_settings/safety_filters/level',
          '/features/api_access',
          '/features/progres_tracking',
          '/governance/data_retention/chat_history_days',
          '/governance/user_verification/minimum_age',
          '/identity/branding/colors/text',
          '/monetization/currency',
          '/monetization/marketplace_commission',
          '/monetization/payment_processing/provider',
        ],
      },
    ];

  test('the table covers at least 14 cases', () => {
    expect(cases.length).toBeGreaterThanOrEqual(14);
  });

  for (const c of cases) {
    test(c.name, () => {
      const e = appError(() =>
        resolveBlueprint({ template: c.template ?? 'creator', blueprint: c.partial, slug: 'x' }),
      );
      expect(e.code).toBe('blueprint.invalid');
      expect(e.status).toBe(400);
      expect(e.details?.map((d) => d.path)).toEqual(c.paths);
      if (c.reasons) expect(e.details?.map((d) => d.reason)).toEqual(c.reasons);
    });
  }

  test('paths sort numerically, so /10 comes after /2', () => {
    const tiers = Array.from({ length: 12 }, (_, i) => tier(i === 2 || i === 10 ? `Bad${i}` : `t${i}`));
    const result = validateBlueprint(deepMerge(named(), { monetization: { subscription_tiers: tiers } }));
    expect(result.ok).toBe(false);
    if (!result.ok) {
      expect(result.details.map((d) => d.path)).toEqual([
        '/monetization/subscription_tiers/2/id',
        '/monetization/subscription_tiers/10/id',
      ]);
    }
  });

  test('a missing section is reported once as required', () => {
    const { features: _drop, ...rest } = named();
    expect(validateBlueprint(rest)).toEqual({
      ok: false,
      details: [{ path: '/features', reason: 'is required' }],
    });
  });

  test('non-objects fail at the root', () => {
    expect(validateBlueprint('blueprint')).toEqual({
      ok: false,
      details: [{ path: '', reason: "must be an object, got 'blueprint'" }],
    });
  });

  test('valid optional fields pass', () => {
    const b = deepMerge(named('business'), {
      identity: {
        domain: 'ai.example.co.uk',
        branding: { logo: 'data:image/png;base64,iVBORw0KGgo=', colors: { primary: '#ABC' } },
        mobile_app_config: {
          enabled: true,
          app_name: 'Acme',
          bundle_id: 'com.acme.app',
          primary_color: '#123456',
        },
      },
      monetization: { payment_processing: { provider: 'stripe', statement_descriptor: 'ACME AI' } },
      ai_settings: { custom_models: [{ alias: 'fast', provider: 'ollama', model: 'llama3.1:8b' }] },
      governance: { user_verification: { email_required: true, age_verification: true, minimum_age: 13 } },
    });
    expect(validateBlueprint(b).ok).toBe(true);
  });
});

describe('parseBlueprintText', () => {
  test('parses YAML', () => {
    const text = 'identity:\n  name: Acme\nfeatures:\n  api_access: true\n';
    expect(parseBlueprintText(text, 'acme.yaml')).toEqual({
      identity: { name: 'Acme' },
      features: { api_access: true },
    });
    expect(parseBlueprintText(text, 'acme.YML')).toEqual({
      identity: { name: 'Acme' },
      features: { api_access: true },
    });
  });

  test('parses JSON', () => {
    expect(parseBlueprintText('{"identity": {"name": "Acme"}}', 'acme.json')).toEqual({
      identity: { name: 'Acme' },
    });
  });

  test('other extensions try JSON, then YAML', () => {
    expect(parseBlueprintText('{"a": 1}', 'blueprint')).toEqual({ a: 1 });
    expect(parseBlueprintText('a: 1\n', 'blueprint.txt')).toEqual({ a: 1 });
  });

  test('a JSON syntax error names the file, line and column', () => {
    const e = appError(() =>
      parseBlueprintText('{\n  "identity": {\n    "name": "Acme",\n  }\n}\n', 'acme.json'),
    );
    expect(e.code).toBe('blueprint.unparseable');
    expect(e.status).toBe(400);
    expect(e.message).toStartWith('acme.json is not valid JSON at line 4, column 3');
  });

  test('JSON syntax errors are placed where JSON stops (read on the yaml token tree)', () => {
    // Positions as the strict JSON scanner this replaced found them: a trailing comma, a doubled
    // or missing comma or colon, YAML-only syntax (plain or single-quoted keys, comments,
    // anchors, block collections, a second document), numbers and literals, escapes, the end.
    const rows: [string, number, number][] = [
      ['{"identity": {', 1, 15],
      ['{"a": 01}', 1, 8],
      ['[1,,2]', 1, 4],
      ['{"a" 1}', 1, 6],
      ['{"a":1} x', 1, 9],
      ['{a: 1}', 1, 2],
      ['[1,]', 1, 4],
      ['{"a":1 "b":2}', 1, 8],
      ['{"a":[1,2],}', 1, 12],
      ['{"a":\n  # c\n  1}', 2, 3],
      ['{"a":1}\n---\n{}', 2, 1],
      ['{"a":tru}', 1, 9],
      ['{"a":"x\ty"}', 1, 8],
      ['{"a":"\\x41"}', 1, 8],
      ["{'a':1}", 1, 2],
      ['{"a":+1}', 1, 6],
      ['{"a":1.}', 1, 7],
      ['{"a":1}}', 1, 8],
      ['["a":1]', 1, 5],
      ['- 1', 1, 1],
      ['{"a":"\\u12"}', 1, 8],
      ['{"a":&x 1}', 1, 6],
      ['{"a":["x"y]}', 1, 10],
      ['"unterminated', 1, 14],
      ['', 1, 1],
      ['\uFEFF{}', 1, 1],
    ];
    for (const [text, line, column] of rows) {
      const e = appError(() => parseBlueprintText(text, 'b.json'));
      expect(e.code, text).toBe('blueprint.unparseable');
      expect(e.message, text).toStartWith(`b.json is not valid JSON at line ${line}, column ${column}: `);
    }
  });

  test('a YAML syntax error names the file, line and column', () => {
    const e = appError(() => parseBlueprintText('version: 1\nidentity:\n  name: Acme: Labs\n', 'acme.yaml'));
    expect(e.code).toBe('blueprint.unparseable');
    expect(e.message).toBe(
      'acme.yaml is not valid YAML at line 3, column 9: Nested mappings are not allowed in compact mappings',
    );
    const tab = appError(() => parseBlueprintText('identity:\n\tname: Acme\n', 'tab.yaml'));
    expect(tab.message).toStartWith('tab.yaml is not valid YAML at line 2, column 1');
  });

  test('duplicate YAML keys are an error', () => {
    const e = appError(() => parseBlueprintText('identity:\n  name: A\n  name: B\n', 'dup.yml'));
    expect(e.message).toStartWith('dup.yml is not valid YAML at line 3, column 3');
  });

  test('YAML with several documents is an error', () => {
    expect(appError(() => parseBlueprintText('a: 1\n---\nb: 2\n', 'x.yaml')).code).toBe(
      'blueprint.unparseable',
    );
  });
});

describe('example blueprints', () => {
  const files = readdirSync(EXAMPLES).filter((f) => /\.(ya?ml|json)$/.test(f));

  test('there is one example per template', () => {
    expect(files.map((f) => basename(f, extname(f))).sort()).toEqual([...TEMPLATES].sort());
  });

  for (const file of files) {
    test(`${file} parses, resolves over its template and validates`, () => {
      const template = basename(file, extname(file));
      const partial = parseBlueprintText(
        readFileSync(join(EXAMPLES, file), 'utf8'),
        file,
      ) as PartialBlueprint;
      const b = resolveBlueprint({ template, blueprint: partial, slug: 'example' });
      expect(validateBlueprint(b).ok).toBe(true);
      expect(b.identity.name).toBe(partial.identity?.name ?? '');
      expect(b.identity.name).not.toBe('Example');
      expect(b.identity.domain).toBe(partial.identity?.domain ?? '');
      expect(b.identity.branding.logo).toStartWith('https://');
      expect(b.monetization.creator_revenue_share + b.monetization.marketplace_commission).toBe(100);
    });
  }
});

describe('attacks: deep, wide and aliased input is refused with 400, never a crash', () => {
  const deepA = `/a`.repeat(MAX_BLUEPRINT_DEPTH);
  const deep0 = `/0`.repeat(MAX_BLUEPRINT_DEPTH);
  const yamlLevels = (n: number) =>
    `${Array.from({ length: n }, (_, i) => `${'  '.repeat(i)}a:`).join('\n')} 1\n`;
  const cases: { name: string; parse: () => unknown; code: string; path?: string; message?: string }[] = [
    {
      name: 'JSON objects nested 20,000 deep (file)',
      parse: () => parseBlueprintText(`${'{"a":'.repeat(20_000)}1${'}'.repeat(20_000)}`, 'deep.json'),
      code: 'blueprint.too_deep',
      path: deepA,
    },
    {
      name: 'JSON arrays nested 20,000 deep (file of another extension)',
      parse: () => parseBlueprintText(`${'['.repeat(20_000)}${']'.repeat(20_000)}`, 'deep.txt'),
      code: 'blueprint.too_deep',
      path: deep0,
    },
    {
      name: 'YAML flow sequences nested 20,000 deep',
      parse: () => parseBlueprintText(`${'['.repeat(20_000)}${']'.repeat(20_000)}`, 'deep.yaml'),
      code: 'blueprint.too_deep',
      path: deep0,
      message: 'in deep.yaml at line 1, column 33',
    },
    {
      name: 'YAML flow mappings nested 20,000 deep',
      parse: () => parseBlueprintText(`${'{a: '.repeat(20_000)}1${'}'.repeat(20_000)}`, 'deep.yml'),
      code: 'blueprint.too_deep',
      path: deepA,
    },
    {
      name: 'YAML compact block sequences nested 20,000 deep (- - - ...)',
      parse: () => parseBlueprintText(`${'- '.repeat(20_000)}x\n`, 'deep.yaml'),
      code: 'blueprint.too_deep',
      path: deep0,
    },
    {
      name: 'YAML block mappings one level too deep',
      parse: () => parseBlueprintText(yamlLevels(MAX_BLUEPRINT_DEPTH + 1), 'deep.yaml'),
      code: 'blueprint.too_deep',
      path: deepA,
      message: 'at line 33, column',
    },
    {
      name: 'YAML aliases stacking anchored collections past the limit',
      parse: () =>
        parseBlueprintText(
          [
            `x0: &x0 ${'['.repeat(10)}0${']'.repeat(10)}`,
            `x1: &x1 ${'['.repeat(10)}*x0${']'.repeat(10)}`,
            `x2: &x2 ${'['.repeat(10)}*x1${']'.repeat(10)}`,
            `x3: ${'['.repeat(10)}*x2${']'.repeat(10)}`,
          ].join('\n'),
          'alias.yaml',
        ),
      code: 'blueprint.too_deep',
    },
    {
      name: 'YAML billion laughs (aliases of aliases)',
      parse: () =>
        parseBlueprintText(
          [
            'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]',
            ...'bcdefghi'
              .split('')
              .map((k, i) => `${k}: &${k} [${Array(9).fill(`*${'abcdefghi'[i]}`).join(',')}]`),
          ].join('\n'),
          'laughs.yaml',
        ),
      code: 'blueprint.unparseable',
      message: 'alias',
    },
    {
      name: 'an API body (already parsed) nested 20,000 deep under a section',
      parse: () => {
        let v: unknown = 1;
        for (let i = 0; i < 20_000; i++) v = { a: v };
        return resolveBlueprint({ slug: 'deep', blueprint: { identity: { branding: v } } });
      },
      code: 'blueprint.too_deep',
      path: `/identity/branding${'/a'.repeat(MAX_BLUEPRINT_DEPTH - 2)}`,
    },
    {
      name: 'an API body of arrays nested 20,000 deep',
      parse: () => {
        let v: unknown = [];
        for (let i = 0; i < 20_000; i++) v = [v];
        return resolveBlueprint({ slug: 'deep', blueprint: { features: v } });
      },
      code: 'blueprint.too_deep',
      path: `/features${'/0'.repeat(MAX_BLUEPRINT_DEPTH - 1)}`,
    },
  ];
  for (const c of cases) {
    test(`${c.name} → 400 ${c.code}`, () => {
      const e = appError(c.parse);
      expect(e.code).toBe(c.code);
      expect(e.status).toBe(400);
      if (c.path !== undefined) expect(e.details?.[0]?.path).toBe(c.path);
      if (c.message) expect(e.message).toContain(c.message);
    });
  }

  test('nesting up to the limit is parsed (and then judged by the schema, not refused as deep)', () => {
    let v: unknown = 1;
    for (let i = 0; i < MAX_BLUEPRINT_DEPTH - 1; i++) v = { a: v };
    expect(() => assertBlueprintDepth(v)).not.toThrow();
    const e = appError(() => resolveBlueprint({ slug: 'deep', blueprint: { a: 1 } }));
    expect(e.code).toBe('blueprint.invalid');
    const yaml = parseBlueprintText(yamlLevels(MAX_BLUEPRINT_DEPTH), 'ok.yaml');
    expect(() => assertBlueprintDepth(yaml)).not.toThrow();
  });

  test('YAML with 20,000 keys parses, and the work grows linearly with the number of keys', () => {
    const yaml = (n: number) => Array.from({ length: n }, (_, i) => `k${i}: ${i}`).join('\n');
    const big = parseBlueprintText(yaml(20_000), 'wide.yaml') as Record<string, number>;
    expect(Object.keys(big).length).toBe(20_000);
    expect(big.k19999).toBe(19_999);
    // yaml's own unique-key check compared each key with every earlier one (n²/2 callbacks of
    // Array.prototype.some: 2,000,000 for 2,000 keys). Count them while parsing (synchronously).
    const some = Array.prototype.some;
    let calls = 0;
    const counted = (n: number) => {
      calls = 0;
      Array.prototype.some = function (this: unknown[], fn, thisArg) {
        return some.call(
          this,
          (...a) => {
            calls++;
            return fn.apply(thisArg, a);
          },
          thisArg,
        );
      } as typeof some;
      try {
        parseBlueprintText(yaml(n), 'wide.yaml');
      } finally {
        Array.prototype.some = some;
      }
      return calls;
    };
    const small = counted(1_000);
    const twice = counted(2_000);
    expect(twice).toBeLessThanOrEqual(10 * 2_000);
    expect(twice).toBeLessThanOrEqual(2 * small + 100);
    // Duplicates are still found, with their line and column.
    const e = appError(() => parseBlueprintText(`${yaml(5_000)}\nk42: again\n`, 'dup.yaml'));
    expect(e.message).toBe('dup.yaml is not valid YAML at line 5001, column 1: Map keys must be unique');
    expect(parseBlueprintText('a: 1\n"1": x\nb: {1: y}\n', 'ok.yaml')).toEqual({
      a: 1,
      1: 'x',
      b: { 1: 'y' },
    });
  });
});
