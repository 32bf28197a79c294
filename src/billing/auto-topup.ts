/**
 * Auto top-up of prepaid credits (issue 13 item 2). A user who opted in
 * (`PUT /api/v1/billing/credits/settings {auto_topup: {below_minor, amount_minor}}`) and has a
 * card saved by a paid top-up (its checkout sets `setup_future_usage: off_session` on the
 * user's Stripe customer) is charged `amount_minor` off-session when a spend takes the credits
 * below `below_minor`: once per crossing (disarmed when charged, re-armed once the balance is
 * at or above the line again). The charge is a PaymentIntent confirmed at once through the
 * official SDK, its top-up's id the idempotency key; succeeded, the credits are posted as a paid
 * top-up's are (processor → credits, usable at once). Declined, auto top-up is turned off and
 * the user is mailed; nothing is posted. It runs after the spend's transaction, never inside one.
 */
import type { Database } from 'bun:sqlite';
import Stripe from 'stripe';
import type { App } from '../app/index.ts';
import { createUserRepository, queueMail } from '../identity/index.ts';
import { newId } from '../shared/ids.ts';
import {
  creditSettingsOf,
  disarmAutoTopup,
  rearmAutoTopup,
  setAutoTopup,
} from './credit-settings.repository.ts';
import { findAccount } from './ledger.repository.ts';
import { accountId, openAccount, post } from './ledger.ts';
import { findTopup, insertTopup, setTopupStatus } from './purchases.repository.ts';
import { stripeFor } from './stripe.ts';
import { recordStripeObject } from './stripe-objects.repository.ts';

const MICRO = 1_000_000n;

export type AutoTopupResult = 'charged' | 'declined' | 'none';

const spendable = (db: Database, userId: string, currency: string) => {
  const a = findAccount(db, accountId('credits', userId, currency));
  return a ? a.credits_posted - a.debits_posted - a.debits_pending : 0n;
};

/** After a spend of credits: charges the saved card once when the balance crossed the line. */
export async function maybeAutoTopup(
  app: App,
  db: Database,
  platformId: string,
  userId: string,
  currency: string,
): Promise<AutoTopupResult> {
  const cur = currency.toLowerCase();
  const row = creditSettingsOf(db, userId, cur);
  if (!row?.auto_below_minor && row?.auto_below_minor !== 0) return 'none';
  if (!row.auto_amount_minor || !row.payment_method || !row.stripe_customer) return 'none';
  const line = BigInt(row.auto_below_minor) * MICRO;
  const now = app.clock.now();
  if (spendable(db, userId, cur) >= line) {
    rearmAutoTopup(db, userId, cur, now);
    return 'none';
  }
  const stripe = stripeFor({ app, db, platform: { id: platformId } });
  if (!stripe) return 'none';
  const id = newId('top');
  const amount = row.auto_amount_minor;
  const taken = db.transaction(() => {
    if (!disarmAutoTopup(db, userId, cur, now)) return false;
    insertTopup(db, {
      id,
      user_id: userId,
      amount_minor: amount,
      currency: cur,
      status: 'open',
      checkout_session: null,
      payment_intent: null,
      created_at: now,
      updated_at: now,
      method: 'auto',
    });
    return true;
  })();
  if (!taken) return 'none';
  let pi: Stripe.PaymentIntent;
  try {
    pi = await stripe.client.paymentIntents.create(
      {
        amount,
        currency: cur,
        customer: row.stripe_customer,
        payment_method: row.payment_method,
        confirm: true,
        off_session: true,
        description: 'Credits (auto top-up)',
        metadata: { platform_id: platformId, topup_id: id, user_id: userId },
      },
      { idempotencyKey: id },
    );
  } catch (err) {
    const later = app.clock.now();
    if (err instanceof Stripe.errors.StripeCardError) {
      db.transaction(() => {
        setTopupStatus(db, id, 'expired', null, later);
        setAutoTopup(db, userId, cur, null, later);
        app.audit.append(db, {
          actor: 'stripe',
          action: 'billing.auto_topup_declined',
          target: `topup:${id}`,
          details: { user: userId, amount_minor: amount, currency: cur, code: err.code ?? null },
        });
        const user = createUserRepository({ db }).byId(userId);
        if (user?.status === 'active')
          queueMail(
            db,
            {
              to_email: user.email,
              template: 'credits_auto_declined',
              subject: 'Your automatic top-up was declined',
              body:
                `Your card was declined for an automatic top-up of ${(amount / 100).toFixed(2)} ${cur.toUpperCase()} (${err.message}).\n\n` +
                'Automatic top-up is now off. Top up on your billing page with another card, and turn it on again there.\n',
            },
            later,
          );
      })();
      return 'declined';
    }
    // Stripe did not answer: nothing known to be charged; the next spend tries again.
    db.transaction(() => {
      setTopupStatus(db, id, 'expired', null, later);
      rearmAutoTopup(db, userId, cur, later);
    })();
    throw err;
  }
  const later = app.clock.now();
  if (pi.status !== 'succeeded') {
    db.transaction(() => {
      setTopupStatus(db, id, 'expired', null, later);
      setAutoTopup(db, userId, cur, null, later);
    })();
    return 'declined';
  }
  recordStripeObject(app.control, pi.id, platformId, later);
  db.transaction(() => {
    if (findTopup(db, id)?.status !== 'open') return;
    const cash = openAccount(db, { kind: 'processor', currency: cur }, later);
    const credits = openAccount(db, { kind: 'credits', owner: userId, currency: cur }, later);
    post(
      db,
      [
        {
          id: `topup:${id}`,
          debit: cash,
          credit: credits,
          amount: BigInt(amount) * MICRO,
          currency: cur,
          code: 'topup',
          ref: id,
        },
      ],
      later,
    );
    setTopupStatus(db, id, 'paid', pi.id, later);
    app.audit.append(db, {
      actor: 'stripe',
      action: 'billing.topup_paid',
      target: `topup:${id}`,
      details: { user: userId, amount_minor: amount, currency: cur, method: 'auto' },
    });
    // Back above the line: the next crossing charges again.
    if (spendable(db, userId, cur) >= line) rearmAutoTopup(db, userId, cur, later);
  })();
  return 'charged';
}
