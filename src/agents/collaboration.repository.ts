import type { Database } from 'bun:sqlite';

/** An agent's member role: editors change its draft and publish; viewers read and chat. */
export type MemberRole = 'editor' | 'viewer';

/** A member of an agent, with who they are. */
export interface MemberRow {
  agent_id: string;
  user_id: string;
  role: MemberRole;
  added_by: string;
  created_at: number;
  updated_at: number;
  email: string;
  name: string;
}

/** A participant of a shared conversation, with who they are. */
export interface ParticipantRow {
  conversation_id: string;
  user_id: string;
  added_by: string;
  created_at: number;
  email: string;
  name: string;
}

/** The member role of `userId` on an agent, or null. */
export function memberRole(db: Database, agentId: string, userId: string): MemberRole | null {
  return (
    db
      .query<{ role: MemberRole }, [string, string]>(
        'SELECT role FROM agent_members WHERE agent_id = ? AND user_id = ?',
      )
      .get(agentId, userId)?.role ?? null
  );
}

/** An agent's members, oldest first. */
export function listMembers(db: Database, agentId: string): MemberRow[] {
  return db
    .query<MemberRow, [string]>(
      `SELECT m.*, u.email, u.name FROM agent_members m JOIN users u ON u.id = m.user_id
       WHERE m.agent_id = ? ORDER BY m.created_at, m.user_id`,
    )
    .all(agentId);
}

export function findMember(db: Database, agentId: string, userId: string): MemberRow | null {
  return db
    .query<MemberRow, [string, string]>(
      `SELECT m.*, u.email, u.name FROM agent_members m JOIN users u ON u.id = m.user_id
       WHERE m.agent_id = ? AND m.user_id = ?`,
    )
    .get(agentId, userId);
}

/** Adds a member or changes their role (one row per agent and user). */
export function upsertMember(
  db: Database,
  m: { agent_id: string; user_id: string; role: MemberRole; added_by: string; now: number },
): void {
  db.query(
    `INSERT INTO agent_members (agent_id, user_id, role, added_by, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)
     ON CONFLICT (agent_id, user_id) DO UPDATE SET role = excluded.role, updated_at = excluded.updated_at`,
  ).run(m.agent_id, m.user_id, m.role, m.added_by, m.now, m.now);
}

export function deleteMember(db: Database, agentId: string, userId: string): boolean {
  return (
    db.query('DELETE FROM agent_members WHERE agent_id = ? AND user_id = ?').run(agentId, userId).changes > 0
  );
}

export function isParticipant(db: Database, conversationId: string, userId: string): boolean {
  return (
    db
      .query<{ n: number }, [string, string]>(
        'SELECT count(*) AS n FROM conversation_participants WHERE conversation_id = ? AND user_id = ?',
      )
      .get(conversationId, userId)!.n > 0
  );
}

/** A conversation's participants, oldest first. */
export function listParticipants(db: Database, conversationId: string): ParticipantRow[] {
  return db
    .query<ParticipantRow, [string]>(
      `SELECT p.*, u.email, u.name FROM conversation_participants p JOIN users u ON u.id = p.user_id
       WHERE p.conversation_id = ? ORDER BY p.created_at, p.user_id`,
    )
    .all(conversationId);
}

/** Adds a participant (false when they were one already). */
export function insertParticipant(
  db: Database,
  p: { conversation_id: string; user_id: string; added_by: string; now: number },
): boolean {
  return (
    db
      .query(
        `INSERT INTO conversation_participants (conversation_id, user_id, added_by, created_at) VALUES (?, ?, ?, ?)
         ON CONFLICT DO NOTHING`,
      )
      .run(p.conversation_id, p.user_id, p.added_by, p.now).changes > 0
  );
}

export function deleteParticipant(db: Database, conversationId: string, userId: string): boolean {
  return (
    db
      .query('DELETE FROM conversation_participants WHERE conversation_id = ? AND user_id = ?')
      .run(conversationId, userId).changes > 0
  );
}

/** The display names of some users (their name, else their email), by id. */
export function userNames(db: Database, ids: readonly string[]): Map<string, string> {
  const out = new Map<string, string>();
  const unique = [...new Set(ids)];
  if (!unique.length) return out;
  const rows = db
    .query<{ id: string; name: string; email: string }, string[]>(
      `SELECT id, name, email FROM users WHERE id IN (${unique.map(() => '?').join(', ')})`,
    )
    .all(...unique);
  for (const r of rows) out.set(r.id, r.name.trim() || r.email);
  return out;
}
