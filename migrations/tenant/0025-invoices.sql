-- issue 13 item 5: invoices, monthly, per end user (issued by the platform) and per platform (the
-- operator's bill to it), from the ledger and the purchases and top-ups tables.
-- * invoice_counters: one row per series ('user': the platform's invoices to its users;
--   'platform': the operator's bills to this platform). The number is taken from the row in the
--   transaction that writes the invoice, so numbers are gapless and never repeat.
-- * invoices: immutable once written (triggers refuse UPDATE and DELETE). A void is a new
--   invoice (status 'void', `voids` names the original, lines negated, its own number): the
--   original is never edited. One issued invoice per (kind, subject, period, currency): issuing
--   again answers it. Amounts are integer minor units; `lines`, `tax_lines` and `credit_lines`
--   are JSON arrays.
-- * tax_rates: the platform's tax rates (percent in ten-thousandths: 20.5% = 205000), applied
--   inclusive or exclusive as the blueprint's monetization.payment_processing.tax_behavior says.
CREATE TABLE invoice_counters (
  series TEXT PRIMARY KEY CHECK (series IN ('user', 'platform')),
  last   INTEGER NOT NULL
) STRICT;

CREATE TABLE invoices (
  id             TEXT PRIMARY KEY,                      -- inv_<ulid>
  series         TEXT NOT NULL CHECK (series IN ('user', 'platform')),
  seq            INTEGER NOT NULL,                      -- the gapless number within the series
  number         TEXT NOT NULL UNIQUE,                  -- e.g. SHOP-000042, OP-SHOP-000007
  kind           TEXT NOT NULL CHECK (kind IN ('user', 'platform')),
  subject        TEXT NOT NULL,                         -- a user id, or the platform's id
  period_start   INTEGER NOT NULL,                      -- epoch ms, the month's first instant (UTC)
  period_end     INTEGER NOT NULL,                      -- epoch ms, the next month's first instant
  currency       TEXT NOT NULL,
  lines          TEXT NOT NULL,                         -- JSON [{description, quantity, unit_amount_minor, amount_minor, code, ref, taxable}]
  subtotal_minor INTEGER NOT NULL,
  tax_behavior   TEXT NOT NULL CHECK (tax_behavior IN ('exclusive', 'inclusive')),
  tax_lines      TEXT NOT NULL,                         -- JSON [{name, percent, amount_minor}]
  tax_minor      INTEGER NOT NULL,
  credit_lines   TEXT NOT NULL,                         -- JSON [{description, amount_minor, ref}]
  credits_minor  INTEGER NOT NULL,
  total_minor    INTEGER NOT NULL,
  status         TEXT NOT NULL CHECK (status IN ('issued', 'void')),
  voids          TEXT REFERENCES invoices(id),          -- a void: the invoice it cancels
  issued_by      TEXT NOT NULL,
  issued_at      INTEGER NOT NULL,
  UNIQUE (series, seq)
) STRICT;
CREATE UNIQUE INDEX invoices_once ON invoices(kind, subject, period_start, currency) WHERE status = 'issued';
CREATE UNIQUE INDEX invoices_void_once ON invoices(voids) WHERE voids IS NOT NULL;
CREATE INDEX invoices_by_subject ON invoices(kind, subject, period_start DESC);
CREATE TRIGGER invoices_immutable_u BEFORE UPDATE ON invoices BEGIN
  SELECT RAISE(ABORT, 'invoices are immutable: void one with a new invoice');
END;
CREATE TRIGGER invoices_immutable_d BEFORE DELETE ON invoices BEGIN
  SELECT RAISE(ABORT, 'invoices are immutable: void one with a new invoice');
END;

CREATE TABLE tax_rates (
  position   INTEGER PRIMARY KEY,
  name       TEXT NOT NULL,
  percent_e4 INTEGER NOT NULL CHECK (percent_e4 >= 0 AND percent_e4 <= 1000000)
) STRICT;
