/**
 * The platform's marketplace (issue 12 item 7): an agent's editor lists one published version
 * with a title, summary, category, tags and a price. The listing's text and the version's
 * persona go through the platform's safety checks; then, by
 * `governance.agent_approval_process`, it goes live at once (`automatic`), waits in the
 * moderators' queue (`manual`: `in_review`), or waits for the votes of members in good standing
 * (`community`: `submitted`; `governance.community_approval` sets how many and who). A listing
 * the safety checks refuse waits for the moderators whatever the process. Users browse and
 * search it (keyword, semantic, hybrid: listing-search.service.ts), install a listing (pinned to
 * its version; a paid one answers 402 until billing lands), review what they installed, and
 * report it. Moderators (the platform's owners and admins) approve, reject, suspend, restore,
 * revoke or edit, each with a reason, audited, the creator told by mail (listing-mail.ts). A
 * revoked listing's agent stops working for everyone but its editors.
 */
import { type AiDeps, platformAiPolicy, safetyVerdict } from '../ai/index.ts';
import { admit } from '../app/index.ts';
import { requirePurchase, type Sellable } from '../billing/index.ts';
import { actorOf, createUserRepository, type PlatformRequestContext, roleOf } from '../identity/index.ts';
import { AppError } from '../shared/errors.ts';
import { newId } from '../shared/ids.ts';
import { COMMUNITY_APPROVAL_DEFAULTS } from '../tenancy/index.ts';
import type { AgentRow } from './agents.repository.ts';
import { findAgent, findVersion } from './agents.repository.ts';
import { type AgentSpec, canEdit, forkAgent, manageableAgent } from './agents.service.ts';
import { revokeAgentVersions } from './federation.service.ts';
import { notifyCreator } from './listing-mail.ts';
import { embedListing, findListings, SEARCH_MODES, type SearchMode } from './listing-search.service.ts';
import {
  clearVotes,
  editListing,
  findListing,
  insertListing,
  insertReport,
  installOf,
  type ListingRow,
  type ListingStatus,
  listingOfAgent,
  listingStats,
  listReviews,
  moderationQueue,
  openReports,
  resolveReports,
  setListingStatus,
  submittedListings,
  updateListingOffer,
  upsertInstall,
  upsertReview,
  upsertVote,
  votesOn,
} from './marketplace.repository.ts';
import { attributeInstall } from './sharing.service.ts';

const iso = (ms: number) => new Date(ms).toISOString();
const bad = (path: string, reason: string) =>
  new AppError('listing.invalid', `${path.slice(1)}: ${reason}`, 400, [{ path, reason }]);
const notFound = () => new AppError('listing.not_found', 'no such listing', 404);

function userIdOf(c: PlatformRequestContext): string {
  const p = c.principal;
  const id = p && (p.kind === 'user' || p.kind === 'api_key') ? p.userId : null;
  if (!id) throw new AppError('auth.forbidden', 'the marketplace is for signed-in users', 403);
  return id;
}
const isModerator = (c: PlatformRequestContext) => ['owner', 'admin'].includes(roleOf(c.principal) ?? '');

function text(v: unknown, path: string, min: number, max: number): string {
  if (typeof v !== 'string') throw bad(path, 'must be text');
  const t = v.trim();
  if (t.length < min || t.length > max) throw bad(path, `must be ${min} to ${max} characters`);
  return t;
}

/** Where an imported agent came from, as a listing shows it (null: made here). */
function attributionOf(importedFrom: string | null) {
  if (!importedFrom) return null;
  const f = JSON.parse(importedFrom) as {
    platform: { name: string; slug: string };
    creator: string | null;
    catalog?: { revenue_share_bps: number };
  };
  return {
    platform: { name: f.platform.name, slug: f.platform.slug },
    creator: f.creator,
    revenue_share_percent: (f.catalog?.revenue_share_bps ?? 0) / 100,
  };
}

