/**
 * AI usage into the ledger (issue 13 item 3). Calls are not transfers: the meter reserves
 * against budgets in memory and writes usage rows in batches, each batch with a `usage.recorded`
 * event; this subscriber posts a batch's settled usage, per payer and currency, as one linked
 * chain each: the payer owes the platform cost plus markup (end_user → platform), and the
 * platform owes the provider's cost (platform → ai_cost), and the operator's markup on that cost
 * (platform → operator, `usage.operator`: the platform's operator plan, issue 13 item 1). No
 * request waits on a ledger write. Transfer ids come from the event's row range, so a
 * redelivered event posts nothing twice.
 *
 * The operator's markup is `cost × percent`, rounded half up to the micro-unit, where the
 * percent is the plan's `ai_markup_percent` or, once the platform's AI cost this month (UTC,
 * before this batch) has passed a volume tier's `over_minor`, that tier's: the tier in force
 * when a batch is posted applies to the whole batch. The month's cost is read from the ledger
 * once per platform, currency and month (`usage.cost` credits to `ai_cost`), then kept in memory
 * and added to as batches post; the plan is one cached lookup per batch, never per row.
 *
 * A tier's `included_usage` (the blueprint) is given back in the same chain: the part of the
 * charge the payer's allowance for this month (UTC, by when the batch posts) still covers, as
 * platform → payer, code `usage.included`. What was given this month is read from the ledger
 * (those credits), so the allowance holds across batches and restarts.
 */
import type { Database } from 'bun:sqlite';
import { usageByPayer } from '../ai/index.ts';
import { type App, stateKey } from '../app/index.ts';
import type { PlatformBlueprint } from '../tenancy/index.ts';
import { type PlanContext, planOf } from './entitlements.ts';
import { creditedSince, findRawTransfer } from './ledger.repository.ts';
import { accountId, openAccount, postBatch, type TransferSpec } from './ledger.ts';
import { markupPercentFor, platformPlan } from './operator-plans.ts';

/**
 * A payer's usage included this month by their tier (micro-units in `currency`; 0n: none).
 * Asked once per payer and currency in a batch.
 */
export type IncludedUsage = (userId: string, currency: string) => bigint;

/** The subscriber's id (its cursor's key in each database's event log). */
export const USAGE_SUBSCRIBER = 'billing.ledger';

/**
 * The operator's side of a batch: the markup percent for a currency (asked once per currency
 * per batch), and the cost that batch newly posted (to keep the month's running total).
 */
export interface OperatorMarkup {
  percentFor(currency: string): number;
  posted(currency: string, costMicro: bigint): void;
}

const usageId = (range: { firstRowId: number; lastRowId: number }, p: { userId: string; currency: string }) =>
  `usage:${range.firstRowId}-${range.lastRowId}:${p.userId}:${p.currency}`;

/** `cost × percent`, rounded half up to the micro-unit (percent: at most two decimals). */
export function markupOf(costMicro: bigint, percent: number): bigint {
  const bp = BigInt(Math.round(percent * 100));
  return (costMicro * bp + 5_000n) / 10_000n;
}

/**
 * Posts usage rows `firstRowId`..`lastRowId`; answers how many transfers were new. With
 * `operator`, each chain has a third leg, the operator's markup (platform → operator).
 */
