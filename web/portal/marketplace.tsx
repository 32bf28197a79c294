import { useSignal } from '@preact/signals';
import { ApiError, api } from '../shared/api.ts';
import { me } from '../shared/platform-session.ts';
import { match, navigate, path } from '../shared/router.ts';
import {
  ActionButton,
  Async,
  Empty,
  Field,
  Form,
  Notice,
  Submit,
  Title,
  useForm,
  useResource,
} from '../shared/ui.tsx';
import { ShareButton, storedReferral } from './sharing.tsx';

/**
 * The platform's marketplace: browse and search (keyword, semantic or both), a listing's page
 * (install, chat, review, report; vote while the community reviews it), and the community's
 * queue of submitted listings.
 */

interface Listing {
  id: string;
  agent: { id: string; name: string; avatar: string | null; version: number };
  title: string;
  summary: string;
  category: string;
  tags: string[];
  price: { model: 'free' | 'one_time' | 'subscription'; amount_minor: number; currency: string };
  status: string;
  installs: number;
  reviews: number;
  rating: number | null;
  installed: number | null;
  /** A federated agent's source (null: made on this platform). */
  attribution?: { platform: { name: string }; creator: string | null } | null;
  review_note?: string | null;
}

interface Voting {
  open: boolean;
  approvals: number;
  rejections: number;
  needed: number;
  mine: { vote: 'approve' | 'reject'; reason: string } | null;
  can_vote: boolean;
  cannot_vote?: string;
}

const MODES = [
  ['hybrid', 'Words and meaning'],
  ['keyword', 'Exact words'],
  ['semantic', 'Meaning'],
] as const;

const price = (p: Listing['price']) =>
  p.model === 'free'
    ? 'Free'
    : `${new Intl.NumberFormat(undefined, { style: 'currency', currency: p.currency.toUpperCase() }).format(p.amount_minor / 100)}${p.model === 'subscription' ? ' a month' : ''}`;

const stars = (r: number | null) => (r === null ? 'No ratings yet' : `${r.toFixed(1)} of 5`);

export function Marketplace() {
  const q = useSignal(new URLSearchParams(location.search).get('q') ?? '');
  const applied = useSignal(q.value);
  const mode = useSignal('hybrid');
  const r = useResource(
    () =>
      api<{ listings: Listing[] }>(
        'GET',
        `/api/v1/marketplace${applied.value ? `?q=${encodeURIComponent(applied.value)}&mode=${mode.value}` : ''}`,
      ),
    [applied.value, mode.value],
  );
  const form = useForm();
  return (
    <main id="main" class="content page">
      <Title>Marketplace</Title>
      <Form
        state={form}
        label="Search the marketplace"
        onSubmit={() => {
          applied.value = q.value.trim();
        }}
      >
        <div class="row">
          <Field label="Search agents" name="q" type="search" value={q} form={form} />
          <div class="field">
            <label for="mode">Match</label>
            <select
              id="mode"
              value={mode.value}
              onChange={(e) => {
                mode.value = (e.currentTarget as HTMLSelectElement).value;
              }}
            >
              {MODES.map(([v, label]) => (
                <option key={v} value={v}>
                  {label}
                </option>
              ))}
            </select>
          </div>
        </div>
        <div class="actions">
          <Submit state={form}>Search</Submit>
        </div>
      </Form>
      <p>
        <a href="/app/marketplace/community">Listings waiting for the community's review</a>
      </p>
      <Async
        r={r}
        empty={(d) =>
          d.listings.length ? null : (
            <Empty>{applied.value ? 'Nothing matches.' : 'Nothing is listed yet.'}</Empty>
          )
        }
      >
        {(d) => (
          <ul class="agent-grid">
            {d.listings.map((l) => (
              <li class="card" key={l.id}>
                <div class="agent-head">
                  <span class="avatar" aria-hidden="true">
                    {l.agent.avatar && !l.agent.avatar.startsWith('https://') ? l.agent.avatar : '🤖'}
                  </span>
                  <a href={`/app/marketplace/${l.id}`}>
                    <strong>{l.title}</strong>
                  </a>
                </div>
                <p class="muted">{l.summary}</p>
                <p>
                  <span class="badge">{l.category}</span> {price(l.price)} · {stars(l.rating)} · {l.installs}{' '}
                  installs
                </p>
              </li>
            ))}
          </ul>
        )}
      </Async>
    </main>
  );
}

/**
 * Installs a listing; a paid one not bought yet answers 402 with the checkout to pay at, where
 * the browser goes (it comes back to this page with `?checkout=success`).
 */
async function installOrCheckout(id: string): Promise<void> {
  try {
    await api('POST', `/api/v1/marketplace/${id}/install`, { ref: storedReferral() });
  } catch (e) {
    const url = e instanceof ApiError && e.status === 402 ? e.extra.checkout_url : undefined;
    if (url && /^https?:\/\//.test(url)) {
      location.assign(url);
      return;
    }
    throw e;
  }
}

