import type { Database } from 'bun:sqlite';
import { newId } from '../shared/ids.ts';
import type { Budget, BudgetSpec, UsageRecord } from './usage.models.ts';

/*
 * The SQL of AI budgets and usage in a platform's database (tables `budgets` and
 * `usage_events`, migrations/tenant/0004-ai.sql and 0009-usage-micro.sql). Callers hold the
 * transaction where one is needed. Money sums are SQL integers read as BigInt: exact past 2^53.
 */

/** A stored budget row (what the budget routes answer with). */
export interface BudgetRow extends Budget {
  created_at: number;
}

/** A budget as it is set (the id is derived from scope, subject and period). */
export type { BudgetSpec } from './usage.models.ts';

/**
 * One line of the usage report: calls, tokens and money per provider, model, kind and currency;
 * money in micro-units (millionths of a minor unit), summed exactly.
 */
export interface UsageLine {
  provider: string;
  model: string;
  kind: string;
  currency: string;
  calls: number;
  tokens_in: number;
  tokens_out: number;
  cost_micro: bigint;
  markup_micro: bigint;
}

/** Every budget of the platform, by scope, subject and period. */
export function listBudgets(db: Database): BudgetRow[] {
  return db.query<BudgetRow, []>('SELECT * FROM budgets ORDER BY scope, subject, period').all();
}

/**
 * The id a budget gets: one per scope, subject and period, and never the same for two of them.
 * Letters, digits and `_` of the subject stay as they are (so the usual `usr_…`/`key_…` ids read
 * plainly); every other byte, `-` (the escape) included, becomes `-` and two hex digits, so
 * `usr-1` → `bud_user_usr-2d1_day` and `usr_1` → `bud_user_usr_1_day`. Scope and period come
 * from closed sets without `_` in them, so the subject between them is read back unambiguously.
 */
export function budgetIdOf(b: Pick<BudgetSpec, 'scope' | 'subject' | 'period'>): string {
  const subject = b.scope === 'platform' ? 'all' : escapeIdPart(b.subject);
  return `bud_${b.scope}_${subject}_${b.period}`;
}

/**
 * `budgetIdOf(b)`, unless a row written before ids were collision-free (when `-` and `_` both
 * became `_`) holds it for another subject: then a fresh random id.
 */
function freeBudgetId(db: Database, b: BudgetSpec): string {
  const id = budgetIdOf(b);
  const holder = db
    .query<{ scope: string; subject: string; period: string }, [string]>(
      'SELECT scope, subject, period FROM budgets WHERE id = ?',
    )
    .get(id);
  if (!holder || (holder.scope === b.scope && holder.subject === b.subject && holder.period === b.period))
    return id;
  return newId('bud');
}

function escapeIdPart(s: string): string {
  let out = '';
  for (const byte of new TextEncoder().encode(s)) {
    const c = String.fromCharCode(byte);
    out += /[a-zA-Z0-9_]/.test(c) ? c : `-${byte.toString(16).padStart(2, '0')}`;
  }
  return out;
}

/** Creates the budget or changes its limit, currency and alert (keyed by scope, subject, period); returns the row. */
export function upsertBudget(db: Database, b: BudgetSpec, now: number): BudgetRow {
  db.query(
    `INSERT INTO budgets (id, scope, subject, period, limit_minor, currency, alert_percent, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)
     ON CONFLICT (scope, subject, period) DO UPDATE SET limit_minor = excluded.limit_minor, currency = excluded.currency, alert_percent = excluded.alert_percent`,
  ).run(freeBudgetId(db, b), b.scope, b.subject, b.period, b.limit_minor, b.currency, b.alert_percent, now);
  return db
    .query<BudgetRow, [string, string, string]>(
      'SELECT * FROM budgets WHERE scope = ? AND subject = ? AND period = ?',
    )
    .get(b.scope, b.subject, b.period)!;
}

