-- issue 13 item 3: the platform's double-entry ledger, in the manner of TigerBeetle.
-- Amounts are integer micro-units (millionths of the currency's minor unit: docs ARCHITECTURE.md
-- "Money"), so settled AI usage posts exactly and a sale of 4.99 is 499,000,000.
-- * ledger_accounts: one per (kind, owner, currency). The four balances are kept with the row
--   and change only with a transfer, in its transaction; `floor` says which side may not pass
--   the other (a user's credits: debits may not exceed credits).
-- * ledger_transfers: immutable (triggers refuse UPDATE and DELETE; a correction is a new
--   transfer). `id` is the caller's idempotency key. `flags`: 'posted' (one step), 'pending'
--   (the first of two phases: reserves), 'post' or 'void' (the second: `pending_id` names the
--   first). `chain`: the transfers committed together, all or nothing (linked). `debit` and
--   `credit` are the accounts' `n` (integer index keys: at 1,000 accounts a transfer costs half
--   what text keys cost); the ledger_postings view reads them as account ids.
CREATE TABLE ledger_accounts (
  n               INTEGER PRIMARY KEY,                    -- what transfers refer to (small index keys)
  id              TEXT NOT NULL UNIQUE,                   -- <kind>:<owner>:<currency>
  kind            TEXT NOT NULL CHECK (kind IN ('end_user', 'credits', 'creator', 'platform', 'operator',
                                                'ai_cost', 'processor', 'tax', 'refunds')),
  owner           TEXT NOT NULL DEFAULT '',               -- user id, or '' for the platform's own
  currency        TEXT NOT NULL,                          -- ISO 4217, lower case
  floor           TEXT NOT NULL DEFAULT 'none'
                  CHECK (floor IN ('none', 'debits_within_credits', 'credits_within_debits')),
  debits_pending  INTEGER NOT NULL DEFAULT 0,
  debits_posted   INTEGER NOT NULL DEFAULT 0,
  credits_pending INTEGER NOT NULL DEFAULT 0,
  credits_posted  INTEGER NOT NULL DEFAULT 0,
  created_at      INTEGER NOT NULL
) STRICT;

CREATE TABLE ledger_transfers (
  seq         INTEGER PRIMARY KEY,                        -- commit order
  id          TEXT NOT NULL UNIQUE,                       -- the caller's idempotency key
  debit       INTEGER NOT NULL REFERENCES ledger_accounts(n),
  credit      INTEGER NOT NULL REFERENCES ledger_accounts(n),
  amount      INTEGER NOT NULL CHECK (amount >= 0),
  currency    TEXT NOT NULL,
  flags       TEXT NOT NULL CHECK (flags IN ('posted', 'pending', 'post', 'void')),
  pending_id  TEXT,                                       -- post / void: the pending transfer's id
  timeout_at  INTEGER,                                    -- pending: voided by expiry after this (epoch ms)
  code        TEXT NOT NULL,                              -- what it is: sale, fee, usage, topup, refund, ...
  ref         TEXT,                                       -- what it is about: a listing, an invoice, a Stripe id
  chain       TEXT,                                       -- linked: the chain's first transfer id
  at          INTEGER NOT NULL                            -- epoch ms
) STRICT;
CREATE INDEX ledger_transfers_by_debit ON ledger_transfers(debit, at);
CREATE INDEX ledger_transfers_by_credit ON ledger_transfers(credit, at);
CREATE INDEX ledger_transfers_by_pending ON ledger_transfers(pending_id) WHERE pending_id IS NOT NULL;
CREATE INDEX ledger_transfers_by_ref ON ledger_transfers(ref) WHERE ref IS NOT NULL;
CREATE TRIGGER ledger_transfers_immutable_u BEFORE UPDATE ON ledger_transfers BEGIN
  SELECT RAISE(ABORT, 'ledger transfers are immutable: post a correcting transfer');
END;
CREATE TRIGGER ledger_transfers_immutable_d BEFORE DELETE ON ledger_transfers BEGIN
  SELECT RAISE(ABORT, 'ledger transfers are immutable: post a correcting transfer');
END;


-- Transfers with their accounts' ids (what the API and reports read).
CREATE VIEW ledger_postings AS
  SELECT t.seq, t.id, d.id AS debit, c.id AS credit, t.amount, t.currency, t.flags, t.pending_id, t.timeout_at,
         t.code, t.ref, t.chain, t.at
  FROM ledger_transfers t JOIN ledger_accounts d ON d.n = t.debit JOIN ledger_accounts c ON c.n = t.credit;
