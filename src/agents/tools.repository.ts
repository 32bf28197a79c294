import type { Database } from 'bun:sqlite';

/** The platform's tool host allowlist, in order. */
export function toolHosts(db: Database): string[] {
  return db
    .query<{ pattern: string }, []>('SELECT pattern FROM agent_tool_hosts ORDER BY pattern')
    .all()
    .map((r) => r.pattern);
}

/** Replaces the allowlist. */
export function replaceToolHosts(db: Database, patterns: readonly string[], by: string, now: number): void {
  db.query('DELETE FROM agent_tool_hosts').run();
  const ins = db.query('INSERT INTO agent_tool_hosts (pattern, added_by, added_at) VALUES (?, ?, ?)');
  for (const p of patterns) ins.run(p, by, now);
}

/** A tool's stored secret: the header it goes in and its sealed value. */
export interface ToolSecretRow {
  agent_id: string;
  tool: string;
  header: string;
  value: string;
  updated_at: number;
}

export function toolSecret(db: Database, agentId: string, tool: string): ToolSecretRow | null {
  return db
    .query<ToolSecretRow, [string, string]>(
      'SELECT * FROM agent_tool_secrets WHERE agent_id = ? AND tool = ?',
    )
    .get(agentId, tool);
}

/** The tools of an agent that have a secret, and the header each goes in (never the value). */
export function toolSecretHeaders(db: Database, agentId: string): { tool: string; header: string }[] {
  return db
    .query<{ tool: string; header: string }, [string]>(
      'SELECT tool, header FROM agent_tool_secrets WHERE agent_id = ? ORDER BY tool',
    )
    .all(agentId);
}

export function upsertToolSecret(db: Database, r: ToolSecretRow): void {
  db.query(
    `INSERT INTO agent_tool_secrets (agent_id, tool, header, value, updated_at) VALUES (?, ?, ?, ?, ?)
     ON CONFLICT (agent_id, tool) DO UPDATE SET header = excluded.header, value = excluded.value,
       updated_at = excluded.updated_at`,
  ).run(r.agent_id, r.tool, r.header, r.value, r.updated_at);
}

export function deleteToolSecret(db: Database, agentId: string, tool: string): boolean {
  return (
    db.query('DELETE FROM agent_tool_secrets WHERE agent_id = ? AND tool = ?').run(agentId, tool).changes > 0
  );
}

/** Every stored secret (for re-sealing). */
export function allToolSecrets(db: Database): ToolSecretRow[] {
  return db.query<ToolSecretRow, []>('SELECT * FROM agent_tool_secrets').all();
}

export function setToolSecretValue(db: Database, agentId: string, tool: string, value: string): void {
  db.query('UPDATE agent_tool_secrets SET value = ? WHERE agent_id = ? AND tool = ?').run(
    value,
    agentId,
    tool,
  );
}

/** A tool call of a chat turn that waits for the user (or did). */
export interface ToolCallRow {
  id: string;
  conversation_id: string;
  user_id: string;
  agent_id: string | null;
  tool: string;
  call_id: string;
  arguments: string;
  status: 'pending' | 'approved' | 'declined' | 'expired';
  turn: string;
  created_at: number;
  decided_at: number | null;
}

export function insertToolCall(db: Database, r: ToolCallRow): void {
  db.query(
    `INSERT INTO agent_tool_calls (id, conversation_id, user_id, agent_id, tool, call_id, arguments, status,
       turn, created_at, decided_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
  ).run(
    r.id,
    r.conversation_id,
    r.user_id,
    r.agent_id,
    r.tool,
    r.call_id,
    r.arguments,
    r.status,
    r.turn,
    r.created_at,
    r.decided_at,
  );
}

/** A call of one of `userId`'s conversations. */
export function findToolCall(
  db: Database,
  id: string,
  conversationId: string,
  userId: string,
): ToolCallRow | null {
  return db
    .query<ToolCallRow, [string, string, string]>(
      'SELECT * FROM agent_tool_calls WHERE id = ? AND conversation_id = ? AND user_id = ?',
    )
    .get(id, conversationId, userId);
}

/** The calls of a conversation still waiting for the user. */
export function pendingToolCalls(db: Database, conversationId: string): ToolCallRow[] {
  return db
    .query<ToolCallRow, [string]>(
      "SELECT * FROM agent_tool_calls WHERE conversation_id = ? AND status = 'pending' ORDER BY created_at, id",
    )
    .all(conversationId);
}

/**
 * Decides a pending call: true when this was the decision (it was pending), false when it had
 * been decided already (two answers race: one wins).
 */
export function decideToolCall(
  db: Database,
  id: string,
  status: 'approved' | 'declined' | 'expired',
  now: number,
): boolean {
  return (
    db
      .query(
        "UPDATE agent_tool_calls SET status = ?, decided_at = ?, turn = '{}' WHERE id = ? AND status = 'pending'",
      )
      .run(status, now, id).changes > 0
  );
}
