/**
 * The operator's plans for platforms (issue 13 item 1), as data in control.db (control
 * migration 0011). A plan sets what a platform pays the operator and what it may hold:
 *
 * - `max_users` (null: unlimited): a platform over it is told (the console's warning, one mail
 *   to its owners and admins per episode), keeps taking new users and agents for
 *   `billing.plan_grace_days` (default 14, on the App's clock), and is then **held**: new
 *   sign-ups, invitations, accounts and agents are refused with 402 `billing.platform_held`;
 *   existing users keep signing in and chatting. Back under the limit, or on a bigger plan, the
 *   hold lifts. Evaluated when a user or agent is made, when the plan changes, and when the
 *   operator reads the platform's plan status (`evaluatePlanLimits`).
 * - `transaction_fee_percent`: the operator's fee on a sale (`termsOf` in purchases.service.ts).
 * - `ai_markup_percent` with volume tiers: the operator's markup on the platform's AI cost,
 *   posted `platform → operator` (`usage.operator`) beside the provider's cost (usage.ts).
 *
 * The plan, not the template, sets the fee and markup; a template only picks a platform's
 * default plan (`TEMPLATE_PLANS`). Plan changes are audited in the control chain.
 */
import type { Database } from 'bun:sqlite';
import { type AdmissionKind, type App, setAdmissionHooks, stateKey } from '../app/index.ts';
import { tx } from '../db/index.ts';
import { createUserRepository, queueMail } from '../identity/index.ts';
import { AppError, type ErrorDetail } from '../shared/errors.ts';
import {
  allPlans,
  allPlatformPlans,
  deletePlan as deletePlanRow,
  insertPlan,
  type OperatorPlanRow,
  type PlatformPlanRow,
  planById,
  planUse,
  platformPlanOf,
  platformsWithoutPlan,
  updatePlan as updatePlanRow,
  upsertPlatformPlan,
} from './operator-plans.repository.ts';

const DAY = 86_400_000;

/** The default grace period before a platform over its plan's limits is held. */
export const DEFAULT_PLAN_GRACE_DAYS = 14;

/** A volume tier: once the platform's AI cost this month has passed `over_minor`, this markup. */
export interface MarkupTier {
  over_minor: number;
  markup_percent: number;
}

/** A plan as the API shows it (and as the enforcement reads it). */
export interface OperatorPlan {
  id: string;
  name: string;
  price_minor: number;
  /** The price is a minimum ("and up"): enterprise terms are agreed per customer. */
  price_is_minimum: boolean;
  interval: 'month' | 'year';
  currency: string;
  max_users: number | null;
  ai_markup_percent: number;
  ai_markup_tiers: MarkupTier[];
  transaction_fee_percent: number;
  features: string[];
  archived: boolean;
  created_at: string;
  updated_at: string;
}

/** Which plan a template picks for a new platform (a template sets no fee or markup). */
export const TEMPLATE_PLANS: Readonly<Record<string, string>> = {
  creator: 'starter',
  blank: 'starter',
  business: 'business',
  education: 'business',
  enterprise: 'enterprise',
};
const FALLBACK_PLAN = 'starter';

/** The plans an instance starts with (inserted once at startup; the operator edits them). */
export function seedPlans(currency: string): Omit<OperatorPlanRow, 'created_at' | 'updated_at'>[] {
  return [
    {
      id: 'starter',
      name: 'Starter',
      price_minor: 9_900,
      price_is_minimum: 0,
      interval: 'month',
      currency,
      max_users: 1_000,
      ai_markup_percent: 40,
      ai_markup_tiers: JSON.stringify([{ over_minor: 50_000, markup_percent: 35 }]),
      transaction_fee_percent: 15,
      features: JSON.stringify(['basic_marketplace']),
      archived: 0,
    },
    {
      id: 'business',
      name: 'Business',
      price_minor: 99_900,
      price_is_minimum: 0,
      interval: 'month',
      currency,
      max_users: 50_000,
      ai_markup_percent: 30,
      ai_markup_tiers: JSON.stringify([
        { over_minor: 500_000, markup_percent: 25 },
        { over_minor: 5_000_000, markup_percent: 20 },
      ]),
      transaction_fee_percent: 25,
      features: JSON.stringify(['marketplace', 'complete_white_label']),
      archived: 0,
    },
    {
      id: 'enterprise',
      name: 'Enterprise',
      price_minor: 999_900,
      price_is_minimum: 1,
      interval: 'month',
      currency,
      max_users: null,
      ai_markup_percent: 20,
      ai_markup_tiers: '[]',
      // Custom per customer: the operator edits it, or makes a plan per enterprise.
      transaction_fee_percent: 20,
      features: JSON.stringify([
        'marketplace',
        'complete_white_label',
        'mobile_app_generation',
        'custom_compliance',
      ]),
      archived: 0,
    },
  ];
}

