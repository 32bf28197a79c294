import { useSignal } from '@preact/signals';
import { ApiError, api } from '../shared/api.ts';
import { AuditEntries, type AuditEntry } from '../shared/audit.tsx';
import { when } from '../shared/format.ts';
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

/** Single sign-on (OIDC, SAML, SCIM tokens), API keys and the platform's audit trail. */

/** A settings read that answers 404 when nothing is set up: null instead of an error. */
async function orNull<T>(p: Promise<T>): Promise<T | null> {
  try {
    return await p;
  } catch (e) {
    if (e instanceof ApiError && e.status === 404) return null;
    throw e;
  }
}

interface OidcView {
  issuer: string;
  client_id: string;
  client_secret_set: boolean;
  redirect_uri: string;
}

interface SamlView {
  idp_entity_id: string;
  idp_sso_url: string;
  sp_entity_id?: string;
  acs_url?: string;
}

export function Sso() {
  const oidc = useResource(() => orNull(api<{ oidc: OidcView }>('GET', '/api/v1/sso/oidc')));
  const saml = useResource(() => orNull(api<{ saml: SamlView }>('GET', '/api/v1/sso/saml')));
  const scim = useResource(() =>
    api<{
      scim_tokens: {
        id: string;
        name: string;
        created_at: string;
        last_used_at: string | null;
        revoked_at?: string | null;
      }[];
    }>('GET', '/api/v1/scim/tokens'),
  );
  return (
    <>
      <Title>Single sign-on</Title>
      <section aria-labelledby="oidc">
        <h2 id="oidc">OpenID Connect</h2>
        <Async r={oidc}>{(d) => <OidcForm v={d?.oidc ?? null} onDone={() => oidc.reload()} />}</Async>
      </section>
      <section aria-labelledby="saml">
        <h2 id="saml">SAML</h2>
        <p>
          Give your identity provider this platform's{' '}
          <a href="/sso/saml/metadata" download="sp-metadata.xml">
            SP metadata (XML)
          </a>
          .
        </p>
        <Async r={saml}>{(d) => <SamlForm v={d?.saml ?? null} onDone={() => saml.reload()} />}</Async>
      </section>
      <section aria-labelledby="scim">
        <h2 id="scim">SCIM provisioning tokens</h2>
        <ScimTokens r={scim} />
      </section>
    </>
  );
}

function OidcForm({ v, onDone }: { v: OidcView | null; onDone: () => unknown }) {
  const issuer = useSignal(v?.issuer ?? '');
  const clientId = useSignal(v?.client_id ?? '');
  const secret = useSignal('');
  const saved = useSignal(false);
  const form = useForm();
  return (
    <Form
      state={form}
      label="OpenID Connect"
      onSubmit={async () => {
        saved.value = false;
        const body: Record<string, unknown> = {
          issuer: issuer.value.trim(),
          client_id: clientId.value.trim(),
        };
        if (secret.value) body.client_secret = secret.value;
        await api('PUT', '/api/v1/sso/oidc', body);
        secret.value = '';
        saved.value = true;
        await onDone();
      }}
    >
      {v ? (
        <p class="muted">
          Redirect URI to register: <code>{v.redirect_uri}</code>
        </p>
      ) : (
        <p class="muted">Not set up.</p>
      )}
      <Field
        label="Issuer"
        name="issuer"
        type="url"
        value={issuer}
        form={form}
        placeholder="https://idp.example.com"
      />
      <Field label="Client ID" name="client_id" value={clientId} form={form} />
      <Field
        label="Client secret"
        name="client_secret"
        type="password"
        value={secret}
        form={form}
        hint={v?.client_secret_set ? 'set: leave empty to keep it' : undefined}
        autocomplete="off"
      />
      <div class="actions">
        <Submit state={form}>Save OIDC</Submit>
        {v ? (
          <ActionButton
            confirm="Remove OIDC sign-in? Users who sign in only through it can no longer sign in."
            onClick={async () => {
              await api('DELETE', '/api/v1/sso/oidc');
              await onDone();
            }}
          >
            Remove OIDC
          </ActionButton>
        ) : null}
      </div>
      {saved.value ? <Notice>OIDC saved</Notice> : null}
    </Form>
  );
}

