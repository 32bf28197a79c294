import type { Database } from 'bun:sqlite';
import type { App } from '../../app/index.ts';
import { randomToken, safeEqual, sha256Hex } from '../../shared/crypto.ts';
import { AppError } from '../../shared/errors.ts';
import { newId } from '../../shared/ids.ts';
import { iso } from '../../shared/time.ts';
import type { PlatformRole } from '../accounts/users.repository.ts';
import {
  isScope,
  keyRole,
  type Permission,
  type Principal,
  roleCan,
  SCOPES,
  type Scope,
} from '../permissions.ts';
import { readIdentitySettings } from '../settings.ts';
import { forgetApiKeys, KEY_CACHE_TTL_MS, keyCacheOf } from './key-cache.ts';

/** What clients see of a key (never its secret, which is shown once at creation). */
export interface ApiKeyView {
  id: string;
  name: string;
  prefix: string;
  scopes: Scope[];
  user_id: string | null;
  rate_per_min: number;
  created_at: string;
  expires_at: string | null;
  last_used_at: string | null;
  revoked_at: string | null;
}

interface KeyRow {
  id: string;
  prefix: string;
  secret_hash: string;
  name: string;
  user_id: string | null;
  scopes: string;
  rate_per_min: number;
  created_at: number;
  expires_at: number | null;
  last_used_at: number | null;
  revoked_at: number | null;
}

const PREFIX_ALPHABET = 'abcdefghijkmnpqrstuvwxyz23456789';

function newPrefix(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(10));
  return [...bytes].map((b) => PREFIX_ALPHABET[b % PREFIX_ALPHABET.length]).join('');
}

const view = (r: KeyRow): ApiKeyView => ({
  id: r.id,
  name: r.name,
  prefix: r.prefix,
  scopes: JSON.parse(r.scopes) as Scope[],
  user_id: r.user_id,
  rate_per_min: r.rate_per_min,
  created_at: iso(r.created_at),
  expires_at: r.expires_at === null ? null : iso(r.expires_at),
  last_used_at: r.last_used_at === null ? null : iso(r.last_used_at),
  revoked_at: r.revoked_at === null ? null : iso(r.revoked_at),
});

/** Checks a create request's fields; every bad field is named. */
function checkKeyInput(
  input: { name?: unknown; scopes?: unknown; expires_at?: unknown; rate_per_min?: unknown },
  now: number,
) {
  const details: { path: string; reason: string }[] = [];
  const name = typeof input.name === 'string' ? input.name.trim() : '';
  if (name.length < 1 || name.length > 100)
    details.push({ path: '/name', reason: 'must be 1 to 100 characters' });
  const scopes = input.scopes ?? ['ai:invoke'];
  if (!Array.isArray(scopes) || scopes.length === 0) {
    details.push({
      path: '/scopes',
      reason: `must be a non-empty list of: ${Object.keys(SCOPES).join(', ')}`,
    });
  } else {
    scopes.forEach((s, i) => {
      if (typeof s !== 'string' || !isScope(s))
        details.push({
          path: `/scopes/${i}`,
          reason: `unknown scope; one of: ${Object.keys(SCOPES).join(', ')}`,
        });
    });
  }
  let expiresAt: number | null = null;
  if (input.expires_at !== undefined && input.expires_at !== null) {
    const t = typeof input.expires_at === 'string' ? Date.parse(input.expires_at) : Number.NaN;
    if (Number.isNaN(t) || t <= now)
      details.push({ path: '/expires_at', reason: 'must be an ISO-8601 time in the future' });
    else expiresAt = t;
  }
  const rate = input.rate_per_min;
  if (
    rate !== undefined &&
    (!Number.isInteger(rate) || (rate as number) < 1 || (rate as number) > 1_000_000)
  ) {
    details.push({ path: '/rate_per_min', reason: 'must be an integer from 1 to 1000000' });
  }
  if (details.length)
    throw new AppError(
      'apikey.invalid',
      `invalid API key request: ${details.map((d) => d.path).join(', ')}`,
      400,
      details,
    );
  return { name, scopes: [...new Set(scopes as Scope[])], expiresAt, rate: rate as number | undefined };
}

/**
 * Makes an API key `sf_<prefix>_<secret>`; only the secret's SHA-256 is stored (the secret is
 * 256 random bits, so a fast hash is enough). A user's key cannot carry a scope its owner's
 * role could not use. Audited.
 */
