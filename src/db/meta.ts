import type { Database } from 'bun:sqlite';

/**
 * The few statements that are about a database file itself rather than a domain's rows: a
 * platform file's `meta` (which platform it is), a liveness probe, a WAL fold. Kept here, in
 * the database layer, so that routes and flows run no SQL (tests/only-repositories-query.test.ts).
 */

/** A platform file's `meta` value, or null. */
export function readMeta(db: Database, key: string): string | null {
  return (
    db.query<{ value: string }, [string]>('SELECT value FROM meta WHERE key = ?').get(key)?.value ?? null
  );
}

/** Writes `meta` entries of a new platform file (the caller's transaction). */
export function writeMeta(db: Database, entries: Record<string, string>): void {
  const q = db.query('INSERT INTO meta (key, value) VALUES (?, ?)');
  for (const [k, v] of Object.entries(entries)) q.run(k, v);
}

/** Throws when the database cannot answer a query (readiness). */
export function ping(db: Database): void {
  db.query('SELECT 1').get();
}

/** Folds the WAL into the main file and truncates it, so that one file is all there is. */
export function foldWal(db: Database): void {
  db.exec('PRAGMA wal_checkpoint(TRUNCATE)');
}
