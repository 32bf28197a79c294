/**
 * AI usage into the ledger (issue 13 item 3). Calls are not transfers: the meter reserves
 * against budgets in memory and writes usage rows in batches, each batch with a `usage.recorded`
 * event; this subscriber posts a batch's settled usage, per payer and currency, as one linked
 * chain each: the payer owes the platform cost plus markup (end_user → platform), and the
 * platform owes the provider's cost (platform → ai_cost). No request waits on a ledger write.
 * Transfer ids come from the event's row range, so a redelivered event posts nothing twice.
 */
import type { Database } from 'bun:sqlite';
import { usageByPayer } from '../ai/index.ts';
import type { App } from '../app/index.ts';
import { openAccount, postBatch, type TransferSpec } from './ledger.ts';

/** The subscriber's id (its cursor's key in each database's event log). */
export const USAGE_SUBSCRIBER = 'billing.ledger';

/** Posts usage rows `firstRowId`..`lastRowId`; answers how many transfers were new. */
export function postUsage(
  db: Database,
  range: { firstRowId: number; lastRowId: number },
  now: number,
): number {
  const payers = usageByPayer(db, range.firstRowId, range.lastRowId);
  const chains: TransferSpec[][] = [];
  const own = new Map<string, { platform: string; ai: string }>();
  for (const p of payers) {
    const payer = openAccount(db, { kind: 'end_user', owner: p.userId, currency: p.currency }, now);
    let o = own.get(p.currency);
    if (!o) {
      o = {
        platform: openAccount(db, { kind: 'platform', currency: p.currency }, now),
        ai: openAccount(db, { kind: 'ai_cost', currency: p.currency }, now),
      };
      own.set(p.currency, o);
    }
    const { platform, ai } = o;
    const id = `usage:${range.firstRowId}-${range.lastRowId}:${p.userId}:${p.currency}`;
    chains.push([
      {
        id: `${id}:charge`,
        debit: payer,
        credit: platform,
        amount: p.costMicro + p.markupMicro,
        currency: p.currency,
        code: 'usage',
      },
      {
        id: `${id}:cost`,
        debit: platform,
        credit: ai,
        amount: p.costMicro,
        currency: p.currency,
        code: 'usage.cost',
      },
    ]);
  }
  const results = postBatch(db, chains, now);
  const bad = results.flat().find((r) => r !== 'ok' && r !== 'exists');
  // No floor applies to these accounts: a refusal is a bug, and the dispatcher retries it.
  if (bad) throw new Error(`usage not posted to the ledger: ${bad}`);
  return results.flat().filter((r) => r === 'ok').length;
}

/** Subscribes the ledger to `usage.recorded` (the composition root calls it once). */
export function subscribeUsageToLedger(app: App): () => void {
  return app.events.subscribe(
    USAGE_SUBSCRIBER,
    async (e) => {
      if (e.name !== 'usage.recorded' || e.source === 'control') return;
      await app.platformDbs.use(e.source, (db) => postUsage(db, e.payload, app.clock.now()));
    },
    { names: ['usage.recorded'] },
  );
}
