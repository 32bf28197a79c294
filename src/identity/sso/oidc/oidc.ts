import type { Database } from 'bun:sqlite';
import * as client from 'openid-client';
import { type App, stateKey } from '../../../app/index.ts';
import { setCookie } from '../../../shared/cookies.ts';
import { safeEqual, sha256Hex } from '../../../shared/crypto.ts';
import { AppError, type ErrorDetail, isAppError } from '../../../shared/errors.ts';
import { isOutboundError } from '../../../shared/outbound.ts';
import { type SignedIn, ssoSignIn } from '../../accounts/auth.service.ts';
import { PLATFORM_ROLES, type PlatformRole, type UserRow } from '../../accounts/users.repository.ts';
import { provisionSsoUser } from '../../accounts/users.service.ts';
import { readCookie } from '../../sessions/sessions.ts';
import {
  assertMayChangeIdp,
  assertMayMapOwner,
  firstRefusalOf,
  firstReplayOf,
  logAnonymousRefusal,
  mapRoleValues,
  openPending,
  pendingCookieName,
  pendingCookiesToDrop,
  pendingUsed,
  readSsoSettings,
  recordPendingUsed,
  removeSso,
  SSO_PENDING_TTL_MS,
  safeReturnTo,
  sealPending,
  takeSsoStart,
  writeSsoSettings,
} from '../sso.ts';

/** The path of the callback on every platform's origin (register `<origin>` + this at the IdP). */
export const OIDC_CALLBACK_PATH = '/sso/oidc/callback';
/**
 * The prefix of the cookies that carry sign-ins in flight, sealed: one per sign-in,
 * `sf_oidc_<16 hex of SHA-256(state)>`, on the OIDC paths only, at most SSO_PENDING_PER_BROWSER. Holding it is the browser
 * binding; the server keeps nothing until the IdP's answer is proven.
 */
export const OIDC_BROWSER_COOKIE = 'sf_oidc';
/** How long a started sign-in (state, nonce, PKCE verifier) stays usable. */
export const OIDC_REQUEST_TTL_MS = SSO_PENDING_TTL_MS;

const DEFAULT_SCOPES = ['openid', 'email', 'profile'];
const FIELDS = [
  'issuer',
  'client_id',
  'client_secret',
  'scopes',
  'role_claim',
  'role_map',
  'default_role',
  'jit',
  'link_existing_by_email',
  'enabled',
] as const;
const LOOPBACK = new Set(['127.0.0.1', 'localhost', '[::1]']);
const SCOPE_TOKEN = /^[\x21\x23-\x5B\x5D-\x7E]{1,100}$/;
const CLAIM_NAME = /^[A-Za-z0-9_.:/-]{1,100}$/;
const EMAIL_RE = /^[^\s@]+@[^\s@]+\.[^\s@]+$/;
const DISCOVERY_TIMEOUT_S = 10;

/** A platform's OIDC settings, as an owner or admin sets them. */
export interface OidcSettings {
  issuer: string;
  client_id: string;
  client_secret: string;
  scopes: string[];
  /** The claim whose value(s) pick the role (`groups`, `role`, ...); null: roles are not synced. */
  role_claim: string | null;
  /** Claim value → platform role. */
  role_map: Record<string, PlatformRole>;
  /** The role of a user whose claim matches nothing in `role_map`. */
  default_role: PlatformRole;
  /** Create unknown users at their first sign-in. */
  jit: boolean;
  /**
   * Link a sign-in to an existing account whose email matches (never an owner's, nor a password
   * account with an unconfirmed email). Only an owner turns it on; it goes off when the IdP changes.
   */
  link_existing_by_email: boolean;
  enabled: boolean;
}

/** What is stored: the settings and the IdP's metadata found by discovery at save time. */
export interface StoredOidc extends OidcSettings {
  server_metadata: client.ServerMetadata;
}

/** The settings as clients see them: never the secret. */
export interface OidcView extends Omit<OidcSettings, 'client_secret'> {
  client_secret_set: boolean;
  redirect_uri: string;
  endpoints: { authorization: string; token: string; userinfo: string | null; jwks: string | null };
  updated_at: string;
}

/** The stored OIDC settings of the platform behind `db`, or null when none are set. */
export function readOidc(db: Database): (StoredOidc & { updated_at: number }) | null {
  return readSsoSettings<StoredOidc>(db, 'oidc');
}

