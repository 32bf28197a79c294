import type { Database } from 'bun:sqlite';
import { randomBytes } from 'node:crypto';
import { HOTP, Secret, TOTP } from 'otpauth';
import { type App, type SecretSite, secretContext, secretsOf } from '../../app/index.ts';
import { safeEqual, sha256Hex } from '../../shared/crypto.ts';
import { AppError } from '../../shared/errors.ts';
import { createUserRepository, type UserRow } from '../accounts/users.repository.ts';
import { completeMfa } from '../sessions/sessions.ts';
import { readIdentitySettings } from '../settings.ts';
import { AUTH_LIMITS, forget, lockWait, reserve } from '../throttle.ts';

/** TOTP parameters every authenticator app understands (RFC 6238 defaults). */
const PERIOD = 30;
const DIGITS = 6;
const ALGORITHM = 'SHA1';
/** Steps accepted either side of now, for clock drift and typing time. */
const WINDOW = 1;
/** How many recovery codes a user gets at a time. */
export const RECOVERY_CODE_COUNT = 10;
/** Where a user without an authenticator enrols one (named in errors). */
export const TOTP_SETUP_ROUTE = 'POST /api/v1/me/mfa/totp/setup';

// Wrong second factors: 5 failures in 15 minutes per user, then wait (AUTH_LIMITS.mfa, kept in
// the platform database, so a restart does not hand out a fresh budget).

/** A second factor as a client sends it: a TOTP code or a recovery code. */
export interface SecondFactorInput {
  code?: unknown;
  recovery_code?: unknown;
}

/** The TOTP time step that holds `now`. */
export function totpStep(now: number): number {
  return Math.floor(now / 1000 / PERIOD);
}

/** `otpauth://` URL for authenticator apps: the platform's name as issuer, the email as label. */
function otpauthUrl(secret: string, issuer: string, email: string): string {
  return new TOTP({
    issuer,
    label: email,
    secret: Secret.fromBase32(secret),
    algorithm: ALGORITHM,
    digits: DIGITS,
    period: PERIOD,
  }).toString();
}

/**
 * The step a TOTP code belongs to, within ±WINDOW steps of now and later than `after` (so a
 * code, once accepted, never works again), or null. Every candidate is compared in constant time.
 */
function matchTotp(secret: string, code: string, now: number, after: number | null): number | null {
  const key = Secret.fromBase32(secret);
  const current = totpStep(now);
  let found: number | null = null;
  for (let step = current - WINDOW; step <= current + WINDOW; step++) {
    const expected = HOTP.generate({ secret: key, algorithm: ALGORITHM, digits: DIGITS, counter: step });
    if (safeEqual(expected, code) && (after === null || step > after) && found === null) found = step;
  }
  return found;
}

// Crockford base32: no i, l, o, u, so a code read aloud or copied by hand survives.
const RECOVERY_ALPHABET = '0123456789abcdefghjkmnpqrstvwxyz';

/** A recovery code: 16 characters (80 bits) shown as `xxxx-xxxx-xxxx-xxxx`. */
function newRecoveryCode(): string {
  const bytes = randomBytes(16);
  let s = '';
  for (const b of bytes) s += RECOVERY_ALPHABET[b & 31];
  return s.match(/.{4}/g)!.join('-');
}

/** A recovery code as typed, reduced to its 16 characters (case, spaces and dashes ignored). */
function normalizeRecoveryCode(code: string): string {
  return code.toLowerCase().replace(/[\s-]/g, '').replace(/o/g, '0').replace(/[il]/g, '1');
}

/** The stored form of a recovery code (only its hash is kept). */
function recoveryCodeHash(code: string): string {
  return sha256Hex(normalizeRecoveryCode(code));
}

/** Replaces a user's recovery codes with fresh ones; returns them (the only time they are seen). */
function replaceRecoveryCodes(db: Database, userId: string): string[] {
  db.query('DELETE FROM recovery_codes WHERE user_id = ?').run(userId);
  const codes = Array.from({ length: RECOVERY_CODE_COUNT }, newRecoveryCode);
  const insert = db.query('INSERT INTO recovery_codes (user_id, code_hash, used_at) VALUES (?, ?, NULL)');
  for (const c of codes) insert.run(userId, recoveryCodeHash(c));
  return codes;
}

/** How many unused recovery codes a user has left. */
export function recoveryCodesLeft(db: Database, userId: string): number {
  return (
    db
      .query<{ n: number }, [string]>(
        'SELECT count(*) AS n FROM recovery_codes WHERE user_id = ? AND used_at IS NULL',
      )
      .get(userId)?.n ?? 0
  );
}

