-- issue 12 item 1: agents. An agent's draft is edited freely; publishing freezes the draft as
-- an immutable version named by the SHA-256 of its RFC 8785 canonical JSON. A conversation
-- records the agent and the version it runs (NULL: the owner's test of the draft).
CREATE TABLE agents (
  id              TEXT PRIMARY KEY,                                    -- agt_<ulid>
  slug            TEXT NOT NULL UNIQUE,
  owner_id        TEXT REFERENCES users(id) ON DELETE SET NULL,
  visibility      TEXT NOT NULL CHECK (visibility IN ('private', 'platform')),
  draft           TEXT NOT NULL,                                       -- the spec being edited (JSON)
  latest_version  INTEGER,                                             -- NULL until first published
  created_at      INTEGER NOT NULL,
  updated_at      INTEGER NOT NULL
) STRICT;
CREATE INDEX agents_by_owner ON agents(owner_id, updated_at DESC);

CREATE TABLE agent_versions (
  agent_id      TEXT NOT NULL REFERENCES agents(id) ON DELETE CASCADE,
  version       INTEGER NOT NULL,
  hash          TEXT NOT NULL,                                         -- sha256 of the canonical spec
  spec          TEXT NOT NULL,                                         -- the canonical JSON itself
  published_by  TEXT NOT NULL,
  published_at  INTEGER NOT NULL,
  PRIMARY KEY (agent_id, version)
) STRICT;
CREATE TRIGGER agent_versions_immutable BEFORE UPDATE ON agent_versions
  BEGIN SELECT RAISE(ABORT, 'agent versions are immutable'); END;

ALTER TABLE conversations ADD COLUMN agent_id TEXT REFERENCES agents(id) ON DELETE SET NULL;
ALTER TABLE conversations ADD COLUMN agent_version INTEGER;
