/**
 * Request schemas of the operator API (operator.routes.ts). Objects are closed: an unknown
 * field is a 400 naming it (with a did-you-mean). Fields whose rules live in a service (slugs,
 * blueprints, expiries, roles, scopes) keep the service's own error code through `errorCode`
 * (shared/validation.ts), so a wrong type answers as it did before schemas.
 */
import { Type } from '@sinclair/typebox';

const closed = { additionalProperties: false } as const;
const text = (description: string, extra: Record<string, unknown> = {}) =>
  Type.String({ description, errorMessage: 'must be text', ...extra });

export const SlugParams = Type.Object({ slug: Type.String({ description: 'The platform slug.' }) });
export const SlugHostParams = Type.Object({
  slug: Type.String({ description: 'The platform slug.' }),
  host: Type.String({ description: 'A custom domain mapped to the platform.' }),
});
export const SlugIdParams = Type.Object({
  slug: Type.String({ description: 'The platform slug.' }),
  id: Type.String({ description: 'An API key id (`key_...`).' }),
});
export const IdParams = Type.Object({
  id: Type.String({ description: 'An id (or, for operators, an email).' }),
});

export const PlatformCreate = Type.Object(
  {
    slug: Type.String({
      description: 'The platform slug: lowercase letters, digits and dashes.',
      errorCode: 'platform.slug_invalid',
    }),
    template: Type.Optional(text('A built-in template: creator, business, education or blank.')),
    blueprint: Type.Optional(
      Type.Unknown({ description: 'A partial PlatformBlueprint merged over the template.' }),
    ),
    name: Type.Optional(text("The platform's display name.")),
    domain: Type.Optional(text('A custom domain for the platform.')),
    owner_email: Type.Optional(text("The first owner's email.")),
  },
  closed,
);

export const PlatformUpdate = Type.Object(
  {
    blueprint: Type.Unknown({
      description:
        'A partial PlatformBlueprint merged over the current one, validated as at create (docs/blueprint.md, "Changing a platform").',
    }),
  },
  closed,
);

export const OwnerReset = Type.Object(
  {
    email: Type.Optional(
      Type.String({
        maxLength: 320,
        description: 'Which owner (default: the oldest active owner).',
        errorCode: 'request.invalid',
        errorMessage: 'must be text',
      }),
    ),
  },
  closed,
);

export const PlatformDeleteQuery = Type.Object({
  confirm: Type.Optional(Type.String({ description: "The platform's slug again, to confirm." })),
  slug_grace_days: Type.Optional(
    Type.String({
      pattern: '^[0-9]{1,4}$',
      description: "Days the slug stays reserved (default: the config's deleted_slug_grace_days, else 30).",
      errorMessage: 'must be a whole number of days',
      errorCode: 'platform.grace_invalid',
    }),
  ),
});

export const IssueMonth = Type.Object(
  {
    month: Type.String({
      pattern: '^\\d{4}-(0[1-9]|1[0-2])$',
      description: 'A calendar month (UTC) that has ended, YYYY-MM.',
      errorMessage: 'must be a month, YYYY-MM',
    }),
  },
  closed,
);

export const Reason = Type.Object(
  {
    reason: Type.Optional(
      Type.String({
        maxLength: 500,
        description: 'Why (kept in the audit trail).',
        errorMessage: 'must be text of at most 500 characters',
      }),
    ),
  },
  closed,
);

export const DomainAdd = Type.Object(
  { host: Type.String({ description: 'The custom domain to map.' }) },
  closed,
);

export const PlatformApiKeyCreate = Type.Object(
  {
    name: Type.Optional(Type.Unknown({ description: 'A name for the key.' })),
    scopes: Type.Optional(Type.Unknown({ description: 'The scopes, e.g. ["ai:invoke"].' })),
    expires_at: Type.Optional(Type.Unknown({ description: 'When the key expires (ISO 8601).' })),
    rate_per_min: Type.Optional(Type.Unknown({ description: 'Requests per minute the key may make.' })),
  },
  closed,
);

