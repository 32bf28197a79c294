import type { Database } from 'bun:sqlite';
import type { PlatformRole } from './users.repository.ts';

/** An invitation row (table `invitations`, tenant migration 0008). */
export interface InvitationRow {
  id: string;
  email: string;
  role: PlatformRole;
  user_id: string | null;
  token_hash: string;
  invited_by: string;
  created_at: number;
  expires_at: number;
  sent_at: number;
  sends: number;
  accepted_at: number | null;
  revoked_at: number | null;
}

/** An invitation with what its placeholder account says about it (claimed by an SSO sign-in). */
export interface InvitationWithUser extends InvitationRow {
  /** The placeholder is still unclaimed: no password and never signed in. */
  user_open: number;
}

const WITH_USER = `SELECT i.*, CASE WHEN u.id IS NOT NULL AND u.provisioned_via = 'invite' AND u.password_hash IS NULL
  THEN 1 ELSE 0 END AS user_open FROM invitations i LEFT JOIN users u ON u.id = i.user_id`;

/** SQL of sign-up, invitations and recovery links over one platform's database. */
export function createOnboardingRepository({ db }: { db: Database }) {
  return {
    insertInvitation(r: InvitationRow): void {
      db.query(
        `INSERT INTO invitations (id, email, role, user_id, token_hash, invited_by, created_at, expires_at, sent_at,
           sends, accepted_at, revoked_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      ).run(
        r.id,
        r.email,
        r.role,
        r.user_id,
        r.token_hash,
        r.invited_by,
        r.created_at,
        r.expires_at,
        r.sent_at,
        r.sends,
        r.accepted_at,
        r.revoked_at,
      );
    },
    invitation(id: string): InvitationWithUser | null {
      return db.query<InvitationWithUser, [string]>(`${WITH_USER} WHERE i.id = ?`).get(id);
    },
    invitationByToken(tokenHash: string): InvitationWithUser | null {
      return db.query<InvitationWithUser, [string]>(`${WITH_USER} WHERE i.token_hash = ?`).get(tokenHash);
    },
    invitations(): InvitationWithUser[] {
      return db.query<InvitationWithUser, []>(`${WITH_USER} ORDER BY i.created_at, i.id`).all();
    },
    /** A new link for an invitation (the old token stops working), with a new expiry. */
    resendInvitation(id: string, tokenHash: string, now: number, expiresAt: number): void {
      db.query(
        'UPDATE invitations SET token_hash = ?, sent_at = ?, expires_at = ?, sends = sends + 1 WHERE id = ?',
      ).run(tokenHash, now, expiresAt, id);
    },
    /** Whether the user's placeholder came from an invitation that expired unaccepted. */
    invitationExpiredFor(userId: string, now: number): boolean {
      return (
        db
          .query<{ n: number }, [string, number]>(
            `SELECT count(*) AS n FROM invitations WHERE user_id = ? AND accepted_at IS NULL AND revoked_at IS NULL
               AND expires_at <= ?`,
          )
          .get(userId, now)!.n > 0
      );
    },
    revokeInvitation(id: string, now: number): void {
      db.query('UPDATE invitations SET revoked_at = ? WHERE id = ?').run(now, id);
    },
    acceptInvitation(id: string, now: number): void {
      db.query('UPDATE invitations SET accepted_at = ? WHERE id = ?').run(now, id);
    },
    /** Sign-up accounts whose email is not confirmed yet. */
    pendingSignups(): number {
      return (
        db
          .query<{ n: number }, []>(
            "SELECT count(*) AS n FROM users WHERE provisioned_via = 'signup' AND email_verified_at IS NULL",
          )
          .get()?.n ?? 0
      );
    },
    /** Deletes unconfirmed sign-up accounts made before `before`; answers their ids. */
    purgePendingSignups(before: number): string[] {
      return db
        .query<{ id: string }, [number]>(
          "DELETE FROM users WHERE provisioned_via = 'signup' AND email_verified_at IS NULL AND created_at < ? RETURNING id",
        )
        .all(before)
        .map((r) => r.id);
    },
    /** Stores a one-time email token's hash (the link carries the token). */
    insertEmailToken(
      tokenHash: string,
      userId: string,
      purpose: 'verify_email' | 'reset_password',
      now: number,
      expiresAt: number,
    ): void {
      db.query(
        'INSERT INTO email_tokens (token_hash, user_id, purpose, created_at, expires_at) VALUES (?, ?, ?, ?, ?)',
      ).run(tokenHash, userId, purpose, now, expiresAt);
    },
    /** Ends every session of a user but one (`keepIdHash`); answers how many ended. */
    endOtherSessions(userId: string, keepIdHash: string): number {
      return db.query('DELETE FROM sessions WHERE user_id = ? AND id_hash <> ?').run(userId, keepIdHash)
        .changes;
    },
    /** Removes a user's MFA recovery codes; answers how many. */
    deleteRecoveryCodes(userId: string): number {
      return db.query('DELETE FROM recovery_codes WHERE user_id = ?').run(userId).changes;
    },
  };
}
