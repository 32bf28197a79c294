import { type Static, Type as t } from '@sinclair/typebox';
import { TypeCompiler } from '@sinclair/typebox/compiler';
import { parse as parseYaml } from 'yaml';
import { AppError, type ErrorDetail } from '../shared/errors.ts';
import { parseCidr } from '../shared/outbound.ts';
import { validationDetails } from '../shared/validation.ts';

/**
 * The instance configuration (`soulfra serve --config soulfra.yaml`). Flags override the file;
 * the file overrides the defaults. Later issues add `providers`, `models` and `prices`.
 */
export const InstanceConfig = t.Object(
  {
    host: t.String({
      minLength: 1,
      description: 'address to listen on (127.0.0.1 by default; 0.0.0.0 for all)',
    }),
    port: t.Integer({ minimum: 0, maximum: 65535, description: 'TCP port (0 picks a free one)' }),
    base_domain: t.String({
      pattern: '^(localhost|[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*)$',
      description: 'platforms live at <slug>.<base_domain>; the bare base domain is the operator console',
    }),
    public_url: t.Optional(
      t.String({
        pattern: '^https?://[^/]+/?$',
        description:
          'how people reach the base domain, e.g. https://ai.example.com (scheme and port used in printed URLs)',
      }),
    ),
    pool_size: t.Integer({ minimum: 1, maximum: 100_000, description: 'platform databases kept open (LRU)' }),
    master_key_file: t.Optional(
      t.String({
        minLength: 1,
        description:
          'file holding the master key that wraps the data keys (default: <data dir>.master.key beside the data dir); SOULFRA_MASTER_KEY wins over it',
      }),
    ),
    metrics_token: t.Optional(
      t.String({ minLength: 16, description: 'if set, /metrics needs Authorization: Bearer <token>' }),
    ),
    deleted_slug_grace_days: t.Optional(
      t.Integer({
        minimum: 0,
        maximum: 3650,
        description:
          "days a deleted platform's slug stays reserved (default 30; `platform delete --slug-grace-days` overrides)",
      }),
    ),
    shutdown_timeout_ms: t.Integer({
      minimum: 0,
      maximum: 600_000,
      description: 'how long SIGTERM waits for in-flight requests',
    }),
    log_level: t.Union([t.Literal('debug'), t.Literal('info'), t.Literal('warn'), t.Literal('error')]),
    log_format: t.Union([t.Literal('text'), t.Literal('json')]),
    providers: t.Array(
      t.Object(
        {
          id: t.String({
            pattern: '^[a-z0-9][a-z0-9_-]{0,63}$',
            description: 'referred to by routes and blueprints',
          }),
          kind: t.Union([
            t.Literal('ollama'),
            t.Literal('onnx'),
            t.Literal('openai'),
            t.Literal('anthropic'),
          ]),
          url: t.Optional(t.String({ pattern: '^https?://', description: 'base URL of the upstream API' })),
          api_key_env: t.Optional(
            t.String({
              pattern: '^[A-Za-z_][A-Za-z0-9_]*$',
              description: 'environment variable holding the API key',
            }),
          ),
          location: t.Optional(t.Union([t.Literal('on_prem'), t.Literal('cloud')])),
          models_dir: t.Optional(
            t.String({
              minLength: 1,
              description: 'ONNX: a folder of <name>/model.onnx + <name>/tokenizer.json',
            }),
          ),
          timeout_ms: t.Optional(t.Integer({ minimum: 100, maximum: 600_000 })),
        },
        { additionalProperties: false },
      ),
      { description: 'model backends, tried in the order a route names them' },
    ),
    models: t.Array(
      t.Object(
        {
          alias: t.String({ pattern: '^[A-Za-z0-9][A-Za-z0-9._:-]{0,99}$' }),
          route: t.Array(t.String({ pattern: '^[a-z0-9][a-z0-9_-]{0,63}/.+$' }), { minItems: 1 }),
          max_tokens: t.Optional(
            t.Integer({
              minimum: 1,
              maximum: 1_000_000,
              description:
                'completion tokens reserved against budgets (and sent as max_tokens) when a request names none (default: ai.default_max_tokens)',
            }),
          ),
        },
        { additionalProperties: false },
      ),
    ),
    ai: t.Optional(
      t.Object(
        {
          max_streams_per_key: t.Optional(
            t.Integer({
              minimum: 1,
              maximum: 10_000,
              description:
                'streamed chat completions open at once per API key (or per signed-in user); default 8',
            }),
          ),
          default_max_tokens: t.Optional(
            t.Integer({
              minimum: 1,
              maximum: 1_000_000,
              description:
                'completion tokens reserved against budgets when neither the request nor its model alias names a maximum; default 4096',
            }),
          ),
        },
        { additionalProperties: false, description: 'limits of the OpenAI-compatible API' },
      ),
    ),
    safety_classifier: t.Optional(
      t.Object(
        {
          model_dir: t.String({
            minLength: 1,
            description: 'an ONNX classifier: <dir>/model.onnx + tokenizer.json, output logits',
          }),
          labels: t.Array(t.String({ minLength: 1 }), {
            minItems: 2,
            description: 'the labels, in logit order',
          }),
          block: t.Array(t.String({ minLength: 1 }), {
            minItems: 1,
            description: 'labels that refuse a request',
          }),
          min_score: t.Optional(
            t.Number({
              minimum: 0,
              maximum: 1,
              description: 'refuse at this probability or above (default 0.5)',
            }),
          ),
        },
        {
          additionalProperties: false,
          description: 'runs on every AI request of platforms whose safety level is moderate or maximum',
        },
      ),
    ),
    prices: t.Record(
      t.String({ pattern: '^[a-z0-9][a-z0-9_-]{0,63}/.+$' }),
      t.Object(
        {
          input: t.Integer({ minimum: 0, description: 'minor units per 1M input tokens' }),
          output: t.Integer({ minimum: 0, description: 'minor units per 1M output tokens' }),
          currency: t.String({ pattern: '^[a-z]{3}$' }),
        },
        { additionalProperties: false },
      ),
    ),
    trusted_proxies: t.Optional(
      t.Array(t.String({ minLength: 1 }), {
        maxItems: 100,
        description:
          'CIDRs of the reverse proxies in front of this server (e.g. 127.0.0.1/32): a request from one of them is taken to come from the address its X-Forwarded-For names (read from the right, past trusted hops), for sign-in limits and audit entries; none by default (the header is ignored)',
      }),
    ),
    mail: t.Optional(
      t.Object(
        {
          from: t.Optional(
            t.String({
              maxLength: 254,
              pattern: '^[^\\s@<>"]+@[^\\s@<>"]+$',
              description:
                "the sender address of every platform's mail (default noreply@<base_domain>); the display name is the platform's, and a platform's blueprint may name its own (identity.email_from)",
            }),
          ),
          smtp: t.Optional(
            t.Object(
              {
                host: t.String({
                  minLength: 1,
                  maxLength: 253,
                  description: 'the SMTP server (relay) to hand mail to',
                }),
                port: t.Integer({ minimum: 1, maximum: 65535, description: '587 (STARTTLS), 465 (TLS), 25' }),
                secure: t.Optional(
                  t.Boolean({
                    description: 'TLS from the first byte (implicit TLS, port 465); default false',
                  }),
                ),
                starttls: t.Optional(
                  t.Union([t.Literal('required'), t.Literal('opportunistic'), t.Literal('never')], {
                    description:
                      'when secure is false: required (default: refuse to send in clear), opportunistic (upgrade when offered), never (a plain relay on loopback)',
                  }),
                ),
                auth: t.Optional(
                  t.Object(
                    {
                      user: t.String({ minLength: 1, maxLength: 320 }),
                      pass_env: t.String({
                        pattern: '^[A-Za-z_][A-Za-z0-9_]*$',
                        description: 'environment variable holding the password (never written in the file)',
                      }),
                    },
                    { additionalProperties: false },
                  ),
                ),
                helo: t.Optional(
                  t.String({
                    minLength: 1,
                    maxLength: 253,
                    description: "the name given in EHLO (default: the from address's domain)",
                  }),
                ),
                timeout_ms: t.Optional(
                  t.Integer({ minimum: 1_000, maximum: 300_000, description: 'default 30,000' }),
                ),
              },
              {
                additionalProperties: false,
                description: 'where mail is delivered; none: mail stays queued',
              },
            ),
          ),
          max_attempts: t.Optional(
            t.Integer({
              minimum: 1,
              maximum: 100,
              description: 'attempts before a message is failed after temporary errors (default 8)',
            }),
          ),
          retry_base_ms: t.Optional(
            t.Integer({
              minimum: 1_000,
              maximum: 86_400_000,
              description: 'first retry delay, doubled per attempt up to 6 h (default 60,000)',
            }),
          ),
        },
        { additionalProperties: false, description: "mail delivery of the platforms' mail queues" },
      ),
    ),
    outbound: t.Optional(
      t.Object(
        {
          allow: t.Array(t.String({ minLength: 1 }), {
            maxItems: 1000,
            description:
              'CIDRs (IPv4 or IPv6, e.g. 127.0.0.1/32, 10.20.0.0/16) that requests made for a platform may reach although they are loopback, private, link-local or otherwise not public (on-prem IdPs, tests)',
          }),
        },
        {
          additionalProperties: false,
          description:
            'the guard on outbound requests made for platforms (OIDC discovery, JWKS, tokens, ...)',
        },
      ),
    ),
    billing: t.Optional(
      t.Object(
        {
          currency: t.Optional(
            t.String({
              pattern: '^[a-z]{3}$',
              description:
                "the operator's currency (ISO 4217, lower case; default usd): the seeded operator plans are priced in it",
            }),
          ),
          plan_grace_days: t.Optional(
            t.Integer({
              minimum: 0,
              maximum: 365,
              description:
                "days a platform over its plan's limits keeps taking new users and agents before it is held (default 14)",
            }),
          ),
          stripe: t.Optional(
            t.Object(
              {
                secret_key_env: t.String({
                  pattern: '^[A-Z_][A-Z0-9_]*$',
                  description: "the environment variable holding the operator's Stripe secret key (sk_...)",
                }),
                webhook_secret_env: t.String({
                  pattern: '^[A-Z_][A-Z0-9_]*$',
                  description:
                    "the environment variable holding the webhook endpoints' signing secret (whsec_...)",
                }),
                api_base: t.Optional(
                  t.String({
                    pattern: '^https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?$',
                    description:
                      "Stripe's API origin (default https://api.stripe.com); a loopback origin for tests",
                  }),
                ),
              },
              { additionalProperties: false },
            ),
          ),
          grace_days: t.Optional(
            t.Integer({
              minimum: 0,
              maximum: 90,
              description:
                'days a past-due subscription keeps its tier before the user falls back to the free tier (default 7)',
            }),
          ),
          trial_days: t.Optional(
            t.Integer({
              minimum: 0,
              maximum: 90,
              description:
                "days of free trial on a user's first paid subscription of a platform (default 0: none)",
            }),
          ),
          operator_tax: t.Optional(
            t.Object(
              {
                behavior: t.Optional(
                  t.Union([t.Literal('exclusive'), t.Literal('inclusive')], {
                    description: 'tax added to the bill (exclusive, the default) or included in its prices',
                  }),
                ),
                rates: t.Array(
                  t.Object(
                    {
                      name: t.String({ minLength: 1, maxLength: 60, description: 'e.g. VAT 20%' }),
                      percent: t.Number({ minimum: 0, maximum: 100, description: 'up to four decimals' }),
                    },
                    { additionalProperties: false },
                  ),
                  { maxItems: 5 },
                ),
              },
              {
                additionalProperties: false,
                description: "the tax on the operator's bills to its platforms (default: none)",
              },
            ),
          ),
        },
        {
          additionalProperties: false,
          description:
            "payments: the operator's Stripe account (checkout, refunds, webhooks); without it, admins record payments by hand",
        },
      ),
    ),
    knowledge: t.Optional(
      t.Object(
        {
          embedding_model: t.String({
            minLength: 1,
            description: "the model alias agents' knowledge is embedded with (a configured alias)",
          }),
          chunk_chars: t.Optional(
            t.Integer({ minimum: 200, maximum: 8000, description: 'characters per chunk (default 1200)' }),
          ),
          max_bytes_per_platform: t.Optional(
            t.Integer({
              minimum: 1,
              description: 'the knowledge a platform may hold, in bytes of text (default 50 MB)',
            }),
          ),
        },
        {
          additionalProperties: false,
          description: "agents' knowledge (uploaded documents, searched in chats)",
        },
      ),
    ),
    web: t.Optional(
      t.Object(
        {
          custom_css_origins: t.Optional(
            t.Array(t.String({ pattern: '^https://[A-Za-z0-9.-]+(:[0-9]{1,5})?$' }), {
              maxItems: 50,
              description:
                "origins (https://host[:port]) a platform's custom CSS may load stylesheets and fonts from (e.g. https://fonts.googleapis.com, https://fonts.gstatic.com); none by default",
            }),
          ),
        },
        { additionalProperties: false, description: 'the browser apps (console, admin, portal)' },
      ),
    ),
  },
  { additionalProperties: false },
);
/** The resolved configuration. */
export type InstanceConfig = Static<typeof InstanceConfig>;