/** The client view of stored settings, with the redirect URI to register at the IdP. */
export function oidcView(s: StoredOidc & { updated_at: number }, origin: string): OidcView {
  const { client_secret, server_metadata: m, ...rest } = s;
  return {
    ...rest,
    // Settings saved before this switch existed have it off.
    link_existing_by_email: rest.link_existing_by_email === true,
    client_secret_set: client_secret.length > 0,
    redirect_uri: `${origin}${OIDC_CALLBACK_PATH}`,
    endpoints: {
      authorization: m.authorization_endpoint ?? '',
      token: m.token_endpoint ?? '',
      userinfo: m.userinfo_endpoint ?? null,
      jwks: m.jwks_uri ?? null,
    },
    updated_at: new Date(s.updated_at).toISOString(),
  };
}

/** Whether http is acceptable for this URL: only for the machine itself (tests, local IdPs). */
function isLoopback(u: URL): boolean {
  return LOOPBACK.has(u.hostname);
}

/**
 * Checks a PUT body field by field. Every fault is reported at once, each at its JSON Pointer.
 * `previous` lets the secret be left out when the issuer and client stay the same.
 */
export function validateOidcSettings(body: unknown, previous: OidcSettings | null): OidcSettings {
  if (!body || typeof body !== 'object' || Array.isArray(body)) {
    throw new AppError('sso.oidc_invalid', 'the body must be a JSON object', 400, [
      { path: '', reason: 'must be an object' },
    ]);
  }
  const b = body as Record<string, unknown>;
  const details: ErrorDetail[] = [];
  const bad = (path: string, reason: string) => details.push({ path, reason });
  for (const k of Object.keys(b)) {
    if (!(FIELDS as readonly string[]).includes(k)) bad(`/${k}`, 'unknown field');
  }

  let issuer = '';
  if (typeof b.issuer !== 'string' || b.issuer.length === 0) bad('/issuer', 'required: the IdP issuer URL');
  else if (b.issuer.length > 2048) bad('/issuer', 'must be at most 2048 characters');
  else {
    let u: URL | null = null;
    try {
      u = new URL(b.issuer);
    } catch {
      bad('/issuer', 'must be an absolute URL');
    }
    if (u) {
      if (u.protocol !== 'https:' && !(u.protocol === 'http:' && isLoopback(u)))
        bad('/issuer', 'must be https (http only for 127.0.0.1 or localhost)');
      else if (u.search || u.hash || u.username || u.password)
        bad('/issuer', 'must have no query, fragment or credentials');
      else issuer = b.issuer;
    }
  }

  const client_id = typeof b.client_id === 'string' ? b.client_id.trim() : '';
  if (!client_id || client_id.length > 255) bad('/client_id', 'required: 1 to 255 characters');

  let client_secret = '';
  if (b.client_secret === undefined) {
    if (previous && previous.issuer === issuer && previous.client_id === client_id)
      client_secret = previous.client_secret;
    else bad('/client_secret', 'required (may be left out only to keep the secret of the same client)');
  } else if (typeof b.client_secret !== 'string' || !b.client_secret || b.client_secret.length > 1024)
    bad('/client_secret', 'must be 1 to 1024 characters');
  else client_secret = b.client_secret;

  let scopes = DEFAULT_SCOPES;
  if (b.scopes !== undefined) {
    if (!Array.isArray(b.scopes) || b.scopes.length === 0 || b.scopes.length > 20)
      bad('/scopes', 'must be a list of 1 to 20 scopes');
    else {
      b.scopes.forEach((s, i) => {
        if (typeof s !== 'string' || !SCOPE_TOKEN.test(s)) bad(`/scopes/${i}`, 'must be a scope token');
      });
      if (!b.scopes.includes('openid')) bad('/scopes', "must include 'openid'");
      scopes = [...new Set(b.scopes as string[])];
    }
  }

  let role_claim: string | null = null;
  if (b.role_claim !== undefined && b.role_claim !== null) {
    if (typeof b.role_claim !== 'string' || !CLAIM_NAME.test(b.role_claim))
      bad('/role_claim', 'must be a claim name (letters, digits, _ . : / -)');
    else role_claim = b.role_claim;
  }

  const role_map: Record<string, PlatformRole> = {};
  if (b.role_map !== undefined && b.role_map !== null) {
    if (typeof b.role_map !== 'object' || Array.isArray(b.role_map))
      bad('/role_map', 'must be an object of claim value → role');
    else {
      const entries = Object.entries(b.role_map as Record<string, unknown>);
      if (entries.length > 200) bad('/role_map', 'must have at most 200 entries');
      for (const [k, v] of entries) {
        const path = `/role_map/${k.replaceAll('~', '~0').replaceAll('/', '~1')}`;
        if (!k || k.length > 200) bad(path, 'claim values must be 1 to 200 characters');
        else if (typeof v !== 'string' || !(PLATFORM_ROLES as readonly string[]).includes(v))
          bad(path, `must be one of ${PLATFORM_ROLES.join(', ')}`);
        else role_map[k] = v as PlatformRole;
      }
      if (entries.length && role_claim === null && !details.some((d) => d.path === '/role_claim'))
        bad('/role_claim', 'required when role_map is set');
    }
  }

  let default_role: PlatformRole = 'member';
  if (b.default_role !== undefined) {
    if (typeof b.default_role !== 'string' || !(PLATFORM_ROLES as readonly string[]).includes(b.default_role))
      bad('/default_role', `must be one of ${PLATFORM_ROLES.join(', ')}`);
    else if (b.default_role === 'owner') bad('/default_role', 'cannot be owner');
    else default_role = b.default_role as PlatformRole;
  }

  for (const k of ['jit', 'link_existing_by_email', 'enabled'] as const) {
    if (b[k] !== undefined && typeof b[k] !== 'boolean') bad(`/${k}`, 'must be true or false');
  }

  if (details.length) {
    throw new AppError(
      'sso.oidc_invalid',
      `invalid OIDC settings: ${details.map((d) => d.path).join(', ')}`,
      400,
      details,
    );
  }
  return {
    issuer,
    client_id,
    client_secret,
    scopes,
    role_claim,
    role_map,
    default_role,
    jit: b.jit !== false,
    link_existing_by_email: b.link_existing_by_email === true,
    enabled: b.enabled !== false,
  };
}

