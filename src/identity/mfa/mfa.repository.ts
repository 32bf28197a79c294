import type { Database } from 'bun:sqlite';

/** Deletes every recovery code of a user. */
export function deleteRecoveryCodes(db: Database, userId: string): void {
  db.query('DELETE FROM recovery_codes WHERE user_id = ?').run(userId);
}

/** Stores recovery codes (their hashes), unused. */
export function insertRecoveryCodes(db: Database, userId: string, codeHashes: readonly string[]): void {
  const insert = db.query('INSERT INTO recovery_codes (user_id, code_hash, used_at) VALUES (?, ?, NULL)');
  for (const h of codeHashes) insert.run(userId, h);
}

/** How many unused recovery codes a user has. */
export function countUnusedRecoveryCodes(db: Database, userId: string): number {
  return (
    db
      .query<{ n: number }, [string]>(
        'SELECT count(*) AS n FROM recovery_codes WHERE user_id = ? AND used_at IS NULL',
      )
      .get(userId)?.n ?? 0
  );
}

/** Uses an unused recovery code (by its hash); false when there is none such. */
export function useRecoveryCode(db: Database, userId: string, codeHash: string, now: number): boolean {
  return (
    db
      .query('UPDATE recovery_codes SET used_at = ? WHERE user_id = ? AND code_hash = ? AND used_at IS NULL')
      .run(now, userId, codeHash).changes === 1
  );
}

/** The stored (sealed) TOTP seeds of one user. */
export interface TotpSeedRow {
  id: string;
  totp_secret: string | null;
  totp_pending: string | null;
}

/** Every user with a TOTP seed (enrolled or pending). */
export function usersWithTotpSeeds(db: Database): TotpSeedRow[] {
  return db
    .query<TotpSeedRow, []>(
      'SELECT id, totp_secret, totp_pending FROM users WHERE totp_secret IS NOT NULL OR totp_pending IS NOT NULL',
    )
    .all();
}

/** Rewrites a user's stored TOTP seeds (re-sealing). */
export function updateTotpSeeds(db: Database, r: TotpSeedRow): void {
  db.query('UPDATE users SET totp_secret = ?, totp_pending = ? WHERE id = ?').run(
    r.totp_secret,
    r.totp_pending,
    r.id,
  );
}
