import type { Database } from 'bun:sqlite';
import type { App } from '../../app/index.ts';
import { AppError } from '../../shared/errors.ts';
import { createOnboardingRepository } from '../accounts/onboarding.repository.ts';
import { createUserRepository, type PlatformRole, type UserRow } from '../accounts/users.repository.ts';
import { assertMayManage } from '../accounts/users.service.ts';
import { destroyUserSessions } from '../sessions/sessions.ts';

/**
 * An admin resets a user's second factor (the user lost the device and the recovery codes):
 * the TOTP secret, a pending enrolment and every recovery code go, and the user's sessions end,
 * so the next sign-in is by password alone (or enrols again where the role must use MFA). Only
 * an owner resets an owner's; nobody resets their own here (they disable it with a code).
 * Audited (`user.mfa_reset`).
 */
export function resetUserMfa(
  app: App,
  db: Database,
  userId: string,
  by: { actor: string; userId: string | null; role: PlatformRole | null },
): { user: UserRow; sessionsEnded: number; recoveryCodesRemoved: number } {
  const users = createUserRepository({ db });
  const u = users.byId(userId);
  if (!u) throw new AppError('user.not_found', `no user ${userId}`, 404);
  if (by.userId === u.id)
    throw new AppError(
      'auth.forbidden',
      'reset your own second factor by turning it off with a code (DELETE /api/v1/me/mfa/totp)',
      403,
    );
  assertMayManage(u, by.role, 'reset the second factor of');
  if (!u.totp_secret && !u.totp_pending)
    throw new AppError('auth.mfa_not_enabled', 'this user has no second factor to reset', 409);
  return db
    .transaction(() => {
      const now = app.clock.now();
      users.update(u.id, { totp_secret: null, totp_pending: null, totp_last_step: null }, now);
      const recoveryCodesRemoved = createOnboardingRepository({ db }).deleteRecoveryCodes(u.id);
      const sessionsEnded = destroyUserSessions(db, u.id);
      app.audit.append(db, {
        actor: by.actor,
        action: 'user.mfa_reset',
        target: `user:${u.id}`,
        details: { sessions_ended: sessionsEnded, recovery_codes_removed: recoveryCodesRemoved },
      });
      return { user: users.byId(u.id)!, sessionsEnded, recoveryCodesRemoved };
    })
    .immediate();
}
