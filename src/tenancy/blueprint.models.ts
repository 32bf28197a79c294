/**
 * The PlatformBlueprint: everything that makes one white-labeled platform (tenant) what it is.
 *
 * Every object is closed (`additionalProperties: false`) so a typo in a blueprint file is reported
 * instead of silently ignored. `errorMessage` on a schema is our own keyword: `validateBlueprint`
 * uses it as the reason when a value fails that schema (patterns are unreadable to most people).
 */
import { type Static, type TSchema, TypeGuard, Type as t } from '@sinclair/typebox';

// ---------------------------------------------------------------------------------------------
// Shared building blocks
// ---------------------------------------------------------------------------------------------

/** An id used in blueprints (provider ids, model aliases): lowercase, digits, `_` and `-`. */
const ID_PATTERN = '^[a-z0-9][a-z0-9_-]{0,63}$';

/** A lowercase ISO 4217 currency code, e.g. `usd`. */
export const Currency = t.String({
  pattern: '^[a-z]{3}$',
  description: 'ISO 4217 currency code in lowercase, e.g. `usd`, `eur`.',
  errorMessage: "must be a lowercase ISO 4217 currency code such as 'usd'",
});

/** An amount of money as an integer count of minor units (cents) plus its currency. */
export const Money = t.Object(
  {
    amount: t.Integer({
      minimum: 0,
      maximum: Number.MAX_SAFE_INTEGER,
      description: 'Amount in minor units of the currency (cents for usd): 1999 means 19.99.',
      errorMessage: 'must be a whole number of minor units ≥ 0 (e.g. 1999 for 19.99)',
    }),
    currency: Currency,
  },
  { additionalProperties: false, description: 'Money: integer minor units and a currency.' },
);
export type Money = Static<typeof Money>;

/** A percentage as a number from 0 to 100 inclusive. */
const Percent = (description: string) => t.Number({ minimum: 0, maximum: 100, description });

/** A CSS hex color, `#rrggbb` or `#rgb`. */
const Color = (description: string) =>
  t.String({
    pattern: '^#(?:[0-9a-fA-F]{3}|[0-9a-fA-F]{6})$',
    description: `${description} Hex color, \`#rrggbb\` or \`#rgb\`.`,
    errorMessage: 'must be a hex color like #1a2b3c or #abc',
  });

/** One CSS font family name (pages quote it and add fallbacks), unable to break out of CSS. */
const FontFamily = (description: string) =>
  t.String({
    minLength: 1,
    maxLength: 100,
    pattern: '^[^;{}<>,"\'\\\\\\x00-\\x1f\\x7f]+$',
    description: `${description} One font family name, e.g. \`Inter\`: 1–100 characters, without \`;{}<>,\`, quotes or backslashes; pages add the fallbacks.`,
    errorMessage:
      'must be one font family name, without ; { } < > , quotes, backslashes or control characters',
  });

/** A short piece of text shown to people (names, labels): non-blank, no control characters. */
const Label = (description: string, maxLength = 100) =>
  t.String({
    minLength: 1,
    maxLength,
    pattern: '^(?=[\\s\\S]*\\S)[^\\x00-\\x1f\\x7f]+$',
    description: `${description} 1–${maxLength} characters, not blank.`,
    errorMessage: 'must contain a non-space character and no control characters',
  });

/** A lowercase id (provider id, model alias). */
const Id = (description: string) =>
  t.String({
    pattern: ID_PATTERN,
    description: `${description} Lowercase letters, digits, \`_\` and \`-\`, at most 64 characters.`,
    errorMessage: 'must be a lowercase id: letters, digits, _ and -, starting with a letter or digit',
  });

// ---------------------------------------------------------------------------------------------
// identity
// ---------------------------------------------------------------------------------------------

/** Colors of the platform's UI. */
export const BrandColors = t.Object(
  {
    primary: Color('Main brand color: buttons, links, highlights.'),
    secondary: Color('Accent color.'),
    background: Color('Page background.'),
    text: Color('Body text color.'),
  },
  { additionalProperties: false, description: 'Brand colors.' },
);

/** Fonts of the platform's UI. */
export const BrandFonts = t.Object(
  {
    heading: FontFamily('Font for headings.'),
    body: FontFamily('Font for body text.'),
  },
  { additionalProperties: false, description: 'Brand fonts.' },
);

