import type { Database } from 'bun:sqlite';
import type { App } from '../../app/index.ts';
import { randomToken, sha256Hex } from '../../shared/crypto.ts';
import { AppError } from '../../shared/errors.ts';
import { iso } from '../../shared/time.ts';
import { AUTH_LIMITS, accountAddressKey, addressKey, type Hold, release, reserve } from '../throttle.ts';
import { throttled } from './auth.service.ts';
import { createOnboardingRepository } from './onboarding.repository.ts';
import { hashingBusy, hashPassword, LANE_QUEUE_CAP, laneHasRoom, verifyPassword } from './passwords.ts';
import { createUserRepository, type UserRow } from './users.repository.ts';
import { checkPassword } from './users.service.ts';

/**
 * A signed-in user changes their password: the current one must be right (wrong: 400
 * `auth.invalid_credentials`, counted against the account from this address and the account,
 * as a sign-in failure is), the new one 12–256 characters. Every other session of the user ends;
 * this one stays. Audited (`user.password_changed`, with the sessions ended).
 */
export async function changePassword(
  app: App,
  db: Database,
  platformId: string,
  session: { userId: string; sessionIdHash: string },
  input: { current_password?: unknown; new_password?: unknown },
  client: { ip: string | null },
): Promise<{ sessionsEnded: number }> {
  const users = createUserRepository({ db });
  const user = users.byId(session.userId);
  if (!user) throw new AppError('auth.forbidden', 'only a user has a password', 403);
  if (user.password_hash === null)
    throw new AppError(
      'user.no_password',
      'this account has no password yet (it signs in with SSO); set one through a reset link',
      409,
    );
  const current = typeof input.current_password === 'string' ? input.current_password : '';
  if (!current || current.length > 1024)
    throw new AppError('auth.invalid_request', 'current_password is required', 400, [
      { path: '/current_password', reason: 'required' },
    ]);
  const next = checkPassword(input.new_password, '/new_password');
  const lane = { lane: platformId, queueCap: LANE_QUEUE_CAP };
  if (!laneHasRoom(app, platformId, LANE_QUEUE_CAP)) throw hashingBusy();
  const email = user.email.toLowerCase();
  const holds: Hold[] = [
    [AUTH_LIMITS.accountAddress, accountAddressKey(email, addressKey(client.ip))],
    [AUTH_LIMITS.account, email],
  ];
  const r = reserve(db, holds, app.clock.now());
  if (!r.ok) throw throttled(r.wait);
  const ok = await verifyPassword(app, current, user.password_hash, lane);
  if (!ok) {
    app.audit.append(db, {
      actor: `user:${user.id}`,
      action: 'user.password_change_failed',
      target: `user:${user.id}`,
      details: { ip: client.ip },
    });
    throw new AppError('auth.invalid_credentials', 'the current password is wrong', 400, [
      { path: '/current_password', reason: 'wrong' },
    ]);
  }
  for (const [l, key] of holds) release(db, l, key, app.clock.now());
  const hash = await hashPassword(app, next, lane);
  return db
    .transaction(() => {
      const now = app.clock.now();
      users.update(user.id, { password_hash: hash }, now);
      const ended = createOnboardingRepository({ db }).endOtherSessions(user.id, session.sessionIdHash);
      app.audit.append(db, {
        actor: `user:${user.id}`,
        action: 'user.password_changed',
        target: `user:${user.id}`,
        details: { other_sessions_ended: ended, ip: client.ip },
      });
      return { sessionsEnded: ended };
    })
    .immediate();
}

/** How long an owner-reset link lives: 24 hours. */
export const OWNER_RESET_TTL_MS = 24 * 3_600_000;

/**
 * A one-time password-reset link for a platform's owner, made for the operator (printed, not
 * mailed): the oldest active owner, or the owner with `email`. The link opens the platform's
 * `/reset-password` page; completing it does what any reset does (sessions ended, keys revoked,
 * lock-outs lifted). Audited on the platform's chain (`user.owner_reset_issued`); the caller
 * audits the control chain.
 */
export function issueOwnerResetLink(
  app: App,
  db: Database,
  origin: string,
  opts: { email?: string | undefined; actor: string },
): { user: UserRow; link: string; expiresAt: number } {
  const owners = createUserRepository({ db })
    .all()
    .filter((u) => u.role === 'owner' && u.status === 'active');
  const user = opts.email ? owners.find((u) => u.email === opts.email!.trim().toLowerCase()) : owners[0];
  if (!user)
    throw new AppError(
      'platform.owner_not_found',
      opts.email ? `no active owner ${opts.email} on this platform` : 'this platform has no active owner',
      404,
    );
  const token = randomToken(32);
  const now = app.clock.now();
  const expiresAt = now + OWNER_RESET_TTL_MS;
  db.transaction(() => {
    createOnboardingRepository({ db }).insertEmailToken(
      sha256Hex(token),
      user.id,
      'reset_password',
      now,
      expiresAt,
    );
    app.audit.append(db, {
      actor: opts.actor,
      action: 'user.owner_reset_issued',
      target: `user:${user.id}`,
      details: { email: user.email, expires_at: iso(expiresAt) },
    });
  }).immediate();
  return { user, link: `${origin}/app/reset-password?token=${token}`, expiresAt };
}
