import type { Database } from 'bun:sqlite';
import { type App, type SecretSite, secretContext, secretsOf, stateKey } from '../../app/index.ts';
import { sha256Hex } from '../../shared/crypto.ts';
import { AppError } from '../../shared/errors.ts';
import { PLATFORM_ROLES, type PlatformRole } from '../accounts/users.repository.ts';
import { TokenBuckets } from '../throttle.ts';

const CONTROL = /[\u0000-\u001f\u007f]/;
const BASE = 'http://same.invalid';

/**
 * A same-origin path to return to after an SSO sign-in, or '/'. Anything that could leave the
 * origin (`//host`, `/\host`, absolute URLs, control characters, backslashes) is ignored.
 * NB! The check is made on what is returned, after normalisation, and again on what a browser
 * would make of it: `/.//evil`, `/..//evil` and `/%2F/evil`-style inputs normalise to paths that
 * start with `//` and would leave the origin, so they are refused too.
 */
export function safeReturnTo(v: unknown, maxLength = 2000): string {
  if (typeof v !== 'string' || v.length === 0 || v.length > maxLength) return '/';
  if (!isSafePath(v)) return '/';
  let u: URL;
  try {
    u = new URL(v, BASE);
  } catch {
    return '/';
  }
  if (u.origin !== BASE) return '/';
  const out = `${u.pathname}${u.search}${u.hash}`;
  // What is returned must itself be a same-origin path, and stay one when read again.
  if (!isSafePath(out) || out.length > maxLength) return '/';
  const again = new URL(out, BASE);
  return again.origin === BASE && `${again.pathname}${again.search}${again.hash}` === out ? out : '/';
}

/** A path that starts with one '/', no second '/' or '\\' after it, no control characters or backslashes. */
function isSafePath(p: string): boolean {
  if (!p.startsWith('/') || p.startsWith('//') || p.startsWith('/\\')) return false;
  if (CONTROL.test(p) || p.includes('\\')) return false;
  // An encoded slash or backslash right after the first '/' is one step from `//host`.
  return !/^\/%(2f|5c)/i.test(p);
}

/** The role claim or attribute values map to: the most powerful match in `roleMap`, else the default. */
export function mapRoleValues(
  roleMap: Record<string, PlatformRole>,
  defaultRole: PlatformRole,
  values: unknown[],
): PlatformRole {
  const mapped = new Set(
    values
      .filter((v): v is string => typeof v === 'string')
      .map((v) => (Object.hasOwn(roleMap, v) ? roleMap[v] : undefined)),
  );
  return PLATFORM_ROLES.find((r) => mapped.has(r)) ?? defaultRole;
}

/**
 * Removes one kind of SSO settings and its sign-ins in flight; false when none were set.
 * Someone who is not an owner (`role`; null is the system or the operator) may not remove an
 * IdP an owner signs in through (403 `sso.owner_linked`): it would lock the owner out. Audited.
 */
export function removeSso(
  app: App,
  db: Database,
  kind: 'oidc' | 'saml',
  actor: string,
  role: PlatformRole | null = null,
): boolean {
  return db
    .transaction(() => {
      assertMayChangeIdp(db, kind, false, role);
      const gone = db.query('DELETE FROM sso_providers WHERE kind = ?').run(kind).changes > 0;
      if (!gone) return false;
      // Rows of older versions (sign-ins in flight now live in the browser and fail here once the
      // settings are gone). The used-state records stay until they expire: no replay after a re-add.
      db.query('DELETE FROM sso_requests WHERE kind = ?').run(kind);
      app.audit.append(db, { actor, action: `sso.${kind}_removed`, target: `sso:${kind}` });
      return true;
    })
    .immediate();
}

/** One kind of stored SSO settings (config JSON plus enabled and updated_at), or null. */
export function readSsoSettings<T extends object>(
  db: Database,
  kind: 'oidc' | 'saml',
): (T & { enabled: boolean; updated_at: number }) | null {
  const row = db
    .query<{ enabled: number; config: string; updated_at: number }, [string]>(
      'SELECT enabled, config, updated_at FROM sso_providers WHERE kind = ?',
    )
    .get(kind);
  if (!row) return null;
  const config = JSON.parse(row.config) as Record<string, unknown>;
  const secrets = secretsOf(db);
  for (const f of SSO_SECRET_FIELDS[kind])
    if (typeof config[f] === 'string') config[f] = secrets.unseal(config[f], `sso:${kind}:${f}`);
  return { ...(config as T), enabled: row.enabled === 1, updated_at: row.updated_at };
}

