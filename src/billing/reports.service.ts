/**
 * Revenue reports from the ledger (issue 13, "Reports"): a creator's earnings, a platform's
 * marketplace revenue and AI markup, and the operator's fee income per platform. Every figure is
 * a sum of posted transfers, in micro-units of the currency's minor unit (exact JSON integers).
 */
import type { Database } from 'bun:sqlite';
import type { PlatformRequestContext } from '../identity/index.ts';
import { jsonInteger } from '../shared/money.ts';
import { userOf } from './credits.service.ts';
import { accountId } from './ledger.ts';
import { creatorTotals, earningsByRef, sumsByCode } from './reports.repository.ts';

const net = (sums: { credits: bigint; debits: bigint }[]) =>
  sums.reduce((a, s) => a + s.credits - s.debits, 0n);
const of = (sums: ReturnType<typeof sumsByCode>, ...codes: string[]) =>
  sums.filter((s) => codes.includes(s.code));

/** The signed-in creator's earnings in `currency`: in all, and per listing. */
export function myEarnings(c: PlatformRequestContext, currency: string) {
  const userId = userOf(c);
  const id = accountId('creator', userId, currency);
  return {
    currency,
    earned_micro: jsonInteger(net(sumsByCode(c.db, id))),
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
  const sales = of(platform, 'sale');
  const refunds = of(platform, 'refund');
  // A sale credits the platform its share plus the operator's fee (leg 2), then debits the fee.
  const marketplaceNet = net(of(platform, 'sale', 'refund'));
  const creatorsNet = creators.reduce((a, x) => a + x.net, 0n);
  const operatorFees = net(operator);
  return {
    currency,
    marketplace: {
      sales: sales.reduce((a, s) => a + s.count, 0),
      refunds: refunds.reduce((a, s) => a + s.count, 0),
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
