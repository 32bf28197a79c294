import type { Database } from 'bun:sqlite';

/** The stored identity settings (JSON text), or null when never set. */
export function storedIdentitySettings(db: Database): string | null {
  return (
    db.query<{ value: string }, []>("SELECT value FROM identity_settings WHERE key = 'identity'").get()
      ?.value ?? null
  );
}

/** Stores the identity settings (JSON text). */
export function storeIdentitySettings(db: Database, json: string): void {
  db.query(
    "INSERT INTO identity_settings (key, value) VALUES ('identity', ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
  ).run(json);
}