/** The look of the platform: logo, colors, fonts and extra CSS. */
export const Branding = t.Object(
  {
    logo: t.Optional(
      t.String({
        maxLength: 204_800,
        pattern:
          '^(?:/brand/logo-[0-9a-f]{16}\\.(?:png|jpg|gif|webp)' +
          '|https?://[A-Za-z0-9.-]+(?::[0-9]{1,5})?(?:[/?#][^\\s"\'<>\\\\]*)?' +
          '|data:image/[a-z0-9.+-]+(?:;[a-z0-9-]+=[a-z0-9.-]+)*(?:;base64)?,[A-Za-z0-9+/=%._~!$&()*,;:@-]*)$',
        description:
          'Logo: an uploaded logo (`/brand/logo-<hash>.<ext>`, set by POST /api/v1/platform/logo), an http(s) URL or a `data:image/...` URI (base64 or percent-encoded), at most 200 KB of text.',
        errorMessage:
          'must be an uploaded logo (/brand/logo-…), an http(s) URL or a data:image/... URI (base64 or percent-encoded)',
      }),
    ),
    colors: BrandColors,
    fonts: BrandFonts,
    color_scheme: t.Optional(
      t.Union([t.Literal('system'), t.Literal('light'), t.Literal('dark')], {
        description:
          "Light or dark pages: `system` (the default) follows the viewer's system setting; `light` or `dark` fixes it.",
        errorMessage: 'must be system, light or dark',
      }),
    ),
    custom_css: t.String({
      maxLength: 50_000,
      pattern: '^(?![\\s\\S]*<\\/[sS][tT][yY][lL][eE])[\\s\\S]*$',
      description: 'Extra CSS appended to the platform stylesheet, at most 50,000 characters, no `</style`.',
      errorMessage: 'must not contain </style',
    }),
  },
  { additionalProperties: false, description: 'Logo, colors, fonts and custom CSS.' },
);

/** Settings for the white-labeled mobile app build. */
export const MobileAppConfig = t.Object(
  {
    enabled: t.Boolean({ description: 'Whether a white-labeled mobile app is offered.' }),
    app_name: t.Optional(Label('Name under the app icon.', 30)),
    bundle_id: t.Optional(
      t.String({
        maxLength: 155,
        pattern: '^[a-zA-Z][a-zA-Z0-9_-]*(?:\\.[a-zA-Z][a-zA-Z0-9_-]*)+$',
        description: 'Reverse-DNS bundle / application id, e.g. `com.acme.app`.',
        errorMessage: 'must be a reverse-DNS id like com.acme.app',
      }),
    ),
    primary_color: t.Optional(Color('App theme color (defaults to the brand primary color).')),
  },
  { additionalProperties: false, description: 'White-labeled mobile app settings.' },
);

/** Who the platform is: its name, domain and look. */
export const Identity = t.Object(
  {
    name: Label('Display name of the platform.'),
    domain: t.Optional(
      t.String({
        maxLength: 253,
        pattern: '^(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\\.)+[a-z](?:[a-z0-9-]{0,61}[a-z0-9])?$',
        description:
          'Custom domain the platform answers on, e.g. `learn.example.edu`: a lowercase DNS name with at least one dot. Omit to use only the appliance URL.',
        errorMessage: 'must be a lowercase DNS name with at least one dot, like learn.example.edu',
      }),
    ),
    branding: Branding,
    mobile_app_config: MobileAppConfig,
    email_from: t.Optional(
      t.String({
        maxLength: 254,
        pattern: '^[^\\s@<>"]+@[^\\s@<>"]+$',
        description:
          "Sender address of the platform's mail, e.g. `noreply@learn.example.edu` (default: the instance's `mail.from`). Set by the operator: the instance's SMTP relay sends as it.",
        errorMessage: 'must be an email address',
      }),
    ),
  },
  { additionalProperties: false, description: 'Name, domain, branding and mobile app.' },
);

// ---------------------------------------------------------------------------------------------
// monetization
// ---------------------------------------------------------------------------------------------

/** Usage limits attached to a subscription tier. */
export const TierLimits = t.Object(
  {
    requests_per_day: t.Optional(
      t.Integer({ minimum: 0, description: 'AI requests per user per day (0 = none allowed).' }),
    ),
    agents: t.Optional(t.Integer({ minimum: 0, description: 'Agents a user may create.' })),
    seats: t.Optional(t.Integer({ minimum: 1, description: 'People covered by one subscription.' })),
  },
  { additionalProperties: false, description: 'Limits of a tier; an omitted limit means unlimited.' },
);