export const OperatorCreate = Type.Object(
  {
    email: Type.Optional(Type.Unknown({ description: "The operator's email." })),
    role: Type.Optional(Type.Unknown({ description: 'operator_admin or operator_viewer.' })),
  },
  closed,
);

export const OperatorRole = Type.Object(
  { role: Type.Optional(Type.Unknown({ description: 'operator_admin or operator_viewer.' })) },
  closed,
);

export const TokenCreate = Type.Object(
  {
    name: Type.Optional(Type.Unknown({ description: 'A name for the token.' })),
    operator: Type.Optional(Type.Unknown({ description: 'The operator (email or id) it acts for.' })),
    role: Type.Optional(Type.Unknown({ description: 'A role no wider than the operator’s.' })),
    expires_at: Type.Optional(Type.Unknown({ description: 'When it expires (ISO 8601), at most 365 days.' })),
    expires_in: Type.Optional(Type.Unknown({ description: 'Lifetime such as `30d` or `12h`.' })),
  },
  closed,
);

export const TokenListQuery = Type.Object({
  operator: Type.Optional(Type.String({ description: "Only this operator's tokens (admins)." })),
});

export const PlatformListQuery = Type.Object({
  include: Type.Optional(
    Type.String({ description: '`stats`: each platform with its users and 30 days of AI usage.' }),
  ),
});

export const OperatorAuditQuery = Type.Object({
  platform: Type.Optional(Type.String({ description: "A platform's chain (default: the control plane's)." })),
  after: Type.Optional(Type.String({ description: 'Entries after this sequence number (oldest first).' })),
  before: Type.Optional(Type.String({ description: 'Entries before this sequence number (newest first).' })),
  order: Type.Optional(Type.String({ description: 'asc (default) or desc.' })),
  limit: Type.Optional(Type.String({ description: 'At most this many (1–500, default 100).' })),
  action: Type.Optional(
    Type.String({ description: 'An action, or a prefix ending in a dot (`platform.`).' }),
  ),
  actor: Type.Optional(Type.String({ description: 'An actor, exactly.' })),
  target: Type.Optional(Type.String({ description: 'A piece of the target.' })),
  from: Type.Optional(Type.String({ description: 'ISO-8601: at or after this time.' })),
  to: Type.Optional(Type.String({ description: 'ISO-8601: before this time.' })),
});

export const AuditVerifyQuery = Type.Object({
  platform: Type.Optional(Type.String({ description: "Verify only this platform's chain." })),
});

export const ReturnToQuery = Type.Object({
  return_to: Type.Optional(Type.String({ description: 'Where to go after signing in (a path).' })),
});

export const KeysRotate = Type.Object(
  {
    master: Type.Optional(
      Type.Boolean({
        description: 'Rotate the master key (else the data key).',
        errorCode: 'keys.invalid',
        errorMessage: 'must be a boolean',
      }),
    ),
  },
  closed,
);

export const OidcSettings = Type.Unknown({ description: 'OIDC settings (issuer, client id and secret, …).' });

export const MailListQuery = Type.Object({
  status: Type.Optional(
    Type.String({
      description:
        'Comma-separated states: queued, sending, sent, failed, bounced, or `undelivered` (every state but sent; the default).',
    }),
  ),
  platform: Type.Optional(Type.String({ description: "Only this platform's mail (slug)." })),
});

export const MailTest = Type.Object(
  {
    to: text('The address to send the test message to.'),
    platform: Type.Optional(text("Send it in this platform's brand, from its address (slug).")),
  },
  closed,
);

export const OperatorSignInBody = Type.Object(
  {
    email: text("The operator's email."),
    password: text("The operator's password (the one printed at first run, for the first admin)."),
  },
  closed,
);

