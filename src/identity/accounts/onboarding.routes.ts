import { Elysia } from 'elysia';
import { AppError } from '../../shared/errors.ts';
import type { PlatformRequestContext } from '../context.ts';
import { platformGuard } from '../guard.routes.ts';
import { ownJsonOnly } from '../identity.routes.ts';
import { resetUserMfa } from '../mfa/mfa-reset.ts';
import { actorOf, roleOf, userIdOf } from '../permissions.ts';
import {
  acceptInvitation,
  createInvitation,
  listInvitations,
  resendInvitation,
  revokeInvitation,
} from './invitations.ts';
import { IdParam, InvitationAccept, InvitationCreate, PasswordChange, Signup } from './onboarding.models.ts';
import { changePassword } from './recovery.ts';
import { signUp } from './signup.ts';
import { userView } from './users.service.ts';

const by = (c: PlatformRequestContext) => ({ actor: actorOf(c.principal), role: roleOf(c.principal) });

/**
 * Onboarding under /api/v1: self sign-up (where the blueprint allows it), invitations (an
 * admin's one-time links; the invitee accepts with a password, or signs in with SSO), a
 * signed-in user's password change, and an admin's reset of a user's second factor.
 */
export const onboardingRoutes = new Elysia({ name: 'onboarding.routes', prefix: '/api/v1' })
  .use(platformGuard)
  .post(
    '/auth/signup',
    async ({ body, ctx: c }) => {
      const bp = c.blueprint();
      // A referral code counts only where sharing is on (else it is ignored, as an unknown one).
      const input = bp.features.viral_sharing ? body : { ...body, ref: undefined };
      const r = await signUp(c.app, c.db, c.platform, bp.governance, input, { ip: c.ip }, c.origin);
      return r.status === 'created'
        ? Response.json({ status: 'created', user: userView(r.user) }, { status: 201 })
        : // The same answer whether or not the email was taken.
          Response.json(
            {
              status: 'pending',
              message: 'check your mailbox: open the link we sent to confirm your address',
            },
            { status: 202 },
          );
    },
    {
      permission: 'public',
      transform: ownJsonOnly,
      body: Signup,
      detail: { summary: 'Sign up (where the platform takes sign-ups)', tags: ['auth'] },
    },
  )
  .post(
    '/invitations/accept',
    async ({ body, ctx: c }) => ({
      user: await acceptInvitation(c.app, c.db, c.platform.id, body, { ip: c.ip }),
      status: 'invitation accepted; sign in with your new password',
    }),
    {
      permission: 'public',
      transform: ownJsonOnly,
      body: InvitationAccept,
      detail: { summary: 'Accept an invitation with its emailed token and a password', tags: ['auth'] },
    },
  )
  .get('/invitations', ({ ctx: c }) => ({ invitations: listInvitations(c.app, c.db) }), {
    permission: 'users:read',
    detail: { summary: 'List invitations', tags: ['users'] },
  })
  .post(
    '/invitations',
    ({ body, ctx: c }) =>
      Response.json(
        { invitation: createInvitation(c.app, c.db, c.platform.name, body, by(c), c.origin) },
        { status: 201 },
      ),
    {
      permission: 'users:write',
      body: InvitationCreate,
      detail: { summary: 'Invite someone by email (a one-time link, valid 7 days)', tags: ['users'] },
    },
  )
  .post(
    '/invitations/:id/resend',
    ({ params, ctx: c }) => ({
      invitation: resendInvitation(c.app, c.db, c.platform.name, params.id, by(c), c.origin),
    }),
    {
      permission: 'users:write',
      params: IdParam,
      detail: { summary: 'Send an invitation again with a new link', tags: ['users'] },
    },
  )
  .delete(
    '/invitations/:id',
    ({ params, ctx: c }) => ({ invitation: revokeInvitation(c.app, c.db, params.id, by(c)) }),
    {
      permission: 'users:write',
      params: IdParam,
      detail: { summary: 'Revoke an invitation (its link and placeholder account go)', tags: ['users'] },
    },
  )
  .post(
    '/me/password',
    async ({ body, ctx: c }) => {
      const p = c.principal;
      if (p?.kind !== 'user')
        throw new AppError('auth.forbidden', 'a password is changed from a signed-in session', 403);
      const r = await changePassword(
        c.app,
        c.db,
        c.platform.id,
        { userId: p.userId, sessionIdHash: p.sessionId },
        body,
        { ip: c.ip },
      );
      return { status: 'password changed', other_sessions_ended: r.sessionsEnded };
    },
    {
      permission: 'account:manage',
      body: PasswordChange,
      detail: { summary: 'Change my password (my other sessions end)', tags: ['account'] },
    },
  )
  .post(
    '/users/:id/mfa/reset',
    ({ params, ctx: c }) => {
      const r = resetUserMfa(c.app, c.db, params.id, { ...by(c), userId: userIdOf(c.principal) });
      return {
        user: userView(r.user),
        sessions_ended: r.sessionsEnded,
        recovery_codes_removed: r.recoveryCodesRemoved,
      };
    },
    {
      permission: 'users:write',
      params: IdParam,
      detail: { summary: "Reset a user's second factor (their sessions end)", tags: ['users'] },
    },
  );
