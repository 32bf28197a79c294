import { Elysia } from 'elysia';
import { AppError } from '../shared/errors.ts';
import { type PlatformRequestContext, requestContext } from './context.ts';
import {
  disableTotp,
  enableTotp,
  regenerateRecoveryCodes,
  type SecondFactorInput,
  startTotpSetup,
  verifySignInMfa,
} from './mfa.ts';
import type { Permission } from './permissions.ts';
import { userView } from './users.service.ts';

/** The mfa routes and the permission each needs (merged into the platform's table). */
export const MFA_ROUTE_PERMISSIONS: Record<string, Permission> = {
  'POST /api/v1/auth/mfa': 'mfa_pending',
  'POST /api/v1/me/mfa/totp/setup': 'mfa_pending',
  'POST /api/v1/me/mfa/totp/enable': 'mfa_pending',
  'DELETE /api/v1/me/mfa/totp': 'signed_in',
  'POST /api/v1/me/mfa/recovery-codes': 'signed_in',
};

const NO_STORE = { 'cache-control': 'no-store' };

/** A JSON body's object (anything else reads as empty, which the services answer with 400). */
const secondFactor = (b: unknown): SecondFactorInput =>
  b && typeof b === 'object' && !Array.isArray(b) ? (b as SecondFactorInput) : {};

/**
 * The user behind a session: a pending one (password passed, second factor owed) or a fully
 * signed-in one. API keys and SCIM tokens manage no second factor.
 */
function sessionUser(c: PlatformRequestContext): { userId: string; pendingSessionIdHash: string | null } {
  if (c.pendingMfa) return { userId: c.pendingMfa.userId, pendingSessionIdHash: c.pendingMfa.sessionIdHash };
  if (c.principal?.kind === 'user') return { userId: c.principal.userId, pendingSessionIdHash: null };
  throw new AppError('auth.forbidden', 'two-factor sign-in is managed from a signed-in session', 403);
}

/**
 * Two-factor sign-in (TOTP, RFC 6238, with recovery codes): enrolment (also open to a session
 * still owing its second factor, so a role that must use MFA can enrol while signing in), the
 * second step of sign-in, turning it off, and fresh recovery codes.
 */
export const mfaRoutes = new Elysia({ name: 'mfa.routes', prefix: '/api/v1' })
  .post('/auth/mfa', ({ request, body }) => {
    const c = requestContext(request);
    if (!c.pendingMfa) {
      throw new AppError('auth.mfa_not_pending', 'this session has already finished signing in', 409);
    }
    const r = verifySignInMfa(c.app, c.db, c.platform.id, c.pendingMfa, secondFactor(body), { ip: c.ip });
    return Response.json(
      {
        user: userView(r.user),
        mfa_required: false,
        method: r.method,
        recovery_codes_left: r.recoveryCodesLeft,
      },
      { headers: NO_STORE },
    );
  })
  .post('/me/mfa/totp/setup', ({ request }) => {
    const c = requestContext(request);
    const { userId } = sessionUser(c);
    return Response.json(startTotpSetup(c.app, c.db, userId, c.platform.name), { headers: NO_STORE });
  })
  .post('/me/mfa/totp/enable', ({ request, body }) => {
    const c = requestContext(request);
    const s = sessionUser(c);
    const r = enableTotp(c.app, c.db, s.userId, secondFactor(body), s.pendingSessionIdHash);
    return Response.json(
      {
        user: userView(r.user),
        recovery_codes: r.recoveryCodes,
        mfa_required: false,
      },
      { headers: NO_STORE },
    );
  })
  .delete('/me/mfa/totp', ({ request, body }) => {
    const c = requestContext(request);
    const { userId } = sessionUser(c);
    return { user: userView(disableTotp(c.app, c.db, c.platform.id, userId, secondFactor(body))) };
  })
  .post('/me/mfa/recovery-codes', ({ request, body }) => {
    const c = requestContext(request);
    const { userId } = sessionUser(c);
    const codes = regenerateRecoveryCodes(c.app, c.db, c.platform.id, userId, secondFactor(body));
    return Response.json({ recovery_codes: codes }, { headers: NO_STORE });
  });