/**
 * Whether the saved settings may have `link_existing_by_email` on: only an owner (or the
 * system) turns it on, and an admin's save keeps it on only for the same IdP (a new issuer or
 * client turns it off: the owner agreed to link by email for that IdP, not for any).
 */
function linkByEmailAllowed(
  next: boolean,
  sameIdp: boolean,
  previous: boolean,
  role: PlatformRole | null,
): boolean {
  if (!next) return true;
  if (role === null || role === 'owner') return true;
  return previous && sameIdp;
}

/** What an admin is told about any failure to fetch the discovery document: nothing more. */
const DISCOVERY_UNREACHABLE = 'the issuer could not be reached, or did not answer as an OpenID provider';

/**
 * openid-client's fetch, through the instance's outbound guard: every request made for the
 * platform (discovery, JWKS, token, userinfo) is vetted, pinned to the checked address and
 * bounded in time and size (shared/outbound.ts). openid-client asks for `redirect: 'manual'`.
 */
function guardedFetch(app: App): client.CustomFetch {
  return (url, options) => {
    if (options.body instanceof ReadableStream)
      return Promise.reject(new TypeError('outbound: streamed request bodies are not supported'));
    return app.outbound.fetch(url, {
      method: options.method,
      headers: options.headers,
      body: options.body,
      redirect: options.redirect,
      ...(options.signal ? { signal: options.signal } : {}),
    });
  };
}

/**
 * Fetches the issuer's discovery document through the outbound guard; a failure is the admin's
 * to fix (400). Whatever went wrong before a valid document arrived (refused address, unknown
 * name, closed port, TLS, timeout, not a discovery document) is one message, so the answer says
 * nothing about what listens where; the reason goes to the server log.
 */
