/**
 * Sharing, referrals and the creator's view (issue 12 items 1, 5, 6 and 9).
 *
 * - Link visibility: a published agent with visibility `link` is reachable by a signed-in user
 *   of the platform who opened its share link (`?share=<token>`); it is listed to no one else.
 *   Its editors make, rotate and revoke the token; a rotated or revoked token ends every access
 *   granted with it. The token is sealed at rest (its editors may copy the link again) and
 *   compared by its SHA-256 in constant time.
 * - Share links (`features.viral_sharing`) are built from the platform's stored public origin
 *   (never the request's Host) and carry the sharer's referral code (`?ref=`); what they bring
 *   (anonymous visits: a bounded counter; sign-ups; installs) is credited to the code's holder
 *   and reported to them, and to the platform's admins.
 * - Usage attribution: an agent's chat records the version that ran and its creator (the
 *   owner at the time of the call) on each usage row.
 * - The creator's view: per agent and version, installs (and how many a referral brought),
 *   conversations, messages, distinct users, ratings, AI usage, and the creator's referrals.
 */
import type { Database } from 'bun:sqlite';
import type { SecretSite } from '../app/index.ts';
import { secretContext, secretsOf, stateKey, stateOf } from '../app/index.ts';
import {
  actorOf,
  DAY_MS,
  dayOf,
  type PlatformRequestContext,
  recordReferralVisit,
  referralCodeOf,
  referralFigures,
  referrerOfRef,
  roleOf,
} from '../identity/index.ts';
import { randomToken, safeEqual, sha256Hex } from '../shared/crypto.ts';
import { AppError } from '../shared/errors.ts';
import { jsonInteger } from '../shared/money.ts';
import { findAgent } from './agents.repository.ts';
import { type AgentSpec, canEdit, editableAgent, readableAgent } from './agents.service.ts';
import { listingOfAgent } from './marketplace.repository.ts';
import {
  agentsOfCreator,
  allShareTokens,
  conversationsByVersion,
  dropLinkAccess,
  grantLinkAccess,
  installsByVersion,
  ratingsByVersion,
  referredInstalls,
  rewriteShareToken,
  setInstallReferrer,
  setShareToken,
  shareTokenOf,
  topReferrers,
  usageByVersion,
  usersByAgent,
  type VersionFigure,
} from './sharing.repository.ts';

const notFound = () => new AppError('agent.not_found', 'no such agent', 404);
const tokenField = (agentId: string) => `agent:${agentId}:share_token`;

function userOf(c: PlatformRequestContext): string {
  const p = c.principal;
  const id = p && (p.kind === 'user' || p.kind === 'api_key') ? p.userId : null;
  if (!id) throw new AppError('auth.forbidden', 'sharing is for signed-in users', 403);
  return id;
}
const isAdmin = (c: PlatformRequestContext) => ['owner', 'admin'].includes(roleOf(c.principal) ?? '');

/** Share tokens are sealed per agent; `keys rotate` re-seals them. */
export const SHARE_TOKEN_SECRET_SITE: SecretSite = {
  name: 'agents.share_token',
  scope: 'tenant',
  reseal(db, scope, rewrite) {
    const rows = allShareTokens(db);
    for (const r of rows)
      rewriteShareToken(db, r.id, rewrite(r.share_token, secretContext(scope, tokenField(r.id))));
    return rows.length;
  },
};

// ---------------------------------------------------------------------------------------------
// Usage attribution (item 5)

/** What a usage row of an agent's call records: the agent, the version that ran, its owner now. */
export function usageAttribution(
  db: Database,
  agentId: string | null,
  version: number | null,
): { agentId: string | null; agentVersion: number | null; creatorId: string | null } {
  if (!agentId) return { agentId: null, agentVersion: null, creatorId: null };
  return { agentId, agentVersion: version, creatorId: findAgent(db, agentId)?.owner_id ?? null };
}

// ---------------------------------------------------------------------------------------------
// Link visibility (item 1)

/** The agent's share token (made now when it has none: `made`). */
function tokenOf(
  c: PlatformRequestContext,
  agentId: string,
  make: boolean,
): { token: string; made: boolean } | null {
  const have = shareTokenOf(c.db, agentId);
  if (have) return { token: secretsOf(c.db).unseal(have.sealed, tokenField(agentId)), made: false };
  if (!make) return null;
  const token = randomToken(24);
  setShareToken(
    c.db,
    agentId,
    secretsOf(c.db).seal(token, tokenField(agentId)),
    sha256Hex(token),
    c.app.clock.now(),
  );
  return { token, made: true };
}