export const MfaCode = Type.Object({ code: text('The 6 digits the authenticator shows.') }, closed);

/** Federation (issue 12 item 8): a platform's trusted keys, and a peer's revocation list. */
export const SlugKeyParams = Type.Object({
  slug: Type.String({ description: 'The platform slug.' }),
  key: Type.String({ description: 'A federation key id (`ed25519:<32 hex>`).' }),
});
export const TrustedKeyAdd = Type.Object(
  {
    public_key: Type.String({
      minLength: 1,
      maxLength: 4000,
      description: "The other instance's federation public key (SPKI DER in base64, or PEM).",
    }),
    key_id: Type.Optional(
      Type.String({
        maxLength: 100,
        description: 'Its id as its operator read it (checked against the key).',
      }),
    ),
    label: Type.Optional(Type.String({ maxLength: 100, description: 'Whose key this is.' })),
  },
  { additionalProperties: false },
);
export const RevocationListBody = Type.Record(Type.String(), Type.Unknown(), {
  description:
    "Another instance's signed revocation list (format soulfra.revocations/1), as its GET /federation/revocations answered",
});
export const RevocationFetch = Type.Object(
  {
    url: Type.String({
      minLength: 1,
      maxLength: 2000,
      description: "The peer's list, e.g. https://<its base domain>/federation/revocations",
    }),
  },
  { additionalProperties: false },
);

// Operator plans (issue 13 item 1). Types here; ranges and the rest in billing/operator-plans.ts.
const planCode = { errorCode: 'billing.plan_invalid' } as const;
const planFields = {
  name: Type.Optional(text('What the plan is called.', { ...planCode, maxLength: 100 })),
  price_minor: Type.Optional(
    Type.Integer({ description: 'Its price in minor units (cents) per interval.', ...planCode }),
  ),
  price_is_minimum: Type.Optional(
    Type.Boolean({ description: 'The price is a minimum ("and up").', ...planCode }),
  ),
  interval: Type.Optional(
    Type.Union([Type.Literal('month'), Type.Literal('year')], { description: 'month or year', ...planCode }),
  ),
  currency: Type.Optional(text("ISO 4217, lower case (default: the operator's billing.currency).", planCode)),
  max_users: Type.Optional(
    Type.Union([Type.Integer(), Type.Null()], {
      description: 'Active users a platform may have (null: unlimited).',
      ...planCode,
    }),
  ),
  ai_markup_percent: Type.Optional(
    Type.Number({ description: "The operator's markup on a platform's AI cost, percent.", ...planCode }),
  ),
  ai_markup_tiers: Type.Optional(
    Type.Array(
      Type.Object(
        {
          over_minor: Type.Integer({
            description: "Once the platform's AI cost this month passes this (minor units).",
          }),
          markup_percent: Type.Number({ description: 'The markup from then on, percent.' }),
        },
        closed,
      ),
      { description: 'Volume discounts on the markup, ascending by over_minor.', ...planCode },
    ),
  ),
  transaction_fee_percent: Type.Optional(
    Type.Number({ description: "The operator's fee on a platform's sales, percent.", ...planCode }),
  ),
  features: Type.Optional(Type.Array(Type.String(), { description: 'What the plan includes.', ...planCode })),
  archived: Type.Optional(Type.Boolean({ description: 'Archived: no new platforms go on it.', ...planCode })),
};
export const PlanCreate = Type.Object(
  { id: Type.Optional(text('The plan id: a slug (a-z, 0-9, -).', planCode)), ...planFields },
  closed,
);
export const PlanUpdate = Type.Object(
  { id: Type.Optional(text('The plan id (unchanged).', planCode)), ...planFields },
  closed,
);
export const PlanParams = Type.Object({ id: Type.String({ description: 'A plan id.' }) });
export const PlatformPlanSet = Type.Object(
  { plan: text('The id of the plan to put the platform on.', planCode) },
  closed,
);
