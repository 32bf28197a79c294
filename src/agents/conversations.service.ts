import type { Database } from 'bun:sqlite';
import {
  type AiCaller,
  type AiDeps,
  type ChatMessage,
  type ChatStreamAnswer,
  completeChat,
  listModels,
  type PlatformAiPolicy,
  platformAiPolicy,
  type ToolCall,
  toOpenAiError,
} from '../ai/index.ts';
import type { App } from '../app/index.ts';
import { requireAiAllowance } from '../billing/index.ts';
import { actorOf, type PlatformRequestContext } from '../identity/index.ts';
import { AppError, isAppError } from '../shared/errors.ts';
import { newId } from '../shared/ids.ts';
import { type AgentSpec, agentSpecFor, versionToRun } from './agents.service.ts';
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
import { usageAttribution } from './sharing.service.ts';
import { decideToolCall, findToolCall, insertToolCall, pendingToolCalls } from './tools.repository.ts';
import { notRun, runTool, type ToolEnv, type ToolOutcome } from './tools.service.ts';
import { type AgentTool, functionsOf, runsUnasked, toolHost } from './tools.ts';

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
    ...(m.tool_steps ? { tool_steps: JSON.parse(m.tool_steps) as ToolStep[] } : {}),
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
    // Tool calls that wait for the user's Confirm or Decline.
    pending_tool_calls: pendingToolCalls(c.db, id).map((r) => ({
      id: r.id,
      tool: r.tool,
      arguments: r.arguments,
      created_at: iso(r.created_at),
    })),
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
    parts.push(`**${who}** (${m.created_at})`, '');
    for (const t of m.tool_steps ?? [])
      parts.push(
        `> called \`${t.tool}\`: ${t.ok ? 'done' : t.outcome}${t.status ? ` (HTTP ${t.status})` : ''}`,
        '',
      );
    parts.push(m.content, '');
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

/** Model answers a turn may take with tool calls (after these, the model must answer in words). */
export const MAX_TOOL_ROUNDS = 5;
/** Tool calls run from one answer of the model at most (the rest are told to the model as refused). */
export const MAX_CALLS_PER_ROUND = 8;

type Citation = {
  n: number;
  chunk: number;
  document: { id: string; name: string };
  seq: number;
  text: string;
  /** Whether the answer cites it (`[n]`); set when the answer is complete. */
  cited?: boolean;
};

/**
 * The source numbers `text` cites among the `count` it was given: `[2]`, `[1, 3]`, `[1][3]`;
 * numbers out of range (`[7]` of 3 sources) and bracketed text that is not a list of numbers
 * (`[a]`, `[1-3]`) are not citations.
 */
export function citedSources(text: string, count: number): Set<number> {
  const cited = new Set<number>();
  for (const m of text.matchAll(/\[(\d{1,4}(?:\s*,\s*\d{1,4})*)\]/g))
    for (const part of m[1]!.split(',')) {
      const n = Number(part.trim());
      if (n >= 1 && n <= count) cited.add(n);
    }
  return cited;
}

/** The refusal of a complete answer that cites none of its sources where the platform requires it. */
const citationsMissing = () =>
  new AppError(
    'quality.citations_missing',
    "the answer cites none of the agent's sources, and this platform requires answers to cite them (ai_settings.quality_gates.require_citations)",
    422,
  );

/** What a turn carries from one model answer to the next, and across a pause for the user's answer. */
interface TurnState {
  /** What the model is sent next: system messages, the history, this turn's messages. */
  messages: ChatMessage[];
  /** The assistant's text so far (every round's). */
  text: string;
  usage: { prompt_tokens: number; completion_tokens: number } | null;
  /** Model answers so far. */
  rounds: number;
  /** Calls of the last answer still to run (on a pause: the first is the one waiting). */
  calls: ToolCall[];
  citations: Citation[];
  /** The tool calls made so far, as the answer keeps them (a turn paused before this field: none). */
  steps?: ToolStep[];
}

