import { useSignal } from '@preact/signals';
import { api } from '../shared/api.ts';
import { when } from '../shared/format.ts';
import { me } from '../shared/platform-session.ts';
import {
  ActionButton,
  Async,
  Field,
  Form,
  Notice,
  OneTimeSecret,
  Submit,
  TableWrap,
  Title,
  useForm,
  useResource,
} from '../shared/ui.tsx';

/** Your account: password, authenticator, API keys. */
export function Profile() {
  const user = me.value?.user;
  return (
    <main id="main" class="content">
      <Title>Profile</Title>
      <p>
        {user?.email} · {me.value?.role}
      </p>
      <div class="row">
        <PasswordChange />
        <Mfa />
      </div>
      <ApiKeys />
    </main>
  );
}

function PasswordChange() {
  const current = useSignal('');
  const next = useSignal('');
  const form = useForm();
  const done = useSignal(false);
  return (
    <section aria-labelledby="pw">
      <h2 id="pw">Password</h2>
      {done.value ? <Notice>Your password is changed.</Notice> : null}
      <Form
        state={form}
        label="Change password"
        onSubmit={async () => {
          await api('POST', '/api/v1/me/password', {
            current_password: current.value,
            new_password: next.value,
          });
          current.value = '';
          next.value = '';
          done.value = true;
        }}
      >
        <Field
          label="Current password"
          name="current_password"
          type="password"
          autocomplete="current-password"
          value={current}
          form={form}
        />
        <Field
          label="New password"
          name="new_password"
          type="password"
          autocomplete="new-password"
          value={next}
          form={form}
        />
        <div class="actions">
          <Submit state={form}>Change password</Submit>
        </div>
      </Form>
    </section>
  );
}

function Mfa() {
  const setup = useSignal<{ secret: string; otpauth_url?: string; uri?: string } | null>(null);
  const code = useSignal('');
  const codes = useSignal<string[] | null>(null);
  const form = useForm();
  return (
    <section aria-labelledby="mfa">
      <h2 id="mfa">Authenticator</h2>
      {codes.value ? (
        <Notice>
          Two-step sign-in is on. Keep these recovery codes somewhere safe:
          <pre>{codes.value.join('\n')}</pre>
        </Notice>
      ) : setup.value ? (
        <Form
          state={form}
          label="Turn on two-step sign-in"
          onSubmit={async () => {
            const r = await api<{ recovery_codes?: string[] }>('POST', '/api/v1/me/mfa/totp/enable', {
              code: code.value.trim(),
            });
            codes.value = r.recovery_codes ?? [];
          }}
        >
          <p>Add this key to your authenticator app, then enter the code it shows.</p>
          <p class="secret">{setup.value.secret}</p>
          <p class="muted">{setup.value.otpauth_url ?? setup.value.uri}</p>
          <Field
            label="Authentication code"
            name="code"
            inputMode="numeric"
            autocomplete="one-time-code"
            value={code}
            form={form}
          />
          <div class="actions">
            <Submit state={form}>Turn on</Submit>
          </div>
        </Form>
      ) : (
        <ActionButton
          onClick={async () => {
            setup.value = await api('POST', '/api/v1/me/mfa/totp/setup');
          }}
        >
          Set up authenticator
        </ActionButton>
      )}
    </section>
  );
}

interface Key {
  id: string;
  name: string;
  prefix?: string;
  created_at: string;
  last_used_at?: string | null;
  expires_at?: string | null;
}

function ApiKeys() {
  const keys = useResource(() => api<{ api_keys: Key[] }>('GET', '/api/v1/api-keys'), []);
  const name = useSignal('');
  const made = useSignal<string | null>(null);
  const form = useForm();
  return (
    <section aria-labelledby="keys">
      <h2 id="keys">API keys</h2>
      <Form
        state={form}
        label="Create an API key"
        onSubmit={async () => {
          const r = await api<{ key: string }>('POST', '/api/v1/api-keys', { name: name.value.trim() });
          made.value = r.key;
          name.value = '';
          await keys.reload();
        }}
      >
        <Field label="Key name" name="name" value={name} form={form} />
        <div class="actions">
          <Submit state={form}>Create key</Submit>
        </div>
      </Form>
      {made.value ? <OneTimeSecret label="API key" value={made.value} /> : null}
      <Async r={keys} empty={(d) => (d.api_keys.length ? null : <p class="muted">No keys yet.</p>)}>
        {(d) => (
          <TableWrap>
            <table aria-label="Your API keys">
              <thead>
                <tr>
                  <th>Name</th>
                  <th>Created</th>
                  <th>Last used</th>
                  <th>
                    <span class="visually-hidden">Actions</span>
                  </th>
                </tr>
              </thead>
              <tbody>
                {d.api_keys.map((k) => (
                  <tr key={k.id}>
                    <td>{k.name}</td>
                    <td>{when(k.created_at)}</td>
                    <td>{when(k.last_used_at)}</td>
                    <td>
                      <ActionButton
                        confirm={`Revoke the key “${k.name}”?`}
                        onClick={async () => {
                          await api('DELETE', `/api/v1/api-keys/${k.id}`);
                          await keys.reload();
                        }}
                      >
                        Revoke
                      </ActionButton>
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </TableWrap>
        )}
      </Async>
    </section>
  );
}
