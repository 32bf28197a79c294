/**
 * Platform blueprints: the built-in templates, merging a partial blueprint over a template,
 * validation with one precise detail per bad field, and reading blueprint files (JSON / YAML).
 */
import { TypeCompiler } from '@sinclair/typebox/compiler';
import { ValueErrorType } from '@sinclair/typebox/value';
import { CST, isMap, isPair, isScalar, isSeq, Parser, parseDocument, type Node as YamlNode } from 'yaml';
import { AppError, type ErrorDetail } from '../shared/errors.ts';
import { invalidFieldsMessage, show, validationDetails } from '../shared/validation.ts';
import { PlatformBlueprint } from './blueprint.models.ts';

// ---------------------------------------------------------------------------------------------
// Templates
// ---------------------------------------------------------------------------------------------

/** Names of the built-in templates a platform can start from. */
export const TEMPLATES = ['creator', 'business', 'education', 'blank'] as const;

/** One of the built-in template names. */
export type TemplateName = (typeof TEMPLATES)[number];

const NO_FEATURES: PlatformBlueprint['features'] = {
  agent_creation: false,
  agent_marketplace: false,
  viral_sharing: false,
  collaborative_agents: false,
  analytics_dashboard: false,
  revenue_reporting: false,
  user_management: false,
  api_access: false,
  sso_integration: false,
  compliance_reporting: false,
  custom_integrations: false,
  white_label_mobile: false,
  white_label: false,
  progress_tracking: false,
};

const usd = (amount: number) => ({ amount, currency: 'usd' });