const iso = (ms: number) => new Date(ms).toISOString();

function planOfRow(r: OperatorPlanRow): OperatorPlan {
  return {
    id: r.id,
    name: r.name,
    price_minor: r.price_minor,
    price_is_minimum: r.price_is_minimum === 1,
    interval: r.interval,
    currency: r.currency,
    max_users: r.max_users,
    ai_markup_percent: r.ai_markup_percent,
    ai_markup_tiers: JSON.parse(r.ai_markup_tiers) as MarkupTier[],
    transaction_fee_percent: r.transaction_fee_percent,
    features: JSON.parse(r.features) as string[],
    archived: r.archived === 1,
    created_at: iso(r.created_at),
    updated_at: iso(r.updated_at),
  };
}

/** The operator's currency (soulfra.yaml `billing.currency`, default usd). */
export const operatorCurrency = (app: Pick<App, 'config'>): string => app.config.billing?.currency ?? 'usd';
const graceMs = (app: Pick<App, 'config'>) =>
  (app.config.billing?.plan_grace_days ?? DEFAULT_PLAN_GRACE_DAYS) * DAY;

// ---- the cache: one control read per platform until a plan changes --------------------------

interface Resolved {
  plan: OperatorPlan;
  row: PlatformPlanRow;
}
const CACHE = stateKey('billing.operator_plans', () => new Map<string, Resolved>());
const forget = (app: App) => app.state.get(CACHE).clear();

/** The platform's plan row, made from its template's default if it has none yet. */
function ensureRow(app: App, platformId: string): PlatformPlanRow {
  const found = platformPlanOf(app.control, platformId);
  if (!found) throw new AppError('platform.not_found', `no platform ${platformId}`, 404);
  if (found.row) return found.row;
  const row = defaultRow(app, platformId, found.template);
  upsertPlatformPlan(app.control, row);
  return row;
}

/** Inserts the seed plans that are missing (idempotent: an edited seed is kept as edited). */
function seed(app: App): void {
  const now = app.clock.now();
  for (const p of seedPlans(operatorCurrency(app)))
    insertPlan(app.control, { ...p, created_at: now, updated_at: now }, true);
}

function defaultRow(app: App, platformId: string, template: string): PlatformPlanRow {
  if (allPlans(app.control).length === 0) seed(app);
  const wanted = TEMPLATE_PLANS[template] ?? FALLBACK_PLAN;
  const plan = planById(app.control, wanted) ?? planById(app.control, FALLBACK_PLAN);
  const id =
    plan && plan.archived === 0 ? plan.id : (allPlans(app.control).find((p) => !p.archived)?.id ?? wanted);
  return {
    platform_id: platformId,
    plan_id: id,
    users: null,
    evaluated_at: null,
    over_since: null,
    notified_at: null,
    held_since: null,
    updated_at: app.clock.now(),
  };
}

/** The platform's plan and standing (cached; changed only through this module). */
export function platformPlan(app: App, platformId: string): Resolved {
  const cache = app.state.get(CACHE);
  const hit = cache.get(platformId);
  if (hit) return hit;
  const row = ensureRow(app, platformId);
  const plan = planById(app.control, row.plan_id);
  if (!plan) throw new Error(`platform ${platformId} is on plan ${row.plan_id}, which does not exist`);
  const r = { plan: planOfRow(plan), row };
  cache.set(platformId, r);
  return r;
}

/** The operator's transaction fee on this platform's sales now (percent). */
export const operatorFeeOf = (app: App, platformId: string): number =>
  platformPlan(app, platformId).plan.transaction_fee_percent;

/**
 * The operator's markup (percent) on a platform's AI cost, given what that cost already came to
 * this month (micro-units, in the usage's currency): the highest tier whose `over_minor` the
 * month's cost has passed, else the plan's `ai_markup_percent`. Simple by design: the tier in
 * force when a usage batch is posted applies to the whole batch.
 */
