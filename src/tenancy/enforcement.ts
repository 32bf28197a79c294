/**
 * Which blueprint settings are enforced today, and which wait for a later capability: one
 * table, keyed by the setting's dotted path in the schema (`[]` for every item of an array).
 * `enforcement.test.ts` fails when a schema path is missing here (or a row names no path), and
 * when the table in docs/blueprint.md is not what `renderEnforcementTable` prints
 * (`bun run scripts/blueprint-settings.ts --write` regenerates it).
 *
 * `GET /_operator/api/platforms/:slug` lists the settings a platform sets that are not enforced
 * (`unenforcedSettings`), and the warnings of its blueprint on this instance (`blueprintWarnings`),
 * so nobody takes a setting for a control.
 */
import { type TSchema, TypeGuard } from '@sinclair/typebox';
import { type PlatformBlueprint, PlatformBlueprint as PlatformBlueprintSchema } from './blueprint.models.ts';

/**
 * `enforced`: the setting does what it says now. `planned`: nothing reads it yet; `by` names the
 * capability that will. `partial`: some values are enforced and others not (`asks` says which
 * are not). `conditional`: enforced only when the instance has what it needs (`needs`).
 */
export type EnforcementStatus = 'enforced' | 'planned' | 'partial' | 'conditional';

/** What the instance offers that a conditional setting needs. */
export interface InstanceCapabilities {
  /** Whether a safety classifier is configured (`safety_classifier` in soulfra.yaml). */
  classifier: boolean;
  /** Whether the instance bills (a `billing` section in soulfra.yaml): tier limits apply. */
  billing?: boolean;
}

/** One setting's row. */
export interface SettingEnforcement {
  /** What the setting gates (or would gate), in a few words. */
  gates: string;
  status: EnforcementStatus;
  /** Enforced: where. Planned or partial: the later capability that enforces it. */
  by: string;
  /**
   * Whether this platform's value asks for something not yet done (for `partial`: a value that
   * is not enforced). Default: the value is `true`, a non-zero number, a non-empty array or a
   * non-empty string. Only consulted for settings not enforced.
   */
  asks?: (value: unknown, bp: PlatformBlueprint) => boolean;
  /** For `conditional`: whether the instance enforces it. */
  needs?: (instance: InstanceCapabilities) => boolean;
}

const BILLING = 'billing (issue 13)';
const PORTAL = 'portal (issue 11)';
const COMPLIANCE = 'compliance packs (issue 15)';
const MOBILE = 'mobile app export';
const SIGNUP = 'sign-up verification';

const e = (gates: string, by: string): SettingEnforcement => ({ gates, status: 'enforced', by });
const p = (gates: string, by: string, asks?: SettingEnforcement['asks']): SettingEnforcement => ({
  gates,
  status: 'planned',
  by,
  ...(asks ? { asks } : {}),
});
/** Enforced on an instance that bills (soulfra.yaml `billing`): tier limits. */
const billed = (gates: string, asks?: SettingEnforcement['asks']): SettingEnforcement => ({
  gates,
  status: 'conditional',
  by: 'billing entitlements, on an instance with `billing` in soulfra.yaml',
  needs: (i) => i.billing === true,
  ...(asks ? { asks } : {}),
});
const not =
  (...inert: unknown[]) =>
  (v: unknown) =>
    v !== undefined && !inert.includes(v);

