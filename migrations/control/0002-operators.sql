-- Operator accounts (the people who run the instance) and their API tokens.
CREATE TABLE operators (
  id            TEXT PRIMARY KEY,              -- op_<ulid>
  email         TEXT NOT NULL UNIQUE COLLATE NOCASE,
  password_hash TEXT NOT NULL,                 -- argon2id (Bun.password)
  role          TEXT NOT NULL CHECK (role IN ('operator_admin', 'operator_viewer')),
  created_at    INTEGER NOT NULL,
  updated_at    INTEGER NOT NULL
) STRICT;

CREATE TABLE operator_tokens (
  id           TEXT PRIMARY KEY,               -- opt_<ulid>
  operator_id  TEXT NOT NULL REFERENCES operators(id),
  name         TEXT NOT NULL,
  token_hash   TEXT NOT NULL UNIQUE,           -- SHA-256 of the whole token; the token is shown once
  created_at   INTEGER NOT NULL,
  last_used_at INTEGER,
  revoked_at   INTEGER
) STRICT;
CREATE INDEX operator_tokens_operator ON operator_tokens(operator_id);