/** The fields of each kind of SSO settings that are secrets, sealed at rest. */
const SSO_SECRET_FIELDS = { oidc: ['client_secret'], saml: ['sp_private_key'] } as const;

/**
 * Stores one kind of SSO settings (the caller's transaction), its secrets sealed under the
 * database's keyring (`sso:<kind>:<field>` contexts), so neither an OIDC client secret nor a
 * SAML SP private key is ever written in clear. The one writer of `sso_providers`.
 */
export function writeSsoSettings(
  db: Database,
  kind: 'oidc' | 'saml',
  enabled: boolean,
  config: object,
  now: number,
): void {
  const stored: Record<string, unknown> = { ...config };
  const secrets = secretsOf(db);
  for (const f of SSO_SECRET_FIELDS[kind])
    if (typeof stored[f] === 'string') stored[f] = secrets.seal(stored[f], `sso:${kind}:${f}`);
  db.query(
    `INSERT INTO sso_providers (kind, enabled, config, updated_at) VALUES (?, ?, ?, ?)
     ON CONFLICT (kind) DO UPDATE SET enabled = excluded.enabled, config = excluded.config,
     updated_at = excluded.updated_at`,
  ).run(kind, enabled ? 1 : 0, JSON.stringify(stored), now);
}

/** Re-seals the SSO secrets of one database (`keys rotate`, upgrades of older files). */
function resealSso(db: Database, scope: string, rewrite: (value: string, context: string) => string): number {
  let n = 0;
  const rows = db
    .query<{ kind: 'oidc' | 'saml'; config: string }, []>('SELECT kind, config FROM sso_providers')
    .all();
  for (const r of rows) {
    const config = JSON.parse(r.config) as Record<string, unknown>;
    let changed = false;
    for (const f of SSO_SECRET_FIELDS[r.kind] ?? []) {
      const v = config[f];
      if (typeof v !== 'string') continue;
      config[f] = rewrite(v, secretContext(scope, `sso:${r.kind}:${f}`));
      changed = true;
      n++;
    }
    if (changed)
      db.query('UPDATE sso_providers SET config = ? WHERE kind = ?').run(JSON.stringify(config), r.kind);
  }
  return n;
}

/** Where SSO secrets are stored: each platform's `sso_providers` and the console's in control.db. */
export const SSO_SECRET_SITES: readonly SecretSite[] = [
  { name: 'sso_providers', scope: 'tenant', reseal: resealSso },
  { name: 'operator_sso_providers', scope: 'control', reseal: resealSso },
];

/** SSO sign-ins one client address may start per minute on one platform (bursts up to this). */
export const SSO_STARTS_PER_MIN = 60;
/** How long a started sign-in (its sealed cookie) stays usable: ten minutes. */
export const SSO_PENDING_TTL_MS = 10 * 60_000;
/** Distinct keys the start limiter tracks before it starts a fresh generation (memory bound). */
const MAX_TRACKED = 100_000;

/** Token buckets with a bound on the keys they track: past it, a fresh generation starts. */
class BoundedBuckets {
  #buckets = new TokenBuckets();
  #keys = new Set<string>();

  /** 0 when `key` may go now, else the seconds until it may (see TokenBuckets.take). */
  take(key: string, ratePerMin: number, now: number): number {
    if (!this.#keys.has(key)) {
      if (this.#keys.size >= MAX_TRACKED) {
        this.#buckets = new TokenBuckets();
        this.#keys = new Set();
      }
      this.#keys.add(key);
    }
    return this.#buckets.take(key, ratePerMin, now);
  }
}

/** This App's SSO throttles: starts per address, anonymous refusals logged, refusals audited once. */
const SSO_THROTTLES = stateKey('identity.sso', () => ({
  starts: new BoundedBuckets(),
  refusalLog: new BoundedBuckets(),
  refusedOnce: new Map<string, number>(),
}));