/** Every setting of the blueprint schema, by dotted path. */
export const ENFORCEMENT: Readonly<Record<string, SettingEnforcement>> = {
  version: e('the blueprint format', 'validation'),

  'identity.name': e('the name on pages, the API docs and mail', 'pages'),
  'identity.domain': e('the custom domain the platform answers on', 'host routing'),
  'identity.email_from': e("the sender address of the platform's mail", 'mail delivery'),
  'identity.branding.logo': e('the logo on pages', 'pages'),
  'identity.branding.colors.primary': e('page colors', 'pages'),
  'identity.branding.colors.secondary': e('page colors', 'pages'),
  'identity.branding.colors.background': e('page colors', 'pages'),
  'identity.branding.colors.text': e('page colors', 'pages'),
  'identity.branding.fonts.heading': e('page fonts', 'pages'),
  'identity.branding.fonts.body': e('page fonts', 'pages'),
  'identity.branding.custom_css': e('extra CSS on pages', 'pages'),
  'identity.branding.color_scheme': e(
    'light or dark pages (the portal and admin follow the system unless fixed)',
    'pages',
  ),
  'identity.mobile_app_config.enabled': p('the white-labeled mobile app', MOBILE),
  'identity.mobile_app_config.app_name': p('the mobile app', MOBILE),
  'identity.mobile_app_config.bundle_id': p('the mobile app', MOBILE),
  'identity.mobile_app_config.primary_color': p('the mobile app', MOBILE),

  'monetization.pricing_strategy': billed(
    'whether tier limits apply (freemium, subscription), whether members pay AI calls from prepaid credits (usage), and the tier of users without a subscription',
    not('custom'),
  ),
  'monetization.currency': e('the currency of tier prices and fees (validated)', 'validation'),
  'monetization.subscription_tiers[].id': e('the tier a subscription is to', 'billing subscriptions'),
  'monetization.subscription_tiers[].name': e('the plan list on the home page and the pricing page', 'pages'),
  'monetization.subscription_tiers[].price.amount': e(
    "a subscription's price at Stripe Checkout (listed on the home page)",
    'billing subscriptions',
  ),
  'monetization.subscription_tiers[].price.currency': e(
    "a subscription's currency at Stripe Checkout",
    'billing subscriptions',
  ),
  'monetization.subscription_tiers[].interval': e(
    "a subscription's billing interval at Stripe Checkout",
    'billing subscriptions',
  ),
  'monetization.subscription_tiers[].features': e('the pricing page', 'portal pricing page'),
  'monetization.subscription_tiers[].limits.requests_per_day': billed(
    'AI chat requests per user per day (429 billing.limit_reached)',
  ),
  'monetization.subscription_tiers[].limits.agents': billed(
    'agents per user (402 billing.payment_required on creating one)',
  ),
  'monetization.subscription_tiers[].included_usage.amount': e(
    "AI usage a tier's subscribers are not charged for each month",
    'billing (src/billing/usage.ts)',
  ),
  'monetization.subscription_tiers[].included_usage.currency': e(
    'the currency of the included usage (usage in another currency is charged as usual)',
    'billing (src/billing/usage.ts)',
  ),
  'monetization.subscription_tiers[].limits.seats': billed(
    'people per subscription (seats bought, team members)',
  ),
  'monetization.usage_pricing.markup_percent': e('markup metered on every AI call', 'the meter'),
  'monetization.enterprise_contracts': p('enterprise contracts', BILLING),
  'monetization.agent_creation_fees.amount': p('a fee to create an agent', BILLING),
  'monetization.agent_creation_fees.currency': p('a fee to create an agent', BILLING, () => false),
  'monetization.marketplace_commission': e(
    "the platform's share of a marketplace sale (the operator's fee comes out of it)",
    'billing (src/billing/sales.ts)',
  ),
  'monetization.creator_revenue_share': e(
    "the creator's share of a marketplace sale",
    'billing (src/billing/sales.ts)',
  ),
  'monetization.payment_processing.provider': p('charging through Stripe', BILLING, not('none')),
  'monetization.payment_processing.statement_descriptor': p('card statements', BILLING),
  'monetization.payment_processing.tax_behavior': e(
    "whether prices include the platform's tax rates: the tax lines and total of its invoices",
    'billing (src/billing/invoices.service.ts)',
  ),

  'features.agent_creation': e(
    'users making, editing and publishing agents (404 `feature.disabled` when off)',
    'the request guard',
  ),
  'features.agent_marketplace': e(
    'the marketplace, its moderation and federation (404 `feature.disabled` when off)',
    'the request guard',
  ),
  'features.viral_sharing': e(
    'share links with referral codes and their reports (404 `feature.disabled` when off)',
    'the request guard',
  ),
  'features.collaborative_agents': e(
    'shared conversations with an agent (404 `feature.disabled` when off)',
    'src/agents/collaboration.service.ts',
  ),
  'features.analytics_dashboard': p('the analytics dashboard', PORTAL),
  'features.revenue_reporting': p('revenue reports', BILLING),
  'features.user_management': p(
    'teams and the portal’s user admin (never the users API of owners and admins)',
    PORTAL,
  ),
  'features.api_access': e(
    'API-key calls (403 `platform.api_access_disabled` when off)',
    'the request guard',
  ),
  'features.sso_integration': e(
    'SSO sign-in and linking (404 `feature.disabled` when off; admins still configure SSO)',
    'the request guard',
  ),
  'features.compliance_reporting': p('compliance reports and exports', COMPLIANCE),
  'features.custom_integrations': p('webhooks and integrations', 'webhooks'),
  'features.white_label_mobile': p('the white-labeled mobile app', MOBILE),
  'features.white_label': e('no "Powered by Soulfra" on pages and mail', 'pages'),
  'features.progress_tracking': p('learning progress tracking', 'progress tracking'),

  'ai_settings.allowed_providers': e('which providers a call may use', 'the router'),
  'ai_settings.cloud_fallback': e('whether a call may reach a cloud provider', 'the router'),
  'ai_settings.cost_optimization': e('cheapest allowed candidate first', 'the router'),
  'ai_settings.quality_gates.min_response_quality': p('refusing low-quality answers', 'response scoring'),
  'ai_settings.quality_gates.require_citations': e(
    'answers given sources must cite one (else refused: `quality.citations_missing`)',
    'src/agents/conversations.service.ts',
  ),
  'ai_settings.quality_gates.max_output_tokens': e(
    'the most tokens an answer may have (capped)',
    'the router',
  ),
  'ai_settings.safety_filters.level': {
    gates: 'prompts screened by the safety classifier (moderate, maximum)',
    status: 'conditional',
    by: 'the safety classifier, when configured (else a warning)',
    asks: not('minimal'),
    needs: (i) => i.classifier,
  },
  'ai_settings.safety_filters.blocked_terms': e('prompts holding a blocked term refused', 'the AI service'),
  'ai_settings.safety_filters.redact_pii': e(
    'personal data redacted before a cloud provider',
    'the AI service',
  ),
  'ai_settings.safety_filters.age_appropriate_filtering': p(
    'content unsuitable for minors',
    'a minors classifier',
  ),
  'ai_settings.custom_models[].alias': p('per-platform model aliases', 'per-platform model aliases'),
  'ai_settings.custom_models[].provider': p('per-platform model aliases', 'per-platform model aliases'),
  'ai_settings.custom_models[].model': p('per-platform model aliases', 'per-platform model aliases'),

  'governance.agent_approval_process': e(
    'how a listing is published: at once after the safety checks, by a moderator, or by member votes',
    'the marketplace',
  ),
  'governance.community_approval.approvals': e(
    'approvals (and rejections) that decide a listing under community approval',
    'the marketplace',
  ),
  'governance.community_approval.min_account_age_days': e(
    'how old a voter account must be under community approval',
    'the marketplace',
  ),
  'governance.community_approval.require_verified_email': e(
    'voters need a verified email under community approval',
    'the marketplace',
  ),
  'governance.content_moderation.enabled': p('moderating user content', 'content moderation'),
  'governance.content_moderation.level': p(
    'moderating user content',
    'content moderation',
    (v, bp) => bp.governance.content_moderation.enabled && v !== 'minimal',
  ),
  'governance.content_moderation.human_review': p('moderating user content', 'content moderation'),
  'governance.self_signup': e('POST /api/v1/auth/signup open to anyone', 'sign-up'),
  'governance.user_verification.email_required': e('sign-in only after the email is verified', SIGNUP),
  'governance.user_verification.age_verification': e('a date of birth stated at sign-up', SIGNUP),
  'governance.user_verification.minimum_age': e('sign-up refused under this age', SIGNUP),
  'governance.data_retention.chat_history_days': p('purging old chats', COMPLIANCE),
  'governance.data_retention.audit_log_days': p('purging old audit entries', COMPLIANCE),
  'governance.data_retention.deleted_user_grace_days': p("purging a deleted user's data", COMPLIANCE),
  'governance.compliance_packs': {
    gates: "a pack's controls (hipaa: no cloud provider without a BAA)",
    status: 'partial',
    by: `hipaa: the router; soc2, gdpr: ${COMPLIANCE}`,
    asks: (v) => Array.isArray(v) && v.some((pack) => pack !== 'hipaa'),
  },
  'governance.hipaa_baa_signed': e('cloud providers under the HIPAA pack', 'the router'),
};

