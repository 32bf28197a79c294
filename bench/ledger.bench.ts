/**
 * `npm run bench -- ledger`: the billing ledger (src/billing/ledger.ts) on one platform database
 * file (WAL, the pragmas every platform database gets), through the production code path:
 * The database's WAL is checkpointed by the WalCheckpointer's worker, as in production.
 * - batched: `postBatch` of one-transfer chains (a usage charge each) in batches of --batch
 *   (default 1,000), and of three-leg linked sales (`saleChain`), in transfers a second;
 * - a single linked sale (`post` of `saleChain`: creator, platform and operator legs, one
 *   transaction each), its latency p50/p99 over --sales calls (default 5,000);
 * - usage posting (`postUsage`, what the `usage.recorded` subscriber runs after each meter
 *   flush): µs per usage row, for batches of 100 rows over 50 users, with the operator's markup
 *   leg (a plan's 40%, tiered by the month's cost, as the subscriber posts it); what billing
 *   adds to a request, off its path.
 * Flags: --transfers N (default 200000), --batch N, --sales N.
 */
import { join } from 'node:path';
import { insertUsageRows } from '../src/ai/usage.repository.ts';
import {
  markupPercentFor,
  type OperatorMarkup,
  type OperatorPlan,
  openAccount,
  post,
  postBatch,
  postUsage,
  type TransferSpec,
} from '../src/billing/index.ts';
import { type Sale, saleAccounts, saleChain } from '../src/billing/sales.ts';
import { migrate, openDatabase, TENANT_MIGRATIONS, WalCheckpointer } from '../src/db/index.ts';
import { tempDir } from '../tests/helpers.ts';
import { ms, summarize } from './lib.ts';

export const description =
  'billing ledger: batched transfers a second, a linked sale p99, usage posting per row';