/** One tool call of a turn, as its answer keeps it: never its result or a secret. */
export interface ToolStep {
  call_id: string;
  tool: string;
  /** What the model passed (at most MAX_STEP_ARGUMENTS characters). */
  arguments: string;
  ok: boolean;
  status: number | null;
  outcome: ToolOutcome['outcome'] | 'failed';
}
/** The arguments a stored tool step keeps (the model may send up to 64 KiB). */
export const MAX_STEP_ARGUMENTS = 2000;

/** One turn's stream: its own lease of the database, the model, the tools, who it is for. */
interface Turn {
  deps: AiDeps;
  app: App;
  db: Database;
  release: () => void;
  caller: AiCaller;
  policy: PlatformAiPolicy;
  model: string;
  agent: AgentSpec | null;
  tools: AgentTool[];
  conversationId: string;
  userId: string;
  actor: string;
  state: TurnState;
  signal: AbortSignal;
  /** The model's first answer (a new message), or none (a resumed turn asks again). */
  first: ChatStreamAnswer | null;
  /** Sent first (a new message: the stored user message). */
  prelude?: (send: (event: string, data: unknown) => void) => void;
  /** A resumed turn: what the user said of the waiting call (state.calls[0]). */
  decided?: { approve: boolean };
  /** Ends the conversation's one-turn-at-a-time lock (collaboration), once the stream ends or pauses. */
  endTurn: () => void;
  /** The user message this turn answers (shared conversations' listeners get deltas after it). */
  after: string | null;
  /**
   * `ai_settings.quality_gates.require_citations`: a complete answer given sources must cite
   * one of them, else it is stored as an error (`quality.citations_missing`), not an answer.
   */
  requireCitations: boolean;
}

/** Asks the model (streamed) with the turn's messages; with tools unless the rounds are used up. */
async function ask(t: Turn): Promise<ChatStreamAnswer> {
  const useTools = t.tools.length > 0 && t.state.rounds < MAX_TOOL_ROUNDS;
  const r = await completeChat(
    t.deps,
    t.caller,
    t.policy,
    {
      model: t.model,
      req: {
        messages: t.state.messages,
        ...(t.agent?.temperature != null ? { temperature: t.agent.temperature } : {}),
        ...(t.agent?.max_tokens != null ? { max_tokens: t.agent.max_tokens } : {}),
        ...(useTools ? { tools: functionsOf(t.tools) } : {}),
      },
      stream: true,
      includeUsage: true,
    },
    t.signal,
  );
  if (r.kind !== 'stream')
    throw new AppError('internal.not_streamed', 'the model answered without a stream', 500);
  return r;
}

const toolEnv = (t: Turn): ToolEnv => ({
  app: t.app,
  db: t.db,
  actor: t.actor,
  agentId: t.caller.agentId,
  conversationId: t.conversationId,
  signal: t.signal,
});

/**
 * Runs the turn's streamed answer: text as `delta` events; when the model asks for tools, each
 * call as `tool_call`, run (read-only or marked safe) with its `tool_result`, or, for one that
 * changes something, a `tool_confirm` event and the turn waits (stored; the stream ends); after
 * the calls the model is asked again, at most MAX_TOOL_ROUNDS times. The assistant's message
 * is stored when the turn ends: complete, stopped or error.
 */
