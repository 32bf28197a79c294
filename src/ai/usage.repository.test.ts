import { Database as BunDatabase, type Database } from 'bun:sqlite';
import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { instanceWithPlatform } from '../../tests/helpers.ts';
import { migrate, TENANT_MIGRATIONS } from '../db/index.ts';
import type { Instance } from '../flows/index.ts';
import type { UsageRecord } from './meter.ts';
import {
  budgetIdOf,
  deleteBudget,
  insertUsageRows,
  listBudgets,
  loadBudgets,
  spentSince,
  upsertBudget,
  usageBetween,
} from './usage.repository.ts';

let inst: Instance;
let platformId: string;
let cleanup: () => Promise<void>;
const now = Date.UTC(2026, 10, 26, 12);

beforeAll(async () => {
  ({ inst, platformId, cleanup } = await instanceWithPlatform('usage-repo', () => now));
});
afterAll(() => cleanup());

const on = <T>(f: (db: Database) => T) => inst.app.platformDbs.use(platformId, f);

const rec = (over: Partial<UsageRecord>): UsageRecord => ({
  platformId,
  ts: now,
  userId: 'usr_a',
  keyId: null,
  agentId: null,
  kind: 'chat',
  alias: 'default',
  provider: 'cloud',
  model: 'gpt',
  tokensIn: 100,
  tokensOut: 50,
  counted: false,
  latencyMs: 12,
  costMicro: 30,
  markupMicro: 6,
  currency: 'usd',
  status: 'ok',
  ...over,
});

describe('the budgets and usage repository', () => {
  test('a budget is created, changed in place (same id) and deleted', async () => {
    const spec = {
      scope: 'user' as const,
      subject: 'usr_a',
      period: 'day' as const,
      limit_minor: 100,
      currency: 'usd',
      alert_percent: 80,
    };
    const row = await on((db) => upsertBudget(db, spec, now));
    expect(row).toEqual({ id: 'bud_user_usr_a_day', ...spec, created_at: now });
    expect(budgetIdOf({ scope: 'platform', subject: '', period: 'month' })).toBe('bud_platform_all_month');
    const changed = await on((db) =>
      upsertBudget(db, { ...spec, limit_minor: 250, alert_percent: 50 }, now + 1),
    );
    expect(changed).toEqual({ ...row, limit_minor: 250, alert_percent: 50 });
    expect(await on(listBudgets)).toEqual([changed]);
    expect(await on(loadBudgets)).toEqual([changed]);
    expect(await on((db) => deleteBudget(db, row.id))).toBe(true);
    expect(await on((db) => deleteBudget(db, row.id))).toBe(false);
    expect(await on(listBudgets)).toEqual([]);
  });

  test('budget ids never collide: subjects that differ only in `-`, `_` or other bytes get their own rows', async () => {
    const spec = (subject: string) => ({
      scope: 'user' as const,
      subject,
      period: 'day' as const,
      limit_minor: 100,
      currency: 'usd',
      alert_percent: 80,
    });
    const subjects = ['usr-1', 'usr_1', 'usr.1', 'usr-2d1', 'usr é', 'usr_1_day'];
    const ids = subjects.map((sub) => budgetIdOf(spec(sub)));
    expect(ids).toEqual([
      'bud_user_usr-2d1_day',
      'bud_user_usr_1_day',
      'bud_user_usr-2e1_day',
      'bud_user_usr-2d2d1_day',
      'bud_user_usr-20-c3-a9_day',
      'bud_user_usr_1_day_day',
    ]);
    expect(new Set(ids).size).toBe(subjects.length);
    const rows = await on((db) => subjects.map((sub) => upsertBudget(db, spec(sub), now)));
    expect(rows.map((r) => r.subject)).toEqual(subjects);
    expect((await on(listBudgets)).length).toBe(subjects.length);
    // A row written when `-` and `_` both became `_` holds the id `usr_1` now maps to: a fresh id.
    await on((db) => {
      for (const r of rows) deleteBudget(db, r.id);
      db.query(
        "INSERT INTO budgets (id, scope, subject, period, limit_minor, currency, alert_percent, created_at) VALUES ('bud_user_usr_1_day', 'user', 'usr-1', 'day', 5, 'usd', 80, 0)",
      ).run();
    });
    const fresh = await on((db) => upsertBudget(db, spec('usr_1'), now));
    expect(fresh.id).toMatch(/^bud_[0-9a-z]{26}$/);
    expect(fresh.subject).toBe('usr_1');
    const legacy = await on((db) => upsertBudget(db, { ...spec('usr-1'), limit_minor: 7 }, now));
    expect(legacy).toMatchObject({ id: 'bud_user_usr_1_day', subject: 'usr-1', limit_minor: 7 });
    await on((db) => db.query('DELETE FROM budgets').run());
  });

  test('usage is written, summed per budget subject, and reported per provider and model', async () => {
    await on((db) =>
      db.transaction(() =>
        insertUsageRows(db, [
          rec({}),
          rec({ userId: 'usr_b', costMicro: 10, markupMicro: 1 }),
          rec({ keyId: 'key_1', userId: null, model: 'mini', costMicro: 5, markupMicro: 0 }),
          rec({ ts: now - 86_400_000, costMicro: 1000 }),
          rec({ currency: 'eur', costMicro: 7 }),
        ]),
      )(),
    );
    const b = (scope: 'platform' | 'user' | 'key', subject = '') => ({
      id: 'b',
      scope,
      subject,
      period: 'day' as const,
      limit_minor: 1,
      currency: 'usd',
      alert_percent: 80,
    });
    const today = Date.UTC(2026, 10, 26);
    expect(await on((db) => spentSince(db, b('platform'), today))).toBe(BigInt(36 + 11 + 5));
    expect(await on((db) => spentSince(db, b('user', 'usr_a'), today))).toBe(BigInt(36));
    expect(await on((db) => spentSince(db, b('key', 'key_1'), today))).toBe(BigInt(5));
    expect(await on((db) => spentSince(db, b('user', 'usr_z'), today))).toBe(BigInt(0));
    expect(await on((db) => usageBetween(db, today, now + 1))).toEqual([
      {
        provider: 'cloud',
        model: 'gpt',
        kind: 'chat',
        currency: 'eur',
        calls: 1,
        tokens_in: 100,
        tokens_out: 50,
        cost_micro: 7n,
        markup_micro: 6n,
      },
      {
        provider: 'cloud',
        model: 'gpt',
        kind: 'chat',
        currency: 'usd',
        calls: 2,
        tokens_in: 200,
        tokens_out: 100,
        cost_micro: 40n,
        markup_micro: 7n,
      },
      {
        provider: 'cloud',
        model: 'mini',
        kind: 'chat',
        currency: 'usd',
        calls: 1,
        tokens_in: 100,
        tokens_out: 50,
        cost_micro: 5n,
        markup_micro: 0n,
      },
    ]);
  });
});

