import { Database } from 'bun:sqlite';
import { chmodSync } from 'node:fs';

/** How a database is used; it decides the durability and cache pragmas. */
export type DbRole = 'control' | 'tenant';

/**
 * The pragmas, in one place (PocketBase style), written down deliberately:
 * - busy_timeout first, so that every later statement (even `journal_mode`) waits for a lock
 *   instead of failing with SQLITE_BUSY.
 * - journal_mode=WAL: readers never block the writer; the -wal file is checkpointed and removed
 *   when the last handle closes, so an idle platform is one file on disk.
 * - synchronous: FULL for the control plane (rare writes; the registry of every platform must
 *   survive a power cut), NORMAL for platforms (in WAL mode NORMAL never corrupts; a power cut
 *   may roll back the last commits since the last fsync, which Litestream replication covers).
 * - foreign_keys=ON: SQLite has them off by default.
 * - cache_size: 2 MiB for control, 512 KiB for each platform, so 256 open platforms stay small.
 * - page_size 4096 (set before the first table): matches the OS page; an idle platform with the
 *   issue-2 schema is ~10 pages.
 * - secure_delete=ON: deleted and overwritten content is zeroed, so a secret removed or
 *   re-sealed (TOTP seeds, SSO secrets, mail bodies, retired data keys' ciphertext) leaves no
 *   old copy in free pages or in the WAL's page images. Both roles hold secrets. Its cost is
 *   writing zeros over freed cells (measured in docs/operations.md: within noise for the test suite).
 * NB! page_size only applies to a new file (or after VACUUM); set it before anything else.
 */
export function applyPragmas(db: Database, role: DbRole): void {
  db.exec('PRAGMA busy_timeout = 5000');
  db.exec('PRAGMA page_size = 4096');
  db.exec('PRAGMA journal_mode = WAL');
  db.exec(`PRAGMA synchronous = ${role === 'control' ? 'FULL' : 'NORMAL'}`);
  db.exec('PRAGMA foreign_keys = ON');
  db.exec('PRAGMA secure_delete = ON');
  db.exec(`PRAGMA cache_size = ${role === 'control' ? -2048 : -512}`);
  db.exec('PRAGMA temp_store = MEMORY');
}

/** Opens (creating if asked) a SQLite file with the house pragmas; the file is owner-only. */
export function openDatabase(path: string, role: DbRole, opts: { create?: boolean } = {}): Database {
  const db = new Database(path, { create: opts.create ?? true, readwrite: true, strict: true });
  try {
    applyPragmas(db, role);
    if (opts.create !== false && path !== ':memory:') chmodSync(path, 0o600);
  } catch (e) {
    db.close();
    throw e;
  }
  return db;
}

/**
 * Runs `fn` in a `BEGIN IMMEDIATE` transaction (the write lock is taken up front, so two
 * writers never deadlock upgrading a read lock); rolls back on any throw.
 */
export function tx<T>(db: Database, fn: () => T): T {
  return db.transaction(fn).immediate();
}