export function listingView(c: PlatformRequestContext, l: ListingRow) {
  const a = findAgent(c.db, l.agent_id);
  const v = a ? findVersion(c.db, a.id, l.version) : null;
  const spec = v
    ? (JSON.parse(v.spec) as { name: string; avatar: string | null; starter_prompts: string[] })
    : null;
  const userId = (() => {
    const p = c.principal;
    return p && (p.kind === 'user' || p.kind === 'api_key') ? p.userId : null;
  })();
  return {
    id: l.id,
    agent: {
      id: l.agent_id,
      name: spec?.name ?? l.title,
      avatar: spec?.avatar ?? null,
      version: l.version,
      hash: v?.hash ?? null,
    },
    title: l.title,
    summary: l.summary,
    category: l.category,
    tags: JSON.parse(l.tags) as string[],
    price: { model: l.price_model, amount_minor: l.price_minor, currency: l.currency },
    status: l.status,
    // A federated agent keeps its attribution, and the revenue share owed to its source.
    attribution: attributionOf(a?.imported_from ?? null),
    review_note: l.review_note ?? null,
    ...listingStats(c.db, l.id),
    installed: userId ? (installOf(c.db, l.id, userId)?.version ?? null) : null,
    created_at: iso(l.created_at),
    updated_at: iso(l.updated_at),
  };
}

/** A listing `c` may see: published, or its agent's editors', or a moderator's. */
function visibleListing(c: PlatformRequestContext, id: string): ListingRow {
  const l = findListing(c.db, id);
  if (!l) throw notFound();
  if (l.status === 'published' || isModerator(c)) return l;
  const a = findAgent(c.db, l.agent_id);
  if (a && canEdit(c, a)) return l;
  if (l.status === 'submitted' && votingOpen(c) && a && voterProblem(c, l, a) === null) return l;
  throw notFound();
}

/**
 * The platform's safety checks on what a listing shows and what its agent is told: its title,
 * summary and tags, and the version's name, description, persona and starter prompts (blocked
 * terms always; the classifier when the AI policy or `governance.content_moderation` screens).
 * The rule that refused them, or null.
 */
async function listingSafety(
  deps: AiDeps,
  c: PlatformRequestContext,
  texts: string[],
): Promise<string | null> {
  const bp = c.blueprint();
  const policy = platformAiPolicy(bp);
  const cm = bp.governance.content_moderation;
  const classify = policy.classify || (cm.enabled && cm.level !== 'minimal');
  return safetyVerdict(deps, { ...policy, classify }, texts, AbortSignal.timeout(30_000));
}

