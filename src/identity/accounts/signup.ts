import type { Database } from 'bun:sqlite';
import { type App, admit, admitted } from '../../app/index.ts';
import { isUniqueViolation } from '../../db/index.ts';
import { AppError, type ErrorDetail } from '../../shared/errors.ts';
import { newId } from '../../shared/ids.ts';
import { queueMail } from '../mail/outbox.ts';
import { attributeSignup } from '../referrals/referrals.ts';
import { addressKey, type Limit, reserve } from '../throttle.ts';
import { issueEmailToken, throttled } from './auth.service.ts';
import { createOnboardingRepository } from './onboarding.repository.ts';
import { hashingBusy, hashPassword, LANE_QUEUE_CAP, laneHasRoom } from './passwords.ts';
import { createUserRepository, type UserRow } from './users.repository.ts';
import { checkPassword } from './users.service.ts';
import type { SignupPolicy } from './verification.ts';

const HOUR = 3_600_000;

/**
 * Sign-up limits: 5 sign-ups an hour from one address (then it waits an hour), and at most 3
 * messages an hour about one email address (a repeated sign-up for a known address answers the
 * same, but its mailbox is not flooded).
 */
export const SIGNUP_LIMITS = {
  address: { kind: 'signup_address', limit: 5, windowMs: HOUR, lockMs: HOUR },
  email: { kind: 'signup_email', limit: 3, windowMs: HOUR, lockMs: HOUR },
} as const satisfies Record<string, Limit>;

/**
 * At most this many sign-up accounts may wait for their email confirmation on one platform;
 * past it a sign-up is refused (503 `auth.signup_busy`) until some confirm or lapse. Unconfirmed
 * sign-ups lapse (are deleted) after the verification link's 48 hours, at the next sign-up.
 */
export const MAX_PENDING_SIGNUPS = 1000;
export const PENDING_SIGNUP_TTL_MS = 48 * HOUR;

/** The sign-up's outcome: a user who can sign in now, or a pending one who must confirm first. */
export type SignupResult = { status: 'created'; user: UserRow } | { status: 'pending' };

const EMAIL_RE = /^[^\s@]+@[^\s@]+$/;
const DATE_RE = /^(\d{4})-(\d{2})-(\d{2})$/;

/** Whole years between a date of birth (YYYY-MM-DD) and `now`, in UTC; null when not a real past date. */
export function ageOn(dateOfBirth: string, now: number): number | null {
  const m = DATE_RE.exec(dateOfBirth);
  if (!m) return null;
  const [y, mo, d] = [Number(m[1]), Number(m[2]), Number(m[3])];
  const born = Date.UTC(y, mo - 1, d);
  const b = new Date(born);
  if (b.getUTCFullYear() !== y || b.getUTCMonth() !== mo - 1 || b.getUTCDate() !== d || born > now)
    return null;
  const t = new Date(now);
  let age = t.getUTCFullYear() - y;
  if (t.getUTCMonth() < mo - 1 || (t.getUTCMonth() === mo - 1 && t.getUTCDate() < d)) age -= 1;
  return age > 150 ? null : age;
}

/**
 * Self sign-up, where the blueprint allows it (`governance.self_signup`; else 403
 * `auth.signup_disabled`). In order, before any slow work: the input is checked (email,
 * password, and under `age_verification` a date of birth against `minimum_age`: 403
 * `auth.underage`), the address is counted (5 an hour: 429 `auth.throttled`), lapsed
 * unconfirmed sign-ups are purged, and the pending cap is checked (`MAX_PENDING_SIGNUPS`: 503).
 * Then the password is hashed in the platform's fair lane.
 *
 * With `email_required` the new account waits for its confirmation link (sign-in answers 403
 * `auth.email_unverified` until then) and the answer is the same 202 whether or not the email
 * is taken: a taken address gets a notice instead (a pending sign-up: a fresh link), at most 3
 * messages an hour per address; the account is marked `provisioned_via = 'signup'` until
 * then. Without it the account is an ordinary one, active at once (201), and a taken email is
 * 409 `user.email_taken`. Audited (`user.signed_up`). A referral code in `ref` credits its holder
 * (not the new user themself; an unknown code is ignored: referrals.ts).
 */
