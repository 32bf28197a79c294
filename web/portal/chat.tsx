import { useSignal } from '@preact/signals';
import { useEffect, useRef } from 'preact/hooks';
import { ApiError, api, errorOf, readSse, requestInit } from '../shared/api.ts';
import { when } from '../shared/format.ts';
import { me } from '../shared/platform-session.ts';
import { match, navigate, path } from '../shared/router.ts';
import {
  ActionButton,
  Async,
  Empty,
  ErrorNotice,
  Field,
  Form,
  Submit,
  useForm,
  useResource,
} from '../shared/ui.tsx';
import { boot } from './app.tsx';
import { Markdown } from './markdown.tsx';

/** The chat: your conversations, the thread, a model picker and the message box; answers stream in. */

interface Conversation {
  id: string;
  title: string;
  model: string;
  updated_at: string;
  message_count: number;
  /** The agent it chats with (its version; null: the draft under test). */
  agent: { id: string; version: number | null } | null;
  /** Its owner; `shared`: it has participants (features.collaborative_agents). */
  owner_id?: string;
  shared?: boolean;
}
/** A tool call of the answer being written, as the stream told it. */
interface ToolStep {
  call_id: string;
  tool: string;
  arguments: string;
  state: 'running' | 'ok' | 'failed' | 'declined' | 'waiting';
}
interface Message {
  id: string;
  role: 'user' | 'assistant';
  content: string;
  status: 'complete' | 'stopped' | 'error' | 'streaming' | 'waiting';
  error?: string;
  created_at: string;
  /** Who wrote a user message. */
  author?: { id: string; name: string | null };
  citations?: {
    n: number;
    document: { id: string; name: string };
    seq: number;
    text: string;
    cited?: boolean;
  }[];
  /** The turn's tool calls as the screen shows them (live while streaming, else from `tool_steps`). */
  tools?: ToolStep[];
  /** The tool calls stored with the answer. */
  tool_steps?: { call_id: string; tool: string; arguments: string; ok: boolean; outcome: string }[];
}

/** A stored message with its tool calls in the form the screen shows. */
const withSteps = (m: Message): Message =>
  m.tool_steps?.length && !m.tools
    ? {
        ...m,
        tools: m.tool_steps.map((t) => ({
          call_id: t.call_id,
          tool: t.tool,
          arguments: t.arguments,
          state: t.ok ? 'ok' : t.outcome === 'declined' ? 'declined' : 'failed',
        })),
      }
    : m;
/** A tool call that waits for the user's Confirm or Decline. */
interface Waiting {
  id: string;
  tool: string;
  method?: string;
  host?: string;
  arguments: string;
}

const TOOL_STATE: Record<ToolStep['state'], string> = {
  running: 'running…',
  ok: 'done',
  failed: 'failed',
  declined: 'declined',
  waiting: 'waits for you',
};

