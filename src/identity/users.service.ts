import type { Database } from 'bun:sqlite';
import type { App } from '../app/index.ts';
import { AppError, type ErrorDetail } from '../shared/errors.ts';
import { newId } from '../shared/ids.ts';
import { iso } from '../shared/time.ts';
import { revokeUserKeys } from './apikeys.ts';
import { hashPassword } from './passwords.ts';
import { destroyUserSessions } from './sessions.ts';
import { createUserRepository, PLATFORM_ROLES, type PlatformRole, type UserRow } from './users.repository.ts';

/** What clients see of a user (never hashes or MFA secrets). */
export interface UserView {
  id: string;
  email: string;
  name: string;
  role: PlatformRole;
  status: 'active' | 'disabled';
  email_verified: boolean;
  mfa_enabled: boolean;
  external_id: string | null;
  created_at: string;
  updated_at: string;
}

/** A user as clients see it. */
export function userView(u: UserRow): UserView {
  return {
    id: u.id,
    email: u.email,
    name: u.name,
    role: u.role,
    status: u.status,
    email_verified: u.email_verified_at !== null,
    mfa_enabled: Boolean(u.totp_secret),
    external_id: u.external_id ?? null,
    created_at: iso(u.created_at),
    updated_at: iso(u.updated_at),
  };
}

const EMAIL_RE = /^[^\s@]+@[^\s@]+$/;
/** Passwords: at least 12 characters (NIST 800-63B favours length over composition rules). */
export const MIN_PASSWORD = 12;

/** Checks a password's length; names the field. */
export function checkPassword(pw: unknown, path = '/password'): string {
  if (typeof pw !== 'string' || pw.length < MIN_PASSWORD || pw.length > 256) {
    throw new AppError('user.password_invalid', `password must be ${MIN_PASSWORD} to 256 characters`, 400, [
      { path, reason: `must be ${MIN_PASSWORD} to 256 characters` },
    ]);
  }
  return pw;
}

function checkRole(role: unknown, path = '/role'): PlatformRole {
  if (typeof role !== 'string' || !(PLATFORM_ROLES as readonly string[]).includes(role)) {
    throw new AppError('user.role_invalid', `role must be one of: ${PLATFORM_ROLES.join(', ')}`, 400, [
      { path, reason: `must be one of: ${PLATFORM_ROLES.join(', ')}` },
    ]);
  }
  return role as PlatformRole;
}

/**
 * Adds a user. With a password they can sign in at once; without one they are SSO-only (or
 * set one through a reset link). Only an owner may make another owner. Audited.
 */
export async function createUser(
  app: App,
  db: Database,
  input: {
    email?: unknown;
    name?: unknown;
    role?: unknown;
    password?: unknown;
    external_id?: unknown;
    given_name?: unknown;
    family_name?: unknown;
  },
  by: { actor: string; role: PlatformRole | null },
): Promise<UserRow> {
  // Checked before the (slow) hash, so bad input fails fast.
  checkUserInput(input, by);
  const password = input.password === undefined ? null : checkPassword(input.password);
  const hash = password ? await hashPassword(password) : null;
  return insertUser(app, db, input, by, hash);
}

function checkUserInput(
  input: { email?: unknown; name?: unknown; role?: unknown },
  by: { role: PlatformRole | null },
): { email: string; role: PlatformRole } {
  const details: ErrorDetail[] = [];
  const email = typeof input.email === 'string' ? input.email.trim().toLowerCase() : '';
  if (!EMAIL_RE.test(email) || email.length > 254)
    details.push({ path: '/email', reason: 'must be an email address' });
  if (input.name !== undefined && (typeof input.name !== 'string' || input.name.length > 200))
    details.push({ path: '/name', reason: 'must be text of at most 200 characters' });
  if (details.length) {
    throw new AppError(
      'user.invalid',
      `invalid user: ${details.map((d) => d.path).join(', ')}`,
      400,
      details,
    );
  }
  const role = checkRole(input.role ?? 'member');
  if (role === 'owner' && by.role !== null && by.role !== 'owner') {
    throw new AppError('auth.forbidden', 'only an owner can make another owner', 403);
  }
  return { email, role };
}

/**
 * The synchronous part of adding a user (row and audit entry in one transaction, or inside the
 * caller's), for callers that already hold a password hash or need none (SSO, SCIM).
 */
export function insertUser(
  app: App,
  db: Database,
  input: {
    email?: unknown;
    name?: unknown;
    role?: unknown;
    external_id?: unknown;
    given_name?: unknown;
    family_name?: unknown;
  },
  by: { actor: string; role: PlatformRole | null },
  passwordHash: string | null,
): UserRow {
  const { email, role } = checkUserInput(input, by);
  const users = createUserRepository({ db });
  const now = app.clock.now();
  const row: UserRow = {
    id: newId('usr'),
    email,
    name: typeof input.name === 'string' ? input.name : '',
    password_hash: passwordHash,
    role,
    status: 'active',
    email_verified_at: null,
    created_at: now,
    updated_at: now,
    external_id: typeof input.external_id === 'string' ? input.external_id : null,
    given_name: typeof input.given_name === 'string' ? input.given_name : null,
    family_name: typeof input.family_name === 'string' ? input.family_name : null,
  };
  try {
    db.transaction(() => {
      users.insert(row);
      app.audit.append(db, {
        actor: by.actor,
        action: 'user.created',
        target: `user:${row.id}`,
        details: { email, role },
      });
    }).immediate();
  } catch (e) {
    if (String(e).includes('UNIQUE constraint failed: users.email')) {
      throw new AppError('user.email_taken', `a user with email ${email} exists`, 409, [
        { path: '/email', reason: 'taken' },
      ]);
    }
    if (String(e).includes('UNIQUE constraint failed: users.external_id')) {
      throw new AppError('user.external_id_taken', 'a user with this externalId exists', 409, [
        { path: '/external_id', reason: 'taken' },
      ]);
    }
    throw e;
  }
  return users.byId(row.id)!;
}

