import { useSignal } from '@preact/signals';
import { api } from '../shared/api.ts';
import { TimeChart } from '../shared/chart.tsx';
import { moneyMicro, monthSeconds, num, when } from '../shared/format.ts';
import { me } from '../shared/platform-session.ts';
import {
  ActionButton,
  Async,
  Empty,
  Field,
  Form,
  StatCards,
  StatusBadge,
  Submit,
  TableWrap,
  Title,
  useForm,
  useResource,
} from '../shared/ui.tsx';

/**
 * The platform's revenue (issue 13 item 8), all read from its ledger: totals, the last twelve
 * months as a chart with the same figures as a table, creators' earnings with what each may be
 * paid now (and a button to pay it), and the payouts made.
 */

type Micro = number | string;

interface Revenue {
  currency: string;
  marketplace: {
    sales: number;
    refunds: number;
    gross_micro: Micro;
    creators_micro: Micro;
    platform_net_micro: Micro;
    operator_fees_micro: Micro;
  };
  ai: { charged_micro: Micro; cost_micro: Micro };
}

interface Month {
  month: string;
  sales: number;
  marketplace_gross_micro: Micro;
  refunds_micro: Micro;
  subscriptions_micro: Micro;
  ai_charged_micro: Micro;
  ai_cost_micro: Micro;
  operator_fees_micro: Micro;
  payouts_micro: Micro;
}

interface Metrics {
  currency: string;
  mrr_micro: Micro;
  subscribers: number;
  trialing: number;
  manual: number;
  tiers: { tier: string; name: string; paying: number; trialing: number; manual: number; mrr_micro: Micro }[];
  churn: { days: number; at_start: number; canceled: number; rate: number };
}

interface Payouts {
  payouts: {
    id: string;
    creator_id: string;
    amount_minor: number;
    currency: string;
    status: string;
    method: string;
    failure: string | null;
    created_at: string;
  }[];
  creators: {
    creator_id: string;
    email: string | null;
    earned_micro: Micro;
    available_micro: Micro;
    payouts_enabled: boolean;
  }[];
}

/** Micro-units as a plain number of the currency's major unit (the chart's y). */
const major = (micro: Micro) => Number(micro) / 100_000_000;

