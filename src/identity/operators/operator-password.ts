import { Secret } from 'otpauth';
import { type App, type SecretSite, secretContext, secretsOf, stateKey } from '../../app/index.ts';
import { tx } from '../../db/index.ts';
import { randomToken, sha256Hex } from '../../shared/crypto.ts';
import { AppError } from '../../shared/errors.ts';
import { throttled } from '../accounts/auth.service.ts';
import {
  hashingBusy,
  hashPassword,
  LANE_QUEUE_CAP,
  laneHasRoom,
  verifyPassword,
} from '../accounts/passwords.ts';
import { matchTotp, otpauthUrl } from '../mfa/mfa.ts';
import {
  AUTH_LIMITS,
  accountAddressKey,
  addressKey,
  clearAccount,
  forget,
  type Hold,
  lockWait,
  release,
  reserve,
} from '../throttle.ts';
import { listOperators, type OperatorView } from './operator-sso.ts';
import {
  clearOperatorTotp,
  completeOperatorMfaSession,
  deleteOperatorSessions,
  enableOperatorTotpRow,
  insertOperatorSession,
  operatorCredentialsByEmail,
  operatorCredentialsById,
  operatorCredentialsByRef,
  pendingOperatorSession,
  sealedOperatorTotps,
  setOperatorTotpLastStep,
  setOperatorTotpPending,
  updateOperatorTotps,
} from './operators.repository.ts';
import type { OperatorPrincipal } from './operators.ts';

/**
 * Operator password sign-in on the console host (the password printed at first run, or set
 * later): argon2id through the App's hasher, in its own lane; the limits and lock-outs of a
 * platform sign-in (AUTH_LIMITS, kept in control.db's auth_throttle); a TOTP second factor when
 * the operator has one (the session starts pending until the code is given). Audited in the
 * control chain.
 */

const ABSOLUTE_MS = 7 * 24 * 3_600_000;
/** The hashing lane of console sign-ins: anonymous traffic here never delays a platform's. */
const LANE = 'operator-console';
const DUMMY = stateKey('identity.operator_dummy_hash', (): { hash: Promise<string> | null } => ({
  hash: null,
}));
const BAD = () => new AppError('auth.invalid_credentials', 'email or password is incorrect', 401);

const totpField = (id: string, which: 'secret' | 'pending') =>
  `operator:${id}:${which === 'secret' ? 'totp' : 'totp_pending'}`;

/** A started console session (the cookie's token is shown once, to be set as the cookie). */
export interface OperatorSignIn {
  token: string;
  csrfToken: string;
  expiresAt: number;
  /** The operator has TOTP: the session does nothing until `finishOperatorMfa`. */
  mfaPending: boolean;
  operator: OperatorView;
}

/**
 * Email and password sign-in for operators. As on platforms, the attempt is reserved against
 * the account from this address, the account and the address before any hashing (a lock:
 * 429), an unknown email costs the same hash, and a success forgives the account's counts.
 */
