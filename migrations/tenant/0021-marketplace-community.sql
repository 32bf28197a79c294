-- migrate: foreign_keys=off
-- issue 12 item 7: the listing lifecycle made whole, community approval, and semantic search.
-- * `submitted` (waiting for the community's votes) joins the statuses; `in_review` is the
--   moderators' queue; `review_note` says why a listing waits there (the safety check that held
--   it, the community's rejections). SQLite changes a CHECK only by rebuilding the table: this
--   step runs with foreign keys off (migrate.ts), keeps every rowid (the full-text index points
--   at them) and leaves the tables that reference listings as they are.
-- * The full-text index now holds published listings only, with column weights (title 10,
--   summary 3, tags 5), so a search never ranks what it would then filter out.
-- * listing_votes: one vote per member per listing version.
-- * listing_vectors: each listing's embedding (float32, the model that made it, a hash of the
--   text embedded); the vector index itself (`listings_vec`, sqlite-vec, binary quantized) is
--   made at run time, as knowledge_vec is, since its dimension is the model's.
CREATE TABLE listings_v2 (
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
  status       TEXT NOT NULL CHECK (status IN ('submitted', 'in_review', 'published', 'rejected', 'suspended', 'revoked')),
  created_by   TEXT NOT NULL,
  created_at   INTEGER NOT NULL,
  updated_at   INTEGER NOT NULL,
  review_note  TEXT                                                    -- why it is in review, or NULL
) STRICT;
INSERT INTO listings_v2 (rowid, id, agent_id, version, title, summary, category, tags, price_model, price_minor,
    currency, status, created_by, created_at, updated_at)
  SELECT rowid, id, agent_id, version, title, summary, category, tags, price_model, price_minor,
    currency, status, created_by, created_at, updated_at FROM listings;
DROP TABLE listings;
ALTER TABLE listings_v2 RENAME TO listings;
CREATE INDEX listings_by_status ON listings(status, updated_at DESC);

DROP TABLE listings_fts;
CREATE VIRTUAL TABLE listings_fts USING fts5(title, summary, tags, content='listings', content_rowid='rowid');
INSERT INTO listings_fts(listings_fts, rank) VALUES ('rank', 'bm25(10.0, 3.0, 5.0)');
INSERT INTO listings_fts(rowid, title, summary, tags)
  SELECT rowid, title, summary, tags FROM listings WHERE status = 'published';
CREATE TRIGGER listings_ai AFTER INSERT ON listings WHEN new.status = 'published' BEGIN
  INSERT INTO listings_fts(rowid, title, summary, tags) VALUES (new.rowid, new.title, new.summary, new.tags);
END;
CREATE TRIGGER listings_ad AFTER DELETE ON listings BEGIN
  INSERT INTO listings_fts(listings_fts, rowid, title, summary, tags)
    SELECT 'delete', old.rowid, old.title, old.summary, old.tags WHERE old.status = 'published';
  DELETE FROM listing_vectors WHERE listing_rowid = old.rowid;
END;
CREATE TRIGGER listings_au AFTER UPDATE OF title, summary, tags, status ON listings BEGIN
  INSERT INTO listings_fts(listings_fts, rowid, title, summary, tags)
    SELECT 'delete', old.rowid, old.title, old.summary, old.tags WHERE old.status = 'published';
  INSERT INTO listings_fts(rowid, title, summary, tags)
    SELECT new.rowid, new.title, new.summary, new.tags WHERE new.status = 'published';
END;

CREATE TABLE listing_votes (
  listing_id  TEXT NOT NULL REFERENCES listings(id) ON DELETE CASCADE,
  user_id     TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  version     INTEGER NOT NULL,                                        -- the listed version voted on
  vote        TEXT NOT NULL CHECK (vote IN ('approve', 'reject')),
  reason      TEXT NOT NULL DEFAULT '',
  created_at  INTEGER NOT NULL,
  updated_at  INTEGER NOT NULL,
  PRIMARY KEY (listing_id, user_id)
) STRICT;

CREATE TABLE listing_vectors (
  listing_rowid INTEGER PRIMARY KEY,                                   -- listings.rowid
  model         TEXT NOT NULL,
  text_hash     TEXT NOT NULL,                                         -- sha-256 of the text embedded
  vector        BLOB NOT NULL                                          -- float32 little-endian
) STRICT;
CREATE TABLE listing_vector_index (
  id    INTEGER PRIMARY KEY CHECK (id = 1),
  model TEXT NOT NULL,
  dims  INTEGER NOT NULL
) STRICT;
