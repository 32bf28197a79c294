import { type Static, Type as t } from '@sinclair/typebox';
import { TypeCompiler } from '@sinclair/typebox/compiler';
import { parse as parseYaml } from 'yaml';
import { AppError, type ErrorDetail } from '../shared/errors.ts';

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
    metrics_token: t.Optional(
      t.String({ minLength: 16, description: 'if set, /metrics needs Authorization: Bearer <token>' }),
    ),
    shutdown_timeout_ms: t.Integer({
      minimum: 0,
      maximum: 600_000,
      description: 'how long SIGTERM waits for in-flight requests',
    }),
    log_level: t.Union([t.Literal('debug'), t.Literal('info'), t.Literal('warn'), t.Literal('error')]),
    log_format: t.Union([t.Literal('text'), t.Literal('json')]),
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
};

const check = TypeCompiler.Compile(InstanceConfig);

/** Validates a whole configuration; every bad key is named. */
export function validateConfig(value: unknown, source: string): InstanceConfig {
  if (check.Check(value)) return value;
  const details: ErrorDetail[] = [];
  const seen = new Set<string>();
  for (const e of check.Errors(value)) {
    if (seen.has(e.path)) continue;
    seen.add(e.path);
    details.push({ path: e.path, reason: e.message });
  }
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
