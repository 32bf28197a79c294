-- issue 13 item 1: the operator's plans for platforms, as data. A plan sets a platform's user
-- limit, the operator's markup on the platform's AI cost (with volume discounts) and the
-- operator's transaction fee on its sales; a template only picks a platform's default plan.
-- Percentages are numbers with at most two decimals. The seeds (starter, business, enterprise)
-- are inserted at startup, once, in the operator's currency (`billing.currency`): see
-- src/billing/operator-plans.ts.
CREATE TABLE operator_plans (
  id                      TEXT PRIMARY KEY,                 -- a slug: starter, business, ...
  name                    TEXT NOT NULL,
  price_minor             INTEGER NOT NULL CHECK (price_minor >= 0),
  price_is_minimum        INTEGER NOT NULL DEFAULT 0 CHECK (price_is_minimum IN (0, 1)), -- 1: "and up"
  interval                TEXT NOT NULL CHECK (interval IN ('month', 'year')),
  currency                TEXT NOT NULL,                    -- ISO 4217, lower case
  max_users               INTEGER CHECK (max_users IS NULL OR max_users >= 1), -- NULL: unlimited
  ai_markup_percent       REAL NOT NULL CHECK (ai_markup_percent >= 0 AND ai_markup_percent <= 1000),
  -- [{"over_minor": n, "markup_percent": p}, ...], ascending: the markup once the platform's AI
  -- cost this month has passed over_minor (minor units)
  ai_markup_tiers         TEXT NOT NULL DEFAULT '[]' CHECK (json_valid(ai_markup_tiers)),
  transaction_fee_percent REAL NOT NULL CHECK (transaction_fee_percent >= 0 AND transaction_fee_percent <= 100),
  features                TEXT NOT NULL DEFAULT '[]' CHECK (json_valid(features)),
  archived                INTEGER NOT NULL DEFAULT 0 CHECK (archived IN (0, 1)),
  created_at              INTEGER NOT NULL,
  updated_at              INTEGER NOT NULL
) STRICT;

-- Each platform's plan and where it stands against the plan's limits. A platform with no row
-- (made before this migration) is given its template's default plan on first read.
-- users: active users when its standing last changed; over_since: when the platform went over its
-- limit (NULL: within it); notified_at: the episode's mail to its owners and admins (one per
-- episode); held_since: when the grace period ran out (new users and agents refused).
CREATE TABLE platform_plans (
  platform_id  TEXT PRIMARY KEY REFERENCES platforms(id) ON DELETE CASCADE,
  plan_id      TEXT NOT NULL REFERENCES operator_plans(id),
  users        INTEGER,
  evaluated_at INTEGER,
  over_since   INTEGER,
  notified_at  INTEGER,
  held_since   INTEGER,
  updated_at   INTEGER NOT NULL
) STRICT;
CREATE INDEX platform_plans_plan ON platform_plans(plan_id);