export function markupPercentFor(plan: OperatorPlan, monthCostMicro: bigint): number {
  let pct = plan.ai_markup_percent;
  for (const t of plan.ai_markup_tiers)
    if (monthCostMicro > BigInt(t.over_minor) * 1_000_000n) pct = t.markup_percent;
  return pct;
}

// ---- validation ------------------------------------------------------------------------------

const SLUG_RE = /^[a-z0-9][a-z0-9-]{0,39}$/;

const percent = (v: unknown, path: string, max: number, details: ErrorDetail[]): number | undefined => {
  if (
    typeof v !== 'number' ||
    !Number.isFinite(v) ||
    v < 0 ||
    v > max ||
    Math.abs(Math.round(v * 100) - v * 100) > 1e-6
  ) {
    details.push({ path, reason: `a percentage from 0 to ${max}, at most two decimals` });
    return undefined;
  }
  return v;
};

/** Checks a create (all fields) or an update (the fields given) and answers the row it makes. */
function checkPlan(
  input: Record<string, unknown>,
  base: OperatorPlanRow | null,
  now: number,
  currency: string,
): OperatorPlanRow {
  const details: ErrorDetail[] = [];
  const has = (k: string) => input[k] !== undefined;
  const need = (k: string) => !base && !has(k);
  const known = new Set([
    'id',
    'name',
    'price_minor',
    'price_is_minimum',
    'interval',
    'currency',
    'max_users',
    'ai_markup_percent',
    'ai_markup_tiers',
    'transaction_fee_percent',
    'features',
    'archived',
  ]);
  for (const k of Object.keys(input))
    if (!known.has(k)) details.push({ path: `/${k}`, reason: 'unknown field' });
  const row: OperatorPlanRow = base
    ? { ...base }
    : {
        id: '',
        name: '',
        price_minor: 0,
        price_is_minimum: 0,
        interval: 'month',
        currency,
        max_users: null,
        ai_markup_percent: 0,
        ai_markup_tiers: '[]',
        transaction_fee_percent: 0,
        features: '[]',
        archived: 0,
        created_at: now,
        updated_at: now,
      };
  if (base && has('id') && input.id !== base.id)
    details.push({ path: '/id', reason: 'a plan keeps its id; make a new plan instead' });
  if (!base) {
    if (typeof input.id !== 'string' || !SLUG_RE.test(input.id))
      details.push({ path: '/id', reason: 'required: a slug (a-z, 0-9, -), at most 40 characters' });
    else row.id = input.id;
  }
  if (
    need('name') ||
    (has('name') && (typeof input.name !== 'string' || !input.name.trim() || input.name.length > 100))
  )
    details.push({ path: '/name', reason: 'required: text of 1 to 100 characters' });
  else if (has('name')) row.name = (input.name as string).trim();
  if (
    need('price_minor') ||
    (has('price_minor') &&
      (!Number.isSafeInteger(input.price_minor) ||
        (input.price_minor as number) < 0 ||
        (input.price_minor as number) > 1e11))
  )
    details.push({ path: '/price_minor', reason: 'required: whole minor units (cents), 0 or more' });
  else if (has('price_minor')) row.price_minor = input.price_minor as number;
  if (has('price_is_minimum')) {
    if (typeof input.price_is_minimum !== 'boolean')
      details.push({ path: '/price_is_minimum', reason: 'true or false' });
    else row.price_is_minimum = input.price_is_minimum ? 1 : 0;
  }
  if (has('interval')) {
    if (input.interval !== 'month' && input.interval !== 'year')
      details.push({ path: '/interval', reason: 'month or year' });
    else row.interval = input.interval;
  }
  if (has('currency')) {
    if (typeof input.currency !== 'string' || !/^[a-z]{3}$/.test(input.currency))
      details.push({ path: '/currency', reason: 'an ISO 4217 code in lower case, e.g. usd' });
    else row.currency = input.currency;
  }
  if (has('max_users')) {
    const v = input.max_users;
    if (v !== null && (!Number.isSafeInteger(v) || (v as number) < 1))
      details.push({
        path: '/max_users',
        reason: 'a whole number of users, 1 or more, or null for unlimited',
      });
    else row.max_users = v as number | null;
  }
  if (need('ai_markup_percent'))
    details.push({ path: '/ai_markup_percent', reason: 'required: a percentage' });
  else if (has('ai_markup_percent')) {
    const v = percent(input.ai_markup_percent, '/ai_markup_percent', 1000, details);
    if (v !== undefined) row.ai_markup_percent = v;
  }
  if (need('transaction_fee_percent'))
    details.push({ path: '/transaction_fee_percent', reason: 'required: a percentage' });
  else if (has('transaction_fee_percent')) {
    const v = percent(input.transaction_fee_percent, '/transaction_fee_percent', 100, details);
    if (v !== undefined) row.transaction_fee_percent = v;
  }
  if (has('ai_markup_tiers')) {
    const tiers = input.ai_markup_tiers;
    if (!Array.isArray(tiers) || tiers.length > 20)
      details.push({ path: '/ai_markup_tiers', reason: 'a list of at most 20 {over_minor, markup_percent}' });
    else {
      const out: MarkupTier[] = [];
      tiers.forEach((t: unknown, i) => {
        const o = (t ?? {}) as Record<string, unknown>;
        const over = o.over_minor;
        if (
          typeof t !== 'object' ||
          t === null ||
          Object.keys(o).some((k) => k !== 'over_minor' && k !== 'markup_percent')
        )
          details.push({ path: `/ai_markup_tiers/${i}`, reason: 'an object {over_minor, markup_percent}' });
        else if (!Number.isSafeInteger(over) || (over as number) < 1)
          details.push({ path: `/ai_markup_tiers/${i}/over_minor`, reason: 'whole minor units, 1 or more' });
        else if (out.length && (over as number) <= out.at(-1)!.over_minor)
          details.push({
            path: `/ai_markup_tiers/${i}/over_minor`,
            reason: 'tiers must ascend by over_minor',
          });
        else {
          const p = percent(o.markup_percent, `/ai_markup_tiers/${i}/markup_percent`, 1000, details);
          if (p !== undefined) out.push({ over_minor: over as number, markup_percent: p });
        }
      });
      row.ai_markup_tiers = JSON.stringify(out);
    }
  }
  if (has('features')) {
    const f = input.features;
    if (
      !Array.isArray(f) ||
      f.length > 50 ||
      f.some((x) => typeof x !== 'string' || !x.trim() || x.length > 100)
    )
      details.push({ path: '/features', reason: 'a list of at most 50 texts of 1 to 100 characters' });
    else row.features = JSON.stringify([...new Set(f as string[])]);
  }
  if (has('archived')) {
    if (typeof input.archived !== 'boolean') details.push({ path: '/archived', reason: 'true or false' });
    else row.archived = input.archived ? 1 : 0;
  }
  if (details.length)
    throw new AppError(
      'billing.plan_invalid',
      `invalid plan: ${details.map((d) => `${d.path} (${d.reason})`).join(', ')}`,
      400,
      details,
    );
  row.updated_at = now;
  return row;
}