/** What reaches an App's state: the App, or (tests) a bare `{ state }`. */
type HasState = Pick<App, 'state'>;

/**
 * Logs an SSO refusal that no known sign-in ties to (anonymous garbage at the ACS), at most
 * once a minute per address and platform, instead of writing an audit entry per post: anyone
 * can post, so one entry each would let anonymous traffic grow the audit chain at will.
 */
export function logAnonymousRefusal(
  app: App,
  scope: string,
  ip: string | null,
  fields: Record<string, unknown>,
): void {
  if (app.state.get(SSO_THROTTLES).refusalLog.take(`${scope}|${addressKey(ip)}`, 1, app.clock.now()) > 0)
    return;
  app.log.warn(
    'sso sign-in refused (no sign-in of ours; not audited, logged at most once a minute per address)',
    {
      ...fields,
      ip,
    },
  );
}

/**
 * The key a client address is limited by: an IPv4 address as it is, an IPv6 address by its
 * /64 (one subscriber holds a whole /64, so single addresses would be free to rotate), an
 * IPv4-mapped IPv6 address as the IPv4 one, and no address (a test's in-process call) as one.
 */
export function addressKey(ip: string | null): string {
  if (!ip) return 'unknown';
  const v = ip.trim().toLowerCase();
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/.exec(v);
  if (mapped) return mapped[1]!;
  if (!v.includes(':')) return v;
  const [head = '', tail = ''] = v.split('::');
  const left = head ? head.split(':') : [];
  const right = tail ? tail.split(':') : [];
  const groups = v.includes('::')
    ? [...left, ...Array<string>(Math.max(0, 8 - left.length - right.length)).fill('0'), ...right]
    : left;
  return `${groups
    .slice(0, 4)
    .map((g) => Number.parseInt(g || '0', 16).toString(16))
    .join(':')}::/64`;
}

/**
 * Takes one SSO start for a client address on a platform (`scope`), or throws 429
 * `sso.rate_limited` with Retry-After. The login routes are public and each start writes a
 * row, so one address may start only `SSO_STARTS_PER_MIN` a minute; other addresses are not
 * affected.
 */
export function takeSsoStart(app: HasState, scope: string, ip: string | null, now: number): void {
  const key = `${scope}|${addressKey(ip)}`;
  const wait = app.state.get(SSO_THROTTLES).starts.take(key, SSO_STARTS_PER_MIN, now);
  if (wait > 0) {
    const e = new AppError(
      'sso.rate_limited',
      'too many sign-ins started from this address; try again shortly',
      429,
    );
    e.retryAfter = wait;
    throw e;
  }
}

/** The kinds of sign-in in flight a sealed cookie may carry (bound into the sealing context). */
export type PendingKind = 'oidc' | 'saml';

/**
 * The cookie that carries one sign-in in flight: `<prefix>_<16 hex of SHA-256(key)>`, `key`
 * being the OIDC state or the SAML AuthnRequest ID. One cookie per sign-in, so two tabs of one
 * browser each have their own, and the callback finds its cookie by the state it was given.
 */
export function pendingCookieName(prefix: string, key: string): string {
  return `${prefix}_${sha256Hex(key).slice(0, 16)}`;
}

/**
 * Seals the state of a sign-in in flight for its cookie, so that starting a sign-in writes
 * nothing shared (anonymous starts cannot fill or churn anything on the server). AES-256-GCM
 * by the database's keyring, context `<scope>:sso:<kind>:pending`: it opens only on the same
 * platform (or the console) and for the same kind. Its expiry (`exp`, epoch ms) is sealed in.
 */
export function sealPending(db: Database, kind: PendingKind, payload: Record<string, unknown>): string {
  return secretsOf(db).seal(JSON.stringify(payload), `sso:${kind}:pending`);
}

/**
 * Opens a sealed sign-in cookie; null when it does not open (tampered, another platform, the
 * other kind, a retired key, not sealed at all) or is no object. Expiry is the caller's check.
 */
export function openPending(
  db: Database,
  kind: PendingKind,
  sealed: string | null,
): Record<string, unknown> | null {
  if (!sealed || sealed.length > 4096) return null;
  try {
    const v = JSON.parse(secretsOf(db).unseal(sealed, `sso:${kind}:pending`)) as unknown;
    return v && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : null;
  } catch {
    return null;
  }
}

