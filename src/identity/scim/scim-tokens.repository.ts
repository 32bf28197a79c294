import type { Database } from 'bun:sqlite';

/** Stores a SCIM token's hash. */
export function insertScimToken(
  db: Database,
  t: { id: string; tokenHash: string; name: string; now: number },
): void {
  db.query('INSERT INTO scim_tokens (id, token_hash, name, created_at) VALUES (?, ?, ?, ?)').run(
    t.id,
    t.tokenHash,
    t.name,
    t.now,
  );
}

/** Revokes a live SCIM token at `now`; false when there is no live one with that id. */
export function markScimTokenRevoked(db: Database, id: string, now: number): boolean {
  return (
    db.query('UPDATE scim_tokens SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL').run(now, id)
      .changes > 0
  );
}

/** The live token with this hash, or null. */
export function liveScimToken(
  db: Database,
  tokenHash: string,
): { id: string; last_used_at: number | null } | null {
  return db
    .query<{ id: string; last_used_at: number | null }, [string]>(
      'SELECT id, last_used_at FROM scim_tokens WHERE token_hash = ? AND revoked_at IS NULL',
    )
    .get(tokenHash);
}

/** Records a token's use at `now`. */
export function touchScimToken(db: Database, id: string, now: number): void {
  db.query('UPDATE scim_tokens SET last_used_at = ? WHERE id = ?').run(now, id);
}
