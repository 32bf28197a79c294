import {
  type AiDeps,
  type ChatStreamAnswer,
  completeChat,
  listModels,
  platformAiPolicy,
  toOpenAiError,
} from '../ai/index.ts';
import type { PlatformRequestContext } from '../identity/index.ts';
import { AppError, isAppError } from '../shared/errors.ts';
import { newId } from '../shared/ids.ts';
import { agentSpecFor, versionToRun } from './agents.service.ts';
import { isParticipant, userNames } from './collaboration.repository.ts';
import {
  appendMessage,
  type ConversationRow,
  deleteConversation,
  findConversation,
  findConversationById,
  insertConversation,
  listConversations,
  listMessages,
  type MessageRow,
  recentMessages,
  updateConversation,
} from './conversations.repository.ts';
import { searchAgentKnowledge, sourcesMessage } from './knowledge.service.ts';
import { live } from './live.ts';

/**
 * The portal's chat: conversations of one user, kept in the platform's database, and a turn
 * answered by the AI service (policy, safety, budgets, routing, metering and audit exactly as
 * /v1/chat/completions) streamed back as server-sent events while it is written down.
 */

/** How many earlier messages a turn sends to the model, and how many characters at most. */
export const HISTORY_MESSAGES = 40;
export const HISTORY_CHARS = 60_000;
export const DEFAULT_TITLE = 'New chat';

const notFound = () => new AppError('conversation.not_found', 'no such conversation', 404);

/** The user a request acts for: a session user or a key of a user (others have no conversations). */
export function userOf(c: PlatformRequestContext): string {
  const p = c.principal;
  if (p && (p.kind === 'user' || p.kind === 'api_key') && p.userId) return p.userId;
  throw notFound();
}

const iso = (ms: number) => new Date(ms).toISOString();

/** Whether `c` may still use a conversation's agent (its version; the draft: its editors). */
function mayUseAgent(c: PlatformRequestContext, r: ConversationRow): boolean {
  if (!r.agent_id) return false;
  try {
    agentSpecFor(c, r.agent_id, r.agent_version);
    return true;
  } catch {
    return false;
  }
}

/**
 * A conversation `c` may read and send turns in: their own, or (features.collaborative_agents)
 * one shared with them while they may still use its agent; else 404.
 */
export function conversationFor(
  c: PlatformRequestContext,
  id: string,
): { row: ConversationRow; owner: boolean } {
  const userId = userOf(c);
  const row = findConversationById(c.db, id);
  if (!row) throw notFound();
  if (row.user_id === userId) return { row, owner: true };
  if (
    !c.blueprint().features.collaborative_agents ||
    !isParticipant(c.db, id, userId) ||
    !mayUseAgent(c, row)
  )
    throw notFound();
  return { row, owner: false };
}

/** A conversation `c` owns (its participants: 403 naming `what`). */
export function ownConversation(c: PlatformRequestContext, id: string, what: string): ConversationRow {
  const { row, owner } = conversationFor(c, id);
  if (!owner) throw new AppError('conversation.forbidden', `only the conversation's owner may ${what}`, 403);
  return row;
}

export function conversationView(r: ConversationRow) {
  return {
    id: r.id,
    owner_id: r.user_id,
    shared: r.participant_count > 0,
    title: r.title,
    model: r.model,
    agent: r.agent_id ? { id: r.agent_id, version: r.agent_version } : null,
    created_at: iso(r.created_at),
    updated_at: iso(r.updated_at),
    message_count: r.message_count,
  };
}

/** A message as the API shows it; `names` gives the display names of its authors. */
export function messageView(m: MessageRow, names?: ReadonlyMap<string, string>, ownerId?: string) {
  const authorId = m.role === 'user' ? (m.author_id ?? ownerId ?? null) : null;
  return {
    id: m.id,
    role: m.role,
    ...(authorId ? { author: { id: authorId, name: names?.get(authorId) ?? null } } : {}),
    content: m.content,
    model: m.model,
    status: m.status,
    ...(m.error ? { error: m.error } : {}),
    created_at: iso(m.created_at),
    ...(m.citations ? { citations: JSON.parse(m.citations) as unknown } : {}),
    ...(m.prompt_tokens !== null || m.completion_tokens !== null
      ? { usage: { prompt_tokens: m.prompt_tokens ?? 0, completion_tokens: m.completion_tokens ?? 0 } }
      : {}),
  };
}

