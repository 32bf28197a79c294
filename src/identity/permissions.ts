import type { PlatformRole } from './users.repository.ts';

/**
 * What a platform route may need. `public` needs nothing; `signed_in` any signed-in user or
 * key; `mfa_pending` a session that has passed its first factor (the server checks it); the rest are checked against the matrix below. The permission matrix is data, here,
 * checked by one function (`can`).
 */
export type Permission =
  | 'public'
  | 'signed_in'
  | 'mfa_pending'
  | 'platform:read'
  | 'users:read'
  | 'users:write'
  | 'roles:write'
  | 'apikeys:own'
  | 'apikeys:admin'
  | 'settings:write'
  | 'sso:admin'
  | 'scim:admin'
  | 'scim:provision'
  | 'audit:read'
  | 'compliance:read'
  | 'ai:invoke'
  | 'agents:read'
  | 'agents:write'
  | 'billing:read'
  | 'billing:write';

/** Roles → permissions. Owner and admin run the platform; auditor is read-only audit and compliance. */
export const ROLE_PERMISSIONS: Readonly<Record<PlatformRole, readonly Permission[]>> = {
  owner: [
    'platform:read',
    'users:read',
    'users:write',
    'roles:write',
    'apikeys:own',
    'apikeys:admin',
    'settings:write',
    'sso:admin',
    'scim:admin',
    'audit:read',
    'compliance:read',
    'ai:invoke',
    'agents:read',
    'agents:write',
    'billing:read',
    'billing:write',
  ],
  admin: [
    'platform:read',
    'users:read',
    'users:write',
    'roles:write',
    'apikeys:own',
    'apikeys:admin',
    'settings:write',
    'sso:admin',
    'scim:admin',
    'audit:read',
    'compliance:read',
    'ai:invoke',
    'agents:read',
    'agents:write',
    'billing:read',
  ],
  creator: ['platform:read', 'apikeys:own', 'ai:invoke', 'agents:read', 'agents:write'],
  member: ['platform:read', 'apikeys:own', 'ai:invoke', 'agents:read'],
  auditor: ['platform:read', 'audit:read', 'compliance:read'],
};

/** API key scopes, and the permissions each one unlocks (still capped by the key's role). */
export const SCOPES = {
  'ai:invoke': ['ai:invoke'],
  'agents:read': ['agents:read', 'platform:read'],
  'agents:write': ['agents:write', 'agents:read', 'platform:read'],
  'billing:read': ['billing:read'],
  'audit:read': ['audit:read', 'compliance:read'],
  'users:read': ['users:read'],
  admin: ROLE_PERMISSIONS.admin,
} as const satisfies Record<string, readonly Permission[]>;

/** An API key scope. */
export type Scope = keyof typeof SCOPES;

/** Whether `s` names a scope. */
export function isScope(s: string): s is Scope {
  return Object.hasOwn(SCOPES, s);
}

/** Who is asking, on one platform. */
export type Principal =
  | { kind: 'user'; userId: string; role: PlatformRole; sessionId: string; csrfToken: string }
  | { kind: 'api_key'; keyId: string; userId: string | null; role: PlatformRole; scopes: readonly Scope[] }
  | { kind: 'scim'; tokenId: string };

const roleSets = new Map(Object.entries(ROLE_PERMISSIONS).map(([r, ps]) => [r, new Set<Permission>(ps)]));

/** Whether a role has a permission (the matrix alone). */
export function roleCan(role: PlatformRole, need: Permission): boolean {
  return roleSets.get(role)?.has(need) ?? false;
}

/**
 * The one permission check. A user has their role's permissions; an API key has the
 * intersection of its owner's role and its scopes; a SCIM token can only provision.
 */
export function can(p: Principal | null, need: Permission): boolean {
  if (need === 'public') return true;
  if (!p) return false;
  if (p.kind === 'scim') return need === 'scim:provision';
  if (need === 'scim:provision') return false;
  if (need === 'signed_in') return true;
  if (!roleCan(p.role, need)) return false;
  if (p.kind === 'user') return true;
  return p.scopes.some((s) => (SCOPES[s] as readonly Permission[]).includes(need));
}

/** How a principal is named in audit entries: `user:<id>`, `apikey:<id>`, `scim:<id>`, `anonymous`. */
export function actorOf(p: Principal | null): string {
  if (!p) return 'anonymous';
  return p.kind === 'user'
    ? `user:${p.userId}`
    : p.kind === 'api_key'
      ? `apikey:${p.keyId}`
      : `scim:${p.tokenId}`;
}

/** A principal's platform role (null for SCIM tokens and anonymous callers). */
export function roleOf(p: Principal | null): PlatformRole | null {
  return p && p.kind !== 'scim' ? p.role : null;
}

/** The user behind a principal (a session's user, a user key's owner), or null. */
export function userIdOf(p: Principal | null): string | null {
  return p && p.kind !== 'scim' ? p.userId : null;
}
