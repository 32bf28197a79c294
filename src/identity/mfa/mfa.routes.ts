import { Elysia } from 'elysia';
import { AppError } from '../../shared/errors.ts';
import { userView } from '../accounts/users.service.ts';
import type { PlatformRequestContext } from '../context.ts';
import { platformGuard } from '../guard.routes.ts';
import { SecondFactor, TotpEnable } from './mfa.models.ts';
import { disableTotp, enableTotp, regenerateRecoveryCodes, startTotpSetup, verifySignInMfa } from './mfa.ts';

const NO_STORE = { 'cache-control': 'no-store' };

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
  .use(platformGuard)
  .post(
    '/auth/mfa',
    ({ ctx: c, body }) => {
      if (!c.pendingMfa) {
        throw new AppError('auth.mfa_not_pending', 'this session has already finished signing in', 409);
      }
      const r = verifySignInMfa(c.app, c.db, c.platform.id, c.pendingMfa, body, { ip: c.ip });
      return Response.json(
        {
          user: userView(r.user),
          mfa_required: false,
          method: r.method,
          recovery_codes_left: r.recoveryCodesLeft,
        },
        { headers: NO_STORE },
      );
    },
    {
      permission: 'mfa_pending',
      body: SecondFactor,
      detail: { summary: 'Finish signing in with the second factor' },
    },
  )
  .post(
    '/me/mfa/totp/setup',
    ({ ctx: c }) => {
      const { userId } = sessionUser(c);
      return Response.json(startTotpSetup(c.app, c.db, userId, c.platform.name), { headers: NO_STORE });
    },
    { permission: 'mfa_pending', detail: { summary: 'Start setting up TOTP' } },
  )
  .post(
    '/me/mfa/totp/enable',
    ({ ctx: c, body }) => {
      const s = sessionUser(c);
      const r = enableTotp(c.app, c.db, s.userId, body, s.pendingSessionIdHash);
      return Response.json(
        {
          user: userView(r.user),
          recovery_codes: r.recoveryCodes,
          mfa_required: false,
        },
        { headers: NO_STORE },
      );
    },
    { permission: 'mfa_pending', body: TotpEnable, detail: { summary: 'Turn TOTP on with a first code' } },
  )
  .delete(
    '/me/mfa/totp',
    ({ ctx: c, body }) => {
      const { userId } = sessionUser(c);
      return { user: userView(disableTotp(c.app, c.db, c.platform.id, userId, body)) };
    },
    { permission: 'signed_in', body: SecondFactor, detail: { summary: 'Turn TOTP off' } },
  )
  .post(
    '/me/mfa/recovery-codes',
    ({ ctx: c, body }) => {
      const { userId } = sessionUser(c);
      const codes = regenerateRecoveryCodes(c.app, c.db, c.platform.id, userId, body);
      return Response.json({ recovery_codes: codes }, { headers: NO_STORE });
    },
    { permission: 'signed_in', body: SecondFactor, detail: { summary: 'Replace the recovery codes' } },
  );