// ---- the operator's use cases ------------------------------------------------------------------

/**
 * Every plan, with how many platforms are on each, and the platforms over their plan's limit
 * as last evaluated (`hold_at`: when new users and agents stop, or stopped).
 */
export function listPlans(app: App) {
  const use = planUse(app.control);
  const grace = graceMs(app);
  return {
    plans: allPlans(app.control).map((p) => ({ ...planOfRow(p), platforms: use.get(p.id) ?? 0 })),
    over_limit: allPlatformPlans(app.control)
      .filter((r) => r.over_since !== null)
      .map((r) => ({
        platform_id: r.platform_id,
        plan: r.plan_id,
        users: r.users,
        over_since: iso(r.over_since!),
        hold_at: iso(r.over_since! + grace),
        held: app.clock.now() >= r.over_since! + grace,
      })),
  };
}

function requirePlan(app: App, id: string): OperatorPlanRow {
  const p = planById(app.control, id);
  if (!p)
    throw new AppError('billing.plan_not_found', `no plan '${id}'`, 404, [
      { path: '/id', reason: 'unknown plan' },
    ]);
  return p;
}

export function getPlan(app: App, id: string) {
  const p = requirePlan(app, id);
  return { plan: { ...planOfRow(p), platforms: planUse(app.control).get(id) ?? 0 } };
}

