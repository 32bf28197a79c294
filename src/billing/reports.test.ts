/**
 * Subscription metrics (issue 13, "Reports": MRR and churn) on a platform database with
 * subscriptions written through the repository, against hand-computed figures.
 */
import { Database } from 'bun:sqlite';
import { describe, expect, test } from 'bun:test';
import { migrate, TENANT_MIGRATIONS } from '../db/index.ts';
import { createUserRepository } from '../identity/index.ts';
import type { SubscriptionTier } from '../tenancy/index.ts';
import { subscriptionMetrics as metrics } from './reports.service.ts';
import { type SubscriptionRow, saveSubscription } from './subscriptions.repository.ts';

const DAY = 86_400_000;
/** As the API answers it (micro-units are exact JSON integers). */
const subscriptionMetrics = (...a: Parameters<typeof metrics>) => JSON.parse(JSON.stringify(metrics(...a)));
const NOW = Date.UTC(2026, 11, 4);
const tier = (
  id: string,
  amount: number,
  interval: 'month' | 'year',
  currency = 'usd',
): SubscriptionTier => ({
  id,
  name: id.toUpperCase(),
  price: { amount, currency },
  interval,
});
const BP = {
  monetization: {
    currency: 'usd',
    subscription_tiers: [
      tier('free', 0, 'month'),
      tier('pro', 1900, 'month'),
      tier('team', 120_000, 'year'),
      tier('euro', 1000, 'month', 'eur'),
    ],
  },
};

function dbWith(subs: Partial<SubscriptionRow>[]): Database {
  const db = new Database(':memory:');
  migrate(db, TENANT_MIGRATIONS, 'reports-test');
  const users = createUserRepository({ db });
  subs.forEach((s, i) => {
    const id = `usr_${i}`;
    users.insert({
      id,
      email: `u${i}@t.test`,
      name: '',
      password_hash: null,
      role: 'member',
      status: 'active',
      email_verified_at: null,
      created_at: 0,
      updated_at: 0,
    });
    saveSubscription(db, {
      user_id: id,
      tier_id: 'pro',
      status: 'active',
      method: 'stripe',
      seats: 1,
      current_period_start: null,
      current_period_end: null,
      cancel_at_period_end: 0,
      stripe_customer: `cus_${i}`,
      stripe_subscription: `sub_${i}`,
      checkout_session: null,
      past_due_since: null,
      trial_end: null,
      set_by: null,
      created_at: NOW - 60 * DAY,
      updated_at: NOW - 60 * DAY,
      ...s,
    });
  });
  return db;
}

describe('subscription metrics', () => {
  test('MRR: paying subscriptions at their tier price × seats, a yearly price by the month', () => {
    const db = dbWith([
      {},
      { status: 'past_due' },
      { tier_id: 'team', seats: 3 },
      { status: 'trialing' },
      { method: 'manual', stripe_customer: null, stripe_subscription: null },
      { status: 'canceled', updated_at: NOW - 90 * DAY },
      { status: 'incomplete' },
      { tier_id: 'euro' },
    ]);
    const m = subscriptionMetrics(db, BP, NOW);
    // 19.00 + 19.00 (past due still counts) + 3 × 1,200.00 / 12.
    expect(m.mrr_micro).toBe((1900 + 1900 + 30_000) * 1_000_000);
    expect([m.subscribers, m.trialing, m.manual]).toEqual([4, 1, 1]);
    expect(m.tiers.find((t: { tier: string }) => t.tier === 'team')).toMatchObject({
      paying: 1,
      mrr_micro: 30_000 * 1_000_000,
    });
    expect(m.other_currencies).toEqual([{ tier: 'euro', currency: 'eur' }]);
  });

  test('churn over 30 days: canceled in the window over those live at its start', () => {
    const db = dbWith([
      {},
      {},
      {},
      { status: 'canceled', updated_at: NOW - 5 * DAY },
      // Canceled before the window: not live at its start.
      { status: 'canceled', updated_at: NOW - 40 * DAY },
      // Made in the window: not live at its start.
      { created_at: NOW - 10 * DAY, updated_at: NOW - 10 * DAY },
      { method: 'manual', stripe_customer: null, stripe_subscription: null },
    ]);
    const m = subscriptionMetrics(db, BP, NOW);
    expect(m.churn).toEqual({ days: 30, at_start: 4, canceled: 1, rate: 0.25 });
    expect(subscriptionMetrics(dbWith([]), BP, NOW).churn.rate).toBe(0);
  });
});
