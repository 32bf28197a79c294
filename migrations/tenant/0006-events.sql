-- Durable domain events (issue 9, point 2). The event log of this database: each row is written
-- in the transaction of the change it reports, so a change and its event commit or roll back
-- together. Not the mail `outbox`. See docs/operations.md, "Domain events".
-- id: a ULID, strictly increasing in this database (delivery order); version: the payload's
-- schema version for `name`; payload: JSON; created_at: epoch ms from the App clock.
CREATE TABLE events (
  id         TEXT PRIMARY KEY,
  name       TEXT NOT NULL,
  version    INTEGER NOT NULL,
  payload    TEXT NOT NULL CHECK (json_valid(payload)),
  created_at INTEGER NOT NULL
) STRICT, WITHOUT ROWID;
CREATE INDEX events_created ON events(created_at);

-- How far each subscriber has got in this database: every event with id <= last_id was
-- delivered to it (its handler returned). Delivered events older than the retention are pruned.
CREATE TABLE event_cursors (
  subscriber TEXT PRIMARY KEY,
  last_id    TEXT NOT NULL,
  updated_at INTEGER NOT NULL
) STRICT, WITHOUT ROWID;