/** Every setting path of a schema: leaves by dotted path, `[]` for the items of an array of objects. */
export function settingPaths(schema: TSchema = PlatformBlueprintSchema, prefix = ''): string[] {
  if (TypeGuard.IsObject(schema)) {
    return Object.entries(schema.properties).flatMap(([k, s]) =>
      settingPaths(s, prefix ? `${prefix}.${k}` : k),
    );
  }
  if (TypeGuard.IsArray(schema) && TypeGuard.IsObject(schema.items)) {
    return settingPaths(schema.items, `${prefix}[]`);
  }
  return [prefix];
}

/** The values at a dotted path (`[]` expands every item), skipping what is absent. */
function valuesAt(root: unknown, path: string): unknown[] {
  let values: unknown[] = [root];
  for (const part of path.split('.')) {
    const many = part.endsWith('[]');
    const key = many ? part.slice(0, -2) : part;
    const next: unknown[] = [];
    for (const v of values) {
      if (v === null || typeof v !== 'object') continue;
      const child = (v as Record<string, unknown>)[key];
      if (child === undefined) continue;
      if (many) {
        if (Array.isArray(child)) next.push(...child);
      } else next.push(child);
    }
    values = next;
  }
  return values;
}

/** The default `asks`: true, a non-zero number, a non-empty array or string. */
function asksByDefault(v: unknown): boolean {
  if (Array.isArray(v)) return v.length > 0;
  return v !== undefined && v !== null && v !== false && v !== 0 && v !== '';
}