export function postUsage(
  db: Database,
  range: { firstRowId: number; lastRowId: number },
  now: number,
  operator?: OperatorMarkup,
  included?: IncludedUsage,
): number {
  const payers = usageByPayer(db, range.firstRowId, range.lastRowId);
  // A batch's chains commit in one transaction: if its first is there, all of it is (a
  // redelivered event). Answered before the markup is worked out again, since the percent in
  // force may have moved since (a volume tier passed, a plan changed): the same ids with other
  // amounts would be refused as `ledger.exists_different`.
  const first = payers[0];
  if (first && findRawTransfer(db, `${usageId(range, first)}:charge`)) return 0;
  const chains: TransferSpec[][] = [];
  const own = new Map<string, { platform: string; ai: string; operator: string | null; pct: number }>();
  for (const p of payers) {
    const payer = openAccount(db, { kind: 'end_user', owner: p.userId, currency: p.currency }, now);
    let o = own.get(p.currency);
    if (!o) {
      const pct = operator ? operator.percentFor(p.currency) : 0;
      o = {
        platform: openAccount(db, { kind: 'platform', currency: p.currency }, now),
        ai: openAccount(db, { kind: 'ai_cost', currency: p.currency }, now),
        operator: pct > 0 ? openAccount(db, { kind: 'operator', currency: p.currency }, now) : null,
        pct,
      };
      own.set(p.currency, o);
    }
    const { platform, ai } = o;
    const id = usageId(range, p);
    const fee = o.operator ? markupOf(p.costMicro, o.pct) : 0n;
    // The payer's tier includes usage this month: the part of the charge it still covers is
    // given back (platform → payer), so the payer owes only what is beyond it.
    const allowance = included?.(p.userId, p.currency) ?? 0n;
    const charge = p.costMicro + p.markupMicro;
    let give = 0n;
    if (allowance > 0n) {
      const used = creditedSince(db, payer, 'usage.included', monthStart(now));
      const left = allowance - used;
      give = left <= 0n ? 0n : left < charge ? left : charge;
    }
    chains.push([
      {
        id: `${id}:charge`,
        debit: payer,
        credit: platform,
        amount: charge,
        currency: p.currency,
        code: 'usage',
      },
      ...(give > 0n
        ? [
            {
              id: `${id}:included`,
              debit: platform,
              credit: payer,
              amount: give,
              currency: p.currency,
              code: 'usage.included',
            },
          ]
        : []),
      {
        id: `${id}:cost`,
        debit: platform,
        credit: ai,
        amount: p.costMicro,
        currency: p.currency,
        code: 'usage.cost',
      },
      ...(o.operator && fee > 0n
        ? [
            {
              id: `${id}:operator`,
              debit: platform,
              credit: o.operator,
              amount: fee,
              currency: p.currency,
              code: 'usage.operator',
            },
          ]
        : []),
    ]);
  }
  const results = postBatch(db, chains, now);
  const bad = results.flat().find((r) => r !== 'ok' && r !== 'exists');
  // No floor applies to these accounts: a refusal is a bug, and the dispatcher retries it.
  if (bad) throw new Error(`usage not posted to the ledger: ${bad}`);
  if (operator)
    results.forEach((r, i) => {
      const cost = chains[i]!.find((t) => t.code === 'usage.cost')!;
      if (r[1] === 'ok') operator.posted(cost.currency!, cost.amount!);
    });
  return results.flat().filter((r) => r === 'ok').length;
}

/** Each platform's AI cost this month, per currency (micro-units), kept as batches post. */
const MONTH_COST = stateKey(
  'billing.month_ai_cost',
  () => new Map<string, { since: number; micro: bigint }>(),
);

const monthStart = (now: number) => {
  const d = new Date(now);
  return Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), 1);
};

/** The operator's markup on a platform's usage: its plan (one cached lookup) and the month's cost. */
export function operatorMarkupOf(app: App, db: Database, platformId: string, now: number): OperatorMarkup {
  const { plan } = platformPlan(app, platformId);
  const costs = app.state.get(MONTH_COST);
  const since = monthStart(now);
  const entry = (currency: string) => {
    const key = `${platformId}:${currency}`;
    let e = costs.get(key);
    if (!e || e.since !== since) {
      e = { since, micro: creditedSince(db, accountId('ai_cost', '', currency), 'usage.cost', since) };
      costs.set(key, e);
    }
    return e;
  };
  return {
    percentFor: (currency) => markupPercentFor(plan, entry(currency).micro),
    posted: (currency, cost) => {
      entry(currency).micro += cost;
    },
  };
}

/** Subscribes the ledger to `usage.recorded` (the composition root calls it once). */
export function subscribeUsageToLedger(
  app: App,
  blueprintOf?: (platformId: string) => PlatformBlueprint,
): () => void {
  return app.events.subscribe(
    USAGE_SUBSCRIBER,
    async (e) => {
      if (e.name !== 'usage.recorded' || e.source === 'control') return;
      const source = e.source;
      await app.platformDbs.use(source, (db) => {
        const now = app.clock.now();
        const included = blueprintOf
          ? includedUsageOf({ app, db, blueprint: () => blueprintOf(source) })
          : undefined;
        return postUsage(db, e.payload, now, operatorMarkupOf(app, db, source, now), included);
      });
    },
    { names: ['usage.recorded'] },
  );
}

/**
 * The usage each payer's tier includes (`included_usage`, in the tier's currency only): the plan
 * the user is on now, as the edge sees it (a team member's is the team's; a subscription past
 * due keeps its tier through the grace period).
 */
export function includedUsageOf(c: PlanContext): IncludedUsage {
  return (userId, currency) => {
    // Usage no user is behind (an operator's API key) is the platform's own: no tier.
    if (!userId) return 0n;
    const inc = planOf(c, userId).tier?.included_usage;
    if (!inc || inc.amount <= 0 || inc.currency.toLowerCase() !== currency.toLowerCase()) return 0n;
    return BigInt(inc.amount) * 1_000_000n;
  };
}
