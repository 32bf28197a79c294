import type { Database } from 'bun:sqlite';
import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { instanceWithPlatform } from '../../tests/helpers.ts';
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
  costMinor: 30,
  markupMinor: 6,
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
          rec({ userId: 'usr_b', costMinor: 10, markupMinor: 1 }),
          rec({ keyId: 'key_1', userId: null, model: 'mini', costMinor: 5, markupMinor: 0 }),
          rec({ ts: now - 86_400_000, costMinor: 1000 }),
          rec({ currency: 'eur', costMinor: 7 }),
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
    expect(await on((db) => spentSince(db, b('platform'), today))).toBe(36 + 11 + 5);
    expect(await on((db) => spentSince(db, b('user', 'usr_a'), today))).toBe(36);
    expect(await on((db) => spentSince(db, b('key', 'key_1'), today))).toBe(5);
    expect(await on((db) => spentSince(db, b('user', 'usr_z'), today))).toBe(0);
    expect(await on((db) => usageBetween(db, today, now + 1))).toEqual([
      {
        provider: 'cloud',
        model: 'gpt',
        kind: 'chat',
        currency: 'eur',
        calls: 1,
        tokens_in: 100,
        tokens_out: 50,
        cost_minor: 7,
        markup_minor: 6,
      },
      {
        provider: 'cloud',
        model: 'gpt',
        kind: 'chat',
        currency: 'usd',
        calls: 2,
        tokens_in: 200,
        tokens_out: 100,
        cost_minor: 40,
        markup_minor: 7,
      },
      {
        provider: 'cloud',
        model: 'mini',
        kind: 'chat',
        currency: 'usd',
        calls: 1,
        tokens_in: 100,
        tokens_out: 50,
        cost_minor: 5,
        markup_minor: 0,
      },
    ]);
  });
});
