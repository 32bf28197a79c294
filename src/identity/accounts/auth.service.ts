import type { Database } from 'bun:sqlite';
import type { App } from '../../app/index.ts';
import { stateKey } from '../../app/index.ts';
import { randomToken, sha256Hex } from '../../shared/crypto.ts';
import { AppError } from '../../shared/errors.ts';
import { revokeUserKeys } from '../apikeys/apikeys.ts';
import { queueMail } from '../mail/outbox.ts';
import { createSession, destroyUserSessions } from '../sessions/sessions.ts';
import { readIdentitySettings } from '../settings.ts';
import { deleteSignedInLinks } from '../sso/identities.repository.ts';
import {
  AUTH_LIMITS,
  accountAddressKey,
  addressKey,
  clearAccount,
  type Hold,
  lockWait,
  release,
  reserve,
} from '../throttle.ts';
import {
  emailTokenByHash,
  insertEmailToken,
  spendEmailToken,
  spendUserEmailTokens,
} from './email-tokens.repository.ts';
import { hashingBusy, hashPassword, LANE_QUEUE_CAP, laneHasRoom, verifyPassword } from './passwords.ts';
import { createUserRepository, type UserRow } from './users.repository.ts';
import { checkPassword, claimInvitation } from './users.service.ts';
import { mustConfirmEmail, type SignupPolicy } from './verification.ts';

// Checked when the email is unknown, so a miss costs the same time as a wrong password (made
// once per App, on the first sign-in).
const DUMMY_HASH = stateKey('identity.dummy_hash', (): { hash: Promise<string> | null } => ({ hash: null }));

/** The one message for every failed sign-in: it never says whether the account exists. */
const BAD_CREDENTIALS = () => new AppError('auth.invalid_credentials', 'email or password is incorrect', 401);

/** The refusal while a key is locked (429 with Retry-After); it never says which limit held. */
export function throttled(wait: number, what = 'failed sign-ins'): AppError {
  const e = new AppError('auth.throttled', `too many ${what}; try again in ${wait} s`, 429);
  e.retryAfter = wait;
  return e;
}

/**
 * Refuses an unauthenticated request from an address that is locked for failures (30 in 15
 * minutes across sign-in, reset and email links), before any work is done for it. Links with a
 * live token pass (`checkAddressUnlessLive`).
 */
export function checkAddress(db: Database, ip: string | null, now: number): void {
  const wait = lockWait(db, AUTH_LIMITS.address, addressKey(ip), now);
  if (wait > 0) throw throttled(wait, 'failed requests from this address');
}

/** Counts one failure of an unauthenticated request (a bad reset or email link) against its address. */
export function addressFailed(db: Database, ip: string | null, now: number): void {
  reserve(db, [[AUTH_LIMITS.address, addressKey(ip)]], now);
}

/** A started session, for the route to set as a cookie. */
export interface SignedIn {
  user: UserRow;
  token: string;
  csrfToken: string;
  expiresAt: number;
  mfaPending: boolean;
}

/**
 * Email and password sign-in. Before any hashing, in one synchronous step, the platform's share
 * of the hashing capacity is checked (full: 429 `auth.busy`) and the attempt is reserved
 * against the account from this address, the account from anywhere, and the address (any of
 * them locked: 429 `auth.throttled`, nothing hashed), so a concurrent burst runs at most the
 * limit's worth of hashes. A success forgives the account's counts (as Keycloak and GitLab
 * reset them); a failure stays counted, in the platform database, so a restart keeps it.
 * Success, failure and a lock-out are audited; the error is the same whether the account is
 * unknown, deactivated or the password wrong. With TOTP, or a role that must have MFA, the
 * session starts pending.
 */
