import { useSignal } from '@preact/signals';
import { useMemo } from 'preact/hooks';
import { ApiError, api } from '../shared/api.ts';
import { TimeChart } from '../shared/chart.tsx';
import { day, moneyMicro, num } from '../shared/format.ts';
import {
  ActionButton,
  Async,
  Empty,
  Field,
  Form,
  type Resource,
  Submit,
  TableWrap,
  Title,
  useForm,
  useResource,
} from '../shared/ui.tsx';

/** AI usage: calls, tokens and cost over time by model and by user, with the figures as tables. */

interface Hour {
  hour: string;
  alias: string;
  user_id: string | null;
  user_email: string | null;
  currency: string;
  calls: number;
  errors: number;
  tokens_in: number;
  tokens_out: number;
  cost_micro: number | string;
  markup_micro: number | string;
}

interface Series {
  from: string;
  to: string;
  hours: Hour[];
}

interface Budget {
  id: string;
  scope: string;
  subject: string | null;
  period: string;
  limit_minor: number;
  currency: string;
  alert_percent?: number | null;
}

/** The start of `iso`'s day in the viewer's time zone, as seconds (uPlot's x). */
const who = (h: Hour) => h.user_email ?? h.user_id ?? 'API keys and services';

const localDay = (iso: string) => {
  const d = new Date(iso);
  d.setHours(0, 0, 0, 0);
  return d.getTime() / 1000;
};

type Metric = 'calls' | 'tokens' | 'cost';

interface Totals {
  calls: number;
  errors: number;
  tokens_in: number;
  tokens_out: number;
  cost: number;
  currency: string;
}

const empty = (currency: string): Totals => ({
  calls: 0,
  errors: 0,
  tokens_in: 0,
  tokens_out: 0,
  cost: 0,
  currency,
});
const add = (t: Totals, h: Hour) => {
  t.calls += h.calls;
  t.errors += h.errors;
  t.tokens_in += h.tokens_in;
  t.tokens_out += h.tokens_out;
  t.cost += Number(h.cost_micro) + Number(h.markup_micro);
};
const metricOf = (h: Hour, m: Metric) =>
  m === 'calls'
    ? h.calls
    : m === 'tokens'
      ? h.tokens_in + h.tokens_out
      : Number(h.cost_micro) + Number(h.markup_micro);

export function Usage() {
  const days = useSignal(30);
  const r = useResource(
    () =>
      api<Series>(
        'GET',
        `/api/v1/ai/usage/hourly?from=${new Date(Date.now() - days.value * 86_400_000).toISOString()}`,
      ),
    [days.value],
  );
  const budgets = useResource(() => api<{ budgets: Budget[] }>('GET', '/api/v1/ai/budgets'));
  return (
    <>
      <Title>AI usage</Title>
      <div class="field">
        <label for="range">Period</label>
        <select
          id="range"
          value={String(days.value)}
          onChange={(e) => {
            days.value = Number((e.currentTarget as HTMLSelectElement).value);
          }}
        >
          <option value="7">Last 7 days</option>
          <option value="30">Last 30 days</option>
          <option value="90">Last 90 days</option>
        </select>
      </div>
      <Async
        r={r}
        empty={(d) =>
          d.hours.length ? null : (
            <Empty>No AI calls in this period yet. Calls show here as soon as they are made.</Empty>
          )
        }
      >
        {(d) => <UsageReport d={d} />}
      </Async>
      <h2>Budgets</h2>
      <Budgets r={budgets} />
    </>
  );
}

function UsageReport({ d }: { d: Series }) {
  const metric = useSignal<Metric>('calls');
  const currency = d.hours[0]?.currency ?? 'usd';
  const { x, byModel, byUser, models, users, total } = useMemo(() => {
    // Every day of the period, in the viewer's time zone, so quiet days show as zero.
    const dayKeys: number[] = [];
    const end = localDay(d.to);
    for (let t = new Date(localDay(d.from) * 1000); t.getTime() / 1000 <= end; t.setDate(t.getDate() + 1))
      dayKeys.push(t.getTime() / 1000);
    const models = new Map<string, Totals>();
    const users = new Map<string, Totals>();
    const total = empty(currency);
    for (const h of d.hours) {
      const m = models.get(h.alias) ?? empty(h.currency);
      add(m, h);
      models.set(h.alias, m);
      const name = who(h);
      const u = users.get(name) ?? empty(h.currency);
      add(u, h);
      users.set(name, u);
      add(total, h);
    }
    const series = (key: (h: Hour) => string, names: string[]) => (m: Metric) =>
      names.map((name) => {
        const vals = new Map<number, number>();
        for (const h of d.hours)
          if (key(h) === name) vals.set(localDay(h.hour), (vals.get(localDay(h.hour)) ?? 0) + metricOf(h, m));
        return { label: name, values: dayKeys.map((k) => vals.get(k) ?? 0) };
      });
    const modelNames = [...models.keys()];
    const userNames = [...users.keys()];
    return {
      x: dayKeys,
      byModel: series((h) => h.alias, modelNames),
      byUser: series(who, userNames),
      models,
      users,
      total,
    };
  }, [d]);
  const fmt =
    metric.value === 'cost'
      ? (v: number) => moneyMicro(v, currency)
      : (v: number) => (Number.isInteger(v) ? num(v) : '');
  return (
    <>
      <div class="cards">
        <div class="card">
          <div class="label">Calls</div>
          <div class="big">{num(total.calls)}</div>
          {total.errors ? <div class="muted">{num(total.errors)} failed</div> : null}
        </div>
        <div class="card">
          <div class="label">Tokens</div>
          <div class="big">{num(total.tokens_in + total.tokens_out)}</div>
          <div class="muted">
            {num(total.tokens_in)} in · {num(total.tokens_out)} out
          </div>
        </div>
        <div class="card">
          <div class="label">Cost</div>
          <div class="big">{moneyMicro(total.cost, currency)}</div>
        </div>
      </div>
      <fieldset>
        <legend>Chart</legend>
        {(['calls', 'tokens', 'cost'] as const).map((m) => (
          <label class="check inline" key={m}>
            <input
              type="radio"
              name="metric"
              checked={metric.value === m}
              onChange={() => {
                metric.value = m;
              }}
            />
            {m === 'calls' ? 'Calls' : m === 'tokens' ? 'Tokens' : 'Cost'}
          </label>
        ))}
      </fieldset>
      <h2>By model</h2>
      <TimeChart
        x={x}
        series={byModel(metric.value)}
        title={`${metric.value} per day by model`}
        format={fmt}
      />
      <Breakdown label="Usage by model" first="Model" rows={models} />
      <h2>By user</h2>
      <TimeChart x={x} series={byUser(metric.value)} title={`${metric.value} per day by user`} format={fmt} />
      <Breakdown label="Usage by user" first="User" rows={users} />
      <p class="muted">
        Days are shown in your time zone; from {day(d.from)} to {day(d.to)}.
      </p>
    </>
  );
}

