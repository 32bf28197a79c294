import { useSignal } from '@preact/signals';
import { AuditEntries, type AuditEntry } from '../shared/audit.tsx';
import { bytes, when } from '../shared/format.ts';
import {
  ActionButton,
  Async,
  Empty,
  Field,
  Form,
  Notice,
  OneTimeSecret,
  StatusBadge,
  Submit,
  TableWrap,
  Title,
  useForm,
  useResource,
} from '../shared/ui.tsx';
import { isOperatorAdmin, op, operator } from './session.ts';

/** The console's instance screens: operators, tokens, health, the audit viewer, the account. */

interface OperatorView {
  id: string;
  email: string;
  role: string;
  status: string;
  sso_linked: boolean;
  created_at: string;
}

function RoleSelect({ value, label = 'Role' }: { value: { value: string }; label?: string }) {
  return (
    <div class="field">
      <label for="role-select">{label}</label>
      <select
        id="role-select"
        value={value.value}
        onChange={(e) => {
          value.value = (e.currentTarget as HTMLSelectElement).value;
        }}
      >
        <option value="operator_viewer">operator_viewer (read only)</option>
        <option value="operator_admin">operator_admin</option>
      </select>
    </div>
  );
}

export function Operators() {
  const r = useResource(() => op<{ operators: OperatorView[] }>('GET', '/operators'));
  const email = useSignal('');
  const role = useSignal('operator_viewer');
  const form = useForm();
  const admin = isOperatorAdmin();
  return (
    <>
      <Title>Operators</Title>
      <p class="muted">
        The people who run this instance. Invited operators sign in through the console's SSO.
      </p>
      <Async r={r} empty={(d) => (d.operators.length ? null : <Empty>No operators.</Empty>)}>
        {(d) => (
          <TableWrap>
            <table aria-label="Operators">
              <thead>
                <tr>
                  <th scope="col">Email</th>
                  <th scope="col">Role</th>
                  <th scope="col">Status</th>
                  <th scope="col">SSO</th>
                  <th scope="col">Since</th>
                  {admin ? <th scope="col">Actions</th> : null}
                </tr>
              </thead>
              <tbody>
                {d.operators.map((o) => (
                  <tr key={o.id}>
                    <td>{o.email}</td>
                    <td>{o.role}</td>
                    <td>
                      <StatusBadge status={o.status} />
                    </td>
                    <td>{o.sso_linked ? 'linked' : '—'}</td>
                    <td>{when(o.created_at)}</td>
                    {admin ? (
                      <td>
                        <div class="actions">
                          {o.status === 'active' ? (
                            <ActionButton
                              label={`Disable ${o.email}`}
                              confirm={`Disable ${o.email}? Their sessions and tokens stop working.`}
                              onClick={async () => {
                                await op('POST', `/operators/${o.id}/disable`);
                                await r.reload();
                              }}
                            >
                              Disable
                            </ActionButton>
                          ) : (
                            <ActionButton
                              label={`Enable ${o.email}`}
                              onClick={async () => {
                                await op('POST', `/operators/${o.id}/enable`);
                                await r.reload();
                              }}
                            >
                              Enable
                            </ActionButton>
                          )}
                          <ActionButton
                            label={`Remove ${o.email}`}
                            class="danger"
                            confirm={`Remove ${o.email} for good?`}
                            onClick={async () => {
                              await op('DELETE', `/operators/${o.id}`);
                              await r.reload();
                            }}
                          >
                            Remove
                          </ActionButton>
                        </div>
                      </td>
                    ) : null}
                  </tr>
                ))}
              </tbody>
            </table>
          </TableWrap>
        )}
      </Async>
      {admin ? (
        <section aria-labelledby="invite">
          <h2 id="invite">Invite an operator</h2>
          <Form
            state={form}
            label="Invite an operator"
            onSubmit={async () => {
              await op('POST', '/operators', { email: email.value.trim(), role: role.value });
              email.value = '';
              await r.reload();
            }}
          >
            <Field label="Email" name="email" type="email" value={email} form={form} required />
            <RoleSelect value={role} />
            <div class="actions">
              <Submit state={form}>Invite</Submit>
            </div>
          </Form>
        </section>
      ) : null}
    </>
  );
}

