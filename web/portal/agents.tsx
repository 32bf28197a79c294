import { useSignal } from '@preact/signals';
import { api } from '../shared/api.ts';
import { me } from '../shared/platform-session.ts';
import { match, navigate, path } from '../shared/router.ts';
import {
  ActionButton,
  Async,
  Empty,
  Field,
  Form,
  Notice,
  StatusBadge,
  Submit,
  Title,
  useForm,
  useResource,
} from '../shared/ui.tsx';
import { boot } from './app.tsx';
import { type Federated, FederationSection } from './federation.tsx';
import { LinkControls, openShareLink, ShareButton } from './sharing.tsx';
import { type Tool, Tools } from './tools.tsx';

/** The agents a user may chat with, and the builder for their own (issue 12). */

export interface Agent {
  id: string;
  slug: string;
  name: string;
  description: string;
  avatar: string | null;
  persona?: string;
  model?: string;
  temperature?: number | null;
  max_tokens?: number | null;
  starter_prompts?: string[];
  visibility: 'private' | 'link' | 'platform';
  latest_version: { version: number; hash: string; published_at: string } | null;
  draft?: {
    name: string;
    description: string;
    avatar: string | null;
    persona: string;
    model: string;
    temperature: number | null;
    max_tokens: number | null;
    starter_prompts: string[];
    tools?: Tool[];
    changed: boolean;
  };
  /** Which tools have a secret (their editors only; never the value). */
  tool_secrets?: { tool: string; header: string; set: boolean }[];
  can_edit: boolean;
  /** Delete, visibility, listing, members: its owner and the admins. */
  can_manage?: boolean;
  /** Your part in it: owner, admin, editor, viewer (shared with you), or null. */
  role?: 'owner' | 'admin' | 'editor' | 'viewer' | null;
}

const mayBuild = () =>
  !!me.value?.permissions.includes('agents:write') && boot.platform.features.agent_creation !== false;

async function chatWith(a: Agent, draft = false) {
  const r = await api<{ conversation: { id: string } }>('POST', '/api/v1/conversations', {
    agent_id: a.id,
    ...(draft ? { draft: true } : {}),
  });
  navigate(`/app/c/${r.conversation.id}`);
}

function Avatar({ a }: { a: { avatar: string | null } }) {
  if (!a.avatar)
    return (
      <span class="avatar" aria-hidden="true">
        🤖
      </span>
    );
  if (a.avatar.startsWith('https://'))
    return <img class="avatar" src={a.avatar} alt="" width={32} height={32} />;
  return (
    <span class="avatar" aria-hidden="true">
      {a.avatar}
    </span>
  );
}

export function Agents() {
  const r = useResource(() => api<{ agents: Agent[] }>('GET', '/api/v1/agents'));
  return (
    <main id="main" class="content page">
      <div class="row heading-row">
        <Title>Agents</Title>
        {mayBuild() ? (
          <div class="actions end">
            <a class="button primary" href="/app/agents/new">
              New agent
            </a>
            {boot.platform.features.agent_marketplace ? (
              <a class="button" href="/app/agents/import">
                Import
              </a>
            ) : null}
          </div>
        ) : null}
      </div>
      <Async
        r={r}
        empty={(d) =>
          d.agents.length ? null : (
            <Empty>
              <p>No agents yet.</p>
              {mayBuild() ? (
                <p>An agent is an assistant with its own instructions: make one for what you do often.</p>
              ) : null}
            </Empty>
          )
        }
      >
        {(d) => (
          <ul class="agent-grid">
            {d.agents.map((a) => (
              <li class="card" key={a.id}>
                <div class="agent-head">
                  <Avatar a={a} />
                  <strong>{a.name}</strong>
                  {a.latest_version ? (
                    <span class="badge">v{a.latest_version.version}</span>
                  ) : (
                    <StatusBadge status="draft" />
                  )}
                  {a.visibility !== 'platform' ? <span class="badge">{a.visibility}</span> : null}
                  {a.role === 'editor' || a.role === 'viewer' ? (
                    <span class="badge">shared with you: {a.role}</span>
                  ) : null}
                </div>
                {a.description ? <p class="muted">{a.description}</p> : null}
                <div class="actions">
                  {a.latest_version ? (
                    <ActionButton class="primary" label={`Chat with ${a.name}`} onClick={() => chatWith(a)}>
                      Chat
                    </ActionButton>
                  ) : null}
                  {a.can_edit ? (
                    <a class="button" href={`/app/agents/${a.id}`} aria-label={`Edit ${a.name}`}>
                      Edit
                    </a>
                  ) : null}
                </div>
              </li>
            ))}
          </ul>
        )}
      </Async>
    </main>
  );
}

