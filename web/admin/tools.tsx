import { useSignal } from '@preact/signals';
import { api } from '../shared/api.ts';
import { Async, Form, fieldError, Notice, Submit, Title, useForm, useResource } from '../shared/ui.tsx';

/** The hosts agents' tools may call on this platform (issue 12 item 3). */
export function ToolHosts() {
  const r = useResource(() => api<{ hosts: string[] }>('GET', '/api/v1/platform/tool-hosts'));
  return (
    <>
      <Title>Agent tools</Title>
      <p class="muted">
        The hosts that agents' tools may call. A tool on any other host is refused when it is saved and when
        it is called. Even a host listed here is never reached at a private, loopback or cloud metadata
        address.
      </p>
      <Async r={r}>{(d) => <HostsForm hosts={d.hosts} onSaved={() => r.reload()} />}</Async>
    </>
  );
}

function HostsForm({ hosts, onSaved }: { hosts: string[]; onSaved: () => unknown }) {
  const text = useSignal(hosts.join('\n'));
  const saved = useSignal(false);
  const form = useForm();
  const lines = () =>
    text.value
      .split('\n')
      .map((x) => x.trim())
      .filter(Boolean);
  const bad = lines()
    .map((h, i) => ({ h, why: fieldError(form, `hosts/${i}`) }))
    .filter((x) => x.why);
  return (
    <Form
      state={form}
      label="Tool hosts"
      onSubmit={async () => {
        saved.value = false;
        const r = await api<{ hosts: string[] }>('PUT', '/api/v1/platform/tool-hosts', { hosts: lines() });
        text.value = r.hosts.join('\n');
        saved.value = true;
        await onSaved();
      }}
    >
      <div class="field">
        <label for="tool-hosts">Allowed hosts (one per line)</label>
        <textarea
          id="tool-hosts"
          rows={8}
          value={text.value}
          aria-describedby="tool-hosts-hint"
          aria-invalid={bad.length ? 'true' : undefined}
          onInput={(e) => {
            text.value = (e.currentTarget as HTMLTextAreaElement).value;
          }}
        />
        <div class="hint" id="tool-hosts-hint">
          api.example.com, *.example.com (its subdomains), or an IP address. Empty: no tool may be called.
        </div>
        {bad.map((b) => (
          <div class="error" key={b.h}>
            {b.h}: {b.why}
          </div>
        ))}
      </div>
      <div class="actions">
        <Submit state={form}>Save</Submit>
      </div>
      {saved.value ? <Notice>Saved</Notice> : null}
    </Form>
  );
}
