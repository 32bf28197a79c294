import type { Database } from 'bun:sqlite';

/** A session row (`id_hash` is the SHA-256 of the cookie token; the token is never stored). */
export interface SessionRow {
  id_hash: string;
  user_id: string;
  csrf_token: string;
  mfa_pending: number;
  via: string;
  created_at: number;
  last_seen_at: number;
  expires_at: number;
  ip: string | null;
  user_agent: string | null;
}

/** Inserts a session row. */
export function insertSession(db: Database, s: SessionRow): void {
  db.query(
    `INSERT INTO sessions (id_hash, user_id, csrf_token, mfa_pending, via, created_at, last_seen_at, expires_at, ip, user_agent)
     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
  ).run(
    s.id_hash,
    s.user_id,
    s.csrf_token,
    s.mfa_pending,
    s.via,
    s.created_at,
    s.last_seen_at,
    s.expires_at,
    s.ip,
    s.user_agent,
  );
}

/** The session with this token hash, or null. */
export function sessionByHash(db: Database, idHash: string): SessionRow | null {
  return db.query<SessionRow, [string]>('SELECT * FROM sessions WHERE id_hash = ?').get(idHash);
}

/** Deletes the session with this token hash. */
export function deleteSession(db: Database, idHash: string): void {
  db.query('DELETE FROM sessions WHERE id_hash = ?').run(idHash);
}

/** Deletes every session of a user; how many went. */
export function deleteUserSessions(db: Database, userId: string): number {
  return db.query('DELETE FROM sessions WHERE user_id = ?').run(userId).changes;
}

/** Records that the session was seen at `now`. */
export function touchSession(db: Database, idHash: string, now: number): void {
  db.query('UPDATE sessions SET last_seen_at = ? WHERE id_hash = ?').run(now, idHash);
}

/** Marks a session's second factor as done. */
export function clearSessionMfaPending(db: Database, idHash: string): void {
  db.query('UPDATE sessions SET mfa_pending = 0 WHERE id_hash = ?').run(idHash);
}
