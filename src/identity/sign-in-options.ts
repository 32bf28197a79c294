import type { Database } from 'bun:sqlite';
import { readIdentitySettings } from './settings.ts';
import { readOidc } from './sso/oidc/oidc.ts';
import { readSaml } from './sso/saml/saml.ts';

/** How people may sign in on a platform: what its sign-in screen offers (no secrets). */
export interface SignInOptions {
  password: boolean;
  oidc: boolean;
  saml: boolean;
}

export function signInOptions(db: Database): SignInOptions {
  return {
    password: readIdentitySettings(db).password_login,
    oidc: readOidc(db) !== null,
    saml: readSaml(db) !== null,
  };
}