/**
 * Changes a user's role. Only an owner grants or removes the owner role, and the last owner
 * cannot be demoted. Audited.
 */
export function changeRole(
  app: App,
  db: Database,
  userId: string,
  role: unknown,
  by: { actor: string; role: PlatformRole | null },
): UserRow {
  const next = checkRole(role);
  const users = createUserRepository({ db });
  const u = users.byId(userId);
  if (!u) throw new AppError('user.not_found', `no user ${userId}`, 404);
  if (u.role === next) return u;
  if ((next === 'owner' || u.role === 'owner') && by.role !== null && by.role !== 'owner') {
    throw new AppError('auth.forbidden', 'only an owner can grant or remove the owner role', 403);
  }
  db.transaction(() => {
    if (u.role === 'owner') {
      const owners = db
        .query<{ n: number }, []>(
          "SELECT count(*) AS n FROM users WHERE role = 'owner' AND status = 'active'",
        )
        .get()!.n;
      if (owners <= 1)
        throw new AppError(
          'user.last_owner',
          'the last owner cannot be demoted; make another owner first',
          409,
        );
    }
    users.update(userId, { role: next }, app.clock.now());
    app.audit.append(db, {
      actor: by.actor,
      action: 'user.role_changed',
      target: `user:${userId}`,
      details: { from: u.role, to: next },
    });
  }).immediate();
  return users.byId(userId)!;
}

/**
 * Activates or deactivates a user. Deactivation ends their sessions and revokes their API keys
 * at once, in the same transaction. Audited.
 */
export function setUserActive(
  app: App,
  db: Database,
  userId: string,
  active: boolean,
  actor: string,
): UserRow {
  const users = createUserRepository({ db });
  const u = users.byId(userId);
  if (!u) throw new AppError('user.not_found', `no user ${userId}`, 404);
  const status = active ? 'active' : 'disabled';
  if (u.status === status) return u;
  db.transaction(() => {
    if (!active && u.role === 'owner') {
      const owners = db
        .query<{ n: number }, []>(
          "SELECT count(*) AS n FROM users WHERE role = 'owner' AND status = 'active'",
        )
        .get()!.n;
      if (owners <= 1)
        throw new AppError('user.last_owner', 'the last active owner cannot be deactivated', 409);
    }
    const now = app.clock.now();
    users.update(userId, { status }, now);
    let sessions = 0;
    let keys = 0;
    if (!active) {
      sessions = destroyUserSessions(db, userId);
      keys = revokeUserKeys(db, userId, now);
    }
    app.audit.append(db, {
      actor,
      action: active ? 'user.activated' : 'user.deactivated',
      target: `user:${userId}`,
      details: active ? {} : { sessions_ended: sessions, keys_revoked: keys },
    });
  }).immediate();
  return users.byId(userId)!;
}

/**
 * Just-in-time provisioning for SSO: the user linked to (kind, subject), else the user with
 * that email (then linked), else a new one. A mapped role, when given, is applied (audited as
 * a role change). A deactivated user is refused.
 */
export async function provisionSsoUser(
  app: App,
  db: Database,
  sso: { kind: 'oidc' | 'saml'; subject: string; email: string; name?: string; role?: PlatformRole | null },
): Promise<UserRow> {
  const users = createUserRepository({ db });
  const actor = `sso:${sso.kind}`;
  // One transaction: the user, its link to the SSO subject and a mapped role commit together.
  return db
    .transaction(() => {
      const link = db
        .query<{ user_id: string }, [string, string]>(
          'SELECT user_id FROM sso_identities WHERE kind = ? AND subject = ?',
        )
        .get(sso.kind, sso.subject);
      let u = link ? users.byId(link.user_id) : users.byEmail(sso.email.toLowerCase());
      if (!u)
        u = insertUser(
          app,
          db,
          { email: sso.email, name: sso.name ?? '', role: sso.role ?? 'member' },
          { actor, role: null },
          null,
        );
      if (u.status !== 'active') throw new AppError('auth.user_disabled', 'this account is deactivated', 403);
      if (!link) {
        db.query(
          'INSERT OR IGNORE INTO sso_identities (kind, subject, user_id, created_at) VALUES (?, ?, ?, ?)',
        ).run(sso.kind, sso.subject, u.id, app.clock.now());
      }
      if (sso.role && sso.role !== u.role) u = changeRole(app, db, u.id, sso.role, { actor, role: null });
      return u;
    })
    .immediate();
}