/** The model aliases this platform's users may pick, the first being the default. */
export function chatModels(deps: Pick<AiDeps, 'runtime'>, c: PlatformRequestContext): string[] {
  return listModels(deps, platformAiPolicy(c.blueprint()));
}

function checkModel(deps: Pick<AiDeps, 'runtime'>, c: PlatformRequestContext, model: string): string {
  if (!chatModels(deps, c).includes(model))
    throw new AppError(
      'conversation.model_not_allowed',
      `model: '${model}' is not a model this platform allows`,
      400,
      [{ path: '/model', reason: 'is not a model this platform allows' }],
    );
  return model;
}

export function createConversation(
  deps: Pick<AiDeps, 'runtime'>,
  c: PlatformRequestContext,
  body: { title?: string; model?: string; agent_id?: string; draft?: boolean },
) {
  const userId = userOf(c);
  if (body.agent_id) {
    // A conversation with an agent runs the version it started with (or the draft, to test it).
    const { row, version } = versionToRun(c, body.agent_id, body.draft === true);
    const { spec } = agentSpecFor(c, row.id, version);
    const id = newId('cnv');
    const title = body.title?.trim() || spec.name;
    insertConversation(c.db, {
      id,
      userId,
      title,
      model: checkModel(deps, c, spec.model),
      now: c.app.clock.now(),
      agentId: row.id,
      agentVersion: version,
    });
    return conversationView(findConversation(c.db, id, userId)!);
  }
  if (body.draft !== undefined)
    throw new AppError('conversation.invalid', 'draft: only with agent_id', 400, [
      { path: '/draft', reason: 'only with agent_id' },
    ]);
  const models = chatModels(deps, c);
  const model = body.model ? checkModel(deps, c, body.model) : models[0];
  if (!model) throw new AppError('conversation.no_models', 'this platform has no model to chat with', 409);
  const id = newId('cnv');
  const title = body.title?.trim() || DEFAULT_TITLE;
  insertConversation(c.db, { id, userId, title, model, now: c.app.clock.now() });
  return conversationView(findConversation(c.db, id, userId)!);
}

export function conversations(c: PlatformRequestContext, q: { before?: string; limit?: string }) {
  const userId = userOf(c);
  const limit = q.limit ? Number(q.limit) : 50;
  const shared = c.blueprint().features.collaborative_agents;
  let cursor: { updatedAt: number; id: string } | null = null;
  if (q.before) {
    const b = shared ? findConversationById(c.db, q.before) : findConversation(c.db, q.before, userId);
    if (!b || (b.user_id !== userId && !isParticipant(c.db, b.id, userId)))
      throw new AppError('conversation.bad_cursor', 'before: no such conversation', 400, [
        { path: '/before', reason: 'is not one of your conversations' },
      ]);
    cursor = { updatedAt: b.updated_at, id: b.id };
  }
  const rows = listConversations(c.db, userId, cursor, limit + 1, shared);
  const page = rows.slice(0, limit);
  return {
    // Shared ones only while their agent is still the participant's to use.
    conversations: page.filter((r) => r.user_id === userId || mayUseAgent(c, r)).map(conversationView),
    next_before: rows.length > limit ? (page.at(-1)?.id ?? null) : null,
  };
}

export function conversation(c: PlatformRequestContext, id: string) {
  const { row } = conversationFor(c, id);
  const messages = listMessages(c.db, id);
  const names = userNames(c.db, [
    row.user_id,
    ...messages.flatMap((m) => (m.author_id ? [m.author_id] : [])),
  ]);
  return {
    conversation: conversationView(row),
    messages: messages.map((m) => messageView(m, names, row.user_id)),
  };
}

