-- The operator console's own single sign-on (same tables as a platform's) and sessions.
CREATE TABLE sso_providers (
  kind       TEXT PRIMARY KEY CHECK (kind IN ('oidc', 'saml')),
  enabled    INTEGER NOT NULL DEFAULT 1,
  config     TEXT NOT NULL CHECK (json_valid(config)),
  updated_at INTEGER NOT NULL
) STRICT, WITHOUT ROWID;

CREATE TABLE sso_requests (
  id         TEXT PRIMARY KEY,
  kind       TEXT NOT NULL,
  data       TEXT NOT NULL CHECK (json_valid(data)),
  expires_at INTEGER NOT NULL
) STRICT, WITHOUT ROWID;

ALTER TABLE operators ADD COLUMN sso_subject TEXT;     -- the IdP's subject once linked
ALTER TABLE operators ADD COLUMN status TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'disabled'));

CREATE TABLE operator_sessions (
  id_hash      TEXT PRIMARY KEY,                       -- SHA-256 of the cookie token
  operator_id  TEXT NOT NULL REFERENCES operators(id) ON DELETE CASCADE,
  csrf_token   TEXT NOT NULL,
  via          TEXT NOT NULL,
  created_at   INTEGER NOT NULL,
  last_seen_at INTEGER NOT NULL,
  expires_at   INTEGER NOT NULL,
  ip           TEXT
) STRICT, WITHOUT ROWID;
CREATE INDEX operator_sessions_operator ON operator_sessions(operator_id);
