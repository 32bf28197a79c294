import type { Database } from 'bun:sqlite';
import { type Static, Type as t } from '@sinclair/typebox';
import { TypeCompiler } from '@sinclair/typebox/compiler';
import { AppError } from '../shared/errors.ts';
import { PLATFORM_ROLES } from './accounts/users.repository.ts';

/** A platform's identity settings, changed by its owners and admins. */
export const IdentitySettings = t.Object(
  {
    session_idle_minutes: t.Integer({
      minimum: 5,
      maximum: 60 * 24 * 30,
      description: 'sign out after this long without a request',
    }),
    session_absolute_hours: t.Integer({
      minimum: 1,
      maximum: 24 * 90,
      description: 'sign out this long after sign-in, whatever happens',
    }),
    mfa_required_roles: t.Array(t.Union(PLATFORM_ROLES.map((r) => t.Literal(r))), { uniqueItems: true }),
    password_login: t.Boolean({ description: 'allow email and password sign-in (false: SSO only)' }),
    api_key_rate_per_min: t.Integer({
      minimum: 1,
      maximum: 1_000_000,
      description: 'default per-key rate limit',
    }),
    scim_manages_owners: t.Boolean({
      description:
        'let SCIM clients change, deactivate and delete owner accounts (only an owner may set this)',
    }),
  },
  { additionalProperties: false },
);
/** The settings' type. */
export type IdentitySettings = Static<typeof IdentitySettings>;

/** Defaults for a new platform. */
export const DEFAULT_IDENTITY_SETTINGS: IdentitySettings = {
  session_idle_minutes: 12 * 60,
  session_absolute_hours: 7 * 24,
  mfa_required_roles: [],
  password_login: true,
  api_key_rate_per_min: 600,
  scim_manages_owners: false,
};

/**
 * Settings only an owner may change, because they decide who can reach owner accounts:
 * whether SCIM manages owners, whether owners must use MFA, whether passwords (an owner's own
 * way in) are accepted. Owners are managed by owners only.
 */
export const OWNER_ONLY_SETTINGS = ['scim_manages_owners', 'mfa_required_roles', 'password_login'] as const;

/** The owner-only settings a change would alter (compared with the current settings). */
export function ownerOnlyChanges(before: IdentitySettings, change: unknown): string[] {
  if (typeof change !== 'object' || change === null || Array.isArray(change)) return [];
  const c = change as Record<string, unknown>;
  return OWNER_ONLY_SETTINGS.filter((k) => {
    if (!Object.hasOwn(c, k)) return false;
    if (k === 'mfa_required_roles') {
      // Only whether owners must use MFA is the owners' to decide.
      const next = Array.isArray(c[k]) ? (c[k] as unknown[]) : [];
      return before.mfa_required_roles.includes('owner') !== next.includes('owner');
    }
    return JSON.stringify(c[k]) !== JSON.stringify(before[k]);
  });
}

const check = TypeCompiler.Compile(IdentitySettings);

/** The platform's settings (defaults for what was never set). */
export function readIdentitySettings(db: Database): IdentitySettings {
  const row = db
    .query<{ value: string }, []>("SELECT value FROM identity_settings WHERE key = 'identity'")
    .get();
  return row
    ? { ...DEFAULT_IDENTITY_SETTINGS, ...(JSON.parse(row.value) as Partial<IdentitySettings>) }
    : DEFAULT_IDENTITY_SETTINGS;
}

/** Merges a change over the current settings, validates the whole, stores it; returns the result. */
export function writeIdentitySettings(db: Database, change: unknown): IdentitySettings {
  if (typeof change !== 'object' || change === null || Array.isArray(change)) {
    throw new AppError('settings.invalid', 'settings must be an object', 400, [
      { path: '', reason: 'must be an object' },
    ]);
  }
  const next = { ...readIdentitySettings(db), ...(change as object) };
  if (!check.Check(next)) {
    const seen = new Set<string>();
    const details = [...check.Errors(next)]
      .filter((e) => !seen.has(e.path) && seen.add(e.path))
      .map((e) => ({ path: e.path, reason: e.message }));
    throw new AppError(
      'settings.invalid',
      `invalid settings: ${details.map((d) => d.path).join(', ')}`,
      400,
      details,
    );
  }
  db.query(
    "INSERT INTO identity_settings (key, value) VALUES ('identity', ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
  ).run(JSON.stringify(next));
  return next;
}
