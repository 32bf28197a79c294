import type { Database } from 'bun:sqlite';

/** A conversation row. */
export interface ConversationRow {
  id: string;
  user_id: string;
  title: string;
  model: string;
  created_at: number;
  updated_at: number;
  message_count: number;
  /** The agent it chats with (null: the model itself), and the version (null: the draft). */
  agent_id: string | null;
  agent_version: number | null;
  /** How many participants share it (features.collaborative_agents). */
  participant_count: number;
}

/** A message row. */
export interface MessageRow {
  id: string;
  conversation_id: string;
  seq: number;
  role: 'user' | 'assistant';
  content: string;
  model: string | null;
  status: 'complete' | 'stopped' | 'error';
  error: string | null;
  prompt_tokens: number | null;
  completion_tokens: number | null;
  created_at: number;
  /** The sources the answer was given (JSON: [{n, chunk, document, seq, text}]), or null. */
  citations?: string | null;
  /** The tool calls the turn made (JSON: [{call_id, tool, arguments, ok, status, outcome}]), or null. */
  tool_steps?: string | null;
  /** Who wrote a user message (null: the conversation's owner, on rows older than authors). */
  author_id?: string | null;
}

const SELECT_CONVERSATION = `SELECT c.id, c.user_id, c.title, c.model, c.created_at, c.updated_at, c.agent_id, c.agent_version,
  (SELECT count(*) FROM conversation_messages m WHERE m.conversation_id = c.id) AS message_count,
  (SELECT count(*) FROM conversation_participants p WHERE p.conversation_id = c.id) AS participant_count
  FROM conversations c`;

export function insertConversation(
  db: Database,
  c: {
    id: string;
    userId: string;
    title: string;
    model: string;
    now: number;
    agentId?: string | null;
    agentVersion?: number | null;
  },
): void {
  db.query(
    `INSERT INTO conversations (id, user_id, title, model, created_at, updated_at, agent_id, agent_version)
     VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
  ).run(c.id, c.userId, c.title, c.model, c.now, c.now, c.agentId ?? null, c.agentVersion ?? null);
}

/** One conversation of one user (another user's is not found). */
export function findConversation(db: Database, id: string, userId: string): ConversationRow | null {
  return db
    .query<ConversationRow, [string, string]>(`${SELECT_CONVERSATION} WHERE c.id = ? AND c.user_id = ?`)
    .get(id, userId);
}

/** One conversation, whoever owns it (the service decides who may see it). */
export function findConversationById(db: Database, id: string): ConversationRow | null {
  return db.query<ConversationRow, [string]>(`${SELECT_CONVERSATION} WHERE c.id = ?`).get(id);
}

/**
 * A user's conversations (with `shared`, also those they participate in), most recently
 * updated first, before a cursor (`updated_at`, `id`).
 */
export function listConversations(
  db: Database,
  userId: string,
  before: { updatedAt: number; id: string } | null,
  limit: number,
  shared = false,
): ConversationRow[] {
  const whose = shared
    ? '(c.user_id = ?1 OR c.id IN (SELECT conversation_id FROM conversation_participants WHERE user_id = ?1))'
    : 'c.user_id = ?1';
  if (!before)
    return db
      .query<ConversationRow, [string, number]>(
        `${SELECT_CONVERSATION} WHERE ${whose} ORDER BY c.updated_at DESC, c.id DESC LIMIT ?2`,
      )
      .all(userId, limit);
  return db
    .query<ConversationRow, [string, number, string, number]>(
      `${SELECT_CONVERSATION} WHERE ${whose} AND (c.updated_at < ?2 OR (c.updated_at = ?2 AND c.id < ?3))
       ORDER BY c.updated_at DESC, c.id DESC LIMIT ?4`,
    )
    .all(userId, before.updatedAt, before.id, limit);
}

export function updateConversation(
  db: Database,
  id: string,
  userId: string,
  set: { title?: string; model?: string; now: number },
): boolean {
  const r = db
    .query(
      `UPDATE conversations SET title = coalesce(?, title), model = coalesce(?, model), updated_at = ?
       WHERE id = ? AND user_id = ?`,
    )
    .run(set.title ?? null, set.model ?? null, set.now, id, userId);
  return r.changes > 0;
}

export function deleteConversation(db: Database, id: string, userId: string): boolean {
  return db.query('DELETE FROM conversations WHERE id = ? AND user_id = ?').run(id, userId).changes > 0;
}

export function listMessages(db: Database, conversationId: string): MessageRow[] {
  return db
    .query<MessageRow, [string]>('SELECT * FROM conversation_messages WHERE conversation_id = ? ORDER BY seq')
    .all(conversationId);
}

/** The last `limit` messages of a conversation, oldest first. */
export function recentMessages(db: Database, conversationId: string, limit: number): MessageRow[] {
  return db
    .query<MessageRow, [string, number]>(
      'SELECT * FROM (SELECT * FROM conversation_messages WHERE conversation_id = ? ORDER BY seq DESC LIMIT ?) ORDER BY seq',
    )
    .all(conversationId, limit);
}

/** Appends a message at the conversation's next position and touches the conversation. */
export function appendMessage(db: Database, m: Omit<MessageRow, 'seq'>): MessageRow {
  const seq =
    (db
      .query<{ n: number | null }, [string]>(
        'SELECT max(seq) AS n FROM conversation_messages WHERE conversation_id = ?',
      )
      .get(m.conversation_id)?.n ?? 0) + 1;
  db.query(
    `INSERT INTO conversation_messages (id, conversation_id, seq, role, content, model, status, error,
       prompt_tokens, completion_tokens, created_at, citations, author_id, tool_steps)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
  ).run(
    m.id,
    m.conversation_id,
    seq,
    m.role,
    m.content,
    m.model,
    m.status,
    m.error,
    m.prompt_tokens,
    m.completion_tokens,
    m.created_at,
    m.citations ?? null,
    m.author_id ?? null,
    m.tool_steps ?? null,
  );
  db.query('UPDATE conversations SET updated_at = ? WHERE id = ?').run(m.created_at, m.conversation_id);
  return { ...m, seq };
}