export function createPlan(app: App, actor: string, input: unknown) {
  const row = checkPlan(
    (input ?? {}) as Record<string, unknown>,
    null,
    app.clock.now(),
    operatorCurrency(app),
  );
  tx(app.control, () => {
    if (planById(app.control, row.id))
      throw new AppError('billing.plan_exists', `a plan '${row.id}' exists`, 409, [
        { path: '/id', reason: 'taken' },
      ]);
    insertPlan(app.control, row);
    app.audit.append(app.control, {
      actor,
      action: 'billing.plan_created',
      target: `plan:${row.id}`,
      details: { plan: planOfRow(row) },
    });
  });
  forget(app);
  return getPlan(app, row.id);
}

export function updatePlan(app: App, actor: string, id: string, input: unknown) {
  const before = requirePlan(app, id);
  const row = checkPlan(
    (input ?? {}) as Record<string, unknown>,
    before,
    app.clock.now(),
    operatorCurrency(app),
  );
  const changed = Object.fromEntries(
    (Object.keys(row) as (keyof OperatorPlanRow)[])
      .filter((k) => k !== 'updated_at' && row[k] !== before[k])
      .map((k) => [k, { from: before[k], to: row[k] }]),
  );
  tx(app.control, () => {
    updatePlanRow(app.control, row);
    app.audit.append(app.control, {
      actor,
      action: 'billing.plan_updated',
      target: `plan:${id}`,
      details: { changed },
    });
  });
  forget(app);
  // A new limit may put platforms over it, or bring them back under.
  if ('max_users' in changed) void reevaluatePlan(app, id);
  return getPlan(app, id);
}

export function archivePlan(app: App, actor: string, id: string) {
  return updatePlan(app, actor, id, { archived: true });
}

/** Deletes a plan no platform is on (a plan in use is archived instead: 409 `billing.plan_in_use`). */
export function deletePlan(app: App, actor: string, id: string): void {
  requirePlan(app, id);
  tx(app.control, () => {
    const n = planUse(app.control).get(id) ?? 0;
    if (n > 0)
      throw new AppError(
        'billing.plan_in_use',
        `plan '${id}' is in use by ${n} platform(s): archive it instead (POST /_operator/api/plans/${id}/archive), or move them to another plan first`,
        409,
        [{ path: '/id', reason: 'in use' }],
      );
    deletePlanRow(app.control, id);
    app.audit.append(app.control, {
      actor,
      action: 'billing.plan_deleted',
      target: `plan:${id}`,
      details: {},
    });
  });
  forget(app);
}

async function reevaluatePlan(app: App, planId: string): Promise<void> {
  for (const r of allPlatformPlans(app.control).filter((x) => x.plan_id === planId)) {
    try {
      await app.platformDbs.use(r.platform_id, (db) => evaluatePlanLimitsOn(app, db, r.platform_id));
    } catch (e) {
      app.log.warn('plan limits not evaluated', { platform: r.platform_id, error: String(e) });
    }
  }
}

/** Moves a platform to a plan (audited in the control chain); the limits are evaluated again. */
export async function setPlatformPlan(
  app: App,
  actor: string,
  platform: { id: string; slug: string },
  input: { plan?: unknown },
  /** The platform's blueprint features now: one the new plan does not include refuses the move. */
  features: Record<string, unknown> = {},
) {
  if (typeof input.plan !== 'string')
    throw new AppError('billing.plan_invalid', 'plan: the id of a plan', 400, [
      { path: '/plan', reason: 'required' },
    ]);
  const plan = planById(app.control, input.plan);
  if (!plan)
    throw new AppError('billing.plan_not_found', `no plan '${input.plan}'`, 404, [
      { path: '/plan', reason: 'unknown plan' },
    ]);
  const before = ensureRow(app, platform.id);
  if (plan.archived && before.plan_id !== plan.id)
    throw new AppError(
      'billing.plan_archived',
      `plan '${plan.id}' is archived: no new platforms go on it`,
      409,
      [{ path: '/plan', reason: 'archived' }],
    );
  requirePlanFeatures(
    app,
    { id: plan.id, name: plan.name, features: JSON.parse(plan.features) as string[] },
    Object.keys(features).filter((k) => features[k] === true),
  );
  tx(app.control, () => {
    upsertPlatformPlan(app.control, { ...before, plan_id: plan.id, updated_at: app.clock.now() });
    app.audit.append(app.control, {
      actor,
      action: 'billing.platform_plan_changed',
      target: `platform:${platform.slug}`,
      details: { id: platform.id, from: before.plan_id, to: plan.id },
    });
  });
  forget(app);
  return app.platformDbs.use(platform.id, (db) => evaluatePlanLimitsOn(app, db, platform.id));
}

