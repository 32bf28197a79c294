-- AI metering and budgets.
CREATE TABLE usage_events (
  id          INTEGER PRIMARY KEY,
  ts          INTEGER NOT NULL,                        -- epoch ms
  user_id     TEXT,
  key_id      TEXT,
  agent_id    TEXT,
  kind        TEXT NOT NULL,                           -- chat | embeddings
  alias       TEXT NOT NULL,                           -- what the client asked for
  provider    TEXT NOT NULL,
  model       TEXT NOT NULL,
  tokens_in   INTEGER NOT NULL,
  tokens_out  INTEGER NOT NULL,
  counted     INTEGER NOT NULL DEFAULT 0,              -- 1: tokens counted here, not reported by the provider
  latency_ms  INTEGER NOT NULL,
  cost_minor  INTEGER NOT NULL,                        -- provider price, minor units
  markup_minor INTEGER NOT NULL,                       -- the platform plan's markup on top
  currency    TEXT NOT NULL,
  status      TEXT NOT NULL                            -- ok | error
) STRICT;
CREATE INDEX usage_events_ts ON usage_events(ts);

CREATE TABLE budgets (
  id            TEXT PRIMARY KEY,
  scope         TEXT NOT NULL CHECK (scope IN ('platform', 'user', 'key')),
  subject       TEXT NOT NULL DEFAULT '',              -- user id or key id; '' for the platform
  period        TEXT NOT NULL CHECK (period IN ('day', 'month')),
  limit_minor   INTEGER NOT NULL CHECK (limit_minor >= 0),
  currency      TEXT NOT NULL,
  alert_percent INTEGER NOT NULL DEFAULT 80 CHECK (alert_percent BETWEEN 1 AND 100),
  created_at    INTEGER NOT NULL,
  UNIQUE (scope, subject, period)
) STRICT, WITHOUT ROWID;