/** Reads `{ code }` or `{ recovery_code }` (exactly one); `allowRecovery` false accepts only a code. */
function readSecondFactor(
  input: SecondFactorInput,
  allowRecovery: boolean,
): { kind: 'totp'; code: string } | { kind: 'recovery_code'; code: string } {
  const hasCode = input.code !== undefined && input.code !== null;
  const hasRecovery = allowRecovery && input.recovery_code !== undefined && input.recovery_code !== null;
  if (hasCode === hasRecovery) {
    throw new AppError(
      'auth.invalid_request',
      allowRecovery ? 'send either code or recovery_code' : 'code is required',
      400,
      [{ path: '/code', reason: allowRecovery ? 'send code or recovery_code, not both' : 'required' }],
    );
  }
  if (hasCode) {
    const code = typeof input.code === 'string' ? input.code.replace(/\s/g, '') : '';
    if (!/^\d{6}$/.test(code)) {
      throw new AppError('auth.invalid_request', 'code must be the 6 digits your authenticator shows', 400, [
        { path: '/code', reason: 'must be 6 digits' },
      ]);
    }
    return { kind: 'totp', code };
  }
  const code = typeof input.recovery_code === 'string' ? normalizeRecoveryCode(input.recovery_code) : '';
  if (code.length !== 16) {
    throw new AppError(
      'auth.invalid_request',
      'recovery_code must be one of your 16-character recovery codes',
      400,
      [{ path: '/recovery_code', reason: 'must be 16 characters' }],
    );
  }
  return { kind: 'recovery_code', code };
}

/** Fails with 429 while a user is throttled. */
function checkThrottle(db: Database, userId: string, now: number): void {
  const wait = lockWait(db, AUTH_LIMITS.mfa, userId, now);
  if (wait > 0) {
    throw Object.assign(new AppError('auth.throttled', `too many wrong codes; try again in ${wait} s`, 429), {
      retryAfter: wait,
    });
  }
}

/**
 * Checks a second factor against a user with TOTP, inside the caller's transaction: a TOTP
 * code advances `totp_last_step`, a recovery code is marked used. Answers the method, or null
 * when the factor is wrong (nothing changed).
 */
function consumeSecondFactor(
  db: Database,
  user: UserRow,
  factor: ReturnType<typeof readSecondFactor>,
  now: number,
): 'totp' | 'recovery_code' | null {
  if (factor.kind === 'totp') {
    const step = matchTotp(openTotp(db, user, 'secret'), factor.code, now, user.totp_last_step ?? null);
    if (step === null) return null;
    createUserRepository({ db }).update(user.id, { totp_last_step: step }, now);
    return 'totp';
  }
  const used = db
    .query('UPDATE recovery_codes SET used_at = ? WHERE user_id = ? AND code_hash = ? AND used_at IS NULL')
    .run(now, user.id, sha256Hex(factor.code)).changes;
  return used === 1 ? 'recovery_code' : null;
}

/** An active user by id, or 404 (the session's user vanished). */
function userOrThrow(db: Database, userId: string): UserRow {
  const u = createUserRepository({ db }).byId(userId);
  if (u?.status !== 'active') throw new AppError('user.not_found', 'no such user', 404);
  return u;
}

/**
 * Runs a check of a second factor with throttling and auditing: throttled → 429; a wrong
 * factor is counted and audited (`user.mfa_failed`, committed) and answered with `wrong()`;
 * a right one resets the count and `onSuccess` runs in the same transaction as the consumption.
 */
function withSecondFactor<T>(
  app: App,
  db: Database,
  _platformId: string,
  userId: string,
  input: SecondFactorInput,
  purpose: 'sign_in' | 'disable' | 'recovery_codes',
  wrong: (field: string) => AppError,
  onSuccess: (user: UserRow, method: 'totp' | 'recovery_code') => T,
): T {
  const factor = readSecondFactor(input, true);
  const now = app.clock.now();
  checkThrottle(db, userId, now);
  const r = db
    .transaction((): { ok: true; value: T } | { ok: false } => {
      const user = userOrThrow(db, userId);
      if (!user.totp_secret) throw notEnabled();
      const method = consumeSecondFactor(db, user, factor, now);
      if (!method) {
        app.audit.append(db, {
          actor: `user:${userId}`,
          action: 'user.mfa_failed',
          target: `user:${userId}`,
          details: { method: factor.kind, purpose },
        });
        return { ok: false };
      }
      return { ok: true, value: onSuccess(user, method) };
    })
    .immediate();
  if (!r.ok) {
    reserve(db, [[AUTH_LIMITS.mfa, userId]], now);
    throw wrong(factor.kind === 'totp' ? '/code' : '/recovery_code');
  }
  forget(db, AUTH_LIMITS.mfa, userId);
  return r.value;
}

