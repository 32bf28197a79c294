import type { Database } from 'bun:sqlite';
import { type App, admit, admitted } from '../../app/index.ts';
import { isUniqueViolation } from '../../db/index.ts';
import { AppError, type ErrorDetail } from '../../shared/errors.ts';
import { newId } from '../../shared/ids.ts';
import { iso } from '../../shared/time.ts';
import { revokeUserKeys } from '../apikeys/apikeys.ts';
import { destroyUserSessions } from '../sessions/sessions.ts';
import {
  deleteSsoIdentity,
  insertSsoIdentity,
  linkedUserId,
  userLinksTo,
  userSsoIdentities,
} from '../sso/identities.repository.ts';
import { spendUserEmailTokens } from './email-tokens.repository.ts';
import { createOnboardingRepository } from './onboarding.repository.ts';
import { hashPassword } from './passwords.ts';
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
  const hash = password ? await hashPassword(app, password) : null;
  // Without a password the account is an invitation: it links on its first SSO sign-in.
  return insertUser(app, db, input, by, hash, hash === null ? 'invite' : null);
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
  provisionedVia: 'invite' | 'scim' | null = null,
): UserRow {
  const { email, role } = checkUserInput(input, by);
  // A platform held over its operator plan's limits takes no new accounts (402).
  admit(db, 'user');
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
    provisioned_via: provisionedVia,
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
    if (isUniqueViolation(e, 'users', 'email')) {
      throw new AppError('user.email_taken', `a user with email ${email} exists`, 409, [
        { path: '/email', reason: 'taken' },
      ]);
    }
    if (isUniqueViolation(e, 'users', 'external_id')) {
      throw new AppError('user.external_id_taken', 'a user with this externalId exists', 409, [
        { path: '/external_id', reason: 'taken' },
      ]);
    }
    throw e;
  }
  admitted(db, 'user');
  return users.byId(row.id)!;
}

/**
 * Refuses (403 `user.owner_protected`) when someone who is not an owner would change an owner
 * account: owners are managed by owners only, on every path. `byRole` null is the system (the
 * operator, a CLI on the data dir) and may.
 */
