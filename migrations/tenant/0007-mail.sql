-- Mail delivery (issue 10, item 2): each queued message's state, attempts and last error.
-- status: queued (waiting, or waiting for a retry at next_attempt_at) → sending (an attempt is
-- under way; claimed before the SMTP conversation) → sent (the server accepted it; body wiped),
-- or failed (no attempt left after temporary errors) or bounced (a permanent 5xx refusal).
-- Messages delivered by older versions (sent_at set) are sent.
ALTER TABLE outbox ADD COLUMN status TEXT NOT NULL DEFAULT 'queued'
  CHECK (status IN ('queued', 'sending', 'sent', 'failed', 'bounced'));
ALTER TABLE outbox ADD COLUMN attempts INTEGER NOT NULL DEFAULT 0;
ALTER TABLE outbox ADD COLUMN next_attempt_at INTEGER NOT NULL DEFAULT 0;
ALTER TABLE outbox ADD COLUMN last_error TEXT;
ALTER TABLE outbox ADD COLUMN last_attempt_at INTEGER;
UPDATE outbox SET status = 'sent' WHERE sent_at IS NOT NULL;
CREATE INDEX outbox_due ON outbox(status, next_attempt_at);
