/**
 * Request schemas of the identity routes (identity.routes.ts). The services keep their own
 * checks (they are called from SCIM, the CLI and flows too); a schema's `errorCode` keeps the
 * code a service gave that field before schemas (shared/validation.ts), so clients see the
 * same code for the same mistake. Objects the routes always closed stay closed.
 */
import { Type } from '@sinclair/typebox';
import { PLATFORM_ROLES } from './accounts/users.repository.ts';

const str = (description: string, errorCode: string, extra: Record<string, unknown> = {}) =>
  Type.String({ description, errorCode, ...extra });

export const Login = Type.Object({
  email: str('The account email.', 'auth.invalid_request', { errorMessage: 'required' }),
  password: str('The password.', 'auth.invalid_request', { errorMessage: 'required' }),
});

export const EmailToken = Type.Object({
  token: str('The token from the emailed link.', 'auth.token_invalid', {
    errorMessage: 'invalid or expired',
  }),
});

export const PasswordResetRequest = Type.Object({
  email: str('The account email.', 'auth.invalid_request', { errorMessage: 'required' }),
});

export const PasswordResetConfirm = Type.Object({
  token: str('The token from the emailed link.', 'auth.token_invalid', {
    errorMessage: 'invalid or expired',
  }),
  password: str('The new password, 12 to 256 characters.', 'user.password_invalid', {
    errorMessage: 'must be 12 to 256 characters',
  }),
});

const role = Type.Union(
  PLATFORM_ROLES.map((r) => Type.Literal(r)),
  { description: 'The platform role.', errorCode: 'user.role_invalid' },
);

export const UserCreate = Type.Object({
  email: str('The email (the sign-in name).', 'user.invalid', { errorMessage: 'must be an email address' }),
  name: Type.Optional(
    str('A display name.', 'user.invalid', { errorMessage: 'must be text of at most 200 characters' }),
  ),
  role: Type.Optional(role),
  password: Type.Optional(
    str(
      'A password (12 to 256 characters); without one the account is an SSO invitation.',
      'user.password_invalid',
      {
        errorMessage: 'must be 12 to 256 characters',
      },
    ),
  ),
  external_id: Type.Optional(Type.Unknown({ description: "The IdP's id for the user." })),
  given_name: Type.Optional(Type.Unknown({ description: 'Given name.' })),
  family_name: Type.Optional(Type.Unknown({ description: 'Family name.' })),
});

export const UserPatch = Type.Object(
  {
    role: Type.Optional(role),
    status: Type.Optional(
      Type.Union([Type.Literal('active'), Type.Literal('disabled')], {
        description: 'active or disabled.',
        errorCode: 'user.status_invalid',
        errorMessage: 'must be active or disabled',
      }),
    ),
  },
  { additionalProperties: false, description: 'Only role and status can be changed here.' },
);

export const ApiKeyCreate = Type.Object({
  name: Type.Optional(Type.Unknown({ description: 'A name for the key.' })),
  scopes: Type.Optional(Type.Unknown({ description: 'Scopes, e.g. ["ai:invoke"]; capped by your role.' })),
  expires_at: Type.Optional(Type.Unknown({ description: 'When it expires (ISO 8601).' })),
  rate_per_min: Type.Optional(Type.Unknown({ description: 'Requests per minute it may make.' })),
});

export const SettingsPatch = Type.Record(Type.String(), Type.Unknown(), {
  description: 'Identity settings to change (merged over the current ones, then validated).',
  errorCode: 'settings.invalid',
  errorMessage: 'must be an object',
});

export const AuditQuery = Type.Object({
  after: Type.Optional(Type.String({ description: 'Entries after this sequence number.' })),
  limit: Type.Optional(Type.String({ description: 'At most this many entries (1–500, default 100).' })),
  before: Type.Optional(Type.String({ description: 'Entries before this sequence number (newest first).' })),
  order: Type.Optional(Type.String({ description: 'asc (default) or desc (newest first).' })),
  action: Type.Optional(Type.String({ description: 'An action, or a prefix ending in a dot (`user.`).' })),
  actor: Type.Optional(Type.String({ description: 'An actor, exactly (`user:usr_…`).' })),
  target: Type.Optional(Type.String({ description: 'A piece of the target.' })),
  from: Type.Optional(Type.String({ description: 'ISO-8601: entries at or after this time.' })),
  to: Type.Optional(Type.String({ description: 'ISO-8601: entries before this time.' })),
});

export const IdParams = Type.Object({ id: Type.String({ description: 'The id.' }) });
export const LinkParams = Type.Object({
  kind: Type.String({ description: 'oidc or saml.' }),
  link: Type.String({ description: 'The linked identity id.' }),
});
export const UserLinkParams = Type.Object({
  id: Type.String({ description: 'The user id.' }),
  kind: Type.String({ description: 'oidc or saml.' }),
  link: Type.String({ description: 'The linked identity id.' }),
});
