-- issue 12 item 3: the tool calls a turn made are kept with its answer (JSON array of
-- {call_id, tool, arguments, ok, status, outcome}, or NULL when it made none), so a reload, a
-- participant and an export see them as the user did while it streamed. Never results or secrets.
ALTER TABLE conversation_messages ADD COLUMN tool_steps TEXT;
