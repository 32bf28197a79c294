import { useSignal } from '@preact/signals';
import { when } from '../shared/format.ts';
import { ActionButton, Async, Field, Form, Submit, useForm, useResource } from '../shared/ui.tsx';
import { op } from './session.ts';

/**
 * Federation on a platform's page (issue 12 item 8): this instance's key (what other operators
 * pin) and the other instances' keys this platform accepts agent packages from.
 */

interface TrustedKey {
  key_id: string;
  label: string;
  added_by: string;
  added_at: string;
}

export function TrustedKeys({ slug, admin }: { slug: string; admin: boolean }) {
  const own = useResource(() =>
    op<{ key: { key_id: string; public_key: string } }>('GET', '/federation/key'),
  );
  const r = useResource(
    () => op<{ trusted_keys: TrustedKey[] }>('GET', `/platforms/${encodeURIComponent(slug)}/trusted-keys`),
    [slug],
  );
  const publicKey = useSignal('');
  const keyId = useSignal('');
  const label = useSignal('');
  const form = useForm();
  return (
    <section aria-labelledby="federation">
      <h2 id="federation">Federation</h2>
      <Async r={own}>
        {(k) => (
          <p class="muted">
            This server's key is <code>{k.key.key_id}</code>; its own platforms trust it. Other servers pin
            its public key: <code class="wrap">{k.key.public_key}</code>
          </p>
        )}
      </Async>
      <Async r={r}>
        {(d) =>
          d.trusted_keys.length ? (
            <ul>
              {d.trusted_keys.map((t) => (
                <li key={t.key_id}>
                  <code>{t.key_id}</code> {t.label ? `(${t.label})` : ''}, pinned {when(t.added_at)}{' '}
                  {admin ? (
                    <ActionButton
                      label={`Stop trusting ${t.key_id}`}
                      confirm={`Stop trusting ${t.label || t.key_id}? Agents imported with it stay.`}
                      onClick={async () => {
                        await op(
                          'DELETE',
                          `/platforms/${encodeURIComponent(slug)}/trusted-keys/${encodeURIComponent(t.key_id)}`,
                        );
                        await r.reload();
                      }}
                    >
                      Remove
                    </ActionButton>
                  ) : null}
                </li>
              ))}
            </ul>
          ) : (
            <p class="muted">
              No other server's key: agent packages are accepted from this server's platforms only.
            </p>
          )
        }
      </Async>
      {admin ? (
        <Form
          state={form}
          label="Trust another server's key"
          onSubmit={async () => {
            await op('POST', `/platforms/${encodeURIComponent(slug)}/trusted-keys`, {
              public_key: publicKey.value.trim(),
              ...(keyId.value.trim() ? { key_id: keyId.value.trim() } : {}),
              ...(label.value.trim() ? { label: label.value.trim() } : {}),
            });
            publicKey.value = '';
            keyId.value = '';
            label.value = '';
            await r.reload();
          }}
        >
          <Field label="Public key" name="public_key" value={publicKey} form={form} />
          <Field label="Key id (as its operator read it)" name="key_id" value={keyId} form={form} />
          <Field label="Whose key" name="label" value={label} form={form} />
          <div class="actions">
            <Submit state={form} class="">
              Trust this key
            </Submit>
          </div>
        </Form>
      ) : null}
    </section>
  );
}
