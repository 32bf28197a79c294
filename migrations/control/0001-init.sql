-- The control plane: instance settings, the platform registry and its audit chain.
CREATE TABLE settings (
  key   TEXT PRIMARY KEY,
  value TEXT NOT NULL
) STRICT;

CREATE TABLE platforms (
  id          TEXT PRIMARY KEY,                -- plt_<ulid>
  slug        TEXT NOT NULL UNIQUE,            -- DNS label; stays taken while archived
  name        TEXT NOT NULL,
  status      TEXT NOT NULL CHECK (status IN ('active', 'suspended', 'archived')),
  template    TEXT NOT NULL,
  blueprint   TEXT NOT NULL CHECK (json_valid(blueprint)),
  db_file     TEXT NOT NULL,                   -- relative to the data dir
  status_reason TEXT,
  created_at  INTEGER NOT NULL,                -- epoch ms
  updated_at  INTEGER NOT NULL
) STRICT;

-- Append-only, hash-chained: hash = SHA-256 over the canonical entry (see src/audit/).
CREATE TABLE audit_log (
  seq       INTEGER PRIMARY KEY,
  ts        INTEGER NOT NULL,
  actor     TEXT NOT NULL,
  action    TEXT NOT NULL,
  target    TEXT NOT NULL,
  details   TEXT NOT NULL,
  prev_hash TEXT NOT NULL,
  hash      TEXT NOT NULL
) STRICT;
CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
  BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
  BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;
