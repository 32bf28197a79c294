import { Database } from 'bun:sqlite';
import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { join } from 'node:path';
import fc from 'fast-check';
import { BUN, instanceWithPlatform, ROOT, tempDir } from '../../tests/helpers.ts';
import { silentLogger, type UsageRecordedV2 } from '../app/index.ts';
import { createPlatform, type Instance, openInstance } from '../flows/index.ts';
import { costMicro, Meter, markupMicro, periodStart, type UsageRecord } from './meter.ts';

/** Micro-units in a minor unit: amounts below are written as minor units × M. */
const M = 1_000_000;

let inst: Instance;
let platformId: string;
let cleanup: () => Promise<void>;
const now = Date.UTC(2026, 10, 26, 12);

beforeAll(async () => {
  ({ inst, platformId, cleanup } = await instanceWithPlatform('meter', () => now));
});
afterAll(() => cleanup());

/** Usage rows written so far. */
const count = () =>
  inst.app.platformDbs.use(
    platformId,
    (db) => db.query<{ n: number }, []>('SELECT count(*) AS n FROM usage_events').get()!.n,
  );

const rec = (over: Partial<UsageRecord> = {}): UsageRecord => ({
  platformId,
  ts: now,
  userId: 'usr_a',
  keyId: null,
  agentId: null,
  kind: 'chat',
  alias: 'default',
  provider: 'cloud',
  model: 'gpt',
  tokensIn: 1000,
  tokensOut: 500,
  counted: false,
  latencyMs: 12,
  costMicro: 30 * M,
  markupMicro: 6 * M,
  currency: 'usd',
  status: 'ok',
  ...over,
});

describe('metering', () => {
  test('cost from the price table in micro-units, exact (no rounding per call); markup rounded up to a micro-unit', () => {
    expect(costMicro({ input: 15, output: 60 }, 1_000_000, 1_000_000)).toBe(75 * M);
    // 10 × 15 + 10 × 60 micro-units: 0.00075 of a minor unit, not 1.
    expect(costMicro({ input: 15, output: 60 }, 10, 10)).toBe(750);
    expect(costMicro({ input: 15, output: 60 }, 12, 12)).toBe(900);
    expect(costMicro(undefined, 10, 10)).toBe(0);
    expect(markupMicro(750, 20)).toBe(150);
    expect(markupMicro(751, 20)).toBe(151);
    expect(markupMicro(750, 0)).toBe(0);
  });

  test('records are buffered, then written in one flush; nothing is written per request', async () => {
    const meter = new Meter(inst.app, { flushMs: 60_000 });
    const before = await count();
    await inst.app.platformDbs.use(platformId, (db) => {
      for (let i = 0; i < 50; i++) meter.record(db, rec());
    });
    expect(await count()).toBe(before);
    await meter.flush();
    expect(await count()).toBe(before + 50);
    await meter.close();
  });

  test('a large batch is written whole, in slices that let other work run in between', async () => {
    const meter = new Meter(inst.app, { flushMs: 60_000 });
    const before = await count();
    await inst.app.platformDbs.use(platformId, (db) => {
      for (let i = 0; i < 1_000; i++) meter.record(db, rec({ latencyMs: i }));
    });
    // Something else scheduled while the flush runs gets its turn before the flush ends.
    let ranDuringFlush = false;
    const flushing = meter.flush();
    setImmediate(() => {
      ranDuringFlush = true;
    });
    let writtenWhenOtherRan = -1;
    setImmediate(async () => {
      writtenWhenOtherRan = (await count()) - before;
    });
    await flushing;
    expect(ranDuringFlush).toBe(true);
    expect(writtenWhenOtherRan).toBeGreaterThan(0);
    expect(writtenWhenOtherRan).toBeLessThan(1_000);
    expect(await count()).toBe(before + 1_000);
    const latencies = await inst.app.platformDbs.use(platformId, (db) =>
      db
        .query<{ l: number }, [number]>('SELECT latency_ms AS l FROM usage_events ORDER BY id DESC LIMIT ?')
        .all(1_000)
        .map((r) => r.l)
        .sort((a, b) => a - b),
    );
    expect(latencies).toEqual(Array.from({ length: 1_000 }, (_, i) => i));
    await meter.close();
  });

  test('budgets: spend is tracked in memory, the alert fires once per period, and a new period starts at zero', async () => {
    const meter = new Meter(inst.app, { flushMs: 60_000 });
    await inst.app.platformDbs.use(platformId, (db) => {
      db.query(
        "INSERT INTO budgets (id, scope, subject, period, limit_minor, currency, alert_percent, created_at) VALUES ('b1', 'user', 'usr_b', 'day', 100, 'usd', 50, 0)",
      ).run();
      const who = { userId: 'usr_b', keyId: null };
      expect(meter.budgetsFor(db, platformId, who, now).map((x) => x.spent)).toEqual([0n]);
      expect(
        meter.record(db, rec({ userId: 'usr_b', costMicro: 20 * M, markupMicro: 4 * M })).map((b) => b.id),
      ).toEqual([]);
      expect(
        meter.record(db, rec({ userId: 'usr_b', costMicro: 30 * M, markupMicro: 0 * M })).map((b) => b.id),
      ).toEqual(['b1']);
      expect(
        meter.record(db, rec({ userId: 'usr_b', costMicro: 30 * M, markupMicro: 0 * M })).map((b) => b.id),
      ).toEqual([]);
      expect(meter.budgetsFor(db, platformId, who, now)[0]!.spent).toBe(BigInt(84 * M));
      expect(meter.budgetsFor(db, platformId, { userId: 'usr_other', keyId: null }, now)).toEqual([]);
      const tomorrow = periodStart('day', now) + 86_400_000 + 1;
      expect(meter.budgetsFor(db, platformId, who, tomorrow)[0]!.spent).toBe(0n);
    });
    await meter.flush();
    // A fresh meter (a restart) reloads this period's spend from the written usage.
    const again = new Meter(inst.app, { flushMs: 60_000 });
    await inst.app.platformDbs.use(platformId, (db) => {
      expect(again.budgetsFor(db, platformId, { userId: 'usr_b', keyId: null }, now)[0]!.spent).toBe(
        BigInt(84 * M),
      );
    });
    await meter.close();
    await again.close();
  });
});