export function AgentBuilder() {
  const id = match('/app/agents/:id', path.value)?.id;
  const isNew = !id || id === 'new';
  const r = useResource(async () => {
    if (isNew) return null;
    // Opened through a share link: the server grants access first (sharing.tsx).
    await openShareLink(id!);
    return (await api<{ agent: Agent }>('GET', `/api/v1/agents/${encodeURIComponent(id!)}`)).agent;
  }, [id]);
  const models = useResource(() => api<{ models: { id: string }[] }>('GET', '/api/v1/conversations/models'));
  return (
    <main id="main" class="content page">
      <p>
        <a href="/app/agents">← Agents</a>
      </p>
      <Title>{isNew ? 'New agent' : 'Edit agent'}</Title>
      <Async r={r}>
        {(a) =>
          a && !a.can_edit ? (
            <AgentView a={a} />
          ) : (
            <>
              {!mayBuild() ? (
                <Notice kind="warn">Making and changing agents is not open to you on this platform.</Notice>
              ) : null}
              <Async r={models}>
                {(m) => <BuilderForm a={a} models={m.models.map((x) => x.id)} onSaved={() => r.reload()} />}
              </Async>
            </>
          )
        }
      </Async>
    </main>
  );
}

/** An agent one may use but not edit (shared on the platform, through its link, or installed). */
function AgentView({ a }: { a: Agent }) {
  return (
    <section aria-label={a.name}>
      <p>
        <Avatar a={a} /> <strong>{a.name}</strong>
      </p>
      {a.description ? <p>{a.description}</p> : null}
      <div class="actions">
        {a.latest_version ? (
          <ActionButton class="primary" label={`Chat with ${a.name}`} onClick={() => chatWith(a)}>
            Chat
          </ActionButton>
        ) : null}
        {a.latest_version ? <ShareButton agentId={a.id} /> : null}
      </div>
    </section>
  );
}

