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
import {
  appendMessage,
  type ConversationRow,
  deleteConversation,
  findConversation,
  insertConversation,
  listConversations,
  listMessages,
  type MessageRow,
  recentMessages,
  updateConversation,
} from './conversations.repository.ts';
import { searchAgentKnowledge, sourcesMessage } from './knowledge.service.ts';
import { usageAttribution } from './sharing.service.ts';

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

export function conversationView(r: ConversationRow) {
  return {
    id: r.id,
    title: r.title,
    model: r.model,
    agent: r.agent_id ? { id: r.agent_id, version: r.agent_version } : null,
    created_at: iso(r.created_at),
    updated_at: iso(r.updated_at),
    message_count: r.message_count,
  };
}

export function messageView(m: MessageRow) {
  return {
    id: m.id,
    role: m.role,
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
  let cursor: { updatedAt: number; id: string } | null = null;
  if (q.before) {
    const b = findConversation(c.db, q.before, userId);
    if (!b)
      throw new AppError('conversation.bad_cursor', 'before: no such conversation', 400, [
        { path: '/before', reason: 'is not one of your conversations' },
      ]);
    cursor = { updatedAt: b.updated_at, id: b.id };
  }
  const rows = listConversations(c.db, userId, cursor, limit + 1);
  const page = rows.slice(0, limit);
  return {
    conversations: page.map(conversationView),
    next_before: rows.length > limit ? (page.at(-1)?.id ?? null) : null,
  };
}

export function conversation(c: PlatformRequestContext, id: string) {
  const row = findConversation(c.db, id, userOf(c));
  if (!row) throw notFound();
  return { conversation: conversationView(row), messages: listMessages(c.db, id).map(messageView) };
}

export function renameConversation(
  deps: Pick<AiDeps, 'runtime'>,
  c: PlatformRequestContext,
  id: string,
  body: { title?: string; model?: string },
) {
  const userId = userOf(c);
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
  if (!deleteConversation(c.db, id, userOf(c))) throw notFound();
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
    parts.push(`**${m.role === 'user' ? 'You' : 'Assistant'}** (${m.created_at})`, '', m.content, '');
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
 * One turn: the model is asked first (a refusal before the first token — budget, policy, model,
 * safety — is a plain JSON error and nothing is written); then the user's message is stored
 * and the answer streams back as `user`, `delta`… and `done` (or `error`) events; the
 * assistant's message is stored when the stream ends: complete, stopped (the client went
 * away: the partial text is kept) or error.
 */
export async function sendMessage(
  deps: AiDeps,
  c: PlatformRequestContext,
  id: string,
  body: { content: string; model?: string },
  signal: AbortSignal,
): Promise<Response> {
  const userId = userOf(c);
  const conv = findConversation(c.db, id, userId);
  if (!conv) throw notFound();
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
  const history = historyOf(recentMessages(c.db, id, HISTORY_MESSAGES), body.content);
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
    // The agent, the version that runs and its creator (the owner now) go on the usage row.
    ...usageAttribution(c.db, conv.agent_id, conv.agent_version),
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
    });
    // The first turn names the conversation.
    if (conv.title === DEFAULT_TITLE && conv.message_count === 0) {
      const title = body.content.replace(/\s+/g, ' ').trim().slice(0, 60);
      updateConversation(db, id, userId, { title, now: clock.now() });
    }
    return m;
  })();

  let text = '';
  let usage: { prompt_tokens?: number; completion_tokens?: number } | null = null;
  let settled = false;
  const finish = (status: 'complete' | 'stopped' | 'error', error: string | null): MessageRow | null => {
    if (settled) return null;
    settled = true;
    try {
      return appendMessage(db, {
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
    } finally {
      lease.release();
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
      send('user', { message: messageView(userMessage) });
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
