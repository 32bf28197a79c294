import type { Database } from 'bun:sqlite';

/**
 * Records a SAML assertion as seen until `expiresAt` (one use per assertion; the primary key
 * decides), purging the records that expired by `now`. False when it was seen already.
 */
export function recordAssertionSeen(
  db: Database,
  assertionId: string,
  expiresAt: number,
  now: number,
): boolean {
  db.query('DELETE FROM saml_assertions_seen WHERE expires_at <= ?').run(now);
  return (
    db
      .query('INSERT OR IGNORE INTO saml_assertions_seen (assertion_id, expires_at) VALUES (?, ?)')
      .run(assertionId, expiresAt).changes > 0
  );
}

/** Marks a seen assertion's replay as audited; true only the first time. */
export function markAssertionReplayAudited(db: Database, assertionId: string): boolean {
  return (
    db
      .query(
        'UPDATE saml_assertions_seen SET replay_audited = 1 WHERE assertion_id = ? AND replay_audited IS NULL',
      )
      .run(assertionId).changes > 0
  );
}
