import { useSignal } from '@preact/signals';
import { api } from '../shared/api.ts';
import { when } from '../shared/format.ts';
import {
  ActionButton,
  Async,
  Empty,
  Field,
  Form,
  Notice,
  Submit,
  Title,
  useForm,
  useResource,
} from '../shared/ui.tsx';
import { boot } from './app.tsx';

/**
 * The instance's ecosystem catalog (issue 12 item 8): what this server's platforms share with
 * each other. Admins share a published agent (with a revenue share to this platform), withdraw
 * what they shared, and import what others shared.
 */

interface Entry {
  id: string;
  title: string;
  summary: string;
  agent: { name: string; avatar: string | null; model: string; version: number; hash: string };
  attribution: { platform: { slug: string; name: string }; creator: string | null };
  revenue_share_percent: number;
  imports: number;
  own: boolean;
  shared_at: string;
}

interface AgentRow {
  id: string;
  name: string;
  latest_version: { version: number } | null;
  imported_from: unknown;
}

export function Catalog() {
  const r = useResource(() => api<{ entries: Entry[] }>('GET', '/api/v1/federation/catalog'));
  const done = useSignal<string | null>(null);
  return (
    <>
      <Title>Ecosystem catalog</Title>
      <p class="muted">
        What the platforms of this server share with each other. Each entry keeps its source's name, and the
        revenue share it asks for is recorded for billing.
      </p>
      <Share onShared={() => r.reload()} />
      {done.value ? <Notice>{done.value}</Notice> : null}
      <h2>Shared on this server</h2>
      <Async r={r} empty={(d) => (d.entries.length ? null : <Empty>Nothing is shared yet.</Empty>)}>
        {(d) => (
          <ul class="queue">
            {d.entries.map((e) => (
              <li class="card" key={e.id}>
                <div class="agent-head">
                  <strong>{e.title}</strong>{' '}
                  <span class="muted">
                    {e.agent.name}, version {e.agent.version}, from{' '}
                    {e.own ? 'this platform' : e.attribution.platform.name}
                    {e.attribution.creator ? ` (by ${e.attribution.creator})` : ''}
                  </span>
                </div>
                <p>{e.summary}</p>
                <p class="muted">
                  Shared {when(e.shared_at)}; {e.imports} import{e.imports === 1 ? '' : 's'}; revenue share to
                  its source: {e.revenue_share_percent}%
                </p>
                <div class="actions">
                  {e.own ? (
                    <ActionButton
                      class="danger"
                      confirm={`Withdraw ${e.title} from the catalog? Copies already imported stay.`}
                      onClick={async () => {
                        await api('DELETE', `/api/v1/federation/catalog/${e.id}`);
                        done.value = `${e.title} withdrawn`;
                        await r.reload();
                      }}
                    >
                      Withdraw
                    </ActionButton>
                  ) : (
                    <ActionButton
                      class="primary"
                      onClick={async () => {
                        await api('POST', `/api/v1/federation/catalog/${e.id}/import`);
                        done.value = `${e.title} imported: it is your agent on ${boot.platform.name} now`;
                        await r.reload();
                      }}
                    >
                      Import {e.title}
                    </ActionButton>
                  )}
                </div>
              </li>
            ))}
          </ul>
        )}
      </Async>
    </>
  );
}

function Share({ onShared }: { onShared: () => unknown }) {
  const agents = useResource(() => api<{ agents: AgentRow[] }>('GET', '/api/v1/agents'));
  const agentId = useSignal('');
  const summary = useSignal('');
  const share = useSignal('0');
  const saved = useSignal<string | null>(null);
  const form = useForm();
  const shareable = (agents.data.value?.agents ?? []).filter((a) => a.latest_version && !a.imported_from);
  return (
    <section aria-labelledby="share">
      <h2 id="share">Share an agent</h2>
      <Form
        state={form}
        label="Share an agent in the catalog"
        onSubmit={async () => {
          const r = await api<{ entry: Entry }>('POST', '/api/v1/federation/catalog', {
            agent_id: agentId.value,
            ...(summary.value.trim() ? { summary: summary.value.trim() } : {}),
            revenue_share_percent: Number(share.value),
          });
          saved.value = `${r.entry.title} (version ${r.entry.agent.version}) is in the catalog`;
          await onShared();
        }}
      >
        <div class="field">
          <label for="share-agent">Agent (its latest published version)</label>
          <select
            id="share-agent"
            value={agentId.value}
            onChange={(e) => {
              agentId.value = (e.currentTarget as HTMLSelectElement).value;
            }}
          >
            <option value="">Choose an agent</option>
            {shareable.map((a) => (
              <option key={a.id} value={a.id}>
                {a.name} (version {a.latest_version!.version})
              </option>
            ))}
          </select>
        </div>
        <Field label="Summary" name="summary" value={summary} form={form} maxLength={500} />
        <Field
          label="Revenue share to this platform (%)"
          name="revenue_share_percent"
          value={share}
          form={form}
          type="number"
          min={0}
          max={100}
          step="0.01"
        />
        <div class="actions">
          <Submit state={form}>Share</Submit>
        </div>
      </Form>
      {saved.value ? <Notice>{saved.value}</Notice> : null}
    </section>
  );
}
