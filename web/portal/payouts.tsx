import { useSignal } from '@preact/signals';
import { ApiError, api } from '../shared/api.ts';
import { moneyMicro, when } from '../shared/format.ts';
import { ActionButton, Async, Empty, Notice, StatusBadge, TableWrap, useResource } from '../shared/ui.tsx';

interface Account {
  connected: boolean;
  payouts_enabled: boolean;
  details_submitted: boolean;
  currency: string;
  available_micro: number | string;
}
interface Earnings {
  earned_micro: number | string;
  paid_out_micro: number | string;
}
interface Payout {
  id: string;
  amount_minor: number;
  currency: string;
  status: string;
  method: string;
  created_at: string;
}

/**
 * A creator's earnings and payouts on /app/billing (issue 13 item 6): what was earned, what
 * may be paid now, and Stripe's hosted onboarding to receive payouts. Renders nothing for a
 * user who cannot create agents (the routes answer 403).
 */
export function PayoutsSection() {
  const returned = useSignal<string | null>(null);
  const r = useResource(async () => {
    const state = new URLSearchParams(location.search).get('payouts');
    if (state) {
      history.replaceState(null, '', location.pathname);
      returned.value =
        state === 'return'
          ? 'Back from Stripe: your payout details are checked with Stripe.'
          : 'The onboarding link expired: start it again.';
    }
    try {
      const [account, earnings, list] = await Promise.all([
        api<Account>('GET', '/api/v1/billing/payouts/account'),
        api<Earnings>('GET', '/api/v1/billing/earnings'),
        api<{ payouts: Payout[] }>('GET', '/api/v1/billing/payouts'),
      ]);
      return { account, earnings, payouts: list.payouts };
    } catch (e) {
      if (e instanceof ApiError && (e.status === 403 || e.status === 404)) return null;
      throw e;
    }
  }, []);
  return (
    <Async r={r}>
      {(d) =>
        d ? (
          <section aria-labelledby="payouts-h">
            <h2 id="payouts-h">Earnings and payouts</h2>
            {returned.value ? <Notice>{returned.value}</Notice> : null}
            <p>
              Earned from your listings:{' '}
              <strong>{moneyMicro(d.earnings.earned_micro, d.account.currency)}</strong>; paid out{' '}
              {moneyMicro(d.earnings.paid_out_micro, d.account.currency)}; available{' '}
              <strong>{moneyMicro(d.account.available_micro, d.account.currency)}</strong>.
            </p>
            {d.account.payouts_enabled ? (
              <p>Payouts are set up: the platform sends your earnings to your Stripe account.</p>
            ) : (
              <>
                <p>
                  {d.account.connected
                    ? 'Your payout details are not complete yet.'
                    : 'To be paid, set up payouts with Stripe (they keep your bank details, not this platform).'}
                </p>
                <ActionButton
                  class="primary"
                  onClick={async () => {
                    const link = await api<{ url: string }>('POST', '/api/v1/billing/payouts/account/link');
                    if (/^https?:\/\//.test(link.url)) location.assign(link.url);
                  }}
                >
                  {d.account.connected ? 'Finish setting up payouts' : 'Set up payouts'}
                </ActionButton>
              </>
            )}
            {d.payouts.length ? (
              <TableWrap>
                <table aria-label="Your payouts">
                  <thead>
                    <tr>
                      <th scope="col">When</th>
                      <th scope="col" class="num">
                        Amount
                      </th>
                      <th scope="col">Status</th>
                    </tr>
                  </thead>
                  <tbody>
                    {d.payouts.map((p) => (
                      <tr key={p.id}>
                        <td>{when(p.created_at)}</td>
                        <td class="num">{moneyMicro(p.amount_minor * 1_000_000, p.currency)}</td>
                        <td>
                          <StatusBadge status={p.status} />
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
        ) : null
      }
    </Async>
  );
}
