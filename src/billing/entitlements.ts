/**
 * Entitlements at the edge (issue 13 item 7): which of the platform's tiers a user is on now,
 * and the refusals its limits make. `tierOf` reads the user's subscription row (written only
 * from Stripe's state, or by an admin): trialing and active give its tier; past due keeps it for
 * `billing.grace_days` (soulfra.yaml, default 7) from when the platform first saw it past due,
 * then the free tier; canceled and incomplete (a checkout not finished) give the free tier. A
 * member of a team subscription gets its owner's tier when their own is the free one. The free
 * tier is the first tier priced 0, or, under `freemium`, the first tier; under `subscription`
 * with no tier priced 0, a user who has not subscribed has no plan (every limit 0).
 *
 * Tier limits are enforced on an instance that bills (a `billing` section in soulfra.yaml, with
 * or without Stripe: `billing: {}` is enough; an instance without one has nothing to upgrade
 * to), when `monetization.pricing_strategy` is freemium or subscription (usage, marketplace and
 * custom platforms charge otherwise), for everyone but the platform's staff (owner and admin
 * roles: they run the platform). An omitted limit is unlimited.
 * - `requests_per_day`: AI chat calls of the user since UTC midnight (usage rows by index, plus
 *   what the meter has not written yet); over it, 429 `billing.limit_reached` (`limit`, `used`,
 *   `resets_at`; `upgrade_tier` and `upgrade_url` when a higher tier allows more).
 * - `agents`: agents the user owns, on creating one: 402 `billing.payment_required` with the
 *   upgrade path (`upgrade_tier`, `upgrade_url`).
 * - `seats`: people one subscription covers (its owner and members), on adding a member.
 */
import type { Meter } from '../ai/index.ts';
import { chatCallsSince } from '../ai/index.ts';
import type { PlatformRequestContext } from '../identity/index.ts';
import { AppError } from '../shared/errors.ts';
import type { PlatformBlueprint, SubscriptionTier } from '../tenancy/index.ts';
import { findAccount } from './ledger.repository.ts';
import { accountId } from './ledger.ts';
import {
  agentsOwnedBy,
  type SubscriptionRow,
  type SubscriptionStatus,
  subscriptionOf,
  teamOwnerOf,
} from './subscriptions.repository.ts';

const DAY = 86_400_000;
export const DEFAULT_GRACE_DAYS = 7;

/** A user's plan now: the tier that applies, and why. */
export interface Plan {
  /** null: no plan (a subscription platform with no free tier, not subscribed). */
  tier: SubscriptionTier | null;
  /** The subscription's status, or 'free' (none, or one that no longer entitles). */
  status: SubscriptionStatus | 'free';
  /** own: the user's subscription; team: a team subscription's owner's; free: neither. */
  via: 'own' | 'team' | 'free';
  /** The subscription row that gives the tier (the owner's for a team), if any. */
  row: SubscriptionRow | null;
  /** Past due: when the grace period ends (epoch ms). */
  graceEndsAt: number | null;
}

/** The tier users without a subscription are on, or null. */
export function freeTier(bp: PlatformBlueprint): SubscriptionTier | null {
  const tiers = bp.monetization.subscription_tiers;
  return (
    tiers.find((t) => t.price.amount === 0) ??
    (bp.monetization.pricing_strategy === 'freemium' ? (tiers[0] ?? null) : null)
  );
}

/** What resolving a user's plan reads: the platform's database, its blueprint, the App's config and clock. */
export type PlanContext = Pick<PlatformRequestContext, 'app' | 'db' | 'blueprint'>;

export const graceDays = (c: PlanContext) => c.app.config.billing?.grace_days ?? DEFAULT_GRACE_DAYS;

/** What a subscription row entitles to now (null: nothing beyond the free tier). */
function entitled(c: PlanContext, row: SubscriptionRow): Omit<Plan, 'via'> | null {
  const tier = c.blueprint().monetization.subscription_tiers.find((t) => t.id === row.tier_id);
  if (!tier) return null;
  if (row.status === 'active' || row.status === 'trialing')
    return { tier, status: row.status, row, graceEndsAt: null };
  if (row.status === 'past_due') {
    const ends = (row.past_due_since ?? c.app.clock.now()) + graceDays(c) * DAY;
    if (c.app.clock.now() < ends) return { tier, status: 'past_due', row, graceEndsAt: ends };
  }
  return null;
}

/** The user's effective plan (see the module's comment). */
export function planOf(c: PlanContext, userId: string): Plan {
  const own = subscriptionOf(c.db, userId);
  const mine = own ? entitled(c, own) : null;
  const free = freeTier(c.blueprint());
  if (mine && mine.tier?.price.amount !== 0) return { ...mine, via: 'own' };
  const ownerId = teamOwnerOf(c.db, userId);
  const owners = ownerId ? subscriptionOf(c.db, ownerId) : null;
  const team = owners ? entitled(c, owners) : null;
  if (team) return { ...team, via: 'team' };
  if (mine) return { ...mine, via: 'own' };
  const pastDue = own?.status === 'past_due' ? 'past_due' : null;
  return { tier: free, status: pastDue ?? 'free', via: 'free', row: own, graceEndsAt: null };
}

/** The tier a user is on now (null: none). */
export function tierOf(c: PlanContext, userId: string): SubscriptionTier | null {
  return planOf(c, userId).tier;
}

type Limit = 'requests_per_day' | 'agents' | 'seats';

