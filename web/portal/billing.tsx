import { useSignal } from '@preact/signals';
import { ApiError, api } from '../shared/api.ts';
import { moneyMicro } from '../shared/format.ts';
import {
  ActionButton,
  Async,
  Empty,
  Field,
  Form,
  Notice,
  StatusBadge,
  TableWrap,
  Title,
  useForm,
  useResource,
} from '../shared/ui.tsx';
import { CreditSettingsSection } from './credit-settings.tsx';
import { InvoicesSection } from './invoices.tsx';
import { PayoutsSection } from './payouts.tsx';
import { type PlanView, paidOwn, tierPrice } from './pricing.tsx';

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

const day = (iso: string | null) => (iso ? new Date(iso).toLocaleDateString() : '');
const usageOf = (used: number, limit: number | null) => (limit === null ? `${used}` : `${used} of ${limit}`);

/** The user's plan: tier, status, renewal, today's usage; cancel and the payment method (Stripe's portal). */
function PlanSection({ d, reload }: { d: PlanView; reload: () => Promise<void> }) {
  const p = d.plan;
  const own = paidOwn(d);
  return (
    <section aria-labelledby="plan-h">
      <h2 id="plan-h">Your plan</h2>
      <p>
        <strong>{p.tier ? p.tier.name : 'No plan'}</strong>
        {p.tier ? ` · ${tierPrice(p.tier)}` : ''} · <StatusBadge status={p.status} />
        {p.via === 'team' ? ' · through a team subscription' : ''}
      </p>
      {p.status === 'past_due' && p.grace_ends_at ? (
        <Notice>
          Your last payment failed. Update your payment method before {day(p.grace_ends_at)} to keep your
          plan.
        </Notice>
      ) : null}
      {p.via === 'free' && p.subscription?.status === 'past_due' ? (
        <Notice>
          Your {p.subscription.tier} subscription is past due: you are on the free plan until it is paid.
        </Notice>
      ) : null}
      {own && p.current_period_end ? (
        <p>
          {p.cancel_at_period_end ? 'Ends on ' : 'Renews on '}
          {day(p.current_period_end)}
          {p.trial_end ? ` (trial until ${day(p.trial_end)})` : ''}
          {p.seats > 1 ? ` · ${p.seats} seats` : ''}
        </p>
      ) : null}
      <dl>
        <dt>AI requests today</dt>
        <dd>{usageOf(d.usage.requests_today, d.limits.requests_per_day)}</dd>
        <dt>Agents</dt>
        <dd>{usageOf(d.usage.agents, d.limits.agents)}</dd>
      </dl>
      <div class="actions">
        <a class="button" href="/app/pricing">
          {own ? 'Change plan' : 'See plans'}
        </a>
        {p.manageable ? (
          <ActionButton
            onClick={async () => {
              const l = await api<{ url: string }>('POST', '/api/v1/billing/portal');
              if (/^https?:\/\//.test(l.url)) location.assign(l.url);
            }}
          >
            Manage payment method
          </ActionButton>
        ) : null}
        {own && !p.cancel_at_period_end ? (
          <ActionButton
            confirm={`Cancel your ${p.tier?.name} plan? You keep it until ${day(p.current_period_end)}.`}
            onClick={async () => {
              await api('DELETE', '/api/v1/billing/subscription?at=period_end');
              await reload();
            }}
          >
            Cancel plan
          </ActionButton>
        ) : null}
      </div>
    </section>
  );
}

/**
 * The user's billing (issue 13): the plan (its tier, status and renewal, cancel, the payment
 * method through Stripe's billing portal), prepaid credits with a top-up through Stripe
 * Checkout, the top-ups and the purchases. Back from a top-up's checkout (`?topup=success`),
 * the newest open top-up is checked with Stripe and posted before the page reads the balance;
 * back from a subscription's (`?subscription=success`), the subscription is synced.
 */
export function BillingPage() {
  const returned = useSignal<string | null>(null);
  const r = useResource(async () => {
    const sub = new URLSearchParams(location.search).get('subscription');
    if (sub === 'success') {
      history.replaceState(null, '', location.pathname);
      const v = await api<PlanView>('POST', '/api/v1/billing/subscription/sync');
      returned.value =
        v.plan.via === 'own' && v.plan.status !== 'free'
          ? `Welcome to ${v.plan.tier?.name}: your plan is ${v.plan.status}.`
          : 'Your payment is not confirmed yet.';
    }
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
    const [c, p, plan] = await Promise.all([
      api<Credits>('GET', '/api/v1/billing/credits'),
      api<Purchases>('GET', '/api/v1/billing/purchases'),
      api<PlanView>('GET', '/api/v1/billing/subscription'),
    ]);
    return { ...c, ...p, plan };
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
            <PlanSection d={d.plan} reload={r.reload} />
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
            <CreditSettingsSection />
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
