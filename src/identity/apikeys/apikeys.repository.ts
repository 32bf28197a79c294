import type { Database } from 'bun:sqlite';
import type { PlatformRole } from '../accounts/users.repository.ts';

/** A stored API key: the prefix finds it, only the secret's SHA-256 is kept. */
export interface KeyRow {
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

/** A key with its owner's current role and status (null for a platform key). */
export type KeyWithOwner = KeyRow & { role: PlatformRole | null; status: string | null };

/** Stores a new key (never used, not revoked). */
export function insertApiKey(db: Database, row: KeyRow): void {
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
}

/** Every key (userId null) or one user's, oldest first. */
export function apiKeyRows(db: Database, userId: string | null): KeyRow[] {
  return userId === null
    ? db.query<KeyRow, []>('SELECT * FROM api_keys ORDER BY created_at').all()
    : db.query<KeyRow, [string]>('SELECT * FROM api_keys WHERE user_id = ? ORDER BY created_at').all(userId);
}

/** A key by id, or null. */
export function apiKeyById(db: Database, id: string): KeyRow | null {
  return db.query<KeyRow, [string]>('SELECT * FROM api_keys WHERE id = ?').get(id);
}

/** A key by its prefix, with its owner's role and status, or null. */
export function apiKeyByPrefix(db: Database, prefix: string): KeyWithOwner | null {
  return db
    .query<KeyWithOwner, [string]>(
      'SELECT k.*, u.role, u.status FROM api_keys k LEFT JOIN users u ON u.id = k.user_id WHERE k.prefix = ?',
    )
    .get(prefix);
}

/** Marks a key revoked at `now`. */
export function markApiKeyRevoked(db: Database, id: string, now: number): void {
  db.query('UPDATE api_keys SET revoked_at = ? WHERE id = ?').run(now, id);
}

/** Records a key's use at `now`. */
export function touchApiKey(db: Database, id: string, now: number): void {
  db.query('UPDATE api_keys SET last_used_at = ? WHERE id = ?').run(now, id);
}

/** Revokes every live key of a user at `now`; how many. */
export function revokeUserApiKeys(db: Database, userId: string, now: number): number {
  return db
    .query('UPDATE api_keys SET revoked_at = ? WHERE user_id = ? AND revoked_at IS NULL')
    .run(now, userId).changes;
}