async function discover(app: App, s: OidcSettings): Promise<client.ServerMetadata> {
  const fail = (reason: string) =>
    new AppError('sso.oidc_discovery_failed', `OpenID discovery at ${s.issuer} failed: ${reason}`, 400, [
      { path: '/issuer', reason },
    ]);
  let meta: client.ServerMetadata;
  try {
    const insecure = new URL(s.issuer).protocol === 'http:';
    const cfg = await client.discovery(new URL(s.issuer), s.client_id, s.client_secret, undefined, {
      execute: insecure ? [client.allowInsecureRequests] : [],
      timeout: DISCOVERY_TIMEOUT_S,
      [client.customFetch]: guardedFetch(app),
    });
    meta = cfg.serverMetadata();
  } catch (e) {
    // The guard logged its own failures; anything else (status, JSON, issuer mismatch) is logged here.
    if (!isOutboundError(e))
      app.log.warn('oidc discovery failed', {
        issuer: s.issuer,
        err: e instanceof Error ? e.message.slice(0, 300) : String(e),
      });
    throw fail(DISCOVERY_UNREACHABLE);
  }
  if (!meta.authorization_endpoint || !meta.token_endpoint || !meta.jwks_uri)
    throw fail('the document lacks authorization_endpoint, token_endpoint or jwks_uri');
  for (const ep of [
    meta.authorization_endpoint,
    meta.token_endpoint,
    meta.jwks_uri,
    meta.userinfo_endpoint,
  ]) {
    if (!ep) continue;
    const u = new URL(ep);
    if (u.protocol !== 'https:' && !(u.protocol === 'http:' && isLoopback(u)))
      throw fail(`endpoint ${ep} must be https`);
  }
  if (meta.response_types_supported && !meta.response_types_supported.includes('code'))
    throw fail('the provider does not support the authorization code flow');
  // The endpoints this server will call must pass the guard too (checked again at each call).
  for (const [name, ep] of [
    ['token_endpoint', meta.token_endpoint],
    ['jwks_uri', meta.jwks_uri],
    ['userinfo_endpoint', meta.userinfo_endpoint],
  ] as const) {
    if (!ep) continue;
    try {
      await app.outbound.checkTarget(ep);
    } catch {
      throw fail(`the provider's ${name} cannot be reached from this server`);
    }
  }
  return meta;
}

/**
 * Validates and saves a platform's OIDC settings (full replace). Discovery runs now, so a wrong
 * issuer is refused at once, and its metadata is stored with the settings. Only an owner may map
 * a claim to the owner role. Audited as `sso.oidc_configured`, without the secret.
 */
export async function saveOidc(
  app: App,
  db: Database,
  body: unknown,
  by: { actor: string; role: PlatformRole | null },
): Promise<StoredOidc & { updated_at: number }> {
  const previous = readOidc(db);
  const s = validateOidcSettings(body, previous);
  assertMayMapOwner(
    previous && { idp: previous.issuer, roleKey: previous.role_claim, roleMap: previous.role_map },
    { idp: s.issuer, roleKey: s.role_claim, roleMap: s.role_map },
    by.role,
    'a claim',
  );
  const sameIdp = previous !== null && previous.issuer === s.issuer && previous.client_id === s.client_id;
  // Switching the IdP off is taking it away too.
  const switchedOff = previous?.enabled === true && !s.enabled;
  assertMayChangeIdp(db, 'oidc', previous !== null && previous.issuer === s.issuer && !switchedOff, by.role);
  // Left out: kept for the same IdP, off for another.
  if ((body as Record<string, unknown>).link_existing_by_email === undefined)
    s.link_existing_by_email = sameIdp && previous?.link_existing_by_email === true;
  if (
    !linkByEmailAllowed(s.link_existing_by_email, sameIdp, previous?.link_existing_by_email === true, by.role)
  )
    throw new AppError(
      'auth.forbidden',
      'only an owner can turn on linking existing accounts by email (for this identity provider)',
      403,
      [{ path: '/link_existing_by_email', reason: 'owner only' }],
    );
  const server_metadata = await discover(app, s);
  const stored: StoredOidc = { ...s, server_metadata };
  const now = app.clock.now();
  db.transaction(() => {
    writeSsoSettings(db, 'oidc', s.enabled, stored, now);
    const { client_secret: _secret, ...safe } = s;
    app.audit.append(db, {
      actor: by.actor,
      action: 'sso.oidc_configured',
      target: 'sso:oidc',
      details: {
        ...safe,
        secret_changed: !previous || previous.client_secret !== s.client_secret,
      },
    });
  }).immediate();
  return { ...stored, updated_at: now };
}

/**
 * Removes the platform's OIDC settings and its sign-ins in flight; false when none were set.
 * Only an owner (or the system: `role` null) removes an IdP an owner signs in through. Audited.
 */
export function removeOidc(app: App, db: Database, actor: string, role: PlatformRole | null = null): boolean {
  return removeSso(app, db, 'oidc', actor, role);
}

