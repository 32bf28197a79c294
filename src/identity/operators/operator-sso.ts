import type { App } from '../../app/index.ts';
import { isUniqueViolation, tx } from '../../db/index.ts';
import { randomToken, sha256Hex } from '../../shared/crypto.ts';
import { AppError, isAppError } from '../../shared/errors.ts';
import { newId } from '../../shared/ids.ts';
import { iso } from '../../shared/time.ts';
import { auditsOidcRefusal, OidcRefusal, type OidcSeen, verifyOidcCallback } from '../sso/oidc/oidc.ts';
import { logAnonymousRefusal } from '../sso/sso.ts';
import {
  deleteOperatorSession,
  insertOperator,
  insertOperatorSession,
  type OperatorRow,
  operatorByEmail,
  operatorBySsoSubject,
  operatorRowById,
  operatorRows,
  operatorSessionByHash,
  setOperatorSsoSubject,
  touchOperatorSession,
} from './operators.repository.ts';
import type { OperatorPrincipal, OperatorRole } from './operators.ts';

/** The operator console's session cookie. */
export const OPERATOR_SESSION_COOKIE = 'sf_operator_session';
const IDLE_MS = 12 * 3_600_000;
const ABSOLUTE_MS = 7 * 24 * 3_600_000;
const OPERATOR_ROLES: readonly OperatorRole[] = ['operator_admin', 'operator_viewer'];
const EMAIL_RE = /^[^\s@]+@[^\s@]+$/;

/** What clients see of an operator. */
export interface OperatorView {
  id: string;
  email: string;
  role: OperatorRole;
  status: string;
  sso_linked: boolean;
  created_at: string;
}

const view = (r: OperatorRow): OperatorView => ({
  id: r.id,
  email: r.email,
  role: r.role,
  status: r.status,
  sso_linked: r.sso_subject !== null,
  created_at: iso(r.created_at),
});

/** Every operator. */
export function listOperators(app: App): OperatorView[] {
  return operatorRows(app.control).map(view);
}

/**
 * Invites an operator by email (they sign in through the console's SSO; no password is set).
 * Only operator admins may. Audited in the control chain.
 */
export function createOperator(
  app: App,
  by: OperatorPrincipal,
  input: { email?: unknown; role?: unknown },
): OperatorView {
  if (by.role !== 'operator_admin')
    throw new AppError('auth.forbidden', 'only an operator admin may add operators', 403);
  const email = typeof input.email === 'string' ? input.email.trim().toLowerCase() : '';
  const role = (input.role ?? 'operator_viewer') as OperatorRole;
  const details = [
    ...(EMAIL_RE.test(email) && email.length <= 254
      ? []
      : [{ path: '/email', reason: 'must be an email address' }]),
    ...(OPERATOR_ROLES.includes(role)
      ? []
      : [{ path: '/role', reason: `must be one of: ${OPERATOR_ROLES.join(', ')}` }]),
  ];
  if (details.length)
    throw new AppError(
      'operator.invalid',
      `invalid operator: ${details.map((d) => d.path).join(', ')}`,
      400,
      details,
    );
  const now = app.clock.now();
  const id = newId('op');
  try {
    tx(app.control, () => {
      // '!' is no argon2 hash: nobody can sign in to this account with a password.
      insertOperator(app.control, { id, email, passwordHash: '!', role, now });
      app.audit.append(app.control, {
        actor: by.actor,
        action: 'operator.created',
        target: `operator:${id}`,
        details: { email, role },
      });
    });
  } catch (e) {
    if (isUniqueViolation(e, 'operators', 'email')) {
      throw new AppError('operator.email_taken', `an operator with email ${email} exists`, 409, [
        { path: '/email', reason: 'taken' },
      ]);
    }
    throw e;
  }
  return view(operatorRowById(app.control, id)!);
}

/**
 * Finishes an operator's OIDC sign-in to the console: the protocol checks of a platform
 * sign-in (over the control plane's SSO tables), then the operator must already exist (by
 * linked subject, else by email; operators are invited, never created by SSO) and be active.
 * Starts a console session. Success and refusal are audited in the control chain.
 */
