import type { PlatformRole } from './accounts/users.repository.ts';

/**
 * What a platform route may need. `public` needs nothing; `signed_in` any signed-in user or
 * key (read-only introspection such as `GET /me`); `mfa_pending` a session that has passed its
 * first factor (the server checks it); `account:manage` (signing out, everywhere too, and the
 * account's own settings) every role has in a session, while a key has it only when a scope
 * names it, so an `ai:invoke` key cannot sign its owner out. The rest are checked against the
 * matrix below. The permission matrix is data, here, checked by one function (`can`).
 */
export type Permission =
  | 'public'
  | 'signed_in'
  | 'mfa_pending'
  | 'account:manage'
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
    'account:manage',
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
    'account:manage',
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
  creator: ['account:manage', 'platform:read', 'apikeys:own', 'ai:invoke', 'agents:read', 'agents:write'],
  member: ['account:manage', 'platform:read', 'apikeys:own', 'ai:invoke', 'agents:read'],
  auditor: ['account:manage', 'platform:read', 'audit:read', 'compliance:read'],
};

/** A role's permissions without session management (what the `admin` and `owner` scopes grant). */
const withoutAccount = (ps: readonly Permission[]): Permission[] => ps.filter((p) => p !== 'account:manage');

/**
 * API key scopes, and the permissions each one unlocks (still capped by the key's role). A key
 * acts at most as admin: only the `owner` scope, which only an owner can grant, lets an owner's
 * key act as owner (`keyRole`). No scope but `account:manage` reaches session management.
 */
export const SCOPES = {
  'ai:invoke': ['ai:invoke'],
  'agents:read': ['agents:read', 'platform:read'],
  'agents:write': ['agents:write', 'agents:read', 'platform:read'],
  'billing:read': ['billing:read'],
  'audit:read': ['audit:read', 'compliance:read'],
  'users:read': ['users:read'],
  'account:manage': ['account:manage'],
  admin: withoutAccount(ROLE_PERMISSIONS.admin),
  owner: withoutAccount(ROLE_PERMISSIONS.owner),
} as const satisfies Record<string, readonly Permission[]>;

/** An API key scope. */
export type Scope = keyof typeof SCOPES;

/** Whether `s` names a scope. */
export function isScope(s: string): s is Scope {
  return Object.hasOwn(SCOPES, s);
}

/**
 * The role a key acts as: its owner's current role (a platform key's is admin), except that an
 * owner's key acts as admin unless its scopes include `owner`. Services that compare roles
 * (only an owner makes or manages owners) see this role, so an admin-scoped key of an owner
 * can do what an admin can and no more.
 */
export function keyRole(ownerRole: PlatformRole, scopes: readonly string[]): PlatformRole {
  return ownerRole === 'owner' && !scopes.includes('owner') ? 'admin' : ownerRole;
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
