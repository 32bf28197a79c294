-- issue 13 items 6 and 7: a marketplace purchase, from checkout to the ledger.
-- * purchases: one per checkout a user starts for a paid listing (one-time price). `status`:
--   open (checkout in flight), paid (the sale's linked transfers are posted: the buyer may
--   install), refunded (wholly; a partial refund keeps it paid), expired. `terms` are the split
--   at purchase time (JSON SaleTerms), so a later blueprint change does not change past sales.
--   `refunded_minor` is the amount refunded so far: refunds post the difference to what Stripe's
--   charge says was refunded in all, so events that arrive twice or out of order change nothing.
-- * topups: prepaid credits bought through a checkout (issue 13 item 2); paid, the amount is
--   posted to the user's credits account (processor → credits), usable at once, e.g. to buy
--   a listing (method 'credits').
-- * stripe_events: the webhook events this platform has applied (by Stripe's event id).
CREATE TABLE purchases (
  id               TEXT PRIMARY KEY,                     -- pur_<ulid>
  user_id          TEXT NOT NULL REFERENCES users(id),
  listing_id       TEXT NOT NULL REFERENCES listings(id),
  version          INTEGER NOT NULL,
  creator_id       TEXT NOT NULL,
  amount_minor     INTEGER NOT NULL CHECK (amount_minor > 0),
  currency         TEXT NOT NULL,
  terms            TEXT NOT NULL,
  status           TEXT NOT NULL CHECK (status IN ('open', 'paid', 'refunded', 'expired')),
  method           TEXT NOT NULL CHECK (method IN ('stripe', 'manual', 'credits')),
  checkout_session TEXT UNIQUE,
  payment_intent   TEXT UNIQUE,
  refunded_minor   INTEGER NOT NULL DEFAULT 0,
  recorded_by      TEXT,                                 -- manual: the admin who recorded the payment
  created_at       INTEGER NOT NULL,
  updated_at       INTEGER NOT NULL
) STRICT;
CREATE INDEX purchases_by_user ON purchases(user_id, listing_id, status);

CREATE TABLE stripe_events (
  id          TEXT PRIMARY KEY,                          -- evt_...
  type        TEXT NOT NULL,
  received_at INTEGER NOT NULL
) STRICT;

CREATE TABLE topups (
  id               TEXT PRIMARY KEY,                     -- top_<ulid>
  user_id          TEXT NOT NULL REFERENCES users(id),
  amount_minor     INTEGER NOT NULL CHECK (amount_minor > 0),
  currency         TEXT NOT NULL,
  status           TEXT NOT NULL CHECK (status IN ('open', 'paid', 'expired')),
  checkout_session TEXT UNIQUE,
  payment_intent   TEXT UNIQUE,
  created_at       INTEGER NOT NULL,
  updated_at       INTEGER NOT NULL
) STRICT;
CREATE INDEX topups_by_user ON topups(user_id, created_at);