function SamlForm({ v, onDone }: { v: SamlView | null; onDone: () => unknown }) {
  const entity = useSignal(v?.idp_entity_id ?? '');
  const url = useSignal(v?.idp_sso_url ?? '');
  const cert = useSignal('');
  const saved = useSignal(false);
  const form = useForm();
  return (
    <Form
      state={form}
      label="SAML"
      onSubmit={async () => {
        saved.value = false;
        await api('PUT', '/api/v1/sso/saml', {
          idp_entity_id: entity.value.trim(),
          idp_sso_url: url.value.trim(),
          idp_cert: cert.value.trim(),
        });
        saved.value = true;
        await onDone();
      }}
    >
      {v ? null : <p class="muted">Not set up.</p>}
      <Field label="IdP entity ID" name="idp_entity_id" value={entity} form={form} />
      <Field label="IdP sign-in URL" name="idp_sso_url" type="url" value={url} form={form} />
      <div class="field">
        <label for="saml-cert">IdP signing certificate (PEM)</label>
        <textarea
          id="saml-cert"
          name="idp_cert"
          value={cert.value}
          onInput={(e) => {
            cert.value = (e.currentTarget as HTMLTextAreaElement).value;
          }}
        />
      </div>
      <div class="actions">
        <Submit state={form}>Save SAML</Submit>
        {v ? (
          <ActionButton
            confirm="Remove SAML sign-in?"
            onClick={async () => {
              await api('DELETE', '/api/v1/sso/saml');
              await onDone();
            }}
          >
            Remove SAML
          </ActionButton>
        ) : null}
      </div>
      {saved.value ? <Notice>SAML saved</Notice> : null}
    </Form>
  );
}

