import type { Database } from 'bun:sqlite';

// Federation's rows live in control.db (instance-wide): the instance key, each platform's
// trusted keys, the revocation list and the ecosystem catalog. Platform code reaches them only
// through these functions, with the control handle (`app.control`), never another platform's file.

/** The instance federation key (its private half sealed). */
export interface FederationKeyRow {
  key_id: string;
  public_key: string;
  private_key: string;
  created_at: number;
}

export function findFederationKey(control: Database): FederationKeyRow | null {
  return control
    .query<FederationKeyRow, []>(
      'SELECT key_id, public_key, private_key, created_at FROM federation_key WHERE id = 1',
    )
    .get();
}

/** Stores the key unless one is there already (the first writer wins). */
export function insertFederationKey(control: Database, k: FederationKeyRow): void {
  control
    .query(
      `INSERT INTO federation_key (id, key_id, public_key, private_key, created_at) VALUES (1, ?, ?, ?, ?)
       ON CONFLICT (id) DO NOTHING`,
    )
    .run(k.key_id, k.public_key, k.private_key, k.created_at);
}

export function updateFederationPrivateKey(control: Database, sealed: string): number {
  return control.query('UPDATE federation_key SET private_key = ? WHERE id = 1').run(sealed).changes;
}

export interface TrustedKeyRow {
  platform_id: string;
  key_id: string;
  public_key: string;
  label: string;
  added_by: string;
  added_at: number;
}

export function listTrustedKeys(control: Database, platformId: string): TrustedKeyRow[] {
  return control
    .query<TrustedKeyRow, [string]>(
      'SELECT * FROM federation_trusted_keys WHERE platform_id = ? ORDER BY added_at, key_id',
    )
    .all(platformId);
}

export function findTrustedKey(control: Database, platformId: string, keyId: string): TrustedKeyRow | null {
  return control
    .query<TrustedKeyRow, [string, string]>(
      'SELECT * FROM federation_trusted_keys WHERE platform_id = ? AND key_id = ?',
    )
    .get(platformId, keyId);
}

/** Whether any platform of this instance trusts `keyId` with this very public key. */
export function keyTrustedAnywhere(control: Database, keyId: string, publicKey: string): boolean {
  return (
    control
      .query<{ n: number }, [string, string]>(
        'SELECT count(*) AS n FROM federation_trusted_keys WHERE key_id = ? AND public_key = ?',
      )
      .get(keyId, publicKey)!.n > 0
  );
}

export function upsertTrustedKey(control: Database, k: TrustedKeyRow): void {
  control
    .query(
      `INSERT INTO federation_trusted_keys (platform_id, key_id, public_key, label, added_by, added_at)
       VALUES (?, ?, ?, ?, ?, ?)
       ON CONFLICT (platform_id, key_id) DO UPDATE SET label = excluded.label`,
    )
    .run(k.platform_id, k.key_id, k.public_key, k.label, k.added_by, k.added_at);
}

export function deleteTrustedKey(control: Database, platformId: string, keyId: string): boolean {
  return (
    control
      .query('DELETE FROM federation_trusted_keys WHERE platform_id = ? AND key_id = ?')
      .run(platformId, keyId).changes > 0
  );
}

export interface RevocationRow {
  key_id: string;
  /** The source platform's id (at the instance of `key_id`). */
  platform_id: string;
  hash: string;
  reason: string;
  revoked_at: number;
  origin: 'local' | 'peer';
  recorded_at: number;
}

export function findRevocation(
  control: Database,
  keyId: string,
  platformId: string,
  hash: string,
): RevocationRow | null {
  return control
    .query<RevocationRow, [string, string, string]>(
      'SELECT * FROM federation_revocations WHERE key_id = ? AND platform_id = ? AND hash = ?',
    )
    .get(keyId, platformId, hash);
}

/** Records a revocation; one already there stays as it was. Whether a row was added. */
export function insertRevocation(control: Database, r: RevocationRow): boolean {
  return (
    control
      .query(
        `INSERT INTO federation_revocations (key_id, platform_id, hash, reason, revoked_at, origin, recorded_at)
         VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (key_id, platform_id, hash) DO NOTHING`,
      )
      .run(r.key_id, r.platform_id, r.hash, r.reason, r.revoked_at, r.origin, r.recorded_at).changes > 0
  );
}

