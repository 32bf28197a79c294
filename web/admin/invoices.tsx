import { useSignal } from '@preact/signals';
import { api } from '../shared/api.ts';
import { type InvoiceSummary, InvoiceTable } from '../shared/invoice-table.tsx';
import { Async, Empty, Field, Form, Notice, Title, useForm, useResource } from '../shared/ui.tsx';

/**
 * The platform's invoices (issue 13 item 5): the users' and the operator's bills, filtered by
 * kind and month; issuing a month that has ended; the tax rates invoices apply.
 */

interface TaxSettings {
  tax_behavior: 'exclusive' | 'inclusive';
  rates: { name: string; percent: number }[];
}

const lastMonth = () => {
  const d = new Date();
  d.setUTCDate(1);
  d.setUTCMonth(d.getUTCMonth() - 1);
  return d.toISOString().slice(0, 7);
};

/** `VAT 20` / `City tax 0.5` per line ⇄ the API's rates. */
const ratesText = (rates: TaxSettings['rates']) => rates.map((r) => `${r.name} ${r.percent}`).join('\n');
const parseRates = (s: string) =>
  s
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean)
    .map((l) => {
      const m = /^(.*\S)\s+(\d+(?:\.\d+)?)%?$/.exec(l);
      return m ? { name: m[1]!, percent: Number(m[2]) } : { name: l, percent: Number.NaN };
    });

export function Invoices() {
  const kind = useSignal<'' | 'user' | 'platform'>('');
  const month = useSignal('');
  const r = useResource(() => {
    const q = new URLSearchParams();
    if (kind.value) q.set('kind', kind.value);
    if (/^\d{4}-\d{2}$/.test(month.value)) q.set('month', month.value);
    return api<{ invoices: (InvoiceSummary & { billed_to: string })[] }>(
      'GET',
      `/api/v1/admin/billing/invoices?${q}`,
    );
  }, [kind.value, month.value]);
  const tax = useResource(() => api<TaxSettings>('GET', '/api/v1/admin/billing/tax-rates'), []);
  const issueMonth = useSignal(lastMonth());
  const issued = useSignal<string | null>(null);
  const issueForm = useForm();
  const rates = useSignal<string | null>(null);
  const taxForm = useForm();
  const saved = useSignal(false);
  return (
    <>
      <Title>Invoices</Title>
      <p class="muted">
        Issued monthly: each member with billable activity gets one, and the platform gets the operator's
        bill. Invoices never change once issued; voiding one issues a credit note.
      </p>
      <section aria-labelledby="issue-h">
        <h2 id="issue-h">Issue a month</h2>
        {issued.value ? <Notice>{issued.value}</Notice> : null}
        <Form
          state={issueForm}
          label="Issue a month"
          onSubmit={async () => {
            const res = await api<{ issued: unknown[]; existing: unknown[] }>(
              'POST',
              '/api/v1/admin/billing/invoices/issue',
              { month: issueMonth.value },
            );
            issued.value = `${res.issued.length} issued, ${res.existing.length} already issued.`;
            await r.reload();
          }}
        >
          <Field
            label="Month (UTC)"
            name="month"
            value={issueMonth}
            form={issueForm}
            hint="YYYY-MM, a month that has ended"
          />
          <button type="submit" class="primary" disabled={issueForm.busy.value}>
            Issue
          </button>
        </Form>
      </section>
      <section aria-labelledby="tax-h">
        <h2 id="tax-h">Tax rates</h2>
        <Async r={tax}>
          {(t) => {
            if (rates.value === null) rates.value = ratesText(t.rates);
            return (
              <Form
                state={taxForm}
                label="Tax rates"
                onSubmit={async () => {
                  saved.value = false;
                  await api('PUT', '/api/v1/admin/billing/tax-rates', {
                    rates: parseRates(rates.value ?? ''),
                  });
                  saved.value = true;
                  await tax.reload();
                }}
              >
                <p>
                  Prices are tax-{t.tax_behavior} (the blueprint's <code>tax_behavior</code>).
                </p>
                {saved.value ? <Notice>Saved: invoices issued from now on apply these rates.</Notice> : null}
                <div class="field">
                  <label for="tax-rates">Rates, one per line: a name and a percentage</label>
                  <textarea
                    id="tax-rates"
                    rows={3}
                    value={rates.value ?? ''}
                    placeholder="VAT 20"
                    onInput={(e) => {
                      rates.value = (e.currentTarget as HTMLTextAreaElement).value;
                    }}
                  />
                </div>
                <button type="submit" disabled={taxForm.busy.value}>
                  Save rates
                </button>
              </Form>
            );
          }}
        </Async>
      </section>
      <section aria-labelledby="list-h">
        <h2 id="list-h">Invoices</h2>
        <div class="field">
          <label for="invoice-kind">Kind</label>
          <select
            id="invoice-kind"
            value={kind.value}
            onChange={(e) => {
              kind.value = (e.currentTarget as HTMLSelectElement).value as typeof kind.value;
            }}
          >
            <option value="">All</option>
            <option value="user">Members' invoices</option>
            <option value="platform">The operator's bills</option>
          </select>
        </div>
        <Field label="Month" name="filter-month" value={month} hint="YYYY-MM (empty: every month)" />
        <Async r={r} empty={(d) => (d.invoices.length ? null : <Empty>No invoices yet.</Empty>)}>
          {(d) => <InvoiceTable invoices={d.invoices} who />}
        </Async>
      </section>
    </>
  );
}