export function ListingPage() {
  const id = match('/app/marketplace/:id', path.value)?.id ?? '';
  // Back from a paid checkout (`?checkout=success`): what was bought is installed first (the
  // server checks the payment with Stripe), then the listing is read.
  const returned = useSignal<{ ok: boolean; text: string } | null>(null);
  const r = useResource(async () => {
    const checkout = new URLSearchParams(location.search).get('checkout');
    if (checkout) {
      history.replaceState(null, '', location.pathname);
      if (checkout === 'cancel')
        returned.value = { ok: false, text: 'Checkout cancelled: nothing was charged.' };
      else
        returned.value = await api('POST', `/api/v1/marketplace/${encodeURIComponent(id)}/install`, {
          ref: storedReferral(),
        }).then(
          () => ({ ok: true, text: 'Payment received: the agent is installed.' }),
          (e: Error) => ({ ok: false, text: `Not installed yet: ${e.message}` }),
        );
    }
    return api<{
      listing: Listing;
      reviews: { name: string | null; rating: number; text: string; version: number }[];
      voting?: Voting;
    }>('GET', `/api/v1/marketplace/${encodeURIComponent(id)}`);
  }, [id]);
  return (
    <main id="main" class="content page">
      <p>
        <a href="/app/marketplace">← Marketplace</a>
      </p>
      <Async r={r}>
        {(d) => (
          <>
            <Title>{d.listing.title}</Title>
            {returned.value ? (
              <Notice kind={returned.value.ok ? 'ok' : 'error'}>{returned.value.text}</Notice>
            ) : null}
            <p>{d.listing.summary}</p>
            {d.listing.attribution ? (
              <p class="muted">
                From {d.listing.attribution.platform.name}
                {d.listing.attribution.creator ? `, made by ${d.listing.attribution.creator}` : ''}
              </p>
            ) : null}
            <p>
              <span class="badge">{d.listing.category}</span> {d.listing.tags.map((t) => `#${t}`).join(' ')} ·
              version {d.listing.agent.version} · {price(d.listing.price)} · {stars(d.listing.rating)} ·{' '}
              {d.listing.installs} installs
            </p>
            {d.voting ? (
              <VotePanel id={d.listing.id} voting={d.voting} onDone={() => r.reload()} />
            ) : d.listing.status !== 'published' ? (
              <Notice>
                This listing is {d.listing.status.replace('_', ' ')}
                {d.listing.review_note ? ` (${d.listing.review_note})` : ''}.
              </Notice>
            ) : null}
            <div class="actions">
              {d.listing.status !== 'published' ? null : d.listing.installed === d.listing.agent.version ? (
                <span class="badge ok">Installed (version {d.listing.installed})</span>
              ) : (
                <ActionButton
                  class="primary"
                  onClick={async () => {
                    await installOrCheckout(d.listing.id);
                    await r.reload();
                  }}
                >
                  {d.listing.installed
                    ? `Update to version ${d.listing.agent.version}`
                    : d.listing.price.model === 'free'
                      ? 'Install'
                      : `Buy and install (${price(d.listing.price)})`}
                </ActionButton>
              )}
              {d.listing.installed ? (
                <ActionButton
                  onClick={async () => {
                    const c = await api<{ conversation: { id: string } }>('POST', '/api/v1/conversations', {
                      agent_id: d.listing.agent.id,
                    });
                    navigate(`/app/c/${c.conversation.id}`);
                  }}
                >
                  Chat
                </ActionButton>
              ) : null}
              {me.value?.permissions.includes('agents:write') && d.listing.price.model === 'free' ? (
                <ActionButton
                  label={`Fork ${d.listing.title}`}
                  onClick={async () => {
                    const r = await api<{ agent: { id: string } }>(
                      'POST',
                      `/api/v1/marketplace/${d.listing.id}/fork`,
                    );
                    navigate(`/app/agents/${r.agent.id}`);
                  }}
                >
                  Fork
                </ActionButton>
              ) : null}
              <ShareButton agentId={d.listing.agent.id} only="listing" />
            </div>
            <h2>Reviews</h2>
            {d.reviews.length ? (
              <ul>
                {d.reviews.map((x, i) => (
                  <li key={i}>
                    <strong>{x.rating} of 5</strong> {x.name ? `· ${x.name}` : ''} · version {x.version}
                    {x.text ? <p>{x.text}</p> : null}
                  </li>
                ))}
              </ul>
            ) : (
              <p class="muted">No reviews yet.</p>
            )}
            {d.listing.installed ? <ReviewForm id={d.listing.id} onDone={() => r.reload()} /> : null}
            <ReportForm id={d.listing.id} />
          </>
        )}
      </Async>
    </main>
  );
}

