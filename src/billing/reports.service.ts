/**
 * Revenue reports from the ledger (issue 13, "Reports"): a creator's earnings, a platform's
 * marketplace revenue and AI markup, and the operator's fee income per platform. Every figure is
 * a sum of posted transfers, in micro-units of the currency's minor unit (exact JSON integers).
 */
import type { Database } from 'bun:sqlite';
import type { PlatformRequestContext } from '../identity/index.ts';
import { jsonInteger } from '../shared/money.ts';
import type { SubscriptionTier } from '../tenancy/index.ts';
import { userOf } from './credits.service.ts';
import { accountId } from './ledger.ts';
import {
  churnCounts,
  creatorLegs,
  creatorTotals,
  earningsByRef,
  liveSubscriptions,
  monthlyFlows,
  sumsByCode,
} from './reports.repository.ts';

const MICRO_PER_MINOR = 1_000_000n;

const net = (sums: { credits: bigint; debits: bigint }[]) =>
  sums.reduce((a, s) => a + s.credits - s.debits, 0n);
const of = (sums: ReturnType<typeof sumsByCode>, ...codes: string[]) =>
  sums.filter((s) => codes.includes(s.code));

/** The signed-in creator's earnings in `currency`: in all, and per listing. */
export function myEarnings(c: PlatformRequestContext, currency: string) {
  const userId = userOf(c);
  const id = accountId('creator', userId, currency);
  const sums = sumsByCode(c.db, id);
  return {
    currency,
    earned_micro: jsonInteger(net(of(sums, 'sale', 'refund'))),
    paid_out_micro: jsonInteger(of(sums, 'payout').reduce((x, p) => x + p.debits, 0n)),
    listings: earningsByRef(c.db, id).map((r) => ({
      listing_id: r.ref,
      earned_micro: jsonInteger(r.earned),
      sales: r.sales,
      refunds: r.refunds,
    })),
  };
}

/** A platform's revenue in `currency` (what its ledger says), for its admins and the operator. */
export function platformRevenue(db: Database, currency: string) {
  const platform = sumsByCode(db, accountId('platform', '', currency));
  const operator = sumsByCode(db, accountId('operator', '', currency));
  const creators = creatorTotals(db, currency);
  // A sale credits the platform its share plus the operator's fee (leg 2), then debits the fee.
  const marketplaceNet = net(of(platform, 'sale', 'refund'));
  const creatorsNet = creators.reduce((a, x) => a + x.net, 0n);
  const operatorFees = net(operator);
  return {
    currency,
    marketplace: {
      sales: creatorLegs(db, 'sale', currency),
      refunds: creatorLegs(db, 'refund', currency),
      gross_micro: jsonInteger(creatorsNet + marketplaceNet + operatorFees),
      creators_micro: jsonInteger(creatorsNet),
      platform_net_micro: jsonInteger(marketplaceNet),
      operator_fees_micro: jsonInteger(operatorFees),
    },
    ai: {
      charged_micro: jsonInteger(of(platform, 'usage').reduce((a, s) => a + s.credits, 0n)),
      cost_micro: jsonInteger(of(platform, 'usage.cost').reduce((a, s) => a + s.debits, 0n)),
    },
    creators: creators.map((x) => ({ user_id: x.owner, earned_micro: jsonInteger(x.net) })),
  };
}

/** The first instant (epoch ms) of the UTC month `back` months before `now`'s. */
const monthStart = (now: number, back: number) => {
  const d = new Date(now);
  return Date.UTC(d.getUTCFullYear(), d.getUTCMonth() - back, 1);
};

/**
 * The platform's money per UTC month, the last `months` months (this one included), from the
 * ledger: marketplace sales (gross, what buyers paid), refunds, subscriptions, AI usage charged
 * and its provider cost, the operator's fees (less any it returned), and creator payouts.
 * Every month is present (zeros where nothing moved), so charts need no gap logic.
 */
