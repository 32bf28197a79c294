/**
 * Prepaid credits (issue 13 item 2, in part): a user tops up through a Stripe Checkout; once
 * paid (fulfilled from the session retrieved, on the webhook or on the buyer's return, as
 * purchases are), the amount is posted processor → credits:<user>, usable at once. The credits
 * account's floor (debits within credits) means nothing can spend more than was bought; a
 * listing bought with credits posts its sale from that account (purchases.service.ts).
 */
import { actorOf, createUserRepository, type PlatformRequestContext } from '../identity/index.ts';
import { AppError } from '../shared/errors.ts';
import { newId } from '../shared/ids.ts';
import { jsonInteger } from '../shared/money.ts';
import {
  creditSettingsOf,
  saveTopupCard,
  setAutoTopup,
  upsertLowBalance,
} from './credit-settings.repository.ts';
import { checkLowBalance, DEFAULT_LOW_BALANCE_MINOR, LOW_BALANCE_MAX_MINOR } from './credit-settings.ts';
import { findAccount } from './ledger.repository.ts';
import { accountId, openAccount, post } from './ledger.ts';
import { findTopup, insertTopup, setTopupStatus, type TopupRow, topupsOf } from './purchases.repository.ts';
import { checkoutState, stripeFor } from './stripe.ts';
import { recordStripeObject } from './stripe-objects.repository.ts';
import { subscriptionOf } from './subscriptions.repository.ts';

const MICRO = 1_000_000n;
/** The smallest and largest top-up, in minor units (1.00 to 10,000.00). */
export const TOPUP_MIN_MINOR = 100;
export const TOPUP_MAX_MINOR = 1_000_000;

/** The signed-in user's id (a user's session or key); 403 otherwise. */
export function userOf(c: PlatformRequestContext): string {
  const p = c.principal;
  const id = p && (p.kind === 'user' || p.kind === 'api_key') ? p.userId : null;
  if (!id) throw new AppError('auth.forbidden', 'billing is for signed-in users', 403);
  return id;
}

/** A user's credits in `currency`: micro-units spendable now (posted credits less debits and holds). */
export function creditBalance(c: PlatformRequestContext, userId: string, currency: string): bigint {
  const a = findAccount(c.db, accountId('credits', userId, currency));
  return a ? a.credits_posted - a.debits_posted - a.debits_pending : 0n;
}

const topupView = (t: TopupRow) => ({
  id: t.id,
  amount_minor: t.amount_minor,
  currency: t.currency,
  status: t.status,
  created_at: new Date(t.created_at).toISOString(),
});

/** The signed-in user's credits and top-ups. */
export function myCredits(c: PlatformRequestContext, currency: string) {
  const userId = userOf(c);
  const micro = creditBalance(c, userId, currency);
  return {
    credits: {
      currency,
      balance_micro: jsonInteger(micro),
      balance_minor: Number(micro / MICRO),
    },
    topups: topupsOf(c.db, userId, 50).map(topupView),
  };
}

/** Starts a top-up: a Checkout Session for `amountMinor`; 201 with where to pay. */
export async function startTopup(c: PlatformRequestContext, amountMinor: number, currency: string) {
  const userId = userOf(c);
  if (!Number.isInteger(amountMinor) || amountMinor < TOPUP_MIN_MINOR || amountMinor > TOPUP_MAX_MINOR)
    throw new AppError(
      'billing.invalid',
      `amount_minor: a whole number of minor units from ${TOPUP_MIN_MINOR} to ${TOPUP_MAX_MINOR}`,
      400,
      [{ path: '/amount_minor', reason: `from ${TOPUP_MIN_MINOR} to ${TOPUP_MAX_MINOR}` }],
    );
  const stripe = stripeFor(c);
  if (!stripe)
    throw new AppError('billing.stripe_disabled', 'this platform takes no card payments: ask an admin', 409);
  const id = newId('top');
  const metadata = { platform_id: c.platform.id, topup_id: id };
  // The user's Stripe customer (the subscriptions' own, else made once): the card paid with is
  // saved to it for auto top-up (setup_future_usage off_session).
  const customer = await customerOf(c, stripe, userId, currency);
  const back = (state: string) => new URL(`/app/billing?topup=${state}`, c.origin).toString();
  const s = await stripe.client.checkout.sessions.create(
    {
      mode: 'payment',
      line_items: [
        {
          quantity: 1,
          price_data: {
            currency,
            unit_amount: amountMinor,
            product_data: { name: `${c.platform.name} credits` },
          },
        },
      ],
      client_reference_id: id,
      customer,
      metadata,
      payment_intent_data: { metadata, setup_future_usage: 'off_session' },
      success_url: back('success'),
      cancel_url: back('cancel'),
    },
    { idempotencyKey: id },
  );
  const now = c.app.clock.now();
  recordStripeObject(c.app.control, s.id, c.platform.id, now);
  const t: TopupRow = {
    id,
    user_id: userId,
    amount_minor: amountMinor,
    currency,
    status: 'open',
    checkout_session: s.id,
    payment_intent: null,
    created_at: now,
    updated_at: now,
  };
  insertTopup(c.db, t);
  return { topup: topupView(t), checkout_url: s.url };
}

