-- Deleted platforms (issue 10, item 1). A delete runs in three explicit steps, each durable, so
-- a crash at any point leaves a state the boot reconciler can finish (tenancy.reconcileDeletions):
--   1. state 'deleting': this row commits (with the control audit entry) while the platforms
--      row and its archive file still exist;
--   2. the archive file is removed (a missing file is fine: step 2 already happened);
--   3. state 'deleted': the platforms row and its domains are removed and this row is updated,
--      in one transaction. From then on the row is the tombstone that keeps the slug taken
--      until slug_free_at (a create with it answers 409 platform.slug_reserved).
-- Rows are kept after slug_free_at as the record of what was deleted (one slug may appear in
-- several rows over time, so it is not unique here).
CREATE TABLE platform_deletions (
  platform_id  TEXT PRIMARY KEY,
  slug         TEXT NOT NULL,
  name         TEXT NOT NULL,
  state        TEXT NOT NULL CHECK (state IN ('deleting', 'deleted')),
  db_file      TEXT NOT NULL,                  -- the archive file removed, relative to the data dir
  actor        TEXT NOT NULL,
  requested_at INTEGER NOT NULL,               -- epoch ms
  deleted_at   INTEGER,                        -- epoch ms, set in step 3
  slug_free_at INTEGER NOT NULL                -- epoch ms: the slug may be used again from then
) STRICT;
CREATE INDEX platform_deletions_slug ON platform_deletions(slug, slug_free_at);