/** Lists (or lists again, with a newer version) an agent: live, submitted or in review by the platform's process. */
export async function listAgent(
  deps: AiDeps,
  c: PlatformRequestContext,
  agentId: string,
  body: Record<string, unknown>,
) {
  const a = manageableAgent(c, agentId, 'list it');
  if (a.latest_version === null)
    throw new AppError('agent.unpublished', 'publish a version of the agent before listing it', 409);
  const spec = JSON.parse(findVersion(c.db, a.id, a.latest_version)!.spec) as AgentSpec;
  const title = body.title === undefined ? spec.name : text(body.title, '/title', 1, 100);
  const summary =
    body.summary === undefined ? spec.description || spec.name : text(body.summary, '/summary', 1, 500);
  const category =
    body.category === undefined ? 'general' : text(body.category, '/category', 1, 40).toLowerCase();
  let tags: string[] = [];
  if (body.tags !== undefined) {
    if (!Array.isArray(body.tags) || body.tags.length > 8)
      throw bad('/tags', 'must be a list of at most 8 tags');
    tags = body.tags.map((t, i) => text(t, `/tags/${i}`, 1, 30).toLowerCase());
  }
  const model = body.price_model ?? 'free';
  if (model !== 'free' && model !== 'one_time' && model !== 'subscription')
    throw bad('/price_model', 'must be free, one_time or subscription');
  let amount = 0;
  if (model !== 'free') {
    if (
      !Number.isInteger(body.price_minor) ||
      (body.price_minor as number) < 1 ||
      (body.price_minor as number) > 100_000_000
    )
      throw bad('/price_minor', 'must be a whole number of minor units from 1 to 100,000,000');
    amount = body.price_minor as number;
  }
  const currency = body.currency === undefined ? 'usd' : text(body.currency, '/currency', 3, 3).toLowerCase();
  if (!/^[a-z]{3}$/.test(currency)) throw bad('/currency', 'must be an ISO 4217 code such as usd');
  const process = c.blueprint().governance.agent_approval_process;
  const existing = listingOfAgent(c.db, a.id);
  if (existing?.status === 'revoked')
    throw new AppError(
      'listing.revoked',
      'this agent was revoked from the marketplace; it cannot be listed again',
      409,
    );
  const held = await listingSafety(deps, c, [
    title,
    summary,
    tags.join(', '),
    spec.name,
    spec.description ?? '',
    spec.persona ?? '',
    ...(spec.starter_prompts ?? []),
  ]);
  const status: ListingStatus = held
    ? 'in_review'
    : process === 'automatic'
      ? 'published'
      : process === 'community'
        ? 'submitted'
        : 'in_review';
  const note = held ? `safety: ${held}` : null;
  const now = c.app.clock.now();
  const offer = {
    version: a.latest_version,
    title,
    summary,
    category,
    tags: JSON.stringify(tags),
    price_model: model as ListingRow['price_model'],
    price_minor: amount,
    currency,
    status,
    review_note: note,
  };
  const id = existing?.id ?? newId('lst');
  c.db.transaction(() => {
    if (existing) {
      updateListingOffer(c.db, id, offer, now);
      // A new version is a new round of votes.
      clearVotes(c.db, id);
    } else
      insertListing(c.db, {
        id,
        agent_id: a.id,
        ...offer,
        created_by: actorOf(c.principal),
        created_at: now,
        updated_at: now,
      });
    c.app.audit.append(c.db, {
      actor: actorOf(c.principal),
      action: status === 'published' ? 'listing.published' : 'listing.submitted',
      target: `listing:${id}`,
      details: {
        agent: a.id,
        version: a.latest_version,
        process,
        status,
        ...(held ? { held_by: held } : {}),
        price: { model, amount, currency },
      },
    });
    if (held) notifyCreator(c, { id, title, agent_id: a.id }, 'safety_hold', held);
  })();
  const l = findListing(c.db, id)!;
  await embedListing(deps, c, l);
  return { listing: listingView(c, l) };
}

export async function marketplace(
  deps: AiDeps,
  c: PlatformRequestContext,
  q: { q?: string; category?: string; mode?: string },
) {
  const mode = (q.mode ?? 'hybrid') as SearchMode;
  if (!SEARCH_MODES.includes(mode)) throw bad('/mode', `must be one of: ${SEARCH_MODES.join(', ')}`);
  const rows = await findListings(deps, c, {
    q: q.q ?? '',
    category: q.category?.trim().toLowerCase() || null,
    mode,
  });
  return { listings: rows.map((l) => listingView(c, l)) };
}

export function listing(c: PlatformRequestContext, id: string) {
  const l = visibleListing(c, id);
  return {
    listing: listingView(c, l),
    ...(l.status === 'submitted' ? { voting: votingView(c, l) } : {}),
    reviews: listReviews(c.db, l.id).map((r) => ({ ...r, created_at: iso(r.created_at) })),
    ...(isModerator(c)
      ? { reports: openReports(c.db, l.id).map((r) => ({ ...r, created_at: iso(r.created_at) })) }
      : {}),
  };
}

