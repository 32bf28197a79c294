/**
 * The platform's marketplace (issue 12 item 7, in part): an agent's editor lists one published
 * version with a title, summary, category, tags and a price; the listing goes live at once
 * (`governance.agent_approval_process: automatic`) or waits in the moderation queue (`manual`;
 * `community` voting is not built yet and is treated as manual). Users browse and search it
 * (FTS5), install a listing (pinned to its version; a paid one answers 402 until billing
 * lands), review what they installed, and report it. Moderators (the platform's owners and
 * admins) approve, reject, suspend, restore or revoke, each with a reason, audited. A revoked
 * listing's agent stops working for everyone but its editors.
 */
import { actorOf, type PlatformRequestContext, roleOf } from '../identity/index.ts';
import { AppError } from '../shared/errors.ts';
import { newId } from '../shared/ids.ts';
import { findAgent, findVersion } from './agents.repository.ts';
import { type AgentSpec, canEdit, forkAgent, manageableAgent } from './agents.service.ts';
import { revokeAgentVersions } from './federation.service.ts';
import {
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
  searchListings,
  setListingStatus,
  updateListingOffer,
  upsertInstall,
  upsertReview,
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
  throw notFound();
}

/** Lists (or lists again, with a newer version) an agent: live or in review by the platform's process. */
export function listAgent(c: PlatformRequestContext, agentId: string, body: Record<string, unknown>) {
  const a = manageableAgent(c, agentId, 'list it');
  if (a.latest_version === null)
    throw new AppError('agent.unpublished', 'publish a version of the agent before listing it', 409);
  const spec = JSON.parse(findVersion(c.db, a.id, a.latest_version)!.spec) as {
    name: string;
    description: string;
  };
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
  const status: ListingStatus = process === 'automatic' ? 'published' : 'in_review';
  const now = c.app.clock.now();
  const existing = listingOfAgent(c.db, a.id);
  if (existing?.status === 'revoked')
    throw new AppError(
      'listing.revoked',
      'this agent was revoked from the marketplace; it cannot be listed again',
      409,
    );
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
  };
  const id = existing?.id ?? newId('lst');
  c.db.transaction(() => {
    if (existing) updateListingOffer(c.db, id, offer, now);
    else
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
      details: { agent: a.id, version: a.latest_version, process, price: { model, amount, currency } },
    });
  })();
  return { listing: listingView(c, findListing(c.db, id)!) };
}

/** Search words as an FTS5 expression (each quoted, every one must match). */
function ftsQuery(q: string): string | null {
  const words = (q.toLowerCase().match(/[\p{L}\p{N}]{2,}/gu) ?? []).slice(0, 16);
  return words.length ? words.map((w) => `"${w}"*`).join(' AND ') : null;
}

export function marketplace(c: PlatformRequestContext, q: { q?: string; category?: string }) {
  const rows = searchListings(c.db, {
    match: q.q ? ftsQuery(q.q) : null,
    category: q.category?.trim().toLowerCase() || null,
    limit: 50,
  });
  return { listings: rows.map((l) => listingView(c, l)) };
}

export function listing(c: PlatformRequestContext, id: string) {
  const l = visibleListing(c, id);
  return {
    listing: listingView(c, l),
    reviews: listReviews(c.db, l.id).map((r) => ({ ...r, created_at: iso(r.created_at) })),
    ...(isModerator(c)
      ? { reports: openReports(c.db, l.id).map((r) => ({ ...r, created_at: iso(r.created_at) })) }
      : {}),
  };
}

export function install(c: PlatformRequestContext, id: string, ref?: unknown) {
  const userId = userIdOf(c);
  const l = findListing(c.db, id);
  if (l?.status !== 'published') throw notFound();
  if (l.price_model !== 'free')
    throw new AppError(
      'billing.payment_required',
      `this listing costs ${l.price_minor} ${l.currency} (${l.price_model}); payments are not open yet`,
      402,
    );
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
  approve: { from: ['in_review'], to: 'published' },
  reject: { from: ['in_review'], to: 'rejected' },
  suspend: { from: ['published'], to: 'suspended' },
  restore: { from: ['suspended'], to: 'published' },
  revoke: { from: ['in_review', 'published', 'rejected', 'suspended'], to: 'revoked' },
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
  })();
  // A revoked listing's versions join the instance's revocation list (issue 12 item 8), so the
  // copies imported elsewhere stop working too.
  if (to === 'revoked') revokeAgentVersions(c, l.agent_id, reason);
  return { listing: listingView(c, findListing(c.db, l.id)!) };
}

/** Forks a published listing: the forker's own private copy of the listed version, provenance kept. */
export function fork(c: PlatformRequestContext, id: string) {
  userIdOf(c);
  const l = findListing(c.db, id);
  if (l?.status !== 'published') throw notFound();
  if (l.price_model !== 'free')
    throw new AppError(
      'billing.payment_required',
      'a paid listing is forked once bought; payments are not open yet',
      402,
    );
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
