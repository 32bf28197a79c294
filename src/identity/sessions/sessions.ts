import type { Database } from 'bun:sqlite';
import { clearCookie, readCookie, setCookie } from '../../shared/cookies.ts';
import { randomToken, sha256Hex } from '../../shared/crypto.ts';
import { createUserRepository, type UserRow } from '../accounts/users.repository.ts';
import type { IdentitySettings } from '../settings.ts';
import {
  clearSessionMfaPending,
  deleteSession,
  deleteUserSessions,
  insertSession,
  type SessionRow,
  sessionByHash,
  touchSession,
} from './sessions.repository.ts';

export type { SessionRow };

/** The session cookie's name (neutral: white-labeled platforms never say Soulfra). */
export const SESSION_COOKIE = 'sf_session';

/**
 * Starts a session: a fresh random token (so the id always rotates at sign-in), of which only
 * the SHA-256 is stored, and a CSRF token for cookie-authenticated writes.
 */
export function createSession(
  db: Database,
  now: number,
  settings: IdentitySettings,
  s: {
    userId: string;
    via: 'password' | 'oidc' | 'saml';
    mfaPending: boolean;
    ip: string | null;
    userAgent: string | null;
  },
): { token: string; csrfToken: string; expiresAt: number } {
  const token = randomToken(32);
  const csrfToken = randomToken(24);
  const expiresAt = now + settings.session_absolute_hours * 3_600_000;
  insertSession(db, {
    id_hash: sha256Hex(token),
    user_id: s.userId,
    csrf_token: csrfToken,
    mfa_pending: s.mfaPending ? 1 : 0,
    via: s.via,
    created_at: now,
    last_seen_at: now,
    expires_at: expiresAt,
    ip: s.ip,
    user_agent: s.userAgent?.slice(0, 300) ?? null,
  });
  return { token, csrfToken, expiresAt };
}

/**
 * The live session behind a cookie token and its user, or null when unknown, idle too long,
 * past its absolute end, or its user is disabled. Expired sessions are deleted on sight.
 * Last-seen is written at most once a minute, so reads stay reads.
 */
export function resolveSession(
  db: Database,
  now: number,
  settings: IdentitySettings,
  token: string,
): { session: SessionRow; user: UserRow } | null {
  if (token.length < 20 || token.length > 100) return null;
  const idHash = sha256Hex(token);
  const session = sessionByHash(db, idHash);
  if (!session) return null;
  if (now >= session.expires_at || now - session.last_seen_at > settings.session_idle_minutes * 60_000) {
    deleteSession(db, idHash);
    return null;
  }
  const user = createUserRepository({ db }).byId(session.user_id);
  if (user?.status !== 'active') return null;
  if (now - session.last_seen_at > 60_000) {
    touchSession(db, idHash, now);
  }
  return { session, user };
}

/** Ends one session. */
export function destroySession(db: Database, token: string): void {
  deleteSession(db, sha256Hex(token));
}

/** Ends every session of a user ("sign out everywhere", deactivation, password change). */
export function destroyUserSessions(db: Database, userId: string): number {
  return deleteUserSessions(db, userId);
}

/** Marks a session's second factor as done. */
export function completeMfa(db: Database, sessionIdHash: string): void {
  clearSessionMfaPending(db, sessionIdHash);
}

/** The Set-Cookie value for a session: HttpOnly, SameSite=Lax, Secure under TLS. */
export function sessionCookie(token: string, opts: { secure: boolean; maxAgeSec: number }): string {
  return setCookie(SESSION_COOKIE, token, {
    path: '/',
    sameSite: 'Lax',
    maxAgeSec: opts.maxAgeSec,
    secure: opts.secure,
  });
}

/** The Set-Cookie value that removes the session cookie. */
export function clearedSessionCookie(secure: boolean): string {
  return clearCookie(SESSION_COOKIE, { path: '/', sameSite: 'Lax', secure });
}

/** A cookie's value from a Cookie header (shared/cookies.ts). */
export { readCookie };
