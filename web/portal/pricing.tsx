import { useSignal } from '@preact/signals';
import { api } from '../shared/api.ts';
import { moneyMicro } from '../shared/format.ts';
import { ActionButton, Async, Notice, Title, useResource } from '../shared/ui.tsx';

export interface Tier {
  id: string;
  name: string;
  price: { amount: number; currency: string };
  interval: 'month' | 'year';
  features: string[];
  limits: { requests_per_day: number | null; agents: number | null; seats: number | null };
  current: boolean;
}
export interface PlanView {
  plan: {
    tier: Tier | null;
    status: string;
    via: 'own' | 'team' | 'free';
    seats: number;
    method: 'stripe' | 'manual' | null;
    current_period_end: string | null;
    cancel_at_period_end: boolean;
    trial_end: string | null;
    grace_ends_at: string | null;
    subscription: { tier: string; status: string } | null;
    manageable: boolean;
  };
  limits: { requests_per_day: number | null; agents: number | null; seats: number | null };
  usage: { requests_today: number; agents: number };
  members: { user_id: string; added_at: string }[];
  tiers: Tier[];
  card_payments: boolean;
}

export const tierPrice = (t: Pick<Tier, 'price' | 'interval'>) =>
  t.price.amount === 0
    ? 'Free'
    : `${moneyMicro(t.price.amount * 1_000_000, t.price.currency)} a ${t.interval}`;

const limitText = (n: number | null, what: string) => (n === null ? `Unlimited ${what}` : `${n} ${what}`);

/** Whether the user has a paid subscription of their own that a tier change applies to. */
export const paidOwn = (p: PlanView) =>
  p.plan.via === 'own' && p.plan.method === 'stripe' && (p.plan.tier?.price.amount ?? 0) > 0;

/**
 * The platform's plans (issue 13 item 7): each tier with its price and features (its limits when
 * it lists none), the current one marked. Subscribe opens Stripe Checkout (the answer's `checkout_url`); with a paid
 * subscription already, another tier is a change (prorated by Stripe). Back from a cancelled
 * checkout (`?subscription=cancel`), a notice says nothing was charged.
 */
export function PricingPage() {
  const notice = useSignal<string | null>(null);
  const r = useResource(async () => {
    const q = new URLSearchParams(location.search).get('subscription');
    if (q) {
      history.replaceState(null, '', location.pathname);
      if (q === 'cancel') notice.value = 'Checkout cancelled: nothing was charged.';
    }
    return api<PlanView>('GET', '/api/v1/billing/subscription');
  }, []);
  return (
    <main id="main" class="content page">
      <Title>Plans</Title>
      {notice.value ? <Notice>{notice.value}</Notice> : null}
      <Async r={r}>
        {(d) => (
          <>
            {d.tiers.length === 0 ? <p>This platform offers no plans.</p> : null}
            <ul class="agent-grid" aria-label="Plans">
              {d.tiers.map((t) => (
                <li class="card" key={t.id} aria-current={t.current ? 'true' : undefined}>
                  <h2>
                    {t.name} {t.current ? <span class="badge ok">Your plan</span> : null}
                  </h2>
                  <p class="big">{tierPrice(t)}</p>
                  <ul>
                    {t.features.map((f) => (
                      <li key={f}>{f}</li>
                    ))}
                    {t.features.length === 0 ? (
                      <>
                        <li>{limitText(t.limits.requests_per_day, 'AI requests a day')}</li>
                        <li>{limitText(t.limits.agents, t.limits.agents === 1 ? 'agent' : 'agents')}</li>
                        {t.limits.seats !== null && t.limits.seats > 1 ? (
                          <li>Up to {t.limits.seats} seats</li>
                        ) : null}
                      </>
                    ) : null}
                  </ul>
                  {t.current || t.price.amount === 0 ? null : paidOwn(d) ? (
                    <ActionButton
                      class="primary"
                      label={`Switch to ${t.name}`}
                      confirm={`Switch to ${t.name} (${tierPrice(t)}) now? Stripe prorates the difference.`}
                      onClick={async () => {
                        await api('PATCH', '/api/v1/billing/subscription', { tier: t.id });
                        r.reload();
                      }}
                    >
                      Switch to {t.name}
                    </ActionButton>
                  ) : d.card_payments ? (
                    <ActionButton
                      class="primary"
                      label={`Subscribe to ${t.name}`}
                      onClick={async () => {
                        const s = await api<{ checkout_url: string }>(
                          'POST',
                          '/api/v1/billing/subscription',
                          {
                            tier: t.id,
                          },
                        );
                        if (/^https?:\/\//.test(s.checkout_url)) location.assign(s.checkout_url);
                      }}
                    >
                      Subscribe
                    </ActionButton>
                  ) : (
                    <p class="muted">Ask an admin to set this plan for you.</p>
                  )}
                </li>
              ))}
            </ul>
            <p>
              <a href="/app/billing">Your plan and billing</a>
            </p>
          </>
        )}
      </Async>
    </main>
  );
}
