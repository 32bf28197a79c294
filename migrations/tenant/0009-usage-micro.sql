-- AI usage costs in integer micro-units (millionths of the currency's minor unit), exact per
-- call, instead of minor units rounded up on every call. Rows written before this step were
-- rounded already; they keep that amount, written in micro-units (× 1,000,000).
ALTER TABLE usage_events ADD COLUMN cost_micro INTEGER NOT NULL DEFAULT 0;   -- provider price, micro-units
ALTER TABLE usage_events ADD COLUMN markup_micro INTEGER NOT NULL DEFAULT 0; -- the platform's markup, micro-units
UPDATE usage_events SET cost_micro = cost_minor * 1000000, markup_micro = markup_minor * 1000000;
ALTER TABLE usage_events DROP COLUMN cost_minor;
ALTER TABLE usage_events DROP COLUMN markup_minor;