interface TokenView {
  id: string;
  name: string;
  operator_email: string;
  role: string;
  status: string;
  created_at: string;
  expires_at: string | null;
  last_used_at: string | null;
}

export function Tokens() {
  const r = useResource(() => op<{ tokens: TokenView[] }>('GET', '/tokens'));
  const name = useSignal('');
  const expires = useSignal('90d');
  const role = useSignal('operator_viewer');
  const made = useSignal<{ token: string; name: string } | null>(null);
  const form = useForm();
  return (
    <>
      <Title>Tokens</Title>
      <p class="muted">Operator tokens for the CLI and automation (`Authorization: Bearer …`).</p>
      <Async r={r} empty={(d) => (d.tokens.length ? null : <Empty>No tokens yet.</Empty>)}>
        {(d) => (
          <TableWrap>
            <table aria-label="Operator tokens">
              <thead>
                <tr>
                  <th scope="col">Name</th>
                  <th scope="col">Operator</th>
                  <th scope="col">Role</th>
                  <th scope="col">Status</th>
                  <th scope="col">Last used</th>
                  <th scope="col">Expires</th>
                  <th scope="col">Actions</th>
                </tr>
              </thead>
              <tbody>
                {d.tokens.map((t) => (
                  <tr key={t.id}>
                    <td>{t.name}</td>
                    <td>{t.operator_email}</td>
                    <td>{t.role}</td>
                    <td>
                      <StatusBadge status={t.status} />
                    </td>
                    <td>{when(t.last_used_at)}</td>
                    <td>{when(t.expires_at)}</td>
                    <td>
                      {t.status === 'active' ? (
                        <ActionButton
                          label={`Revoke ${t.name}`}
                          confirm={`Revoke the token ${t.name}? It is refused from the next request.`}
                          onClick={async () => {
                            await op('DELETE', `/tokens/${t.id}`);
                            await r.reload();
                          }}
                        >
                          Revoke
                        </ActionButton>
                      ) : null}
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </TableWrap>
        )}
      </Async>
      <section aria-labelledby="make">
        <h2 id="make">Make a token</h2>
        <Form
          state={form}
          label="Make a token"
          onSubmit={async () => {
            const t = await op<{ token: string; name?: string }>('POST', '/tokens', {
              name: name.value.trim() || undefined,
              expires_in: expires.value.trim() || undefined,
              role: role.value,
            });
            made.value = { token: t.token, name: name.value.trim() };
            name.value = '';
            await r.reload();
          }}
        >
          <Field label="Token name" name="name" value={name} form={form} />
          <Field label="Expires in" name="expires_in" value={expires} form={form} hint="e.g. 30d or 12h" />
          <RoleSelect value={role} label="Token role" />
          <div class="actions">
            <Submit state={form}>Make token</Submit>
          </div>
        </Form>
        {made.value ? <OneTimeSecret label="Operator token" value={made.value.token} /> : null}
      </section>
    </>
  );
}

interface ProviderStatus {
  id: string;
  kind: string;
  location: string;
  health: string;
  checked_at: string | null;
  circuit: string;
  failures: number;
  down_reason: string | null;
  last_error: { message: string; at: string } | null;
}

interface HealthReport {
  status: string;
  checks?: Record<string, string>;
}

export function Health() {
  const providers = useResource(() => op<{ providers: ProviderStatus[] }>('GET', '/providers'));
  const mail = useResource(() =>
    op<{ delivery: { smtp: boolean; problem: string | null }; messages: { status: string }[] }>(
      'GET',
      '/mail',
    ),
  );
  const dbs = useResource(() =>
    op<{
      databases: {
        slug: string;
        status: string;
        file: string;
        bytes: number;
        schema: number | null;
        latest: number;
        ok: boolean;
        problem: string | null;
      }[];
    }>('GET', '/health/databases'),
  );
  const ready = useResource(async () => {
    const r = await fetch('/readyz', { headers: { accept: 'application/json' } });
    return { ok: r.ok, body: (await r.json().catch(() => null)) as HealthReport | null };
  });
  return (
    <>
      <Title>Health</Title>
      <section aria-labelledby="db">
        <h2 id="db">Readiness</h2>
        <Async r={ready}>
          {(d) => (
            <div class="cards">
              <div class="card">
                <div class="label">Ready</div>
                <div class="big">
                  <StatusBadge status={d.ok ? 'ok' : 'down'} />
                </div>
              </div>
              {Object.entries(d.body?.checks ?? {}).map(([k, v]) => (
                <div class="card" key={k}>
                  <div class="label">{k}</div>
                  <div class="big">
                    <StatusBadge status={v} />
                  </div>
                </div>
              ))}
            </div>
          )}
        </Async>
      </section>
      <section aria-labelledby="pdbs">
        <h2 id="pdbs">Platform databases</h2>
        <Async r={dbs} empty={(d) => (d.databases.length ? null : <Empty>No platforms yet.</Empty>)}>
          {(d) => (
            <TableWrap>
              <table aria-label="Platform databases">
                <thead>
                  <tr>
                    <th scope="col">Platform</th>
                    <th scope="col">File</th>
                    <th scope="col" class="num">
                      Size
                    </th>
                    <th scope="col">Schema</th>
                    <th scope="col">State</th>
                  </tr>
                </thead>
                <tbody>
                  {d.databases.map((b) => (
                    <tr key={b.slug}>
                      <td>
                        <a href={`/platforms/${b.slug}`}>{b.slug}</a> <span class="muted">({b.status})</span>
                      </td>
                      <td>
                        <code>{b.file}</code>
                      </td>
                      <td class="num">{bytes(b.bytes)}</td>
                      <td>{b.schema === null ? '—' : `${b.schema} of ${b.latest}`}</td>
                      <td>
                        <StatusBadge status={b.ok ? 'ok' : 'error'} />
                        {b.problem ? <div class="muted">{b.problem}</div> : null}
                      </td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </TableWrap>
          )}
        </Async>
      </section>
      <section aria-labelledby="prov">
        <h2 id="prov">AI providers</h2>
        <Async
          r={providers}
          empty={(d) => (d.providers.length ? null : <Empty>No providers are configured.</Empty>)}
        >
          {(d) => (
            <TableWrap>
              <table aria-label="AI providers">
                <thead>
                  <tr>
                    <th scope="col">Provider</th>
                    <th scope="col">Where</th>
                    <th scope="col">Health</th>
                    <th scope="col">Circuit</th>
                    <th scope="col" class="num">
                      Failures
                    </th>
                    <th scope="col">Checked</th>
                    <th scope="col">Last error</th>
                  </tr>
                </thead>
                <tbody>
                  {d.providers.map((p) => (
                    <tr key={p.id}>
                      <td>
                        {p.id} <span class="muted">({p.kind})</span>
                      </td>
                      <td>{p.location === 'on_prem' ? 'on-prem' : 'cloud'}</td>
                      <td>
                        <StatusBadge status={p.health === 'up' ? 'ok' : p.health} />
                        {p.down_reason ? <div class="muted">{p.down_reason}</div> : null}
                      </td>
                      <td>
                        <StatusBadge status={p.circuit} />
                      </td>
                      <td class="num">{p.failures}</td>
                      <td>{when(p.checked_at)}</td>
                      <td>{p.last_error ? `${p.last_error.message} (${when(p.last_error.at)})` : '—'}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </TableWrap>
          )}
        </Async>
      </section>
      <section aria-labelledby="mail">
        <h2 id="mail">Outbound mail</h2>
        <Async r={mail}>
          {(d) => (
            <>
              {d.delivery.smtp ? (
                <Notice>SMTP is configured.</Notice>
              ) : (
                <Notice kind="warn">No mail is sent: {d.delivery.problem}</Notice>
              )}
              <p>
                {d.messages.length === 0
                  ? 'Every message has been delivered.'
                  : `${d.messages.length} message(s) not delivered yet: ${['queued', 'failed', 'bounced']
                      .map((s) => `${d.messages.filter((m) => m.status === s).length} ${s}`)
                      .join(', ')}.`}
              </p>
            </>
          )}
        </Async>
      </section>
    </>
  );
}

interface ChainReport {
  chain: string;
  ok: boolean;
  entries: number;
  bad?: { seq: number; reason: string };
}

export function Audit() {
  const platforms = useResource(() =>
    op<{ platforms: { slug: string; name: string }[] }>('GET', '/platforms'),
  );
  const chain = useSignal('');
  const action = useSignal('');
  const actor = useSignal('');
  const applied = useSignal({ chain: '', action: '', actor: '' });
  const before = useSignal<number | null>(null);
  const r = useResource(() => {
    const q = new URLSearchParams({ order: 'desc', limit: '50' });
    const a = applied.value;
    if (a.chain) q.set('platform', a.chain);
    if (a.action) q.set('action', a.action);
    if (a.actor) q.set('actor', a.actor);
    if (before.value) q.set('before', String(before.value));
    return op<{ entries: AuditEntry[]; next_before: number | null }>('GET', `/audit?${q}`);
  }, [applied.value, before.value]);
  const verify = useSignal<{ ok: boolean; chains: ChainReport[] } | null>(null);
  const form = useForm();
  return (
    <>
      <Title>Audit</Title>
      <Form
        state={form}
        label="Filter the audit trail"
        onSubmit={() => {
          before.value = null;
          applied.value = { chain: chain.value, action: action.value.trim(), actor: actor.value.trim() };
        }}
      >
        <div class="row">
          <div class="field">
            <label for="audit-chain">Chain</label>
            <select
              id="audit-chain"
              value={chain.value}
              onChange={(e) => {
                chain.value = (e.currentTarget as HTMLSelectElement).value;
              }}
            >
              <option value="">Control plane</option>
              {(platforms.data.value?.platforms ?? []).map((p) => (
                <option key={p.slug} value={p.slug}>
                  {p.name} ({p.slug})
                </option>
              ))}
            </select>
          </div>
          <Field label="Action" name="action" value={action} form={form} placeholder="platform.created" />
          <Field label="Actor" name="actor" value={actor} form={form} placeholder="operator:…" />
        </div>
        <div class="actions">
          <Submit state={form}>Filter</Submit>
          <ActionButton
            onClick={async () => {
              verify.value = await op('GET', `/audit/verify${chain.value ? `?platform=${chain.value}` : ''}`);
            }}
          >
            Verify the chain
          </ActionButton>
        </div>
      </Form>
      {verify.value ? (
        <Notice kind={verify.value.ok ? 'ok' : 'error'}>
          {verify.value.chains.map((c) => (
            <div key={c.chain}>
              {c.chain}:{' '}
              {c.ok ? `intact (${c.entries} entries)` : `BROKEN at #${c.bad?.seq}: ${c.bad?.reason}`}
            </div>
          ))}
        </Notice>
      ) : null}
      <AuditEntries r={r} before={before} />
    </>
  );
}

export function Account() {
  const o = operator.value!;
  const setup = useSignal<{ secret: string; otpauth_url: string } | null>(null);
  const code = useSignal('');
  const done = useSignal(false);
  const form = useForm();
  return (
    <>
      <Title>Your account</Title>
      <p>
        Signed in as <strong>{o.actor}</strong> with the role <strong>{o.role}</strong>.
      </p>
      <section aria-labelledby="mfa">
        <h2 id="mfa">Authenticator</h2>
        {done.value ? (
          <Notice>The authenticator is on: sign-ins ask for its code from now on.</Notice>
        ) : setup.value ? (
          <Form
            state={form}
            label="Confirm the authenticator"
            onSubmit={async () => {
              await op('POST', '/me/mfa/totp/enable', { code: code.value.replace(/\s+/g, '') });
              done.value = true;
            }}
          >
            <p>Add this key to your authenticator app, then enter the code it shows.</p>
            <p class="secret">{setup.value.secret}</p>
            <p class="muted">{setup.value.otpauth_url}</p>
            <Field label="Authentication code" name="code" value={code} form={form} inputMode="numeric" />
            <div class="actions">
              <Submit state={form}>Turn on</Submit>
            </div>
          </Form>
        ) : (
          <ActionButton
            onClick={async () => {
              setup.value = await op('POST', '/me/mfa/totp/setup');
            }}
          >
            Set up an authenticator
          </ActionButton>
        )}
      </section>
    </>
  );
}
