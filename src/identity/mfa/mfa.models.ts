/** Request schemas of the MFA routes (mfa.routes.ts); the service (mfa.ts) checks the rest. */
import { type Static, Type } from '@sinclair/typebox';

const code = Type.Optional(
  Type.Union([Type.String({ maxLength: 64 }), Type.Null()], {
    description: 'The six-digit code from the authenticator app.',
  }),
);
const recoveryCode = Type.Optional(
  Type.Union([Type.String({ maxLength: 64 }), Type.Null()], {
    description: 'One of the recovery codes, instead of `code`.',
  }),
);

/** A second factor: a TOTP code, or (where allowed) a recovery code. */
export const SecondFactor = Type.Object(
  { code, recovery_code: recoveryCode },
  { description: 'A second factor: `code` or `recovery_code`.' },
);
export type SecondFactor = Static<typeof SecondFactor>;

/** Enabling TOTP: the first code from the newly set-up authenticator. */
export const TotpEnable = Type.Object({ code });