function ReviewForm({ id, onDone }: { id: string; onDone: () => unknown }) {
  const rating = useSignal('5');
  const text = useSignal('');
  const form = useForm();
  return (
    <Form
      state={form}
      label="Review"
      onSubmit={async () => {
        await api('POST', `/api/v1/marketplace/${id}/reviews`, {
          rating: Number(rating.value),
          text: text.value,
        });
        text.value = '';
        await onDone();
      }}
    >
      <div class="row">
        <div class="field">
          <label for="rating">Your rating</label>
          <select
            id="rating"
            value={rating.value}
            onChange={(e) => {
              rating.value = (e.currentTarget as HTMLSelectElement).value;
            }}
          >
            {[5, 4, 3, 2, 1].map((n) => (
              <option key={n} value={String(n)}>
                {n} of 5
              </option>
            ))}
          </select>
        </div>
        <Field label="Your review" name="text" value={text} form={form} maxLength={2000} />
      </div>
      <div class="actions">
        <Submit state={form}>Post review</Submit>
      </div>
    </Form>
  );
}

function ReportForm({ id }: { id: string }) {
  const reason = useSignal('');
  const sent = useSignal(false);
  const form = useForm();
  return (
    <details class="report">
      <summary>Report this agent</summary>
      {sent.value ? (
        <Notice>Thank you: the platform's moderators will look at it.</Notice>
      ) : (
        <Form
          state={form}
          label="Report"
          onSubmit={async () => {
            await api('POST', `/api/v1/marketplace/${id}/reports`, { reason: reason.value });
            sent.value = true;
          }}
        >
          <Field label="What is wrong" name="reason" value={reason} form={form} />
          <div class="actions">
            <Submit state={form} class="">
              Send report
            </Submit>
          </div>
        </Form>
      )}
    </details>
  );
}

const CANNOT_VOTE: Record<string, string> = {
  'listing.voter_is_creator': 'You do not vote on your own listing.',
  'listing.voter_too_new': 'Your account is too new to vote.',
  'listing.voter_unverified': 'Verify your email address to vote.',
  'listing.voter_inactive': 'Your account cannot vote.',
};

/** The community's votes on a submitted listing, and the member's own (changeable until decided). */
function VotePanel({ id, voting, onDone }: { id: string; voting: Voting; onDone: () => unknown }) {
  const reason = useSignal(voting.mine?.reason ?? '');
  const form = useForm();
  const cast = (vote: 'approve' | 'reject') => async () => {
    await api('POST', `/api/v1/marketplace/${id}/votes`, { vote, reason: reason.value || undefined });
    await onDone();
  };
  return (
    <section class="card" aria-label="Community review">
      <h2>Community review</h2>
      <p>
        {voting.approvals} of {voting.needed} approvals · {voting.rejections} rejections
        {voting.mine ? ` · you voted to ${voting.mine.vote}` : ''}
      </p>
      {voting.can_vote ? (
        <Form state={form} label="Your vote" onSubmit={cast('approve')}>
          <Field label="Why (optional)" name="vote-reason" value={reason} form={form} maxLength={1000} />
          <div class="actions">
            <Submit state={form}>{voting.mine?.vote === 'approve' ? 'Approve again' : 'Approve'}</Submit>
            <ActionButton onClick={cast('reject')}>Reject</ActionButton>
          </div>
        </Form>
      ) : (
        <p class="muted">
          {voting.open
            ? (CANNOT_VOTE[voting.cannot_vote ?? ''] ?? 'You cannot vote on this listing.')
            : 'This platform does not approve listings by community vote.'}
        </p>
      )}
    </section>
  );
}

/** The listings waiting for the community: for members in good standing (the server says why not). */
export function CommunityQueue() {
  const r = useResource(() =>
    api<{ rules: { approvals: number }; listings: (Listing & { voting: Voting })[] }>(
      'GET',
      '/api/v1/marketplace/community',
    ),
  );
  return (
    <main id="main" class="content page">
      <p>
        <a href="/app/marketplace">← Marketplace</a>
      </p>
      <Title>Community review</Title>
      <Async
        r={r}
        empty={(d) => (d.listings.length ? null : <Empty>Nothing waits for the community's votes.</Empty>)}
      >
        {(d) => (
          <>
            <p class="muted">
              {d.rules.approvals} approvals publish a listing; as many rejections send it to the moderators.
            </p>
            <ul class="agent-grid">
              {d.listings.map((l) => (
                <li class="card" key={l.id}>
                  <a href={`/app/marketplace/${l.id}`}>
                    <strong>{l.title}</strong>
                  </a>
                  <p class="muted">{l.summary}</p>
                  <p>
                    {l.voting.approvals} of {l.voting.needed} approvals · {l.voting.rejections} rejections
                    {l.voting.mine ? ` · you voted to ${l.voting.mine.vote}` : ''}
                  </p>
                </li>
              ))}
            </ul>
          </>
        )}
      </Async>
    </main>
  );
}
