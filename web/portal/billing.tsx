import { useSignal } from '@preact/signals';
import { ApiError, api } from '../shared/api.ts';
import { moneyMicro } from '../shared/format.ts';
import { Async, Empty, Field, Form, Notice, TableWrap, Title, useForm, useResource } from '../shared/ui.tsx';
import { InvoicesSection } from './invoices.tsx';
import { PayoutsSection } from './payouts.tsx';

interface Credits {
  credits: { currency: string; balance_micro: number; balance_minor: number };
  topups: { id: string; amount_minor: number; currency: string; status: string; created_at: string }[];
}
interface Purchases {
  purchases: {
    id: string;
    listing_id: string;
    amount_minor: number;
    currency: string;
    status: string;
    method: string;
    created_at: string;
  }[];
}

const minor = (n: number, currency: string) => moneyMicro(n * 1_000_000, currency);

/**
 * The user's billing (issue 13): prepaid credits with a top-up through Stripe Checkout, the
 * top-ups and the purchases. Back from a top-up's checkout (`?topup=success`), the newest open
 * top-up is checked with Stripe and posted before the page reads the balance.
 */
export function BillingPage() {
  const returned = useSignal<string | null>(null);
  const r = useResource(async () => {
    const state = new URLSearchParams(location.search).get('topup');
    if (state) {
      history.replaceState(null, '', location.pathname);
      if (state === 'cancel') returned.value = 'Top-up cancelled: nothing was charged.';
      else {
        // The newest top-up: checked with Stripe if still open (the webhook may have posted it).
        const newest = (await api<Credits>('GET', '/api/v1/billing/credits')).topups[0];
        const status = !newest
          ? null
          : newest.status === 'open'
            ? (await api<{ topup: { status: string } }>('POST', `/api/v1/billing/topups/${newest.id}/sync`))
                .topup.status
            : newest.status;
        returned.value =
          status === 'paid'
            ? 'Payment received: your credits are topped up.'
            : 'Your payment is not confirmed yet.';
      }
    }
    const [c, p] = await Promise.all([
      api<Credits>('GET', '/api/v1/billing/credits'),
      api<Purchases>('GET', '/api/v1/billing/purchases'),
    ]);
    return { ...c, ...p };
  }, []);
  const amount = useSignal('10.00');
  const form = useForm();
  return (
    <main id="main" class="content page">
      <Title>Billing</Title>
      {returned.value ? <Notice>{returned.value}</Notice> : null}
      <Async r={r}>
        {(d) => (
          <>
            <section aria-labelledby="credits-h">
              <h2 id="credits-h">Credits</h2>
              <p>
                <strong>{moneyMicro(d.credits.balance_micro, d.credits.currency)}</strong> to spend in the
                marketplace.
              </p>
              <Form
                state={form}
                label="Top up"
                onSubmit={async () => {
                  const cents = Math.round(Number(amount.value) * 100);
                  try {
                    const t = await api<{ checkout_url: string }>('POST', '/api/v1/billing/topups', {
                      amount_minor: Number.isFinite(cents) ? cents : 0,
                    });
                    if (/^https?:\/\//.test(t.checkout_url)) location.assign(t.checkout_url);
                  } catch (e) {
                    if (e instanceof ApiError && e.field('amount_minor'))
                      throw new ApiError(e.status, e.code, e.message, [
                        { path: '/amount', reason: e.field('amount_minor')! },
                      ]);
                    throw e;
                  }
                }}
              >
                <Field
                  label="Amount"
                  name="amount"
                  value={amount}
                  form={form}
                  inputMode="decimal"
                  hint="1.00 to 10,000.00"
                />
                <button type="submit" class="primary" disabled={form.busy.value}>
                  Top up
                </button>
              </Form>
            </section>
            <section aria-labelledby="topups-h">
              <h2 id="topups-h">Top-ups</h2>
              {d.topups.length ? (
                <TableWrap>
                  <table>
                    <thead>
                      <tr>
                        <th scope="col">When</th>
                        <th scope="col">Amount</th>
                        <th scope="col">Status</th>
                      </tr>
                    </thead>
                    <tbody>
                      {d.topups.map((t) => (
                        <tr key={t.id}>
                          <td>{new Date(t.created_at).toLocaleString()}</td>
                          <td>{minor(t.amount_minor, t.currency)}</td>
                          <td>{t.status}</td>
                        </tr>
                      ))}
                    </tbody>
                  </table>
                </TableWrap>
              ) : (
                <Empty>No top-ups yet.</Empty>
              )}
            </section>
            <section aria-labelledby="purchases-h">
              <h2 id="purchases-h">Purchases</h2>
              {d.purchases.length ? (
                <TableWrap>
                  <table>
                    <thead>
                      <tr>
                        <th scope="col">When</th>
                        <th scope="col">Listing</th>
                        <th scope="col">Amount</th>
                        <th scope="col">Paid with</th>
                        <th scope="col">Status</th>
                      </tr>
                    </thead>
                    <tbody>
                      {d.purchases.map((p) => (
                        <tr key={p.id}>
                          <td>{new Date(p.created_at).toLocaleString()}</td>
                          <td>
                            <a href={`/app/marketplace/${p.listing_id}`}>{p.listing_id}</a>
                          </td>
                          <td>{minor(p.amount_minor, p.currency)}</td>
                          <td>{p.method === 'stripe' ? 'card' : p.method}</td>
                          <td>{p.status}</td>
                        </tr>
                      ))}
                    </tbody>
                  </table>
                </TableWrap>
              ) : (
                <Empty>No purchases yet.</Empty>
              )}
            </section>
            <PayoutsSection />
          </>
        )}
      </Async>
      <InvoicesSection />
    </main>
  );
}
