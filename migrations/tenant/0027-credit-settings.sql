-- issue 13 item 2: prepaid credits' settings per user and currency.
-- * credit_settings: the low-balance notice's threshold (null: the platform default,
--   DEFAULT_LOW_BALANCE_MINOR in src/billing/credit-settings.ts) and its state: `low_notified_at`
--   is set when the notice is mailed (the balance fell below the threshold) and cleared when the
--   balance is at or above it again (a top-up), so a user gets one mail per crossing.
CREATE TABLE credit_settings (
  user_id            TEXT NOT NULL REFERENCES users(id),
  currency           TEXT NOT NULL,
  low_balance_minor  INTEGER CHECK (low_balance_minor IS NULL OR low_balance_minor >= 0),
  low_notified_at    INTEGER,
  -- Auto top-up (both null: off): below `auto_below_minor`, `auto_amount_minor` is charged
  -- off-session to the card saved at a paid top-up (`stripe_customer`, `payment_method`).
  -- `auto_armed` is 0 once a charge was made for the current crossing (re-armed above the line).
  auto_below_minor   INTEGER CHECK (auto_below_minor IS NULL OR auto_below_minor >= 0),
  auto_amount_minor  INTEGER CHECK (auto_amount_minor IS NULL OR auto_amount_minor > 0),
  auto_armed         INTEGER NOT NULL DEFAULT 1 CHECK (auto_armed IN (0, 1)),
  stripe_customer    TEXT,
  payment_method     TEXT,
  updated_at         INTEGER NOT NULL,
  PRIMARY KEY (user_id, currency)
) STRICT;

-- A top-up paid at a Checkout Session (checkout) or charged off-session (auto).
ALTER TABLE topups ADD COLUMN method TEXT NOT NULL DEFAULT 'checkout' CHECK (method IN ('checkout', 'auto'));