export function RevenuePage() {
  const tick = useSignal(0);
  const r = useResource(
    () =>
      Promise.all([
        api<Revenue>('GET', '/api/v1/admin/billing/revenue'),
        api<{ currency: string; months: Month[] }>('GET', '/api/v1/admin/billing/revenue/monthly?months=12'),
        api<Payouts>('GET', '/api/v1/admin/billing/payouts'),
        api<Metrics>('GET', '/api/v1/admin/billing/subscriptions/metrics'),
      ]).then(([revenue, series, payouts, metrics]) => ({ revenue, series, payouts, metrics })),
    [tick.value],
  );
  return (
    <>
      <Title>Revenue</Title>
      <Async r={r}>
        {({ revenue, series, payouts, metrics }) => {
          const cur = revenue.currency;
          const money = (v: Micro) => moneyMicro(v, cur);
          const emails = new Map(payouts.creators.map((c) => [c.creator_id, c.email ?? c.creator_id]));
          return (
            <>
              <section aria-labelledby="rev-totals">
                <h2 id="rev-totals">In all</h2>
                <StatCards
                  items={
                    [
                      ['Marketplace sales', money(revenue.marketplace.gross_micro)],
                      [
                        'Sales / refunds',
                        `${num(revenue.marketplace.sales)} / ${num(revenue.marketplace.refunds)}`,
                      ],
                      ['To creators', money(revenue.marketplace.creators_micro)],
                      ["The platform's share", money(revenue.marketplace.platform_net_micro)],
                      ["The operator's fees", money(revenue.marketplace.operator_fees_micro)],
                      ['AI usage charged', money(revenue.ai.charged_micro)],
                      ['AI cost', money(revenue.ai.cost_micro)],
                    ] as const
                  }
                />
              </section>
              <section aria-labelledby="rev-subs">
                <h2 id="rev-subs">Subscriptions</h2>
                <StatCards
                  items={
                    [
                      ['MRR', moneyMicro(metrics.mrr_micro, metrics.currency)],
                      ['Paying subscribers', num(metrics.subscribers)],
                      ['In a trial', num(metrics.trialing)],
                      [
                        `Churn, last ${metrics.churn.days} days`,
                        `${(metrics.churn.rate * 100).toFixed(1)}% (${num(metrics.churn.canceled)} of ${num(metrics.churn.at_start)})`,
                      ],
                    ] as const
                  }
                />
                {metrics.tiers.length ? (
                  <TableWrap>
                    <table aria-label="Subscriptions by tier">
                      <thead>
                        <tr>
                          <th scope="col">Tier</th>
                          <th scope="col" class="num">
                            Paying
                          </th>
                          <th scope="col" class="num">
                            Trials
                          </th>
                          <th scope="col" class="num">
                            Set by hand
                          </th>
                          <th scope="col" class="num">
                            MRR
                          </th>
                        </tr>
                      </thead>
                      <tbody>
                        {metrics.tiers.map((t) => (
                          <tr key={t.tier}>
                            <td>{t.name}</td>
                            <td class="num">{num(t.paying)}</td>
                            <td class="num">{num(t.trialing)}</td>
                            <td class="num">{num(t.manual)}</td>
                            <td class="num">{moneyMicro(t.mrr_micro, metrics.currency)}</td>
                          </tr>
                        ))}
                      </tbody>
                    </table>
                  </TableWrap>
                ) : (
                  <Empty>No subscriptions yet.</Empty>
                )}
              </section>
              <section aria-labelledby="rev-months">
                <h2 id="rev-months">By month</h2>
                <TimeChart
                  title="Revenue by month"
                  x={series.months.map((m) => monthSeconds(m.month))}
                  format={(v) => moneyMicro(Math.round(v * 100_000_000), cur)}
                  series={[
                    {
                      label: 'Marketplace',
                      values: series.months.map((m) => major(m.marketplace_gross_micro)),
                    },
                    {
                      label: 'Subscriptions',
                      values: series.months.map((m) => major(m.subscriptions_micro)),
                    },
                    { label: 'AI charged', values: series.months.map((m) => major(m.ai_charged_micro)) },
                    { label: 'Refunds', values: series.months.map((m) => major(m.refunds_micro)) },
                    { label: 'Payouts', values: series.months.map((m) => major(m.payouts_micro)) },
                  ]}
                />
                <TableWrap>
                  <table aria-label="Revenue by month">
                    <thead>
                      <tr>
                        <th scope="col">Month</th>
                        <th scope="col" class="num">
                          Sales
                        </th>
                        <th scope="col" class="num">
                          Marketplace
                        </th>
                        <th scope="col" class="num">
                          Subscriptions
                        </th>
                        <th scope="col" class="num">
                          AI charged
                        </th>
                        <th scope="col" class="num">
                          Refunds
                        </th>
                        <th scope="col" class="num">
                          Operator's fees
                        </th>
                        <th scope="col" class="num">
                          Payouts
                        </th>
                      </tr>
                    </thead>
                    <tbody>
                      {series.months.map((m) => (
                        <tr key={m.month}>
                          <td>{m.month}</td>
                          <td class="num">{num(m.sales)}</td>
                          <td class="num">{money(m.marketplace_gross_micro)}</td>
                          <td class="num">{money(m.subscriptions_micro)}</td>
                          <td class="num">{money(m.ai_charged_micro)}</td>
                          <td class="num">{money(m.refunds_micro)}</td>
                          <td class="num">{money(m.operator_fees_micro)}</td>
                          <td class="num">{money(m.payouts_micro)}</td>
                        </tr>
                      ))}
                    </tbody>
                  </table>
                </TableWrap>
              </section>
              <section aria-labelledby="rev-creators">
                <h2 id="rev-creators">Creators</h2>
                {payouts.creators.length ? (
                  <TableWrap>
                    <table aria-label="Creators' earnings">
                      <thead>
                        <tr>
                          <th scope="col">Creator</th>
                          <th scope="col" class="num">
                            Earned
                          </th>
                          <th scope="col" class="num">
                            Available
                          </th>
                          <th scope="col">Payouts</th>
                        </tr>
                      </thead>
                      <tbody>
                        {payouts.creators.map((c) => (
                          <tr key={c.creator_id}>
                            <td>{c.email ?? c.creator_id}</td>
                            <td class="num">{money(c.earned_micro)}</td>
                            <td class="num">{money(c.available_micro)}</td>
                            <td>
                              {!c.payouts_enabled ? (
                                <span class="muted">not set up</span>
                              ) : Number(c.available_micro) >= 1_000_000 ? (
                                <ActionButton
                                  label={`Pay out ${money(c.available_micro)} to ${c.email ?? c.creator_id}`}
                                  confirm={`Send ${money(c.available_micro)} to this creator through Stripe?`}
                                  onClick={async () => {
                                    await api('POST', '/api/v1/admin/billing/payouts', {
                                      creator_id: c.creator_id,
                                      currency: cur,
                                    });
                                    tick.value++;
                                  }}
                                >
                                  Pay out
                                </ActionButton>
                              ) : (
                                <span class="muted">nothing to pay</span>
                              )}
                            </td>
                          </tr>
                        ))}
                      </tbody>
                    </table>
                  </TableWrap>
                ) : (
                  <Empty>No creator has earned anything yet.</Empty>
                )}
              </section>
              <section aria-labelledby="rev-payouts">
                <h2 id="rev-payouts">Payouts</h2>
                {payouts.payouts.length ? (
                  <TableWrap>
                    <table aria-label="Payouts">
                      <thead>
                        <tr>
                          <th scope="col">When</th>
                          <th scope="col">Creator</th>
                          <th scope="col" class="num">
                            Amount
                          </th>
                          <th scope="col">How</th>
                          <th scope="col">Status</th>
                        </tr>
                      </thead>
                      <tbody>
                        {payouts.payouts.map((p) => (
                          <tr key={p.id}>
                            <td>{when(p.created_at)}</td>
                            <td>{emails.get(p.creator_id) ?? p.creator_id}</td>
                            <td class="num">{moneyMicro(p.amount_minor * 1_000_000, p.currency)}</td>
                            <td>{p.method === 'stripe' ? 'Stripe transfer' : 'by hand'}</td>
                            <td>
                              <StatusBadge status={p.status} />
                              {p.failure ? <span class="muted"> {p.failure}</span> : null}
                            </td>
                          </tr>
                        ))}
                      </tbody>
                    </table>
                  </TableWrap>
                ) : (
                  <Empty>No payouts yet.</Empty>
                )}
              </section>
            </>
          );
        }}
      </Async>
      <StripeAccountSection />
    </>
  );
}

