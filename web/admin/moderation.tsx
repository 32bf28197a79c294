import { useSignal } from '@preact/signals';
import { api } from '../shared/api.ts';
import { when } from '../shared/format.ts';
import {
  Async,
  Empty,
  ErrorNotice,
  Field,
  Form,
  StatusBadge,
  Submit,
  Title,
  useForm,
  useResource,
} from '../shared/ui.tsx';

/**
 * The marketplace's moderation queue: listings in review or waiting for the community, and
 * listings with open reports; each can be decided on or edited (with a reason).
 */

interface QueuedListing {
  id: string;
  title: string;
  summary: string;
  category: string;
  tags: string[];
  status: string;
  review_note: string | null;
  agent: { id: string; name: string; version: number };
  reports: { id: number; reason: string; created_at: string }[];
}

const ACTIONS: Record<string, string[]> = {
  submitted: ['approve', 'reject', 'revoke'],
  in_review: ['approve', 'reject', 'revoke'],
  published: ['dismiss', 'suspend', 'revoke'],
  suspended: ['restore', 'revoke'],
};

export function Moderation() {
  const r = useResource(() => api<{ listings: QueuedListing[] }>('GET', '/api/v1/moderation/listings'));
  return (
    <>
      <Title>Moderation</Title>
      <p class="muted">Every action needs a reason; it is kept in the audit trail with the creator's name.</p>
      <Async r={r} empty={(d) => (d.listings.length ? null : <Empty>Nothing waits for you.</Empty>)}>
        {(d) => (
          <ul class="queue">
            {d.listings.map((l) => (
              <QueueItem key={l.id} l={l} onDone={() => r.reload()} />
            ))}
          </ul>
        )}
      </Async>
    </>
  );
}

function QueueItem({ l, onDone }: { l: QueuedListing; onDone: () => unknown }) {
  const reason = useSignal('');
  const error = useSignal<unknown>(null);
  const busy = useSignal(false);
  const act = async (action: string) => {
    busy.value = true;
    error.value = null;
    try {
      await api('POST', `/api/v1/moderation/listings/${l.id}`, { action, reason: reason.value });
      await onDone();
    } catch (e) {
      error.value = e;
    } finally {
      busy.value = false;
    }
  };
  const id = `reason-${l.id}`;
  return (
    <li class="card">
      <div class="agent-head">
        <strong>{l.title}</strong> <StatusBadge status={l.status} />{' '}
        <span class="muted">
          {l.agent.name}, version {l.agent.version}
        </span>
      </div>
      <p>{l.summary}</p>
      {l.review_note ? <p class="muted">In review: {l.review_note}</p> : null}
      {l.reports.length ? (
        <ul>
          {l.reports.map((x) => (
            <li key={x.id}>
              Reported {when(x.created_at)}: {x.reason}
            </li>
          ))}
        </ul>
      ) : null}
      <div class="field">
        <label for={id}>Reason for {l.title}</label>
        <input
          id={id}
          value={reason.value}
          onInput={(e) => {
            reason.value = (e.currentTarget as HTMLInputElement).value;
          }}
        />
      </div>
      <div class="actions">
        {(ACTIONS[l.status] ?? []).map((a) => (
          <button
            key={a}
            type="button"
            class={a === 'revoke' ? 'danger' : a === 'approve' || a === 'restore' ? 'primary' : ''}
            disabled={busy.value}
            onClick={() => act(a)}
          >
            {a[0]!.toUpperCase() + a.slice(1)}
          </button>
        ))}
      </div>
      <ErrorNotice error={error.value} />
      <EditListing l={l} onDone={onDone} />
    </li>
  );
}

/** A moderator's edit of what a listing says (its creator is told, with the reason). */
function EditListing({ l, onDone }: { l: QueuedListing; onDone: () => unknown }) {
  const title = useSignal(l.title);
  const summary = useSignal(l.summary);
  const category = useSignal(l.category);
  const tags = useSignal(l.tags.join(', '));
  const reason = useSignal('');
  const form = useForm();
  return (
    <details>
      <summary>Edit {l.title}</summary>
      <Form
        state={form}
        label={`Edit ${l.title}`}
        onSubmit={async () => {
          await api('PATCH', `/api/v1/moderation/listings/${l.id}`, {
            title: title.value,
            summary: summary.value,
            category: category.value,
            tags: tags.value
              .split(',')
              .map((t) => t.trim())
              .filter(Boolean),
            reason: reason.value,
          });
          await onDone();
        }}
      >
        <Field label="Title" name="title" value={title} form={form} maxLength={100} />
        <Field label="Summary" name="summary" value={summary} form={form} maxLength={500} />
        <Field label="Category" name="category" value={category} form={form} maxLength={40} />
        <Field label="Tags (comma-separated)" name="tags" value={tags} form={form} />
        <Field label="Reason for the edit" name="reason" value={reason} form={form} maxLength={1000} />
        <div class="actions">
          <Submit state={form}>Save the edit</Submit>
        </div>
      </Form>
    </details>
  );
}