/**
 * Sign-ins in flight one browser keeps at most (tabs). Every start is a public GET that any
 * site can make a browser load, so without a bound a page could plant enough cookies to make
 * that browser's callback requests too large to be served.
 */
export const SSO_PENDING_PER_BROWSER = 5;

/**
 * The names of a browser's sign-in cookies (`<prefix>_<hex>`, from its Cookie header) that a new
 * start must clear so that, with the new one, at most `SSO_PENDING_PER_BROWSER` remain: those that
 * do not open or have expired first, then the oldest. Nothing is stored: the browser holds them.
 */
export function pendingCookiesToDrop(
  db: Database,
  kind: PendingKind,
  prefix: string,
  cookieHeader: string | null,
  now: number,
): string[] {
  if (!cookieHeader) return [];
  const name = new RegExp(`^${prefix}_[0-9a-f]{16}$`);
  const found: { name: string; exp: number }[] = [];
  for (const part of cookieHeader.split(';')) {
    const i = part.indexOf('=');
    const n = i > 0 ? part.slice(0, i).trim() : '';
    if (!name.test(n) || found.some((f) => f.name === n)) continue;
    const exp = openPending(db, kind, part.slice(i + 1).trim())?.exp;
    found.push({ name: n, exp: typeof exp === 'number' && exp > now ? exp : 0 });
  }
  const excess = found.length - (SSO_PENDING_PER_BROWSER - 1);
  if (excess <= 0) return [];
  return found
    .sort((a, b) => a.exp - b.exp)
    .slice(0, excess)
    .map((f) => f.name);
}

/** Whether the sign-in keyed `key` (state / request ID) has been used by a finished sign-in. */
export function pendingUsed(db: Database, kind: PendingKind, key: string): boolean {
  return (
    db
      .query<{ n: number }, [string, string]>('SELECT 1 AS n FROM sso_used WHERE kind = ? AND id_hash = ?')
      .get(kind, sha256Hex(key)) !== null
  );
}

/**
 * Records that the sign-in keyed `key` has been used, until `expiresAt`; false when it was
 * already (a replay). Called only once the IdP's answer is proven (code exchanged and ID token
 * checked, or the SAML response's signatures valid), so anonymous traffic writes no row here.
 * Purges the expired records of that kind in the same step.
 */
export function recordPendingUsed(
  db: Database,
  kind: PendingKind,
  key: string,
  expiresAt: number,
  now: number,
): boolean {
  return db
    .transaction(() => {
      db.query('DELETE FROM sso_used WHERE kind = ? AND expires_at <= ?').run(kind, now);
      return (
        db
          .query('INSERT OR IGNORE INTO sso_used (kind, id_hash, expires_at) VALUES (?, ?, ?)')
          .run(kind, sha256Hex(key), expiresAt).changes > 0
      );
    })
    .immediate();
}

/** True the first time a replay of the used sign-in `key` is reported: it is audited once, then logged. */
export function firstReplayOf(db: Database, kind: PendingKind, key: string): boolean {
  return (
    db
      .query(
        'UPDATE sso_used SET replay_audited = 1 WHERE kind = ? AND id_hash = ? AND replay_audited IS NULL',
      )
      .run(kind, sha256Hex(key)).changes > 0
  );
}

/**
 * True the first time (in this process, within the sign-in's lifetime) a refusal tied to the
 * sealed sign-in `key` is reported: anyone holding their own cookie may re-post it, so such a
 * refusal is audited once and then only logged. Kept in memory (bounded), so refusals write
 * nothing to the database beyond that one entry.
 */
export function firstRefusalOf(
  app: HasState,
  scope: string,
  kind: PendingKind,
  key: string,
  now: number,
): boolean {
  const k = `${scope}|${kind}|${sha256Hex(key)}`;
  const throttles = app.state.get(SSO_THROTTLES);
  const until = throttles.refusedOnce.get(k);
  if (until !== undefined && until > now) return false;
  if (throttles.refusedOnce.size >= MAX_TRACKED) throttles.refusedOnce = new Map();
  throttles.refusedOnce.set(k, now + SSO_PENDING_TTL_MS);
  return true;
}