function BuilderForm({ a, models, onSaved }: { a: Agent | null; models: string[]; onSaved: () => unknown }) {
  const d = a?.draft;
  const name = useSignal(d?.name ?? '');
  const description = useSignal(d?.description ?? '');
  const avatar = useSignal(d?.avatar ?? '');
  const persona = useSignal(d?.persona ?? '');
  const model = useSignal(d?.model ?? models[0] ?? '');
  const temperature = useSignal(d?.temperature == null ? '' : String(d.temperature));
  const maxTokens = useSignal(d?.max_tokens == null ? '' : String(d.max_tokens));
  const starters = useSignal((d?.starter_prompts ?? []).join('\n'));
  const visibility = useSignal(a?.visibility ?? 'private');
  const saved = useSignal<string | null>(null);
  const listed = useSignal<{ id: string; status: string; review_note: string | null } | null>(null);
  const form = useForm();
  const body = () => ({
    name: name.value,
    description: description.value,
    avatar: avatar.value.trim() || null,
    persona: persona.value,
    model: model.value,
    temperature: temperature.value.trim() === '' ? null : Number(temperature.value),
    max_tokens: maxTokens.value.trim() === '' ? null : Number(maxTokens.value),
    starter_prompts: starters.value
      .split('\n')
      .map((x) => x.trim())
      .filter(Boolean),
    visibility: visibility.value,
  });
  return (
    <>
      <Form
        state={form}
        label="Agent"
        onSubmit={async () => {
          saved.value = null;
          if (!a) {
            const r = await api<{ agent: Agent }>('POST', '/api/v1/agents', body());
            navigate(`/app/agents/${r.agent.id}`, true);
            return;
          }
          await api('PATCH', `/api/v1/agents/${a.id}`, body());
          saved.value = 'Draft saved';
          await onSaved();
        }}
      >
        <div class="row">
          <Field label="Name" name="name" value={name} form={form} required maxLength={100} />
          <Field
            label="Avatar"
            name="avatar"
            value={avatar}
            form={form}
            hint="an emoji, or an https: image URL"
          />
        </div>
        <Field label="Description" name="description" value={description} form={form} maxLength={2000} />
        <div class="field">
          <label for="persona">Instructions</label>
          <textarea
            id="persona"
            name="persona"
            value={persona.value}
            aria-describedby="persona-hint"
            onInput={(e) => {
              persona.value = (e.currentTarget as HTMLTextAreaElement).value;
            }}
          />
          <div class="hint" id="persona-hint">
            What the agent is and how it answers (its system prompt).
          </div>
        </div>
        <div class="row">
          <div class="field">
            <label for="agent-model">Model</label>
            <select
              id="agent-model"
              value={model.value}
              onChange={(e) => {
                model.value = (e.currentTarget as HTMLSelectElement).value;
              }}
            >
              {models.map((m) => (
                <option key={m} value={m}>
                  {m}
                </option>
              ))}
            </select>
          </div>
          <Field
            label="Temperature"
            name="temperature"
            type="number"
            value={temperature}
            form={form}
            min={0}
            max={2}
            step="0.1"
            hint="0–2, empty: the model's"
          />
          <Field
            label="Longest answer (tokens)"
            name="max_tokens"
            type="number"
            value={maxTokens}
            form={form}
            min={1}
          />
        </div>
        <div class="field">
          <label for="starters">Starter prompts (one per line, up to 6)</label>
          <textarea
            id="starters"
            name="starter_prompts"
            value={starters.value}
            onInput={(e) => {
              starters.value = (e.currentTarget as HTMLTextAreaElement).value;
            }}
          />
        </div>
        <div class="field">
          <label for="visibility">Who can use it</label>
          <select
            id="visibility"
            disabled={!!a && a.can_manage === false}
            value={visibility.value}
            onChange={(e) => {
              visibility.value = (e.currentTarget as HTMLSelectElement).value as Agent['visibility'];
            }}
          >
            <option value="private">Only me (and the platform's admins)</option>
            <option value="link">
              People on {boot.platform.name} who have its share link, once published
            </option>
            <option value="platform">Everyone on {boot.platform.name}, once published</option>
          </select>
        </div>
        <div class="actions">
          <Submit state={form}>{a ? 'Save draft' : 'Create agent'}</Submit>
        </div>
        {saved.value ? <Notice>{saved.value}</Notice> : null}
      </Form>
      {a ? <Knowledge a={a} /> : null}
      {a?.visibility === 'link' ? <LinkControls agentId={a.id} /> : null}
      {a ? <Members a={a} /> : null}
      {a ? (
        <Tools agentId={a.id} tools={a.draft?.tools ?? []} secrets={a.tool_secrets ?? []} onSaved={onSaved} />
      ) : null}
      {a ? <FederationSection a={a as Agent & Federated} /> : null}
      {a ? (
        <section aria-labelledby="publish">
          <h2 id="publish">Publish</h2>
          <p>
            {a.latest_version
              ? `Version ${a.latest_version.version} is live${a.draft?.changed ? '; the draft has changes since.' : ' and the draft is the same.'}`
              : 'Not published yet: only you can chat with the draft.'}
          </p>
          <div class="actions">
            <ActionButton onClick={() => chatWith(a, true)}>Test the draft</ActionButton>
            {a.draft?.changed ? (
              <ActionButton
                class="primary"
                confirm="Publish the draft as a new version? People who chat with this agent get it from their next conversation."
                onClick={async () => {
                  const r = await api<{ version: { version: number } }>(
                    'POST',
                    `/api/v1/agents/${a.id}/publish`,
                  );
                  saved.value = `Version ${r.version.version} published`;
                  await onSaved();
                }}
              >
                Publish
              </ActionButton>
            ) : null}
            {a.latest_version ? (
              <ActionButton class="" label={`Chat with ${a.name}`} onClick={() => chatWith(a)}>
                Chat with the live version
              </ActionButton>
            ) : null}
            {a.latest_version && boot.platform.features.agent_marketplace && a.can_manage !== false ? (
              <ActionButton
                onClick={async () => {
                  listed.value = null;
                  const r = await api<{
                    listing: { id: string; status: string; review_note: string | null };
                  }>('POST', `/api/v1/agents/${a.id}/listing`, {});
                  listed.value = r.listing;
                }}
              >
                List in the marketplace
              </ActionButton>
            ) : null}
            {a.can_manage !== false ? (
              <ActionButton
                class="danger"
                confirm={`Delete ${a.name} and its versions? Conversations with it stay, as plain chats.`}
                onClick={async () => {
                  await api('DELETE', `/api/v1/agents/${a.id}`);
                  navigate('/app/agents');
                }}
              >
                Delete
              </ActionButton>
            ) : null}
            {a.latest_version ? <ShareButton agentId={a.id} /> : null}
          </div>
          {listed.value ? (
            <Notice kind={listed.value.status === 'published' ? 'ok' : 'warn'}>
              {listedMessage(listed.value)}{' '}
              <a href={`/app/marketplace/${listed.value.id}`}>See the listing</a>
            </Notice>
          ) : null}
        </section>
      ) : null}
    </>
  );
}

/** What listing an agent did, by the status the platform's process gave it. */
function listedMessage(l: { status: string; review_note: string | null }): string {
  if (l.status === 'published') return 'Listed in the marketplace.';
  if (l.status === 'submitted')
    return 'Submitted to the community: it is listed once enough members approve it.';
  if (l.review_note?.startsWith('safety:'))
    return `Held by the platform's safety checks (${l.review_note}): it is listed once the moderators approve it.`;
  return 'Sent to the moderators: it is listed once they approve it.';
}

interface Doc {
  id: string;
  name: string;
  content_type: string;
  bytes: number;
  chunks: number;
  created_at: string;
}

/** The type the server reads a file as, by its name; null for what it does not read. */
function typeOf(name: string): string | null {
  const ext = /\.([a-z0-9]+)$/i.exec(name)?.[1]?.toLowerCase();
  return ext === 'txt'
    ? 'text/plain'
    : ext === 'md' || ext === 'markdown'
      ? 'text/markdown'
      : ext === 'html' || ext === 'htm'
        ? 'text/html'
        : ext === 'pdf'
          ? 'application/pdf'
          : null;
}

/** The agent's documents: upload (each file's progress: reading, embedding, done or its error). */
function Knowledge({ a }: { a: Agent }) {
  const docs = useResource(
    () => api<{ documents: Doc[] }>('GET', `/api/v1/agents/${a.id}/knowledge`),
    [a.id],
  );
  const uploads = useSignal<{ name: string; state: string; error?: string }[]>([]);
  const set = (i: number, state: string, error?: string) => {
    uploads.value = uploads.value.map((u, j) => (j === i ? { ...u, state, error } : u));
  };
  const add = async (files: FileList) => {
    const list = [...files];
    const start = uploads.value.length;
    uploads.value = [...uploads.value, ...list.map((f) => ({ name: f.name, state: 'waiting' }))];
    for (const [k, f] of list.entries()) {
      const i = start + k;
      const type = typeOf(f.name);
      if (!type) {
        set(i, 'refused', 'Text, Markdown, HTML and PDF files are read.');
        continue;
      }
      set(i, 'embedding');
      try {
        // The file itself is the body; the server reads it (PDF text, HTML's visible text).
        await api('POST', `/api/v1/agents/${a.id}/knowledge?name=${encodeURIComponent(f.name)}`, undefined, {
          raw: f,
          headers: { 'content-type': type },
        });
        set(i, 'added');
        await docs.reload();
      } catch (e) {
        set(i, 'failed', (e as Error).message);
      }
    }
  };
  return (
    <section aria-labelledby="knowledge">
      <h2 id="knowledge">Knowledge</h2>
      <p class="muted">
        Documents the agent searches and cites when it answers: text, Markdown, HTML and PDF files.
      </p>
      <div class="field">
        <label for="knowledge-files">Add documents</label>
        <input
          id="knowledge-files"
          type="file"
          multiple
          accept=".txt,.md,.markdown,.html,.htm,.pdf,text/plain,text/markdown,text/html,application/pdf"
          onChange={(e) => {
            const files = (e.currentTarget as HTMLInputElement).files;
            if (files?.length) void add(files);
            (e.currentTarget as HTMLInputElement).value = '';
          }}
        />
      </div>
      {uploads.value.length ? (
        <ul class="uploads" aria-live="polite">
          {uploads.value.map((u, i) => (
            <li key={`${u.name}-${i}`}>
              {u.name}: <StatusBadge status={u.state} />
              {u.state === 'embedding' ? <progress aria-label={`Embedding ${u.name}`} /> : null}
              {u.error ? <span class="error-text"> {u.error}</span> : null}
            </li>
          ))}
        </ul>
      ) : null}
      <Async r={docs} empty={(d) => (d.documents.length ? null : <p class="muted">No documents yet.</p>)}>
        {(d) => (
          <ul class="docs">
            {d.documents.map((x) => (
              <li key={x.id}>
                <strong>{x.name}</strong>{' '}
                <span class="muted">
                  {Math.ceil(x.bytes / 1024)} KB, {x.chunks} parts
                </span>{' '}
                <ActionButton
                  label={`Remove ${x.name}`}
                  confirm={`Remove ${x.name} from the agent's knowledge?`}
                  onClick={async () => {
                    await api('DELETE', `/api/v1/agents/${a.id}/knowledge/${x.id}`);
                    await docs.reload();
                  }}
                >
                  Remove
                </ActionButton>
              </li>
            ))}
          </ul>
        )}
      </Async>
    </section>
  );
}

interface Member {
  user_id: string;
  email: string;
  name: string;
  role: 'editor' | 'viewer';
}

/**
 * Who else works on the agent: its owner adds editors (change the draft, publish) and viewers
 * (use it, even private) by email, changes their role, removes them; editors see the list.
 */
function Members({ a }: { a: Agent }) {
  const r = useResource(
    () =>
      api<{ owner: { user_id: string; email: string; name: string } | null; members: Member[] }>(
        'GET',
        `/api/v1/agents/${a.id}/members`,
      ),
    [a.id],
  );
  const email = useSignal('');
  const role = useSignal<'editor' | 'viewer'>('viewer');
  const form = useForm();
  const manage = a.can_manage !== false;
  return (
    <section aria-labelledby="members">
      <h2 id="members">Members</h2>
      <p class="muted">
        Editors change the draft and its knowledge and publish; viewers chat with the live version, even when
        the agent is private. Only the owner deletes it, changes who sees it or its members.
      </p>
      <Async r={r}>
        {(d) => (
          <ul class="members">
            {d.owner ? (
              <li>
                <strong>{d.owner.name || d.owner.email}</strong> <span class="muted">{d.owner.email}</span>{' '}
                <span class="badge">owner</span>
              </li>
            ) : null}
            {d.members.map((m) => (
              <li key={m.user_id}>
                <strong>{m.name || m.email}</strong> <span class="muted">{m.email}</span>{' '}
                {manage ? (
                  <>
                    <select
                      aria-label={`Role of ${m.email}`}
                      value={m.role}
                      onChange={async (e) => {
                        const v = (e.currentTarget as HTMLSelectElement).value;
                        try {
                          await api('PATCH', `/api/v1/agents/${a.id}/members/${m.user_id}`, { role: v });
                        } finally {
                          await r.reload();
                        }
                      }}
                    >
                      <option value="editor">editor</option>
                      <option value="viewer">viewer</option>
                    </select>{' '}
                    <ActionButton
                      label={`Remove ${m.email}`}
                      confirm={`Remove ${m.email}? They lose access to this agent at once.`}
                      onClick={async () => {
                        await api('DELETE', `/api/v1/agents/${a.id}/members/${m.user_id}`);
                        await r.reload();
                      }}
                    >
                      Remove
                    </ActionButton>
                  </>
                ) : (
                  <span class="badge">{m.role}</span>
                )}
              </li>
            ))}
          </ul>
        )}
      </Async>
      {manage ? (
        <Form
          state={form}
          label="Add a member"
          onSubmit={async () => {
            await api('POST', `/api/v1/agents/${a.id}/members`, {
              email: email.value.trim(),
              role: role.value,
            });
            email.value = '';
            await r.reload();
          }}
        >
          <div class="row">
            <Field label="Email" name="email" type="email" value={email} form={form} required />
            <div class="field">
              <label for="member-role">Role</label>
              <select
                id="member-role"
                value={role.value}
                onChange={(e) => {
                  role.value = (e.currentTarget as HTMLSelectElement).value as 'editor' | 'viewer';
                }}
              >
                <option value="viewer">Viewer: chats with it</option>
                <option value="editor">Editor: changes and publishes it</option>
              </select>
            </div>
          </div>
          <div class="actions">
            <Submit state={form}>Add member</Submit>
          </div>
        </Form>
      ) : null}
    </section>
  );
}