/** Checks Stripe for an open top-up and posts it if paid (idempotent); answers it as it is now. */
export async function syncTopup(c: PlatformRequestContext, t: TopupRow): Promise<TopupRow> {
  const stripe = stripeFor(c);
  if (!stripe || t.status !== 'open' || !t.checkout_session) return t;
  const s = await checkoutState(c, stripe, t.checkout_session);
  const now = c.app.clock.now();
  if (s.state === 'paid') {
    const pi = s.paymentIntent;
    c.db.transaction(() => {
      if (findTopup(c.db, t.id)?.status !== 'open') return;
      const cash = openAccount(c.db, { kind: 'processor', currency: t.currency }, now);
      const credits = openAccount(c.db, { kind: 'credits', owner: t.user_id, currency: t.currency }, now);
      post(
        c.db,
        [
          {
            id: `topup:${t.id}`,
            debit: cash,
            credit: credits,
            amount: BigInt(t.amount_minor) * MICRO,
            currency: t.currency,
            code: 'topup',
            ref: t.id,
          },
        ],
        now,
      );
      setTopupStatus(c.db, t.id, 'paid', pi, now);
      c.app.audit.append(c.db, {
        actor: 'stripe',
        action: 'billing.topup_paid',
        target: `topup:${t.id}`,
        details: { user: t.user_id, amount_minor: t.amount_minor, currency: t.currency },
      });
    })();
    // Back above the low-balance threshold: the notice is armed again.
    checkLowBalance(c.app, c.db, t.user_id, t.currency);
    // The card paid with, saved to the customer: kept for auto top-up.
    if (pi) {
      const intent = await stripe.client.paymentIntents.retrieve(pi);
      const pm =
        typeof intent.payment_method === 'string' ? intent.payment_method : intent.payment_method?.id;
      const cus = typeof intent.customer === 'string' ? intent.customer : intent.customer?.id;
      if (pm && cus && intent.setup_future_usage === 'off_session')
        saveTopupCard(c.db, t.user_id, t.currency, cus, pm, c.app.clock.now());
    }
  } else if (s.state === 'expired') setTopupStatus(c.db, t.id, 'expired', null, now);
  return findTopup(c.db, t.id)!;
}

/** The buyer's return from a top-up's checkout: posts it if paid. */
export async function returnFromTopup(c: PlatformRequestContext, id: string) {
  const userId = userOf(c);
  const t = findTopup(c.db, id);
  if (!t || t.user_id !== userId) throw new AppError('billing.topup_not_found', 'no such top-up', 404);
  return { topup: topupView(await syncTopup(c, t)) };
}

/** The signed-in user's credit settings in `currency`. */
export function myCreditSettings(c: PlatformRequestContext, currency: string) {
  const userId = userOf(c);
  const row = creditSettingsOf(c.db, userId, currency);
  return {
    settings: {
      currency,
      low_balance_minor: row?.low_balance_minor ?? DEFAULT_LOW_BALANCE_MINOR,
      low_balance_default: row?.low_balance_minor == null,
      low_balance_notified_at: row?.low_notified_at ? new Date(row.low_notified_at).toISOString() : null,
      auto_topup:
        row?.auto_below_minor != null && row.auto_amount_minor != null
          ? { below_minor: row.auto_below_minor, amount_minor: row.auto_amount_minor }
          : null,
      card_saved: Boolean(row?.payment_method),
    },
  };
}

