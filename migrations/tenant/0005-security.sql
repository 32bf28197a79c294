-- Security hardening (issue 8). One step for the whole issue; each section names its point.
SELECT 1;

-- point 11: secrets sealed at rest
-- Set by this migration; cleared once the values written in clear by older versions are sealed.
CREATE TABLE secrets_upgrade (pending INTEGER NOT NULL) STRICT;
INSERT INTO secrets_upgrade (pending) VALUES (1);

-- point 3: sign-in throttle and lock-outs, kept across restarts
-- One row per (kind, key): an account, an account seen from one address, an address, the reset
-- requests of an account or an address. `count` counts attempts in the window that began at
-- `window_start` (an attempt is counted before its password is hashed, and forgiven when it
-- succeeds); `locked_until` is set when the count reaches the limit. Rows lapse at `expires_at`.
CREATE TABLE auth_throttle (
  kind         TEXT NOT NULL,
  key          TEXT NOT NULL,
  count        INTEGER NOT NULL,
  window_start INTEGER NOT NULL,
  locked_until INTEGER,
  expires_at   INTEGER NOT NULL,
  PRIMARY KEY (kind, key)
) STRICT, WITHOUT ROWID;
CREATE INDEX auth_throttle_expires ON auth_throttle(expires_at);

-- point 1: SSO account linking is deliberate
-- A link belongs to one IdP: (kind, issuer, subject), the issuer being the OIDC issuer or the
-- SAML IdP entity ID. An admin who points the settings at another IdP reaches no linked account.
-- Links made before this step take the IdP configured now.
CREATE TABLE sso_identities_v2 (
  kind       TEXT NOT NULL,                              -- oidc | saml
  issuer     TEXT NOT NULL,                              -- OIDC issuer / SAML IdP entity ID
  subject    TEXT NOT NULL,                              -- sub / NameID
  user_id    TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  created_at INTEGER NOT NULL,
  via        TEXT NOT NULL DEFAULT 'legacy',             -- jit | provisioned | email | signed_in | legacy
  PRIMARY KEY (kind, issuer, subject)
) STRICT, WITHOUT ROWID;
INSERT INTO sso_identities_v2 (kind, issuer, subject, user_id, created_at)
  SELECT i.kind,
         coalesce((SELECT json_extract(p.config, CASE i.kind WHEN 'oidc' THEN '$.issuer' ELSE '$.idp_entity_id' END)
                   FROM sso_providers p WHERE p.kind = i.kind), ''),
         i.subject, i.user_id, i.created_at
  FROM sso_identities i;
DROP TABLE sso_identities;
ALTER TABLE sso_identities_v2 RENAME TO sso_identities;
CREATE INDEX sso_identities_user ON sso_identities(user_id);
-- How an account came to exist when it was made for SSO: 'scim' (a SCIM client) or 'invite'
-- (added by an owner or admin without a password). Such an account links on its first SSO sign-in
-- when the IdP's subject or verified email matches; NULL: a password or JIT account.
ALTER TABLE users ADD COLUMN provisioned_via TEXT;

-- point 9: SSO sign-ins in flight are trimmed by age, never refused by a global cap
CREATE INDEX sso_requests_kind_expiry ON sso_requests(kind, expires_at);

-- point 7: platform audit entries signed with the entry, so the lag after the anchor is no gap
-- One Ed25519 signature of the instance key per entry (soulfra.audit.entry.v1: platform, seq,
-- hash), written in the entry's transaction; `audit verify` requires it of every entry after
-- the platform's anchor. Append-only, as audit_log.
CREATE TABLE audit_entry_sigs (
  seq INTEGER PRIMARY KEY,
  sig TEXT NOT NULL
);
CREATE TRIGGER audit_entry_sigs_no_update BEFORE UPDATE ON audit_entry_sigs
  BEGIN SELECT RAISE(ABORT, 'audit_entry_sigs is append-only'); END;
CREATE TRIGGER audit_entry_sigs_no_delete BEFORE DELETE ON audit_entry_sigs
  BEGIN SELECT RAISE(ABORT, 'audit_entry_sigs is append-only'); END;

-- point 9 (finished): SSO sign-ins in flight live in the browser, sealed; only used ones are kept
-- A sign-in's state (OIDC) or AuthnRequest ID (SAML) travels sealed in its cookie; starting one
-- writes nothing here. A row is written only once the IdP's answer is proven (code exchanged and
-- ID token checked, or the SAML response validly signed): SHA-256 of the state / request ID, kept
-- until the sign-in would have expired, so a second use is refused. replay_audited: the first
-- replay was audited (later ones are only logged).
CREATE TABLE sso_used (
  kind           TEXT NOT NULL,                          -- oidc | saml
  id_hash        TEXT NOT NULL,
  expires_at     INTEGER NOT NULL,
  replay_audited INTEGER,
  PRIMARY KEY (kind, id_hash)
) STRICT, WITHOUT ROWID;
CREATE INDEX sso_used_expiry ON sso_used(kind, expires_at);
-- A replayed assertion (IdP-initiated ones included) is audited once, then only logged.
ALTER TABLE saml_assertions_seen ADD COLUMN replay_audited INTEGER;
