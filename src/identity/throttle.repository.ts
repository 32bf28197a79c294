import type { Database } from 'bun:sqlite';

/** One throttle key's stored state (table `auth_throttle`). */
export interface ThrottleRow {
  count: number;
  window_start: number;
  locked_until: number | null;
}

/** The keys of one kind a statement applies to: one key, or the range [from, to). */
export type ThrottleKeys = { key: string } | { from: string; to: string };

const where = (k: ThrottleKeys): [string, string[]] =>
  'key' in k ? ['key = ?', [k.key]] : ['key >= ? AND key < ?', [k.from, k.to]];

/** A key's stored state, or null. */
export function throttleRow(db: Database, kind: string, key: string): ThrottleRow | null {
  return db
    .query<ThrottleRow, [string, string]>(
      'SELECT count, window_start, locked_until FROM auth_throttle WHERE kind = ? AND key = ?',
    )
    .get(kind, key);
}

/** Writes a key's state, kept until `expires`. */
export function storeThrottle(
  db: Database,
  kind: string,
  key: string,
  r: ThrottleRow,
  expires: number,
): void {
  db.query(
    `INSERT INTO auth_throttle (kind, key, count, window_start, locked_until, expires_at) VALUES (?, ?, ?, ?, ?, ?)
     ON CONFLICT (kind, key) DO UPDATE SET count = excluded.count, window_start = excluded.window_start,
       locked_until = excluded.locked_until, expires_at = excluded.expires_at`,
  ).run(kind, key, r.count, r.window_start, r.locked_until, expires);
}

/** Deletes the rows that expired by `now`. */
export function sweepThrottle(db: Database, now: number): void {
  db.query('DELETE FROM auth_throttle WHERE expires_at <= ?').run(now);
}

/** How many of these keys are locked at `now`. */
export function countLocked(db: Database, kind: string, keys: ThrottleKeys, now: number): number {
  const [w, args] = where(keys);
  return db
    .query<{ n: number }, (string | number)[]>(
      `SELECT count(*) AS n FROM auth_throttle WHERE kind = ? AND ${w} AND locked_until > ?`,
    )
    .get(kind, ...args, now)!.n;
}

/** Deletes these keys' counts and locks. */
export function deleteThrottle(db: Database, kind: string, keys: ThrottleKeys): void {
  const [w, args] = where(keys);
  db.query(`DELETE FROM auth_throttle WHERE kind = ? AND ${w}`).run(kind, ...args);
}
