-- issue 13 items 2, 6 and 7: a platform's plans for its users (the blueprint's
-- monetization.subscription_tiers), paid through Stripe subscriptions, enforced at the edge.
-- * subscriptions: one row per user who ever subscribed (a user without one is on the free tier).
--   `status` mirrors Stripe's subscription (trialing, active, past_due, canceled, incomplete: a
--   checkout started and not finished); it is written only from the subscription retrieved from
--   Stripe (or by an admin, method 'manual'), never from an event's copy, so duplicates, replays
--   and reorders change nothing. `past_due_since` is when this platform first saw it past due
--   (the grace period counts from there). `stripe_customer` is kept across subscriptions.
-- * subscription_members: the people a team subscription covers besides its owner (seats).
-- * subscription_invoices: the paid invoices posted to the ledger (one chain each, by invoice id),
--   and their refunds (reversed legs, one chain per refund).
-- * usage_events_by_user: today's AI calls of a user, counted on every call (requests_per_day).
CREATE TABLE subscriptions (
  user_id              TEXT PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
  tier_id              TEXT NOT NULL,
  status               TEXT NOT NULL CHECK (status IN ('trialing', 'active', 'past_due', 'canceled', 'incomplete')),
  method               TEXT NOT NULL CHECK (method IN ('stripe', 'manual')),
  seats                INTEGER NOT NULL DEFAULT 1 CHECK (seats >= 1),
  current_period_start INTEGER,                          -- epoch ms
  current_period_end   INTEGER,                          -- epoch ms
  cancel_at_period_end INTEGER NOT NULL DEFAULT 0 CHECK (cancel_at_period_end IN (0, 1)),
  stripe_customer      TEXT UNIQUE,
  stripe_subscription  TEXT UNIQUE,
  checkout_session     TEXT UNIQUE,
  past_due_since       INTEGER,                          -- epoch ms (this platform's clock)
  trial_end            INTEGER,                          -- epoch ms
  set_by               TEXT,                             -- manual: the admin who set the tier
  created_at           INTEGER NOT NULL,
  updated_at           INTEGER NOT NULL
) STRICT;

CREATE TABLE subscription_members (
  owner_id   TEXT NOT NULL REFERENCES subscriptions(user_id) ON DELETE CASCADE,
  user_id    TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  added_at   INTEGER NOT NULL,
  PRIMARY KEY (owner_id, user_id)
) STRICT;
CREATE UNIQUE INDEX subscription_members_by_user ON subscription_members(user_id);

CREATE TABLE subscription_invoices (
  invoice_id   TEXT PRIMARY KEY,                         -- in_...
  user_id      TEXT NOT NULL,
  tier_id      TEXT NOT NULL,
  amount_minor INTEGER NOT NULL,
  currency     TEXT NOT NULL,
  posted_at    INTEGER NOT NULL,
  -- The payment that paid it (a refund of its charge is found by it), the operator's fee
  -- percent it was posted with (a refund reverses the same split), and what was refunded so
  -- far (a refund posts only what is beyond it, so events twice or out of order change nothing).
  payment_intent TEXT UNIQUE,
  fee_percent    REAL NOT NULL DEFAULT 0,
  refunded_minor INTEGER NOT NULL DEFAULT 0
) STRICT;

CREATE INDEX usage_events_by_user ON usage_events(user_id, ts);
