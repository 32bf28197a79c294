import { useSignal } from '@preact/signals';
import { useMemo } from 'preact/hooks';
import { api } from '../shared/api.ts';
import { TimeChart } from '../shared/chart.tsx';
import { moneyMicro, num } from '../shared/format.ts';
import { me } from '../shared/platform-session.ts';
import { ActionButton, Async, Empty, TableWrap, Title, useResource } from '../shared/ui.tsx';
import { boot } from './app.tsx';

/**
 * Sharing (issue 12 items 1, 6 and 9): the referral code a share link brought (kept 30 days in
 * this browser, so a later sign-up or install is credited), the Share button of agents and
 * listings, an agent's share link for its editors, and the creator's page.
 */

const REF_KEY = 'sf_ref';
const REF_DAYS = 30;
export const sharingOn = () => boot.platform.features.viral_sharing === true;

/**
 * On load: a `?ref=` in the address is remembered (30 days, first-party storage) and its visit
 * counted once (the server answers 204 whatever the code).
 */
export function captureReferral(): void {
  if (!sharingOn() || typeof location === 'undefined') return;
  const ref = new URLSearchParams(location.search).get('ref');
  if (!ref || !/^[a-z2-9]{10}$/i.test(ref)) return;
  try {
    localStorage.setItem(REF_KEY, JSON.stringify({ ref, at: Date.now() }));
  } catch {
    // Storage refused (private mode): the ref still counts for this visit.
  }
  void api('POST', '/api/v1/referrals/visit', { ref }).catch(() => undefined);
}

/** The remembered referral code, if it is younger than 30 days and sharing is on. */
export function storedReferral(): string | undefined {
  if (!sharingOn()) return undefined;
  try {
    const v = JSON.parse(localStorage.getItem(REF_KEY) ?? 'null') as { ref?: string; at?: number } | null;
    if (v?.ref && typeof v.at === 'number' && Date.now() - v.at < REF_DAYS * 86_400_000) return v.ref;
  } catch {
    // Nothing usable stored.
  }
  return undefined;
}

function CopyLink({ label, url }: { label: string; url: string }) {
  const copied = useSignal(false);
  return (
    <li>
      <strong>{label}</strong>{' '}
      <input class="share-url" readOnly value={url} aria-label={`${label} link`} size={48} />{' '}
      <button
        type="button"
        onClick={async () => {
          await navigator.clipboard?.writeText(url).catch(() => undefined);
          copied.value = true;
        }}
      >
        {copied.value ? 'Copied' : 'Copy link'}
      </button>
    </li>
  );
}

interface ShareAnswer {
  code: string;
  links: { agent: string; listing: string | null; signup: string };
}

/** A Share button: asks the server for the links (with the user's referral code) and shows them to copy. */
export function ShareButton({ agentId, only }: { agentId: string; only?: 'listing' }) {
  const links = useSignal<ShareAnswer | null>(null);
  if (!sharingOn()) return null;
  return (
    <>
      <ActionButton
        onClick={async () => {
          links.value = await api<ShareAnswer>('POST', `/api/v1/agents/${encodeURIComponent(agentId)}/share`);
        }}
      >
        Share
      </ActionButton>
      {links.value ? (
        <ul class="share-links" aria-label="Links to share">
          {only !== 'listing' ? <CopyLink label="Agent" url={links.value.links.agent} /> : null}
          {links.value.links.listing ? (
            <CopyLink label="Marketplace listing" url={links.value.links.listing} />
          ) : null}
          <CopyLink label="Sign-up" url={links.value.links.signup} />
        </ul>
      ) : null}
    </>
  );
}

/** For an agent's editors, with link visibility: make, rotate or revoke its share link. */
export function LinkControls({ agentId }: { agentId: string }) {
  const url = useSignal<string | null>(null);
  const note = useSignal<string | null>(null);
  return (
    <section aria-labelledby="share-link">
      <h2 id="share-link">Share link</h2>
      <p>
        Anyone signed in on {boot.platform.name} who opens this link may use the agent, once published. A new
        link ends the old one, and the access it gave.
      </p>
      {url.value ? (
        <ul class="share-links">
          <CopyLink label="Share link" url={url.value} />
        </ul>
      ) : null}
      {note.value ? <p class="muted">{note.value}</p> : null}
      <div class="actions">
        <ActionButton
          confirm={url.value ? 'Make a new link? The current one stops working.' : undefined}
          onClick={async () => {
            const r = await api<{ link: { url: string } }>(
              'POST',
              `/api/v1/agents/${encodeURIComponent(agentId)}/link`,
            );
            url.value = r.link.url;
            note.value = null;
          }}
        >
          {url.value ? 'New link' : 'Make a link'}
        </ActionButton>
        <ActionButton
          class="danger"
          confirm="Revoke the link? Nobody can open the agent with it any more."
          onClick={async () => {
            await api('DELETE', `/api/v1/agents/${encodeURIComponent(agentId)}/link`);
            url.value = null;
            note.value = 'The link is revoked.';
          }}
        >
          Revoke link
        </ActionButton>
      </div>
    </section>
  );
}

/** Opens an agent's share link (`?share=`) before its page reads it: the server grants access. */
export async function openShareLink(agentId: string): Promise<void> {
  const token = new URLSearchParams(location.search).get('share');
  if (!token) return;
  await api('POST', `/api/v1/agents/${encodeURIComponent(agentId)}/link/open`, { token });
}

// -----------------------------------------------------------------------------------------------
// The creator's page

