import type { Database } from 'bun:sqlite';
import { stateKey, stateOf } from '../../app/index.ts';

/**
 * API keys as last read from a platform's database, by prefix, so that a request with a key
 * costs no SQLite read. Exact, not merely fresh: one process owns the data directory, and every
 * write that changes what a key may do (revoking it, revoking a user's keys, a user's role or
 * status changing, a user deleted) calls `forgetApiKeys` on that database. Entries also expire
 * after `KEY_CACHE_TTL_MS` as a second line of defence. The secret is still hashed and compared
 * on every request; only rows that exist are cached, so unknown prefixes cannot grow it.
 */
export const KEY_CACHE_TTL_MS = 60_000;
const MAX_ENTRIES = 10_000;

/** The caches of one App, per platform handle (the App that opened it: `stateOf(db)`). */
const KEY_CACHES = stateKey('identity.key_cache', () => new WeakMap<Database, Map<string, unknown>>());

/** This database's cache (created on first use; a reopened database starts empty). */
export function keyCacheOf<T>(db: Database): Map<string, T> {
  const caches = stateOf(db).get(KEY_CACHES);
  let m = caches.get(db);
  if (!m) {
    m = new Map();
    caches.set(db, m);
  }
  if (m.size >= MAX_ENTRIES) m.clear();
  return m as Map<string, T>;
}

/** Drops every cached key of this platform's database (call after a write that changes keys or users). */
export function forgetApiKeys(db: Database): void {
  stateOf(db).get(KEY_CACHES).delete(db);
}
