import type { Database } from 'bun:sqlite';

/** The kinds of SSO a platform (or the console) may configure. */
export type SsoKind = 'oidc' | 'saml';

/** A stored `sso_providers` row: the config JSON with its secrets sealed. */
export interface SsoProviderRow {
  enabled: number;
  config: string;
  updated_at: number;
}

/** One kind's stored settings, or null. */
export function ssoProviderRow(db: Database, kind: SsoKind): SsoProviderRow | null {
  return db
    .query<SsoProviderRow, [string]>('SELECT enabled, config, updated_at FROM sso_providers WHERE kind = ?')
    .get(kind);
}

/** Every kind's stored config JSON. */
export function ssoProviderConfigs(db: Database): { kind: SsoKind; config: string }[] {
  return db.query<{ kind: SsoKind; config: string }, []>('SELECT kind, config FROM sso_providers').all();
}

/** Inserts or replaces one kind's settings. */
export function upsertSsoProvider(
  db: Database,
  kind: SsoKind,
  enabled: boolean,
  configJson: string,
  now: number,
): void {
  db.query(
    `INSERT INTO sso_providers (kind, enabled, config, updated_at) VALUES (?, ?, ?, ?)
     ON CONFLICT (kind) DO UPDATE SET enabled = excluded.enabled, config = excluded.config,
     updated_at = excluded.updated_at`,
  ).run(kind, enabled ? 1 : 0, configJson, now);
}

/** Rewrites one kind's config JSON (re-sealing). */
export function updateSsoProviderConfig(db: Database, kind: SsoKind, configJson: string): void {
  db.query('UPDATE sso_providers SET config = ? WHERE kind = ?').run(configJson, kind);
}

/** Deletes one kind's settings; false when there were none. */
export function deleteSsoProvider(db: Database, kind: SsoKind): boolean {
  return db.query('DELETE FROM sso_providers WHERE kind = ?').run(kind).changes > 0;
}

/** Deletes one kind's stored sign-ins in flight (rows of older versions). */
export function deleteSsoRequests(db: Database, kind: SsoKind): void {
  db.query('DELETE FROM sso_requests WHERE kind = ?').run(kind);
}

/** Whether the sign-in with this key hash has been recorded as used. */
export function ssoUsed(db: Database, kind: SsoKind, idHash: string): boolean {
  return (
    db
      .query<{ n: number }, [string, string]>('SELECT 1 AS n FROM sso_used WHERE kind = ? AND id_hash = ?')
      .get(kind, idHash) !== null
  );
}

/** Deletes the used-sign-in records of a kind that expired by `now`. */
export function purgeSsoUsed(db: Database, kind: SsoKind, now: number): void {
  db.query('DELETE FROM sso_used WHERE kind = ? AND expires_at <= ?').run(kind, now);
}

/** Records a used sign-in until `expiresAt`; false when it was recorded already. */
export function insertSsoUsed(db: Database, kind: SsoKind, idHash: string, expiresAt: number): boolean {
  return (
    db
      .query('INSERT OR IGNORE INTO sso_used (kind, id_hash, expires_at) VALUES (?, ?, ?)')
      .run(kind, idHash, expiresAt).changes > 0
  );
}

/** Marks a used sign-in's replay as audited; true only the first time. */
export function markSsoReplayAudited(db: Database, kind: SsoKind, idHash: string): boolean {
  return (
    db
      .query(
        'UPDATE sso_used SET replay_audited = 1 WHERE kind = ? AND id_hash = ? AND replay_audited IS NULL',
      )
      .run(kind, idHash).changes > 0
  );
}

/** How many owners have an identity of this kind linked. */
export function ownersLinkedThrough(db: Database, kind: SsoKind): number {
  return db
    .query<{ n: number }, [string]>(
      "SELECT count(*) AS n FROM sso_identities i JOIN users u ON u.id = i.user_id WHERE i.kind = ? AND u.role = 'owner'",
    )
    .get(kind)!.n;
}