export async function operatorPasswordSignIn(
  app: App,
  input: { email?: unknown; password?: unknown },
  client: { ip: string | null },
): Promise<OperatorSignIn> {
  const db = app.control;
  const email = typeof input.email === 'string' ? input.email.trim().toLowerCase() : '';
  const password = typeof input.password === 'string' ? input.password : '';
  if (!email || !password) {
    throw new AppError('auth.invalid_request', 'email and password are required', 400, [
      ...(email ? [] : [{ path: '/email', reason: 'required' }]),
      ...(password ? [] : [{ path: '/password', reason: 'required' }]),
    ]);
  }
  if (email.length > 320 || password.length > 1024) throw BAD();
  const dummy = app.state.get(DUMMY);
  dummy.hash ??= hashPassword(app, randomToken(16));
  const fallback = await dummy.hash;
  // NB! From here to the verify call nothing awaits (as in passwordSignIn).
  const now = app.clock.now();
  const address = addressKey(client.ip);
  if (!laneHasRoom(app, LANE, LANE_QUEUE_CAP)) throw hashingBusy();
  const holds: Hold[] = [
    [AUTH_LIMITS.accountAddress, accountAddressKey(email, address)],
    [AUTH_LIMITS.account, email],
    [AUTH_LIMITS.address, address],
  ];
  const r = reserve(db, holds, now);
  if (!r.ok) throw throttled(r.wait);
  const op = operatorCredentialsByEmail(db, email);
  // Operators invited for SSO have no password ('!'): the dummy hash runs, and fails.
  const usable = op?.password_hash.startsWith('$argon2') ? op.password_hash : fallback;
  let ok: boolean;
  try {
    ok = await verifyPassword(app, password, usable, { lane: LANE, queueCap: LANE_QUEUE_CAP });
  } catch (e) {
    for (const [l, key] of holds) release(db, l, key, app.clock.now());
    throw e;
  }
  if (!op || !ok || usable === fallback || op.status !== 'active') {
    tx(db, () => {
      app.audit.append(db, {
        actor: 'anonymous',
        action: 'operator.sign_in_failed',
        target: op ? `operator:${op.id}` : `email:${email}`,
        details: {
          via: 'password',
          ip: client.ip,
          reason: !op
            ? 'unknown_email'
            : op.status !== 'active'
              ? 'disabled'
              : usable === fallback
                ? 'no_password'
                : 'bad_password',
          ...(r.lockedNow.length ? { locked: r.lockedNow.map((l) => l.kind) } : {}),
        },
      });
    });
    throw BAD();
  }
  const token = randomToken(32);
  const csrfToken = randomToken(24);
  const done = app.clock.now();
  const mfaPending = op.totp_secret !== null;
  tx(db, () => {
    clearAccount(db, email, done, address);
    release(db, AUTH_LIMITS.address, address, done);
    insertOperatorSession(db, {
      idHash: sha256Hex(token),
      operatorId: op.id,
      csrfToken,
      via: 'password',
      now: done,
      expiresAt: done + ABSOLUTE_MS,
      ip: client.ip,
      mfaPending,
    });
    app.audit.append(db, {
      actor: `operator:${op.id}`,
      action: 'operator.signed_in',
      target: `operator:${op.id}`,
      details: { via: 'password', ip: client.ip, mfa_pending: mfaPending },
    });
  });
  return {
    token,
    csrfToken,
    expiresAt: done + ABSOLUTE_MS,
    mfaPending,
    operator: listOperators(app).find((o) => o.id === op.id)!,
  };
}

/**
 * The second step of a console sign-in: a TOTP code (±1 step, never one already used) completes
 * the pending session. Wrong codes count toward the per-account MFA limit (5 in 15 minutes →
 * 429) and are audited; so is success.
 */
export function finishOperatorMfa(
  app: App,
  sessionToken: string | null,
  input: { code?: unknown },
  client: { ip: string | null },
): OperatorView {
  const db = app.control;
  const now = app.clock.now();
  const s = sessionToken ? pendingOperatorSession(db, sha256Hex(sessionToken)) : null;
  if (!s || now >= s.expires_at)
    throw new AppError(
      'auth.required',
      'sign in with email and password first (POST /_operator/api/sign-in)',
      401,
    );
  const code = typeof input.code === 'string' ? input.code.replace(/\s/g, '') : '';
  if (!/^\d{6}$/.test(code)) {
    throw new AppError('auth.invalid_request', 'code must be the 6 digits your authenticator shows', 400, [
      { path: '/code', reason: 'must be 6 digits' },
    ]);
  }
  const key = `operator:${s.operator_id}`;
  const wait = lockWait(db, AUTH_LIMITS.mfa, key, now);
  if (wait > 0) throw throttled(wait, 'wrong codes');
  const ok = tx(db, () => {
    const op = operatorCredentialsById(db, s.operator_id);
    if (op?.status !== 'active' || !op.totp_secret) return false;
    const seed = secretsOf(db).unseal(op.totp_secret, totpField(op.id, 'secret'));
    const step = matchTotp(seed, code, now, op.totp_last_step);
    if (step === null) {
      app.audit.append(db, {
        actor: key,
        action: 'operator.mfa_failed',
        target: key,
        details: { method: 'totp', ip: client.ip },
      });
      return false;
    }
    setOperatorTotpLastStep(db, op.id, step);
    completeOperatorMfaSession(db, sha256Hex(sessionToken!), now);
    app.audit.append(db, {
      actor: key,
      action: 'operator.mfa_passed',
      target: key,
      details: { method: 'totp', ip: client.ip },
    });
    return true;
  });
  if (!ok) {
    reserve(db, [[AUTH_LIMITS.mfa, key]], now);
    throw new AppError('auth.mfa_invalid_code', 'the code is wrong, expired or already used', 401, [
      { path: '/code', reason: 'wrong, expired or already used' },
    ]);
  }
  forget(db, AUTH_LIMITS.mfa, key);
  return listOperators(app).find((o) => o.id === s.operator_id)!;
}

