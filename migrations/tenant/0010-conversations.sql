-- issue 11 item 3: the portal's chat. A conversation belongs to one user; its messages are
-- kept in order (seq). An assistant message is written when its stream ends: complete,
-- stopped (the user pressed Stop: the partial text is kept) or error (the partial text and
-- the error). Deleting a conversation deletes its messages (secure_delete is on).
CREATE TABLE conversations (
  id         TEXT PRIMARY KEY,                                         -- cnv_<ulid>
  user_id    TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  title      TEXT NOT NULL,
  model      TEXT NOT NULL,                                            -- the model alias
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL
) STRICT;
CREATE INDEX conversations_by_user ON conversations(user_id, updated_at DESC, id DESC);

CREATE TABLE conversation_messages (
  id                TEXT PRIMARY KEY,                                  -- chm_<ulid>
  conversation_id   TEXT NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
  seq               INTEGER NOT NULL,
  role              TEXT NOT NULL CHECK (role IN ('user', 'assistant')),
  content           TEXT NOT NULL,
  model             TEXT,
  status            TEXT NOT NULL CHECK (status IN ('complete', 'stopped', 'error')),
  error             TEXT,
  prompt_tokens     INTEGER,
  completion_tokens INTEGER,
  created_at        INTEGER NOT NULL,
  UNIQUE (conversation_id, seq)
) STRICT;