export function assertMayManage(u: UserRow, byRole: PlatformRole | null, what: string): void {
  if (u.role === 'owner' && byRole !== null && byRole !== 'owner')
    throw new AppError('user.owner_protected', `only an owner can ${what} an owner account`, 403);
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
      if (users.activeOwners() <= 1)
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
 * at once, in the same transaction. Only an owner (or the system: `byRole` null) changes an
 * owner's status: owners are managed by owners. Audited.
 */
export function setUserActive(
  app: App,
  db: Database,
  userId: string,
  active: boolean,
  actor: string,
  byRole: PlatformRole | null = null,
): UserRow {
  const users = createUserRepository({ db });
  const u = users.byId(userId);
  if (!u) throw new AppError('user.not_found', `no user ${userId}`, 404);
  const status = active ? 'active' : 'disabled';
  if (u.status === status) return u;
  assertMayManage(u, byRole, active ? 'activate' : 'deactivate');
  db.transaction(() => {
    if (!active && u.role === 'owner') {
      if (users.activeOwners() <= 1)
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

/** What an SSO sign-in proved about a person, and what the platform's settings allow. */
export interface SsoSignInFacts {
  kind: 'oidc' | 'saml';
  /** The IdP: the OIDC issuer or the SAML IdP entity ID (links belong to one IdP). */
  issuer: string;
  subject: string;
  /** Lowercase; the IdP has verified it (OIDC `email_verified: true`, or a signed SAML assertion). */
  email: string;
  name?: string | undefined;
  /** The mapped role (null: roles are not synced; a new user then gets `defaultRole`). */
  role: PlatformRole | null;
  defaultRole: PlatformRole;
  /** Create unknown users at their first sign-in. */
  jit: boolean;
  /** The owner-set per-IdP setting: link an existing account whose email matches. */
  linkExistingByEmail: boolean;
  /** A signed-in user who asked to link this identity to their account (the link intent). */
  linkUserId?: string | null;
}

/** How an SSO identity came to be linked to its account (kept in `sso_identities.via`). */
export type SsoLinkVia = 'existing' | 'jit' | 'provisioned' | 'email' | 'signed_in';

/** A sign-in whose identity may not be linked to the account that holds its email: 409. */
function accountExists(email: string, why: string): AppError {
  return new AppError(
    'sso.account_exists',
    `an account with the email ${email} already exists and is not linked to this identity provider (${why}); sign in with its password and link it from there, or ask an owner`,
    409,
  );
}

/**
 * Finds, links or creates the account of an SSO sign-in. Linking is deliberate (as Keycloak's
 * first broker login): the identity (kind, issuer, subject) reaches an existing account only
 * when (a) it is already linked to it; or the signed-in holder of the account asked for the
 * link; or (b) the account was provisioned for SSO (by SCIM, or an invitation not yet claimed
 * by a password or a first sign-in), has no other
 * identity of this IdP, and the IdP's subject matches its SCIM externalId or its verified
 * email matches; or (c) the owner turned on `link_existing_by_email` for this IdP and the
 * account is not a password account whose email is unconfirmed. Never to an owner, except a
 * link the owner made (a) or asked for while signed in. Otherwise 409 `sso.account_exists`.
 * An unknown email makes a new account when JIT is on (else 403 `sso.user_not_provisioned`).
 * A mapped role is applied, but SSO never demotes an owner (owners are managed by owners).
 * A deactivated user is refused. One transaction; a new link is audited as `user.sso_linked`.
 */
export function provisionSsoUser(
  app: App,
  db: Database,
  sso: SsoSignInFacts,
  /** Told the account the sign-in is about, before any refusal (for the caller's audit entry). */
  seen: { user?: UserRow } = {},
): { user: UserRow; linkedVia: SsoLinkVia } {
  const users = createUserRepository({ db });
  const actor = `sso:${sso.kind}`;
  return db
    .transaction(() => {
      const linked = linkedUserId(db, sso);
      const link = linked === null ? null : { user_id: linked };
      let u: UserRow | null = null;
      let via: SsoLinkVia = 'existing';
      if (link && sso.linkUserId && link.user_id !== sso.linkUserId)
        throw new AppError(
          'sso.identity_linked_elsewhere',
          'this identity is already linked to another account here',
          409,
        );
      if (link) u = users.byId(link.user_id);
      else if (sso.linkUserId) {
        u = users.byId(sso.linkUserId);
        if (!u) throw new AppError('auth.forbidden', 'the account to link is gone', 403);
        via = 'signed_in';
      } else {
        const byExternal = users.byScimExternalId(sso.subject);
        const byEmail = users.byEmail(sso.email.toLowerCase());
        const candidate = byExternal ?? byEmail;
        if (!candidate) {
          if (!sso.jit)
            throw new AppError(
              'sso.user_not_provisioned',
              'there is no account for this user here; ask an administrator to add it',
              403,
            );
          u = insertUser(
            app,
            db,
            { email: sso.email, name: sso.name ?? '', role: sso.role ?? sso.defaultRole },
            { actor, role: null },
            null,
          );
          via = 'jit';
        } else {
          seen.user = candidate;
          via = linkableVia(db, candidate, sso, app.clock.now());
          u = candidate;
        }
      }
      if (u) seen.user = u;
      if (!u) throw new AppError('sso.link_broken', 'the linked account is gone; sign in again', 409);
      if (u.status !== 'active') throw new AppError('auth.user_disabled', 'this account is deactivated', 403);
      if (!link) {
        insertSsoIdentity(db, sso, u.id, app.clock.now(), via);
        if (via !== 'jit')
          app.audit.append(db, {
            actor: via === 'signed_in' ? `user:${u.id}` : actor,
            action: 'user.sso_linked',
            target: `user:${u.id}`,
            details: { kind: sso.kind, issuer: sso.issuer, subject: sso.subject, via },
          });
      }
      // The first sign-in claims an invitation: it no longer links other identities.
      claimInvitation(db, u.id);
      // NB! SSO never demotes an owner: an owner's role is changed by owners only.
      if (sso.role && sso.role !== u.role && u.role !== 'owner')
        u = changeRole(app, db, u.id, sso.role, { actor, role: null });
      return { user: u, linkedVia: via };
    })
    .immediate();
}

/**
 * Marks an invitation account as claimed (its first sign-in of any kind, or a password set), in
 * the caller's transaction: from then on it no longer links an SSO identity by its email, so a
 * claimed account is reached only through its own links (issue 8). SCIM accounts are unaffected.
 */
export function claimInvitation(db: Database, userId: string): void {
  createUserRepository({ db }).clearInviteMark(userId);
}

/**
 * Records an email change in the caller's transaction: the new address is unconfirmed
 * (`email_verified_at` cleared) and every outstanding email link of the user (verification and
 * reset, sent to the old address or for it) is spent, so a link in the old mailbox cannot
 * confirm or recover the account. Audited as `user.email_changed`; answers the links spent.
 */
export function recordEmailChange(
  app: App,
  db: Database,
  userId: string,
  change: { from: string; to: string },
  actor: string,
): number {
  const now = app.clock.now();
  createUserRepository({ db }).update(userId, { email_verified_at: null }, now);
  const spent = spendUserEmailTokens(db, userId, now);
  app.audit.append(db, {
    actor,
    action: 'user.email_changed',
    target: `user:${userId}`,
    details: { from: change.from, to: change.to, verification_cleared: true, email_links_spent: spent },
  });
  return spent;
}

/** One SSO link of a user, as the account pages and admins see it. */
export interface SsoIdentityView {
  /** Names the link in the URL of its removal (issuer and subject, base64url-encoded). */
  id: string;
  kind: 'oidc' | 'saml';
  issuer: string;
  subject: string;
  created_at: string;
  /** How it was made: signed_in (the holder linked it), provisioned, email, jit, legacy. */
  via: string;
}

/** A user's SSO links, oldest first. */
export function listSsoIdentities(db: Database, userId: string): SsoIdentityView[] {
  return userSsoIdentities(db, userId).map((r) => ({
    id: ssoIdentityId(r.issuer, r.subject),
    ...r,
    created_at: iso(r.created_at),
  }));
}

/** The URL-safe id of a link within its kind: its issuer and subject, base64url-encoded. */
export function ssoIdentityId(issuer: string, subject: string): string {
  return Buffer.from(JSON.stringify([issuer, subject])).toString('base64url');
}

/** The issuer and subject an id names, or null when it names none. */
export function parseSsoIdentityId(id: string): { issuer: string; subject: string } | null {
  try {
    const v = JSON.parse(Buffer.from(id, 'base64url').toString('utf8')) as unknown;
    if (Array.isArray(v) && v.length === 2 && typeof v[0] === 'string' && typeof v[1] === 'string')
      return { issuer: v[0], subject: v[1] };
  } catch {}
  return null;
}

/**
 * Removes one SSO link of a user (kind, issuer, subject); 404 `sso.identity_not_found` when the
 * user has no such link. `by.role` is the remover's role when an admin acts on another user
 * (owners' links are removed by owners only); null for the holder or the system. Audited as
 * `user.sso_unlinked`.
 */
export function removeSsoIdentity(
  app: App,
  db: Database,
  userId: string,
  link: { kind: string; issuer: string; subject: string },
  by: { actor: string; role: PlatformRole | null },
): void {
  const u = createUserRepository({ db }).byId(userId);
  if (!u) throw new AppError('user.not_found', `no user ${userId}`, 404);
  assertMayManage(u, by.role, 'unlink an identity of');
  db.transaction(() => {
    if (!deleteSsoIdentity(db, userId, link))
      throw new AppError('sso.identity_not_found', 'this account has no such linked identity', 404);
    app.audit.append(db, {
      actor: by.actor,
      action: 'user.sso_unlinked',
      target: `user:${userId}`,
      details: { kind: link.kind, issuer: link.issuer, subject: link.subject },
    });
  }).immediate();
}

/** Whether an SSO identity may be linked to an existing, unlinked-to-it account, and why; else 409. */
function linkableVia(db: Database, u: UserRow, sso: SsoSignInFacts, now: number): SsoLinkVia {
  if (u.role === 'owner')
    throw accountExists(u.email, 'an owner account links only when its owner signs in and links it');
  if (userLinksTo(db, u.id, sso.kind, sso.issuer) > 0)
    throw accountExists(u.email, 'the account is linked to another identity of this provider');
  const provisioned = u.provisioned_via ?? null;
  // An invitation links only while unclaimed: no password yet and never signed in (the mark is
  // cleared at the first sign-in and when a password is set); SCIM accounts keep linking.
  const invitation = provisioned === 'invite' && u.password_hash === null;
  // A mailed invitation binds the email only while it is open: an expired one no longer links
  // (an admin resends it); a placeholder an admin added without an invitation keeps linking.
  if (invitation && createOnboardingRepository({ db }).invitationExpiredFor(u.id, now))
    throw accountExists(u.email, 'its invitation has expired (an admin can resend it)');
  if (provisioned === 'scim' || invitation) {
    const subjectMatches = provisioned === 'scim' && u.external_id === sso.subject;
    if (subjectMatches || u.email === sso.email.toLowerCase()) return 'provisioned';
  }
  if (sso.linkExistingByEmail && u.email === sso.email.toLowerCase()) {
    if (u.password_hash !== null && u.email_verified_at === null)
      throw accountExists(u.email, 'its email address is not confirmed');
    return 'email';
  }
  throw accountExists(u.email, 'linking by email is off');
}