/**
 * A new share token for an agent (its editors): the old link, and every access it granted,
 * stop working. Audited.
 */
export function rotateLink(c: PlatformRequestContext, agentId: string) {
  const a = editableAgent(c, agentId);
  const token = randomToken(24);
  c.db.transaction(() => {
    setShareToken(
      c.db,
      a.id,
      secretsOf(c.db).seal(token, tokenField(a.id)),
      sha256Hex(token),
      c.app.clock.now(),
    );
    dropLinkAccess(c.db, a.id);
    c.app.audit.append(c.db, {
      actor: actorOf(c.principal),
      action: 'agent.link_rotated',
      target: `agent:${a.id}`,
      details: {},
    });
  })();
  return { link: { token, url: agentUrl(c, a.id, token, null) } };
}

/** Revokes an agent's share link: no token, no access through it. Audited. */
export function revokeLink(c: PlatformRequestContext, agentId: string): void {
  const a = editableAgent(c, agentId);
  c.db.transaction(() => {
    setShareToken(c.db, a.id, null, null, c.app.clock.now());
    dropLinkAccess(c.db, a.id);
    c.app.audit.append(c.db, {
      actor: actorOf(c.principal),
      action: 'agent.link_revoked',
      target: `agent:${a.id}`,
      details: {},
    });
  })();
}

/**
 * Opens an agent's share link: a signed-in user holding its current token may use it from now
 * on (until the token changes). A wrong token, another visibility or an unpublished agent: 404,
 * as for an agent that does not exist.
 */
export function openLink(c: PlatformRequestContext, agentId: string, token: unknown) {
  const userId = userOf(c);
  const a = findAgent(c.db, agentId);
  if (!a || typeof token !== 'string' || token.length > 200) throw notFound();
  if (canEdit(c, a)) return { agent: { id: a.id } };
  if (a.visibility !== 'link' || a.latest_version === null || !a.share_token_hash) throw notFound();
  if (!safeEqual(sha256Hex(token), a.share_token_hash)) throw notFound();
  c.db.transaction(() => {
    grantLinkAccess(c.db, a.id, userId, a.share_token_hash!, c.app.clock.now());
    c.app.audit.append(c.db, {
      actor: actorOf(c.principal),
      action: 'agent.link_opened',
      target: `agent:${a.id}`,
      details: {},
    });
  })();
  return { agent: { id: a.id } };
}

// ---------------------------------------------------------------------------------------------
// Share links and referrals (item 6)

function agentUrl(
  c: PlatformRequestContext,
  agentId: string,
  token: string | null,
  code: string | null,
): string {
  const u = new URL(`/app/agents/${encodeURIComponent(agentId)}`, c.origin);
  if (token) u.searchParams.set('share', token);
  if (code) u.searchParams.set('ref', code);
  return u.toString();
}

function linkWithRef(c: PlatformRequestContext, path: string, code: string): string {
  const u = new URL(path, c.origin);
  u.searchParams.set('ref', code);
  return u.toString();
}

/** `c`'s referral code, made (and audited) on the first ask. */
function myCode(c: PlatformRequestContext, userId: string): string {
  return c.db
    .transaction(() => {
      const r = referralCodeOf(c.db, userId, c.app.clock.now());
      if (r.created)
        c.app.audit.append(c.db, {
          actor: actorOf(c.principal),
          action: 'referral.code_created',
          target: `user:${userId}`,
          details: {},
        });
      return r.code;
    })
    .immediate();
}

/**
 * The links to share an agent, each carrying the caller's referral code: the agent's page (a
 * `link` agent's, with its token, for its editors: made on the first share), its listing's
 * when it is published in the marketplace, and the platform's sign-up.
 */
export function shareAgent(c: PlatformRequestContext, agentId: string) {
  const userId = userOf(c);
  const a = readableAgent(c, agentId);
  const code = myCode(c, userId);
  let token: string | null = null;
  if (a.visibility === 'link' && canEdit(c, a)) {
    const t = c.db.transaction(() => {
      const r = tokenOf(c, a.id, true)!;
      if (r.made)
        c.app.audit.append(c.db, {
          actor: actorOf(c.principal),
          action: 'agent.link_rotated',
          target: `agent:${a.id}`,
          details: { first: true },
        });
      return r.token;
    })();
    token = t;
  }
  const l = listingOfAgent(c.db, a.id);
  return {
    code,
    links: {
      agent: agentUrl(c, a.id, token, code),
      listing:
        l?.status === 'published'
          ? linkWithRef(c, `/app/marketplace/${encodeURIComponent(l.id)}`, code)
          : null,
      signup: linkWithRef(c, '/app/sign-up', code),
    },
    ...(token ? { link: { token } } : {}),
  };
}

