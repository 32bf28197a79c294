-- issue 12 item 2: an agent's knowledge. Documents are cut into chunks; each chunk is in the
-- full-text index (FTS5, kept by triggers) and in the vector index, a sqlite-vec `vec0` table
-- made at run time (its dimension is the embedding model's; knowledge_index says which).
CREATE TABLE knowledge_docs (
  id            TEXT PRIMARY KEY,                                      -- kdc_<ulid>
  agent_id      TEXT NOT NULL REFERENCES agents(id) ON DELETE CASCADE,
  name          TEXT NOT NULL,
  content_type  TEXT NOT NULL,
  bytes         INTEGER NOT NULL,
  chunks        INTEGER NOT NULL,
  embedding_model TEXT NOT NULL,
  created_by    TEXT NOT NULL,
  created_at    INTEGER NOT NULL
) STRICT;
CREATE INDEX knowledge_docs_by_agent ON knowledge_docs(agent_id, created_at);

CREATE TABLE knowledge_chunks (
  id        INTEGER PRIMARY KEY,
  doc_id    TEXT NOT NULL REFERENCES knowledge_docs(id) ON DELETE CASCADE,
  agent_id  TEXT NOT NULL,
  seq       INTEGER NOT NULL,
  text      TEXT NOT NULL
) STRICT;
CREATE INDEX knowledge_chunks_by_doc ON knowledge_chunks(doc_id, seq);

CREATE VIRTUAL TABLE knowledge_fts USING fts5(text, content='knowledge_chunks', content_rowid='id');
CREATE TRIGGER knowledge_chunks_ai AFTER INSERT ON knowledge_chunks BEGIN
  INSERT INTO knowledge_fts(rowid, text) VALUES (new.id, new.text);
END;
CREATE TRIGGER knowledge_chunks_ad AFTER DELETE ON knowledge_chunks BEGIN
  INSERT INTO knowledge_fts(knowledge_fts, rowid, text) VALUES ('delete', old.id, old.text);
END;

-- Which model and dimension the vector index holds (one row).
CREATE TABLE knowledge_index (
  id     INTEGER PRIMARY KEY CHECK (id = 1),
  model  TEXT NOT NULL,
  dims   INTEGER NOT NULL
) STRICT;

-- The sources an answer cited (JSON), on the assistant's message.
ALTER TABLE conversation_messages ADD COLUMN citations TEXT;
