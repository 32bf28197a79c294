import type { Database } from 'bun:sqlite';

/** Every stored instance setting (control.db `settings`), as key and value. */
export function settingRows(db: Database): { key: string; value: string }[] {
  return db.query<{ key: string; value: string }, []>('SELECT key, value FROM settings').all();
}

/** One stored instance setting, or null. */
export function settingValue(db: Database, key: string): string | null {
  return (
    db.query<{ value: string }, [string]>('SELECT value FROM settings WHERE key = ?').get(key)?.value ?? null
  );
}

/** Stores settings (upsert), in one write transaction. */
export function upsertSettings(db: Database, entries: Record<string, string>): void {
  const q = db.query(
    'INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value',
  );
  db.transaction(() => {
    for (const [k, v] of Object.entries(entries)) q.run(k, v);
  }).immediate();
}

/** Stores a setting unless one is stored under that key; false when one was. */
export function insertSettingOnce(db: Database, key: string, value: string): boolean {
  return (
    db.query('INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT(key) DO NOTHING').run(key, value)
      .changes > 0
  );
}
