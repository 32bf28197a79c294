import type { SecretSite } from '../app/index.ts';
import { OUTBOX_SECRET_SITE } from './mail/outbox.ts';
import { TOTP_SECRET_SITE } from './mfa/mfa.ts';
import { SSO_SECRET_SITES } from './sso/sso.ts';

/**
 * Every place identity stores a sealed secret: OIDC client secrets and SAML SP keys (each
 * platform's and the console's), TOTP seeds, and mail bodies. `keys rotate` re-seals them all.
 */
export const IDENTITY_SECRET_SITES: readonly SecretSite[] = [
  ...SSO_SECRET_SITES,
  TOTP_SECRET_SITE,
  OUTBOX_SECRET_SITE,
];