/** The embedded defaults: `npm start` needs nothing else. */
export const DEFAULT_CONFIG: InstanceConfig = {
  host: '127.0.0.1',
  port: 8080,
  base_domain: 'localhost',
  pool_size: 256,
  shutdown_timeout_ms: 10_000,
  log_level: 'info',
  log_format: 'text',
  providers: [],
  models: [],
  prices: {},
};

const check = TypeCompiler.Compile(InstanceConfig);

/** Validates a whole configuration; every bad key is named. */
export function validateConfig(value: unknown, source: string): InstanceConfig {
  if (check.Check(value)) {
    const cross = crossCheck(value);
    if (cross.length === 0) return value;
    const list = cross.map((d) => `${d.path} (${d.reason})`).join('; ');
    throw new AppError('config.invalid', `${source} is invalid: ${list}`, 400, cross);
  }
  // The one mapper of validation errors (JSON Pointer paths, most specific first, did-you-mean).
  const { details } = validationDetails(check.Errors(value));
  const list = details.map((d) => `${d.path || '/'} (${d.reason})`).join('; ');
  throw new AppError('config.invalid', `${source} is invalid: ${list}`, 400, details);
}

/** Reads a YAML (or JSON) configuration file: a partial configuration. */
export async function readConfigFile(path: string): Promise<Record<string, unknown>> {
  const file = Bun.file(path);
  if (!(await file.exists()))
    throw new AppError('config.not_found', `config file ${path} does not exist`, 400);
  let parsed: unknown;
  try {
    parsed = parseYaml(await file.text());
  } catch (e) {
    throw new AppError('config.unparseable', `config file ${path}: ${(e as Error).message}`, 400);
  }
  if (parsed == null) return {};
  if (typeof parsed !== 'object' || Array.isArray(parsed)) {
    throw new AppError('config.invalid', `config file ${path} must hold a mapping of settings`, 400);
  }
  return parsed as Record<string, unknown>;
}

