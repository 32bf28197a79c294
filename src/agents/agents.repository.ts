import type { Database } from 'bun:sqlite';

/** An agent row (its draft spec is JSON text). */
export interface AgentRow {
  id: string;
  slug: string;
  owner_id: string | null;
  visibility: 'private' | 'link' | 'platform';
  draft: string;
  latest_version: number | null;
  created_at: number;
  updated_at: number;
  /** Where a fork came from (JSON: {listing, agent, version, hash, platform}), or null. */
  forked_from?: string | null;
  /** Where an imported agent came from (JSON: see `ImportedFrom` in federation.service.ts), or null. */
  imported_from?: string | null;
  /** The share link's token, sealed (link visibility), and its SHA-256; null: no link. */
  share_token?: string | null;
  share_token_hash?: string | null;
}

/** A published version: immutable (a trigger refuses updates). */
export interface AgentVersionRow {
  agent_id: string;
  version: number;
  hash: string;
  spec: string;
  published_by: string;
  published_at: number;
}

export function insertAgent(db: Database, a: AgentRow): void {
  db.query(
    `INSERT INTO agents (id, slug, owner_id, visibility, draft, latest_version, created_at, updated_at,
       forked_from, imported_from)
     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
  ).run(
    a.id,
    a.slug,
    a.owner_id,
    a.visibility,
    a.draft,
    a.latest_version,
    a.created_at,
    a.updated_at,
    a.forked_from ?? null,
    a.imported_from ?? null,
  );
}

export function findAgent(db: Database, id: string): AgentRow | null {
  return db.query<AgentRow, [string]>('SELECT * FROM agents WHERE id = ?').get(id);
}

export function slugTaken(db: Database, slug: string): boolean {
  return (
    db.query<{ n: number }, [string]>('SELECT count(*) AS n FROM agents WHERE slug = ?').get(slug)!.n > 0
  );
}

/**
 * The agents `userId` may see: their own, every `platform` one, those shared with them (they are
 * a member), and (for admins, `all`) every agent; most recently changed first.
 */
export function listAgents(
  db: Database,
  userId: string | null,
  o: { all: boolean; mine: boolean },
): AgentRow[] {
  if (o.mine)
    return db
      .query<AgentRow, [string | null]>(
        'SELECT * FROM agents WHERE owner_id IS ? ORDER BY updated_at DESC, id DESC',
      )
      .all(userId);
  if (o.all) return db.query<AgentRow, []>('SELECT * FROM agents ORDER BY updated_at DESC, id DESC').all();
  return db
    .query<AgentRow, [string | null, string | null]>(
      `SELECT * FROM agents WHERE owner_id IS ? OR (visibility = 'platform' AND latest_version IS NOT NULL)
         OR id IN (SELECT agent_id FROM agent_members WHERE user_id IS ?)
       ORDER BY updated_at DESC, id DESC`,
    )
    .all(userId, userId);
}

export function updateAgent(
  db: Database,
  id: string,
  u: { draft?: string; visibility?: AgentRow['visibility']; latest_version?: number; now: number },
): void {
  db.query(
    `UPDATE agents SET draft = coalesce(?, draft), visibility = coalesce(?, visibility),
       latest_version = coalesce(?, latest_version), updated_at = ? WHERE id = ?`,
  ).run(u.draft ?? null, u.visibility ?? null, u.latest_version ?? null, u.now, id);
}

export function deleteAgent(db: Database, id: string): boolean {
  return db.query('DELETE FROM agents WHERE id = ?').run(id).changes > 0;
}

export function insertVersion(db: Database, v: AgentVersionRow): void {
  db.query(
    'INSERT INTO agent_versions (agent_id, version, hash, spec, published_by, published_at) VALUES (?, ?, ?, ?, ?, ?)',
  ).run(v.agent_id, v.version, v.hash, v.spec, v.published_by, v.published_at);
}

export function findVersion(db: Database, agentId: string, version: number): AgentVersionRow | null {
  return db
    .query<AgentVersionRow, [string, number]>(
      'SELECT * FROM agent_versions WHERE agent_id = ? AND version = ?',
    )
    .get(agentId, version);
}

export function listVersions(db: Database, agentId: string): AgentVersionRow[] {
  return db
    .query<AgentVersionRow, [string]>('SELECT * FROM agent_versions WHERE agent_id = ? ORDER BY version DESC')
    .all(agentId);
}