export async function main(args: string[]): Promise<number> {
  const flag = (name: string, d: number) => {
    const i = args.indexOf(name);
    return i >= 0 ? Number(args[i + 1]) || d : d;
  };
  const total = flag('--transfers', 200_000);
  const batch = flag('--batch', 1_000);
  const sales = flag('--sales', 5_000);
  const t = tempDir();
  try {
    const db = openDatabase(join(t.dir, 'platform.db'), 'tenant');
    migrate(db, TENANT_MIGRATIONS, 'bench');
    // Checkpoints off the JS thread, as every platform database has them in production.
    const checkpointer = new WalCheckpointer();
    checkpointer.watch(db);
    const now = Date.UTC(2026, 11, 1);
    const users = Array.from({ length: 1_000 }, (_, i) =>
      openAccount(db, { kind: 'end_user', owner: `usr_${i}`, currency: 'usd' }, now),
    );
    const platform = openAccount(db, { kind: 'platform', currency: 'usd' }, now);

    // Batched one-transfer chains, at two batch sizes (8,190: TigerBeetle's).
    let n = 0;
    const rates: { batch: number; rate: number }[] = [];
    for (const size of [batch, 8_190]) {
      const t0 = performance.now();
      const end = n + total;
      while (n < end) {
        const chains: TransferSpec[][] = [];
        for (let i = 0; i < size && n < end; i++, n++)
          chains.push([
            {
              id: `u${n}`,
              debit: users[n % users.length]!,
              credit: platform,
              amount: BigInt(1_000 + (n % 977)),
              currency: 'usd',
              code: 'usage',
            },
          ]);
        postBatch(db, chains, now);
      }
      rates.push({ batch: size, rate: total / ((performance.now() - t0) / 1000) });
    }

    // Batched linked sales.
    const sale = (i: number): Sale => ({
      id: `s${i}`,
      amount: BigInt(499 + (i % 500)) * 1_000_000n,
      currency: 'usd',
      creatorId: `usr_${i % 100}`,
      source: { kind: 'processor' },
      terms: { creatorShare: 70, commission: 30, operatorFee: 15 },
      ref: `lst_${i % 100}`,
    });
    for (let i = 0; i < 100; i++) for (const a of saleAccounts(sale(i))) openAccount(db, a, now);
    const saleCount = Math.floor(total / 3);
    const t1 = performance.now();
    for (let i = 0; i < saleCount; i += batch) {
      const chains: TransferSpec[][] = [];
      for (let j = i; j < Math.min(saleCount, i + batch); j++) chains.push(saleChain(sale(j)));
      postBatch(db, chains, now);
    }
    const linkedRate = (saleCount * 3) / ((performance.now() - t1) / 1000);

    // One linked sale a transaction.
    const lat: number[] = [];
    for (let i = 0; i < sales; i++) {
      const chain = saleChain(sale(saleCount + i));
      const s0 = performance.now();
      post(db, chain, now);
      lat.push(performance.now() - s0);
    }
    const single = summarize(lat);

    // Usage posting: flushes of 100 usage rows, from 1 payer (an API key) or 50 users.
    const usage: { payers: number; us: number }[] = [];
    // The operator's side as the subscriber builds it per batch (operatorMarkupOf): the plan's
    // tiered percent, asked once per currency per batch, and the month's running AI cost.
    const plan = {
      ai_markup_percent: 40,
      ai_markup_tiers: [{ over_minor: 50_000, markup_percent: 35 }],
    } as OperatorPlan;
    let monthCost = 0n;
    const markup: OperatorMarkup = {
      percentFor: () => markupPercentFor(plan, monthCost),
      posted: (_c, cost) => {
        monthCost += cost;
      },
    };
    for (const payers of [1, 50]) {
      const flushes = 200;
      let rows = 0;
      let postMs = 0;
      for (let f = 0; f < flushes; f++) {
        const records = Array.from({ length: 100 }, (_, i) => ({
          platformId: 'bench',
          ts: now + f,
          userId: `usr_${(f * 7 + i) % payers}`,
          keyId: null,
          agentId: null,
          kind: 'chat' as const,
          alias: 'default',
          provider: 'stub',
          model: 'm',
          tokensIn: 12,
          tokensOut: 30,
          counted: false,
          latencyMs: 5,
          costMicro: 12 * 15 + 30 * 60,
          markupMicro: 300,
          currency: 'usd',
          status: 'ok' as const,
        }));
        const range = db.transaction(() => insertUsageRows(db, records))();
        const p0 = performance.now();
        postUsage(db, range, now, markup);
        postMs += performance.now() - p0;
        rows += records.length;
      }
      usage.push({ payers, us: (postMs * 1000) / rows });
    }
    const check = db.query<{ n: number }, []>('SELECT count(*) AS n FROM ledger_transfers').get()!.n;
    await checkpointer.stop();
    db.close();

    console.log(
      'billing ledger, one platform database file (WAL, checkpointed off the JS thread), in process',
    );
    for (const r of rates)
      console.log(
        `  batched one-transfer chains      ${Math.round(r.rate).toLocaleString()} transfers/s  (${total.toLocaleString()} over 1,000 accounts, batches of ${r.batch}; goal ≥ 50,000/s)`,
      );
    console.log(
      `  batched three-leg linked sales   ${Math.round(linkedRate).toLocaleString()} transfers/s  (${saleCount.toLocaleString()} sales, batches of ${batch})`,
    );
    console.log(
      `  one linked sale per transaction  p50 ${ms(single.p50)} ms  p99 ${ms(single.p99)} ms  max ${ms(single.max)} ms  (${sales} sales; goal p99 ≤ 1 ms)`,
    );
    for (const u of usage)
      console.log(
        `  usage posting (postUsage)        ${u.us.toFixed(2)} µs per usage row  (flushes of 100 rows from ${u.payers} payer${u.payers > 1 ? 's' : ''}; after the flush, off the request path)`,
      );
    console.log(`  transfers written: ${check.toLocaleString()}`);
    return 0;
  } finally {
    t.cleanup();
  }
}