// One client Configuration per platform handle (in the App's state), rebuilt when the stored
// settings change, so the IdP's signing keys (JWKS) are fetched once rather than at every sign-in.
const OIDC_CONFIGS = stateKey(
  'identity.oidc_configs',
  () => new WeakMap<Database, { key: string; config: client.Configuration }>(),
);

/** The openid-client Configuration for stored settings (no network: metadata is stored). */
function clientConfig(app: App, db: Database, s: StoredOidc & { updated_at: number }): client.Configuration {
  const key = `${s.updated_at}:${sha256Hex(JSON.stringify(s))}`;
  const configs = app.state.get(OIDC_CONFIGS);
  const hit = configs.get(db);
  if (hit?.key === key) return hit.config;
  const methods = s.server_metadata.token_endpoint_auth_methods_supported;
  const auth =
    !methods || methods.includes('client_secret_basic')
      ? client.ClientSecretBasic(s.client_secret)
      : client.ClientSecretPost(s.client_secret);
  const config = new client.Configuration(s.server_metadata, s.client_id, s.client_secret, auth);
  config.timeout = DISCOVERY_TIMEOUT_S;
  config[client.customFetch] = guardedFetch(app);
  if (new URL(s.issuer).protocol === 'http:') client.allowInsecureRequests(config);
  configs.set(db, { key, config });
  return config;
}

export { safeReturnTo } from '../sso.ts';

/** What a started sign-in carries, sealed, in its cookie (context `sso:oidc:pending`). */
interface OidcPending {
  state: string;
  nonce: string;
  code_verifier: string;
  redirect_uri: string;
  return_to: string;
  /** The signed-in user who asked to link the returning identity to their account. */
  link_user?: string;
  /** When it stops being usable (epoch ms). */
  exp: number;
}

/** The name of the cookie that carries the sign-in with this state. */
export function oidcCookieName(state: string): string {
  return pendingCookieName(OIDC_BROWSER_COOKIE, state);
}

/**
 * A Set-Cookie value for a sign-in's sealed cookie (empty `value` and 0 clear it): HttpOnly,
 * SameSite=Lax (the IdP redirects back with a top-level GET), on the OIDC paths only (the login
 * sees them too, to keep a browser's count bounded: SSO_PENDING_PER_BROWSER).
 */
export function oidcCookie(name: string, value: string, secure: boolean, maxAgeSec: number): string {
  return setCookie(name, value, { path: '/sso/oidc', sameSite: 'Lax', maxAgeSec, secure });
}

/**
 * Starts an authorization code flow: fresh state, nonce and PKCE verifier (S256), sealed with
 * the return path, the linking user and a ten-minute expiry into the sign-in's own cookie
 * (returned as `cookie`; see OIDC_BROWSER_COOKIE). Nothing is written to the database, so
 * anonymous starts fill and churn nothing shared. With `client`, one address may still start
 * only so many a minute (429 `sso.rate_limited`; it bounds the CPU spent). `linkUserId`: a
 * signed-in user asks to link the identity that comes back to their own account.
 */
export async function startOidcLogin(
  app: App,
  db: Database,
  req: {
    origin: string;
    returnTo: unknown;
    client?: { scope: string; ip: string | null };
    linkUserId?: string | null;
    /** The browser's Cookie header: its oldest sign-in cookies beyond the bound are named in `drop`. */
    cookies?: string | null;
  },
): Promise<{ url: URL; cookie: { name: string; value: string }; drop: string[] }> {
  const s = readOidc(db);
  if (!s?.enabled)
    throw new AppError('sso.oidc_not_configured', 'single sign-on with OIDC is not set up here', 404);
  if (req.client) takeSsoStart(app, req.client.scope, req.client.ip, app.clock.now());
  const config = clientConfig(app, db, s);
  const state = client.randomState();
  const nonce = client.randomNonce();
  const code_verifier = client.randomPKCECodeVerifier();
  const redirect_uri = `${req.origin}${OIDC_CALLBACK_PATH}`;
  const pending: OidcPending = {
    state,
    nonce,
    code_verifier,
    redirect_uri,
    // At most 512 characters, as SAML's RelayState: it rides in the sealed sign-in cookie, and
    // a browser may hold SSO_PENDING_PER_BROWSER of those (headers stay well under Bun's limit).
    return_to: safeReturnTo(req.returnTo, 512),
    ...(req.linkUserId ? { link_user: req.linkUserId } : {}),
    exp: app.clock.now() + OIDC_REQUEST_TTL_MS,
  };
  const url = client.buildAuthorizationUrl(config, {
    redirect_uri,
    scope: s.scopes.join(' '),
    response_type: 'code',
    code_challenge: await client.calculatePKCECodeChallenge(code_verifier),
    code_challenge_method: 'S256',
    state,
    nonce,
  });
  return {
    url,
    cookie: { name: oidcCookieName(state), value: sealPending(db, 'oidc', { ...pending }) },
    drop: pendingCookiesToDrop(db, 'oidc', OIDC_BROWSER_COOKIE, req.cookies ?? null, app.clock.now()),
  };
}

