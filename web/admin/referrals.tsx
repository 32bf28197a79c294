import { useSignal } from '@preact/signals';
import { api } from '../shared/api.ts';
import { num } from '../shared/format.ts';
import { Async, Empty, TableWrap, Title, useResource } from '../shared/ui.tsx';

/** The platform's referrers (features.viral_sharing): what each one's share links brought. */

interface Referrer {
  user_id: string;
  email: string;
  name: string;
  code: string;
  visits: number;
  signups: number;
  installs: number;
}

export function Referrals() {
  const days = useSignal<'30' | '90'>('30');
  const r = useResource(
    () => api<{ referrers: Referrer[] }>('GET', `/api/v1/referrals?days=${days.value}`),
    [days.value],
  );
  return (
    <>
      <Title>Referrals</Title>
      <p class="muted">
        Visits through a member's share links, the sign-ups and the installs they brought. Sign-ups count once
        confirmed.
      </p>
      <div class="field">
        <label for="referral-days">Period</label>
        <select
          id="referral-days"
          value={days.value}
          onChange={(e) => {
            days.value = (e.currentTarget as HTMLSelectElement).value as '30' | '90';
          }}
        >
          <option value="30">The last 30 days</option>
          <option value="90">The last 90 days</option>
        </select>
      </div>
      <Async
        r={r}
        empty={(d) => (d.referrers.length ? null : <Empty>No share link has brought anyone yet.</Empty>)}
      >
        {(d) => (
          <TableWrap>
            <table aria-label="Referrers">
              <thead>
                <tr>
                  <th scope="col">Member</th>
                  <th scope="col" class="num">
                    Visits
                  </th>
                  <th scope="col" class="num">
                    Sign-ups
                  </th>
                  <th scope="col" class="num">
                    Installs
                  </th>
                </tr>
              </thead>
              <tbody>
                {d.referrers.map((x) => (
                  <tr key={x.user_id}>
                    <td>{x.name ? `${x.name} (${x.email})` : x.email}</td>
                    <td class="num">{num(x.visits)}</td>
                    <td class="num">{num(x.signups)}</td>
                    <td class="num">{num(x.installs)}</td>
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
