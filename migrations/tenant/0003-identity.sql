-- Identity: sessions, one-time email tokens, the outbox, API keys, SSO, SCIM, MFA.
ALTER TABLE users ADD COLUMN external_id TEXT;           -- SCIM externalId
ALTER TABLE users ADD COLUMN given_name TEXT;
ALTER TABLE users ADD COLUMN family_name TEXT;
ALTER TABLE users ADD COLUMN totp_secret TEXT;           -- base32; NULL until MFA is enabled
ALTER TABLE users ADD COLUMN totp_pending TEXT;          -- base32 during enrolment
ALTER TABLE users ADD COLUMN totp_last_step INTEGER;     -- last accepted time step (no reuse)
CREATE UNIQUE INDEX users_external_id ON users(external_id) WHERE external_id IS NOT NULL;

CREATE TABLE identity_settings (
  key   TEXT PRIMARY KEY,
  value TEXT NOT NULL                                    -- JSON
) STRICT, WITHOUT ROWID;

CREATE TABLE sessions (
  id_hash       TEXT PRIMARY KEY,                        -- SHA-256 of the cookie token
  user_id       TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  csrf_token    TEXT NOT NULL,
  mfa_pending   INTEGER NOT NULL DEFAULT 0,              -- 1: password ok, TOTP still owed
  via           TEXT NOT NULL,                           -- password | oidc | saml
  created_at    INTEGER NOT NULL,
  last_seen_at  INTEGER NOT NULL,
  expires_at    INTEGER NOT NULL,                        -- absolute timeout
  ip            TEXT,
  user_agent    TEXT
) STRICT, WITHOUT ROWID;
CREATE INDEX sessions_user ON sessions(user_id);

CREATE TABLE email_tokens (
  token_hash TEXT PRIMARY KEY,
  user_id    TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  purpose    TEXT NOT NULL CHECK (purpose IN ('verify_email', 'reset_password')),
  created_at INTEGER NOT NULL,
  expires_at INTEGER NOT NULL,
  used_at    INTEGER
) STRICT, WITHOUT ROWID;

CREATE TABLE outbox (
  id         TEXT PRIMARY KEY,
  to_email   TEXT NOT NULL,
  template   TEXT NOT NULL,                              -- verify_email | reset_password | ...
  subject    TEXT NOT NULL,
  body       TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  sent_at    INTEGER
) STRICT;

CREATE TABLE api_keys (
  id           TEXT PRIMARY KEY,                         -- key_<ulid>
  prefix       TEXT NOT NULL UNIQUE,                     -- the public part of sf_<prefix>_<secret>
  secret_hash  TEXT NOT NULL,                            -- SHA-256 of the secret
  name         TEXT NOT NULL,
  user_id      TEXT REFERENCES users(id) ON DELETE CASCADE, -- NULL: a platform key made by the operator
  scopes       TEXT NOT NULL CHECK (json_valid(scopes)),
  rate_per_min INTEGER NOT NULL,
  created_at   INTEGER NOT NULL,
  expires_at   INTEGER,
  last_used_at INTEGER,
  revoked_at   INTEGER
) STRICT;
CREATE INDEX api_keys_user ON api_keys(user_id);

CREATE TABLE sso_providers (
  kind       TEXT PRIMARY KEY CHECK (kind IN ('oidc', 'saml')),
  enabled    INTEGER NOT NULL DEFAULT 1,
  config     TEXT NOT NULL CHECK (json_valid(config)),
  updated_at INTEGER NOT NULL
) STRICT, WITHOUT ROWID;

CREATE TABLE sso_identities (
  kind       TEXT NOT NULL,                              -- oidc | saml
  subject    TEXT NOT NULL,                              -- sub / NameID
  user_id    TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  created_at INTEGER NOT NULL,
  PRIMARY KEY (kind, subject)
) STRICT, WITHOUT ROWID;

CREATE TABLE sso_requests (                              -- OIDC state / SAML request ids in flight
  id         TEXT PRIMARY KEY,                           -- state or AuthnRequest ID
  kind       TEXT NOT NULL,
  data       TEXT NOT NULL CHECK (json_valid(data)),     -- nonce, PKCE verifier, return path
  expires_at INTEGER NOT NULL
) STRICT, WITHOUT ROWID;

CREATE TABLE saml_assertions_seen (                      -- replay protection
  assertion_id TEXT PRIMARY KEY,
  expires_at   INTEGER NOT NULL
) STRICT, WITHOUT ROWID;

CREATE TABLE scim_tokens (
  id         TEXT PRIMARY KEY,
  token_hash TEXT NOT NULL UNIQUE,
  name       TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  last_used_at INTEGER,
  revoked_at INTEGER
) STRICT;

CREATE TABLE groups (
  id           TEXT PRIMARY KEY,
  display_name TEXT NOT NULL UNIQUE COLLATE NOCASE,
  external_id  TEXT,
  created_at   INTEGER NOT NULL,
  updated_at   INTEGER NOT NULL
) STRICT;

CREATE TABLE group_members (
  group_id TEXT NOT NULL REFERENCES groups(id) ON DELETE CASCADE,
  user_id  TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  PRIMARY KEY (group_id, user_id)
) STRICT, WITHOUT ROWID;

CREATE TABLE recovery_codes (
  user_id   TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  code_hash TEXT NOT NULL,
  used_at   INTEGER,
  PRIMARY KEY (user_id, code_hash)
) STRICT, WITHOUT ROWID;