describe('budget reservations', () => {
  test('the check and the hold are one step: holds add up, a refusal names the budget, settle and release happen once', async () => {
    const meter = new Meter(inst.app, { flushMs: 60_000 });
    await inst.app.platformDbs.use(platformId, (db) => {
      db.query(
        "INSERT INTO budgets (id, scope, subject, period, limit_minor, currency, alert_percent, created_at) VALUES ('rk', 'key', 'key_r', 'day', 100, 'usd', 100, 0)",
      ).run();
      meter.invalidate(platformId);
      const who = { userId: null, keyId: 'key_r' };
      const est = (n: number) => () => new Map([['usd', n * M]]);
      const hold = (n: number) => meter.reserve(db, platformId, who, now, est(n));
      const a = hold(40);
      const b = hold(40);
      expect('reservation' in a && 'reservation' in b).toBe(true);
      expect(meter.held(platformId)).toBe(BigInt(80 * M));
      // 80 held + 40 would pass the limit of 100.
      const c = hold(40);
      expect('refused' in c && c.refused).toEqual({
        budget: expect.objectContaining({ id: 'rk' }),
        spent: 0n,
        reserved: BigInt(80 * M),
        needed: BigInt(40 * M),
      });
      // A budget change drops the cached budgets, not what calls in flight hold.
      meter.invalidate(platformId);
      expect(meter.held(platformId)).toBe(BigInt(80 * M));
      if (!('reservation' in a) || !('reservation' in b)) throw new Error('unreachable');
      a.reservation!.settle(db, rec({ userId: null, keyId: 'key_r', costMicro: 25 * M, markupMicro: 0 * M }));
      a.reservation!.settle(db, rec({ userId: null, keyId: 'key_r', costMicro: 25 * M, markupMicro: 0 * M }));
      a.reservation!.release();
      b.reservation!.release();
      b.reservation!.release();
      expect(meter.held(platformId)).toBe(0n);
      expect(meter.budgetsFor(db, platformId, who, now)[0]!.spent).toBe(BigInt(25 * M));
      // 25 spent: 75 of room; a free call passes until the spend reaches the limit.
      expect('refused' in hold(76)).toBe(true);
      expect('reservation' in hold(0)).toBe(true);
      const d = hold(75);
      if (!('reservation' in d)) throw new Error('expected room for 75');
      d.reservation!.settle(db, rec({ userId: null, keyId: 'key_r', costMicro: 75 * M, markupMicro: 0 * M }));
      expect('refused' in hold(0)).toBe(true);
      // No budget applies to another key: nothing to hold, and the estimate is not even computed.
      let computed = false;
      const other = meter.reserve(db, platformId, { userId: null, keyId: 'key_other' }, now, () => {
        computed = true;
        return new Map();
      });
      expect(other).toEqual({ reservation: null });
      expect(computed).toBe(false);
    });
    await meter.close();
  });
});

