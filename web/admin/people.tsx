import { useSignal } from '@preact/signals';
import { useId } from 'preact/hooks';
import { api } from '../shared/api.ts';
import { when } from '../shared/format.ts';
import { me } from '../shared/platform-session.ts';
import {
  ActionButton,
  Async,
  Empty,
  Field,
  Form,
  Notice,
  StatusBadge,
  Submit,
  TableWrap,
  Title,
  useForm,
  useResource,
} from '../shared/ui.tsx';

/** Users and roles, invitations, and the sign-in policy (MFA, passwords, sessions). */

export const ROLES = ['owner', 'admin', 'creator', 'member', 'auditor'] as const;

interface UserView {
  id: string;
  email: string;
  name: string | null;
  role: string;
  status: string;
  email_verified: boolean;
  mfa_enabled: boolean;
  created_at: string;
}

function RolePicker({
  value,
  onChange,
  label,
  id,
}: {
  value: string;
  onChange: (v: string) => void;
  label: string;
  id?: string;
}) {
  const own = useId();
  const i = id ?? own;
  return (
    <>
      {id ? null : (
        <label for={i} class="visually-hidden">
          {label}
        </label>
      )}
      <select id={i} value={value} onChange={(e) => onChange((e.currentTarget as HTMLSelectElement).value)}>
        {ROLES.map((r) => (
          <option key={r} value={r}>
            {r}
          </option>
        ))}
      </select>
    </>
  );
}

