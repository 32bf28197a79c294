import { api } from '../shared/api.ts';
import { num } from '../shared/format.ts';
import { Async, Title, useResource } from '../shared/ui.tsx';
import { boot } from './app.tsx';

/** The admin's first screen: the platform at a glance, and where to go next. */
export function Overview() {
  const r = useResource(async () => {
    const [users, invitations, usage] = await Promise.all([
      api<{ users: { status: string }[] }>('GET', '/api/v1/users'),
      api<{ invitations: { status: string }[] }>('GET', '/api/v1/invitations'),
      api<{ usage: { calls: number }[] }>('GET', '/api/v1/ai/usage'),
    ]);
    return {
      users: users.users.filter((u) => u.status === 'active').length,
      pending: invitations.invitations.filter((i) => i.status === 'pending').length,
      calls: usage.usage.reduce((s, l) => s + l.calls, 0),
    };
  });
  return (
    <>
      <Title>{boot.platform.name}</Title>
      <Async r={r}>
        {(d) => (
          <div class="cards">
            <a class="card" href="/admin/users">
              <div class="label">Active users</div>
              <div class="big">{num(d.users)}</div>
            </a>
            <a class="card" href="/admin/invitations">
              <div class="label">Pending invitations</div>
              <div class="big">{num(d.pending)}</div>
            </a>
            <a class="card" href="/admin/usage">
              <div class="label">AI calls this month</div>
              <div class="big">{num(d.calls)}</div>
            </a>
          </div>
        )}
      </Async>
      <ul>
        <li>
          <a href="/admin/branding">Change how your pages look</a>
        </li>
        <li>
          <a href="/admin/invitations">Invite people</a>
        </li>
        <li>
          <a href="/admin/sso">Connect your identity provider</a>
        </li>
      </ul>
    </>
  );
}
