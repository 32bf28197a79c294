import type { Database } from 'bun:sqlite';
import type { App } from '../app/index.ts';
import { randomToken, sha256Hex } from '../shared/crypto.ts';
import { AppError } from '../shared/errors.ts';
import { newId } from '../shared/ids.ts';
import { hashPassword, verifyPassword } from './passwords.ts';
import { createSession, destroyUserSessions } from './sessions.ts';
import { readIdentitySettings } from './settings.ts';
import { FailureThrottle } from './throttle.ts';
import { createUserRepository, type UserRow } from './users.repository.ts';
import { checkPassword } from './users.service.ts';

/** Per account: 5 failures in 15 minutes, then wait. Per address: 30 in 15 minutes. */
export const accountThrottle = new FailureThrottle({ limit: 5, windowMs: 15 * 60_000 });
/** Per client address, across accounts (password spraying). */
export const addressThrottle = new FailureThrottle({ limit: 30, windowMs: 15 * 60_000 });

// Checked when the email is unknown, so a miss costs the same time as a wrong password.
let dummyHash: Promise<string> | null = null;

/** The one message for every failed sign-in: it never says whether the account exists. */
const BAD_CREDENTIALS = () => new AppError('auth.invalid_credentials', 'email or password is incorrect', 401);

/** A started session, for the route to set as a cookie. */
export interface SignedIn {
  user: UserRow;
  token: string;
  csrfToken: string;
  expiresAt: number;
  mfaPending: boolean;
}

/**
 * Email and password sign-in, throttled per account and per address. Success and failure are
 * audited; the error is the same whether the account is unknown, deactivated or the password
 * wrong. When the user has TOTP, or their role must have MFA, the session starts pending.
 */
export async function passwordSignIn(
  app: App,
  db: Database,
  platformId: string,
  input: { email?: unknown; password?: unknown },
  client: { ip: string | null; userAgent: string | null },
): Promise<SignedIn> {
  const email = typeof input.email === 'string' ? input.email.trim().toLowerCase() : '';
  const password = typeof input.password === 'string' ? input.password : '';
  if (!email || !password) {
    throw new AppError('auth.invalid_request', 'email and password are required', 400, [
      ...(email ? [] : [{ path: '/email', reason: 'required' }]),
      ...(password ? [] : [{ path: '/password', reason: 'required' }]),
    ]);
  }
  const settings = readIdentitySettings(db);
  if (!settings.password_login)
    throw new AppError(
      'auth.password_login_disabled',
      'this platform signs in with single sign-on only',
      403,
    );
  const now = app.clock.now();
  const accountKey = `${platformId}:${email}`;
  const addressKey = `${platformId}:${client.ip ?? '-'}`;
  const wait = Math.max(
    accountThrottle.retryAfter(accountKey, now),
    addressThrottle.retryAfter(addressKey, now),
  );
  if (wait > 0) {
    throw Object.assign(
      new AppError('auth.throttled', `too many failed sign-ins; try again in ${wait} s`, 429),
      { retryAfter: wait },
    );
  }
  const user = createUserRepository({ db }).byEmail(email);
  dummyHash ??= hashPassword(randomToken(16));
  const ok = await verifyPassword(password, user?.password_hash ?? (await dummyHash));
  if (!user || !ok || user.status !== 'active' || !user.password_hash) {
    accountThrottle.fail(accountKey, now);
    addressThrottle.fail(addressKey, now);
    app.audit.append(db, {
      actor: user ? `user:${user.id}` : 'anonymous',
      action: 'user.sign_in_failed',
      target: user ? `user:${user.id}` : `email:${email}`,
      details: {
        ip: client.ip,
        reason: !user ? 'unknown_email' : user.status !== 'active' ? 'deactivated' : 'bad_password',
      },
    });
    throw BAD_CREDENTIALS();
  }
  accountThrottle.reset(accountKey);
  const mfaPending = Boolean(user.totp_secret) || settings.mfa_required_roles.includes(user.role);
  const s = db
    .transaction(() => {
      const started = createSession(db, now, settings, {
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
  const link = `${origin}/${purpose === 'verify_email' ? 'verify-email' : 'reset-password'}?token=${token}`;
  const subject = purpose === 'verify_email' ? 'Confirm your email address' : 'Reset your password';
  const body =
    purpose === 'verify_email'
      ? `Confirm your email address by opening this link within 48 hours:\n\n${link}\n`
      : `Someone asked to reset your password. If it was you, open this link within one hour:\n\n${link}\n\nIf not, ignore this message.`;
  db.transaction(() => {
    db.query(
      'INSERT INTO email_tokens (token_hash, user_id, purpose, created_at, expires_at) VALUES (?, ?, ?, ?, ?)',
    ).run(sha256Hex(token), user.id, purpose, now, now + TOKEN_TTL[purpose]);
    db.query(
      'INSERT INTO outbox (id, to_email, template, subject, body, created_at) VALUES (?, ?, ?, ?, ?, ?)',
    ).run(newId('msg'), user.email, purpose, subject, body, now);
  }).immediate();
}

/** Redeems a one-time token (unused, unexpired, right purpose) and returns its user, or throws 400. */
function redeem(app: App, db: Database, token: unknown, purpose: 'verify_email' | 'reset_password'): UserRow {
  const bad = () =>
    new AppError('auth.token_invalid', 'this link is invalid or has expired; ask for a new one', 400, [
      { path: '/token', reason: 'invalid or expired' },
    ]);
  if (typeof token !== 'string' || token.length < 20 || token.length > 100) throw bad();
  const now = app.clock.now();
  const row = db
    .query<{ user_id: string; expires_at: number; used_at: number | null; purpose: string }, [string]>(
      'SELECT user_id, expires_at, used_at, purpose FROM email_tokens WHERE token_hash = ?',
    )
    .get(sha256Hex(token));
  if (!row || row.purpose !== purpose || row.used_at !== null || now >= row.expires_at) throw bad();
  db.query('UPDATE email_tokens SET used_at = ? WHERE token_hash = ?').run(now, sha256Hex(token));
  const user = createUserRepository({ db }).byId(row.user_id);
  if (!user || user.status !== 'active') throw bad();
  return user;
}

/** Confirms an email address from its link. Audited. */
export function verifyEmail(app: App, db: Database, token: unknown): UserRow {
  return db
    .transaction(() => {
      const user = redeem(app, db, token, 'verify_email');
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

/** Sets a new password from a reset link; every session of the user ends. Audited. */
export async function resetPassword(
  app: App,
  db: Database,
  token: unknown,
  password: unknown,
): Promise<void> {
  const pw = checkPassword(password);
  const hash = await hashPassword(pw);
  db.transaction(() => {
    const user = redeem(app, db, token, 'reset_password');
    const now = app.clock.now();
    createUserRepository({ db }).update(
      user.id,
      { password_hash: hash, email_verified_at: user.email_verified_at ?? now },
      now,
    );
    const ended = destroyUserSessions(db, user.id);
    app.audit.append(db, {
      actor: `user:${user.id}`,
      action: 'user.password_reset',
      target: `user:${user.id}`,
      details: { sessions_ended: ended },
    });
  }).immediate();
}