/** The field a TOTP seed is sealed under: bound to its user, and to secret or pending. */
const totpField = (userId: string, which: 'secret' | 'pending') =>
  `user:${userId}:${which === 'secret' ? 'totp' : 'totp_pending'}`;

/** A TOTP seed sealed for storage in `users.totp_secret` or `users.totp_pending`. */
function sealTotp(db: Database, userId: string, which: 'secret' | 'pending', seed: string): string {
  return secretsOf(db).seal(seed, totpField(userId, which));
}

/** The base32 TOTP seed of a user (stored sealed); throws `keys.unseal_failed` when it does not open. */
function openTotp(db: Database, user: UserRow, which: 'secret' | 'pending'): string {
  const v = which === 'secret' ? user.totp_secret : user.totp_pending;
  if (!v) throw notEnabled();
  return secretsOf(db).unseal(v, totpField(user.id, which));
}

/**
 * Where TOTP seeds are stored (users.totp_secret, users.totp_pending), for `keys rotate` and
 * the sealing of seeds an older soulfra stored in clear.
 */
export const TOTP_SECRET_SITE: SecretSite = {
  name: 'users.totp',
  scope: 'tenant',
  reseal(db, scope, rewrite) {
    let n = 0;
    const rows = db
      .query<{ id: string; totp_secret: string | null; totp_pending: string | null }, []>(
        'SELECT id, totp_secret, totp_pending FROM users WHERE totp_secret IS NOT NULL OR totp_pending IS NOT NULL',
      )
      .all();
    const update = db.query('UPDATE users SET totp_secret = ?, totp_pending = ? WHERE id = ?');
    for (const r of rows) {
      const secret = r.totp_secret && rewrite(r.totp_secret, secretContext(scope, totpField(r.id, 'secret')));
      const pending =
        r.totp_pending && rewrite(r.totp_pending, secretContext(scope, totpField(r.id, 'pending')));
      update.run(secret, pending, r.id);
      n += (secret ? 1 : 0) + (pending ? 1 : 0);
    }
    return n;
  },
};

const notEnabled = () =>
  new AppError('auth.mfa_not_enabled', 'this account has no authenticator set up', 409);

/**
 * Starts TOTP enrolment: a fresh 160-bit secret stored as `totp_pending` (replacing any
 * earlier unfinished one), and the `otpauth://` URL for the user's authenticator app. Refused
 * when MFA is already on: a session that has only passed the password must never replace the
 * authenticator that guards it.
 */
export function startTotpSetup(
  app: App,
  db: Database,
  userId: string,
  issuer: string,
): { secret: string; otpauth_url: string } {
  return db
    .transaction(() => {
      const user = userOrThrow(db, userId);
      if (user.totp_secret) {
        throw new AppError(
          'auth.mfa_already_enabled',
          'an authenticator is already set up; turn it off first to set up another',
          409,
        );
      }
      const secret = new Secret({ size: 20 }).base32;
      createUserRepository({ db }).update(
        userId,
        { totp_pending: sealTotp(db, userId, 'pending', secret) },
        app.clock.now(),
      );
      return { secret, otpauth_url: otpauthUrl(secret, issuer, user.email) };
    })
    .immediate();
}

/**
 * Finishes enrolment: the code must match the pending secret (±1 step), which then becomes
 * the user's TOTP secret; ten recovery codes are made (returned once, stored hashed). When
 * the session was waiting for its second factor, it completes here. Audited (`user.mfa_enabled`).
 */
export function enableTotp(
  app: App,
  db: Database,
  userId: string,
  input: SecondFactorInput,
  pendingSessionIdHash: string | null,
): { user: UserRow; recoveryCodes: string[] } {
  const factor = readSecondFactor({ code: input.code }, false);
  const now = app.clock.now();
  return db
    .transaction(() => {
      const user = userOrThrow(db, userId);
      if (user.totp_secret) {
        throw new AppError('auth.mfa_already_enabled', 'an authenticator is already set up', 409);
      }
      if (!user.totp_pending) {
        throw new AppError(
          'auth.mfa_setup_missing',
          `start with ${TOTP_SETUP_ROUTE} to get a secret for your authenticator`,
          409,
        );
      }
      const seed = openTotp(db, user, 'pending');
      const step = matchTotp(seed, factor.code, now, null);
      if (step === null) {
        throw new AppError(
          'auth.mfa_invalid_code',
          'the code does not match; check the authenticator and the device clock',
          400,
          [{ path: '/code', reason: 'wrong or expired code' }],
        );
      }
      const repo = createUserRepository({ db });
      repo.update(
        userId,
        { totp_secret: sealTotp(db, userId, 'secret', seed), totp_pending: null, totp_last_step: step },
        now,
      );
      const recoveryCodes = replaceRecoveryCodes(db, userId);
      if (pendingSessionIdHash) completeMfa(db, pendingSessionIdHash);
      app.audit.append(db, {
        actor: `user:${userId}`,
        action: 'user.mfa_enabled',
        target: `user:${userId}`,
        details: { method: 'totp', completed_sign_in: pendingSessionIdHash !== null },
      });
      return { user: repo.byId(userId)!, recoveryCodes };
    })
    .immediate();
}

