import type { Database } from 'bun:sqlite';

/** What a one-time email link is for. */
export type EmailTokenPurpose = 'verify_email' | 'reset_password';

/** A stored one-time email token (only its SHA-256 is kept). */
export interface EmailTokenRow {
  user_id: string;
  expires_at: number;
  used_at: number | null;
  purpose: string;
}

/** Stores a token's hash for a user. */
export function insertEmailToken(
  db: Database,
  t: { tokenHash: string; userId: string; purpose: EmailTokenPurpose; now: number; expiresAt: number },
): void {
  db.query(
    'INSERT INTO email_tokens (token_hash, user_id, purpose, created_at, expires_at) VALUES (?, ?, ?, ?, ?)',
  ).run(t.tokenHash, t.userId, t.purpose, t.now, t.expiresAt);
}

/** The token with this hash, or null. */
export function emailTokenByHash(db: Database, tokenHash: string): EmailTokenRow | null {
  return db
    .query<EmailTokenRow, [string]>(
      'SELECT user_id, expires_at, used_at, purpose FROM email_tokens WHERE token_hash = ?',
    )
    .get(tokenHash);
}

/** Uses up the token with this hash. */
export function spendEmailToken(db: Database, tokenHash: string, now: number): void {
  db.query('UPDATE email_tokens SET used_at = ? WHERE token_hash = ?').run(now, tokenHash);
}

/** Uses up a user's unused tokens (of one purpose, or all); how many. */
export function spendUserEmailTokens(
  db: Database,
  userId: string,
  now: number,
  purpose?: EmailTokenPurpose,
): number {
  return purpose
    ? db
        .query('UPDATE email_tokens SET used_at = ? WHERE user_id = ? AND purpose = ? AND used_at IS NULL')
        .run(now, userId, purpose).changes
    : db.query('UPDATE email_tokens SET used_at = ? WHERE user_id = ? AND used_at IS NULL').run(now, userId)
        .changes;
}
