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
  updated_at         INTEGER NOT NULL,
  PRIMARY KEY (user_id, currency)
) STRICT;