const BUILT_IN: Record<TemplateName, PlatformBlueprint> = {
  creator: {
    version: 1,
    identity: {
      name: '',
      branding: {
        colors: { primary: '#7c3aed', secondary: '#ec4899', background: '#faf7ff', text: '#1e1b4b' },
        fonts: { heading: 'Poppins', body: 'Inter' },
        custom_css: '',
      },
      mobile_app_config: { enabled: false },
    },
    monetization: {
      pricing_strategy: 'freemium',
      currency: 'usd',
      subscription_tiers: [
        {
          id: 'free',
          name: 'Free',
          price: usd(0),
          interval: 'month',
          features: ['1 agent', '50 requests a day', 'Public sharing'],
          limits: { requests_per_day: 50, agents: 1, seats: 1 },
        },
        {
          id: 'pro',
          name: 'Pro',
          price: usd(1900),
          interval: 'month',
          features: ['10 agents', '1,000 requests a day', 'Sell agents in the marketplace', 'Analytics'],
          limits: { requests_per_day: 1000, agents: 10, seats: 1 },
        },
        {
          id: 'enterprise',
          name: 'Enterprise',
          price: usd(49900),
          interval: 'month',
          features: ['Unlimited agents', '50,000 requests a day', '25 seats', 'API access'],
          limits: { requests_per_day: 50000, seats: 25 },
        },
      ],
      enterprise_contracts: false,
      agent_creation_fees: usd(0),
      marketplace_commission: 30,
      creator_revenue_share: 70,
      payment_processing: { provider: 'stripe', tax_behavior: 'exclusive' },
    },
    features: {
      ...NO_FEATURES,
      agent_creation: true,
      agent_marketplace: true,
      viral_sharing: true,
      analytics_dashboard: true,
      revenue_reporting: true,
      api_access: true,
    },
    ai_settings: {
      allowed_providers: [],
      cloud_fallback: 'allowed',
      cost_optimization: true,
      quality_gates: { require_citations: false },
      safety_filters: {
        level: 'moderate',
        blocked_terms: [],
        redact_pii: false,
        age_appropriate_filtering: false,
      },
      custom_models: [],
    },
    governance: {
      agent_approval_process: 'automatic',
      content_moderation: { enabled: true, level: 'moderate', human_review: false },
      self_signup: true,
      user_verification: { email_required: true, age_verification: false },
      data_retention: { chat_history_days: 365, audit_log_days: 365, deleted_user_grace_days: 30 },
      compliance_packs: [],
    },
  },

  business: {
    version: 1,
    identity: {
      name: '',
      branding: {
        colors: { primary: '#1d4ed8', secondary: '#0f766e', background: '#f8fafc', text: '#0f172a' },
        fonts: { heading: 'IBM Plex Sans', body: 'IBM Plex Sans' },
        custom_css: '',
      },
      mobile_app_config: { enabled: false },
    },
    monetization: {
      pricing_strategy: 'subscription',
      currency: 'usd',
      subscription_tiers: [
        {
          id: 'team',
          name: 'Team',
          price: usd(4900),
          interval: 'month',
          features: ['5 seats', 'Shared agents', 'Usage analytics'],
          limits: { requests_per_day: 2000, agents: 20, seats: 5 },
        },
        {
          id: 'business',
          name: 'Business',
          price: usd(19900),
          interval: 'month',
          features: ['25 seats', 'SSO', 'API access', 'Compliance reports'],
          limits: { requests_per_day: 20000, agents: 100, seats: 25 },
        },
        {
          id: 'enterprise',
          name: 'Enterprise',
          price: usd(99900),
          interval: 'month',
          features: ['250 seats', 'Custom integrations', 'Priority support'],
          limits: { seats: 250 },
        },
      ],
      usage_pricing: { markup_percent: 20 },
      enterprise_contracts: true,
      agent_creation_fees: usd(0),
      marketplace_commission: 30,
      creator_revenue_share: 70,
      payment_processing: { provider: 'stripe', tax_behavior: 'exclusive' },
    },
    features: {
      ...NO_FEATURES,
      agent_creation: true,
      collaborative_agents: true,
      analytics_dashboard: true,
      user_management: true,
      api_access: true,
      sso_integration: true,
      compliance_reporting: true,
      custom_integrations: true,
      white_label: true,
    },
    ai_settings: {
      allowed_providers: [],
      cloud_fallback: 'allowed',
      cost_optimization: true,
      quality_gates: { min_response_quality: 0.7, require_citations: true, max_output_tokens: 4096 },
      safety_filters: {
        level: 'maximum',
        blocked_terms: [],
        redact_pii: true,
        age_appropriate_filtering: false,
      },
      custom_models: [],
    },
    governance: {
      agent_approval_process: 'manual',
      content_moderation: { enabled: true, level: 'maximum', human_review: false },
      user_verification: { email_required: true, age_verification: false },
      data_retention: { chat_history_days: 730, audit_log_days: 1095, deleted_user_grace_days: 30 },
      compliance_packs: ['soc2'],
    },
  },

  education: {
    version: 1,
    identity: {
      name: '',
      branding: {
        colors: { primary: '#0d9488', secondary: '#f59e0b', background: '#fffbeb', text: '#1c1917' },
        fonts: { heading: 'Nunito', body: 'Nunito' },
        custom_css: '',
      },
      mobile_app_config: { enabled: false },
    },
    monetization: {
      pricing_strategy: 'freemium',
      currency: 'usd',
      subscription_tiers: [
        {
          id: 'basic',
          name: 'Basic',
          price: usd(0),
          interval: 'month',
          features: ['One tutor', '20 questions a day'],
          limits: { requests_per_day: 20, seats: 1 },
        },
        {
          id: 'premium',
          name: 'Premium',
          price: usd(999),
          interval: 'month',
          features: ['All tutors', '300 questions a day', 'Progress reports'],
          limits: { requests_per_day: 300, seats: 1 },
        },
        {
          id: 'family',
          name: 'Family',
          price: usd(1999),
          interval: 'month',
          features: ['Up to 5 learners', 'Parent dashboard', 'Progress reports'],
          limits: { requests_per_day: 1000, seats: 5 },
        },
      ],
      enterprise_contracts: false,
      agent_creation_fees: usd(0),
      marketplace_commission: 30,
      creator_revenue_share: 70,
      payment_processing: { provider: 'stripe', tax_behavior: 'inclusive' },
    },
    features: {
      ...NO_FEATURES,
      agent_creation: true,
      analytics_dashboard: true,
      user_management: true,
      progress_tracking: true,
    },
    ai_settings: {
      allowed_providers: [],
      cloud_fallback: 'allowed',
      cost_optimization: true,
      quality_gates: { min_response_quality: 0.8, require_citations: false, max_output_tokens: 2048 },
      safety_filters: {
        level: 'maximum',
        blocked_terms: [],
        redact_pii: true,
        age_appropriate_filtering: true,
      },
      custom_models: [],
    },
    governance: {
      agent_approval_process: 'manual',
      content_moderation: { enabled: true, level: 'maximum', human_review: true },
      self_signup: true,
      user_verification: { email_required: true, age_verification: true, minimum_age: 13 },
      data_retention: { chat_history_days: 365, audit_log_days: 365, deleted_user_grace_days: 30 },
      compliance_packs: [],
    },
  },

  blank: {
    version: 1,
    identity: {
      name: '',
      branding: {
        colors: { primary: '#4b5563', secondary: '#9ca3af', background: '#ffffff', text: '#111827' },
        fonts: { heading: 'system-ui', body: 'system-ui' },
        custom_css: '',
      },
      mobile_app_config: { enabled: false },
    },
    monetization: {
      pricing_strategy: 'custom',
      currency: 'usd',
      subscription_tiers: [],
      enterprise_contracts: false,
      agent_creation_fees: usd(0),
      marketplace_commission: 0,
      creator_revenue_share: 100,
      payment_processing: { provider: 'none' },
    },
    // On: both do nothing until an admin makes a key or sets SSO up, and a first `apikey
    // create` must work (docs/blueprint.md, "What each setting does today").
    features: { ...NO_FEATURES, api_access: true, sso_integration: true },
    ai_settings: {
      allowed_providers: [],
      cloud_fallback: 'allowed',
      cost_optimization: false,
      quality_gates: { require_citations: false },
      safety_filters: {
        level: 'minimal',
        blocked_terms: [],
        redact_pii: false,
        age_appropriate_filtering: false,
      },
      custom_models: [],
    },
    governance: {
      agent_approval_process: 'automatic',
      content_moderation: { enabled: false, level: 'minimal', human_review: false },
      user_verification: { email_required: false, age_verification: false },
      data_retention: { chat_history_days: 0, audit_log_days: 0, deleted_user_grace_days: 30 },
      compliance_packs: [],
    },
  },
};