/** What billing sells for a paid listing (its creator: the agent's owner). */
function sellable(c: PlatformRequestContext, l: ListingRow): Sellable {
  return {
    listingId: l.id,
    version: l.version,
    title: l.title,
    priceModel: l.price_model,
    priceMinor: l.price_minor,
    currency: l.currency,
    creatorId: findAgent(c.db, l.agent_id)?.owner_id ?? l.created_by.replace(/^user:/, ''),
  };
}

/**
 * Installs a published listing for the signed-in user. A paid listing must be bought first:
 * 402 `billing.payment_required` with the checkout to pay at (billing/purchases.service.ts).
 */
export async function install(
  c: PlatformRequestContext,
  id: string,
  ref?: unknown,
  payWith?: 'credits' | 'card',
) {
  const userId = userIdOf(c);
  const l = findListing(c.db, id);
  if (l?.status !== 'published') throw notFound();
  if (l.price_model !== 'free') await requirePurchase(c, sellable(c, l), payWith);
  c.db.transaction(() => {
    const fresh = installOf(c.db, l.id, userId) === null;
    upsertInstall(c.db, l.id, userId, l.version, c.app.clock.now());
    // A new install through a share link credits its referrer (sharing.service.ts).
    const referrer = fresh ? attributeInstall(c, l.id, userId, ref) : null;
    c.app.audit.append(c.db, {
      actor: actorOf(c.principal),
      action: 'listing.installed',
      target: `listing:${l.id}`,
      details: { version: l.version, ...(referrer ? { referred_by: referrer } : {}) },
    });
  })();
  return { listing: listingView(c, l) };
}

export function review(c: PlatformRequestContext, id: string, body: Record<string, unknown>) {
  const userId = userIdOf(c);
  const l = findListing(c.db, id);
  if (!l || (l.status !== 'published' && l.status !== 'suspended')) throw notFound();
  const installed = installOf(c.db, l.id, userId);
  if (!installed) throw new AppError('listing.not_installed', 'install the agent before reviewing it', 409);
  if (!Number.isInteger(body.rating) || (body.rating as number) < 1 || (body.rating as number) > 5)
    throw bad('/rating', 'must be a whole number from 1 to 5');
  const t = body.text === undefined ? '' : text(body.text, '/text', 0, 2000);
  upsertReview(c.db, {
    listingId: l.id,
    userId,
    version: installed.version,
    rating: body.rating as number,
    text: t,
    now: c.app.clock.now(),
  });
  return listing(c, l.id);
}

export function report(c: PlatformRequestContext, id: string, body: Record<string, unknown>) {
  const userId = userIdOf(c);
  const l = findListing(c.db, id);
  if (l?.status !== 'published') throw notFound();
  const reason = text(body.reason, '/reason', 3, 1000);
  const n = c.db.transaction(() => {
    const r = insertReport(c.db, l.id, userId, reason, c.app.clock.now());
    c.app.audit.append(c.db, {
      actor: actorOf(c.principal),
      action: 'listing.reported',
      target: `listing:${l.id}`,
      details: { report: r, reason },
    });
    return r;
  })();
  return Response.json({ report: { id: n, listing: l.id, reason } }, { status: 201 });
}

export function queue(c: PlatformRequestContext) {
  return {
    listings: moderationQueue(c.db).map((l) => ({
      ...listingView(c, l),
      reports: openReports(c.db, l.id).map((r) => ({ ...r, created_at: iso(r.created_at) })),
    })),
  };
}

const MOVES: Record<string, { from: ListingStatus[]; to: ListingStatus }> = {
  approve: { from: ['submitted', 'in_review'], to: 'published' },
  reject: { from: ['submitted', 'in_review'], to: 'rejected' },
  suspend: { from: ['published'], to: 'suspended' },
  restore: { from: ['suspended'], to: 'published' },
  revoke: { from: ['submitted', 'in_review', 'published', 'rejected', 'suspended'], to: 'revoked' },
  dismiss: { from: ['published', 'suspended'], to: 'published' },
};

