import { useSignal } from '@preact/signals';
import { api } from '../shared/api.ts';
import { ActionButton, Field, Form, Notice, Submit, useForm, useResource } from '../shared/ui.tsx';

/** The builder's tools editor: an agent's HTTP actions, each one's secret header (issue 12 item 3). */

export interface Tool {
  name: string;
  description: string;
  kind: 'http';
  method: string;
  url: string;
  parameters: Record<string, unknown>;
  query?: string[];
  safe: boolean;
  operation_id?: string;
  timeout_ms?: number;
  max_bytes?: number;
}

const METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE'];
const EMPTY_SCHEMA = '{\n  "type": "object",\n  "properties": {},\n  "required": []\n}';

/** Whether a call of the tool asks the user first. */
const asks = (t: Tool) => !t.safe && t.method !== 'GET' && t.method !== 'HEAD';

export function Tools({
  agentId,
  tools,
  secrets,
  onSaved,
}: {
  agentId: string;
  tools: Tool[];
  secrets: { tool: string; header: string; set: boolean }[];
  onSaved: () => unknown;
}) {
  const hosts = useResource(() => api<{ hosts: string[] }>('GET', '/api/v1/platform/tool-hosts'), []);
  const editing = useSignal<number | null>(null);
  const saveTools = async (next: unknown[]) => {
    await api('PATCH', `/api/v1/agents/${agentId}`, { tools: next });
    editing.value = null;
    await onSaved();
  };
  const allowed = hosts.data.value?.hosts;
  return (
    <section aria-labelledby="tools">
      <h2 id="tools">Tools</h2>
      <p class="muted">
        HTTP actions the agent may call while it answers. A call that changes something (POST, PUT, PATCH,
        DELETE) asks the user first, unless you mark the tool safe.
        {allowed ? (
          allowed.length ? (
            <> Hosts this platform allows: {allowed.join(', ')}.</>
          ) : (
            <> This platform allows no hosts yet: its admins choose them.</>
          )
        ) : null}
      </p>
      {tools.length ? (
        <ul class="tools">
          {tools.map((t, i) => {
            const secret = secrets.find((s) => s.tool === t.name);
            return (
              <li key={t.name} class="card">
                <div class="agent-head">
                  <strong>{t.name}</strong>
                  <span class="badge">{t.method}</span>
                  {t.safe ? <span class="badge">safe</span> : null}
                  {asks(t) ? <span class="badge warn">asks first</span> : null}
                  {secret ? <span class="badge">secret in {secret.header}</span> : null}
                </div>
                <p class="muted">
                  <code>{t.url}</code>
                  {t.description ? ` — ${t.description}` : ''}
                </p>
                <div class="actions">
                  <button type="button" onClick={() => (editing.value = editing.value === i ? null : i)}>
                    {editing.value === i ? 'Close' : 'Edit'}
                  </button>
                  <ActionButton
                    class="danger"
                    label={`Remove ${t.name}`}
                    confirm={`Remove the tool ${t.name} from the draft?`}
                    onClick={() => saveTools(tools.filter((_, j) => j !== i))}
                  >
                    Remove
                  </ActionButton>
                </div>
                {editing.value === i ? (
                  <ToolForm
                    index={i}
                    initial={t}
                    onSave={(x) => saveTools(tools.map((y, j) => (j === i ? x : y)))}
                  />
                ) : null}
                <SecretForm agentId={agentId} tool={t.name} secret={secret} onSaved={onSaved} />
              </li>
            );
          })}
        </ul>
      ) : (
        <p class="muted">No tools yet.</p>
      )}
      {tools.length < 8 ? (
        <details class="add-tool">
          <summary>Add a tool</summary>
          <ToolForm key={tools.length} index={tools.length} onSave={(x) => saveTools([...tools, x])} />
        </details>
      ) : null}
    </section>
  );
}