export function renameConversation(
  deps: Pick<AiDeps, 'runtime'>,
  c: PlatformRequestContext,
  id: string,
  body: { title?: string; model?: string },
) {
  const userId = ownConversation(c, id, 'rename it').user_id;
  const title = body.title?.trim();
  if (body.title !== undefined && !title)
    throw new AppError('conversation.invalid', 'title: must not be blank', 400, [
      { path: '/title', reason: 'must not be blank' },
    ]);
  const model = body.model ? checkModel(deps, c, body.model) : undefined;
  if (!updateConversation(c.db, id, userId, { title, model, now: c.app.clock.now() })) throw notFound();
  return { conversation: conversationView(findConversation(c.db, id, userId)!) };
}

export function removeConversation(c: PlatformRequestContext, id: string): void {
  if (!deleteConversation(c.db, id, ownConversation(c, id, 'delete it').user_id)) throw notFound();
  live(c.app.state).close(c.platform.id, id);
}

/** A file name from a title: lowercase letters, digits and dashes. */
export function fileNameOf(title: string): string {
  const base = title
    .normalize('NFKD')
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, 60);
  return base || 'conversation';
}

/** The conversation as a Markdown or JSON download. */
export function exportConversation(
  c: PlatformRequestContext,
  id: string,
  format: 'markdown' | 'json',
): Response {
  const data = conversation(c, id);
  const name = fileNameOf(data.conversation.title);
  if (format === 'json')
    return new Response(`${JSON.stringify(data, null, 2)}\n`, {
      headers: {
        'content-type': 'application/json; charset=utf-8',
        'content-disposition': `attachment; filename="${name}.json"`,
      },
    });
  const parts = [`# ${data.conversation.title}`, ''];
  for (const m of data.messages) {
    const who =
      m.role === 'user' ? (data.conversation.shared ? (m.author?.name ?? 'User') : 'You') : 'Assistant';
    parts.push(`**${who}** (${m.created_at})`, '', m.content, '');
    if (m.status !== 'complete') parts.push(`_(${m.status}${m.error ? `: ${m.error}` : ''})_`, '');
  }
  return new Response(parts.join('\n'), {
    headers: {
      'content-type': 'text/markdown; charset=utf-8',
      'content-disposition': `attachment; filename="${name}.md"`,
    },
  });
}

/** An error of the AI service as the contract's AppError (OpenAI-shaped ones keep status and message). */
async function asAppError(e: unknown): Promise<AppError> {
  if (isAppError(e)) return e;
  const res = toOpenAiError(e);
  const body = (await res.json().catch(() => ({}))) as {
    error?: { message?: string; code?: string | null; type?: string };
  };
  const code = body.error?.code || body.error?.type || 'failed';
  return new AppError(`ai.${code}`, body.error?.message ?? 'the model could not answer', res.status);
}

const sse = (event: string, data: unknown) => `event: ${event}\ndata: ${JSON.stringify(data)}\n\n`;

/** The model's messages for a turn: the recent history (within the budgets), then the new one. */
function historyOf(rows: MessageRow[], content: string) {
  const kept: { role: 'user' | 'assistant'; content: string }[] = [];
  let chars = content.length;
  for (let i = rows.length - 1; i >= 0; i--) {
    const m = rows[i]!;
    if (m.status === 'error' || !m.content) continue;
    chars += m.content.length;
    if (chars > HISTORY_CHARS) break;
    kept.unshift({ role: m.role, content: m.content });
  }
  return [...kept, { role: 'user' as const, content }];
}

/**
 * The history as the model reads it: in a shared conversation (it has participants, or
 * messages by more than one author), each user message starts with its author's display name
 * ("Ada: …"), the new one too; otherwise unchanged.
 */
