-- issue 12 item 3: agent tools. The tools themselves are part of an agent's spec (a version
-- freezes them); what lives here is the platform's host allowlist, each tool's secret (sealed,
-- never part of the spec or its hash) and the tool calls of chat turns (a call that changes
-- something waits here, `pending`, for the user to approve or decline it).
CREATE TABLE agent_tool_hosts (
  pattern   TEXT PRIMARY KEY,                                          -- api.example.com or *.example.com
  added_by  TEXT NOT NULL,
  added_at  INTEGER NOT NULL
) STRICT;

CREATE TABLE agent_tool_secrets (
  agent_id    TEXT NOT NULL REFERENCES agents(id) ON DELETE CASCADE,
  tool        TEXT NOT NULL,                                           -- the tool's function name
  header      TEXT NOT NULL,                                           -- the header it is sent in
  value       TEXT NOT NULL,                                           -- sealed (sf1.…), bound to agent and tool
  updated_at  INTEGER NOT NULL,
  PRIMARY KEY (agent_id, tool)
) STRICT;

CREATE TABLE agent_tool_calls (
  id               TEXT PRIMARY KEY,                                   -- tcl_<ulid>
  conversation_id  TEXT NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
  user_id          TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  agent_id         TEXT REFERENCES agents(id) ON DELETE SET NULL,
  tool             TEXT NOT NULL,
  call_id          TEXT NOT NULL,                                      -- the model's id of the call
  arguments        TEXT NOT NULL,                                      -- the model's arguments (JSON text)
  status           TEXT NOT NULL CHECK (status IN ('pending', 'approved', 'declined', 'expired')),
  turn             TEXT NOT NULL,                                      -- what resuming the turn needs (JSON)
  created_at       INTEGER NOT NULL,
  decided_at       INTEGER
) STRICT;
CREATE INDEX agent_tool_calls_pending ON agent_tool_calls(conversation_id) WHERE status = 'pending';