function Breakdown({ label, first, rows }: { label: string; first: string; rows: Map<string, Totals> }) {
  return (
    <TableWrap>
      <table aria-label={label}>
        <thead>
          <tr>
            <th scope="col">{first}</th>
            <th scope="col" class="num">
              Calls
            </th>
            <th scope="col" class="num">
              Tokens in
            </th>
            <th scope="col" class="num">
              Tokens out
            </th>
            <th scope="col" class="num">
              Cost
            </th>
          </tr>
        </thead>
        <tbody>
          {[...rows.entries()].map(([k, t]) => (
            <tr key={k}>
              <td>{k}</td>
              <td class="num">{num(t.calls)}</td>
              <td class="num">{num(t.tokens_in)}</td>
              <td class="num">{num(t.tokens_out)}</td>
              <td class="num">{moneyMicro(t.cost, t.currency)}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </TableWrap>
  );
}

function Budgets({ r }: { r: Resource<{ budgets: Budget[] }> }) {
  const period = useSignal<'day' | 'month'>('month');
  const amount = useSignal('');
  const currency = useSignal('usd');
  const alert = useSignal('80');
  const form = useForm();
  return (
    <>
      <Async
        r={r}
        empty={(d) => (d.budgets.length ? null : <p class="muted">No budgets: spending is not capped.</p>)}
      >
        {(d) => (
          <TableWrap>
            <table aria-label="Budgets">
              <thead>
                <tr>
                  <th scope="col">Applies to</th>
                  <th scope="col">Period</th>
                  <th scope="col" class="num">
                    Limit
                  </th>
                  <th scope="col" class="num">
                    Alert at
                  </th>
                  <th scope="col">Actions</th>
                </tr>
              </thead>
              <tbody>
                {d.budgets.map((b) => (
                  <tr key={b.id}>
                    <td>{b.scope === 'platform' ? 'The whole platform' : `${b.scope} ${b.subject}`}</td>
                    <td>{b.period}</td>
                    <td class="num">{moneyMicro(b.limit_minor * 1_000_000, b.currency)}</td>
                    <td class="num">
                      {b.alert_percent === null || b.alert_percent === undefined
                        ? '—'
                        : `${b.alert_percent}%`}
                    </td>
                    <td>
                      <ActionButton
                        label={`Remove the ${b.period} budget of ${b.scope === 'platform' ? 'the platform' : b.subject}`}
                        confirm="Remove this budget? Spending it capped is no longer capped."
                        onClick={async () => {
                          await api('DELETE', `/api/v1/ai/budgets/${encodeURIComponent(b.id)}`);
                          await r.reload();
                        }}
                      >
                        Remove
                      </ActionButton>
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
        label="Set the platform's budget"
        onSubmit={async () => {
          const major = Number(amount.value);
          if (!amount.value.trim() || !Number.isFinite(major) || major < 0)
            throw new ApiError(400, 'budget.invalid', 'the limit must be an amount of money, 0 or more', [
              { path: '/limit_minor', reason: 'must be an amount, 0 or more' },
            ]);
          await api('PUT', '/api/v1/ai/budgets', {
            scope: 'platform',
            period: period.value,
            limit_minor: Math.round(major * 100),
            currency: currency.value.trim().toLowerCase(),
            alert_percent: alert.value.trim() ? Number(alert.value) : undefined,
          });
          amount.value = '';
          await r.reload();
        }}
      >
        <div class="row">
          <div class="field">
            <label for="budget-period">Period</label>
            <select
              id="budget-period"
              value={period.value}
              onChange={(e) => {
                period.value = (e.currentTarget as HTMLSelectElement).value as 'day' | 'month';
              }}
            >
              <option value="month">Each month</option>
              <option value="day">Each day</option>
            </select>
          </div>
          <Field
            label="Limit"
            name="limit_minor"
            type="number"
            value={amount}
            form={form}
            min={0}
            step="0.01"
            hint="for the whole platform"
          />
          <Field label="Currency" name="currency" value={currency} form={form} maxLength={3} />
          <Field
            label="Alert at (%)"
            name="alert_percent"
            type="number"
            value={alert}
            form={form}
            min={1}
            max={100}
          />
        </div>
        <div class="actions">
          <Submit state={form}>Set budget</Submit>
        </div>
      </Form>
    </>
  );
}