describe('a failed flush loses nothing', () => {
  /** Makes the platform's usage inserts fail (a temporary trigger on the pooled handle), from row `after` on. */
  const breakWrites = (after: number) =>
    inst.app.platformDbs.use(platformId, (db) =>
      db.exec(
        `CREATE TEMP TRIGGER usage_fails BEFORE INSERT ON usage_events
         WHEN (SELECT count(*) FROM usage_events) >= ${after}
         BEGIN SELECT RAISE(ABORT, 'disk says no'); END`,
      ),
    );
  const mendWrites = () => inst.app.platformDbs.use(platformId, (db) => db.exec('DROP TRIGGER usage_fails'));
  const usageEvents = () =>
    inst.app.platformDbs.use(platformId, (db) =>
      db
        .query<{ payload: string }, []>(
          "SELECT payload FROM events WHERE name = 'usage.recorded' ORDER BY id",
        )
        .all()
        .map((r) => JSON.parse(r.payload) as UsageRecordedV2),
    );

  test('a write failing mid-batch keeps the rest, waits out its backoff, then writes it once, each transaction with its usage.recorded event', async () => {
    let t = now;
    const app = { ...inst.app, clock: { now: () => t } };
    const meter = new Meter(app, { flushMs: 1_000 });
    const before = await count();
    const eventsBefore = (await usageEvents()).length;
    // The first slice (64 rows) goes through, the second fails.
    await breakWrites(before + 64);
    await inst.app.platformDbs.use(platformId, (db) => {
      for (let i = 0; i < 100; i++) meter.record(db, rec({ ts: now + i, tokensIn: i }));
    });
    await meter.flush();
    expect(await count()).toBe(before + 64);
    expect(meter.stats()).toEqual({ buffered: 0, retrying: 36, dropped: 0 });
    // New records of a platform in backoff wait with the kept ones; nothing is tried before it ends.
    await inst.app.platformDbs.use(platformId, (db) =>
      meter.record(db, rec({ ts: now + 100, tokensIn: 100 })),
    );
    await mendWrites();
    await meter.flush();
    expect(await count()).toBe(before + 64);
    expect(meter.stats()).toEqual({ buffered: 0, retrying: 37, dropped: 0 });
    t += 1_000;
    await meter.flush();
    expect(meter.stats()).toEqual({ buffered: 0, retrying: 0, dropped: 0 });
    expect(await count()).toBe(before + 101);
    const written = await inst.app.platformDbs.use(platformId, (db) =>
      db
        .query<{ tokens_in: number }, [number]>('SELECT tokens_in FROM usage_events WHERE id > ? ORDER BY id')
        .all(before)
        .map((r) => r.tokens_in),
    );
    expect(written).toEqual(Array.from({ length: 101 }, (_, i) => i));
    // One event per committed transaction (64, then 37 in slices of 64: 2 in all), covering every row once.
    const evs = (await usageEvents()).slice(eventsBefore);
    expect(evs.map((e) => e.records)).toEqual([64, 37]);
    expect(evs[1]!.firstRowId).toBe(evs[0]!.lastRowId + 1);
    expect(evs[0]).toMatchObject({
      platformId,
      from: now,
      to: now + 63,
      totals: [
        {
          currency: 'usd',
          calls: 64,
          errors: 0,
          costMicro: 64 * 30 * M,
          markupMicro: 64 * 6 * M,
          tokensOut: 64 * 500,
        },
      ],
    });
    await meter.close();
  });

  test('past maxPending, the oldest kept records are dropped, counted and logged; close() tries once more', async () => {
    let t = now;
    const errors: string[] = [];
    const log = { ...inst.app.log, error: (m: string) => void errors.push(m) };
    const app = { ...inst.app, log, clock: { now: () => t } };
    const meter = new Meter(app, { flushMs: 1_000, maxPending: 10 });
    const before = await count();
    await breakWrites(0);
    await inst.app.platformDbs.use(platformId, (db) => {
      for (let i = 0; i < 8; i++) meter.record(db, rec());
    });
    await meter.flush();
    expect(meter.stats()).toEqual({ buffered: 0, retrying: 8, dropped: 0 });
    await inst.app.platformDbs.use(platformId, (db) => {
      for (let i = 0; i < 4; i++) meter.record(db, rec());
    });
    expect(meter.stats()).toEqual({ buffered: 4, retrying: 6, dropped: 2 });
    expect(errors).toContain('usage dropped: too many records kept from failed writes');
    await mendWrites();
    t += 10;
    // Still in backoff, but close() does not wait for it.
    await meter.close();
    expect(await count()).toBe(before + 10);
  });

  test('a SIGKILL loses only what was recorded since the last flush', async () => {
    const t = tempDir('soulfra-meter-kill-');
    try {
      const dataDir = join(t.dir, 'data');
      const setup = openInstance({ dataDir, log: silentLogger });
      const id = (await createPlatform(setup.app, setup.tenancy, { slug: 'killed' }, 'test')).platform.id;
      await setup.close();
      const child = Bun.spawn(
        [BUN, join(ROOT, 'tests', 'fixtures', 'meter-kill.ts'), dataDir, id, '70', '5'],
        {
          stdout: 'ignore',
          stderr: 'pipe',
        },
      );
      await child.exited;
      expect(child.signalCode).toBe('SIGKILL');
      const after = openInstance({ dataDir, log: silentLogger });
      try {
        const { rows, recorded } = await after.app.platformDbs.use(id, (db) => ({
          rows: db.query<{ n: number }, []>('SELECT count(*) AS n FROM usage_events').get()!.n,
          recorded: db
            .query<{ payload: string }, []>("SELECT payload FROM events WHERE name = 'usage.recorded'")
            .all()
            .reduce((a, r) => a + (JSON.parse(r.payload) as { records: number }).records, 0),
        }));
        expect(rows).toBe(70);
        expect(recorded).toBe(70);
      } finally {
        await after.close();
      }
    } finally {
      t.cleanup();
    }
  }, 30_000);
});