export async function passwordSignIn(
  app: App,
  db: Database,
  platformId: string,
  input: { email?: unknown; password?: unknown },
  client: { ip: string | null; userAgent: string | null },
  /** The blueprint's sign-up rules: an unconfirmed sign-up account is refused (403). */
  policy?: SignupPolicy,
): Promise<SignedIn> {
  const email = typeof input.email === 'string' ? input.email.trim().toLowerCase() : '';
  const password = typeof input.password === 'string' ? input.password : '';
  if (!email || !password) {
    throw new AppError('auth.invalid_request', 'email and password are required', 400, [
      ...(email ? [] : [{ path: '/email', reason: 'required' }]),
      ...(password ? [] : [{ path: '/password', reason: 'required' }]),
    ]);
  }
  if (email.length > 320 || password.length > 1024) throw BAD_CREDENTIALS();
  const settings = readIdentitySettings(db);
  if (!settings.password_login)
    throw new AppError(
      'auth.password_login_disabled',
      'this platform signs in with single sign-on only',
      403,
    );
  const dummy = app.state.get(DUMMY_HASH);
  dummy.hash ??= hashPassword(app, randomToken(16));
  const fallback = await dummy.hash;
  // NB! From here to the verify call nothing awaits: the room check, the reservation and the
  // place in the queue are taken in one step, so concurrent attempts cannot overtake the count.
  const now = app.clock.now();
  const address = addressKey(client.ip);
  const pair = accountAddressKey(email, address);
  const lane = { lane: platformId, queueCap: LANE_QUEUE_CAP };
  if (!laneHasRoom(app, platformId, LANE_QUEUE_CAP)) throw hashingBusy();
  const holds: Hold[] = [
    [AUTH_LIMITS.accountAddress, pair],
    [AUTH_LIMITS.account, email],
    [AUTH_LIMITS.address, address],
  ];
  const r = reserve(db, holds, now);
  if (!r.ok) throw throttled(r.wait);
  const user = createUserRepository({ db }).byEmail(email);
  let ok: boolean;
  try {
    ok = await verifyPassword(app, password, user?.password_hash ?? fallback, lane);
  } catch (e) {
    // Not the client's failure (the hash could not run): the attempt is taken back.
    for (const [l, key] of holds) release(db, l, key, app.clock.now());
    throw e;
  }
  if (!user || !ok || user.status !== 'active' || !user.password_hash) {
    db.transaction(() => {
      app.audit.append(db, {
        actor: user ? `user:${user.id}` : 'anonymous',
        action: 'user.sign_in_failed',
        target: user ? `user:${user.id}` : `email:${email}`,
        details: {
          ip: client.ip,
          reason: !user ? 'unknown_email' : user.status !== 'active' ? 'deactivated' : 'bad_password',
        },
      });
      const scope = r.lockedNow.find((l) => l !== AUTH_LIMITS.address);
      if (user && scope) {
        app.audit.append(db, {
          actor: 'system',
          action: 'user.locked_out',
          target: `user:${user.id}`,
          details: {
            scope: scope === AUTH_LIMITS.account ? 'account' : 'account_from_address',
            ip: client.ip,
            until: new Date(now + (scope.lockMs ?? scope.windowMs)).toISOString(),
          },
        });
      }
    }).immediate();
    throw BAD_CREDENTIALS();
  }
  if (policy && mustConfirmEmail(user, policy)) {
    // The right password: not a failure, but no session until the address is confirmed.
    for (const [l, key] of holds) release(db, l, key, app.clock.now());
    throw new AppError(
      'auth.email_unverified',
      'confirm your email address first: open the link we sent you (or sign up again for a new one)',
      403,
    );
  }
  const done = app.clock.now();
  const mfaPending = Boolean(user.totp_secret) || settings.mfa_required_roles.includes(user.role);
  const s = db
    .transaction(() => {
      clearAccount(db, email, done, address);
      release(db, AUTH_LIMITS.address, address, done);
      const started = createSession(db, done, settings, {
        userId: user.id,
        via: 'password',
        mfaPending,
        ip: client.ip,
        userAgent: client.userAgent,
      });
      app.audit.append(db, {
        actor: `user:${user.id}`,
        action: 'user.signed_in',
        target: `user:${user.id}`,
        details: { via: 'password', ip: client.ip, mfa_pending: mfaPending },
      });
      return started;
    })
    .immediate();
  return { user, ...s, mfaPending };
}

/**
 * Lifts a user's sign-in lock-outs (the account's and every address's for it). Only an owner
 * unlocks an owner. Audited; answers how many locks were in force.
 */
export function unlockUser(
  app: App,
  db: Database,
  userId: string,
  by: { actor: string; role: string | null },
): { user: UserRow; locksLifted: number } {
  const user = createUserRepository({ db }).byId(userId);
  if (!user) throw new AppError('user.not_found', `no user ${userId}`, 404);
  if (user.role === 'owner' && by.role !== null && by.role !== 'owner')
    throw new AppError('auth.forbidden', 'only an owner can unlock an owner', 403);
  return db
    .transaction(() => {
      const locksLifted = clearAccount(db, user.email.toLowerCase(), app.clock.now());
      app.audit.append(db, {
        actor: by.actor,
        action: 'user.unlocked',
        target: `user:${user.id}`,
        details: { locks_lifted: locksLifted },
      });
      return { user, locksLifted };
    })
    .immediate();
}

