import type { Database } from 'bun:sqlite';
import type { App } from '../app/index.ts';
import { PLATFORM_ROLES, type PlatformRole } from './users.repository.ts';

const CONTROL = /[\u0000-\u001f\u007f]/;

/**
 * A same-origin path to return to after an SSO sign-in, or '/'. Anything that could leave the
 * origin (`//host`, `/\host`, absolute URLs, control characters, backslashes) is ignored.
 */
export function safeReturnTo(v: unknown, maxLength = 2000): string {
  if (typeof v !== 'string' || v.length === 0 || v.length > maxLength) return '/';
  if (!v.startsWith('/') || v.startsWith('//') || v.startsWith('/\\')) return '/';
  if (CONTROL.test(v) || v.includes('\\')) return '/';
  const u = new URL(v, 'http://same.invalid');
  return u.origin === 'http://same.invalid' ? `${u.pathname}${u.search}${u.hash}` : '/';
}

/** The role claim or attribute values map to: the most powerful match in `roleMap`, else the default. */
export function mapRoleValues(
  roleMap: Record<string, PlatformRole>,
  defaultRole: PlatformRole,
  values: unknown[],
): PlatformRole {
  const mapped = new Set(
    values
      .filter((v): v is string => typeof v === 'string')
      .map((v) => (Object.hasOwn(roleMap, v) ? roleMap[v] : undefined)),
  );
  return PLATFORM_ROLES.find((r) => mapped.has(r)) ?? defaultRole;
}

/** Removes one kind of SSO settings and its sign-ins in flight; false when none were set. Audited. */
export function removeSso(app: App, db: Database, kind: 'oidc' | 'saml', actor: string): boolean {
  return db
    .transaction(() => {
      const gone = db.query('DELETE FROM sso_providers WHERE kind = ?').run(kind).changes > 0;
      if (!gone) return false;
      db.query('DELETE FROM sso_requests WHERE kind = ?').run(kind);
      app.audit.append(db, { actor, action: `sso.${kind}_removed`, target: `sso:${kind}` });
      return true;
    })
    .immediate();
}

/** One kind of stored SSO settings (config JSON plus enabled and updated_at), or null. */
export function readSsoSettings<T extends object>(
  db: Database,
  kind: 'oidc' | 'saml',
): (T & { enabled: boolean; updated_at: number }) | null {
  const row = db
    .query<{ enabled: number; config: string; updated_at: number }, [string]>(
      'SELECT enabled, config, updated_at FROM sso_providers WHERE kind = ?',
    )
    .get(kind);
  if (!row) return null;
  return { ...(JSON.parse(row.config) as T), enabled: row.enabled === 1, updated_at: row.updated_at };
}
