import type { UserRow } from './users.repository.ts';

/** What the blueprint says about sign-up (its `governance`). */
export interface SignupPolicy {
  self_signup?: boolean | undefined;
  user_verification: { email_required: boolean; age_verification: boolean; minimum_age?: number | undefined };
}

/**
 * Whether a password sign-in must wait for the email confirmation: the account signed up
 * itself, has not confirmed, and the platform requires it (owners made by the operator and
 * invitees are confirmed when made; users an admin adds are vouched for by the admin).
 */
export function mustConfirmEmail(user: UserRow, policy: SignupPolicy): boolean {
  return (
    policy.user_verification.email_required &&
    user.provisioned_via === 'signup' &&
    user.email_verified_at === null
  );
}