/** One subscription tier (plan) users can buy. */
export const SubscriptionTier = t.Object(
  {
    id: t.String({
      pattern: '^[a-z][a-z0-9_-]{0,31}$',
      description: 'Stable tier id (slug), unique within the blueprint, e.g. `pro`.',
      errorMessage: 'must be a lowercase slug: a letter, then letters, digits, _ or -, at most 32',
    }),
    name: Label('Tier name shown to users.'),
    price: Money,
    interval: t.Union([t.Literal('month'), t.Literal('year')], { description: 'Billing interval.' }),
    features: t.Optional(
      t.Array(Label('A selling point.', 200), {
        maxItems: 50,
        description: 'Selling points listed on the pricing page.',
      }),
    ),
    limits: t.Optional(TierLimits),
    included_usage: t.Optional(
      t.Object(Money.properties, {
        additionalProperties: false,
        description:
          "AI usage included each calendar month (UTC): the tier's subscribers are not charged for usage (cost plus markup) up to this amount; beyond it, usage is charged as usual.",
      }),
    ),
  },
  { additionalProperties: false, description: 'A subscription tier.' },
);
export type SubscriptionTier = Static<typeof SubscriptionTier>;

/** How the platform makes money. */
export const Monetization = t.Object(
  {
    pricing_strategy: t.Union(
      [
        t.Literal('freemium'),
        t.Literal('subscription'),
        t.Literal('usage'),
        t.Literal('marketplace'),
        t.Literal('custom'),
      ],
      { description: 'Overall business model.' },
    ),
    currency: Currency,
    subscription_tiers: t.Array(SubscriptionTier, {
      maxItems: 20,
      description: 'Plans users can subscribe to; ids unique, prices in `currency`.',
    }),
    usage_pricing: t.Optional(
      t.Object(
        {
          markup_percent: Percent('Markup over the AI provider cost, 0–100.'),
        },
        { additionalProperties: false, description: 'Pay-per-use pricing: provider cost plus a markup.' },
      ),
    ),
    enterprise_contracts: t.Boolean({ description: 'Whether custom enterprise contracts are offered.' }),
    agent_creation_fees: t.Object(Money.properties, {
      additionalProperties: false,
      description: 'Fee charged for creating an agent (0 = free), in `currency`.',
    }),
    marketplace_commission: Percent('Share of marketplace sales the platform keeps, 0–100.'),
    creator_revenue_share: Percent('Share of marketplace sales paid to the agent creator, 0–100.'),
    payment_processing: t.Object(
      {
        provider: t.Union([t.Literal('stripe'), t.Literal('none')], {
          description: 'Payment processor; `none` means nothing is charged.',
        }),
        statement_descriptor: t.Optional(
          t.String({
            minLength: 5,
            maxLength: 22,
            pattern: '^(?=.*[A-Za-z])[^<>\\\\\'"*\\x00-\\x1f\\x7f]{5,22}$',
            description:
              "Text on customers' card statements: 5–22 characters, at least one letter, no `<>\\'\"*`.",
            errorMessage: 'must be 5–22 characters with at least one letter and none of < > \\ \' " *',
          }),
        ),
        tax_behavior: t.Optional(
          t.Union([t.Literal('inclusive'), t.Literal('exclusive')], {
            description: 'Whether tier prices include tax.',
          }),
        ),
      },
      { additionalProperties: false, description: 'Payment processing.' },
    ),
  },
  { additionalProperties: false, description: 'Pricing, tiers, fees and revenue split.' },
);

// ---------------------------------------------------------------------------------------------
// features
// ---------------------------------------------------------------------------------------------

const flag = (description: string) => t.Boolean({ description });

/** Which product features the platform turns on. */
export const Features = t.Object(
  {
    agent_creation: flag('Users can create their own agents.'),
    agent_marketplace: flag('Users can publish, find and buy agents.'),
    viral_sharing: flag('Users can share agents and chats through public links.'),
    collaborative_agents: flag('Several users can work with the same agent together.'),
    analytics_dashboard: flag('Usage analytics for admins and creators.'),
    revenue_reporting: flag('Revenue reports for admins and creators.'),
    user_management: flag('Admins manage users, roles and teams.'),
    api_access: flag('Users can call the platform through an API key.'),
    sso_integration: flag('Sign-in through the organisation’s identity provider (SSO).'),
    compliance_reporting: flag('Compliance reports (audit exports, retention evidence).'),
    custom_integrations: flag('Webhooks and custom integrations.'),
    white_label_mobile: flag('A white-labeled mobile app.'),
    white_label: flag('No "powered by Soulfra" marks anywhere.'),
    progress_tracking: flag('Learning progress tracking (education).'),
  },
  { additionalProperties: false, description: 'Feature switches.' },
);
export type FeatureName = keyof Static<typeof Features>;