/** Days a report covers: 30 (default) or 90. */
function daysOf(v: string | undefined): number {
  if (v === undefined || v === '30') return 30;
  if (v === '90') return 90;
  throw new AppError('referral.invalid', 'days: must be 30 or 90', 400, [
    { path: '/days', reason: 'must be 30 or 90' },
  ]);
}

/** The caller's code, share link for the platform, and what their links brought. */
export function myReferrals(c: PlatformRequestContext, q: { days?: string }) {
  const userId = userOf(c);
  const days = daysOf(q.days);
  const code = myCode(c, userId);
  const now = c.app.clock.now();
  const f = referralFigures(c.db, userId, days, now);
  const since = (dayOf(now) - days + 1) * DAY_MS;
  return {
    code,
    links: { signup: linkWithRef(c, '/app/sign-up', code) },
    days,
    visits: f.visits_by_day.reduce((n, d) => n + d.visits, 0),
    visits_by_day: f.visits_by_day,
    signups: f.signups,
    installs: referredInstalls(c.db, userId, since),
  };
}

/** The platform's referrers (admins): visits, sign-ups and installs their links brought. */
export function platformReferrals(c: PlatformRequestContext, q: { days?: string }) {
  if (!isAdmin(c)) throw new AppError('auth.forbidden', "only the platform's admins see every referrer", 403);
  const days = daysOf(q.days);
  const now = c.app.clock.now();
  const since = (dayOf(now) - days + 1) * DAY_MS;
  return { days, referrers: topReferrers(c.db, since, dayOf(now) - days + 1, 100) };
}

/** How many visits one address may have counted a minute, per platform. */
export const VISITS_PER_MINUTE = 60;
const MAX_TRACKED_ADDRESSES = 10_000;
const VISIT_WINDOWS = stateKey(
  'agents.referral_visits',
  () => new Map<string, { start: number; n: number }>(),
);

/**
 * An anonymous visit through a share link: counted for the code's holder (one counter per code
 * and UTC day; an unknown code writes nothing), at most `VISITS_PER_MINUTE` an address a
 * minute (the rest are dropped). The caller answers the same whatever happened.
 */
export function visit(c: PlatformRequestContext, ref: unknown): void {
  const now = c.app.clock.now();
  const windows = stateOf(c.db).get(VISIT_WINDOWS);
  const key = `${c.platform.id}:${c.ip ?? '-'}`;
  let w = windows.get(key);
  if (!w || now - w.start >= 60_000) {
    if (windows.size >= MAX_TRACKED_ADDRESSES) windows.clear();
    w = { start: now, n: 0 };
    windows.set(key, w);
  }
  if (++w.n > VISITS_PER_MINUTE) return;
  recordReferralVisit(c.db, ref, now);
}

/**
 * Credits a new install to the ref's holder (in the install's transaction): with
 * `features.viral_sharing` on, a known code, and a holder who is not the installer.
 */
export function attributeInstall(
  c: PlatformRequestContext,
  listingId: string,
  userId: string,
  ref: unknown,
): string | null {
  if (ref === undefined || !c.blueprint().features.viral_sharing) return null;
  const referrer = referrerOfRef(c.db, ref);
  if (!referrer || referrer === userId) return null;
  setInstallReferrer(c.db, listingId, userId, referrer);
  return referrer;
}

// ---------------------------------------------------------------------------------------------
// The creator's view (item 9)

interface Figures {
  installs: number;
  referred_installs: number;
  conversations: number;
  messages: number;
  users: number;
  ratings: number;
  rating: number | null;
  usage: { calls: number; tokens_in: number; tokens_out: number; cost_micro: bigint; markup_micro: bigint };
}

const zero = (): Figures => ({
  installs: 0,
  referred_installs: 0,
  conversations: 0,
  messages: 0,
  users: 0,
  ratings: 0,
  rating: null,
  usage: { calls: 0, tokens_in: 0, tokens_out: 0, cost_micro: 0n, markup_micro: 0n },
});