/** A moderator's action on a listing: always with a reason, audited; it resolves open reports. */
export function moderate(c: PlatformRequestContext, id: string, body: Record<string, unknown>) {
  const l = findListing(c.db, id);
  if (!l) throw notFound();
  const action = typeof body.action === 'string' ? body.action : '';
  const move = MOVES[action];
  if (!move) throw bad('/action', `must be one of: ${Object.keys(MOVES).join(', ')}`);
  const reason = text(body.reason, '/reason', 3, 1000);
  if (!move.from.includes(l.status))
    throw new AppError('listing.bad_transition', `a ${l.status} listing cannot be ${action}d`, 409, [
      { path: '/action', reason: `not from ${l.status}` },
    ]);
  const to = action === 'dismiss' ? l.status : move.to;
  c.db.transaction(() => {
    setListingStatus(c.db, l.id, to, c.app.clock.now());
    resolveReports(c.db, l.id, c.app.clock.now());
    c.app.audit.append(c.db, {
      actor: actorOf(c.principal),
      action: `listing.${action}`,
      target: `listing:${l.id}`,
      details: {
        from: l.status,
        to,
        reason,
        agent: l.agent_id,
        creator: findAgent(c.db, l.agent_id)?.owner_id ?? null,
      },
    });
    notifyCreator(c, l, action, reason);
  })();
  // A revoked listing's versions join the instance's revocation list (issue 12 item 8), so the
  // copies imported elsewhere stop working too.
  if (to === 'revoked') revokeAgentVersions(c, l.agent_id, reason);
  return { listing: listingView(c, findListing(c.db, l.id)!) };
}

/** Forks a published listing: the forker's own private copy of the listed version, provenance kept. */
export async function fork(c: PlatformRequestContext, id: string) {
  userIdOf(c);
  const l = findListing(c.db, id);
  if (l?.status !== 'published') throw notFound();
  // Refused before any payment when the platform is held (a fork is a new agent).
  admit(c.db, 'agent');
  if (l.price_model !== 'free') await requirePurchase(c, sellable(c, l));
  const v = findVersion(c.db, l.agent_id, l.version);
  if (!v) throw notFound();
  const agent = forkAgent(c, JSON.parse(v.spec) as AgentSpec, {
    listing: l.id,
    agent: l.agent_id,
    version: l.version,
    hash: v.hash,
  });
  return Response.json({ agent }, { status: 201 });
}

// Community approval ---------------------------------------------------------------------------

const DAY_MS = 86_400_000;

/** `governance.community_approval` with its defaults filled in. */
export function communityRules(c: PlatformRequestContext) {
  const r = c.blueprint().governance.community_approval ?? {};
  return {
    approvals: r.approvals ?? COMMUNITY_APPROVAL_DEFAULTS.approvals,
    min_account_age_days: r.min_account_age_days ?? COMMUNITY_APPROVAL_DEFAULTS.min_account_age_days,
    require_verified_email: r.require_verified_email ?? COMMUNITY_APPROVAL_DEFAULTS.require_verified_email,
  };
}

const votingOpen = (c: PlatformRequestContext) =>
  c.blueprint().governance.agent_approval_process === 'community';

/**
 * Whether the user `c` acts for is a member in good standing who may vote on `l`: an active
 * account, old enough, its email verified when the platform asks, and not the listing's creator
 * nor an editor of its agent. The refusal (code and message), or null.
 */
function voterProblem(
  c: PlatformRequestContext,
  l: ListingRow,
  a: AgentRow | null,
): { code: string; message: string } | null {
  const problem = memberProblem(c);
  if (problem) return problem;
  const p = c.principal;
  // The agent's editors: its owner (agent collaborators join here once they exist).
  if (l.created_by === actorOf(p) || (a && a.owner_id === userIdOf(c)))
    return {
      code: 'listing.voter_is_creator',
      message: "a listing's creator and its agent's editors do not vote on it",
    };
  return null;
}