// ---------------------------------------------------------------------------------------------
// ai_settings
// ---------------------------------------------------------------------------------------------

const SafetyLevel = (description: string) =>
  t.Union([t.Literal('minimal'), t.Literal('moderate'), t.Literal('maximum')], { description });

/** How the platform uses AI providers and models. */
export const AiSettings = t.Object(
  {
    allowed_providers: t.Array(Id('A provider id.'), {
      maxItems: 64,
      uniqueItems: true,
      description: 'Providers this platform may use (unique); an empty list means all configured providers.',
    }),
    cloud_fallback: t.Union([t.Literal('allowed'), t.Literal('never')], {
      description: 'Whether requests may fall back to a cloud provider when local models cannot serve them.',
    }),
    cost_optimization: t.Boolean({
      description: 'Route to the cheapest model that meets the quality gates.',
    }),
    quality_gates: t.Object(
      {
        min_response_quality: t.Optional(
          t.Number({ minimum: 0, maximum: 1, description: 'Minimum quality score of a response, 0–1.' }),
        ),
        require_citations: t.Boolean({ description: 'Responses must cite their sources.' }),
        max_output_tokens: t.Optional(
          t.Integer({ minimum: 1, maximum: 1_000_000, description: 'Cap on tokens per response.' }),
        ),
      },
      { additionalProperties: false, description: 'Quality requirements on responses.' },
    ),
    safety_filters: t.Object(
      {
        level: SafetyLevel('How strictly prompts and responses are filtered.'),
        blocked_terms: t.Array(Label('A blocked term.'), {
          maxItems: 1000,
          description: 'Terms refused in prompts and removed from responses.',
        }),
        redact_pii: t.Boolean({ description: 'Redact personal data before it reaches a provider.' }),
        age_appropriate_filtering: t.Boolean({ description: 'Filter content unsuitable for minors.' }),
      },
      { additionalProperties: false, description: 'Safety filters.' },
    ),
    custom_models: t.Array(
      t.Object(
        {
          alias: Id('Name agents use for this model (unique).'),
          provider: Id('Provider id serving the model.'),
          model: t.String({ minLength: 1, maxLength: 200, description: 'Model name at the provider.' }),
        },
        { additionalProperties: false, description: 'A model alias.' },
      ),
      { maxItems: 100, description: 'Model aliases, e.g. `tutor` → `ollama` / `llama3.1:8b`.' },
    ),
  },
  { additionalProperties: false, description: 'AI providers, quality and safety.' },
);

// ---------------------------------------------------------------------------------------------
// governance
// ---------------------------------------------------------------------------------------------

/** `governance.community_approval`'s defaults: what an omitted field means. */
export const COMMUNITY_APPROVAL_DEFAULTS = {
  approvals: 3,
  min_account_age_days: 7,
  require_verified_email: true,
} as const;