/** Whether a string names a built-in template. */
export function isTemplateName(name: string): name is TemplateName {
  return (TEMPLATES as readonly string[]).includes(name);
}

/** A fresh deep copy of a built-in template (its name is '' for the caller to fill in). */
export function templateBlueprint(name: TemplateName): PlatformBlueprint {
  return structuredClone(BUILT_IN[name]);
}

// ---------------------------------------------------------------------------------------------
// Merging
// ---------------------------------------------------------------------------------------------

/** Whether a value is a plain object (`{}` / JSON object), not an array, Date, class instance or null. */
export function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null) return false;
  const proto = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

/** Sets an own property even for keys like `__proto__`, so they reach validation as unknown fields. */
function setOwn(target: Record<string, unknown>, key: string, value: unknown): void {
  Object.defineProperty(target, key, { value, enumerable: true, writable: true, configurable: true });
}

/** Deep copy of JSON-like data (plain objects and arrays); other values are kept as they are. */
function cloneData(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(cloneData);
  if (isPlainObject(value)) {
    const out: Record<string, unknown> = {};
    for (const [key, item] of Object.entries(value)) setOwn(out, key, cloneData(item));
    return out;
  }
  return value;
}

/**
 * Merges `partial` over `base` into a new value: plain objects merge key by key, recursively;
 * arrays and scalars in `partial` replace; `undefined` keeps the base; `null` is kept (validation
 * reports it, since null never means "delete"). Neither input is mutated.
 */
