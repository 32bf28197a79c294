-- issue 13 item 6: which platform a Stripe object belongs to. The operator's one webhook
-- endpoint serves every platform (Stripe limits an account's endpoints), and not every event's
-- object carries the metadata set at checkout (a refunded charge does not), so the checkout
-- session and its payment intent are recorded here when they are made and fulfilled.
CREATE TABLE stripe_objects (
  id          TEXT PRIMARY KEY,                           -- cs_..., pi_...
  platform_id TEXT NOT NULL,
  created_at  INTEGER NOT NULL
) STRICT;
