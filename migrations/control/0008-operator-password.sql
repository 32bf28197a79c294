-- Operator password sign-in on the console (issue 10, item 2): TOTP for operators, a session
-- that waits for its second factor, and the sign-in throttle (same table and policy as a
-- platform's auth_throttle, see src/identity/throttle.ts), kept across restarts.
ALTER TABLE operators ADD COLUMN totp_secret TEXT;      -- sealed ('control:operator:<id>:totp'); NULL: no TOTP
ALTER TABLE operators ADD COLUMN totp_pending TEXT;     -- sealed; an enrolment not yet confirmed
ALTER TABLE operators ADD COLUMN totp_last_step INTEGER; -- the last TOTP step accepted (no replay)
ALTER TABLE operator_sessions ADD COLUMN mfa_pending INTEGER NOT NULL DEFAULT 0; -- 1: password ok, TOTP owed

CREATE TABLE auth_throttle (
  kind         TEXT NOT NULL,
  key          TEXT NOT NULL,
  count        INTEGER NOT NULL,
  window_start INTEGER NOT NULL,
  locked_until INTEGER,
  expires_at   INTEGER NOT NULL,
  PRIMARY KEY (kind, key)
) STRICT, WITHOUT ROWID;
CREATE INDEX auth_throttle_expires ON auth_throttle(expires_at);