describe('usage money in micro-units', () => {
  test('sums are SQL integers read exactly, past 2^53 (a float would round them)', async () => {
    const big = 2 ** 52; // two of these and one more micro-unit: 2^53 + 1, not a float
    await on((db) =>
      db.transaction(() =>
        insertUsageRows(db, [
          rec({ provider: 'big', userId: 'usr_big', costMicro: big, markupMicro: 0 }),
          rec({ provider: 'big', userId: 'usr_big', costMicro: big, markupMicro: 1 }),
        ]),
      )(),
    );
    const b = {
      id: 'b',
      scope: 'user' as const,
      subject: 'usr_big',
      period: 'day' as const,
      limit_minor: 1,
      currency: 'usd',
      alert_percent: 80,
    };
    const exact = 2n ** 53n + 1n;
    expect(await on((db) => spentSince(db, b, Date.UTC(2026, 10, 26)))).toBe(exact);
    const line = (await on((db) => usageBetween(db, Date.UTC(2026, 10, 26), now + 1))).find(
      (l) => l.provider === 'big',
    )!;
    expect(line.cost_micro + line.markup_micro).toBe(exact);
  });

  test('migration 0009 turns rows written in minor units into micro-units (× 1,000,000), nothing else changes', () => {
    const db = new BunDatabase(':memory:');
    try {
      // The database as it was before 0009 (every earlier migration, none after).
      const v9 = TENANT_MIGRATIONS.find((m) => m.name === 'usage-micro')!.version;
      const before = TENANT_MIGRATIONS.filter((m) => m.version < v9);
      migrate(db, before, 'test');
      db.query(
        `INSERT INTO usage_events (ts, user_id, key_id, agent_id, kind, alias, provider, model, tokens_in, tokens_out,
           counted, latency_ms, cost_minor, markup_minor, currency, status)
         VALUES (1, 'usr_a', NULL, NULL, 'chat', 'default', 'cloud', 'gpt', 12, 12, 0, 5, 1, 0, 'usd', 'ok'),
                (2, 'usr_a', NULL, NULL, 'chat', 'default', 'cloud', 'gpt', 100, 50, 0, 5, 30, 6, 'eur', 'ok')`,
      ).run();
      migrate(db, TENANT_MIGRATIONS, 'test');
      expect(
        db
          .query(
            'SELECT ts, tokens_in, tokens_out, cost_micro, markup_micro, currency FROM usage_events ORDER BY ts',
          )
          .all(),
      ).toEqual([
        { ts: 1, tokens_in: 12, tokens_out: 12, cost_micro: 1_000_000, markup_micro: 0, currency: 'usd' },
        {
          ts: 2,
          tokens_in: 100,
          tokens_out: 50,
          cost_micro: 30_000_000,
          markup_micro: 6_000_000,
          currency: 'eur',
        },
      ]);
      const cols = db
        .query<{ name: string }, []>('PRAGMA table_info(usage_events)')
        .all()
        .map((c) => c.name);
      expect(cols).not.toContain('cost_minor');
      expect(cols).not.toContain('markup_minor');
    } finally {
      db.close();
    }
  });
});
