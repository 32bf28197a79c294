/** SQL over control.db's operator_plans and platform_plans (control migration 0011). */
import type { Database } from 'bun:sqlite';

/** An operator plan's row (JSON columns as text). */
export interface OperatorPlanRow {
  id: string;
  name: string;
  price_minor: number;
  price_is_minimum: number;
  interval: 'month' | 'year';
  currency: string;
  max_users: number | null;
  ai_markup_percent: number;
  ai_markup_tiers: string;
  transaction_fee_percent: number;
  features: string;
  archived: number;
  created_at: number;
  updated_at: number;
}

/** A platform's plan and where it stands against the plan's limits. */
export interface PlatformPlanRow {
  platform_id: string;
  plan_id: string;
  users: number | null;
  evaluated_at: number | null;
  over_since: number | null;
  notified_at: number | null;
  held_since: number | null;
  updated_at: number;
}

const PLAN_COLS =
  'id, name, price_minor, price_is_minimum, interval, currency, max_users, ai_markup_percent, ai_markup_tiers, transaction_fee_percent, features, archived, created_at, updated_at';

export function allPlans(db: Database): OperatorPlanRow[] {
  return db
    .query<OperatorPlanRow, []>(`SELECT ${PLAN_COLS} FROM operator_plans ORDER BY price_minor, id`)
    .all();
}

export function planById(db: Database, id: string): OperatorPlanRow | null {
  return db.query<OperatorPlanRow, [string]>(`SELECT ${PLAN_COLS} FROM operator_plans WHERE id = ?`).get(id);
}

/** Inserts a plan; `ignore`: keeps an existing row of that id (the seeds). */
export function insertPlan(db: Database, p: OperatorPlanRow, ignore = false): void {
  db.query(
    `INSERT ${ignore ? 'OR IGNORE ' : ''}INTO operator_plans (${PLAN_COLS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
  ).run(
    p.id,
    p.name,
    p.price_minor,
    p.price_is_minimum,
    p.interval,
    p.currency,
    p.max_users,
    p.ai_markup_percent,
    p.ai_markup_tiers,
    p.transaction_fee_percent,
    p.features,
    p.archived,
    p.created_at,
    p.updated_at,
  );
}

export function updatePlan(db: Database, p: OperatorPlanRow): void {
  db.query(
    `UPDATE operator_plans SET name = ?, price_minor = ?, price_is_minimum = ?, interval = ?, currency = ?,
       max_users = ?, ai_markup_percent = ?, ai_markup_tiers = ?, transaction_fee_percent = ?, features = ?,
       archived = ?, updated_at = ? WHERE id = ?`,
  ).run(
    p.name,
    p.price_minor,
    p.price_is_minimum,
    p.interval,
    p.currency,
    p.max_users,
    p.ai_markup_percent,
    p.ai_markup_tiers,
    p.transaction_fee_percent,
    p.features,
    p.archived,
    p.updated_at,
    p.id,
  );
}

export function deletePlan(db: Database, id: string): void {
  db.query('DELETE FROM operator_plans WHERE id = ?').run(id);
}

/** How many platforms are on each plan. */
export function planUse(db: Database): Map<string, number> {
  const out = new Map<string, number>();
  for (const r of db
    .query<{ plan_id: string; n: number }, []>(
      'SELECT plan_id, count(*) AS n FROM platform_plans GROUP BY plan_id',
    )
    .all())
    out.set(r.plan_id, r.n);
  return out;
}

/** A platform's plan row, with its template (for the default when it has no row yet). */
export function platformPlanOf(
  db: Database,
  platformId: string,
): { template: string; row: PlatformPlanRow | null } | null {
  const r = db
    .query<PlatformPlanRow & { template: string; has: string | null }, [string]>(
      `SELECT p.template, pp.platform_id AS has, pp.plan_id, pp.users, pp.evaluated_at, pp.over_since,
              pp.notified_at, pp.held_since, pp.updated_at
         FROM platforms p LEFT JOIN platform_plans pp ON pp.platform_id = p.id WHERE p.id = ?`,
    )
    .get(platformId);
  if (!r) return null;
  const { template, has, ...rest } = r;
  return { template, row: has === null ? null : { ...rest, platform_id: platformId } };
}

/** Every platform's plan row. */
export function allPlatformPlans(db: Database): PlatformPlanRow[] {
  return db.query<PlatformPlanRow, []>('SELECT * FROM platform_plans').all();
}

/** Platforms with no plan row yet: their ids and templates. */
export function platformsWithoutPlan(db: Database): { id: string; template: string }[] {
  return db
    .query<{ id: string; template: string }, []>(
      'SELECT p.id, p.template FROM platforms p LEFT JOIN platform_plans pp ON pp.platform_id = p.id WHERE pp.platform_id IS NULL',
    )
    .all();
}

export function upsertPlatformPlan(db: Database, r: PlatformPlanRow): void {
  db.query(
    `INSERT INTO platform_plans (platform_id, plan_id, users, evaluated_at, over_since, notified_at, held_since, updated_at)
     VALUES (?, ?, ?, ?, ?, ?, ?, ?)
     ON CONFLICT (platform_id) DO UPDATE SET plan_id = excluded.plan_id, users = excluded.users,
       evaluated_at = excluded.evaluated_at, over_since = excluded.over_since, notified_at = excluded.notified_at,
       held_since = excluded.held_since, updated_at = excluded.updated_at`,
  ).run(
    r.platform_id,
    r.plan_id,
    r.users,
    r.evaluated_at,
    r.over_since,
    r.notified_at,
    r.held_since,
    r.updated_at,
  );
}