export function revenueSeries(db: Database, currency: string, months: number, now: number) {
  const since = monthStart(now, months - 1);
  const rows = monthlyFlows(db, currency, since);
  const keys = Array.from({ length: months }, (_, i) =>
    new Date(monthStart(now, months - 1 - i)).toISOString().slice(0, 7),
  );
  const zero = () => ({
    marketplace_gross: 0n,
    refunds: 0n,
    subscriptions: 0n,
    ai_charged: 0n,
    ai_cost: 0n,
    operator_fees: 0n,
    payouts: 0n,
    sales: 0,
  });
  const by = new Map(keys.map((k) => [k, zero()]));
  const payer = new Set(['processor', 'credits', 'end_user']);
  for (const r of rows) {
    const m = by.get(r.month);
    if (!m) continue;
    if (r.code === 'sale' && payer.has(r.debit_kind)) {
      m.marketplace_gross += r.amount;
      // Two legs per sale are paid by the buyer (creator, commission).
      if (r.credit_kind === 'creator') m.sales += r.count;
    } else if (r.code === 'refund' && payer.has(r.credit_kind)) m.refunds += r.amount;
    else if (r.code === 'subscription' && r.credit_kind === 'platform') m.subscriptions += r.amount;
    else if (r.code === 'usage' && r.credit_kind === 'platform') m.ai_charged += r.amount;
    else if (r.code === 'usage.cost' && r.debit_kind === 'platform') m.ai_cost += r.amount;
    else if (r.code === 'payout' && r.debit_kind === 'creator') m.payouts += r.amount;
    if (r.credit_kind === 'operator') m.operator_fees += r.amount;
    if (r.debit_kind === 'operator') m.operator_fees -= r.amount;
  }
  return {
    currency,
    months: keys.map((k) => {
      const m = by.get(k)!;
      return {
        month: k,
        sales: m.sales,
        marketplace_gross_micro: jsonInteger(m.marketplace_gross),
        refunds_micro: jsonInteger(m.refunds),
        subscriptions_micro: jsonInteger(m.subscriptions),
        ai_charged_micro: jsonInteger(m.ai_charged),
        ai_cost_micro: jsonInteger(m.ai_cost),
        operator_fees_micro: jsonInteger(m.operator_fees),
        payouts_micro: jsonInteger(m.payouts),
      };
    }),
  };
}

/**
 * Subscription metrics for a platform's admins (issue 13, "Reports": MRR and churn), at the
 * blueprint's current tier prices:
 * - MRR: each paid (Stripe) subscription that is active or past due, at its tier's price
 *   times its seats, a yearly price counted as a twelfth a month. Trials are not revenue yet;
 *   they are counted apart, as are subscriptions an admin set by hand (paid some other way).
 * - Churn over the last `days` days: paid subscriptions canceled in the window over those live
 *   at its start.
 * One currency: the blueprint's (a tier priced in another currency is reported apart, not
 * added).
 */
export function subscriptionMetrics(
  db: Database,
  bp: { monetization: { currency: string; subscription_tiers: SubscriptionTier[] } },
  now: number,
  days = 30,
) {
  const currency = bp.monetization.currency;
  const tiers = new Map(bp.monetization.subscription_tiers.map((t) => [t.id, t]));
  const monthly = (t: SubscriptionTier) =>
    (BigInt(t.price.amount) * MICRO_PER_MINOR) / (t.interval === 'year' ? 12n : 1n);
  let mrr = 0n;
  const byTier = new Map<
    string,
    { tier: string; name: string; paying: number; trialing: number; manual: number; mrr: bigint }
  >();
  const other: { tier: string; currency: string }[] = [];
  for (const r of liveSubscriptions(db)) {
    const t = tiers.get(r.tier_id);
    const row = byTier.get(r.tier_id) ?? {
      tier: r.tier_id,
      name: t?.name ?? r.tier_id,
      paying: 0,
      trialing: 0,
      manual: 0,
      mrr: 0n,
    };
    byTier.set(r.tier_id, row);
    if (r.method !== 'stripe') row.manual += r.subscriptions;
    else if (r.status === 'trialing') row.trialing += r.subscriptions;
    else {
      row.paying += r.subscriptions;
      if (!t) continue;
      if (t.price.currency.toLowerCase() !== currency.toLowerCase()) {
        other.push({ tier: t.id, currency: t.price.currency });
        continue;
      }
      const add = monthly(t) * BigInt(r.seats);
      row.mrr += add;
      mrr += add;
    }
  }
  const since = now - days * 86_400_000;
  const churn = churnCounts(db, since);
  const list = [...byTier.values()];
  return {
    currency,
    mrr_micro: jsonInteger(mrr),
    subscribers: list.reduce((a, r) => a + r.paying, 0),
    trialing: list.reduce((a, r) => a + r.trialing, 0),
    manual: list.reduce((a, r) => a + r.manual, 0),
    tiers: list.map((r) => ({
      tier: r.tier,
      name: r.name,
      paying: r.paying,
      trialing: r.trialing,
      manual: r.manual,
      mrr_micro: jsonInteger(r.mrr),
    })),
    other_currencies: other,
    churn: {
      days,
      at_start: churn.at_start,
      canceled: churn.canceled,
      rate: churn.at_start ? churn.canceled / churn.at_start : 0,
    },
  };
}
