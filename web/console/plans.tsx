import { type Signal, useSignal } from '@preact/signals';
import { moneyMicro, num, when } from '../shared/format.ts';
import {
  ActionButton,
  Async,
  Empty,
  Field,
  Form,
  Notice,
  Submit,
  TableWrap,
  Title,
  useForm,
  useResource,
} from '../shared/ui.tsx';
import { isOperatorAdmin, op } from './session.ts';

/** The operator's plans for platforms (issue 13 item 1): the table, the edit form; a platform's plan. */

export interface PlanView {
  id: string;
  name: string;
  price_minor: number;
  price_is_minimum: boolean;
  interval: 'month' | 'year';
  currency: string;
  max_users: number | null;
  ai_markup_percent: number;
  ai_markup_tiers: { over_minor: number; markup_percent: number }[];
  transaction_fee_percent: number;
  features: string[];
  archived: boolean;
  platforms?: number;
}

export interface PlanStatusView {
  plan: PlanView;
  users: number;
  max_users: number | null;
  over_limit: boolean;
  over_since: string | null;
  hold_at: string | null;
  held: boolean;
  message: string | null;
}

const price = (p: PlanView) =>
  `${moneyMicro(p.price_minor * 1_000_000, p.currency)}${p.price_is_minimum ? '+' : ''} / ${p.interval}`;
const tiersText = (p: PlanView) =>
  p.ai_markup_tiers
    .map((t) => `${t.markup_percent}% over ${moneyMicro(t.over_minor * 1_000_000, p.currency)}`)
    .join(', ');

/** "a: 1, b: 2" ↔ tiers: `over_minor:markup_percent` pairs, comma-separated. */
const parseTiers = (s: string) =>
  s
    .split(',')
    .map((x) => x.trim())
    .filter(Boolean)
    .map((x) => {
      const [over, pct] = x.split(':').map((y) => Number(y.trim()));
      return { over_minor: over, markup_percent: pct };
    });