/** Defaults ← file ← flags (undefined flags are ignored), validated as a whole. */
export function resolveConfig(
  file: Record<string, unknown>,
  flags: Partial<Record<keyof InstanceConfig, unknown>>,
  source = 'configuration',
): InstanceConfig {
  const merged: Record<string, unknown> = { ...DEFAULT_CONFIG, ...file };
  for (const [k, v] of Object.entries(flags)) if (v !== undefined) merged[k] = v;
  return validateConfig(merged, source);
}

/** Rules across keys: unique ids and aliases, routes that name known providers, ONNX folders. */
function crossCheck(c: InstanceConfig): ErrorDetail[] {
  const out: ErrorDetail[] = [];
  const ids = new Set<string>();
  c.providers.forEach((p, i) => {
    if (ids.has(p.id)) out.push({ path: `/providers/${i}/id`, reason: `duplicate provider id '${p.id}'` });
    ids.add(p.id);
    if (p.kind === 'onnx' && !p.models_dir)
      out.push({ path: `/providers/${i}/models_dir`, reason: 'required for kind onnx' });
  });
  const aliases = new Set<string>();
  c.models.forEach((m, i) => {
    if (aliases.has(m.alias))
      out.push({ path: `/models/${i}/alias`, reason: `duplicate alias '${m.alias}'` });
    aliases.add(m.alias);
    m.route.forEach((r, j) => {
      const provider = r.slice(0, r.indexOf('/'));
      if (!ids.has(provider))
        out.push({ path: `/models/${i}/route/${j}`, reason: `no provider '${provider}' is configured` });
    });
  });
  if (c.knowledge && !aliases.has(c.knowledge.embedding_model))
    out.push({
      path: '/knowledge/embedding_model',
      reason: `no model alias '${c.knowledge.embedding_model}' is configured`,
    });
  const sc = c.safety_classifier;
  if (sc) {
    sc.block.forEach((b, i) => {
      if (!sc.labels.includes(b))
        out.push({ path: `/safety_classifier/block/${i}`, reason: `'${b}' is not one of the labels` });
    });
  }
  for (const key of Object.keys(c.prices)) {
    const provider = key.slice(0, key.indexOf('/'));
    if (!ids.has(provider))
      out.push({
        path: `/prices/${key.replace(/~/g, '~0').replace(/\//g, '~1')}`,
        reason: `no provider '${provider}' is configured`,
      });
  }
  c.outbound?.allow.forEach((cidr, i) => {
    const r = parseCidr(cidr);
    if (!r.ok) out.push({ path: `/outbound/allow/${i}`, reason: `'${cidr}': ${r.reason}` });
  });
  c.trusted_proxies?.forEach((cidr, i) => {
    const r = parseCidr(cidr);
    if (!r.ok) out.push({ path: `/trusted_proxies/${i}`, reason: `'${cidr}': ${r.reason}` });
  });
  return out;
}