describe('exact money: micro-units summed without rounding', () => {
  const price = { input: 15, output: 60 };
  /** A user budget for `userId` (1,000 minor units a day), with the meter's cache dropped. */
  const budgetFor = (db: Database, meter: Meter, userId: string) => {
    db.query(
      `INSERT INTO budgets (id, scope, subject, period, limit_minor, currency, alert_percent, created_at) VALUES (?, 'user', ?, 'day', 1000, 'usd', 100, 0)`,
    ).run(`b_${userId}`, userId);
    meter.invalidate(platformId);
  };
  const call = (userId: string, tin: number, tout: number) =>
    rec({ userId, tokensIn: tin, tokensOut: tout, costMicro: costMicro(price, tin, tout), markupMicro: 0 });

  test('4 calls of 12 + 12 tokens at 15 and 60 per 1M cost 3,600 micro-units in all, in memory and once written', async () => {
    const meter = new Meter(inst.app, { flushMs: 60_000 });
    await inst.app.platformDbs.use(platformId, (db) => {
      budgetFor(db, meter, 'usr_four');
      for (let i = 0; i < 4; i++) meter.record(db, call('usr_four', 12, 12));
      expect(meter.budgetsFor(db, platformId, { userId: 'usr_four', keyId: null }, now)[0]!.spent).toBe(
        3_600n,
      );
    });
    await meter.flush();
    const again = new Meter(inst.app, { flushMs: 60_000 });
    await inst.app.platformDbs.use(platformId, (db) => {
      expect(again.budgetsFor(db, platformId, { userId: 'usr_four', keyId: null }, now)[0]!.spent).toBe(
        3_600n,
      );
    });
    await meter.close();
    await again.close();
  });

  test('property: thousands of tiny calls add up to exactly the sum of tokens × price (budget spend, written rows, a restart)', async () => {
    let run = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.tuple(fc.nat({ max: 40 }), fc.nat({ max: 40 })), { minLength: 1_000, maxLength: 3_000 }),
        async (calls) => {
          const userId = `usr_prop_${run++}`;
          const meter = new Meter(inst.app, { flushMs: 60_000 });
          let exact = 0n;
          for (const [tin, tout] of calls) exact += BigInt(tin) * 15n + BigInt(tout) * 60n;
          await inst.app.platformDbs.use(platformId, (db) => {
            budgetFor(db, meter, userId);
            for (const [tin, tout] of calls) meter.record(db, call(userId, tin, tout));
            expect(meter.budgetsFor(db, platformId, { userId, keyId: null }, now)[0]!.spent).toBe(exact);
          });
          await meter.close();
          // Rounding each call up to a minor unit (the old way) would have counted one per priced call.
          const again = new Meter(inst.app, { flushMs: 60_000 });
          await inst.app.platformDbs.use(platformId, (db) => {
            expect(again.budgetsFor(db, platformId, { userId, keyId: null }, now)[0]!.spent).toBe(exact);
            const written = db
              .query<{ s: bigint }, [string]>(
                'SELECT sum(cost_micro) AS s FROM usage_events WHERE user_id = ?',
              )
              .safeIntegers(true)
              .get(userId)!.s;
            expect(written).toBe(exact);
          });
          await again.close();
        },
      ),
      { numRuns: 5 },
    );
  }, 60_000);
});

