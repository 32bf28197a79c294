import type { Database } from 'bun:sqlite';

/** The IdP an identity belongs to and its subject there. */
export interface SsoIdentityKey {
  kind: string;
  issuer: string;
  subject: string;
}

/** A stored link of an SSO identity to a user (table `sso_identities`). */
export interface SsoIdentityRow {
  kind: 'oidc' | 'saml';
  issuer: string;
  subject: string;
  created_at: number;
  via: string;
}

/** The user an identity is linked to, or null. */
export function linkedUserId(db: Database, k: SsoIdentityKey): string | null {
  return (
    db
      .query<{ user_id: string }, [string, string, string]>(
        'SELECT user_id FROM sso_identities WHERE kind = ? AND issuer = ? AND subject = ?',
      )
      .get(k.kind, k.issuer, k.subject)?.user_id ?? null
  );
}

/** Links an identity to a user (a link that exists already is left as it is). */
export function insertSsoIdentity(
  db: Database,
  k: SsoIdentityKey,
  userId: string,
  now: number,
  via: string,
): void {
  db.query(
    'INSERT OR IGNORE INTO sso_identities (kind, issuer, subject, user_id, created_at, via) VALUES (?, ?, ?, ?, ?, ?)',
  ).run(k.kind, k.issuer, k.subject, userId, now, via);
}

/** A user's links, oldest first. */
export function userSsoIdentities(db: Database, userId: string): SsoIdentityRow[] {
  return db
    .query<SsoIdentityRow, [string]>(
      'SELECT kind, issuer, subject, created_at, via FROM sso_identities WHERE user_id = ? ORDER BY created_at, kind, issuer, subject',
    )
    .all(userId);
}

/** Removes one link of a user; false when there was none. */
export function deleteSsoIdentity(db: Database, userId: string, k: SsoIdentityKey): boolean {
  return (
    db
      .query('DELETE FROM sso_identities WHERE user_id = ? AND kind = ? AND issuer = ? AND subject = ?')
      .run(userId, k.kind, k.issuer, k.subject).changes > 0
  );
}

/** Removes the links a user made through the link routes (via 'signed_in'); which went. */
export function deleteSignedInLinks(db: Database, userId: string): SsoIdentityKey[] {
  return db
    .query<SsoIdentityKey, [string]>(
      "DELETE FROM sso_identities WHERE user_id = ? AND via = 'signed_in' RETURNING kind, issuer, subject",
    )
    .all(userId);
}

/** How many identities of one IdP a user has linked. */
export function userLinksTo(db: Database, userId: string, kind: string, issuer: string): number {
  return db
    .query<{ n: number }, [string, string, string]>(
      'SELECT count(*) AS n FROM sso_identities WHERE user_id = ? AND kind = ? AND issuer = ?',
    )
    .get(userId, kind, issuer)!.n;
}