/**
 * The blueprint features a plan must include to be turned on (the product spec: complete
 * white-label from Business up, the mobile app on Enterprise), by the plan feature that grants it.
 */
export const PLAN_GATED_FEATURES: Readonly<Record<string, string>> = {
  white_label: 'complete_white_label',
  white_label_mobile: 'mobile_app_generation',
};

const FEATURE_NAMES: Readonly<Record<string, string>> = {
  white_label: 'complete white-label',
  white_label_mobile: 'the white-labeled mobile app',
};

/** Throws 409 `billing.plan_feature` when `plan` does not include one of `features` (blueprint names). */
export function requirePlanFeatures(
  app: App,
  plan: { id: string; name: string; features: string[] },
  features: string[],
): void {
  for (const f of features) {
    const needs = PLAN_GATED_FEATURES[f];
    if (!needs || plan.features.includes(needs)) continue;
    const with_ = allPlans(app.control)
      .filter((p) => !p.archived && (JSON.parse(p.features) as string[]).includes(needs))
      .map((p) => p.name);
    throw new AppError(
      'billing.plan_feature',
      `features.${f}: the ${plan.name} plan does not include ${FEATURE_NAMES[f] ?? f}${with_.length ? `; put the platform on a plan that does (${with_.join(', ')})` : ''}`,
      409,
      [{ path: `/features/${f}`, reason: `not in the ${plan.name} plan` }],
    ).with({ plan: plan.id, needs });
  }
}

/** The plan a new platform of `template` gets (what platform creation assigns). */
export function defaultPlanFor(app: App, template: string): OperatorPlan {
  const row = defaultRow(app, '', template);
  return planOfRow(planById(app.control, row.plan_id)!);
}

/** Gives a new platform its template's default plan (platform creation). */
export function assignDefaultPlan(app: App, platformId: string): void {
  ensureRow(app, platformId);
  forget(app);
}

// ---- limits and holds ------------------------------------------------------------------------

/** Where a platform stands against its plan, as the API shows it. */
export interface PlanStatus {
  plan: OperatorPlan;
  users: number;
  max_users: number | null;
  over_limit: boolean;
  over_since: string | null;
  notified_at: string | null;
  /** When the hold starts (or started): over_since plus the grace period. */
  hold_at: string | null;
  held: boolean;
  message: string | null;
}

const heldMessage = (name: string, max: number | null, users: number, since: number) =>
  `this platform has ${users} users, over its ${name} plan's limit of ${max}, since ${iso(since).slice(0, 10)}; ` +
  'new accounts and agents are paused until an admin removes users (or disables accounts) or the operator moves it to a bigger plan. Existing users keep working.';

/**
 * Counts the platform's active users against its plan's limit and updates its standing: over
 * the limit marks `over_since` and mails the owners and admins once per episode; past the grace
 * period the platform is held (audited once); back under the limit everything clears. Runs
 * synchronously on the platform's handle, so two evaluations never both mail.
 */
export function evaluatePlanLimitsOn(app: App, db: Database, platformId: string): PlanStatus {
  const { plan, row } = platformPlan(app, platformId);
  const users = createUserRepository({ db }).countActive();
  const now = app.clock.now();
  const over = plan.max_users !== null && users > plan.max_users;
  const next: PlatformPlanRow = { ...row, users, evaluated_at: now };
  const audits: { action: string; details: Record<string, unknown> }[] = [];
  let mail = false;
  if (over) {
    next.over_since = row.over_since ?? now;
    if (row.notified_at === null) {
      next.notified_at = now;
      mail = true;
    }
    if (now >= next.over_since + graceMs(app) && row.held_since === null) {
      next.held_since = now;
      audits.push({
        action: 'billing.platform_held',
        details: { id: platformId, plan: plan.id, users, max_users: plan.max_users },
      });
    }
  } else {
    if (row.held_since !== null)
      audits.push({
        action: 'billing.platform_hold_lifted',
        details: { id: platformId, plan: plan.id, users, max_users: plan.max_users },
      });
    next.over_since = null;
    next.notified_at = null;
    next.held_since = null;
  }
  const transition =
    next.over_since !== row.over_since ||
    next.notified_at !== row.notified_at ||
    next.held_since !== row.held_since;
  // Written on a change of standing only (no control write per sign-up otherwise).
  if (transition) {
    tx(app.control, () => {
      upsertPlatformPlan(app.control, next);
      for (const a of audits)
        app.audit.append(app.control, {
          actor: 'system',
          action: a.action,
          target: `platform:${platformId}`,
          details: a.details,
        });
    });
    app.state.get(CACHE).set(platformId, { plan, row: next });
  }
  if (mail) tellOverLimit(app, db, plan, users, next.over_since! + graceMs(app));
  return statusOf(app, plan, next, users);
}