function add(into: Figures & { rating_sum?: number }, f: Partial<Figures> & { rating_sum?: number }) {
  into.installs += f.installs ?? 0;
  into.referred_installs += f.referred_installs ?? 0;
  into.conversations += f.conversations ?? 0;
  into.messages += f.messages ?? 0;
  into.ratings += f.ratings ?? 0;
  into.rating_sum = (into.rating_sum ?? 0) + (f.rating_sum ?? 0);
  if (f.usage) {
    into.usage.calls += f.usage.calls;
    into.usage.tokens_in += f.usage.tokens_in;
    into.usage.tokens_out += f.usage.tokens_out;
    into.usage.cost_micro += f.usage.cost_micro;
    into.usage.markup_micro += f.usage.markup_micro;
  }
}

function view(f: Figures & { rating_sum?: number }) {
  const { rating_sum, ...rest } = f;
  return {
    ...rest,
    rating: f.ratings ? Math.round(((rating_sum ?? 0) / f.ratings) * 100) / 100 : null,
    usage: {
      ...f.usage,
      cost_micro: jsonInteger(f.usage.cost_micro),
      markup_micro: jsonInteger(f.usage.markup_micro),
    },
  };
}

/**
 * A creator's figures: theirs, or (admins, `?creator=<user id>`) another's. Per agent they own
 * and per version (`null`: conversations testing the draft), from one grouped query per table.
 */
export function creatorStats(c: PlatformRequestContext, q: { creator?: string }) {
  const me = userOf(c);
  if (q.creator !== undefined && q.creator !== me && !isAdmin(c))
    throw new AppError('auth.forbidden', "only the platform's admins see another creator's figures", 403, [
      { path: '/creator', reason: 'is not you' },
    ]);
  const creator = q.creator ?? me;
  const agents = agentsOfCreator(c.db, creator);
  const per = new Map<string, Map<string, Figures & { rating_sum?: number }>>();
  const slot = (r: VersionFigure) => {
    const m = per.get(r.agent_id) ?? new Map<string, Figures & { rating_sum?: number }>();
    per.set(r.agent_id, m);
    const k = String(r.version);
    const f = m.get(k) ?? zero();
    m.set(k, f);
    return f;
  };
  for (const r of installsByVersion(c.db, creator))
    add(slot(r), { installs: r.installs, referred_installs: r.referred });
  for (const r of conversationsByVersion(c.db, creator)) {
    add(slot(r), { conversations: r.conversations, messages: r.messages });
    slot(r).users = r.users;
  }
  for (const r of ratingsByVersion(c.db, creator))
    add(slot(r), { ratings: r.ratings, rating_sum: r.rating_sum });
  // Usage is the creator's at call time: an agent they no longer own still shows what it cost then.
  const usage = usageByVersion(c.db, creator);
  for (const r of usage) add(slot(r), { usage: r });
  const users = usersByAgent(c.db, creator);
  const known = new Set(agents.map((a) => a.id));
  const formerly = [...new Set(usage.map((u) => u.agent_id))].filter((id) => !known.has(id));
  const total = zero() as Figures & { rating_sum?: number };
  const rows = [
    ...agents.map((a) => ({
      id: a.id,
      slug: a.slug,
      name: (JSON.parse(a.draft) as AgentSpec).name,
      visibility: a.visibility,
      latest_version: a.latest_version,
      listing: a.listing_id ? { id: a.listing_id, status: a.listing_status } : null,
      owned: true,
    })),
    ...formerly.map((id) => ({
      id,
      slug: null,
      name: null,
      visibility: null,
      latest_version: null,
      listing: null,
      owned: false,
    })),
  ].map((a) => {
    const versions = [...(per.get(a.id) ?? new Map<string, Figures>()).entries()]
      .map(([k, f]) => ({ version: k === 'null' ? null : Number(k), f }))
      .sort((x, y) => (y.version ?? 0) - (x.version ?? 0));
    const sum = zero() as Figures & { rating_sum?: number };
    for (const v of versions) add(sum, { ...v.f });
    sum.users = users.get(a.id) ?? 0;
    add(total, { ...sum });
    total.users += sum.users;
    return { ...a, totals: view(sum), versions: versions.map((v) => ({ version: v.version, ...view(v.f) })) };
  });
  const now = c.app.clock.now();
  const days = 90;
  const r = referralFigures(c.db, creator, days, now);
  return {
    creator,
    agents: rows,
    totals: view(total),
    referrals: {
      days,
      visits: r.visits_by_day.reduce((n, d) => n + d.visits, 0),
      visits_by_day: r.visits_by_day,
      signups: r.signups,
      installs: referredInstalls(c.db, creator, (dayOf(now) - days + 1) * DAY_MS),
    },
  };
}
