import { useSignal } from '@preact/signals';
import { ApiError, api } from '../shared/api.ts';
import { navigate } from '../shared/router.ts';
import { ActionButton, Form, Notice, Submit, Title, useForm, useResource } from '../shared/ui.tsx';
import type { Agent } from './agents.tsx';
import { boot } from './app.tsx';

/**
 * Federation in the portal (issue 12 item 8): export a version as a signed package, revoke a
 * version (its imported copies stop), and import a package as a new agent.
 */

/** Where an imported agent came from, and whether its version was revoked. */
export interface Federated {
  imported_from?: {
    platform: { name: string; slug: string };
    creator: string | null;
    version: number;
    model_from?: string;
  } | null;
  revoked?: { reason: string; revoked_at: string } | null;
}

/** Saves `text` as a file the browser downloads. */
function download(name: string, text: string) {
  const url = URL.createObjectURL(new Blob([text], { type: 'application/json' }));
  const a = document.createElement('a');
  a.href = url;
  a.download = name;
  document.body.append(a);
  a.click();
  a.remove();
  URL.revokeObjectURL(url);
}

/** The builder's federation part: where it came from, export, revoke. */
export function FederationSection({ a }: { a: Agent & Federated }) {
  const reason = useSignal('');
  const done = useSignal<string | null>(null);
  const v = a.latest_version;
  const from = a.imported_from;
  if (!v && !from) return null;
  return (
    <section aria-labelledby="federation">
      <h2 id="federation">Share beyond {boot.platform.name}</h2>
      {from ? (
        <p>
          Imported from {from.platform.name}
          {from.creator ? `, made by ${from.creator}` : ''} (its version {from.version})
          {from.model_from ? `; it used the model ${from.model_from} there` : ''}.
        </p>
      ) : null}
      {a.revoked ? (
        <Notice kind="error">
          Revoked at its source: {a.revoked.reason}. It no longer runs; you may delete it.
        </Notice>
      ) : null}
      {v && !from && boot.platform.features.agent_marketplace ? (
        <>
          <p class="muted">
            A signed package of version {v.version} can be imported by another platform of this server, or of
            another server whose operator trusts this one.
          </p>
          <div class="actions">
            <ActionButton
              onClick={async () => {
                const pkg = await api<unknown>('GET', `/api/v1/agents/${a.id}/versions/${v.version}/package`);
                download(`${a.slug}-v${v.version}.agent.json`, JSON.stringify(pkg, null, 2));
                done.value = `Version ${v.version} exported`;
              }}
            >
              Export version {v.version}
            </ActionButton>
          </div>
        </>
      ) : null}
      {v && !a.revoked ? (
        <>
          <div class="field">
            <label for="revoke-reason">Reason to revoke version {v.version}</label>
            <input
              id="revoke-reason"
              value={reason.value}
              onInput={(e) => {
                reason.value = (e.currentTarget as HTMLInputElement).value;
              }}
            />
          </div>
          <div class="actions">
            <ActionButton
              class="danger"
              confirm={`Revoke version ${v.version}? It stops working here and wherever it was imported; this cannot be undone.`}
              onClick={async () => {
                await api('POST', `/api/v1/agents/${a.id}/versions/${v.version}/revoke`, {
                  reason: reason.value,
                });
                done.value = `Version ${v.version} revoked`;
              }}
            >
              Revoke version {v.version}
            </ActionButton>
          </div>
        </>
      ) : null}
      {done.value ? <Notice>{done.value}</Notice> : null}
    </section>
  );
}

/** /app/agents/import: paste or upload a package; a model this platform lacks is mapped on request. */
export function ImportAgent() {
  const text = useSignal('');
  const model = useSignal('');
  const needsModel = useSignal(false);
  const form = useForm();
  const models = useResource(() => api<{ models: { id: string }[] }>('GET', '/api/v1/conversations/models'));
  return (
    <main id="main" class="content page">
      <p>
        <a href="/app/agents">← Agents</a>
      </p>
      <Title>Import an agent</Title>
      <p class="muted">
        A package exported from another platform: its signature, its source's key and whether it was revoked
        are checked before it becomes your agent.
      </p>
      <Form
        state={form}
        label="Import an agent package"
        onSubmit={async () => {
          let pkg: unknown;
          try {
            pkg = JSON.parse(text.value);
          } catch {
            throw new ApiError(400, 'federation.invalid', 'the package is not JSON', [
              { path: '/package', reason: 'is not JSON' },
            ]);
          }
          const q = needsModel.value && model.value ? `?model=${encodeURIComponent(model.value)}` : '';
          try {
            const r = await api<{ agent: { id: string } }>('POST', `/api/v1/agents/import${q}`, pkg);
            navigate(`/app/agents/${r.agent.id}`);
          } catch (e) {
            if (e instanceof ApiError && e.code === 'federation.model_unavailable') needsModel.value = true;
            throw e;
          }
        }}
      >
        <div class="field">
          <label for="package-file">Package file</label>
          <input
            id="package-file"
            type="file"
            accept="application/json,.json"
            onChange={async (e) => {
              const f = (e.currentTarget as HTMLInputElement).files?.[0];
              if (f) text.value = await f.text();
            }}
          />
        </div>
        <div class="field">
          <label for="package-text">Or paste it</label>
          <textarea
            id="package-text"
            rows={10}
            value={text.value}
            onInput={(e) => {
              text.value = (e.currentTarget as HTMLTextAreaElement).value;
            }}
          />
        </div>
        {needsModel.value ? (
          <div class="field">
            <label for="import-model">Run it on this platform's model</label>
            <select
              id="import-model"
              value={model.value}
              onChange={(e) => {
                model.value = (e.currentTarget as HTMLSelectElement).value;
              }}
            >
              <option value="">Choose a model</option>
              {(models.data.value?.models ?? []).map((m) => (
                <option key={m.id} value={m.id}>
                  {m.id}
                </option>
              ))}
            </select>
          </div>
        ) : null}
        <div class="actions">
          <Submit state={form}>Import</Submit>
        </div>
      </Form>
    </main>
  );
}
