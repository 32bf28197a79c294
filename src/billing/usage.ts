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
import { createUserRepository } from '../identity/index.ts';
import type { PlatformBlueprint } from '../tenancy/index.ts';
import { maybeAutoTopup } from './auto-topup.ts';
import { checkLowBalance } from './credit-settings.ts';
import { type PlanContext, planOf } from './entitlements.ts';
import { creditedSince, findAccount, findRawTransfer } from './ledger.repository.ts';
import { accountId, openAccount, postBatch, type TransferSpec } from './ledger.ts';
import { markupPercentFor, platformPlan } from './operator-plans.ts';

/**
 * A payer's usage included this month by their tier (micro-units in `currency`; 0n: none).
 * Asked once per payer and currency in a batch.
 */
export type IncludedUsage = (userId: string, currency: string) => bigint;

/** Whether a payer's usage in `currency` is paid from their prepaid credits (the `usage` strategy). */
export type PaysFromCredits = (userId: string, currency: string) => boolean;

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
  paysFromCredits?: PaysFromCredits,
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
    // Under the `usage` strategy the charge (beyond what is included) is paid from the payer's
    // prepaid credits, up to what they hold; any rest stays owed (end_user), as for others.
    let draw = 0n;
    let credits: string | null = null;
    if (paysFromCredits?.(p.userId, p.currency)) {
      credits = openAccount(db, { kind: 'credits', owner: p.userId, currency: p.currency }, now);
      const a = findAccount(db, credits)!;
      const spendable = a.credits_posted - a.debits_posted - a.debits_pending;
      const owed = charge - give;
      // BigInt: no Math.min.
      if (spendable > 0n) draw = spendable < owed ? spendable : owed;
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
      ...(credits && draw > 0n
        ? [
            {
              id: `${id}:credits`,
              debit: credits,
              credit: payer,
              amount: draw,
              currency: p.currency,
              code: 'usage.credits',
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
      await app.platformDbs.use(source, async (db) => {
        const now = app.clock.now();
        const c = blueprintOf ? { app, db, blueprint: () => blueprintOf(source) } : null;
        const drawn = new Set<string>();
        const pays = c ? paysFromCreditsOf(c) : undefined;
        const n = postUsage(
          db,
          e.payload,
          now,
          operatorMarkupOf(app, db, source, now),
          c ? includedUsageOf(c) : undefined,
          pays
            ? (userId, currency) => {
                const yes = pays(userId, currency);
                if (yes) drawn.add(`${userId} ${currency}`);
                return yes;
              }
            : undefined,
        );
        // The low-balance notice, after the credits were drawn (its own transaction).
        // Then auto top-up, charged off-session where the user opted in (after the posting).
        for (const k of drawn) {
          const [userId, currency] = k.split(' ') as [string, string];
          checkLowBalance(app, db, userId, currency);
          await maybeAutoTopup(app, db, source, userId, currency);
        }
        return n;
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

/**
 * Who pays AI usage from prepaid credits: members of a platform whose strategy is `usage`, on an
 * instance that bills (as the edge decides who needs credits: owners and admins do not).
 */
export function paysFromCreditsOf(c: PlanContext): PaysFromCredits {
  if (!c.app.config.billing || c.blueprint().monetization.pricing_strategy !== 'usage') return () => false;
  const users = createUserRepository({ db: c.db });
  return (userId) => {
    if (!userId) return false;
    const role = users.byId(userId)?.role;
    return role !== undefined && role !== 'owner' && role !== 'admin';
  };
}