describe('usage of a platform being archived', () => {
  /** Usage rows and the records its `usage.recorded` events cover, read from a file directly. */
  const readFile = (file: string) => {
    const db = new Database(file, { readonly: true });
    try {
      return {
        rows: db.query<{ n: number }, []>('SELECT count(*) AS n FROM usage_events').get()!.n,
        recorded: db
          .query<{ payload: string }, []>("SELECT payload FROM events WHERE name = 'usage.recorded'")
          .all()
          .reduce((a, r) => a + (JSON.parse(r.payload) as UsageRecordedV2).records, 0),
      };
    } finally {
      db.close();
    }
  };
  const archived = (id: string) => join(inst.app.dataDir, 'platforms', 'archive', `${id}.db`);

  test('what is buffered when the archive begins is written into the platform file before it moves', async () => {
    const id = (await createPlatform(inst.app, inst.tenancy, { slug: 'arch-buffered' }, 'test')).platform.id;
    const meter = new Meter(inst.app, { flushMs: 60_000 });
    await inst.app.platformDbs.use(id, (db) => {
      for (let i = 0; i < 10; i++) meter.record(db, rec({ platformId: id }));
    });
    expect(meter.stats().buffered).toBe(10);
    await inst.tenancy.archive('arch-buffered', 'test');
    // Nothing left in memory for a stop to lose: it is in the archived file, with its event.
    expect(meter.stats()).toEqual({ buffered: 0, retrying: 0, dropped: 0 });
    expect(readFile(archived(id))).toEqual({ rows: 10, recorded: 10 });
    await meter.close();
    expect(readFile(archived(id))).toEqual({ rows: 10, recorded: 10 });
  });

  test('an archive during a flush: the rows the flush had not written yet land in the archived file, each once', async () => {
    const id = (await createPlatform(inst.app, inst.tenancy, { slug: 'arch-flushing' }, 'test')).platform.id;
    const meter = new Meter(inst.app, { flushMs: 60_000 });
    await inst.app.platformDbs.use(id, (db) => {
      for (let i = 0; i < 300; i++) meter.record(db, rec({ platformId: id, tokensIn: i }));
    });
    // The flush writes its first slice, then yields; the archive starts in between.
    const flushing = meter.flush();
    const archiving = inst.tenancy.archive('arch-flushing', 'test');
    await Promise.all([flushing, archiving]);
    expect(meter.stats()).toEqual({ buffered: 0, retrying: 0, dropped: 0 });
    const file = archived(id);
    expect(readFile(file)).toEqual({ rows: 300, recorded: 300 });
    const db = new Database(file, { readonly: true });
    try {
      const tokens = db
        .query<{ t: number }, []>('SELECT tokens_in AS t FROM usage_events ORDER BY t')
        .all()
        .map((r) => r.t);
      expect(tokens).toEqual(Array.from({ length: 300 }, (_, i) => i));
    } finally {
      db.close();
    }
    // Brought back, it has them all once; the meter has nothing more to write.
    inst.tenancy.unarchive('arch-flushing', 'test');
    await meter.close();
    expect(
      await inst.app.platformDbs.use(
        id,
        (d) => d.query<{ n: number }, []>('SELECT count(*) AS n FROM usage_events').get()!.n,
      ),
    ).toBe(300);
  });
});