export function Chat() {
  const current = match('/app/c/:id', path.value)?.id ?? null;
  const list = useResource(() => api<{ conversations: Conversation[] }>('GET', '/api/v1/conversations'), []);
  const models = useResource(
    () => api<{ models: { id: string; default: boolean }[] }>('GET', '/api/v1/conversations/models'),
    [],
  );
  const messages = useSignal<Message[]>([]);
  const conv = useSignal<Conversation | null>(null);
  const loadError = useSignal<unknown>(null);
  const model = useSignal('');
  const draft = useSignal('');
  const streaming = useSignal<AbortController | null>(null);
  const turnError = useSignal<unknown>(null);
  const waiting = useSignal<Waiting | null>(null);
  const logRef = useRef<HTMLDivElement>(null);
  const sharing = useSignal(false);
  /** Whether this page follows the conversation live (its event stream is open). */
  const liveOn = useSignal(false);
  const collaborative = boot.platform.features.collaborative_agents === true;
  const myId = me.value?.user?.id ?? null;
  /** A conversation this screen just made: its (empty) messages are not fetched over the stream's. */
  const made = useRef<string | null>(null);

  // The open conversation and its messages.
  useEffect(() => {
    loadError.value = null;
    waiting.value = null;
    if (!current) {
      conv.value = null;
      messages.value = [];
      return;
    }
    if (made.current === current) {
      made.current = null;
      return;
    }
    const ctl = new AbortController();
    api<{
      conversation: Conversation;
      messages: Message[];
      pending_tool_calls?: { id: string; tool: string; arguments: string }[];
    }>('GET', `/api/v1/conversations/${encodeURIComponent(current)}`, undefined, {
      signal: ctl.signal,
    })
      .then((r) => {
        conv.value = r.conversation;
        messages.value = r.messages.map(withSteps);
        model.value = r.conversation.model;
        const p = r.pending_tool_calls?.at(-1);
        waiting.value = p ? { id: p.id, tool: p.tool, arguments: p.arguments } : null;
      })
      .catch((e) => {
        if (!ctl.signal.aborted) loadError.value = e;
      });
    return () => ctl.abort();
  }, [current]);

  // Live: what the other people in a shared conversation say, without reloading.
  useEffect(() => {
    // Only a conversation with an agent can be shared.
    const agentConv = conv.value?.id === current && !!conv.value.agent;
    if (!current || !collaborative || !agentConv || typeof EventSource === 'undefined') return;
    const es = new EventSource(`/api/v1/conversations/${encodeURIComponent(current)}/events`);
    const LIVE = 'live-pending';
    es.addEventListener('ready', () => {
      liveOn.value = true;
    });
    es.addEventListener('error', () => {
      liveOn.value = es.readyState === EventSource.OPEN;
    });
    es.addEventListener('message', (e) => {
      // Our own turn arrives on its own stream.
      if (streaming.value) return;
      const m = (JSON.parse((e as MessageEvent<string>).data) as { message: Message }).message;
      const rest = messages.value.filter((x) => x.id !== m.id && x.id !== LIVE);
      messages.value = [...rest, withSteps(m)];
    });
    es.addEventListener('delta', (e) => {
      if (streaming.value) return;
      const { text } = JSON.parse((e as MessageEvent<string>).data) as { text: string };
      const last = messages.value.at(-1);
      messages.value =
        last?.id === LIVE
          ? [...messages.value.slice(0, -1), { ...last, content: last.content + text }]
          : [
              ...messages.value,
              {
                id: LIVE,
                role: 'assistant',
                content: text,
                status: 'streaming',
                created_at: new Date().toISOString(),
              },
            ];
    });
    return () => {
      es.close();
      liveOn.value = false;
    };
  }, [current, collaborative, conv.value?.id, conv.value?.agent?.id]);

  useEffect(() => {
    if (!model.value && models.data.value?.models.length)
      model.value = models.data.value.models.find((m) => m.default)?.id ?? models.data.value.models[0]!.id;
  }, [models.data.value]);

  // Keep the newest text in view while it streams.
  useEffect(() => {
    const el = logRef.current;
    if (el) el.scrollTop = el.scrollHeight;
  });

  /** Reads a turn's events into the answer being written (`pending`, the last message once shown). */
  const readTurn = async (res: Response, pending: Message) => {
    const show = () => {
      messages.value = [
        ...messages.value.slice(0, -1),
        { ...pending, tools: pending.tools && [...pending.tools] },
      ];
    };
    const step = (callId: unknown, change: Partial<ToolStep>) => {
      pending.tools = (pending.tools ?? []).map((t) => (t.call_id === callId ? { ...t, ...change } : t));
    };
    for await (const ev of readSse(res)) {
      const data = JSON.parse(ev.data) as Record<string, unknown>;
      if (ev.event === 'user') messages.value = [...messages.value, data.message as Message, pending];
      else if (ev.event === 'delta') {
        pending.content += data.text as string;
        show();
      } else if (ev.event === 'tool_call') {
        pending.tools = [
          ...(pending.tools ?? []).filter((t) => t.call_id !== data.call_id),
          {
            call_id: String(data.call_id),
            tool: String(data.tool),
            arguments: String(data.arguments ?? ''),
            state: 'running',
          },
        ];
        show();
      } else if (ev.event === 'tool_result') {
        step(data.call_id, { state: data.ok ? 'ok' : data.outcome === 'declined' ? 'declined' : 'failed' });
        show();
      } else if (ev.event === 'tool_confirm') {
        step(data.call_id, { state: 'waiting' });
        pending.status = 'waiting';
        waiting.value = {
          id: String(data.id),
          tool: String(data.tool),
          method: String(data.method),
          host: String(data.host),
          arguments: String(data.arguments ?? ''),
        };
        show();
      } else if (ev.event === 'done')
        messages.value = [
          ...messages.value.slice(0, -1),
          withSteps({ ...(data.message as Message), ...(pending.tools ? { tools: pending.tools } : {}) }),
        ];
      else if (ev.event === 'error') {
        messages.value = [
          ...messages.value.slice(0, -1),
          { ...pending, status: 'error', error: String(data.message ?? 'the answer failed') },
        ];
      }
    }
  };

  /** The user's answer to the waiting tool call: the turn streams on into the same answer. */
  const answer = async (approve: boolean) => {
    const w = waiting.value;
    const id = current;
    if (!w || !id || streaming.value) return;
    turnError.value = null;
    const last = messages.value.at(-1);
    let pending: Message;
    if (last?.id.startsWith('pending')) {
      pending = { ...last, status: 'streaming' };
      messages.value = [...messages.value.slice(0, -1), pending];
    } else {
      pending = {
        id: `pending-${Date.now()}`,
        role: 'assistant',
        content: '',
        status: 'streaming',
        created_at: new Date().toISOString(),
      };
      messages.value = [...messages.value, pending];
    }
    const ctl = new AbortController();
    streaming.value = ctl;
    try {
      const res = await fetch(
        `/api/v1/conversations/${encodeURIComponent(id)}/tool-calls/${encodeURIComponent(w.id)}`,
        requestInit('POST', { approve }, { signal: ctl.signal, headers: { accept: 'text/event-stream' } }),
      );
      if (!res.ok) throw await errorOf(res);
      waiting.value = null;
      await readTurn(res, pending);
    } catch (e) {
      if ((e as Error).name !== 'AbortError') turnError.value = e;
    } finally {
      streaming.value = null;
    }
  };

  const send = async () => {
    const content = draft.value.trim();
    if (!content || streaming.value) return;
    turnError.value = null;
    let id = current;
    try {
      if (!id) {
        const r = await api<{ conversation: Conversation }>('POST', '/api/v1/conversations', {
          model: model.value || undefined,
        });
        id = r.conversation.id;
        conv.value = r.conversation;
        made.current = id;
        navigate(`/app/c/${id}`, true);
      }
    } catch (e) {
      turnError.value = e;
      return;
    }
    const ctl = new AbortController();
    streaming.value = ctl;
    const pending: Message = {
      id: `pending-${Date.now()}`,
      role: 'assistant',
      content: '',
      status: 'streaming',
      created_at: new Date().toISOString(),
    };
    try {
      const res = await fetch(
        `/api/v1/conversations/${encodeURIComponent(id)}/messages`,
        requestInit(
          'POST',
          { content, model: model.value || undefined },
          { signal: ctl.signal, headers: { accept: 'text/event-stream' } },
        ),
      );
      if (!res.ok) throw await errorOf(res);
      draft.value = '';
      await readTurn(res, pending);
    } catch (e) {
      if ((e as Error).name === 'AbortError') {
        const last = messages.value.at(-1);
        if (last?.id.startsWith('pending'))
          messages.value = [...messages.value.slice(0, -1), { ...last, status: 'stopped' }];
      } else turnError.value = e;
    } finally {
      streaming.value = null;
      // The list, and the title the first message gave the conversation.
      void list.reload().then(() => {
        const now = list.data.value?.conversations.find((x) => x.id === id);
        if (now && conv.value?.id === id) conv.value = now;
      });
    }
  };

  const onKey = (e: KeyboardEvent) => {
    if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) {
      e.preventDefault();
      void send();
    }
  };

  const c = conv.value;
  return (
    <div class="chat">
      <nav class="chat-list" aria-label="Conversations">
        <div class="actions">
          <button type="button" class="primary" onClick={() => navigate('/app')}>
            New chat
          </button>
          <a class="button" href="/app/agents">
            Agents
          </a>
        </div>
        <Async
          r={list}
          empty={(d) => (d.conversations.length ? null : <p class="muted">No conversations yet.</p>)}
        >
          {(d) => (
            <ul>
              {d.conversations.map((x) => (
                <li key={x.id}>
                  <a href={`/app/c/${x.id}`} aria-current={x.id === current ? 'page' : undefined}>
                    {x.title}
                  </a>
                  {x.shared ? <span class="badge">shared</span> : null}
                </li>
              ))}
            </ul>
          )}
        </Async>
      </nav>
      <main id="main" class="chat-main">
        <div class="chat-head">
          <h1 tabIndex={-1}>
            {c ? c.title : 'New chat'}
            {c?.agent ? (
              <span class="badge">
                {c.agent.version === null ? 'agent draft (test)' : `agent v${c.agent.version}`}
              </span>
            ) : null}
          </h1>
          {c?.owner_id && c.owner_id !== myId ? (
            <div class="actions">
              <span class="muted">Shared with you</span>
              {liveOn.value ? (
                <span class="badge" data-live="">
                  live
                </span>
              ) : null}
              <ActionButton
                confirm="Leave this shared conversation? You can no longer read it."
                onClick={async () => {
                  await api('DELETE', `/api/v1/conversations/${c.id}/participants/${myId}`);
                  await list.reload();
                  navigate('/app');
                }}
              >
                Leave
              </ActionButton>
            </div>
          ) : c ? (
            <div class="actions">
              {c.agent && collaborative ? (
                <button
                  type="button"
                  aria-expanded={sharing.value}
                  onClick={() => {
                    sharing.value = !sharing.value;
                  }}
                >
                  Share conversation
                </button>
              ) : null}
              <ActionButton
                onClick={async () => {
                  const title = prompt('New name', c.title)?.trim();
                  if (!title) return;
                  const r = await api<{ conversation: Conversation }>(
                    'PATCH',
                    `/api/v1/conversations/${c.id}`,
                    { title },
                  );
                  conv.value = r.conversation;
                  await list.reload();
                }}
              >
                Rename
              </ActionButton>
              <a
                class="button"
                href={`/api/v1/conversations/${c.id}/export?format=markdown`}
                download
                data-reload=""
              >
                Export Markdown
              </a>
              <a
                class="button"
                href={`/api/v1/conversations/${c.id}/export?format=json`}
                download
                data-reload=""
              >
                Export JSON
              </a>
              <ActionButton
                class="danger"
                confirm={`Delete “${c.title}” and its messages?`}
                onClick={async () => {
                  await api('DELETE', `/api/v1/conversations/${c.id}`);
                  await list.reload();
                  navigate('/app');
                }}
              >
                Delete
              </ActionButton>
            </div>
          ) : null}
        </div>
        {c && sharing.value && c.owner_id === myId ? <Participants id={c.id} /> : null}
        <ErrorNotice error={loadError.value} />
        <div class="chat-log" role="log" aria-live="polite" aria-label="Conversation" ref={logRef}>
          {messages.value.length === 0 ? (
            <Empty>Ask anything to start.</Empty>
          ) : (
            messages.value.map((m) => (
              <div key={m.id} class={`msg ${m.role}`} data-status={m.status}>
                <div class="who">
                  {m.role === 'assistant'
                    ? 'Assistant'
                    : !m.author || m.author.id === myId
                      ? 'You'
                      : (m.author.name ?? 'Someone')}{' '}
                  <span class="muted">{when(m.created_at)}</span>
                  {m.status === 'stopped' ? <span class="badge warn">stopped</span> : null}
                  {m.status === 'error' ? <span class="badge bad">error</span> : null}
                </div>
                <div class="body" data-role={m.role}>
                  {m.role === 'assistant' ? <Markdown text={m.content} /> : <p class="plain">{m.content}</p>}
                </div>
                {m.tools?.length ? (
                  <ul class="tool-steps" aria-label="Tool calls">
                    {m.tools.map((t) => (
                      <li key={t.call_id} data-state={t.state}>
                        <code>{t.tool}</code> <span class="muted">{t.arguments}</span>{' '}
                        <span
                          class={`badge${t.state === 'failed' ? ' bad' : t.state === 'waiting' ? ' warn' : ''}`}
                        >
                          {TOOL_STATE[t.state]}
                        </span>
                      </li>
                    ))}
                  </ul>
                ) : null}
                {m.error ? <p class="error-text">{m.error}</p> : null}
                {m.citations?.length ? (
                  <details class="sources">
                    <summary>Sources ({m.citations.length})</summary>
                    <ol>
                      {m.citations.map((c) => (
                        <li key={c.n} value={c.n}>
                          <strong>{c.document.name}</strong>, part {c.seq + 1}
                          {c.cited ? <span class="badge">cited</span> : null}
                          <blockquote>{c.text}</blockquote>
                        </li>
                      ))}
                    </ol>
                  </details>
                ) : null}
              </div>
            ))
          )}
        </div>
        {waiting.value ? (
          <section class="tool-confirm card" aria-labelledby="tool-confirm-title">
            <h2 id="tool-confirm-title">The agent wants to use {waiting.value.tool}</h2>
            <p>
              {waiting.value.method && waiting.value.host
                ? `${waiting.value.method} on ${waiting.value.host}: this may change something there.`
                : 'This may change something.'}
            </p>
            <pre class="plain">{waiting.value.arguments}</pre>
            <div class="actions">
              <button
                type="button"
                class="primary"
                disabled={!!streaming.value}
                onClick={() => void answer(true)}
              >
                Confirm
              </button>
              <button type="button" disabled={!!streaming.value} onClick={() => void answer(false)}>
                Decline
              </button>
            </div>
          </section>
        ) : null}
        <ErrorNotice error={turnError.value} />
        <form
          class="composer"
          onSubmit={(e) => {
            e.preventDefault();
            void send();
          }}
        >
          <div class="field">
            <label for="model">Model</label>
            <select
              id="model"
              value={model.value}
              disabled={!!conv.value?.agent}
              title={conv.value?.agent ? "The agent's model" : undefined}
              onChange={(e) => {
                model.value = (e.currentTarget as HTMLSelectElement).value;
              }}
            >
              {(models.data.value?.models ?? []).map((m) => (
                <option key={m.id} value={m.id}>
                  {m.id}
                </option>
              ))}
            </select>
          </div>
          <div class="field grow">
            <label for="message">Message</label>
            <textarea
              id="message"
              rows={3}
              value={draft.value}
              onInput={(e) => {
                draft.value = (e.currentTarget as HTMLTextAreaElement).value;
              }}
              onKeyDown={onKey}
              placeholder="Enter sends; Shift+Enter makes a new line"
            />
          </div>
          <div class="actions">
            {streaming.value ? (
              <button type="button" class="danger" onClick={() => streaming.value?.abort()}>
                Stop
              </button>
            ) : (
              <button type="submit" class="primary" disabled={!draft.value.trim()}>
                Send
              </button>
            )}
          </div>
        </form>
        {models.error.value instanceof ApiError ? <ErrorNotice error={models.error.value} /> : null}
      </main>
    </div>
  );
}