export async function finishOperatorOidc(
  app: App,
  req: { query: URLSearchParams; cookies: string | null; ip: string | null },
): Promise<{
  token: string;
  csrfToken: string;
  expiresAt: number;
  returnTo: string;
  operator: OperatorView;
}> {
  const db = app.control;
  const seen: OidcSeen = {};
  try {
    const v = await verifyOidcCallback(app, db, req, seen);
    const op = operatorBySsoSubject(db, v.subject) ?? operatorByEmail(db, v.email);
    if (!op)
      throw new OidcRefusal(
        'operator_unknown',
        'there is no operator account for this person; ask an operator admin to add it',
        403,
      );
    if (op.status !== 'active')
      throw new OidcRefusal('operator_disabled', 'this operator account is deactivated', 403);
    if (op.sso_subject !== null && op.sso_subject !== v.subject) {
      throw new OidcRefusal('subject_mismatch', 'this operator account is linked to another identity', 403);
    }
    const token = randomToken(32);
    const csrfToken = randomToken(24);
    const now = app.clock.now();
    tx(db, () => {
      setOperatorSsoSubject(db, op.id, v.subject, now);
      insertOperatorSession(db, {
        idHash: sha256Hex(token),
        operatorId: op.id,
        csrfToken,
        via: 'oidc',
        now,
        expiresAt: now + ABSOLUTE_MS,
        ip: req.ip,
      });
      app.audit.append(db, {
        actor: `operator:${op.id}`,
        action: 'operator.signed_in',
        target: `operator:${op.id}`,
        details: { via: 'oidc', ip: req.ip },
      });
    });
    return {
      token,
      csrfToken,
      expiresAt: now + ABSOLUTE_MS,
      returnTo: v.returnTo,
      operator: view({ ...op, sso_subject: v.subject }),
    };
  } catch (e) {
    const r =
      e instanceof OidcRefusal
        ? e
        : new OidcRefusal(
            isAppError(e) ? e.code : 'internal',
            isAppError(e) ? e.message : 'the sign-in could not be completed',
            400,
          );
    if (!(e instanceof OidcRefusal) && !isAppError(e))
      app.log.error('operator oidc callback failed', { err: String(e) });
    const details = { via: 'oidc', reason: r.reason, ip: req.ip };
    // A callback naming no sign-in of ours is anonymous garbage: logged, never an entry each.
    if (!auditsOidcRefusal(app, r, seen, 'operator', app.clock.now()))
      logAnonymousRefusal(app, 'operator', req.ip, details);
    else
      app.audit.append(db, {
        actor: 'anonymous',
        action: 'operator.sign_in_failed',
        target: seen.email ? `email:${seen.email}` : 'sso:oidc',
        details,
      });
    throw new AppError(r.code, r.message, r.status);
  }
}

/**
 * The operator behind a console session cookie, or null (unknown, idle, expired, deactivated,
 * or still owing its second factor: `finishOperatorMfa`).
 */
export function resolveOperatorSession(
  app: App,
  token: string,
): (OperatorPrincipal & { csrfToken: string }) | null {
  if (token.length < 20 || token.length > 100) return null;
  const db = app.control;
  const idHash = sha256Hex(token);
  const row = operatorSessionByHash(db, idHash);
  const now = app.clock.now();
  if (row?.status !== 'active') return null;
  if (now >= row.expires_at || now - row.last_seen_at > IDLE_MS) {
    deleteOperatorSession(db, idHash);
    return null;
  }
  if (now - row.last_seen_at > 60_000) touchOperatorSession(db, idHash, now);
  return {
    actor: `operator:${row.operator_id}`,
    operatorId: row.operator_id,
    role: row.role,
    csrfToken: row.csrf_token,
  };
}

/** Ends a console session. */
export function endOperatorSession(app: App, token: string): void {
  deleteOperatorSession(app.control, sha256Hex(token));
}
