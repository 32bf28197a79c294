import type { Database } from 'bun:sqlite';
import { stateKey, stateOf } from '../app/index.ts';
import { AppError } from '../shared/errors.ts';
import { authenticateApiKey } from './apikeys/apikeys.ts';
import type { Principal } from './permissions.ts';
import { authenticateScimToken, SCIM_TOKEN_PREFIX } from './scim/scim-tokens.ts';
import { readCookie, resolveSession, SESSION_COOKIE } from './sessions/sessions.ts';
import { readIdentitySettings } from './settings.ts';
import { TokenBuckets } from './throttle.ts';

const KEY_BUCKETS = stateKey('identity.key_buckets', () => new TokenBuckets());

/** Per-key request buckets (keyed by platform and key id) of the App that opened `db`. */
export const keyBucketsOf = (db: Database): TokenBuckets => stateOf(db).get(KEY_BUCKETS);

/** Who a request is, as far as its credentials say. */
export interface Authenticated {
  principal: Principal | null;
  /** A session that signed in with a password or SSO but still owes its second factor. */
  pendingMfa: { sessionIdHash: string; userId: string; csrfToken: string } | null;
  /** How the credentials came: a cookie needs CSRF protection on writes, a bearer does not. */
  via: 'cookie' | 'bearer' | null;
}

/**
 * Reads a request's credentials against one platform's database: `Authorization: Bearer`
 * with an API key (`sf_...`, rate limited per key) or a SCIM token (`sfscim_...`), else the
 * session cookie. Credentials of another platform are simply unknown here. With `strict`, bad
 * credentials are an error (401/429); otherwise they count as anonymous. `rateLimit: false`
 * only checks who is calling, taking nothing from the key's rate (the dispatcher's look before
 * it reads a large body; the route's own check counts the request).
 */
export function authenticate(
  request: Request,
  db: Database,
  platformId: string,
  now: number,
  strict: boolean,
  opts: { rateLimit?: boolean } = {},
): Authenticated {
  const none: Authenticated = { principal: null, pendingMfa: null, via: null };
  const auth = request.headers.get('authorization');
  if (auth) {
    const m = /^Bearer\s+(\S+)$/i.exec(auth);
    const token = m?.[1] ?? '';
    if (token.startsWith(SCIM_TOKEN_PREFIX)) {
      const p = authenticateScimToken(db, token, now);
      if (!p && strict) throw new AppError('auth.invalid_token', 'the SCIM token is unknown or revoked', 401);
      return p ? { principal: p, pendingMfa: null, via: 'bearer' } : none;
    }
    const r = token.startsWith('sf_') ? authenticateApiKey(db, token, now) : null;
    if (!r?.ok) {
      if (!strict) return none;
      throw new AppError(
        r ? 'auth.invalid_api_key' : 'auth.invalid_token',
        r
          ? `the API key is ${r.reason === 'unknown' ? 'unknown' : r.reason === 'owner_inactive' ? 'not usable: its owner is deactivated' : r.reason}`
          : 'the bearer token is not a key of this platform',
        401,
      );
    }
    if (r.principal.kind === 'api_key' && opts.rateLimit !== false) {
      const wait = keyBucketsOf(db).take(`${platformId}:${r.principal.keyId}`, r.ratePerMin, now);
      if (wait > 0) {
        const e = new AppError(
          'auth.rate_limited',
          `this key is over its rate limit of ${r.ratePerMin} requests a minute`,
          429,
        );
        e.retryAfter = wait;
        throw e;
      }
    }
    return { principal: r.principal, pendingMfa: null, via: 'bearer' };
  }
  const cookie = readCookie(request.headers.get('cookie'), SESSION_COOKIE);
  if (!cookie) return none;
  const s = resolveSession(db, now, readIdentitySettings(db), cookie);
  if (!s) return none;
  if (s.session.mfa_pending) {
    const pendingMfa = {
      sessionIdHash: s.session.id_hash,
      userId: s.user.id,
      csrfToken: s.session.csrf_token,
    };
    return { principal: null, pendingMfa, via: 'cookie' };
  }
  return {
    principal: {
      kind: 'user',
      userId: s.user.id,
      role: s.user.role,
      sessionId: s.session.id_hash,
      csrfToken: s.session.csrf_token,
    },
    pendingMfa: null,
    via: 'cookie',
  };
}