/** What changes whenever a revocation under `keyId` is recorded (for the signed list's cache). */
export function revocationStamp(control: Database, keyId: string): string {
  const r = control
    .query<{ n: number; last: number | null }, [string]>(
      'SELECT count(*) AS n, max(recorded_at) AS last FROM federation_revocations WHERE key_id = ?',
    )
    .get(keyId)!;
  return `${r.n}:${r.last ?? 0}`;
}

/** The revocations signed under `keyId`, newest first, at most `limit`. */
export function listRevocations(control: Database, keyId: string, limit: number): RevocationRow[] {
  return control
    .query<RevocationRow, [string, number]>(
      `SELECT * FROM federation_revocations WHERE key_id = ?
       ORDER BY revoked_at DESC, platform_id, hash LIMIT ?`,
    )
    .all(keyId, limit);
}

export interface CatalogRow {
  id: string;
  platform_id: string;
  agent_id: string;
  version: number;
  hash: string;
  package: string;
  title: string;
  summary: string;
  platform_slug: string;
  platform_name: string;
  creator_name: string;
  revenue_share_bps: number;
  shared_by: string;
  shared_at: number;
  imports: number;
}

export function findCatalogEntry(control: Database, id: string): CatalogRow | null {
  return control.query<CatalogRow, [string]>('SELECT * FROM federation_catalog WHERE id = ?').get(id);
}

export function catalogEntryOf(control: Database, platformId: string, agentId: string): CatalogRow | null {
  return control
    .query<CatalogRow, [string, string]>(
      'SELECT * FROM federation_catalog WHERE platform_id = ? AND agent_id = ?',
    )
    .get(platformId, agentId);
}

/** Shares an agent (or shares it again, with another version): one entry per platform and agent. */
export function upsertCatalogEntry(control: Database, e: Omit<CatalogRow, 'imports'>): void {
  control
    .query(
      `INSERT INTO federation_catalog (id, platform_id, agent_id, version, hash, package, title, summary,
         platform_slug, platform_name, creator_name, revenue_share_bps, shared_by, shared_at)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT (platform_id, agent_id) DO UPDATE SET version = excluded.version, hash = excluded.hash,
         package = excluded.package, title = excluded.title, summary = excluded.summary,
         platform_slug = excluded.platform_slug, platform_name = excluded.platform_name,
         creator_name = excluded.creator_name, revenue_share_bps = excluded.revenue_share_bps,
         shared_by = excluded.shared_by, shared_at = excluded.shared_at`,
    )
    .run(
      e.id,
      e.platform_id,
      e.agent_id,
      e.version,
      e.hash,
      e.package,
      e.title,
      e.summary,
      e.platform_slug,
      e.platform_name,
      e.creator_name,
      e.revenue_share_bps,
      e.shared_by,
      e.shared_at,
    );
}

export function deleteCatalogEntry(control: Database, id: string): boolean {
  return control.query('DELETE FROM federation_catalog WHERE id = ?').run(id).changes > 0;
}

export function countCatalogImport(control: Database, id: string): void {
  control.query('UPDATE federation_catalog SET imports = imports + 1 WHERE id = ?').run(id);
}

/** An entry whose platform is active (a suspended or archived platform shares nothing). */
export function findLiveCatalogEntry(control: Database, id: string): CatalogRow | null {
  return control
    .query<CatalogRow, [string]>(
      `SELECT c.* FROM federation_catalog c JOIN platforms p ON p.id = c.platform_id AND p.status = 'active'
       WHERE c.id = ?`,
    )
    .get(id);
}

/**
 * The catalog, newest first: entries of active platforms, without those whose version is
 * revoked under `keyId`.
 */
export function listCatalog(control: Database, keyId: string, limit: number): CatalogRow[] {
  return control
    .query<CatalogRow, [string, number]>(
      `SELECT c.* FROM federation_catalog c JOIN platforms p ON p.id = c.platform_id AND p.status = 'active'
       WHERE NOT EXISTS (SELECT 1 FROM federation_revocations r
                         WHERE r.key_id = ? AND r.platform_id = c.platform_id AND r.hash = c.hash)
       ORDER BY c.shared_at DESC, c.id DESC LIMIT ?`,
    )
    .all(keyId, limit);
}
