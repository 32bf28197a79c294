-- migrate: foreign_keys=off
-- issue 12 items 1, 5, 6 and 9: link sharing, usage attribution, referrals, the creator's view.
-- The first line asks src/db/migrate.ts to run this step with foreign keys off (and to check
-- them with foreign_key_check before it commits): rebuilding `agents` to widen its CHECK would
-- otherwise cascade the DROP to every agent's versions, listings, knowledge and conversations.

-- item 1: visibility `link` — a published agent reachable by a signed-in user who holds its
-- share link (a token its editors rotate or revoke), listed to no one else. The token is kept
-- sealed (to show its editors the link again) and as its SHA-256 (what an access grant names).
CREATE TABLE agents_v2 (
  id               TEXT PRIMARY KEY,                                   -- agt_<ulid>
  slug             TEXT NOT NULL UNIQUE,
  owner_id         TEXT REFERENCES users(id) ON DELETE SET NULL,
  visibility       TEXT NOT NULL CHECK (visibility IN ('private', 'link', 'platform')),
  draft            TEXT NOT NULL,                                      -- the spec being edited (JSON)
  latest_version   INTEGER,                                            -- NULL until first published
  created_at       INTEGER NOT NULL,
  updated_at       INTEGER NOT NULL,
  forked_from      TEXT,                                               -- JSON, or NULL
  imported_from    TEXT,                                               -- JSON, or NULL (0018)
  share_token      TEXT,                                               -- sealed; NULL: no link
  share_token_hash TEXT                                                -- sha256 hex of the token
) STRICT;
INSERT INTO agents_v2 (id, slug, owner_id, visibility, draft, latest_version, created_at, updated_at, forked_from, imported_from)
  SELECT id, slug, owner_id, visibility, draft, latest_version, created_at, updated_at, forked_from, imported_from FROM agents;
DROP TABLE agents;
ALTER TABLE agents_v2 RENAME TO agents;
CREATE INDEX agents_by_owner ON agents(owner_id, updated_at DESC);

-- Who opened an agent's link: valid while token_hash is the agent's current one (a rotated or
-- revoked link ends every grant made with it). Signed-in users only, one row per (agent, user).
CREATE TABLE agent_link_access (
  agent_id   TEXT NOT NULL REFERENCES agents(id) ON DELETE CASCADE,
  user_id    TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  token_hash TEXT NOT NULL,
  granted_at INTEGER NOT NULL,
  PRIMARY KEY (agent_id, user_id)
) STRICT, WITHOUT ROWID;

-- item 6: referrals. One code per user (made on first ask).
CREATE TABLE referral_codes (
  user_id    TEXT PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
  code       TEXT NOT NULL UNIQUE,
  created_at INTEGER NOT NULL
) STRICT;
-- Anonymous visits: a bounded counter, one row per (existing code, UTC day); unknown codes write nothing.
CREATE TABLE referral_visits (
  code   TEXT NOT NULL REFERENCES referral_codes(code) ON DELETE CASCADE,
  day    INTEGER NOT NULL,                                             -- days since 1970-01-01 (UTC)
  visits INTEGER NOT NULL,
  PRIMARY KEY (code, day)
) STRICT, WITHOUT ROWID;
-- A sign-up's referrer (one per new user; self-referral is never written).
CREATE TABLE referral_signups (
  user_id     TEXT PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
  referrer_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  created_at  INTEGER NOT NULL
) STRICT;
CREATE INDEX referral_signups_by_referrer ON referral_signups(referrer_id, created_at);
-- An install's referrer (a new install by someone other than the referrer).
ALTER TABLE listing_installs ADD COLUMN referrer_id TEXT REFERENCES users(id) ON DELETE SET NULL;
CREATE INDEX listing_installs_by_referrer ON listing_installs(referrer_id, installed_at) WHERE referrer_id IS NOT NULL;

-- item 5: AI usage attributed to the agent's version and its creator (the owner at call time).
ALTER TABLE usage_events ADD COLUMN agent_version INTEGER;
ALTER TABLE usage_events ADD COLUMN creator_id TEXT;
CREATE INDEX usage_events_by_creator ON usage_events(creator_id, agent_id, agent_version) WHERE creator_id IS NOT NULL;

-- item 9: the creator's view counts conversations per agent and version.
CREATE INDEX conversations_by_agent ON conversations(agent_id, agent_version) WHERE agent_id IS NOT NULL;