interface Figures {
  installs: number;
  referred_installs: number;
  conversations: number;
  messages: number;
  users: number;
  ratings: number;
  rating: number | null;
  usage: { calls: number; tokens_in: number; tokens_out: number; cost_micro: number; markup_micro: number };
}
interface CreatorStats {
  agents: {
    id: string;
    name: string | null;
    latest_version: number | null;
    owned: boolean;
    listing: { id: string; status: string } | null;
    totals: Figures;
    versions: ({ version: number | null } & Figures)[];
  }[];
  totals: Figures;
  referrals: {
    days: number;
    visits: number;
    visits_by_day: { day: string; visits: number }[];
    signups: number;
    installs: number;
  };
}

function Row({ label, f, head }: { label: string; f: Figures; head?: boolean }) {
  const Cell = head ? 'th' : 'td';
  return (
    <tr class={head ? 'total' : undefined}>
      <Cell scope={head ? 'row' : undefined}>{label}</Cell>
      <td class="num">{num(f.installs)}</td>
      <td class="num">{num(f.referred_installs)}</td>
      <td class="num">{num(f.conversations)}</td>
      <td class="num">{num(f.messages)}</td>
      <td class="num">{num(f.users)}</td>
      <td class="num">{f.ratings ? `${f.rating} (${f.ratings})` : '—'}</td>
      <td class="num">{num(f.usage.calls)}</td>
      <td class="num">{num(f.usage.tokens_in + f.usage.tokens_out)}</td>
      <td class="num">{moneyMicro(f.usage.cost_micro + f.usage.markup_micro)}</td>
    </tr>
  );
}

/** The creator's view: their agents' figures per version, and what their share links brought. */
export function CreatorPage() {
  const r = useResource(() => api<CreatorStats>('GET', '/api/v1/creator/stats'));
  return (
    <main id="main" class="content page">
      <Title>Creator</Title>
      {!me.value?.permissions.includes('agents:write') ? (
        <p>This page is for the platform's creators.</p>
      ) : (
        <Async r={r}>{(d) => <CreatorFigures d={d} />}</Async>
      )}
    </main>
  );
}

function CreatorFigures({ d }: { d: CreatorStats }) {
  const days = d.referrals.visits_by_day;
  const chart = useMemo(() => {
    // Every day of the window, so days without visits show as zero.
    const end = Date.parse(`${new Date().toISOString().slice(0, 10)}T00:00:00Z`);
    const byDay = new Map(days.map((v) => [v.day, v.visits]));
    const x: number[] = [];
    const values: number[] = [];
    for (let i = d.referrals.days - 1; i >= 0; i--) {
      const t = end - i * 86_400_000;
      x.push(t / 1000);
      values.push(byDay.get(new Date(t).toISOString().slice(0, 10)) ?? 0);
    }
    return { x, series: [{ label: 'Visits', values }] };
  }, [days, d.referrals.days]);
  return (
    <>
      <h2>Your agents</h2>
      {d.agents.length === 0 ? (
        <Empty>
          You have no agents yet. <a href="/app/agents/new">Make one</a>.
        </Empty>
      ) : (
        <TableWrap>
          <table aria-label="Your agents' figures">
            <thead>
              <tr>
                <th scope="col">Agent and version</th>
                <th scope="col" class="num">
                  Installs
                </th>
                <th scope="col" class="num">
                  By referral
                </th>
                <th scope="col" class="num">
                  Chats
                </th>
                <th scope="col" class="num">
                  Messages
                </th>
                <th scope="col" class="num">
                  Users
                </th>
                <th scope="col" class="num">
                  Rating
                </th>
                <th scope="col" class="num">
                  AI calls
                </th>
                <th scope="col" class="num">
                  Tokens
                </th>
                <th scope="col" class="num">
                  AI cost
                </th>
              </tr>
            </thead>
            <tbody>
              {d.agents.flatMap((a) => [
                <Row key={a.id} head label={a.name ?? `${a.id} (no longer yours)`} f={a.totals} />,
                ...a.versions.map((v) => (
                  <Row
                    key={`${a.id}-${v.version}`}
                    label={v.version === null ? '  draft tests' : `  version ${v.version}`}
                    f={v}
                  />
                )),
              ])}
              <Row head label="All agents" f={d.totals} />
            </tbody>
          </table>
        </TableWrap>
      )}
      {sharingOn() ? <Referrals d={d} chart={chart} /> : null}
    </>
  );
}

function Referrals({
  d,
  chart,
}: {
  d: CreatorStats;
  chart: { x: number[]; series: { label: string; values: number[] }[] };
}) {
  const days = d.referrals.visits_by_day;
  return (
    <>
      <h2>Referrals</h2>
      <p>
        In the last {d.referrals.days} days your share links brought {num(d.referrals.visits)} visits,{' '}
        {num(d.referrals.signups)} sign-ups and {num(d.referrals.installs)} installs.
      </p>
      {days.length ? (
        <>
          <TimeChart x={chart.x} series={chart.series} title="Visits through your share links, per day" />
          <TableWrap>
            <table aria-label="Visits per day">
              <thead>
                <tr>
                  <th scope="col">Day</th>
                  <th scope="col" class="num">
                    Visits
                  </th>
                </tr>
              </thead>
              <tbody>
                {days.map((v) => (
                  <tr key={v.day}>
                    <td>{v.day}</td>
                    <td class="num">{num(v.visits)}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </TableWrap>
        </>
      ) : (
        <p class="muted">No visits yet: share an agent to start.</p>
      )}
    </>
  );
}
