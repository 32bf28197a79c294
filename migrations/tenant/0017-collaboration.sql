-- issue 12 item 4: collaboration. An agent's owner invites editors (change the draft, publish,
-- manage its knowledge) and viewers (read and chat with it, even when it is private). A
-- conversation with an agent can be shared with participants (features.collaborative_agents),
-- who read it and send turns in it; each message records who wrote it (NULL on rows written
-- before this step: the conversation's owner, or the model for assistant messages).
CREATE TABLE agent_members (
  agent_id    TEXT NOT NULL REFERENCES agents(id) ON DELETE CASCADE,
  user_id     TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  role        TEXT NOT NULL CHECK (role IN ('editor', 'viewer')),
  added_by    TEXT NOT NULL,                                           -- the actor who added them
  created_at  INTEGER NOT NULL,
  updated_at  INTEGER NOT NULL,
  PRIMARY KEY (agent_id, user_id)
) STRICT;
CREATE INDEX agent_members_by_user ON agent_members(user_id);

CREATE TABLE conversation_participants (
  conversation_id TEXT NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
  user_id         TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  added_by        TEXT NOT NULL,
  created_at      INTEGER NOT NULL,
  PRIMARY KEY (conversation_id, user_id)
) STRICT;
CREATE INDEX conversation_participants_by_user ON conversation_participants(user_id);

ALTER TABLE conversation_messages ADD COLUMN author_id TEXT REFERENCES users(id) ON DELETE SET NULL;