/** Who shares a conversation with an agent: add people (by email) who may use the agent; remove them. */
function Participants({ id }: { id: string }) {
  const r = useResource(
    () =>
      api<{ participants: { user_id: string; name: string; email?: string }[] }>(
        'GET',
        `/api/v1/conversations/${encodeURIComponent(id)}/participants`,
      ),
    [id],
  );
  const email = useSignal('');
  const form = useForm();
  return (
    <section class="card participants" aria-labelledby="participants">
      <h2 id="participants">People in this conversation</h2>
      <p class="muted">
        They read it and chat with the agent here; everyone sees new messages as they come. They need to be
        able to use the agent.
      </p>
      <Async r={r} empty={(d) => (d.participants.length ? null : <p class="muted">Only you so far.</p>)}>
        {(d) => (
          <ul>
            {d.participants.map((p) => (
              <li key={p.user_id}>
                <strong>{p.name || p.email}</strong> <span class="muted">{p.email}</span>{' '}
                <ActionButton
                  label={`Remove ${p.email ?? p.name}`}
                  confirm={`Stop sharing this conversation with ${p.email ?? p.name}?`}
                  onClick={async () => {
                    await api(
                      'DELETE',
                      `/api/v1/conversations/${encodeURIComponent(id)}/participants/${p.user_id}`,
                    );
                    await r.reload();
                  }}
                >
                  Remove
                </ActionButton>
              </li>
            ))}
          </ul>
        )}
      </Async>
      <Form
        state={form}
        label="Add someone"
        onSubmit={async () => {
          await api('POST', `/api/v1/conversations/${encodeURIComponent(id)}/participants`, {
            email: email.value.trim(),
          });
          email.value = '';
          await r.reload();
        }}
      >
        <div class="row">
          <Field label="Email" name="email" type="email" value={email} form={form} required />
        </div>
        <div class="actions">
          <Submit state={form}>Add</Submit>
        </div>
      </Form>
    </section>
  );
}