export async function signUp(
  app: App,
  db: Database,
  platform: { id: string; name: string },
  policy: SignupPolicy,
  input: { email?: unknown; password?: unknown; name?: unknown; date_of_birth?: unknown; ref?: unknown },
  client: { ip: string | null },
  origin: string,
): Promise<SignupResult> {
  if (policy.self_signup !== true)
    throw new AppError(
      'auth.signup_disabled',
      'this platform does not take sign-ups; ask for an invitation',
      403,
    );
  const now = app.clock.now();
  const email = typeof input.email === 'string' ? input.email.trim().toLowerCase() : '';
  const details: ErrorDetail[] = [];
  if (!EMAIL_RE.test(email) || email.length > 254)
    details.push({ path: '/email', reason: 'must be an email address' });
  if (input.name !== undefined && (typeof input.name !== 'string' || input.name.length > 200))
    details.push({ path: '/name', reason: 'must be text of at most 200 characters' });
  const v = policy.user_verification;
  let age: number | null = null;
  if (v.age_verification) {
    age = typeof input.date_of_birth === 'string' ? ageOn(input.date_of_birth, now) : null;
    if (age === null) details.push({ path: '/date_of_birth', reason: 'required: a past date as YYYY-MM-DD' });
  }
  if (details.length)
    throw new AppError(
      'user.invalid',
      `invalid sign-up: ${details.map((d) => d.path).join(', ')}`,
      400,
      details,
    );
  const password = checkPassword(input.password);
  // A platform held over its operator plan's limits takes no new accounts (402).
  admit(db, 'user');
  const byAddress = reserve(db, [[SIGNUP_LIMITS.address, addressKey(client.ip)]], now);
  if (!byAddress.ok) throw throttled(byAddress.wait, 'sign-ups from this address');
  const minimum = v.minimum_age ?? 0;
  if (age !== null && age < minimum)
    throw new AppError('auth.underage', `you must be at least ${minimum} to join`, 403, [
      { path: '/date_of_birth', reason: `must be at least ${minimum} years ago` },
    ]);
  const repo = createOnboardingRepository({ db });
  // Only unconfirmed sign-ups lapse; without email_required a sign-up is an ordinary account.
  db.transaction(() => {
    if (!v.email_required) return;
    const purged = repo.purgePendingSignups(now - PENDING_SIGNUP_TTL_MS);
    if (purged.length)
      app.audit.append(db, {
        actor: 'system',
        action: 'user.signup_lapsed',
        target: 'users',
        details: { users: purged },
      });
  }).immediate();
  if (repo.pendingSignups() >= MAX_PENDING_SIGNUPS)
    throw new AppError(
      'auth.signup_busy',
      'too many sign-ups are waiting for confirmation; try again later',
      503,
    );
  if (!laneHasRoom(app, platform.id, LANE_QUEUE_CAP)) throw hashingBusy();
  const hash = await hashPassword(app, password, { lane: platform.id, queueCap: LANE_QUEUE_CAP });
  const users = createUserRepository({ db });
  const at = app.clock.now();
  const existing = users.byEmail(email);
  if (existing) {
    if (!v.email_required)
      throw new AppError('user.email_taken', `a user with email ${email} exists`, 409, [
        { path: '/email', reason: 'taken' },
      ]);
    // The same answer as a new sign-up; the mailbox's holder is told, within a limit.
    if (reserve(db, [[SIGNUP_LIMITS.email, email]], at).ok) {
      if (existing.provisioned_via === 'signup' && existing.email_verified_at === null)
        issueEmailToken(app, db, existing, 'verify_email', origin);
      else
        queueMail(
          db,
          {
            to_email: email,
            template: 'signup_exists',
            subject: `You already have an account on ${platform.name}`,
            body: `Someone (maybe you) tried to sign up on ${platform.name} with this address, which already has an account.\n\nSign in at ${origin}/ or reset your password at ${origin}/reset-password.\n\nIf it was not you, ignore this message.\n`,
          },
          at,
        );
    }
    return { status: 'pending' };
  }
  const row: UserRow = {
    id: newId('usr'),
    email,
    name: typeof input.name === 'string' ? input.name : '',
    password_hash: hash,
    role: 'member',
    status: 'active',
    email_verified_at: null,
    created_at: at,
    updated_at: at,
    // The mark of an account that must confirm its email before it signs in (and lapses if it
    // never does); without email_required the sign-up is an ordinary password account.
    provisioned_via: v.email_required ? 'signup' : null,
  };
  try {
    db.transaction(() => {
      users.insert(row);
      const referrer = attributeSignup(db, input.ref, row.id, at);
      app.audit.append(db, {
        actor: 'anonymous',
        action: 'user.signed_up',
        target: `user:${row.id}`,
        details: {
          email,
          ip: client.ip,
          ...(referrer ? { referred_by: referrer } : {}),
          email_required: v.email_required,
          ...(v.age_verification ? { age_checked: true, minimum_age: minimum } : {}),
        },
      });
      if (v.email_required) {
        reserve(db, [[SIGNUP_LIMITS.email, email]], at);
        issueEmailToken(app, db, row, 'verify_email', origin);
      }
    }).immediate();
  } catch (e) {
    // Taken meanwhile by a concurrent request: the same answer as above.
    if (isUniqueViolation(e, 'users', 'email')) {
      if (v.email_required) return { status: 'pending' };
      throw new AppError('user.email_taken', `a user with email ${email} exists`, 409, [
        { path: '/email', reason: 'taken' },
      ]);
    }
    throw e;
  }
  admitted(db, 'user');
  return v.email_required ? { status: 'pending' } : { status: 'created', user: users.byId(row.id)! };
}
