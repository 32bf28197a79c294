-- issue 13 item 6: creator payouts through Stripe Connect (separate charges and transfers: a
-- sale is charged on the operator's account; a creator's earnings are sent later, by transfer,
-- to the creator's connected account; destination charges would allow one recipient only).
-- * creator_accounts: a creator's connected account and what Stripe says of it (payouts_enabled
--   is read from Stripe: the onboarding's return and account.updated).
-- * payouts: one per payout. A payout first reserves the amount in the ledger (a pending
--   transfer creator → processor, so two payouts cannot spend the same earnings), then makes
--   the Stripe transfer (the payout's id is its idempotency key), then posts the reservation;
--   a refused transfer voids it. `method` manual: paid outside Stripe, recorded by an admin.
CREATE TABLE creator_accounts (
  user_id           TEXT PRIMARY KEY REFERENCES users(id),
  stripe_account    TEXT NOT NULL UNIQUE,                 -- acct_...
  payouts_enabled   INTEGER NOT NULL DEFAULT 0 CHECK (payouts_enabled IN (0, 1)),
  details_submitted INTEGER NOT NULL DEFAULT 0 CHECK (details_submitted IN (0, 1)),
  created_at        INTEGER NOT NULL,
  updated_at        INTEGER NOT NULL
) STRICT;

CREATE TABLE payouts (
  id              TEXT PRIMARY KEY,                       -- pay_<ulid>
  creator_id      TEXT NOT NULL REFERENCES users(id),
  amount_minor    INTEGER NOT NULL CHECK (amount_minor > 0),
  currency        TEXT NOT NULL,
  status          TEXT NOT NULL CHECK (status IN ('pending', 'paid', 'failed')),
  method          TEXT NOT NULL CHECK (method IN ('stripe', 'manual')),
  stripe_transfer TEXT UNIQUE,                            -- tr_...
  failure         TEXT,
  note            TEXT,
  requested_by    TEXT NOT NULL,
  created_at      INTEGER NOT NULL,
  updated_at      INTEGER NOT NULL
) STRICT;
CREATE INDEX payouts_by_creator ON payouts(creator_id, created_at);

-- issue 13 item 6: a platform's own Stripe account (optional; without it the operator's is
-- used). The secret key and the webhook signing secret are sealed (sf1.…, bound to this
-- platform and field); `key_hint` is what admins are shown (sk_live_…wxyz).
CREATE TABLE stripe_settings (
  id             INTEGER PRIMARY KEY CHECK (id = 1),
  secret_key     TEXT NOT NULL,
  webhook_secret TEXT NOT NULL,
  key_hint       TEXT NOT NULL,
  live           INTEGER NOT NULL CHECK (live IN (0, 1)),
  updated_by     TEXT NOT NULL,
  updated_at     INTEGER NOT NULL
) STRICT;