/** Deletes a budget; whether it existed. */
export function deleteBudget(db: Database, id: string): boolean {
  return db.query('DELETE FROM budgets WHERE id = ?').run(id).changes > 0;
}

/** Usage written in [from, to), grouped by provider, model, kind and currency. */
export function usageBetween(db: Database, from: number, to: number): UsageLine[] {
  const rows = db
    .query<Record<keyof UsageLine, string | bigint>, [number, number]>(
      `SELECT provider, model, kind, currency, count(*) AS calls, sum(tokens_in) AS tokens_in, sum(tokens_out) AS tokens_out,
              sum(cost_micro) AS cost_micro, sum(markup_micro) AS markup_micro
       FROM usage_events WHERE ts >= ? AND ts < ? GROUP BY provider, model, kind, currency ORDER BY provider, model`,
    )
    .safeIntegers(true)
    .all(from, to);
  return rows.map((r) => ({
    provider: r.provider as string,
    model: r.model as string,
    kind: r.kind as string,
    currency: r.currency as string,
    calls: Number(r.calls),
    tokens_in: Number(r.tokens_in),
    tokens_out: Number(r.tokens_out),
    cost_micro: r.cost_micro as bigint,
    markup_micro: r.markup_micro as bigint,
  }));
}

/** One hour's usage of one model alias by one caller (the admin's charts). */
export interface UsageHour {
  /** The hour's start, epoch ms. */
  hour: number;
  alias: string;
  user_id: string | null;
  /** The user's email now (null for API keys without a user and for users since deleted). */
  user_email: string | null;
  currency: string;
  calls: number;
  errors: number;
  tokens_in: number;
  tokens_out: number;
  cost_micro: bigint;
  markup_micro: bigint;
}

/** Usage written in [from, to), by hour, model alias, user and currency, oldest first. */
export function usageByHour(db: Database, from: number, to: number): UsageHour[] {
  const rows = db
    .query<Record<keyof UsageHour, string | bigint | null>, [number, number]>(
      `SELECT (e.ts / 3600000) * 3600000 AS hour, e.alias AS alias, e.user_id AS user_id, u.email AS user_email,
              e.currency AS currency, count(*) AS calls, sum(e.status <> 'ok') AS errors,
              sum(e.tokens_in) AS tokens_in, sum(e.tokens_out) AS tokens_out,
              sum(e.cost_micro) AS cost_micro, sum(e.markup_micro) AS markup_micro
       FROM usage_events e LEFT JOIN users u ON u.id = e.user_id
       WHERE e.ts >= ? AND e.ts < ? GROUP BY hour, e.alias, e.user_id, e.currency ORDER BY hour, e.alias`,
    )
    .safeIntegers(true)
    .all(from, to);
  return rows.map((r) => ({
    hour: Number(r.hour),
    alias: r.alias as string,
    user_id: (r.user_id as string | null) ?? null,
    user_email: (r.user_email as string | null) ?? null,
    currency: r.currency as string,
    calls: Number(r.calls),
    errors: Number(r.errors),
    tokens_in: Number(r.tokens_in),
    tokens_out: Number(r.tokens_out),
    cost_micro: r.cost_micro as bigint,
    markup_micro: r.markup_micro as bigint,
  }));
}

/** What a platform spent on AI since `since`: calls and tokens, and cost plus markup by currency (most calls first). */
export function usageTotalsSince(
  db: Database,
  since: number,
): { currency: string; calls: number; tokens: number; cost_micro: bigint }[] {
  return db
    .query<{ currency: string; calls: bigint; tokens: bigint | null; cost_micro: bigint | null }, [number]>(
      `SELECT currency, count(*) AS calls, sum(tokens_in + tokens_out) AS tokens, sum(cost_micro + markup_micro) AS cost_micro
       FROM usage_events WHERE ts >= ? GROUP BY currency ORDER BY calls DESC`,
    )
    .safeIntegers(true)
    .all(since)
    .map((r) => ({
      currency: r.currency,
      calls: Number(r.calls),
      tokens: Number(r.tokens ?? 0n),
      cost_micro: r.cost_micro ?? 0n,
    }));
}