function statusOf(app: App, plan: OperatorPlan, row: PlatformPlanRow, users: number): PlanStatus {
  const holdAt = row.over_since === null ? null : row.over_since + graceMs(app);
  const held = holdAt !== null && app.clock.now() >= holdAt;
  return {
    plan,
    users,
    max_users: plan.max_users,
    over_limit: row.over_since !== null,
    over_since: row.over_since === null ? null : iso(row.over_since),
    notified_at: row.notified_at === null ? null : iso(row.notified_at),
    hold_at: holdAt === null ? null : iso(holdAt),
    held,
    message:
      row.over_since === null
        ? null
        : held
          ? heldMessage(plan.name, plan.max_users, users, row.over_since)
          : `this platform has ${users} users, over its ${plan.name} plan's limit of ${plan.max_users}; new accounts and agents stop on ${iso(holdAt!).slice(0, 10)} unless it is back under the limit or on a bigger plan`,
  };
}

/** `evaluatePlanLimits` for a platform by id (leases its database). */
export function evaluatePlanLimits(app: App, platformId: string): Promise<PlanStatus> {
  return app.platformDbs.use(platformId, (db) => evaluatePlanLimitsOn(app, db, platformId));
}

function tellOverLimit(app: App, db: Database, plan: OperatorPlan, users: number, holdAt: number): void {
  const to = createUserRepository({ db }).activeEmailsWithRoles(['owner', 'admin']);
  const now = app.clock.now();
  db.transaction(() => {
    for (const email of to)
      queueMail(
        db,
        {
          to_email: email,
          template: 'plan_over_limit',
          subject: `Your platform is over its ${plan.name} plan's user limit`,
          body:
            `Your platform has ${users} active users; its ${plan.name} plan allows ${plan.max_users}.\n\n` +
            `Nothing stops today. From ${iso(holdAt).slice(0, 10)} (UTC), unless it is back under the limit, new sign-ups, invitations and agents will be refused; existing users keep signing in and chatting.\n\n` +
            'To stay open: remove or disable accounts you no longer need, or ask the operator for a bigger plan.\n',
        },
        now,
      );
  })();
}

/** Refuses a new user or agent on a held platform (402 `billing.platform_held`). */
export function assertPlatformOpen(app: App, db: Database, platformId: string, kind: AdmissionKind): void {
  const s = evaluatePlanLimitsOn(app, db, platformId);
  if (!s.held) return;
  throw new AppError(
    'billing.platform_held',
    `${kind === 'user' ? 'no new accounts' : 'no new agents'} now: ${s.message}`,
    402,
  ).with({ plan: s.plan.id, users: s.users, max_users: s.max_users ?? 0, over_since: s.over_since ?? '' });
}

/** The platform's plan status for the operator (evaluated now). */
export function planStatus(app: App, platformId: string): Promise<PlanStatus> {
  return evaluatePlanLimits(app, platformId);
}

/**
 * Startup: the seed plans (once, in the operator's currency), a plan for every platform made
 * before plans existed (its template's default), and the admission hooks identity and agents
 * call when a user or agent is made.
 */
export function installOperatorPlans(app: App): void {
  tx(app.control, () => {
    seed(app);
    for (const p of platformsWithoutPlan(app.control))
      upsertPlatformPlan(app.control, defaultRow(app, p.id, p.template));
  });
  setAdmissionHooks(app, {
    check: (db, platformId, kind) => assertPlatformOpen(app, db, platformId, kind),
    after: (db, platformId) => {
      evaluatePlanLimitsOn(app, db, platformId);
    },
    features: (platformId, turnedOn) =>
      requirePlanFeatures(app, platformPlan(app, platformId).plan, turnedOn),
  });
}
