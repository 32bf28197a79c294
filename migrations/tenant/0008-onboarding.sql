-- issue 10 item 2: invitations (a one-time, expiring link that makes a verified user with a role).
-- An invitation holds its placeholder account (`users.provisioned_via = 'invite'`, no password):
-- the invitee sets a password through the link, or signs in with SSO, which links the account
-- by its email as for any SSO invitation. Only the link token's SHA-256 is stored.
CREATE TABLE invitations (
  id          TEXT PRIMARY KEY,                              -- inv_<ulid>
  email       TEXT NOT NULL COLLATE NOCASE,
  role        TEXT NOT NULL,
  user_id     TEXT REFERENCES users(id) ON DELETE SET NULL,  -- the placeholder account (NULL: gone)
  token_hash  TEXT NOT NULL UNIQUE,                          -- SHA-256 of the live link's token
  invited_by  TEXT NOT NULL,                                 -- audit actor
  created_at  INTEGER NOT NULL,
  expires_at  INTEGER NOT NULL,
  sent_at     INTEGER NOT NULL,                              -- last (re)send
  sends       INTEGER NOT NULL DEFAULT 1,
  accepted_at INTEGER,
  revoked_at  INTEGER
) STRICT;
CREATE INDEX invitations_user ON invitations(user_id);

-- Self sign-up: pending (unverified) sign-up accounts are counted and purged by age.
CREATE INDEX users_pending_signup ON users(created_at)
  WHERE provisioned_via = 'signup' AND email_verified_at IS NULL;
