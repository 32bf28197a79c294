import type { Database } from 'bun:sqlite';
import { type App, type SecretSite, secretContext, secretsOf } from '../app/index.ts';
import { AppError } from '../shared/errors.ts';
import { TokenBuckets } from './throttle.ts';
import { PLATFORM_ROLES, type PlatformRole } from './users.repository.ts';

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
/**
 * Sign-ins in flight (rows of `sso_requests` of one kind) a platform keeps at most. Beyond it
 * the oldest are dropped, never the new one refused: anonymous traffic cannot lock everyone out,
 * and the per-address limit above makes reaching this take many addresses.
 */
export const SSO_MAX_PENDING = 50_000;
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

const startBuckets = new BoundedBuckets();
const refusalLog = new BoundedBuckets();

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
  if (refusalLog.take(`${scope}|${addressKey(ip)}`, 1, app.clock.now()) > 0) return;
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
export function takeSsoStart(scope: string, ip: string | null, now: number): void {
  const key = `${scope}|${addressKey(ip)}`;
  const wait = startBuckets.take(key, SSO_STARTS_PER_MIN, now);
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

/**
 * Keeps a platform's sign-ins in flight of one kind within `SSO_MAX_PENDING` by dropping the
 * expired ones and then the oldest (run in the transaction that adds a new one).
 */
export function trimSsoRequests(db: Database, kind: 'oidc' | 'saml', now: number): void {
  db.query('DELETE FROM sso_requests WHERE kind = ? AND expires_at <= ?').run(kind, now);
  const n = db
    .query<{ n: number }, [string]>('SELECT count(*) AS n FROM sso_requests WHERE kind = ?')
    .get(kind)!.n;
  if (n >= SSO_MAX_PENDING) {
    db.query(
      'DELETE FROM sso_requests WHERE id IN (SELECT id FROM sso_requests WHERE kind = ? ORDER BY expires_at LIMIT ?)',
    ).run(kind, n - SSO_MAX_PENDING + 1);
  }
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