export function deepMerge(base: unknown, partial: unknown): unknown {
  if (partial === undefined) return cloneData(base);
  if (!isPlainObject(base) || !isPlainObject(partial)) return cloneData(partial);
  const out = cloneData(base) as Record<string, unknown>;
  for (const [key, value] of Object.entries(partial)) {
    if (value === undefined) continue;
    setOwn(out, key, deepMerge(Object.hasOwn(base, key) ? base[key] : undefined, value));
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Validation
// ---------------------------------------------------------------------------------------------

const compiled = TypeCompiler.Compile(PlatformBlueprint);

/** Result of validating a blueprint: the typed value, or one detail per bad field. */
export type BlueprintValidation =
  | { ok: true; value: PlatformBlueprint }
  | { ok: false; details: ErrorDetail[] };

const isObj = (v: unknown): v is Record<string, unknown> => isPlainObject(v);
const isPercent = (v: unknown): v is number => typeof v === 'number' && v >= 0 && v <= 100;
const isCurrency = (v: unknown): v is string => typeof v === 'string' && /^[a-z]{3}$/.test(v);

/** Reports every later occurrence of a value already seen in the list. */
function duplicates(
  items: unknown,
  pick: (item: unknown) => unknown,
  pathOf: (i: number) => string,
  what: string,
): ErrorDetail[] {
  if (!Array.isArray(items)) return [];
  const seen = new Map<unknown, number>();
  const out: ErrorDetail[] = [];
  items.forEach((item, i) => {
    const key = pick(item);
    if (typeof key !== 'string') return;
    const first = seen.get(key);
    if (first === undefined) seen.set(key, i);
    else out.push({ path: pathOf(i), reason: `duplicate ${what} '${key}' (already at ${pathOf(first)})` });
  });
  return out;
}

/** Rules that span several fields; written defensively since they also run on invalid input. */
function crossFieldDetails(value: unknown): ErrorDetail[] {
  if (!isObj(value)) return [];
  const out: ErrorDetail[] = [];
  const m = value.monetization;
  if (isObj(m)) {
    const share = m.creator_revenue_share;
    const commission = m.marketplace_commission;
    if (isPercent(share) && isPercent(commission) && Math.abs(share + commission - 100) > 1e-9) {
      out.push({
        path: '/monetization/creator_revenue_share',
        reason: `creator_revenue_share (${share}) + marketplace_commission (${commission}) must equal 100, got ${share + commission}`,
      });
    }
    const tierPath = (i: number) => `/monetization/subscription_tiers/${i}/id`;
    out.push(
      ...duplicates(m.subscription_tiers, (tier) => (isObj(tier) ? tier.id : undefined), tierPath, 'tier id'),
    );
    const currency = m.currency;
    if (isCurrency(currency)) {
      const mismatch = (money: unknown, path: string) => {
        if (isObj(money) && isCurrency(money.currency) && money.currency !== currency) {
          out.push({
            path,
            reason: `must equal monetization.currency '${currency}', got '${money.currency}'`,
          });
        }
      };
      if (Array.isArray(m.subscription_tiers)) {
        m.subscription_tiers.forEach((tier, i) => {
          if (isObj(tier)) mismatch(tier.price, `/monetization/subscription_tiers/${i}/price/currency`);
        });
      }
      mismatch(m.agent_creation_fees, '/monetization/agent_creation_fees/currency');
    }
  }
  const ai = value.ai_settings;
  if (isObj(ai)) {
    out.push(
      ...duplicates(
        ai.allowed_providers,
        (p) => p,
        (i) => `/ai_settings/allowed_providers/${i}`,
        'provider',
      ),
      ...duplicates(
        ai.custom_models,
        (model) => (isObj(model) ? model.alias : undefined),
        (i) => `/ai_settings/custom_models/${i}/alias`,
        'model alias',
      ),
    );
  }
  const g = value.governance;
  if (isObj(g)) {
    out.push(
      ...duplicates(
        g.compliance_packs,
        (p) => p,
        (i) => `/governance/compliance_packs/${i}`,
        'compliance pack',
      ),
    );
  }
  return out;
}

/**
 * Checks a complete blueprint against the schema and the cross-field rules, reporting every bad
 * field once (JSON Pointer path + reason), sorted by path, so a user can fix them all in one go.
 */
export function validateBlueprint(value: unknown): BlueprintValidation {
  const errors = compiled.Check(value) ? [] : compiled.Errors(value);
  const { details } = validationDetails(errors, {
    // Uniqueness is reported by the cross-field rules, at the path of the duplicate itself.
    skip: (error) => error.type === ValueErrorType.ArrayUniqueItems,
    extra: crossFieldDetails(value),
    nullHint: "omit the field to keep the template's value",
  });
  if (details.length === 0) return { ok: true, value: value as PlatformBlueprint };
  return { ok: false, details };
}

// ---------------------------------------------------------------------------------------------
// Resolving a platform's blueprint from CLI / API input
// ---------------------------------------------------------------------------------------------

/** 'acme-labs' → 'Acme Labs': the default platform name when none is given. */
export function titleFromSlug(slug: string): string {
  return slug
    .split(/[-_\s]+/)
    .filter(Boolean)
    .map((word) => word.charAt(0).toUpperCase() + word.slice(1))
    .join(' ')
    .slice(0, 100);
}

/** Input to `resolveBlueprint`: the CLI flags or API body of "create a platform". */
export interface ResolveBlueprintInput {
  /** Template name; 'blank' when omitted. */
  template?: string;
  /** A partial blueprint (already parsed) merged over the template. */
  blueprint?: unknown;
  /** Overrides identity.name. */
  name?: string;
  /** Overrides identity.domain. */
  domain?: string;
  /** The platform slug; its title case is the name of last resort. */
  slug: string;
}

/**
 * How deeply a blueprint's objects and arrays may nest (the root counts as one level). The schema
 * needs six; the margin leaves room for new sections. Input nested deeper is refused before any
 * recursive walk (merge, clone, validation), which would otherwise overflow the stack (a 500).
 */
export const MAX_BLUEPRINT_DEPTH = 32;

/** JSON Pointer escaping of one path segment. */
function pointerSegment(key: string): string {
  return key.replace(/~/g, '~0').replace(/\//g, '~1');
}

/** The `blueprint.too_deep` error for the container at `path` (a JSON Pointer). */
function tooDeep(path: string, where = ''): AppError {
  const shown = path.length > 120 ? `${path.slice(0, 120)}…` : path;
  return new AppError(
    'blueprint.too_deep',
    `the blueprint is nested more than ${MAX_BLUEPRINT_DEPTH} levels deep${where} (at ${shown || '/'})`,
    400,
    [{ path, reason: `nested more than ${MAX_BLUEPRINT_DEPTH} levels deep` }],
  );
}

/**
 * Refuses (400 `blueprint.too_deep`, naming the path of the first object or array beyond the
 * limit) data nested deeper than `MAX_BLUEPRINT_DEPTH`. Iterative, with its own stack, so it is
 * safe on input nested any depth; every path that accepts a blueprint calls it first (files, the
 * operator API, the control socket, through `resolveBlueprint`).
 */
export function assertBlueprintDepth(value: unknown): void {
  type Frame = { v: unknown; depth: number; parent: Frame | null; key: string };
  const stack: Frame[] = [{ v: value, depth: 1, parent: null, key: '' }];
  while (stack.length > 0) {
    const f = stack.pop()!;
    const isArray = Array.isArray(f.v);
    if (!isArray && !isPlainObject(f.v)) continue;
    if (f.depth > MAX_BLUEPRINT_DEPTH) {
      const parts: string[] = [];
      for (let at: Frame | null = f; at?.parent; at = at.parent) parts.push(pointerSegment(at.key));
      throw tooDeep(parts.length ? `/${parts.reverse().join('/')}` : '');
    }
    const entries: [string, unknown][] = isArray
      ? (f.v as unknown[]).map((x, i) => [String(i), x])
      : Object.entries(f.v as Record<string, unknown>);
    for (let i = entries.length - 1; i >= 0; i--) {
      const [key, v] = entries[i]!;
      if (typeof v === 'object' && v !== null) stack.push({ v, depth: f.depth + 1, parent: f, key });
    }
  }
}

/**
 * Produces a platform's complete blueprint: template (default 'blank') + partial + name/domain
 * overrides, name defaulting to the title-cased slug; throws AppError with every bad field.
 */
export function resolveBlueprint(input: ResolveBlueprintInput): PlatformBlueprint {
  // NB! First: deepMerge and validation recurse, and a partial nested thousands deep overflows them.
  assertBlueprintDepth(input.blueprint);
  const template = input.template ?? 'blank';
  if (!isTemplateName(template)) {
    const allowed = TEMPLATES.join(', ');
    throw new AppError(
      'blueprint.unknown_template',
      `template '${template}' does not exist; use one of: ${allowed}`,
      400,
      [{ path: '/template', reason: `must be one of: ${allowed}` }],
    );
  }
  if (input.blueprint !== undefined && !isPlainObject(input.blueprint)) {
    const details = [
      { path: '', reason: `must be an object with blueprint sections, got ${show(input.blueprint)}` },
    ];
    throw new AppError('blueprint.invalid', invalidFieldsMessage('the blueprint', details), 400, details);
  }
  const merged = deepMerge(templateBlueprint(template), input.blueprint) as Record<string, unknown>;
  const identity = merged.identity;
  if (isPlainObject(identity)) {
    if (input.name !== undefined) identity.name = input.name;
    if (input.domain !== undefined) identity.domain = input.domain;
    if (identity.name === '') identity.name = titleFromSlug(input.slug);
  }
  const result = validateBlueprint(merged);
  if (!result.ok)
    throw new AppError(
      'blueprint.invalid',
      invalidFieldsMessage('the blueprint', result.details),
      400,
      result.details,
    );
  return result.value;
}

/**
 * A platform's blueprint after a change: `partial` deep-merged over the `current` blueprint and
 * validated exactly as at create (the same depth check, merge, validator and error shape:
 * 400 `blueprint.invalid` with one detail per bad field). Neither input is mutated.
 */
export function mergeBlueprintUpdate(current: PlatformBlueprint, partial: unknown): PlatformBlueprint {
  assertBlueprintDepth(partial);
  if (!isPlainObject(partial)) {
    const details = [{ path: '', reason: `must be an object with blueprint sections, got ${show(partial)}` }];
    throw new AppError('blueprint.invalid', invalidFieldsMessage('the blueprint', details), 400, details);
  }
  const result = validateBlueprint(deepMerge(current, partial));
  if (!result.ok)
    throw new AppError(
      'blueprint.invalid',
      invalidFieldsMessage('the blueprint', result.details),
      400,
      result.details,
    );
  return result.value;
}

// ---------------------------------------------------------------------------------------------
// Reading blueprint files
// ---------------------------------------------------------------------------------------------

/** 1-based line and column of a character offset. */
function lineColumn(text: string, offset: number): { line: number; column: number } {
  const before = text.slice(0, Math.max(0, Math.min(offset, text.length)));
  const lastNewline = before.lastIndexOf('\n');
  return { line: before.split('\n').length, column: offset - lastNewline };
}

/**
 * Offset of the first JSON syntax error (JavaScriptCore's JSON.parse does not say where), or
 * undefined when none is found. Only used to enrich error messages. JSON is YAML, so yaml's
 * parser reads the text into its token tree (`CST`, with offsets); what is left is to find the
 * first token JSON does not allow: a YAML-only construct (plain or single-quoted keys, block
 * collections, comments, anchors, a second document), a missing or doubled comma, a missing
 * colon, a trailing comma, an unclosed bracket, a scalar that is no JSON number or literal, or a
 * string with a raw control character or a YAML-only escape. yaml's own errors come last.
 */
function jsonErrorOffset(text: string): number | undefined {
  type Tok = CST.Token | CST.SourceToken;
  const TRIVIA = new Set(['space', 'newline']);
  const NUMBER = /^-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?/;
  /** A plain scalar must be one JSON number or literal: else where it stops being one. */
  const plain = (t: CST.FlowScalar) => {
    const s = t.source;
    const word = ['true', 'false', 'null'].find((w) => w[0] === s[0]);
    let n: number;
    if (word) {
      n = 0;
      while (n < word.length && s[n] === word[n]) n++;
      if (n < word.length) fail(t.offset + n);
    } else {
      const m = NUMBER.exec(s);
      if (!m) fail(t.offset);
      n = m![0].length;
    }
    if (n < s.length) fail(t.offset + n + (/^\s*/.exec(s.slice(n))?.[0].length ?? 0));
  };
  class Found {
    constructor(readonly offset: number | undefined) {}
  }
  function fail(offset: number | undefined): never {
    throw new Found(offset);
  }
  /** Tokens that may only be whitespace. */
  const trivia = (toks: readonly Tok[] | undefined) => {
    for (const t of toks ?? []) if (!TRIVIA.has(t.type)) fail(t.offset);
  };
  const firstOffset = (toks: readonly Tok[] | undefined) => toks?.find((t) => !TRIVIA.has(t.type))?.offset;
  const quoted = (t: CST.FlowScalar) => {
    const s = t.source;
    for (let k = 1; k < s.length - 1; k++) {
      const ch = s.charCodeAt(k);
      if (ch < 0x20) fail(t.offset + k);
      if (ch === 0x5c) {
        const esc = s.charAt(k + 1);
        if (esc === 'u') {
          if (!/^[0-9a-fA-F]{4}$/.test(s.slice(k + 2, k + 6))) fail(t.offset + k + 1);
          k += 5;
        } else if ('"\\/bfnrt'.includes(esc)) k++;
        else fail(t.offset + k + 1);
      }
    }
    if (s.length < 2 || !s.endsWith('"')) fail(t.offset + s.length);
  };
  const value = (t: CST.Token | null | undefined, after: number, depth: number): void => {
    if (!t) fail(after);
    if (depth > 512) fail(undefined);
    if (t.type === 'scalar') {
      plain(t);
      trivia(t.end);
      return;
    }
    if (t.type === 'double-quoted-scalar') {
      quoted(t);
      trivia(t.end);
      return;
    }
    if (t.type !== 'flow-collection') fail(t.offset);
    const isMap = t.start.source === '{';
    const closeOffset = firstOffset(t.end) ?? text.length;
    t.items.forEach((item, k) => {
      const next = t.items[k + 1];
      const nextOffset = next
        ? (next.start[0]?.offset ?? next.key?.offset ?? next.value?.offset)
        : closeOffset;
      let commas = 0;
      for (const s of item.start) {
        if (s.type === 'comma') {
          if (k === 0 || commas > 0) fail(s.offset);
          commas++;
        } else if (!TRIVIA.has(s.type)) fail(s.offset);
      }
      const first = item.key ?? item.sep?.find((s) => !TRIVIA.has(s.type)) ?? item.value;
      // `,` then nothing: a trailing comma, where the closing bracket (or the end) is.
      if (!first) fail(k === 0 ? closeOffset : (nextOffset ?? closeOffset));
      if (k > 0 && commas === 0) fail(first.offset);
      let colon = -1;
      for (const s of item.sep ?? []) {
        if (s.type === 'map-value-ind' && colon < 0) colon = s.offset;
        else if (!TRIVIA.has(s.type)) fail(s.offset);
      }
      if (isMap) {
        if (!item.key) fail(first.offset);
        if (item.key!.type !== 'double-quoted-scalar') fail(item.key!.offset);
        quoted(item.key as CST.FlowScalar);
        trivia((item.key as CST.FlowScalar).end);
        if (colon < 0) fail(item.value?.offset ?? nextOffset ?? closeOffset);
        value(item.value, nextOffset ?? closeOffset, depth + 1);
      } else {
        if (item.key) fail(colon >= 0 ? colon : (item.value?.offset ?? item.key.offset));
        if (colon >= 0) fail(colon);
        value(item.value, nextOffset ?? closeOffset, depth + 1);
      }
    });
    const close = t.end.find((s) => !TRIVIA.has(s.type));
    if (!close || close.type !== (isMap ? 'flow-map-end' : 'flow-seq-end'))
      fail(close?.offset ?? text.length);
    trivia(t.end.slice(t.end.indexOf(close!) + 1));
  };
  try {
    let seen = false;
    for (const tok of new Parser().parse(text)) {
      if (TRIVIA.has(tok.type)) continue;
      if (tok.type !== 'document' || seen) fail(tok.offset);
      const doc = tok as CST.Document;
      seen = true;
      trivia(doc.start);
      value(doc.value, text.length, 0);
      trivia(doc.end);
    }
    if (!seen) fail(text.length);
  } catch (e) {
    if (e instanceof Found) return e.offset;
    throw e;
  }
  return parseDocument(text).errors[0]?.pos[0];
}

/** Parses JSON, throwing `blueprint.unparseable` with the file name and, when found, line and column. */
function parseJson(text: string, filename: string): unknown {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    const reason = (e instanceof Error ? e.message : String(e)).replace(/^JSON Parse error:\s*/i, '');
    const offset = jsonErrorOffset(text);
    const where = offset === undefined ? '' : lineColumn(text, offset);
    const at = where ? ` at line ${where.line}, column ${where.column}` : '';
    throw new AppError('blueprint.unparseable', `${filename} is not valid JSON${at}: ${reason}`, 400, [
      { path: '', reason: `invalid JSON${at}: ${reason}` },
    ]);
  }
  assertBlueprintDepth(value);
  return value;
}

/**
 * Refuses YAML nested deeper than `MAX_BLUEPRINT_DEPTH`, on the token tree of yaml's parser
 * (which keeps its own stack), before the composer and `toJS` (which recurse) see it. The error
 * names the path of the first collection beyond the limit, and its line and column.
 */
function assertYamlDepth(text: string, filename: string): void {
  type Frame = { token: CST.Token; depth: number; path: string };
  const stack: Frame[] = [];
  for (const token of new Parser().parse(text)) {
    if (token.type === 'document' && token.value) stack.push({ token: token.value, depth: 1, path: '' });
  }
  const keyOf = (key: CST.Token | null | undefined, index: number): string => {
    if (!key || !CST.isScalar(key)) return String(index);
    return CST.resolveAsScalar(key)?.value ?? key.source;
  };
  while (stack.length > 0) {
    const { token, depth, path } = stack.pop()!;
    if (!CST.isCollection(token)) continue;
    if (depth > MAX_BLUEPRINT_DEPTH) {
      const { line, column } = lineColumn(text, token.offset);
      throw tooDeep(path, ` in ${filename} at line ${line}, column ${column}`);
    }
    const isSeq =
      token.type === 'block-seq' || (token.type === 'flow-collection' && token.start.source === '[');
    token.items.forEach((item, i) => {
      const at = `${path}/${pointerSegment(isSeq ? String(i) : keyOf(item.key, i))}`;
      if (item.key && CST.isCollection(item.key)) stack.push({ token: item.key, depth: depth + 1, path: at });
      if (item.value) stack.push({ token: item.value, depth: depth + 1, path: at });
    });
  }
}

/**
 * Offset of the first key repeated within one mapping, or undefined. yaml's own `uniqueKeys`
 * check compares each new key with every earlier key of its mapping, quadratic in the number of
 * keys (16,000 keys took 1.5 s); this one keeps a set per mapping. Keys are equal as yaml's
 * default decides: scalars of the same value (collections as keys are left alone, as yaml does).
 */
function duplicateYamlKey(root: unknown): number | undefined {
  const stack: unknown[] = [root];
  while (stack.length > 0) {
    const node = stack.pop();
    if (isMap(node)) {
      const seen = new Set<unknown>();
      for (const pair of node.items) {
        const key = pair.key as YamlNode | null;
        if (isScalar(key)) {
          if (seen.has(key.value)) return key.range?.[0];
          seen.add(key.value);
        } else if (key) stack.push(key);
        stack.push(pair.value);
      }
    } else if (isSeq(node)) {
      for (const item of node.items) stack.push(isPair(item) ? item.value : item);
    }
  }
  return undefined;
}

/** Parses one YAML document, throwing `blueprint.unparseable` with the file name, line and column. */
function parseYaml(text: string, filename: string): unknown {
  const unparseable = (reason: string, offset: number | undefined) => {
    const where = offset === undefined ? undefined : lineColumn(text, offset);
    const at = where ? ` at line ${where.line}, column ${where.column}` : '';
    return new AppError('blueprint.unparseable', `${filename} is not valid YAML${at}: ${reason}`, 400, [
      { path: '', reason: `invalid YAML${at}: ${reason}` },
    ]);
  };
  assertYamlDepth(text, filename);
  // NB! uniqueKeys: false: yaml's check is quadratic; duplicateYamlKey does it in linear time.
  const doc = parseDocument(text, { uniqueKeys: false, prettyErrors: false });
  const first = doc.errors[0];
  if (first) throw unparseable(first.message, first.pos[0]);
  const dup = duplicateYamlKey(doc.contents);
  if (dup !== undefined) throw unparseable('Map keys must be unique', dup);
  let value: unknown;
  try {
    // maxAliasCount guards against alias "billion laughs" expansion.
    value = doc.toJS({ maxAliasCount: 100 });
  } catch (e) {
    throw unparseable(e instanceof Error ? e.message : String(e), undefined);
  }
  // Aliases can nest an anchored collection inside another: the result is checked too.
  assertBlueprintDepth(value);
  return value;
}

/**
 * Parses the text of a blueprint file: `.json` as JSON, `.yaml`/`.yml` as YAML, anything else as
 * JSON then YAML. Throws AppError 'blueprint.unparseable' naming the file and the line/column.
 */
export function parseBlueprintText(text: string, filename: string): unknown {
  const lower = filename.toLowerCase();
  if (lower.endsWith('.json')) return parseJson(text, filename);
  if (lower.endsWith('.yaml') || lower.endsWith('.yml')) return parseYaml(text, filename);
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return parseYaml(text, filename);
  }
  assertBlueprintDepth(value);
  return value;
}