/** A setting a platform sets that nothing enforces (yet, or on this instance). */
export interface UnenforcedSetting {
  setting: string;
  gates: string;
  /** The capability that will enforce it. */
  enforced_by: string;
}

/** Whether a row is enforced on this instance. */
function enforcedHere(row: SettingEnforcement, instance: InstanceCapabilities): boolean {
  if (row.status === 'enforced') return true;
  if (row.status === 'conditional') return row.needs?.(instance) ?? false;
  return false;
}

/**
 * The settings this blueprint sets (values that ask for something) that are not enforced on this
 * instance, in schema order.
 */
export function unenforcedSettings(
  bp: PlatformBlueprint,
  instance: InstanceCapabilities,
): UnenforcedSetting[] {
  const out: UnenforcedSetting[] = [];
  for (const [setting, row] of Object.entries(ENFORCEMENT)) {
    if (enforcedHere(row, instance)) continue;
    const asks = row.asks ?? asksByDefault;
    if (valuesAt(bp, setting).some((v) => asks(v, bp))) {
      out.push({ setting, gates: row.gates, enforced_by: row.by });
    }
  }
  return out;
}

/**
 * What an operator must be told about a blueprint on this instance (at create and in the
 * platform's status): settings that would silently do nothing here.
 */
export function blueprintWarnings(bp: PlatformBlueprint, instance: InstanceCapabilities): string[] {
  const out: string[] = [];
  const level = bp.ai_settings.safety_filters.level;
  if (level !== 'minimal' && !instance.classifier) {
    out.push(
      `ai_settings.safety_filters.level is '${level}' but this instance has no safety_classifier configured: prompts are not classified (blocked_terms and redact_pii still apply)`,
    );
  }
  return out;
}

const STATUS_TEXT: Record<EnforcementStatus, string> = {
  enforced: 'enforced',
  planned: 'planned',
  partial: 'partly enforced',
  conditional: 'enforced when configured',
};

/** Markdown table cells: pipes escaped. */
const cell = (s: string) => s.replace(/\|/g, '\\|');

/**
 * The table of docs/blueprint.md ("What each setting does today"), aligned the way the docs'
 * other tables are: every setting, what it gates, its status and who enforces it.
 */
export function renderEnforcementTable(): string {
  const rows = settingPaths().map((path) => {
    const row = ENFORCEMENT[path];
    if (!row) throw new Error(`no enforcement row for ${path}`);
    return [`\`${path}\``, cell(row.gates), STATUS_TEXT[row.status], cell(row.by)];
  });
  const head = ['Setting', 'Gates', 'Status', 'Enforced by'];
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (r: string[]) => `| ${r.map((c, i) => c.padEnd(widths[i]!)).join(' | ')} |`;
  return [line(head), `| ${widths.map((w) => '-'.repeat(w)).join(' | ')} |`, ...rows.map(line)].join('\n');
}

/** The markers around the generated table in docs/blueprint.md. */
export const TABLE_BEGIN =
  '<!-- settings-table:begin (generated by `bun run scripts/blueprint-settings.ts --write`) -->';
export const TABLE_END = '<!-- settings-table:end -->';

/** `doc` with the text between the markers replaced by the generated table. */
export function withEnforcementTable(doc: string): string {
  const start = doc.indexOf(TABLE_BEGIN);
  const end = doc.indexOf(TABLE_END);
  if (start < 0 || end < start) throw new Error('docs/blueprint.md has no settings-table markers');
  return `${doc.slice(0, start + TABLE_BEGIN.length)}\n\n${renderEnforcementTable()}\n\n${doc.slice(end)}`;
}