export function createApiKey(
  app: App,
  db: Database,
  input: { name?: unknown; scopes?: unknown; expires_at?: unknown; rate_per_min?: unknown },
  owner: { userId: string | null; role: PlatformRole },
  actor: string,
): { id: string; key: string; view: ApiKeyView } {
  const now = app.clock.now();
  const k = checkKeyInput(input, now);
  const tooWide = k.scopes.filter(
    (s) => !(SCOPES[s] as readonly Permission[]).every((p) => roleCan(owner.role, p)),
  );
  if (tooWide.length) {
    throw new AppError(
      'apikey.scope_not_allowed',
      `your role (${owner.role}) cannot grant: ${tooWide.join(', ')}`,
      403,
      tooWide.map((s) => ({ path: '/scopes', reason: `${s} not allowed for ${owner.role}` })),
    );
  }
  const prefix = newPrefix();
  const secret = randomToken(32);
  const row: KeyRow = {
    id: newId('key'),
    prefix,
    secret_hash: sha256Hex(secret),
    name: k.name,
    user_id: owner.userId,
    scopes: JSON.stringify(k.scopes),
    rate_per_min: k.rate ?? readIdentitySettings(db).api_key_rate_per_min,
    created_at: now,
    expires_at: k.expiresAt,
    last_used_at: null,
    revoked_at: null,
  };
  db.transaction(() => {
    db.query(
      `INSERT INTO api_keys (id, prefix, secret_hash, name, user_id, scopes, rate_per_min, created_at, expires_at)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    ).run(
      row.id,
      row.prefix,
      row.secret_hash,
      row.name,
      row.user_id,
      row.scopes,
      row.rate_per_min,
      row.created_at,
      row.expires_at,
    );
    app.audit.append(db, {
      actor,
      action: 'apikey.created',
      target: `apikey:${row.id}`,
      details: { name: row.name, scopes: k.scopes, user_id: row.user_id, expires_at: row.expires_at },
    });
  }).immediate();
  return { id: row.id, key: `sf_${prefix}_${secret}`, view: view(row) };
}

/** Keys of one user (or every key, for admins). */
export function listApiKeys(db: Database, userId: string | null): ApiKeyView[] {
  const rows =
    userId === null
      ? db.query<KeyRow, []>('SELECT * FROM api_keys ORDER BY created_at').all()
      : db
          .query<KeyRow, [string]>('SELECT * FROM api_keys WHERE user_id = ? ORDER BY created_at')
          .all(userId);
  return rows.map(view);
}

/** Revokes a key at once (its next request is refused). `ownerId` limits it to that user's keys. Audited. */
export function revokeApiKey(
  app: App,
  db: Database,
  id: string,
  ownerId: string | null,
  actor: string,
): ApiKeyView {
  const row = db.query<KeyRow, [string]>('SELECT * FROM api_keys WHERE id = ?').get(id);
  if (!row || (ownerId !== null && row.user_id !== ownerId))
    throw new AppError('apikey.not_found', `no API key ${id}`, 404);
  if (row.revoked_at !== null) return view(row);
  const now = app.clock.now();
  db.transaction(() => {
    db.query('UPDATE api_keys SET revoked_at = ? WHERE id = ?').run(now, id);
    forgetApiKeys(db);
    app.audit.append(db, {
      actor,
      action: 'apikey.revoked',
      target: `apikey:${id}`,
      details: { name: row.name },
    });
  }).immediate();
  return view({ ...row, revoked_at: now });
}

/** The outcome of presenting a key. */
export type KeyCheck =
  | { ok: true; principal: Principal; ratePerMin: number }
  | { ok: false; reason: 'unknown' | 'revoked' | 'expired' | 'owner_inactive' };

/**
 * Checks a presented key on this platform's database: the prefix finds the row, the secret's
 * hash must match (constant time), and it must be live. A user key acts with its owner's
 * current role, but never above admin unless a scope says owner (`keyRole`); a platform key (no
 * owner) acts as admin; either way capped by its scopes.
 */
export function authenticateApiKey(db: Database, key: string, now: number): KeyCheck {
  const m = /^sf_([a-z0-9]{10})_([A-Za-z0-9_-]{43})$/.exec(key);
  if (!m) return { ok: false, reason: 'unknown' };
  const prefix = m[1]!;
  const cache = keyCacheOf<CachedKey>(db);
  let k = cache.get(prefix);
  if (!k || now - k.readAt >= KEY_CACHE_TTL_MS || now < k.readAt) {
    const row = db
      .query<KeyRow & { role: PlatformRole | null; status: string | null }, [string]>(
        `SELECT k.*, u.role, u.status FROM api_keys k LEFT JOIN users u ON u.id = k.user_id WHERE k.prefix = ?`,
      )
      .get(prefix);
    if (!row) return { ok: false, reason: 'unknown' };
    const scopes = Object.freeze(JSON.parse(row.scopes)) as Scope[];
    k = {
      row,
      readAt: now,
      // Shared by every request with this key until forgotten: frozen.
      principal: Object.freeze({
        kind: 'api_key',
        keyId: row.id,
        userId: row.user_id,
        role: keyRole(row.user_id === null ? 'admin' : (row.role ?? 'member'), scopes),
        scopes,
      }),
    };
    cache.set(prefix, k);
  }
  const row = k.row;
  if (!safeEqual(row.secret_hash, sha256Hex(m[2]!))) return { ok: false, reason: 'unknown' };
  if (row.revoked_at !== null) return { ok: false, reason: 'revoked' };
  if (row.expires_at !== null && now >= row.expires_at) return { ok: false, reason: 'expired' };
  if (row.user_id !== null && row.status !== 'active') return { ok: false, reason: 'owner_inactive' };
  if (row.last_used_at === null || now - row.last_used_at > 60_000) {
    db.query('UPDATE api_keys SET last_used_at = ? WHERE id = ?').run(now, row.id);
    row.last_used_at = now;
  }
  return { ok: true, ratePerMin: row.rate_per_min, principal: k.principal };
}

/** A key row as cached (with its owner's role and status) and the principal it acts as. */
interface CachedKey {
  row: KeyRow & { role: PlatformRole | null; status: string | null };
  readAt: number;
  principal: Principal;
}

/** Revokes every key of a user (deactivation). */
export function revokeUserKeys(db: Database, userId: string, now: number): number {
  forgetApiKeys(db);
  return db
    .query('UPDATE api_keys SET revoked_at = ? WHERE user_id = ? AND revoked_at IS NULL')
    .run(now, userId).changes;
}
