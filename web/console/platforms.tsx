import { type Signal, useSignal } from '@preact/signals';
import { onColor } from '../shared/color.ts';
import { moneyMicro, num, when } from '../shared/format.ts';
import { match, navigate, path } from '../shared/router.ts';
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
import { TrustedKeys } from './federation.tsx';
import { PlatformPlan } from './plans.tsx';
import { isOperatorAdmin, op } from './session.ts';

/** The platforms: the list with status, users, usage and cost; one platform; the create wizard. */

export interface PlatformStats {
  users: number;
  calls_30d: number;
  tokens_30d: number;
  cost_micro_30d: string | number;
  currency: string | null;
}

export interface PlatformView {
  id: string;
  slug: string;
  name: string;
  status: 'active' | 'suspended' | 'archived';
  status_reason: string | null;
  template: string;
  url: string;
  domains: string[];
  created_at: string;
  updated_at: string;
  stats?: PlatformStats | null;
}

export function Platforms() {
  const r = useResource(() => op<{ platforms: PlatformView[] }>('GET', '/platforms?include=stats'));
  const over = useResource(() =>
    op<{
      over_limit: { platform: string; plan: string; users: number | null; hold_at: string; held: boolean }[];
    }>('GET', '/plans'),
  );
  return (
    <>
      <div class="row heading-row">
        <Title>Platforms</Title>
        {isOperatorAdmin() ? (
          <div class="actions end">
            <a class="button primary" href="/new">
              New platform
            </a>
          </div>
        ) : null}
      </div>
      {over.data.value?.over_limit.length ? (
        <Notice kind="warn">
          Over their plan's user limit:
          <ul>
            {over.data.value.over_limit.map((o) => (
              <li key={o.platform}>
                <a href={`/platforms/${o.platform}`}>{o.platform}</a> ({o.plan}
                {o.users === null ? '' : `, ${num(o.users)} users`}):{' '}
                {o.held ? 'held since' : 'new users and agents stop on'} {when(o.hold_at)}
              </li>
            ))}
          </ul>
        </Notice>
      ) : null}
      <Async
        r={r}
        empty={(d) =>
          d.platforms.length ? null : (
            <Empty>
              <p>No platforms yet.</p>
              <p>A platform is one white-labeled AI business: its brand, domain, users and models.</p>
            </Empty>
          )
        }
      >
        {(d) => (
          <TableWrap>
            <table aria-label="Platforms">
              <thead>
                <tr>
                  <th scope="col">Platform</th>
                  <th scope="col">Status</th>
                  <th scope="col" class="num">
                    Users
                  </th>
                  <th scope="col" class="num">
                    AI calls (30 days)
                  </th>
                  <th scope="col" class="num">
                    Cost (30 days)
                  </th>
                  <th scope="col">Created</th>
                </tr>
              </thead>
              <tbody>
                {d.platforms.map((p) => (
                  <tr key={p.id}>
                    <td>
                      <a href={`/platforms/${p.slug}`}>{p.name}</a>
                      <div class="muted">{p.slug}</div>
                    </td>
                    <td>
                      <StatusBadge status={p.status} />
                    </td>
                    <td class="num">{p.stats ? num(p.stats.users) : '—'}</td>
                    <td class="num">{p.stats ? num(p.stats.calls_30d) : '—'}</td>
                    <td class="num">
                      {p.stats?.currency ? moneyMicro(p.stats.cost_micro_30d, p.stats.currency) : '—'}
                    </td>
                    <td>{when(p.created_at)}</td>
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

interface PlatformDetailView extends PlatformView {
  blueprint: { identity: { name: string; branding: { colors: { primary: string } } } };
  warnings: string[];
  settings_not_enforced: { path: string; reason?: string }[];
}

export function PlatformDetail() {
  const slug = match('/platforms/:slug', path.value)?.slug ?? '';
  const r = useResource(
    () => op<PlatformDetailView>('GET', `/platforms/${encodeURIComponent(slug)}`),
    [slug],
  );
  const reset = useSignal<{ link: string; email: string } | null>(null);
  const admin = isOperatorAdmin();
  const act = async (what: string, body: unknown = {}) => {
    await op('POST', `/platforms/${encodeURIComponent(slug)}/${what}`, body);
    await r.reload();
  };
  return (
    <>
      <p>
        <a href="/platforms">← Platforms</a>
      </p>
      <Async r={r}>
        {(p) => (
          <>
            <Title>{p.name}</Title>
            <div class="cards">
              <div class="card">
                <div class="label">Status</div>
                <div class="big">
                  <StatusBadge status={p.status} />
                </div>
                {p.status_reason ? <div class="muted">{p.status_reason}</div> : null}
              </div>
              <div class="card">
                <div class="label">Address</div>
                <div>
                  <a href={p.url} data-reload="" rel="noopener">
                    {p.url}
                  </a>
                </div>
              </div>
              <div class="card">
                <div class="label">Template</div>
                <div>{p.template}</div>
              </div>
              <div class="card">
                <div class="label">Created</div>
                <div>{when(p.created_at)}</div>
              </div>
            </div>
            {p.warnings.length ? (
              <Notice kind="warn">
                <ul>
                  {p.warnings.map((w) => (
                    <li key={w}>{w}</li>
                  ))}
                </ul>
              </Notice>
            ) : null}
            {admin ? (
              <section aria-labelledby="life">
                <h2 id="life">Lifecycle</h2>
                <div class="actions">
                  {p.status === 'active' ? (
                    <ActionButton
                      onClick={() => act('suspend')}
                      confirm={`Suspend ${p.name}? Its pages and API answer 503 until it is resumed.`}
                    >
                      Suspend
                    </ActionButton>
                  ) : null}
                  {p.status === 'suspended' ? (
                    <ActionButton onClick={() => act('resume')}>Resume</ActionButton>
                  ) : null}
                  {p.status !== 'archived' ? (
                    <ActionButton
                      onClick={() => act('archive')}
                      confirm={`Archive ${p.name}? Its database is closed and kept on disk.`}
                    >
                      Archive
                    </ActionButton>
                  ) : (
                    <ActionButton onClick={() => act('unarchive')}>Unarchive</ActionButton>
                  )}
                  {p.status === 'archived' ? (
                    <ActionButton
                      class="danger"
                      confirm={`Delete ${p.name} for good? Its database file is removed; the slug stays reserved for a while.`}
                      onClick={async () => {
                        await op(
                          'DELETE',
                          `/platforms/${encodeURIComponent(slug)}?confirm=${encodeURIComponent(slug)}`,
                        );
                        navigate('/platforms');
                      }}
                    >
                      Delete
                    </ActionButton>
                  ) : null}
                </div>
              </section>
            ) : null}
            {p.status !== 'archived' ? <PlatformPlan slug={p.slug} admin={admin} /> : null}
            {admin && p.status !== 'archived' ? <Rename p={p} onDone={() => r.reload()} /> : null}
            <Domains p={p} admin={admin} onDone={() => r.reload()} />
            {p.status !== 'archived' ? <TrustedKeys slug={p.slug} admin={admin} /> : null}
            {admin && p.status !== 'archived' ? (
              <section aria-labelledby="owner">
                <h2 id="owner">Owner access</h2>
                <p class="muted">A one-time link that lets the platform's owner set a new password.</p>
                <ActionButton
                  onClick={async () => {
                    reset.value = await op('POST', `/platforms/${encodeURIComponent(slug)}/owner-reset`, {});
                  }}
                >
                  Make an owner reset link
                </ActionButton>
                {reset.value ? (
                  <OneTimeSecret label={`Reset link for ${reset.value.email}`} value={reset.value.link} />
                ) : null}
              </section>
            ) : null}
          </>
        )}
      </Async>
    </>
  );
}

function Rename({ p, onDone }: { p: PlatformDetailView; onDone: () => unknown }) {
  const name = useSignal(p.blueprint.identity.name);
  const form = useForm();
  const saved = useSignal(false);
  return (
    <section aria-labelledby="settings">
      <h2 id="settings">Settings</h2>
      <Form
        state={form}
        label="Platform settings"
        onSubmit={async () => {
          saved.value = false;
          await op('PATCH', `/platforms/${encodeURIComponent(p.slug)}`, {
            blueprint: { identity: { name: name.value } },
          });
          saved.value = true;
          await onDone();
        }}
      >
        <Field label="Platform name" name="blueprint/identity/name" value={name} form={form} />
        <div class="actions">
          <Submit state={form}>Save</Submit>
        </div>
        {saved.value ? <Notice>Saved</Notice> : null}
      </Form>
    </section>
  );
}

function Domains({ p, admin, onDone }: { p: PlatformView; admin: boolean; onDone: () => unknown }) {
  const host = useSignal('');
  const form = useForm();
  return (
    <section aria-labelledby="domains">
      <h2 id="domains">Custom domains</h2>
      {p.domains.length ? (
        <ul>
          {p.domains.map((d) => (
            <li key={d}>
              {d}{' '}
              {admin ? (
                <ActionButton
                  label={`Remove ${d}`}
                  confirm={`Unmap ${d}?`}
                  onClick={async () => {
                    await op(
                      'DELETE',
                      `/platforms/${encodeURIComponent(p.slug)}/domains/${encodeURIComponent(d)}`,
                    );
                    await onDone();
                  }}
                >
                  Remove
                </ActionButton>
              ) : null}
            </li>
          ))}
        </ul>
      ) : (
        <p class="muted">None: the platform answers on its own subdomain.</p>
      )}
      {admin && p.status !== 'archived' ? (
        <Form
          state={form}
          label="Add a domain"
          onSubmit={async () => {
            await op('POST', `/platforms/${encodeURIComponent(p.slug)}/domains`, { host: host.value.trim() });
            host.value = '';
            await onDone();
          }}
        >
          <Field label="Domain" name="host" value={host} form={form} placeholder="ai.example.com" />
          <div class="actions">
            <Submit state={form} class="">
              Add domain
            </Submit>
          </div>
        </Form>
      ) : null}
    </section>
  );
}

// ---------------------------------------------------------------------------------------------
// The create-platform wizard: template → brand (live preview) → domain → done.

const TEMPLATES = [
  {
    id: 'creator',
    label: 'Creator',
    text: 'A creator business: a public marketplace of agents, subscriptions.',
  },
  {
    id: 'business',
    label: 'Business',
    text: 'An internal AI platform for a company: SSO, audit, on-prem models.',
  },
  { id: 'education', label: 'Education', text: 'A school or course: classes of learners, safe defaults.' },
  { id: 'blank', label: 'Blank', text: 'Nothing turned on: choose every setting yourself.' },
];

const slugOf = (name: string) =>
  name
    .toLowerCase()
    .normalize('NFKD')
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, 40);

interface Created {
  slug: string;
  url: string;
  admin: { email: string; password: string };
  warnings: string[];
}

function Step({ n, of, title }: { n: number; of: number; title: string }) {
  return (
    <p class="muted" aria-live="polite">
      Step {n} of {of}: {title}
    </p>
  );
}

export function NewPlatform() {
  const step = useSignal(1);
  const template = useSignal('creator');
  const name = useSignal('');
  const primary = useSignal('#4f46e5');
  const slug = useSignal('');
  const slugTouched = useSignal(false);
  const domain = useSignal('');
  const ownerEmail = useSignal('');
  const form = useForm();
  const created = useSignal<Created | null>(null);
  if (!isOperatorAdmin())
    return (
      <>
        <Title>New platform</Title>
        <Notice kind="warn">Creating a platform needs the operator_admin role.</Notice>
      </>
    );
  if (created.value) {
    const c = created.value;
    return (
      <>
        <Title>Platform created</Title>
        <p>
          <strong>{name.value || c.slug}</strong> is live at{' '}
          <a href={c.url} data-reload="" rel="noopener">
            {c.url}
          </a>
          .
        </p>
        <Notice kind="warn">Give these to the platform's owner now: the password is not shown again.</Notice>
        <OneTimeSecret label="Owner email" value={c.admin.email} />
        <OneTimeSecret label="Owner password" value={c.admin.password} />
        {c.warnings.length ? (
          <Notice kind="warn">
            <ul>
              {c.warnings.map((w) => (
                <li key={w}>{w}</li>
              ))}
            </ul>
          </Notice>
        ) : null}
        <div class="actions">
          <a class="button primary" href={`/platforms/${c.slug}`}>
            Open the platform
          </a>
          <a class="button" href="/platforms">
            All platforms
          </a>
        </div>
      </>
    );
  }
  const next = (e: Event) => {
    e.preventDefault();
    if (step.value === 2 && !slugTouched.value) slug.value = slugOf(name.value);
    step.value += 1;
    queueMicrotask(() => document.querySelector<HTMLElement>('main h1')?.focus());
  };
  const back = () => {
    step.value -= 1;
  };
  return (
    <>
      <Title>New platform</Title>
      {step.value === 1 ? (
        <form onSubmit={next} aria-label="Template">
          <Step n={1} of={3} title="template" />
          <fieldset>
            <legend>Start from a template</legend>
            {TEMPLATES.map((t) => (
              <label class="check option" key={t.id}>
                <input
                  type="radio"
                  name="template"
                  value={t.id}
                  checked={template.value === t.id}
                  onChange={() => {
                    template.value = t.id;
                  }}
                />
                <span>
                  <strong>{t.label}</strong>
                  <span class="muted"> · {t.text}</span>
                </span>
              </label>
            ))}
          </fieldset>
          <div class="actions">
            <button type="submit" class="primary">
              Next
            </button>
          </div>
        </form>
      ) : null}
      {step.value === 2 ? (
        <form onSubmit={next} aria-label="Brand">
          <Step n={2} of={3} title="brand" />
          <div class="row">
            <div>
              <Field label="Platform name" name="name" value={name} form={form} required maxLength={100} />
              <Field label="Primary color" name="primary" type="color" value={primary} form={form} />
            </div>
            <Preview name={name} primary={primary} />
          </div>
          <div class="actions">
            <button type="button" onClick={back}>
              Back
            </button>
            <button type="submit" class="primary" disabled={!name.value.trim()}>
              Next
            </button>
          </div>
        </form>
      ) : null}
      {step.value === 3 ? (
        <Form
          state={form}
          label="Domain"
          onSubmit={async () => {
            const body: Record<string, unknown> = {
              slug: slug.value.trim(),
              template: template.value,
              name: name.value.trim(),
              blueprint: { identity: { branding: { colors: { primary: primary.value } } } },
            };
            if (domain.value.trim()) body.domain = domain.value.trim();
            if (ownerEmail.value.trim()) body.owner_email = ownerEmail.value.trim();
            created.value = await op<Created>('POST', '/platforms', body);
          }}
        >
          <Step n={3} of={3} title="domain and owner" />
          <Field
            label="Slug"
            name="slug"
            value={slug}
            form={form}
            hint="its address: <slug>.<base domain>"
            required
          />
          <Field
            label="Custom domain"
            name="domain"
            value={domain}
            form={form}
            hint="optional"
            placeholder="ai.example.com"
          />
          <Field
            label="Owner email"
            name="owner_email"
            type="email"
            value={ownerEmail}
            form={form}
            hint="optional: a placeholder address is made"
          />
          <div class="actions">
            <button type="button" onClick={back}>
              Back
            </button>
            <Submit state={form}>Create platform</Submit>
          </div>
        </Form>
      ) : null}
    </>
  );
}

/** What the portal will look like, drawn with the colors being chosen. */
function Preview({ name, primary }: { name: Signal<string>; primary: Signal<string> }) {
  return (
    <section
      class="preview"
      aria-label="Preview"
      style={{ '--p': primary.value, '--on-p': onColor(primary.value) }}
    >
      <div class="preview-bar">{name.value.trim() || 'Your platform'}</div>
      <div class="preview-body">
        <p>Welcome back.</p>
        <span class="preview-button">New chat</span>
      </div>
    </section>
  );
}
