import type { Database } from 'bun:sqlite';

/** A data key as stored in control.db: wrapped under the master key. */
export interface DataKeyRow {
  id: string;
  wrapped: string;
  created_at: number;
  retired_at: number | null;
}

/** The schema of `data_keys`, for a keyring held in memory only (Keyring.ephemeral). */
export function createDataKeysTable(db: Database): void {
  db.exec(
    'CREATE TABLE data_keys (id TEXT PRIMARY KEY, wrapped TEXT NOT NULL, created_at INTEGER NOT NULL, retired_at INTEGER)',
  );
}

/** Every data key, oldest first. */
export function dataKeyRows(db: Database): DataKeyRow[] {
  return db
    .query<DataKeyRow, []>(
      'SELECT id, wrapped, created_at, retired_at FROM data_keys ORDER BY created_at, rowid',
    )
    .all();
}

/** Stores a new (live) data key. */
export function insertDataKey(db: Database, id: string, wrapped: string, now: number): void {
  db.query('INSERT INTO data_keys (id, wrapped, created_at, retired_at) VALUES (?, ?, ?, NULL)').run(
    id,
    wrapped,
    now,
  );
}

/** Retires a live data key at `now`. */
export function retireDataKey(db: Database, id: string, now: number): void {
  db.query('UPDATE data_keys SET retired_at = ? WHERE id = ? AND retired_at IS NULL').run(now, id);
}

/** Replaces a data key's wrapping (a new master key). */
export function rewrapDataKey(db: Database, id: string, wrapped: string): void {
  db.query('UPDATE data_keys SET wrapped = ? WHERE id = ?').run(wrapped, id);
}

/** Whether a database carries the `secrets_upgrade` marker (values left in clear to seal). */
export function secretsUpgradePending(db: Database): boolean {
  return db.query<{ pending: number }, []>('SELECT pending FROM secrets_upgrade LIMIT 1').get() !== null;
}

/** Removes the `secrets_upgrade` marker. */
export function clearSecretsUpgrade(db: Database): void {
  db.exec('DELETE FROM secrets_upgrade');
}
