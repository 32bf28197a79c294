-- issue 12 item 8: federation. The instance's federation key (Ed25519, one row) signs agent
-- packages and the revocation list. public_key: SPKI DER, base64; key_id: 'ed25519:' and the
-- first 32 hex digits of SHA-256 over that DER; private_key: PKCS#8 DER, base64, sealed by the
-- keyring (context 'control:federation_key').
CREATE TABLE federation_key (
  id          INTEGER PRIMARY KEY CHECK (id = 1),
  key_id      TEXT NOT NULL,
  public_key  TEXT NOT NULL,
  private_key TEXT NOT NULL,
  created_at  INTEGER NOT NULL
) STRICT;

-- The keys of other instances a platform accepts packages from, pinned by the operator.
CREATE TABLE federation_trusted_keys (
  platform_id TEXT NOT NULL REFERENCES platforms(id) ON DELETE CASCADE,
  key_id      TEXT NOT NULL,
  public_key  TEXT NOT NULL,                                          -- SPKI DER, base64
  label       TEXT NOT NULL,
  added_by    TEXT NOT NULL,
  added_at    INTEGER NOT NULL,
  PRIMARY KEY (platform_id, key_id)
) STRICT;

-- Revoked agent versions: a version hash of a source platform, signed under key_id. This
-- instance's own revocations (origin 'local', published in its signed list) and those taken in
-- from trusted peers' signed lists (origin 'peer': a peer revokes only what its own key signed).
-- The source platform is part of the key: two platforms may hold the same spec (the same hash),
-- and one revoking its version never stops the other's.
CREATE TABLE federation_revocations (
  key_id      TEXT NOT NULL,
  platform_id TEXT NOT NULL,                                          -- the source platform (at the signer)
  hash        TEXT NOT NULL,
  reason      TEXT NOT NULL,
  revoked_at  INTEGER NOT NULL,
  origin      TEXT NOT NULL CHECK (origin IN ('local', 'peer')),
  recorded_at INTEGER NOT NULL,
  PRIMARY KEY (key_id, platform_id, hash)
) STRICT;

-- The instance-wide ecosystem catalog: what platforms share with each other. Each entry holds
-- the signed package, the attribution shown with it, and the revenue share owed to the source
-- (basis points; recorded here, paid by billing).
CREATE TABLE federation_catalog (
  id               TEXT PRIMARY KEY,                                  -- fed_<ulid>
  platform_id      TEXT NOT NULL REFERENCES platforms(id) ON DELETE CASCADE,
  agent_id         TEXT NOT NULL,
  version          INTEGER NOT NULL,
  hash             TEXT NOT NULL,
  package          TEXT NOT NULL,                                     -- the signed package (JSON)
  title            TEXT NOT NULL,
  summary          TEXT NOT NULL,
  platform_slug    TEXT NOT NULL,
  platform_name    TEXT NOT NULL,
  creator_name     TEXT NOT NULL,
  revenue_share_bps INTEGER NOT NULL CHECK (revenue_share_bps BETWEEN 0 AND 10000),
  shared_by        TEXT NOT NULL,
  shared_at        INTEGER NOT NULL,
  imports          INTEGER NOT NULL DEFAULT 0,
  UNIQUE (platform_id, agent_id)
) STRICT;
CREATE INDEX federation_catalog_recent ON federation_catalog(shared_at DESC);
