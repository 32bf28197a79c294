import type { Database } from 'bun:sqlite';
import type { App } from '../../app/index.ts';
import { type SignedIn, ssoSignIn } from '../accounts/auth.service.ts';
import type { UserRow } from '../accounts/users.repository.ts';
import { provisionSsoUser, type SsoSignInFacts } from '../accounts/users.service.ts';

/**
 * The one sign-in finish of OIDC and SAML, once the IdP's answer is proven (the code exchanged
 * and the ID token checked, or the response's signatures valid, and its one use recorded):
 * the account is found, linked or created (provisionSsoUser: the linking rules, JIT, the role
 * mapping, `user.sso_linked`), then a session is issued with the MFA step pending when the
 * user has a second factor or their role requires one, audited as `user.signed_in`
 * (ssoSignIn). `seen.user` is set as soon as the account is known, so the caller's refusal
 * entry names it.
 */
export function finishSsoSignIn(
  app: App,
  db: Database,
  facts: SsoSignInFacts,
  client: { ip: string | null; userAgent: string | null },
  seen: { user?: UserRow },
): SignedIn {
  const { user } = provisionSsoUser(app, db, facts, seen);
  seen.user = user;
  return ssoSignIn(app, db, user, facts.kind, client);
}