/** Starts a session for an SSO sign-in (OIDC or SAML) that already proved who the user is. Audited. */
export function ssoSignIn(
  app: App,
  db: Database,
  user: UserRow,
  via: 'oidc' | 'saml',
  client: { ip: string | null; userAgent: string | null },
): SignedIn {
  const settings = readIdentitySettings(db);
  const now = app.clock.now();
  const mfaPending = Boolean(user.totp_secret) || settings.mfa_required_roles.includes(user.role);
  const s = db
    .transaction(() => {
      const started = createSession(db, now, settings, {
        userId: user.id,
        via,
        mfaPending,
        ip: client.ip,
        userAgent: client.userAgent,
      });
      app.audit.append(db, {
        actor: `user:${user.id}`,
        action: 'user.signed_in',
        target: `user:${user.id}`,
        details: { via, ip: client.ip, mfa_pending: mfaPending },
      });
      return started;
    })
    .immediate();
  return { user, ...s, mfaPending };
}

const TOKEN_TTL = { verify_email: 48 * 3_600_000, reset_password: 3_600_000 } as const;

/**
 * Issues a one-time email token and queues its message in the outbox (delivery comes later).
 * Only the token's hash is stored; the link carries the token.
 */
export function issueEmailToken(
  app: App,
  db: Database,
  user: UserRow,
  purpose: 'verify_email' | 'reset_password',
  origin: string,
): void {
  const token = randomToken(32);
  const now = app.clock.now();
  const link = `${origin}/app/${purpose === 'verify_email' ? 'verify-email' : 'reset-password'}?token=${token}`;
  const subject = purpose === 'verify_email' ? 'Confirm your email address' : 'Reset your password';
  const body =
    purpose === 'verify_email'
      ? `Confirm your email address by opening this link within 48 hours:\n\n${link}\n`
      : `Someone asked to reset your password. If it was you, open this link within one hour:\n\n${link}\n\nIf not, ignore this message.`;
  db.transaction(() => {
    insertEmailToken(db, {
      tokenHash: sha256Hex(token),
      userId: user.id,
      purpose,
      now,
      expiresAt: now + TOKEN_TTL[purpose],
    });
    // The body holds the live link: queued sealed, wiped on delivery (outbox.ts).
    queueMail(db, { to_email: user.email, template: purpose, subject, body }, now);
  }).immediate();
}

type TokenPurpose = 'verify_email' | 'reset_password';

/**
 * The active user a live one-time token of `purpose` (unused, unexpired) belongs to, or null.
 * Reads only and counts nothing.
 */
function liveTokenUser(app: App, db: Database, token: unknown, purpose: TokenPurpose): UserRow | null {
  if (typeof token !== 'string' || token.length < 20 || token.length > 100) return null;
  const row = emailTokenByHash(db, sha256Hex(token));
  if (!row || row.purpose !== purpose || row.used_at !== null || app.clock.now() >= row.expires_at)
    return null;
  const user = createUserRepository({ db }).byId(row.user_id);
  return user?.status === 'active' ? user : null;
}

/**
 * The user a one-time token (unused, unexpired, right purpose) belongs to, or throws 400. With
 * `spend`, the token is used up. A bad token counts as a failure of the client's address.
 */
function redeem(
  app: App,
  db: Database,
  token: unknown,
  purpose: TokenPurpose,
  ip: string | null,
  spend: boolean,
): UserRow {
  const now = app.clock.now();
  const user = liveTokenUser(app, db, token, purpose);
  if (!user) {
    addressFailed(db, ip, now);
    throw new AppError('auth.token_invalid', 'this link is invalid or has expired; ask for a new one', 400, [
      { path: '/token', reason: 'invalid or expired' },
    ]);
  }
  if (spend && typeof token === 'string') spendEmailToken(db, sha256Hex(token), now);
  return user;
}

/**
 * The address lock for a token-bearing link (verify-email, reset-confirm): a request with a
 * live token carries its own unguessable proof and passes a locked address (so one bad actor
 * behind a shared NAT cannot block everyone's links); any other is refused while the address
 * is locked, and a bad token still counts against the address (`redeem`).
 */
function checkAddressUnlessLive(
  app: App,
  db: Database,
  token: unknown,
  purpose: TokenPurpose,
  ip: string | null,
): void {
  if (!liveTokenUser(app, db, token, purpose)) checkAddress(db, ip, app.clock.now());
}

/**
 * Confirms an email address from its link. A locked address is refused first unless the link
 * is live (`checkAddressUnlessLive`). Audited.
 */