function withAuthors(
  c: PlatformRequestContext,
  conv: ConversationRow,
  rows: MessageRow[],
  userId: string,
  content: string,
): [MessageRow[], string] {
  const authorOf = (m: MessageRow) => m.author_id ?? conv.user_id;
  const shared =
    conv.participant_count > 0 ||
    userId !== conv.user_id ||
    rows.some((m) => m.role === 'user' && authorOf(m) !== conv.user_id);
  if (!shared) return [rows, content];
  const names = userNames(c.db, [userId, ...rows.filter((m) => m.role === 'user').map(authorOf)]);
  // One line, at most 60 characters: a name cannot forge another turn.
  const label = (id: string) =>
    (names.get(id) ?? 'User')
      .replace(/[\s:]+/g, ' ')
      .trim()
      .slice(0, 60) || 'User';
  return [
    rows.map((m) => (m.role === 'user' ? { ...m, content: `${label(authorOf(m))}: ${m.content}` } : m)),
    `${label(userId)}: ${content}`,
  ];
}

/**
 * A turn in a conversation `c` may use (its own, or one shared with it): one at a time per
 * conversation (409 `conversation.busy` while another streams); see `runTurn`.
 */
export async function sendMessage(
  deps: AiDeps,
  c: PlatformRequestContext,
  id: string,
  body: { content: string; model?: string },
  signal: AbortSignal,
): Promise<Response> {
  const { row } = conversationFor(c, id);
  const endTurn = live(c.app.state).beginTurn(c.platform.id, id);
  try {
    return await runTurn(deps, c, id, body, signal, row, endTurn);
  } catch (e) {
    endTurn();
    throw e;
  }
}

/**
 * One turn: the model is asked first (a refusal before the first token — budget, policy, model,
 * safety — is a plain JSON error and nothing is written); then the user's message is stored
 * and the answer streams back as `user`, `delta`… and `done` (or `error`) events; the
 * assistant's message is stored when the stream ends: complete, stopped (the client went
 * away: the partial text is kept) or error.
 */
