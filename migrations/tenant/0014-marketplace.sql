-- issue 12 item 7 (in part): the platform's marketplace. A listing offers one published version
-- of an agent; its status follows governance.agent_approval_process and the moderators'
-- actions (each audited with its reason). Installs pin a version; reviews rate a version.
CREATE TABLE listings (
  id           TEXT PRIMARY KEY,                                       -- lst_<ulid>
  agent_id     TEXT NOT NULL UNIQUE REFERENCES agents(id) ON DELETE CASCADE,
  version      INTEGER NOT NULL,
  title        TEXT NOT NULL,
  summary      TEXT NOT NULL,
  category     TEXT NOT NULL,
  tags         TEXT NOT NULL,                                          -- JSON array
  price_model  TEXT NOT NULL CHECK (price_model IN ('free', 'one_time', 'subscription')),
  price_minor  INTEGER NOT NULL DEFAULT 0,
  currency     TEXT NOT NULL DEFAULT 'usd',
  status       TEXT NOT NULL CHECK (status IN ('in_review', 'published', 'rejected', 'suspended', 'revoked')),
  created_by   TEXT NOT NULL,
  created_at   INTEGER NOT NULL,
  updated_at   INTEGER NOT NULL
) STRICT;
CREATE INDEX listings_by_status ON listings(status, updated_at DESC);

CREATE VIRTUAL TABLE listings_fts USING fts5(title, summary, tags, content='listings', content_rowid='rowid');
CREATE TRIGGER listings_ai AFTER INSERT ON listings BEGIN
  INSERT INTO listings_fts(rowid, title, summary, tags) VALUES (new.rowid, new.title, new.summary, new.tags);
END;
CREATE TRIGGER listings_ad AFTER DELETE ON listings BEGIN
  INSERT INTO listings_fts(listings_fts, rowid, title, summary, tags) VALUES ('delete', old.rowid, old.title, old.summary, old.tags);
END;
CREATE TRIGGER listings_au AFTER UPDATE OF title, summary, tags ON listings BEGIN
  INSERT INTO listings_fts(listings_fts, rowid, title, summary, tags) VALUES ('delete', old.rowid, old.title, old.summary, old.tags);
  INSERT INTO listings_fts(rowid, title, summary, tags) VALUES (new.rowid, new.title, new.summary, new.tags);
END;

CREATE TABLE listing_installs (
  listing_id   TEXT NOT NULL REFERENCES listings(id) ON DELETE CASCADE,
  user_id      TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  version      INTEGER NOT NULL,
  installed_at INTEGER NOT NULL,
  PRIMARY KEY (listing_id, user_id)
) STRICT;

CREATE TABLE listing_reviews (
  listing_id  TEXT NOT NULL REFERENCES listings(id) ON DELETE CASCADE,
  user_id     TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  version     INTEGER NOT NULL,
  rating      INTEGER NOT NULL CHECK (rating BETWEEN 1 AND 5),
  text        TEXT NOT NULL,
  created_at  INTEGER NOT NULL,
  PRIMARY KEY (listing_id, user_id)
) STRICT;

CREATE TABLE listing_reports (
  id          INTEGER PRIMARY KEY,
  listing_id  TEXT NOT NULL REFERENCES listings(id) ON DELETE CASCADE,
  user_id     TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  reason      TEXT NOT NULL,
  created_at  INTEGER NOT NULL,
  resolved_at INTEGER
) STRICT;
CREATE INDEX listing_reports_open ON listing_reports(listing_id) WHERE resolved_at IS NULL;