/** The platform's rules: approval, moderation, verification, retention, compliance. */
export const Governance = t.Object(
  {
    agent_approval_process: t.Union([t.Literal('automatic'), t.Literal('manual'), t.Literal('community')], {
      description:
        'How new agents get published: at once, after an admin approves, or after community votes.',
    }),
    community_approval: t.Optional(
      t.Object(
        {
          approvals: t.Optional(
            t.Integer({
              minimum: 1,
              maximum: 100,
              description: `Approvals from members in good standing that publish a listing; as many rejections send it to the moderators (omitted: ${COMMUNITY_APPROVAL_DEFAULTS.approvals}).`,
            }),
          ),
          min_account_age_days: t.Optional(
            t.Integer({
              minimum: 0,
              maximum: 3650,
              description: `How old (days) a voter's account must be (omitted: ${COMMUNITY_APPROVAL_DEFAULTS.min_account_age_days}).`,
            }),
          ),
          require_verified_email: t.Optional(
            t.Boolean({
              description: `Whether a voter's email address must be verified (omitted: ${COMMUNITY_APPROVAL_DEFAULTS.require_verified_email}).`,
            }),
          ),
        },
        {
          additionalProperties: false,
          description:
            'Who may vote under `agent_approval_process: community`, and how many votes decide (docs/agents.md, "Marketplace").',
        },
      ),
    ),
    content_moderation: t.Object(
      {
        enabled: t.Boolean({ description: 'Whether user content is moderated.' }),
        level: SafetyLevel('How strict moderation is.'),
        human_review: t.Boolean({ description: 'Flagged content waits for a person to review it.' }),
      },
      { additionalProperties: false, description: 'Content moderation.' },
    ),
    self_signup: t.Optional(
      t.Boolean({
        description:
          'Anyone may create an account with `POST /api/v1/auth/signup` (default false: accounts are made by admins, invitations, SSO or SCIM).',
      }),
    ),
    user_verification: t.Object(
      {
        email_required: t.Boolean({
          description:
            'People who sign up must confirm their email address before they can sign in (owners made by the operator and accepted invitees count as confirmed).',
        }),
        age_verification: t.Boolean({
          description: 'People who sign up must state their date of birth, checked against `minimum_age`.',
        }),
        minimum_age: t.Optional(
          t.Integer({
            minimum: 0,
            maximum: 120,
            description: 'Minimum age in years at sign-up, under `age_verification` (omitted: 0).',
          }),
        ),
      },
      { additionalProperties: false, description: 'User verification.' },
    ),
    data_retention: t.Object(
      {
        chat_history_days: t.Integer({ minimum: 0, description: 'Days chat history is kept; 0 = forever.' }),
        audit_log_days: t.Integer({
          minimum: 0,
          description: 'Days audit log entries are kept; 0 = forever.',
        }),
        deleted_user_grace_days: t.Integer({
          minimum: 0,
          description: "Days a deleted user's data is kept before it is purged; 0 = purge at once.",
        }),
      },
      { additionalProperties: false, description: 'Data retention.' },
    ),
    compliance_packs: t.Array(t.Union([t.Literal('hipaa'), t.Literal('soc2'), t.Literal('gdpr')]), {
      uniqueItems: true,
      description: 'Compliance packs whose controls are enforced (unique).',
    }),
    hipaa_baa_signed: t.Optional(
      t.Boolean({
        description:
          'Under the HIPAA pack, whether a Business Associate Agreement covers the cloud providers; without one no request ever goes to a cloud provider.',
      }),
    ),
  },
  {
    additionalProperties: false,
    description: 'Approval, moderation, verification, retention and compliance.',
  },
);

// ---------------------------------------------------------------------------------------------
// The blueprint
// ---------------------------------------------------------------------------------------------

/** The complete description of one platform; stored per tenant and validated on every change. */
export const PlatformBlueprint = t.Object(
  {
    version: t.Literal(1, { description: 'Blueprint format version; always 1.' }),
    identity: Identity,
    monetization: Monetization,
    features: Features,
    ai_settings: AiSettings,
    governance: Governance,
  },
  { additionalProperties: false, description: 'A platform blueprint (format version 1).' },
);
/** A complete, valid platform blueprint. */
export type PlatformBlueprint = Static<typeof PlatformBlueprint>;

/** Makes every object property optional, recursively; arrays stay whole (they are replaced, not merged). */
export type DeepPartial<T> = T extends readonly unknown[]
  ? T
  : T extends object
    ? { [K in keyof T]?: DeepPartial<T[K]> }
    : T;

/** A partial blueprint as given by a user: merged over a template, then validated. */
export type PartialBlueprint = DeepPartial<PlatformBlueprint>;

/** Rebuilds a schema with every object property optional, recursively (arrays kept whole). */
function deepPartialSchema(schema: TSchema): TSchema {
  if (!TypeGuard.IsObject(schema)) return schema;
  const properties: Record<string, TSchema> = {};
  for (const [key, value] of Object.entries(schema.properties)) {
    properties[key] = t.Optional(deepPartialSchema(value));
  }
  const { properties: _p, required: _r, ...options } = schema;
  return t.Object(properties, { ...options, additionalProperties: false });
}

/** Schema of a PartialBlueprint, for API docs; validate the merged result with `validateBlueprint`. */
export const PartialBlueprintSchema = t.Unsafe<PartialBlueprint>(deepPartialSchema(PlatformBlueprint));