function turnStream(t: Turn): Response {
  const { db, state } = t;
  const clock = t.app.clock;
  let settled = false;
  // Who listens to this conversation (features.collaborative_agents) sees the turn too.
  const hub = live(t.app.state);
  const platformId = t.caller.platform.id;
  const release = () => {
    if (settled) return false;
    settled = true;
    try {
      t.release();
    } finally {
      t.endTurn();
    }
    return true;
  };
  const finish = (status: 'complete' | 'stopped' | 'error', error: string | null): MessageRow | null => {
    if (settled) return null;
    try {
      const m = appendMessage(db, {
        id: newId('chm'),
        conversation_id: t.conversationId,
        role: 'assistant',
        content: state.text,
        model: t.model,
        status,
        error,
        prompt_tokens: state.usage?.prompt_tokens ?? null,
        completion_tokens: state.usage?.completion_tokens ?? null,
        created_at: clock.now(),
        citations: state.citations.length ? JSON.stringify(state.citations) : null,
        tool_steps: state.steps?.length ? JSON.stringify(state.steps) : null,
      });
      hub.publish(platformId, t.conversationId, { event: 'message', data: { message: messageView(m) } });
      return m;
    } finally {
      release();
    }
  };
  let current: AsyncIterator<unknown> | null = null;
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
      /** A call's result, to the model (a tool message) and to the client. */
      const answered = (call: ToolCall, o: Pick<ToolOutcome, 'ok' | 'content' | 'status' | 'outcome'>) => {
        state.messages.push({ role: 'tool', tool_call_id: call.id, content: o.content });
        state.steps = [
          ...(state.steps ?? []),
          {
            call_id: call.id,
            tool: call.function.name,
            arguments: call.function.arguments.slice(0, MAX_STEP_ARGUMENTS),
            ok: o.ok,
            status: o.status,
            outcome: o.outcome,
          },
        ];
        send('tool_result', {
          call_id: call.id,
          tool: call.function.name,
          ok: o.ok,
          status: o.status,
          outcome: o.outcome,
          ...(o.ok ? {} : { error: o.outcome === 'declined' ? 'declined' : 'the tool call failed' }),
        });
      };
      /** Runs the waiting calls in order; true when one needs the user's answer (the turn pauses). */
      const runCalls = async (): Promise<boolean> => {
        while (state.calls.length) {
          if (t.signal.aborted) return false;
          const call = state.calls[0]!;
          const tool = t.tools.find((x) => x.name === call.function.name);
          send('tool_call', {
            call_id: call.id,
            tool: call.function.name,
            arguments: call.function.arguments,
          });
          if (!tool) {
            answered(call, {
              ok: false,
              content: JSON.stringify({ error: 'no such tool' }),
              status: null,
              outcome: 'failed',
            });
          } else if (!runsUnasked(tool)) {
            const id = newId('tcl');
            db.transaction(() => {
              insertToolCall(db, {
                id,
                conversation_id: t.conversationId,
                user_id: t.userId,
                agent_id: t.caller.agentId,
                tool: tool.name,
                call_id: call.id,
                arguments: call.function.arguments,
                status: 'pending',
                turn: JSON.stringify(state),
                created_at: clock.now(),
                decided_at: null,
              });
              t.app.audit.append(db, {
                actor: t.actor,
                action: 'agent.tool_confirmation_asked',
                target: t.caller.agentId ? `agent:${t.caller.agentId}` : `conversation:${t.conversationId}`,
                details: {
                  tool: tool.name,
                  method: tool.method,
                  host: toolHost(tool),
                  conversation: t.conversationId,
                  call: id,
                },
              });
            })();
            send('tool_confirm', {
              id,
              call_id: call.id,
              tool: tool.name,
              method: tool.method,
              host: toolHost(tool),
              arguments: call.function.arguments,
            });
            return true;
          } else answered(call, await runTool(toolEnv(t), tool, call.function.arguments));
          state.calls.shift();
        }
        return false;
      };
      t.prelude?.(send);
      try {
        let answer = t.first;
        if (t.decided && state.calls.length) {
          const call = state.calls[0]!;
          const tool = t.tools.find((x) => x.name === call.function.name);
          send('tool_call', {
            call_id: call.id,
            tool: call.function.name,
            arguments: call.function.arguments,
          });
          const o =
            tool && t.decided.approve
              ? await runTool(toolEnv(t), tool, call.function.arguments)
              : tool
                ? notRun(toolEnv(t), tool, 'declined')
                : {
                    ok: false,
                    content: JSON.stringify({ error: 'no such tool' }),
                    status: null,
                    outcome: 'failed' as const,
                  };
          answered(call, o);
          state.calls.shift();
        }
        for (;;) {
          if (!answer) {
            if (await runCalls()) {
              release();
              return;
            }
            if (t.signal.aborted) break;
            answer = await ask(t);
          }
          const chunks = answer.chunks;
          current = chunks;
          answer = null;
          let roundText = '';
          const calls: (ToolCall & { index: number })[] = [];
          for (;;) {
            if (t.signal.aborted) break;
            const n = await chunks.next();
            if (n.done) break;
            const ch = n.value;
            if (ch.usage)
              state.usage = {
                prompt_tokens: (state.usage?.prompt_tokens ?? 0) + (ch.usage.prompt_tokens ?? 0),
                completion_tokens: (state.usage?.completion_tokens ?? 0) + (ch.usage.completion_tokens ?? 0),
              };
            const delta = ch.choices[0]?.delta;
            if (delta?.content) {
              state.text += delta.content;
              roundText += delta.content;
              send('delta', { text: delta.content });
              hub.publish(platformId, t.conversationId, {
                event: 'delta',
                data: { text: delta.content, after: t.after },
              });
            }
            // Streamed tool calls come in pieces, by index: the id and name first, the arguments in parts.
            for (const d of delta?.tool_calls ?? []) {
              let c = calls.find((x) => x.index === d.index);
              if (!c) {
                if (calls.length >= 64) continue;
                c = { index: d.index, id: '', type: 'function', function: { name: '', arguments: '' } };
                calls.push(c);
              }
              if (d.id) c.id = d.id;
              if (d.function?.name) c.function.name += d.function.name;
              if (d.function?.arguments && c.function.arguments.length < 64 * 1024)
                c.function.arguments += d.function.arguments;
            }
          }
          state.rounds++;
          if (t.signal.aborted) break;
          if (calls.length && t.tools.length) {
            const all = calls.map(
              ({ index, ...c }): ToolCall => ({ ...c, id: c.id || `call_${state.rounds}_${index}` }),
            );
            state.messages.push({ role: 'assistant', content: roundText || null, tool_calls: all });
            state.calls = all.slice(0, MAX_CALLS_PER_ROUND);
            for (const extra of all.slice(MAX_CALLS_PER_ROUND))
              state.messages.push({
                role: 'tool',
                tool_call_id: extra.id,
                content: JSON.stringify({ error: `at most ${MAX_CALLS_PER_ROUND} calls at once` }),
              });
            continue;
          }
          const cited = citedSources(state.text, state.citations.length);
          state.citations = state.citations.map((x) => ({ ...x, cited: cited.has(x.n) }));
          if (t.requireCitations && state.citations.length > 0 && cited.size === 0) {
            const err = citationsMissing();
            const m = finish('error', err.message);
            send('error', { code: err.code, message: err.message, ...(m ? { message_id: m.id } : {}) });
            return;
          }
          const m = finish('complete', null);
          if (m) send('done', { message: messageView(m) });
          return;
        }
        finish('stopped', null);
        void current?.return?.()?.catch(() => undefined);
      } catch (e) {
        if (t.signal.aborted) finish('stopped', null);
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
      void current?.return?.()?.catch(() => undefined);
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

/** The agent's tools in a conversation (none without an agent). */
const toolsOf = (agent: AgentSpec | null): AgentTool[] => agent?.tools ?? [];

/** The turn's caller for the AI service: the stream's own database handle. */
function callerOf(
  c: PlatformRequestContext,
  db: Database,
  userId: string,
  conv: { agent_id: string | null; agent_version: number | null },
): AiCaller {
  const p = c.principal;
  return {
    platform: c.platform,
    db,
    userId,
    keyId: p?.kind === 'api_key' ? p.keyId : null,
    // The agent, the version that runs and its creator (the owner now) go on the usage row.
    ...usageAttribution(db, conv.agent_id, conv.agent_version),
  };
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
 * and the answer streams back as `user`, `delta`… (`tool_call`, `tool_result`, `tool_confirm`
 * when the agent has tools) and `done` (or `error`) events; the assistant's message is stored
 * when the stream ends: complete, stopped (the client went away: the partial text is kept) or
 * error. Calls still waiting for the user's answer expire: a new message moves on.
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
  // The tier's `requests_per_day` (429 `billing.limit_reached` once today's are used).
  requireAiAllowance(c, deps.meter);
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
  const citations = hits.map((h, i) => ({
    n: i + 1,
    chunk: h.id,
    document: { id: h.doc_id, name: h.doc_name },
    seq: h.seq,
    text: h.text,
  }));
  // The request's lease of the database ends when this handler returns: the stream holds its own.
  const lease = c.app.platformDbs.acquire(c.platform.id);
  const db = lease.db;
  const turn: Turn = {
    deps,
    app: c.app,
    db,
    release: () => lease.release(),
    caller: callerOf(c, db, userId, conv),
    policy: platformAiPolicy(c.blueprint()),
    model,
    agent,
    tools: toolsOf(agent),
    conversationId: id,
    userId,
    actor: actorOf(c.principal),
    state: { messages: [...system, ...history], text: '', usage: null, rounds: 0, calls: [], citations },
    signal,
    first: null,
    endTurn,
    after: null,
    requireCitations,
  };
  try {
    turn.first = await ask(turn);
  } catch (e) {
    lease.release();
    throw await asAppError(e);
  }
  const clock = c.app.clock;
  let userMessage: MessageRow;
  try {
    userMessage = db.transaction(() => {
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
      // Calls that waited for an answer expire: the user moved on.
      for (const p of pendingToolCalls(db, id)) {
        if (!decideToolCall(db, p.id, 'expired', clock.now())) continue;
        const tool = turn.tools.find((x) => x.name === p.tool);
        if (tool) notRun(toolEnv(turn), tool, 'expired');
      }
      return m;
    })();
  } catch (e) {
    lease.release();
    void turn.first.chunks.return?.()?.catch(() => undefined);
    throw e;
  }
  const names = userNames(c.db, [userId]);
  live(c.app.state).publish(c.platform.id, id, {
    event: 'message',
    data: { message: messageView(userMessage, names) },
  });
  turn.after = userMessage.id;
  turn.prelude = (send) => send('user', { message: messageView(userMessage, names) });
  return turnStream(turn);
}

/**
 * The user's answer to a tool call that waits (`approve`: run it; else it is declined and the
 * model told so): the turn goes on in a new stream of the same events. A call is answered
 * once: a second answer is 409 `tool.call_decided`.
 */
export async function answerToolCall(
  deps: AiDeps,
  c: PlatformRequestContext,
  conversationId: string,
  callId: string,
  body: { approve: boolean },
  signal: AbortSignal,
): Promise<Response> {
  const userId = userOf(c);
  const { row: conv } = conversationFor(c, conversationId);
  const row = findToolCall(c.db, callId, conversationId, userId);
  if (!row) throw new AppError('tool.call_not_found', 'no such tool call', 404);
  const decided = () =>
    new AppError('tool.call_decided', `this call was ${row.status} already`, 409, [
      { path: '/approve', reason: `the call is ${row.status}` },
    ]);
  if (row.status !== 'pending') throw decided();
  const agent = conv.agent_id ? agentSpecFor(c, conv.agent_id, conv.agent_version).spec : null;
  const model = checkModel(deps, c, agent ? agent.model : conv.model);
  const state = JSON.parse(row.turn) as TurnState;
  const won = c.db.transaction(() => {
    if (!decideToolCall(c.db, row.id, body.approve ? 'approved' : 'declined', c.app.clock.now()))
      return false;
    c.app.audit.append(c.db, {
      actor: actorOf(c.principal),
      action: body.approve ? 'agent.tool_call_approved' : 'agent.tool_call_declined',
      target: conv.agent_id ? `agent:${conv.agent_id}` : `conversation:${conversationId}`,
      details: { call: row.id, tool: row.tool, conversation: conversationId },
    });
    return true;
  })();
  if (!won) {
    row.status = findToolCall(c.db, callId, conversationId, userId)?.status ?? row.status;
    throw decided();
  }
  const endTurn = live(c.app.state).beginTurn(c.platform.id, conversationId);
  const lease = c.app.platformDbs.acquire(c.platform.id);
  return turnStream({
    deps,
    app: c.app,
    db: lease.db,
    release: () => lease.release(),
    caller: callerOf(c, lease.db, userId, conv),
    policy: platformAiPolicy(c.blueprint()),
    model,
    agent,
    tools: toolsOf(agent),
    conversationId,
    userId,
    actor: actorOf(c.principal),
    state,
    signal,
    first: null,
    decided: { approve: body.approve },
    endTurn,
    after: null,
    requireCitations: c.blueprint().ai_settings.quality_gates.require_citations,
  });
}