/** Refusals of account linking the client sees as they are (the rest are `sso.oidc_failed`). */
const PASSED_THROUGH = new Set([
  'sso.account_exists',
  'sso.user_not_provisioned',
  'sso.identity_linked_elsewhere',
]);

/**
 * Refusals that name no sign-in of ours (no state, no cookie of ours for it, a cookie that does
 * not open): anyone can cause them, so they are logged, not audited.
 */
export const ANONYMOUS_REASONS: ReadonlySet<string> = new Set(['state_missing', 'state_unknown']);

/** A refused sign-in: the reason goes to the audit log, the message to the client. */
export class OidcRefusal extends Error {
  constructor(
    readonly reason: string,
    message: string,
    readonly status: 400 | 401 | 403 | 409 = 401,
    readonly code = 'sso.oidc_failed',
    /** Logged, not audited (a repeat that was audited already). */
    readonly anonymous = false,
  ) {
    super(message);
  }
}

/** What a callback learnt before it refused, for deciding whether the refusal is audited. */
export interface OidcSeen {
  email?: string;
  subject?: string;
  /** The state of a sealed sign-in of ours the callback carried (its cookie opened). */
  pending?: string;
  /** The IdP's answer was proven and the state recorded as used. */
  proven?: boolean;
}

/**
 * Whether a refused callback is audited: never for anonymous garbage; once per sign-in (in
 * memory) for a refusal tied to a sealed sign-in before the IdP's answer was proven, since its
 * holder may re-post the cookie at will; always once proven (a retry is a replay).
 */
export function auditsOidcRefusal(
  app: App,
  r: OidcRefusal,
  seen: OidcSeen,
  scope: string,
  now: number,
): boolean {
  if (r.anonymous || ANONYMOUS_REASONS.has(r.reason)) return false;
  if (seen.pending !== undefined && !seen.proven)
    return firstRefusalOf(app, scope, 'oidc', seen.pending, now);
  return true;
}

/** The role the claim maps to: the most powerful match in `role_map`, else the default role. */
export function mapRole(s: Pick<OidcSettings, 'role_map' | 'default_role'>, claim: unknown): PlatformRole {
  return mapRoleValues(s.role_map, s.default_role, Array.isArray(claim) ? claim : [claim]);
}

/** Why an openid-client call failed, in words an admin can act on. */
function describe(e: unknown): string {
  let x = e as { error?: unknown; error_description?: unknown; message?: unknown; cause?: unknown };
  // A WWW-Authenticate challenge (e.g. 401 invalid_client) carries its error in the header.
  const challenge = Array.isArray(x.cause)
    ? (x.cause[0] as { parameters?: typeof x } | undefined)
    : undefined;
  if (challenge?.parameters && typeof challenge.parameters.error === 'string') x = challenge.parameters;
  if (typeof x.error === 'string') {
    const d = typeof x.error_description === 'string' ? `: ${x.error_description}` : '';
    return `${x.error}${d}`.slice(0, 300);
  }
  const message = String(x.message ?? e);
  // openid-client wraps the precise reason (which claim, which parameter) as the cause.
  const cause = x.cause instanceof Error && x.cause.message !== message ? ` (${x.cause.message})` : '';
  return `${message}${cause}`.slice(0, 300);
}

/**
 * Finishes a sign-in at the callback: the browser must hold the sealed cookie of this state
 * (the browser binding), unexpired and not used by a finished sign-in (one use), the code is exchanged with the PKCE verifier and the ID token's
 * nonce and issuer are checked (openid-client), then the user is found, linked or created (JIT)
 * with the mapped role, and a session starts. A refusal is audited as `user.sign_in_failed`
 * (via oidc), except a callback naming no sign-in of ours (logged at most once a minute per
 * address), and answered 400/401 `sso.oidc_failed` (403 `sso.user_not_provisioned` when JIT is
 * off, 409 `sso.account_exists` when linking is refused); no session is made.
 */