const selfOnly = (p: OperatorPrincipal): string => {
  if (!p.operatorId)
    throw new AppError('auth.forbidden', 'the local root has no authenticator; sign in as an operator', 403);
  return p.operatorId;
};

/** Starts TOTP enrolment for the calling operator: a pending secret and its `otpauth://` URL. */
export function startOperatorTotp(
  app: App,
  principal: OperatorPrincipal,
  issuer: string,
): { secret: string; otpauth_url: string } {
  const id = selfOnly(principal);
  const db = app.control;
  return tx(db, () => {
    const op = operatorCredentialsById(db, id);
    if (!op) throw new AppError('operator.not_found', 'the calling operator no longer exists', 404);
    if (op.totp_secret)
      throw new AppError(
        'auth.mfa_already_enabled',
        'an authenticator is already set up; an operator admin can reset it',
        409,
      );
    const secret = new Secret({ size: 20 }).base32;
    setOperatorTotpPending(db, id, secretsOf(db).seal(secret, totpField(id, 'pending')), app.clock.now());
    return { secret, otpauth_url: otpauthUrl(secret, issuer, op.email) };
  });
}

/** Confirms enrolment with a code of the pending secret: console sign-ins need TOTP from now on. */
export function enableOperatorTotp(
  app: App,
  principal: OperatorPrincipal,
  input: { code?: unknown },
): OperatorView {
  const id = selfOnly(principal);
  const db = app.control;
  const code = typeof input.code === 'string' ? input.code.replace(/\s/g, '') : '';
  if (!/^\d{6}$/.test(code))
    throw new AppError('auth.invalid_request', 'code must be 6 digits', 400, [
      { path: '/code', reason: 'must be 6 digits' },
    ]);
  const now = app.clock.now();
  tx(db, () => {
    const op = operatorCredentialsById(db, id);
    if (!op) throw new AppError('operator.not_found', 'the calling operator no longer exists', 404);
    if (op.totp_secret)
      throw new AppError('auth.mfa_already_enabled', 'an authenticator is already set up', 409);
    if (!op.totp_pending)
      throw new AppError('auth.mfa_setup_missing', 'start with POST /_operator/api/me/mfa/totp/setup', 409);
    const seed = secretsOf(db).unseal(op.totp_pending, totpField(id, 'pending'));
    const step = matchTotp(seed, code, now, null);
    if (step === null)
      throw new AppError('auth.mfa_invalid_code', 'the code does not match', 400, [
        { path: '/code', reason: 'wrong or expired code' },
      ]);
    enableOperatorTotpRow(db, id, secretsOf(db).seal(seed, totpField(id, 'secret')), step, now);
    app.audit.append(db, {
      actor: principal.actor,
      action: 'operator.mfa_enabled',
      target: `operator:${id}`,
      details: { method: 'totp' },
    });
  });
  return listOperators(app).find((o) => o.id === id)!;
}

/**
 * Removes an operator's authenticator (they lost it): only an operator admin may; the
 * operator's console sessions end. Audited.
 */
export function resetOperatorTotp(app: App, by: OperatorPrincipal, ref: string): OperatorView {
  if (by.role !== 'operator_admin')
    throw new AppError('auth.forbidden', "only an operator admin may reset an operator's MFA", 403);
  const db = app.control;
  const id = tx(db, () => {
    const op = operatorCredentialsByRef(db, ref);
    if (!op) throw new AppError('operator.not_found', `there is no operator ${ref}`, 404);
    clearOperatorTotp(db, op.id, app.clock.now());
    const ended = deleteOperatorSessions(db, op.id);
    app.audit.append(db, {
      actor: by.actor,
      action: 'operator.mfa_reset',
      target: `operator:${op.id}`,
      details: { had_totp: op.totp_secret !== null, sessions_ended: ended },
    });
    return op.id;
  });
  return listOperators(app).find((o) => o.id === id)!;
}

/** Where operators' TOTP seeds are stored (control.db `operators`), for `keys rotate`. */
export const OPERATOR_TOTP_SECRET_SITE: SecretSite = {
  name: 'operators.totp',
  scope: 'control',
  reseal(db, scope, rewrite) {
    const rows = sealedOperatorTotps(db);
    let n = 0;
    for (const r of rows) {
      const s = r.totp_secret && rewrite(r.totp_secret, secretContext(scope, totpField(r.id, 'secret')));
      const p = r.totp_pending && rewrite(r.totp_pending, secretContext(scope, totpField(r.id, 'pending')));
      updateOperatorTotps(db, r.id, s, p);
      n += (s ? 1 : 0) + (p ? 1 : 0);
    }
    return n;
  },
};