/** Why the member `c` acts for is not in good standing, or null. */
function memberProblem(c: PlatformRequestContext): { code: string; message: string } | null {
  const p = c.principal;
  const userId = p && (p.kind === 'user' || p.kind === 'api_key') ? p.userId : null;
  if (!userId) return { code: 'auth.forbidden', message: 'votes are cast by signed-in members' };
  const u = createUserRepository({ db: c.db }).byId(userId);
  const rules = communityRules(c);
  if (u?.status !== 'active')
    return { code: 'listing.voter_inactive', message: 'a suspended or deactivated account cannot vote' };
  if (c.app.clock.now() - u.created_at < rules.min_account_age_days * DAY_MS)
    return {
      code: 'listing.voter_too_new',
      message: `an account votes once it is ${rules.min_account_age_days} days old`,
    };
  if (rules.require_verified_email && u.email_verified_at === null)
    return { code: 'listing.voter_unverified', message: 'verify your email address before voting' };
  return null;
}

function votingView(c: PlatformRequestContext, l: ListingRow) {
  const votes = votesOn(c.db, l.id, l.version);
  const p = c.principal;
  const userId = p && (p.kind === 'user' || p.kind === 'api_key') ? p.userId : null;
  const mine = votes.find((v) => v.user_id === userId);
  const problem = voterProblem(c, l, findAgent(c.db, l.agent_id));
  return {
    open: votingOpen(c),
    approvals: votes.filter((v) => v.vote === 'approve').length,
    rejections: votes.filter((v) => v.vote === 'reject').length,
    needed: communityRules(c).approvals,
    mine: mine ? { vote: mine.vote, reason: mine.reason } : null,
    can_vote: votingOpen(c) && problem === null,
    ...(problem ? { cannot_vote: problem.code } : {}),
  };
}

/** The listings waiting for the community, for a member who may vote on them. */
export function communityQueue(c: PlatformRequestContext) {
  const rules = communityRules(c);
  if (!votingOpen(c))
    return { process: c.blueprint().governance.agent_approval_process, rules, listings: [] };
  const problem = memberProblem(c);
  if (problem) throw new AppError(problem.code, problem.message, 403);
  const eligible = submittedListings(c.db).filter(
    (l) => voterProblem(c, l, findAgent(c.db, l.agent_id)) === null,
  );
  return {
    process: 'community',
    rules,
    listings: eligible.map((l) => ({ ...listingView(c, l), voting: votingView(c, l) })),
  };
}

/**
 * A member's vote on a submitted listing (one per member, changeable while it is submitted),
 * audited. At `approvals` approvals it is published; at as many rejections it goes to the
 * moderators (`in_review`), who decide: the community can publish, only moderators reject.
 */