/** A tier's limit (Infinity: unlimited; no tier: 0). */
export function limitOf(tier: SubscriptionTier | null, limit: Limit): number {
  if (!tier) return 0;
  return tier.limits?.[limit] ?? Number.POSITIVE_INFINITY;
}

/**
 * Under the `usage` strategy (on an instance that bills), a member's AI call needs prepaid
 * credits: with none left, 402 `billing.payment_required` (reason `credits`) with where to top
 * up (`checkout_url`: the billing page, which starts a top-up's checkout). The balance is what
 * the ledger has posted; calls settled later that pass it are owed, not refused (usage.ts).
 */
function requireCredits(c: PlatformRequestContext): void {
  if (!c.app.config.billing) return;
  if (c.blueprint().monetization.pricing_strategy !== 'usage') return;
  const p = c.principal;
  if (!p || p.kind === 'scim' || p.role === 'owner' || p.role === 'admin') return;
  const userId = p.userId;
  if (!userId) return;
  const currency = c.blueprint().monetization.currency.toLowerCase();
  const a = findAccount(c.db, accountId('credits', userId, currency));
  const spendable = a ? a.credits_posted - a.debits_posted - a.debits_pending : 0n;
  if (spendable > 0n) return;
  throw new AppError(
    'billing.payment_required',
    'credits: AI calls on this platform are paid from prepaid credits, and yours are used up; top up to go on',
    402,
    [{ path: '/credits', reason: 'none left' }],
  ).with({
    reason: 'credits',
    balance_micro: 0,
    checkout_url: new URL('/app/billing', c.origin).toString(),
  });
}

/** Whether this platform's tiers limit this caller. */
function limited(c: PlatformRequestContext): boolean {
  if (!c.app.config.billing) return false;
  const s = c.blueprint().monetization.pricing_strategy;
  if (s !== 'freemium' && s !== 'subscription') return false;
  const p = c.principal;
  if (!p || p.kind === 'scim') return false;
  return p.role !== 'owner' && p.role !== 'admin';
}

/** The cheapest tier that allows more than `used` of `limit`, if any. */
export function upgradeFor(c: PlatformRequestContext, limit: Limit, used: number): SubscriptionTier | null {
  const yearly = (t: SubscriptionTier) => t.price.amount * (t.interval === 'month' ? 12 : 1);
  return (
    c
      .blueprint()
      .monetization.subscription_tiers.filter((t) => t.price.amount > 0 && limitOf(t, limit) > used)
      .sort((a, b) => yearly(a) - yearly(b))[0] ?? null
  );
}

const pricingUrl = (c: PlatformRequestContext) => new URL('/app/pricing', c.origin).toString();

function withUpgrade(c: PlatformRequestContext, e: AppError, limit: Limit, used: number): AppError {
  const up = upgradeFor(c, limit, used);
  return up ? e.with({ upgrade_tier: up.id, upgrade_url: pricingUrl(c) }) : e;
}

const describe = (tier: SubscriptionTier | null) => (tier ? `the ${tier.name} plan` : 'no plan');

/** Start of the UTC day of `ts`. */
const dayStart = (ts: number) => {
  const d = new Date(ts);
  return Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate());
};

/** The user's AI chat calls today (UTC): rows written and the meter's unwritten ones. */
export function requestsToday(c: PlatformRequestContext, userId: string, meter?: Meter): number {
  const since = dayStart(c.app.clock.now());
  return chatCallsSince(c.db, userId, since) + (meter?.unwrittenChats(c.platform.id, userId, since) ?? 0);
}

/**
 * Before an AI chat call: 429 `billing.limit_reached` when the user's tier allows no more
 * requests today (see the module's comment).
 */
export function requireAiAllowance(c: PlatformRequestContext, meter?: Meter): void {
  requireCredits(c);
  if (!limited(c)) return;
  const p = c.principal!;
  const userId = p.kind === 'scim' ? null : p.userId;
  if (!userId) return;
  const tier = tierOf(c, userId);
  const max = limitOf(tier, 'requests_per_day');
  if (max === Number.POSITIVE_INFINITY) return;
  const used = requestsToday(c, userId, meter);
  if (used < max) return;
  const resets = dayStart(c.app.clock.now()) + DAY;
  const e = new AppError(
    'billing.limit_reached',
    `requests_per_day: ${describe(tier)} allows ${max} AI requests a day; ${used} made today`,
    429,
    [{ path: '/limits/requests_per_day', reason: `at most ${max} a day` }],
  ).with({
    limit: 'requests_per_day',
    limit_value: max,
    used,
    resets_at: new Date(resets).toISOString(),
  });
  throw withUpgrade(c, e, 'requests_per_day', used);
}

/** Before creating an agent: 402 `billing.payment_required` when the tier's `agents` are used up. */
export function requireAgentAllowance(c: PlatformRequestContext, userId: string): void {
  if (!limited(c)) return;
  const tier = tierOf(c, userId);
  const max = limitOf(tier, 'agents');
  if (max === Number.POSITIVE_INFINITY) return;
  const used = agentsOwnedBy(c.db, userId);
  if (used < max) return;
  const e = new AppError(
    'billing.payment_required',
    `agents: ${describe(tier)} allows ${max} agent${max === 1 ? '' : 's'}; you have ${used}: upgrade to create more`,
    402,
    [{ path: '/limits/agents', reason: `at most ${max}` }],
  ).with({ limit: 'agents', limit_value: max, used });
  throw withUpgrade(c, e, 'agents', used);
}