function ScimTokens({
  r,
}: {
  r: ReturnType<
    typeof useResource<{
      scim_tokens: {
        id: string;
        name: string;
        created_at: string;
        last_used_at: string | null;
        revoked_at?: string | null;
      }[];
    }>
  >;
}) {
  const name = useSignal('');
  const made = useSignal<{ token: string; base_url: string } | null>(null);
  const form = useForm();
  return (
    <>
      <Async r={r} empty={(d) => (d.scim_tokens.length ? null : <p class="muted">No SCIM tokens.</p>)}>
        {(d) => (
          <TableWrap>
            <table aria-label="SCIM tokens">
              <thead>
                <tr>
                  <th scope="col">Name</th>
                  <th scope="col">Made</th>
                  <th scope="col">Last used</th>
                  <th scope="col">Actions</th>
                </tr>
              </thead>
              <tbody>
                {d.scim_tokens.map((t) => (
                  <tr key={t.id}>
                    <td>{t.name}</td>
                    <td>{when(t.created_at)}</td>
                    <td>{when(t.last_used_at)}</td>
                    <td>
                      {t.revoked_at ? (
                        <StatusBadge status="revoked" />
                      ) : (
                        <ActionButton
                          label={`Revoke ${t.name}`}
                          confirm={`Revoke the SCIM token ${t.name}?`}
                          onClick={async () => {
                            await api('DELETE', `/api/v1/scim/tokens/${t.id}`);
                            await r.reload();
                          }}
                        >
                          Revoke
                        </ActionButton>
                      )}
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </TableWrap>
        )}
      </Async>
      <Form
        state={form}
        label="Make a SCIM token"
        onSubmit={async () => {
          made.value = await api('POST', '/api/v1/scim/tokens', { name: name.value.trim() });
          name.value = '';
          await r.reload();
        }}
      >
        <Field label="SCIM token name" name="name" value={name} form={form} placeholder="Okta" />
        <div class="actions">
          <Submit state={form}>Make SCIM token</Submit>
        </div>
      </Form>
      {made.value ? (
        <>
          <p>
            SCIM base URL: <code>{made.value.base_url}</code>
          </p>
          <OneTimeSecret label="SCIM token" value={made.value.token} />
        </>
      ) : null}
    </>
  );
}

interface KeyView {
  id: string;
  name: string;
  prefix?: string;
  user_id: string | null;
  scopes?: string[];
  created_at: string;
  last_used_at: string | null;
  expires_at: string | null;
  revoked_at: string | null;
}

export function ApiKeys() {
  const r = useResource(() => api<{ api_keys: KeyView[] }>('GET', '/api/v1/api-keys'));
  const name = useSignal('');
  const made = useSignal<string | null>(null);
  const form = useForm();
  return (
    <>
      <Title>API keys</Title>
      <p class="muted">
        Every key of the platform: yours and your users'. A revoked key is refused from its next request.
      </p>
      <Async r={r} empty={(d) => (d.api_keys.length ? null : <Empty>No API keys yet.</Empty>)}>
        {(d) => (
          <TableWrap>
            <table aria-label="API keys">
              <thead>
                <tr>
                  <th scope="col">Name</th>
                  <th scope="col">Key</th>
                  <th scope="col">Owner</th>
                  <th scope="col">Last used</th>
                  <th scope="col">Status</th>
                  <th scope="col">Actions</th>
                </tr>
              </thead>
              <tbody>
                {d.api_keys.map((k) => (
                  <tr key={k.id}>
                    <td>{k.name}</td>
                    <td>
                      <code>{k.prefix ? `${k.prefix}…` : k.id}</code>
                    </td>
                    <td>{k.user_id ?? 'operator'}</td>
                    <td>{when(k.last_used_at)}</td>
                    <td>
                      <StatusBadge status={k.revoked_at ? 'revoked' : 'active'} />
                    </td>
                    <td>
                      {k.revoked_at ? null : (
                        <ActionButton
                          label={`Revoke ${k.name}`}
                          confirm={`Revoke the key ${k.name}?`}
                          onClick={async () => {
                            await api('DELETE', `/api/v1/api-keys/${k.id}`);
                            await r.reload();
                          }}
                        >
                          Revoke
                        </ActionButton>
                      )}
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </TableWrap>
        )}
      </Async>
      <Form
        state={form}
        label="Make an API key"
        onSubmit={async () => {
          const k = await api<{ key: string }>('POST', '/api/v1/api-keys', { name: name.value.trim() });
          made.value = k.key;
          name.value = '';
          await r.reload();
        }}
      >
        <Field label="Key name" name="name" value={name} form={form} />
        <div class="actions">
          <Submit state={form}>Create key</Submit>
        </div>
      </Form>
      {made.value ? <OneTimeSecret label="API key" value={made.value} /> : null}
    </>
  );
}

export function Audit() {
  const action = useSignal('');
  const actor = useSignal('');
  const applied = useSignal({ action: '', actor: '' });
  const before = useSignal<number | null>(null);
  const r = useResource(() => {
    const q = new URLSearchParams({ order: 'desc', limit: '50' });
    if (applied.value.action) q.set('action', applied.value.action);
    if (applied.value.actor) q.set('actor', applied.value.actor);
    if (before.value) q.set('before', String(before.value));
    return api<{ entries: AuditEntry[]; next_before?: number | null }>('GET', `/api/v1/audit?${q}`);
  }, [applied.value, before.value]);
  const form = useForm();
  return (
    <>
      <Title>Audit trail</Title>
      <Form
        state={form}
        label="Filter the audit trail"
        onSubmit={() => {
          before.value = null;
          applied.value = { action: action.value.trim(), actor: actor.value.trim() };
        }}
      >
        <div class="row">
          <Field label="Action" name="action" value={action} form={form} placeholder="user.invited" />
          <Field label="Actor" name="actor" value={actor} form={form} placeholder="user:…" />
        </div>
        <div class="actions">
          <Submit state={form}>Filter</Submit>
        </div>
      </Form>
      <AuditEntries r={r} before={before} />
    </>
  );
}