async function runTurn(
  deps: AiDeps,
  c: PlatformRequestContext,
  id: string,
  body: { content: string; model?: string },
  signal: AbortSignal,
  conv: ConversationRow,
  endTurn: () => void,
): Promise<Response> {
  const userId = userOf(c);
  // With an agent: its persona first, its model and settings (the turn cannot pick another model).
  const agent = conv.agent_id ? agentSpecFor(c, conv.agent_id, conv.agent_version).spec : null;
  if (agent && body.model !== undefined && body.model !== agent.model)
    throw new AppError(
      'conversation.invalid',
      "model: a conversation with an agent uses the agent's model",
      400,
      [{ path: '/model', reason: "is the agent's to choose" }],
    );
  const model = checkModel(deps, c, agent ? agent.model : (body.model ?? conv.model));
  const history = historyOf(
    ...withAuthors(c, conv, recentMessages(c.db, id, HISTORY_MESSAGES), userId, body.content),
  );
  // The agent's knowledge: the chunks that best answer this message, as numbered sources.
  const hits = conv.agent_id ? await searchAgentKnowledge(deps, c, conv.agent_id, body.content) : [];
  const requireCitations = c.blueprint().ai_settings.quality_gates.require_citations;
  const system = [
    ...(agent?.persona ? [{ role: 'system' as const, content: agent.persona }] : []),
    ...(hits.length ? [{ role: 'system' as const, content: sourcesMessage(hits, requireCitations) }] : []),
  ];
  const messages = [...system, ...history];
  const citations = hits.map((h, i) => ({
    n: i + 1,
    chunk: h.id,
    document: { id: h.doc_id, name: h.doc_name },
    seq: h.seq,
    text: h.text,
  }));
  const p = c.principal;
  const caller = {
    platform: c.platform,
    db: c.db,
    userId,
    keyId: p?.kind === 'api_key' ? p.keyId : null,
    agentId: conv.agent_id,
  };
  let answer: ChatStreamAnswer;
  try {
    const r = await completeChat(
      deps,
      caller,
      platformAiPolicy(c.blueprint()),
      {
        model,
        req: {
          messages,
          ...(agent?.temperature != null ? { temperature: agent.temperature } : {}),
          ...(agent?.max_tokens != null ? { max_tokens: agent.max_tokens } : {}),
        },
        stream: true,
        includeUsage: true,
      },
      signal,
    );
    if (r.kind !== 'stream')
      throw new AppError('internal.not_streamed', 'the model answered without a stream', 500);
    answer = r;
  } catch (e) {
    throw await asAppError(e);
  }
  // The request's lease of the database ends when this handler returns: the stream holds its own.
  const platformId = c.platform.id;
  const lease = c.app.platformDbs.acquire(platformId);
  const db = lease.db;
  const clock = c.app.clock;
  // Who listens to this conversation (features.collaborative_agents) sees the turn too.
  const hub = live(c.app.state);
  const names = userNames(c.db, [userId]);
  const userMessage = db.transaction(() => {
    const m = appendMessage(db, {
      id: newId('chm'),
      conversation_id: id,
      role: 'user',
      content: body.content,
      model: null,
      status: 'complete',
      error: null,
      prompt_tokens: null,
      completion_tokens: null,
      created_at: clock.now(),
      author_id: userId,
    });
    // The first turn names the conversation.
    if (conv.title === DEFAULT_TITLE && conv.message_count === 0) {
      const title = body.content.replace(/\s+/g, ' ').trim().slice(0, 60);
      updateConversation(db, id, conv.user_id, { title, now: clock.now() });
    }
    return m;
  })();
  hub.publish(platformId, id, { event: 'message', data: { message: messageView(userMessage, names) } });

  let text = '';
  let usage: { prompt_tokens?: number; completion_tokens?: number } | null = null;
  let settled = false;
  const finish = (status: 'complete' | 'stopped' | 'error', error: string | null): MessageRow | null => {
    if (settled) return null;
    settled = true;
    try {
      const m = appendMessage(db, {
        id: newId('chm'),
        conversation_id: id,
        role: 'assistant',
        content: text,
        model,
        status,
        error,
        prompt_tokens: usage?.prompt_tokens ?? null,
        completion_tokens: usage?.completion_tokens ?? null,
        created_at: clock.now(),
        citations: citations.length ? JSON.stringify(citations) : null,
      });
      hub.publish(platformId, id, { event: 'message', data: { message: messageView(m) } });
      return m;
    } finally {
      lease.release();
      endTurn();
    }
  };
  const chunks = answer.chunks;
  const enc = new TextEncoder();
  const stream = new ReadableStream<Uint8Array>({
    async start(ctl) {
      const send = (event: string, data: unknown) => {
        try {
          ctl.enqueue(enc.encode(sse(event, data)));
        } catch {
          // The client is gone; the end is written below.
        }
      };
      send('user', { message: messageView(userMessage, names) });
      try {
        for (;;) {
          if (signal.aborted) break;
          const n = await chunks.next();
          if (n.done) break;
          const ch = n.value;
          if (ch.usage) usage = ch.usage;
          const delta = ch.choices[0]?.delta?.content;
          if (delta) {
            text += delta;
            send('delta', { text: delta });
            hub.publish(platformId, id, { event: 'delta', data: { text: delta, after: userMessage.id } });
          }
        }
        if (signal.aborted) {
          finish('stopped', null);
          void chunks.return?.()?.catch(() => undefined);
        } else {
          const m = finish('complete', null);
          if (m) send('done', { message: messageView(m) });
        }
      } catch (e) {
        if (signal.aborted) finish('stopped', null);
        else {
          const err = await asAppError(e);
          const m = finish('error', err.message);
          send('error', { code: err.code, message: err.message, ...(m ? { message_id: m.id } : {}) });
        }
      } finally {
        try {
          ctl.close();
        } catch {
          // Already cancelled.
        }
      }
    },
    cancel() {
      // The client went away (Stop): the partial text is kept, the provider's stream cancelled
      // (the request's signal aborts its fetch; return() ends the iterator once it settles).
      finish('stopped', null);
      void chunks.return?.()?.catch(() => undefined);
    },
  });
  return new Response(stream, {
    headers: {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache, no-store',
      'x-accel-buffering': 'no',
    },
  });
}