export function Users() {
  const r = useResource(() => api<{ users: UserView[] }>('GET', '/api/v1/users'));
  const error = useSignal<unknown>(null);
  const self = me.value?.user?.id;
  const patch = async (u: UserView, body: Record<string, unknown>) => {
    await api('PATCH', `/api/v1/users/${u.id}`, body);
    await r.reload();
  };
  return (
    <>
      <Title>Users</Title>
      <p>
        <a href="/admin/invitations">Invite someone</a>
      </p>
      <Async r={r} empty={(d) => (d.users.length ? null : <Empty>No users yet.</Empty>)}>
        {(d) => (
          <TableWrap>
            <table aria-label="Users">
              <thead>
                <tr>
                  <th scope="col">User</th>
                  <th scope="col">Role</th>
                  <th scope="col">Status</th>
                  <th scope="col">MFA</th>
                  <th scope="col">Since</th>
                  <th scope="col">Actions</th>
                </tr>
              </thead>
              <tbody>
                {d.users.map((u) => (
                  <tr key={u.id}>
                    <td>
                      {u.name ?? u.email}
                      {u.name ? <div class="muted">{u.email}</div> : null}
                    </td>
                    <td>
                      {u.id === self ? (
                        u.role
                      ) : (
                        <RolePicker
                          label={`Role of ${u.email}`}
                          value={u.role}
                          onChange={(role) => {
                            error.value = null;
                            patch(u, { role }).catch((e) => {
                              error.value = e;
                              void r.reload();
                            });
                          }}
                        />
                      )}
                    </td>
                    <td>
                      <StatusBadge status={u.status} />
                    </td>
                    <td>{u.mfa_enabled ? 'on' : 'off'}</td>
                    <td>{when(u.created_at)}</td>
                    <td>
                      {u.id === self ? (
                        <span class="muted">you</span>
                      ) : (
                        <div class="actions">
                          {u.status === 'active' ? (
                            <ActionButton
                              label={`Disable ${u.email}`}
                              confirm={`Disable ${u.email}? Their sessions and keys stop working.`}
                              onClick={() => patch(u, { status: 'disabled' })}
                            >
                              Disable
                            </ActionButton>
                          ) : u.status === 'disabled' ? (
                            <ActionButton
                              label={`Enable ${u.email}`}
                              onClick={() => patch(u, { status: 'active' })}
                            >
                              Enable
                            </ActionButton>
                          ) : null}
                          {u.mfa_enabled ? (
                            <ActionButton
                              label={`Reset MFA of ${u.email}`}
                              confirm={`Remove ${u.email}'s authenticator? They set up a new one at their next sign-in.`}
                              onClick={async () => {
                                await api('POST', `/api/v1/users/${u.id}/mfa/reset`);
                                await r.reload();
                              }}
                            >
                              Reset MFA
                            </ActionButton>
                          ) : null}
                        </div>
                      )}
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </TableWrap>
        )}
      </Async>
      {error.value ? <Notice kind="error">{String((error.value as Error).message)}</Notice> : null}
    </>
  );
}

interface InvitationView {
  id: string;
  email: string;
  role: string;
  status: string;
  invited_by: string;
  expires_at: string;
  sent_at: string;
  sends: number;
}

export function Invitations() {
  const r = useResource(() => api<{ invitations: InvitationView[] }>('GET', '/api/v1/invitations'));
  const email = useSignal('');
  const role = useSignal('member');
  const sent = useSignal<string | null>(null);
  const form = useForm();
  return (
    <>
      <Title>Invitations</Title>
      <Form
        state={form}
        label="Invite someone"
        onSubmit={async () => {
          sent.value = null;
          const to = email.value.trim();
          await api('POST', '/api/v1/invitations', { email: to, role: role.value });
          sent.value = to;
          email.value = '';
          await r.reload();
        }}
      >
        <div class="row">
          <Field label="Email" name="email" type="email" value={email} form={form} required />
          <div class="field">
            <label for="invite-role">Role</label>
            <RolePicker id="invite-role" label="Role" value={role.value} onChange={(v) => (role.value = v)} />
          </div>
        </div>
        <div class="actions">
          <Submit state={form}>Send invitation</Submit>
        </div>
        {sent.value ? <Notice>An invitation is on its way to {sent.value}.</Notice> : null}
      </Form>
      <h2>Sent</h2>
      <Async r={r} empty={(d) => (d.invitations.length ? null : <Empty>No invitations yet.</Empty>)}>
        {(d) => (
          <TableWrap>
            <table aria-label="Invitations">
              <thead>
                <tr>
                  <th scope="col">Email</th>
                  <th scope="col">Role</th>
                  <th scope="col">Status</th>
                  <th scope="col">Sent</th>
                  <th scope="col">Expires</th>
                  <th scope="col">Actions</th>
                </tr>
              </thead>
              <tbody>
                {d.invitations.map((i) => (
                  <tr key={i.id}>
                    <td>{i.email}</td>
                    <td>{i.role}</td>
                    <td>
                      <StatusBadge status={i.status} />
                    </td>
                    <td>{when(i.sent_at)}</td>
                    <td>{when(i.expires_at)}</td>
                    <td>
                      {i.status === 'pending' || i.status === 'expired' ? (
                        <div class="actions">
                          <ActionButton
                            label={`Resend to ${i.email}`}
                            onClick={async () => {
                              await api('POST', `/api/v1/invitations/${i.id}/resend`);
                              await r.reload();
                            }}
                          >
                            Resend
                          </ActionButton>
                          <ActionButton
                            label={`Revoke the invitation of ${i.email}`}
                            confirm={`Revoke the invitation of ${i.email}? Its link stops working.`}
                            onClick={async () => {
                              await api('DELETE', `/api/v1/invitations/${i.id}`);
                              await r.reload();
                            }}
                          >
                            Revoke
                          </ActionButton>
                        </div>
                      ) : null}
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </TableWrap>
        )}
      </Async>
    </>
  );
}

interface IdentitySettings {
  session_idle_minutes: number;
  session_absolute_hours: number;
  mfa_required_roles: string[];
  password_login: boolean;
  api_key_rate_per_min: number;
}

export function Security() {
  const r = useResource(() => api<IdentitySettings>('GET', '/api/v1/settings/identity'));
  return (
    <>
      <Title>Security</Title>
      <Async r={r}>{(s) => <SecurityForm s={s} />}</Async>
    </>
  );
}

function SecurityForm({ s }: { s: IdentitySettings }) {
  const mfa = useSignal<string[]>([...s.mfa_required_roles]);
  const password = useSignal(s.password_login);
  const idle = useSignal(String(s.session_idle_minutes));
  const absolute = useSignal(String(s.session_absolute_hours));
  const rate = useSignal(String(s.api_key_rate_per_min));
  const saved = useSignal(false);
  const form = useForm();
  return (
    <Form
      state={form}
      label="Security settings"
      onSubmit={async () => {
        saved.value = false;
        await api('PATCH', '/api/v1/settings/identity', {
          mfa_required_roles: mfa.value,
          password_login: password.value,
          session_idle_minutes: Number(idle.value),
          session_absolute_hours: Number(absolute.value),
          api_key_rate_per_min: Number(rate.value),
        });
        saved.value = true;
      }}
    >
      <fieldset>
        <legend>Roles that must use an authenticator (MFA)</legend>
        {ROLES.map((role) => (
          <label class="check" key={role}>
            <input
              type="checkbox"
              checked={mfa.value.includes(role)}
              onChange={(e) => {
                const on = (e.currentTarget as HTMLInputElement).checked;
                mfa.value = on ? [...mfa.value, role] : mfa.value.filter((x) => x !== role);
              }}
            />
            {role}
          </label>
        ))}
      </fieldset>
      <label class="check">
        <input
          type="checkbox"
          checked={password.value}
          onChange={(e) => {
            password.value = (e.currentTarget as HTMLInputElement).checked;
          }}
        />
        Allow sign-in with email and password (off: single sign-on only)
      </label>
      <div class="row">
        <Field
          label="Sign out after idle (minutes)"
          name="session_idle_minutes"
          type="number"
          value={idle}
          form={form}
        />
        <Field
          label="Sign out after (hours)"
          name="session_absolute_hours"
          type="number"
          value={absolute}
          form={form}
        />
        <Field
          label="API key requests per minute"
          name="api_key_rate_per_min"
          type="number"
          value={rate}
          form={form}
        />
      </div>
      <div class="actions">
        <Submit state={form}>Save security settings</Submit>
      </div>
      {saved.value ? <Notice>Security settings saved</Notice> : null}
    </Form>
  );
}