/**
 * The second step of a sign-in: a TOTP code (±1 step, never one already used) or an unused
 * recovery code (then used up) completes the pending session. Wrong factors count toward a
 * per-user throttle (5 in 15 minutes → 429) and are audited; success is audited with its
 * method. A user whose role needs MFA but who has no authenticator is sent to enrol (403).
 */
export function verifySignInMfa(
  app: App,
  db: Database,
  platformId: string,
  session: { sessionIdHash: string; userId: string },
  input: SecondFactorInput,
  client: { ip: string | null },
): { user: UserRow; method: 'totp' | 'recovery_code'; recoveryCodesLeft: number } {
  const user = userOrThrow(db, session.userId);
  if (!user.totp_secret) {
    const required = readIdentitySettings(db).mfa_required_roles.includes(user.role);
    throw new AppError(
      'auth.mfa_enrolment_required',
      `${required ? 'your role must use two-factor sign-in; ' : ''}set up an authenticator first: ${TOTP_SETUP_ROUTE}, then POST /api/v1/me/mfa/totp/enable`,
      403,
    );
  }
  return withSecondFactor(
    app,
    db,
    platformId,
    session.userId,
    input,
    'sign_in',
    (field) =>
      new AppError('auth.mfa_invalid_code', 'the code is wrong, expired or already used', 401, [
        { path: field, reason: 'wrong, expired or already used' },
      ]),
    (u, method) => {
      completeMfa(db, session.sessionIdHash);
      app.audit.append(db, {
        actor: `user:${u.id}`,
        action: 'user.mfa_passed',
        target: `user:${u.id}`,
        details: { method, ip: client.ip },
      });
      return { user: u, method, recoveryCodesLeft: recoveryCodesLeft(db, u.id) };
    },
  );
}

const wrongForChange = (field: string) =>
  new AppError('auth.mfa_invalid_code', 'the code is wrong, expired or already used', 400, [
    { path: field, reason: 'wrong, expired or already used' },
  ]);

/**
 * Turns MFA off for a signed-in user, who proves it with a current TOTP code (or a recovery
 * code, for someone who lost the device and is re-enrolling). Refused (409) while the user's
 * role must use MFA. The secret and every recovery code go. Audited (`user.mfa_disabled`).
 */
export function disableTotp(
  app: App,
  db: Database,
  platformId: string,
  userId: string,
  input: SecondFactorInput,
): UserRow {
  const user = userOrThrow(db, userId);
  if (!user.totp_secret) throw notEnabled();
  if (readIdentitySettings(db).mfa_required_roles.includes(user.role)) {
    throw new AppError(
      'auth.mfa_required_by_policy',
      `this platform requires two-factor sign-in for the ${user.role} role`,
      409,
    );
  }
  return withSecondFactor(app, db, platformId, userId, input, 'disable', wrongForChange, (u, method) => {
    const repo = createUserRepository({ db });
    repo.update(u.id, { totp_secret: null, totp_pending: null, totp_last_step: null }, app.clock.now());
    db.query('DELETE FROM recovery_codes WHERE user_id = ?').run(u.id);
    app.audit.append(db, {
      actor: `user:${u.id}`,
      action: 'user.mfa_disabled',
      target: `user:${u.id}`,
      details: { proved_with: method },
    });
    return repo.byId(u.id)!;
  });
}

/**
 * Replaces a signed-in user's recovery codes (the old ones stop working), proved with a
 * current code. Audited (`user.mfa_recovery_codes_regenerated`).
 */
export function regenerateRecoveryCodes(
  app: App,
  db: Database,
  platformId: string,
  userId: string,
  input: SecondFactorInput,
): string[] {
  return withSecondFactor(
    app,
    db,
    platformId,
    userId,
    input,
    'recovery_codes',
    wrongForChange,
    (u, method) => {
      const codes = replaceRecoveryCodes(db, u.id);
      app.audit.append(db, {
        actor: `user:${u.id}`,
        action: 'user.mfa_recovery_codes_regenerated',
        target: `user:${u.id}`,
        details: { proved_with: method, count: codes.length },
      });
      return codes;
    },
  );
}
