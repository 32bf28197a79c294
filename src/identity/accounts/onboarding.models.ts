/**
 * Request schemas of the sign-up, invitation, password-change and MFA-reset routes
 * (onboarding.routes.ts). As in identity.models.ts, a schema's `errorCode` is the code the
 * service gives the same mistake; the services keep their own checks.
 */
import { Type } from '@sinclair/typebox';
import { PLATFORM_ROLES } from './users.repository.ts';

const str = (description: string, errorCode: string, extra: Record<string, unknown> = {}) =>
  Type.String({ description, errorCode, ...extra });

export const Signup = Type.Object({
  email: str('The email (the sign-in name).', 'user.invalid', { errorMessage: 'must be an email address' }),
  password: str('A password, 12 to 256 characters.', 'user.password_invalid', {
    errorMessage: 'must be 12 to 256 characters',
  }),
  name: Type.Optional(
    str('A display name.', 'user.invalid', { errorMessage: 'must be text of at most 200 characters' }),
  ),
  date_of_birth: Type.Optional(
    str('YYYY-MM-DD; required where the platform verifies age.', 'user.invalid', {
      errorMessage: 'required: a past date as YYYY-MM-DD',
    }),
  ),
  ref: Type.Optional(
    Type.Unknown({
      description:
        'A referral code from a share link (features.viral_sharing): its holder is credited; an unknown one is ignored, never refused.',
    }),
  ),
});

export const InvitationCreate = Type.Object({
  email: str('Who to invite.', 'user.invalid', { errorMessage: 'must be an email address' }),
  role: Type.Optional(
    Type.Union(
      PLATFORM_ROLES.map((r) => Type.Literal(r)),
      { description: 'The role they get (default member).', errorCode: 'user.role_invalid' },
    ),
  ),
  name: Type.Optional(
    str('A display name.', 'user.invalid', { errorMessage: 'must be text of at most 200 characters' }),
  ),
});

export const InvitationAccept = Type.Object({
  token: str('The token from the invitation link.', 'auth.token_invalid', {
    errorMessage: 'invalid or expired',
  }),
  password: str('A password, 12 to 256 characters.', 'user.password_invalid', {
    errorMessage: 'must be 12 to 256 characters',
  }),
  name: Type.Optional(
    str('A display name.', 'user.invalid', { errorMessage: 'must be text of at most 200 characters' }),
  ),
});

export const PasswordChange = Type.Object({
  current_password: str('The current password.', 'auth.invalid_request', { errorMessage: 'required' }),
  new_password: str('The new password, 12 to 256 characters.', 'user.password_invalid', {
    errorMessage: 'must be 12 to 256 characters',
  }),
});

export const IdParam = Type.Object({ id: Type.String({ description: 'The id.' }) });
