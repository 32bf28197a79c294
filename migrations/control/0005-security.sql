-- Security hardening (issue 8). One step for the whole issue; each section names its point.
SELECT 1;

-- point 11: secrets sealed at rest
-- Data keys: AES-256 keys that seal stored secrets, each kept wrapped (AES-256-GCM) by the
-- master key, which never enters a database. A retired key no longer opens anything.
CREATE TABLE data_keys (
  id TEXT PRIMARY KEY,
  wrapped TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  retired_at INTEGER
) STRICT;
-- Set by this migration; cleared once the values written in clear by older versions are sealed.
CREATE TABLE secrets_upgrade (pending INTEGER NOT NULL) STRICT;
INSERT INTO secrets_upgrade (pending) VALUES (1);

-- point 10: operator credentials expire, carry a role cap, and record who made them
-- expires_at: epoch ms; every token made from now on has one. Tokens made by older versions
-- (none had an expiry) get the default lifetime, 365 days, counted from this upgrade.
-- role: NULL follows the operator's role; 'operator_viewer' caps an admin's token. Either way
-- the operator's current role caps it again on every request.
ALTER TABLE operator_tokens ADD COLUMN expires_at INTEGER;
ALTER TABLE operator_tokens ADD COLUMN role TEXT CHECK (role IS NULL OR role IN ('operator_admin', 'operator_viewer'));
ALTER TABLE operator_tokens ADD COLUMN created_by TEXT;
UPDATE operator_tokens SET expires_at = CAST(unixepoch('subsec') * 1000 AS INTEGER) + 365 * 86400000
  WHERE expires_at IS NULL AND revoked_at IS NULL;

-- point 7: audit chains anchored outside their file; the control chain signed
-- The instance's Ed25519 audit signing key (one row). public_key: SPKI DER, base64.
-- private_key: PKCS#8 DER, base64, sealed by the keyring (context 'control:audit_signing_key').
CREATE TABLE audit_signing_key (
  id          INTEGER PRIMARY KEY CHECK (id = 1),
  public_key  TEXT NOT NULL,
  private_key TEXT NOT NULL,
  created_at  INTEGER NOT NULL
) STRICT;
-- A signed checkpoint of the control chain, written in the same transaction as each control
-- entry (seq, hash: the entry covered; at: epoch ms; sig: Ed25519, base64). Append-only.
CREATE TABLE audit_checkpoints (
  seq  INTEGER PRIMARY KEY,
  hash TEXT NOT NULL,
  at   INTEGER NOT NULL,
  sig  TEXT NOT NULL
) STRICT;
CREATE TRIGGER audit_checkpoints_no_update BEFORE UPDATE ON audit_checkpoints
  BEGIN SELECT RAISE(ABORT, 'audit_checkpoints is append-only'); END;
CREATE TRIGGER audit_checkpoints_no_delete BEFORE DELETE ON audit_checkpoints
  BEGIN SELECT RAISE(ABORT, 'audit_checkpoints is append-only'); END;
-- Each platform chain's head as of its last commit that appended (signed, like checkpoints).
-- Upserted after each such commit; it never moves back. The platform chain must hold the
-- anchored (seq, hash) and may run ahead of it only by entries written after the last anchor.
CREATE TABLE audit_anchors (
  platform_id TEXT PRIMARY KEY,
  seq         INTEGER NOT NULL,
  hash        TEXT NOT NULL,
  at          INTEGER NOT NULL,
  sig         TEXT NOT NULL
) STRICT;

-- point 9 (finished): the console's SSO sign-ins in flight live in the browser, sealed
-- As on platforms: starting a sign-in writes nothing; a proven IdP answer records the state's
-- SHA-256 until it would have expired (one use); replay_audited: the first replay was audited.
CREATE TABLE sso_used (
  kind           TEXT NOT NULL,
  id_hash        TEXT NOT NULL,
  expires_at     INTEGER NOT NULL,
  replay_audited INTEGER,
  PRIMARY KEY (kind, id_hash)
) STRICT, WITHOUT ROWID;
CREATE INDEX sso_used_expiry ON sso_used(kind, expires_at);