/** One tool, described directly or by an OpenAPI operation (the server derives the rest). */
function ToolForm({
  index,
  initial,
  onSave,
}: {
  index: number;
  initial?: Tool;
  onSave: (t: Record<string, unknown>) => Promise<void>;
}) {
  const kind = useSignal<'http' | 'openapi'>('http');
  const name = useSignal(initial?.name ?? '');
  const description = useSignal(initial?.description ?? '');
  const method = useSignal(initial?.method ?? 'GET');
  const url = useSignal(initial?.url ?? '');
  const params = useSignal(initial ? JSON.stringify(initial.parameters, null, 2) : EMPTY_SCHEMA);
  const doc = useSignal('');
  const operation = useSignal('');
  const safe = useSignal(initial?.safe ?? false);
  const local = useSignal<string | null>(null);
  const form = useForm();
  const p = `tools/${index}`;
  const id = `tool-${index}`;
  return (
    <Form
      state={form}
      label={initial ? `Edit ${initial.name}` : 'New tool'}
      onSubmit={async () => {
        local.value = null;
        if (kind.value === 'openapi') {
          await onSave({
            kind: 'openapi',
            openapi: doc.value,
            operation_id: operation.value.trim(),
            ...(name.value.trim() ? { name: name.value.trim() } : {}),
            safe: safe.value,
          });
          return;
        }
        let parameters: unknown;
        try {
          parameters = JSON.parse(params.value);
        } catch {
          local.value = 'The parameters are not JSON.';
          return;
        }
        await onSave({
          ...(initial ?? {}),
          kind: 'http',
          name: name.value.trim(),
          description: description.value,
          method: method.value,
          url: url.value.trim(),
          parameters,
          safe: safe.value,
        });
      }}
    >
      {initial ? null : (
        <div class="field">
          <label for={`${id}-kind`}>Described by</label>
          <select
            id={`${id}-kind`}
            value={kind.value}
            onChange={(e) => {
              kind.value = (e.currentTarget as HTMLSelectElement).value as 'http' | 'openapi';
            }}
          >
            <option value="http">A URL and a JSON schema of its arguments</option>
            <option value="openapi">An operation of an OpenAPI 3 document</option>
          </select>
        </div>
      )}
      {kind.value === 'openapi' ? (
        <>
          <div class="field">
            <label for={`${id}-doc`}>OpenAPI document (JSON)</label>
            <textarea
              id={`${id}-doc`}
              rows={8}
              value={doc.value}
              onInput={(e) => {
                doc.value = (e.currentTarget as HTMLTextAreaElement).value;
              }}
            />
          </div>
          <Field label="Operation id" name={`${p}/operation_id`} value={operation} form={form} required />
          <Field label="Name" name={`${p}/name`} value={name} form={form} hint="default: the operation id" />
        </>
      ) : (
        <>
          <div class="row">
            <Field label="Name" name={`${p}/name`} value={name} form={form} required maxLength={64} />
            <div class="field">
              <label for={`${id}-method`}>Method</label>
              <select
                id={`${id}-method`}
                value={method.value}
                onChange={(e) => {
                  method.value = (e.currentTarget as HTMLSelectElement).value;
                }}
              >
                {METHODS.map((m) => (
                  <option key={m} value={m}>
                    {m}
                  </option>
                ))}
              </select>
            </div>
          </div>
          <Field
            label="Description"
            name={`${p}/description`}
            value={description}
            form={form}
            maxLength={1000}
          />
          <Field
            label="URL"
            name={`${p}/url`}
            value={url}
            form={form}
            required
            hint="https://api.example.com/items/{id}: {arguments} in the path"
          />
          <div class="field">
            <label for={`${id}-params`}>Arguments (a JSON schema of type object)</label>
            <textarea
              id={`${id}-params`}
              rows={6}
              value={params.value}
              onInput={(e) => {
                params.value = (e.currentTarget as HTMLTextAreaElement).value;
              }}
            />
          </div>
        </>
      )}
      <div class="field">
        <label>
          <input
            type="checkbox"
            checked={safe.value}
            onChange={(e) => {
              safe.value = (e.currentTarget as HTMLInputElement).checked;
            }}
          />{' '}
          Safe: run it without asking the user, even when it changes something
        </label>
      </div>
      {local.value ? <Notice kind="warn">{local.value}</Notice> : null}
      <div class="actions">
        <Submit state={form}>{initial ? 'Save tool' : 'Add tool'}</Submit>
      </div>
    </Form>
  );
}

/** A tool's secret header: set (never shown again) or removed. */
function SecretForm({
  agentId,
  tool,
  secret,
  onSaved,
}: {
  agentId: string;
  tool: string;
  secret?: { header: string };
  onSaved: () => unknown;
}) {
  const header = useSignal(secret?.header ?? 'authorization');
  const value = useSignal('');
  const form = useForm();
  return (
    <details class="tool-secret">
      <summary>{secret ? `Secret set (${secret.header})` : 'Set a secret header'}</summary>
      <Form
        state={form}
        label={`Secret of ${tool}`}
        onSubmit={async () => {
          await api('PUT', `/api/v1/agents/${agentId}/tools/${encodeURIComponent(tool)}/secret`, {
            header: header.value.trim() || undefined,
            value: value.value,
          });
          value.value = '';
          await onSaved();
        }}
      >
        <div class="row">
          <Field label="Header" name="header" value={header} form={form} maxLength={64} />
          <Field
            label="Value"
            name="value"
            type="password"
            value={value}
            form={form}
            required
            autocomplete="off"
            hint="e.g. Bearer …; stored sealed, never shown again"
          />
        </div>
        <div class="actions">
          <Submit state={form}>Set secret</Submit>
          {secret ? (
            <ActionButton
              class="danger"
              onClick={async () => {
                await api('DELETE', `/api/v1/agents/${agentId}/tools/${encodeURIComponent(tool)}/secret`);
                await onSaved();
              }}
            >
              Remove secret
            </ActionButton>
          ) : null}
        </div>
      </Form>
    </details>
  );
}