export async function finishOidcLogin(
  app: App,
  db: Database,
  req: {
    origin: string;
    query: URLSearchParams;
    /** The request's Cookie header (the sign-in's sealed cookie is read from it). */
    cookies: string | null;
    ip: string | null;
    userAgent: string | null;
    /** The platform, for the rate of logged anonymous refusals. */
    scope?: string;
  },
): Promise<SignedIn & { returnTo: string }> {
  const seen: OidcSeen & { user?: UserRow } = {};
  try {
    return await callback(app, db, req, seen);
  } catch (e) {
    const r =
      e instanceof OidcRefusal
        ? e
        : isAppError(e) && PASSED_THROUGH.has(e.code)
          ? new OidcRefusal(e.code.slice(4), e.message, e.status as 403 | 409, e.code)
          : isAppError(e)
            ? new OidcRefusal(e.code, e.message, e.status === 403 || e.status === 409 ? 401 : 400)
            : new OidcRefusal('internal', 'the sign-in could not be completed', 400);
    if (!(e instanceof OidcRefusal) && !isAppError(e))
      app.log.error('oidc callback failed', { err: e instanceof Error ? (e.stack ?? e.message) : String(e) });
    const details = {
      via: 'oidc',
      reason: r.reason,
      message: r.message,
      ip: req.ip,
      ...(seen.subject ? { subject: seen.subject } : {}),
    };
    // A callback naming no sign-in of ours is anonymous garbage: logged, never an entry each.
    if (!auditsOidcRefusal(app, r, seen, req.scope ?? 'oidc', app.clock.now()))
      logAnonymousRefusal(app, req.scope ?? 'oidc', req.ip, details);
    else
      app.audit.append(db, {
        actor: seen.user ? `user:${seen.user.id}` : 'anonymous',
        action: 'user.sign_in_failed',
        target: seen.user ? `user:${seen.user.id}` : seen.email ? `email:${seen.email}` : 'sso:oidc',
        details,
      });
    throw new AppError(r.code, r.message, r.status);
  }
}

/** What a verified callback proved: the IdP's claims about the person, and where to go next. */
export interface VerifiedOidc {
  subject: string;
  email: string;
  name: string | undefined;
  claims: Record<string, unknown>;
  settings: StoredOidc & { updated_at: number };
  returnTo: string;
  /** The signed-in user who started this sign-in to link the identity, or null. */
  linkUserId: string | null;
}

/**
 * The protocol half of a callback, for any database holding `sso_providers` and `sso_used`
 * (a platform's, or the control plane's for the operator console): the sealed cookie named
 * after the state must be present and open here (this platform or console, kind oidc), carry
 * that very state and be unexpired; a state used by a finished sign-in is refused (replay, its
 * first one audited). The code is exchanged with PKCE, the ID token's nonce and issuer are
 * checked, then the state is recorded as used, and a verified email is required. Throws
 * `OidcRefusal`.
 */