export function verifyEmail(app: App, db: Database, token: unknown, client: { ip: string | null }): UserRow {
  checkAddressUnlessLive(app, db, token, 'verify_email', client.ip);
  // The bad-token count must survive the refusal, so the check runs outside the write.
  redeem(app, db, token, 'verify_email', client.ip, false);
  return db
    .transaction(() => {
      const user = redeem(app, db, token, 'verify_email', client.ip, true);
      createUserRepository({ db }).update(user.id, { email_verified_at: app.clock.now() }, app.clock.now());
      app.audit.append(db, {
        actor: `user:${user.id}`,
        action: 'user.email_verified',
        target: `user:${user.id}`,
        details: { email: user.email },
      });
      return createUserRepository({ db }).byId(user.id)!;
    })
    .immediate();
}

/**
 * Asks for a reset link. The answer is the same whether or not the account exists; limits: a
 * locked address or one past 10 requests in 15 minutes is refused (429, about the address), and
 * past 3 requests for one email in 15 minutes (known or not) no further message is queued,
 * with the same 202, so neither the mailbox nor the answer can be used to probe or flood.
 */
export function requestPasswordReset(
  app: App,
  db: Database,
  email: unknown,
  client: { ip: string | null },
  origin: string,
): void {
  if (typeof email !== 'string' || !email.trim())
    throw new AppError('auth.invalid_request', 'email is required', 400, [
      { path: '/email', reason: 'required' },
    ]);
  const now = app.clock.now();
  const address = addressKey(client.ip);
  checkAddress(db, client.ip, now);
  const byAddress = reserve(db, [[AUTH_LIMITS.resetAddress, address]], now);
  if (!byAddress.ok) throw throttled(byAddress.wait, 'reset requests from this address');
  const key = email.trim().toLowerCase().slice(0, 320);
  const byAccount = reserve(db, [[AUTH_LIMITS.resetAccount, key]], now);
  if (!byAccount.ok) return;
  const user = createUserRepository({ db }).byEmail(key);
  if (user && user.status === 'active') issueEmailToken(app, db, user, 'reset_password', origin);
}

/**
 * Sets a new password from a reset link. The link is checked before the (slow, fairly queued)
 * hash, so a bad link costs no hashing and counts against the address. Completing it, in one
 * transaction: spends every outstanding reset link of the user (not only this one), ends every
 * session, revokes the user's API keys (a reset is how an account is recovered after a
 * compromise, and keys made meanwhile must not outlive it), and lifts sign-in lock-outs (the
 * link proved the mailbox, as GitLab's unlock mail does), removes the SSO links the user made
 * through the link routes (`via` signed_in: an intruder's among them; SCIM/JIT links stay), and
 * claims an invitation account (it no longer links by email). A locked address is refused
 * first unless the link is live. Audited with the counts.
 */
export async function resetPassword(
  app: App,
  db: Database,
  platformId: string,
  token: unknown,
  password: unknown,
  client: { ip: string | null },
): Promise<void> {
  checkAddressUnlessLive(app, db, token, 'reset_password', client.ip);
  const pw = checkPassword(password);
  redeem(app, db, token, 'reset_password', client.ip, false);
  const hash = await hashPassword(app, pw, { lane: platformId, queueCap: LANE_QUEUE_CAP });
  db.transaction(() => {
    const user = redeem(app, db, token, 'reset_password', client.ip, true);
    const now = app.clock.now();
    createUserRepository({ db }).update(
      user.id,
      { password_hash: hash, email_verified_at: user.email_verified_at ?? now },
      now,
    );
    const spent = spendUserEmailTokens(db, user.id, now, 'reset_password');
    const ended = destroyUserSessions(db, user.id);
    const revoked = revokeUserKeys(db, user.id, now);
    const unlocked = clearAccount(db, user.email.toLowerCase(), now);
    // Links made through the link routes may be an intruder's: a recovery removes them. Links
    // from SCIM or JIT provisioning (or by email, set by an owner) stay: the IdP vouches for them.
    const unlinked = deleteSignedInLinks(db, user.id);
    // A password set claims an invitation: it no longer links by email.
    claimInvitation(db, user.id);
    app.audit.append(db, {
      actor: `user:${user.id}`,
      action: 'user.password_reset',
      target: `user:${user.id}`,
      details: {
        sessions_ended: ended,
        keys_revoked: revoked,
        other_reset_links_spent: spent,
        locks_lifted: unlocked,
        sso_links_removed: unlinked,
      },
    });
  }).immediate();
}