interface StripeView {
  account: 'own' | 'operator' | 'none';
  key_hint: string | null;
  live: boolean | null;
  updated_at: string | null;
  webhook_url: string;
}

/**
 * Which Stripe account the platform's payments go through; the owner may use the platform's
 * own (its keys are tried against Stripe, then sealed: never shown again).
 */
export function StripeAccountSection() {
  const tick = useSignal(0);
  const r = useResource(() => api<StripeView>('GET', '/api/v1/admin/billing/stripe'), [tick.value]);
  const key = useSignal('');
  const whsec = useSignal('');
  const form = useForm();
  const owner = me.value?.role === 'owner';
  return (
    <section aria-labelledby="rev-stripe">
      <h2 id="rev-stripe">Payments account</h2>
      <Async r={r}>
        {(v) => (
          <>
            <p>
              {v.account === 'own'
                ? `Payments go through this platform's own Stripe account (${v.key_hint}${v.live ? ', live' : ', test mode'}).`
                : v.account === 'operator'
                  ? "Payments go through the operator's Stripe account."
                  : 'No Stripe account: payments are recorded by hand.'}
            </p>
            {owner ? (
              <>
                <p class="muted">
                  To use your own Stripe account, add a webhook endpoint in Stripe at{' '}
                  <code>{v.webhook_url}</code>, then give its signing secret and your secret key here.
                </p>
                <Form
                  state={form}
                  label="Use your own Stripe account"
                  onSubmit={async () => {
                    await api('PUT', '/api/v1/admin/billing/stripe', {
                      secret_key: key.value.trim(),
                      webhook_secret: whsec.value.trim(),
                    });
                    key.value = '';
                    whsec.value = '';
                    tick.value++;
                  }}
                >
                  <Field label="Secret key" name="secret_key" value={key} form={form} type="password" />
                  <Field
                    label="Webhook signing secret"
                    name="webhook_secret"
                    value={whsec}
                    form={form}
                    type="password"
                  />
                  <Submit state={form}>{v.account === 'own' ? 'Replace the keys' : 'Save the keys'}</Submit>
                </Form>
                {v.account === 'own' ? (
                  <ActionButton
                    confirm="Remove this platform's Stripe keys? Payments then go through the operator's account."
                    onClick={async () => {
                      await api('DELETE', '/api/v1/admin/billing/stripe');
                      tick.value++;
                    }}
                  >
                    Remove the keys
                  </ActionButton>
                ) : null}
              </>
            ) : null}
          </>
        )}
      </Async>
    </section>
  );
}