export function Plans() {
  const r = useResource(() => op<{ plans: PlanView[] }>('GET', '/plans'));
  const admin = isOperatorAdmin();
  const editing = useSignal<PlanView | 'new' | null>(null);
  return (
    <>
      <Title>Plans</Title>
      <p class="muted">
        What platforms pay the operator: a price, a user limit, the markup on their AI cost (with volume
        discounts by the month's AI cost) and the fee on their sales. A template only picks a new platform's
        default plan.
      </p>
      <Async r={r} empty={(d) => (d.plans.length ? null : <Empty>No plans.</Empty>)}>
        {(d) => (
          <TableWrap>
            <table aria-label="Plans">
              <thead>
                <tr>
                  <th scope="col">Plan</th>
                  <th scope="col">Price</th>
                  <th scope="col">Users</th>
                  <th scope="col">AI markup</th>
                  <th scope="col">Transaction fee</th>
                  <th scope="col">Features</th>
                  <th scope="col">Platforms</th>
                  {admin ? <th scope="col">Actions</th> : null}
                </tr>
              </thead>
              <tbody>
                {d.plans.map((p) => (
                  <tr key={p.id}>
                    <td>
                      {p.name} <span class="muted">({p.id})</span>
                      {p.archived ? <span class="muted"> archived</span> : null}
                    </td>
                    <td>{price(p)}</td>
                    <td>{p.max_users === null ? 'unlimited' : num(p.max_users)}</td>
                    <td>
                      {p.ai_markup_percent}%
                      {p.ai_markup_tiers.length ? <div class="muted">{tiersText(p)}</div> : null}
                    </td>
                    <td>{p.transaction_fee_percent}%</td>
                    <td>{p.features.join(', ')}</td>
                    <td>{num(p.platforms ?? 0)}</td>
                    {admin ? (
                      <td>
                        <div class="actions">
                          <ActionButton label={`Edit ${p.name}`} onClick={() => (editing.value = p)}>
                            Edit
                          </ActionButton>
                          {!p.archived ? (
                            <ActionButton
                              label={`Archive ${p.name}`}
                              confirm={`Archive ${p.name}? Its platforms stay on it; no new platform goes on it.`}
                              onClick={async () => {
                                await op('POST', `/plans/${encodeURIComponent(p.id)}/archive`);
                                await r.reload();
                              }}
                            >
                              Archive
                            </ActionButton>
                          ) : null}
                          {!p.platforms ? (
                            <ActionButton
                              label={`Delete ${p.name}`}
                              class="danger"
                              confirm={`Delete ${p.name} for good?`}
                              onClick={async () => {
                                await op('DELETE', `/plans/${encodeURIComponent(p.id)}`);
                                await r.reload();
                              }}
                            >
                              Delete
                            </ActionButton>
                          ) : null}
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
        editing.value ? (
          <PlanForm
            key={editing.value === 'new' ? 'new' : editing.value.id}
            plan={editing.value === 'new' ? null : editing.value}
            onDone={async () => {
              editing.value = null;
              await r.reload();
            }}
          />
        ) : (
          <div class="actions">
            <button type="button" onClick={() => (editing.value = 'new')}>
              New plan
            </button>
          </div>
        )
      ) : null}
    </>
  );
}

function PlanForm({ plan, onDone }: { plan: PlanView | null; onDone: () => unknown }) {
  const s = (v: string | number | null | undefined): Signal<string> =>
    useSignal(v === null || v === undefined ? '' : String(v));
  const id = s(plan?.id);
  const name = s(plan?.name);
  const priceMinor = s(plan?.price_minor ?? 0);
  const maxUsers = s(plan?.max_users);
  const markup = s(plan?.ai_markup_percent ?? 30);
  const tiers = s(plan?.ai_markup_tiers.map((t) => `${t.over_minor}:${t.markup_percent}`).join(', '));
  const fee = s(plan?.transaction_fee_percent ?? 15);
  const features = s(plan?.features.join(', '));
  const form = useForm();
  return (
    <section aria-labelledby="plan-form">
      <h2 id="plan-form">{plan ? `Edit ${plan.name}` : 'New plan'}</h2>
      <Form
        state={form}
        label={plan ? `Edit ${plan.name}` : 'New plan'}
        onSubmit={async () => {
          const body = {
            name: name.value.trim(),
            price_minor: Number(priceMinor.value),
            max_users: maxUsers.value.trim() === '' ? null : Number(maxUsers.value),
            ai_markup_percent: Number(markup.value),
            ai_markup_tiers: parseTiers(tiers.value),
            transaction_fee_percent: Number(fee.value),
            features: features.value
              .split(',')
              .map((x) => x.trim())
              .filter(Boolean),
          };
          if (plan) await op('PATCH', `/plans/${encodeURIComponent(plan.id)}`, body);
          else await op('POST', '/plans', { id: id.value.trim(), ...body });
          await onDone();
        }}
      >
        {plan ? null : <Field label="Id" name="id" value={id} form={form} hint="a slug, e.g. pro" required />}
        <Field label="Name" name="name" value={name} form={form} required />
        <Field
          label="Price (minor units)"
          name="price_minor"
          type="number"
          value={priceMinor}
          form={form}
          hint="cents a month"
        />
        <Field
          label="User limit"
          name="max_users"
          type="number"
          value={maxUsers}
          form={form}
          hint="empty: unlimited"
        />
        <Field label="AI markup (%)" name="ai_markup_percent" value={markup} form={form} />
        <Field
          label="Volume discounts"
          name="ai_markup_tiers"
          value={tiers}
          form={form}
          hint="over_minor:percent, comma-separated, e.g. 50000:35"
        />
        <Field label="Transaction fee (%)" name="transaction_fee_percent" value={fee} form={form} />
        <Field label="Features" name="features" value={features} form={form} hint="comma-separated" />
        <div class="actions">
          <Submit state={form}>Save</Submit>
          <button type="button" onClick={() => onDone()}>
            Cancel
          </button>
        </div>
      </Form>
    </section>
  );
}

/** A platform's plan on its page: the plan, users against the limit, the over-limit warning. */
export function PlatformPlan({ slug, admin }: { slug: string; admin: boolean }) {
  const r = useResource(
    () =>
      Promise.all([
        op<{ plan_status: PlanStatusView }>('GET', `/platforms/${encodeURIComponent(slug)}/plan`),
        op<{ plans: PlanView[] }>('GET', '/plans'),
      ]),
    [slug],
  );
  const choice = useSignal('');
  const form = useForm();
  return (
    <section aria-labelledby="plan">
      <h2 id="plan">Plan</h2>
      <Async r={r}>
        {([{ plan_status: st }, { plans }]) => (
          <>
            {st.over_limit ? (
              <Notice kind="warn">
                {st.held ? 'Held: ' : 'Over its limit: '}
                {st.message}
              </Notice>
            ) : null}
            <p>
              <strong>{st.plan.name}</strong> ({price(st.plan)}); {num(st.users)} users of{' '}
              {st.max_users === null ? 'unlimited' : num(st.max_users)}; AI markup {st.plan.ai_markup_percent}
              %; transaction fee {st.plan.transaction_fee_percent}%
              {st.over_since ? <span class="muted"> · over since {when(st.over_since)}</span> : null}
            </p>
            {admin ? (
              <Form
                state={form}
                label="Change the plan"
                onSubmit={async () => {
                  await op('PUT', `/platforms/${encodeURIComponent(slug)}/plan`, {
                    plan: choice.value || st.plan.id,
                  });
                  await r.reload();
                }}
              >
                <div class="field">
                  <label for="plan-select">Move to plan</label>
                  <select
                    id="plan-select"
                    name="plan"
                    value={choice.value || st.plan.id}
                    onChange={(e) => {
                      choice.value = (e.currentTarget as HTMLSelectElement).value;
                    }}
                  >
                    {plans
                      .filter((p) => !p.archived || p.id === st.plan.id)
                      .map((p) => (
                        <option key={p.id} value={p.id}>
                          {p.name} ({price(p)})
                        </option>
                      ))}
                  </select>
                </div>
                <div class="actions">
                  <Submit state={form}>Change plan</Submit>
                </div>
              </Form>
            ) : null}
          </>
        )}
      </Async>
    </section>
  );
}