export function vote(c: PlatformRequestContext, id: string, body: Record<string, unknown>) {
  const l = findListing(c.db, id);
  const a = l ? findAgent(c.db, l.agent_id) : null;
  if (!l || (l.status !== 'submitted' && !visibleOrEditor(c, l, a))) throw notFound();
  if (!votingOpen(c))
    throw new AppError(
      'listing.voting_closed',
      'this platform does not approve listings by community vote',
      409,
    );
  const problem = voterProblem(c, l, a);
  if (problem) throw new AppError(problem.code, problem.message, 403);
  if (l.status !== 'submitted')
    throw new AppError('listing.voting_closed', `a ${l.status} listing takes no votes`, 409);
  const choice = body.vote;
  if (choice !== 'approve' && choice !== 'reject') throw bad('/vote', 'must be approve or reject');
  const reason = body.reason === undefined ? '' : text(body.reason, '/reason', 0, 1000);
  const userId = userIdOf(c);
  const rules = communityRules(c);
  const now = c.app.clock.now();
  c.db.transaction(() => {
    upsertVote(c.db, { listingId: l.id, userId, version: l.version, vote: choice, reason, now });
    c.app.audit.append(c.db, {
      actor: actorOf(c.principal),
      action: 'listing.voted',
      target: `listing:${l.id}`,
      details: { vote: choice, reason, version: l.version },
    });
    const votes = votesOn(c.db, l.id, l.version);
    const approvals = votes.filter((v) => v.vote === 'approve').length;
    const rejections = votes.length - approvals;
    const decided =
      approvals >= rules.approvals
        ? { to: 'published' as const, what: 'community_approved', note: null }
        : rejections >= rules.approvals
          ? {
              to: 'in_review' as const,
              what: 'community_rejected',
              note: `community: ${rejections} rejections`,
            }
          : null;
    if (!decided) return;
    setListingStatus(c.db, l.id, decided.to, now, decided.note);
    c.app.audit.append(c.db, {
      actor: actorOf(c.principal),
      action: `listing.${decided.what}`,
      target: `listing:${l.id}`,
      details: { from: l.status, to: decided.to, approvals, rejections, needed: rules.approvals },
    });
    notifyCreator(
      c,
      l,
      decided.what,
      `${approvals} approvals, ${rejections} rejections (${rules.approvals} decide)`,
    );
  })();
  const after = findListing(c.db, l.id)!;
  return {
    listing: listingView(c, after),
    ...(after.status === 'submitted' ? { voting: votingView(c, after) } : {}),
  };
}

const visibleOrEditor = (c: PlatformRequestContext, l: ListingRow, a: AgentRow | null) =>
  l.status === 'published' || isModerator(c) || (a !== null && canEdit(c, a));

// Moderators' edits -----------------------------------------------------------------------------

/**
 * A moderator's edit of a listing's title, summary, category or tags (any listing not revoked),
 * with a reason; audited with what changed, the creator told, the listing embedded again.
 */
export async function editAsModerator(
  deps: AiDeps,
  c: PlatformRequestContext,
  id: string,
  body: Record<string, unknown>,
) {
  const l = findListing(c.db, id);
  if (!l) throw notFound();
  if (l.status === 'revoked') throw new AppError('listing.revoked', 'a revoked listing is not edited', 409);
  const reason = text(body.reason, '/reason', 3, 1000);
  const next = {
    title: body.title === undefined ? l.title : text(body.title, '/title', 1, 100),
    summary: body.summary === undefined ? l.summary : text(body.summary, '/summary', 1, 500),
    category:
      body.category === undefined ? l.category : text(body.category, '/category', 1, 40).toLowerCase(),
    tags: l.tags,
  };
  if (body.tags !== undefined) {
    if (!Array.isArray(body.tags) || body.tags.length > 8)
      throw bad('/tags', 'must be a list of at most 8 tags');
    next.tags = JSON.stringify(body.tags.map((t, i) => text(t, `/tags/${i}`, 1, 30).toLowerCase()));
  }
  const changed = (['title', 'summary', 'category', 'tags'] as const).filter((k) => next[k] !== l[k]);
  if (changed.length === 0)
    throw bad('/title', 'nothing to change: give a new title, summary, category or tags');
  c.db.transaction(() => {
    editListing(c.db, l.id, next, c.app.clock.now());
    c.app.audit.append(c.db, {
      actor: actorOf(c.principal),
      action: 'listing.edited',
      target: `listing:${l.id}`,
      details: {
        reason,
        changed: Object.fromEntries(changed.map((k) => [k, { from: l[k], to: next[k] }])),
        agent: l.agent_id,
        creator: findAgent(c.db, l.agent_id)?.owner_id ?? null,
      },
    });
    notifyCreator(c, { ...l, title: next.title }, 'edit', reason);
  })();
  const after = findListing(c.db, l.id)!;
  await embedListing(deps, c, after);
  return { listing: listingView(c, after) };
}