export async function verifyOidcCallback(
  app: App,
  db: Database,
  req: { query: URLSearchParams; cookies: string | null },
  seen: OidcSeen,
): Promise<VerifiedOidc> {
  const state = req.query.get('state');
  if (!state) throw new OidcRefusal('state_missing', 'the callback has no state', 400);
  const unknown = () =>
    new OidcRefusal(
      'state_unknown',
      'unknown or already used sign-in state, or one started in another browser; start again',
      400,
    );
  if (state.length > 512) throw unknown();
  const sealed = readCookie(req.cookies, oidcCookieName(state));
  const opened = openPending(db, 'oidc', sealed) as Partial<OidcPending> | null;
  // No cookie of ours for this state (another browser, or forged) or one that does not open here.
  if (!opened || typeof opened.state !== 'string' || !safeEqual(opened.state, state)) throw unknown();
  const data = opened as OidcPending;
  seen.pending = state;
  const now = app.clock.now();
  if (typeof data.exp !== 'number' || data.exp <= now)
    throw new OidcRefusal('state_expired', 'the sign-in took too long; start again', 400);
  if (pendingUsed(db, 'oidc', state)) {
    seen.proven = true;
    throw new OidcRefusal(
      'state_replayed',
      'this sign-in has been finished already; start again',
      400,
      'sso.oidc_failed',
      !firstReplayOf(db, 'oidc', state),
    );
  }
  const idpError = req.query.get('error');
  if (idpError) {
    const d = req.query.get('error_description');
    throw new OidcRefusal(
      'idp_error',
      `the identity provider refused: ${idpError}${d ? `: ${d}` : ''}`.slice(0, 300),
    );
  }
  const s = readOidc(db);
  if (!s?.enabled)
    throw new OidcRefusal('not_configured', 'single sign-on with OIDC is not set up here', 400);
  const config = clientConfig(app, db, s);

  // The URL the IdP sent the browser to, rebuilt on the redirect URI this sign-in registered.
  const current = new URL(data.redirect_uri);
  for (const [k, v] of req.query) current.searchParams.append(k, v);
  let tokens: Awaited<ReturnType<typeof client.authorizationCodeGrant>>;
  try {
    tokens = await client.authorizationCodeGrant(config, current, {
      pkceCodeVerifier: data.code_verifier,
      expectedState: state,
      expectedNonce: data.nonce,
      idTokenExpected: true,
    });
  } catch (e) {
    throw new OidcRefusal(
      'code_exchange_failed',
      `the identity provider's answer was refused: ${describe(e)}`,
    );
  }
  // The IdP's answer is proven: only now is anything written, and the state is used up.
  seen.proven = true;
  if (!recordPendingUsed(db, 'oidc', state, data.exp, app.clock.now()))
    throw new OidcRefusal(
      'state_replayed',
      'this sign-in has been finished already; start again',
      400,
      'sso.oidc_failed',
      !firstReplayOf(db, 'oidc', state),
    );
  const idClaims = tokens.claims();
  if (!idClaims) throw new OidcRefusal('id_token_missing', 'the identity provider sent no ID token');
  seen.subject = idClaims.sub;
  let claims: Record<string, unknown> = { ...idClaims };
  const needInfo = typeof claims.email !== 'string' || (s.role_claim !== null && !(s.role_claim in claims));
  if (needInfo && s.server_metadata.userinfo_endpoint) {
    try {
      const info = await client.fetchUserInfo(config, tokens.access_token, idClaims.sub);
      claims = { ...info, ...idClaims };
    } catch (e) {
      throw new OidcRefusal('userinfo_failed', `reading the user's claims failed: ${describe(e)}`);
    }
  }

  const email = typeof claims.email === 'string' ? claims.email.trim().toLowerCase() : '';
  if (!EMAIL_RE.test(email))
    throw new OidcRefusal('email_missing', 'the identity provider sent no email address');
  seen.email = email;
  // A missing claim is no verification: only `email_verified: true` is.
  if (claims.email_verified !== true)
    throw new OidcRefusal('email_unverified', 'the identity provider has not verified this email address');
  const name = typeof claims.name === 'string' ? claims.name.slice(0, 200) : undefined;
  return {
    subject: idClaims.sub,
    email,
    name,
    claims,
    settings: s,
    // Checked again on the way out.
    returnTo: safeReturnTo(data.return_to),
    linkUserId: typeof data.link_user === 'string' ? data.link_user : null,
  };
}

async function callback(
  app: App,
  db: Database,
  req: Parameters<typeof finishOidcLogin>[2],
  seen: OidcSeen & { user?: UserRow },
): Promise<SignedIn & { returnTo: string }> {
  const v = await verifyOidcCallback(app, db, req, seen);
  const { settings: s, claims, email, name } = v;
  const { user } = provisionSsoUser(
    app,
    db,
    {
      kind: 'oidc',
      issuer: s.issuer,
      subject: v.subject,
      email,
      name,
      // Without a role claim, roles are not synced: only a new user gets the default role.
      role: s.role_claim !== null ? mapRole(s, claims[s.role_claim]) : null,
      defaultRole: s.default_role,
      jit: s.jit,
      linkExistingByEmail: s.link_existing_by_email === true,
      linkUserId: v.linkUserId,
    },
    seen,
  );
  seen.user = user;
  const signed = ssoSignIn(app, db, user, 'oidc', { ip: req.ip, userAgent: req.userAgent });
  return { ...signed, returnTo: v.returnTo };
}