/*
 * The meter's SQL (src/ai/meter.ts still holds its own copy; the lead moves it here at merge).
 */

/** Every budget, as the meter holds them. */
export function loadBudgets(db: Database): Budget[] {
  return db.query<Budget, []>('SELECT * FROM budgets').all();
}

/** What a budget's callers have spent (cost plus markup, micro-units, exact) since `start`, in its currency. */
export function spentSince(db: Database, b: Budget, start: number): bigint {
  const where = b.scope === 'user' ? 'AND user_id = ?' : b.scope === 'key' ? 'AND key_id = ?' : '';
  const args: (string | number)[] = [start, b.currency, ...(b.scope === 'platform' ? [] : [b.subject])];
  const row = db
    .query<{ s: bigint | null }, (string | number)[]>(
      `SELECT sum(cost_micro + markup_micro) AS s FROM usage_events WHERE ts >= ? AND currency = ? ${where}`,
    )
    .safeIntegers(true)
    .get(...args);
  return row?.s ?? 0n;
}

/**
 * Writes usage records in the caller's transaction (the meter's flush, which appends its
 * `usage.recorded` event in the same one); returns the first and last row ids written.
 */
export function insertUsageRows(
  db: Database,
  records: readonly UsageRecord[],
): { firstRowId: number; lastRowId: number } {
  const q = db.query(
    `INSERT INTO usage_events (ts, user_id, key_id, agent_id, kind, alias, provider, model, tokens_in, tokens_out,
       counted, latency_ms, cost_micro, markup_micro, currency, status, agent_version, creator_id)
     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
  );
  let firstRowId = 0;
  let lastRowId = 0;
  for (const r of records) {
    const res = q.run(
      r.ts,
      r.userId,
      r.keyId,
      r.agentId,
      r.kind,
      r.alias,
      r.provider,
      r.model,
      r.tokensIn,
      r.tokensOut,
      r.counted ? 1 : 0,
      r.latencyMs,
      r.costMicro,
      r.markupMicro,
      r.currency,
      r.status,
      r.agentVersion ?? null,
      r.creatorId ?? null,
    );
    lastRowId = Number(res.lastInsertRowid);
    if (firstRowId === 0) firstRowId = lastRowId;
  }
  return { firstRowId, lastRowId };
}

/** What one payer (user, or '' for calls with none) owes for a range of usage rows, per currency. */
export interface UsageByPayer {
  userId: string;
  currency: string;
  costMicro: bigint;
  markupMicro: bigint;
}

/**
 * Usage rows `firstRowId`..`lastRowId` (a `usage.recorded` event's) summed per payer and
 * currency, exact (BigInt): what the billing ledger posts.
 */
export function usageByPayer(db: Database, firstRowId: number, lastRowId: number): UsageByPayer[] {
  return db
    .query<UsageByPayer, [number, number]>(
      `SELECT coalesce(user_id, '') AS userId, currency, sum(cost_micro) AS costMicro, sum(markup_micro) AS markupMicro
       FROM usage_events WHERE id BETWEEN ? AND ? GROUP BY 1, 2 ORDER BY 1, 2`,
    )
    .safeIntegers(true)
    .all(firstRowId, lastRowId);
}

/** A user's chat calls since `since` (epoch ms): what `requests_per_day` counts (by index). */
export function chatCallsSince(db: Database, userId: string, since: number): number {
  return (
    db
      .query<{ n: number }, [string, number]>(
        "SELECT count(*) AS n FROM usage_events WHERE user_id = ? AND ts >= ? AND kind = 'chat'",
      )
      .get(userId, since)?.n ?? 0
  );
}