/**
 * Refuses (403 `sso.owner_linked`) when someone who is not an owner would change the IdP an
 * owner signs in through (`sameIdp` false: another OIDC issuer, another SAML entity ID,
 * signing certificate or sign-on URL, or the IdP switched off or removed): whoever sets the
 * IdP's trust anchor could sign in as every linked account, whoever points its sign-on URL
 * elsewhere collects the owner's IdP password, and whoever removes it locks the owner out.
 * Owners are managed by owners only.
 */
export function assertMayChangeIdp(
  db: Database,
  kind: 'oidc' | 'saml',
  sameIdp: boolean,
  role: PlatformRole | null,
): void {
  if (sameIdp || role === null || role === 'owner') return;
  const owners = db
    .query<{ n: number }, [string]>(
      "SELECT count(*) AS n FROM sso_identities i JOIN users u ON u.id = i.user_id WHERE i.kind = ? AND u.role = 'owner'",
    )
    .get(kind)!.n;
  if (owners > 0)
    throw new AppError(
      'sso.owner_linked',
      'an owner signs in through this identity provider; only an owner can replace, switch off or remove it',
      403,
    );
}

/** The parts of SSO settings that decide who becomes an owner: the IdP, the role claim, the owner values. */
export interface OwnerMapping {
  /** The OIDC issuer or the SAML IdP entity ID. */
  idp: string;
  /** The role claim (OIDC) or attribute (SAML). */
  roleKey: string | null;
  roleMap: Record<string, PlatformRole>;
  /** SAML: the fingerprints of the trusted signing certificates (a new one is another IdP). */
  trust?: readonly string[];
}

/**
 * Refuses (403 `auth.forbidden`, at `/role_map`) when someone who is not an owner would add or
 * change a mapping to the owner role. The change is compared, not the whole map: an admin may
 * save settings that map to owner as long as the owner-relevant parts (the same IdP, trusted
 * through no new certificate, the same role claim or attribute, the same values mapped to
 * owner) are as they were, so an owner's
 * mapping does not freeze the IdP's other settings. Owners are managed by owners only.
 */
export function assertMayMapOwner(
  previous: OwnerMapping | null,
  next: OwnerMapping,
  role: PlatformRole | null,
  what: string,
): void {
  if (role === null || role === 'owner') return;
  const ownerValues = (m: Record<string, PlatformRole>) =>
    Object.keys(m)
      .filter((k) => m[k] === 'owner')
      .sort();
  const after = ownerValues(next.roleMap);
  if (after.length === 0) return;
  const unchanged =
    previous !== null &&
    previous.idp === next.idp &&
    previous.roleKey === next.roleKey &&
    (next.trust ?? []).every((t) => (previous.trust ?? []).includes(t)) &&
    JSON.stringify(ownerValues(previous.roleMap)) === JSON.stringify(after);
  if (!unchanged)
    throw new AppError('auth.forbidden', `only an owner can map ${what} to the owner role`, 403, [
      { path: '/role_map', reason: 'maps to owner' },
    ]);
}

/** How recent the sign-in of a session must be to link an SSO identity to its account. */
export const LINK_REAUTH_MS = 15 * 60_000;

/**
 * Checks that a signed-in user may ask to link an SSO identity to their account: a browser
 * session (not an API key) that signed in within `LINK_REAUTH_MS` (re-authentication, as
 * Keycloak asks before linking); else 403 `sso.reauth_required`. Returns the user's id.
 */
export function linkingUser(
  app: App,
  db: Database,
  p: { kind: string; userId?: string | null; sessionId?: string } | null,
): string {
  if (p?.kind !== 'user' || !p.userId || !p.sessionId)
    throw new AppError('auth.forbidden', 'only a signed-in user can link an identity to their account', 403);
  const s = db
    .query<{ created_at: number }, [string]>('SELECT created_at FROM sessions WHERE id_hash = ?')
    .get(p.sessionId);
  if (!s || app.clock.now() - s.created_at > LINK_REAUTH_MS)
    throw new AppError(
      'sso.reauth_required',
      'sign in again (with your password) to link an identity provider to your account',
      403,
    );
  return p.userId;
}
