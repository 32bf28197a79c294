-- The platform's people. Sessions, keys, SSO and MFA arrive with the identity issue.
CREATE TABLE users (
  id                TEXT PRIMARY KEY,          -- usr_<ulid>
  email             TEXT NOT NULL UNIQUE COLLATE NOCASE,
  name              TEXT NOT NULL DEFAULT '',
  password_hash     TEXT,                      -- argon2id; NULL for SSO-only users
  role              TEXT NOT NULL CHECK (role IN ('owner', 'admin', 'creator', 'member', 'auditor')),
  status            TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'disabled')),
  email_verified_at INTEGER,
  created_at        INTEGER NOT NULL,
  updated_at        INTEGER NOT NULL
) STRICT;