/** Sets the signed-in user's threshold (null: back to the default); the notice is re-checked. */
export function setCreditSettings(
  c: PlatformRequestContext,
  body: {
    low_balance_minor?: unknown;
    auto_topup?: { below_minor: number; amount_minor: number } | null;
    currency?: string;
  },
) {
  const userId = userOf(c);
  const currency = body.currency ?? 'usd';
  if (body.auto_topup !== undefined) setAuto(c, userId, currency, body.auto_topup);
  if (!('low_balance_minor' in body)) return myCreditSettings(c, currency);
  const v = body.low_balance_minor;
  if (v !== null && (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > LOW_BALANCE_MAX_MINOR))
    throw new AppError(
      'billing.invalid',
      `low_balance_minor: a whole number of minor units from 0 to ${LOW_BALANCE_MAX_MINOR}, or null for the default`,
      400,
      [{ path: '/low_balance_minor', reason: `from 0 to ${LOW_BALANCE_MAX_MINOR}, or null` }],
    );
  upsertLowBalance(c.db, userId, currency, v, c.app.clock.now());
  // A threshold above the balance mails now (once); one below it re-arms the notice.
  checkLowBalance(c.app, c.db, userId, currency);
  return myCreditSettings(c, currency);
}

/** Turns auto top-up on (a saved card needed) or off (null). */
function setAuto(
  c: PlatformRequestContext,
  userId: string,
  currency: string,
  auto: { below_minor: number; amount_minor: number } | null,
) {
  if (auto) {
    const bad = (field: string, reason: string) =>
      new AppError('billing.invalid', `auto_topup.${field}: ${reason}`, 400, [
        { path: `/auto_topup/${field}`, reason },
      ]);
    if (
      !Number.isInteger(auto.amount_minor) ||
      auto.amount_minor < TOPUP_MIN_MINOR ||
      auto.amount_minor > TOPUP_MAX_MINOR
    )
      throw bad(
        'amount_minor',
        `a whole number of minor units from ${TOPUP_MIN_MINOR} to ${TOPUP_MAX_MINOR}`,
      );
    if (
      !Number.isInteger(auto.below_minor) ||
      auto.below_minor < 0 ||
      auto.below_minor > LOW_BALANCE_MAX_MINOR
    )
      throw bad('below_minor', `a whole number of minor units from 0 to ${LOW_BALANCE_MAX_MINOR}`);
    if (!creditSettingsOf(c.db, userId, currency)?.payment_method)
      throw new AppError(
        'billing.no_saved_card',
        'auto_topup: top up once by card first; that card is saved and charged for automatic top-ups',
        409,
        [{ path: '/auto_topup', reason: 'no saved card' }],
      );
  }
  setAutoTopup(c.db, userId, currency, auto, c.app.clock.now());
  c.app.audit.append(c.db, {
    actor: actorOf(c.principal),
    action: auto ? 'billing.auto_topup_on' : 'billing.auto_topup_off',
    target: `user:${userId}`,
    details: auto ? { ...auto, currency } : { currency },
  });
}

/** The user's Stripe customer: the one their subscriptions or top-ups use, else made once. */
async function customerOf(
  c: PlatformRequestContext,
  stripe: NonNullable<ReturnType<typeof stripeFor>>,
  userId: string,
  currency: string,
): Promise<string> {
  const known =
    creditSettingsOf(c.db, userId, currency)?.stripe_customer ??
    subscriptionOf(c.db, userId)?.stripe_customer;
  if (known) return known;
  const email = createUserRepository({ db: c.db }).byId(userId)?.email;
  const made = await stripe.client.customers.create(
    { ...(email ? { email } : {}), metadata: { platform_id: c.platform.id, user_id: userId } },
    { idempotencyKey: `cus:${c.platform.id}:${userId}` },
  );
  recordStripeObject(c.app.control, made.id, c.platform.id, c.app.clock.now());
  return made.id;
}
