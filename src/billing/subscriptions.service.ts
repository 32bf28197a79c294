/**
 * A platform's plans for its users (issue 13 items 2 and 6): the blueprint's
 * `monetization.subscription_tiers`, paid through Stripe subscriptions on the operator's account.
 *
 * Subscribing to a paid tier makes (or reuses) the user's Stripe customer and a Checkout Session
 * in mode subscription: the tier's price as `price_data` with its recurring interval, quantity =
 * seats, the platform, user and tier in the subscription's metadata (how its events are routed
 * before anything else is recorded), links from the platform's stored public origin, and an
 * idempotency key. A trial (`subscription_data.trial_period_days`) is given when soulfra.yaml sets
 * `billing.trial_days` and the user has never had a Stripe subscription on this platform (one
 * trial per user). The free tier needs no checkout; without Stripe, 409 `billing.stripe_disabled`
 * and an admin sets the user's tier by hand (audited).
 *
 * The user's row is written from the subscription retrieved from Stripe, never from an event's
 * copy: whatever order events come in, twice or replayed, the row ends as Stripe has it. Each
 * paid invoice (amount above 0) posts one linked ledger chain, its ids from the invoice id:
 * `processor → end_user:<uid>` ('payment', ref the invoice), `end_user:<uid> → platform`
 * ('subscription', ref the tier) and the operator's fee `platform → operator` ('fee', ref the
 * tier) at `termsOf(c).operatorFee` percent, split with dinero's allocate.
 *
 * Changing tier updates the subscription's item with the new price, `proration_behavior:
 * 'create_prorations'`: up or down, the new tier applies at once; Stripe credits the unused time
 * of the old price and charges the new one's rest on the next invoice. Cancelling at the
 * period's end keeps the tier until Stripe ends the subscription; cancelling now ends it at once.
 */
import { allocate, dinero, toSnapshot } from 'dinero.js/bigint';
import type Stripe from 'stripe';
import type { Meter } from '../ai/index.ts';
import type { PlatformRequestContext } from '../identity/index.ts';
import { actorOf, createUserRepository } from '../identity/index.ts';
import { AppError } from '../shared/errors.ts';
import { newId } from '../shared/ids.ts';
import type { SubscriptionTier } from '../tenancy/index.ts';
import { userOf } from './credits.service.ts';
import { freeTier, graceDays, limitOf, planOf, requestsToday, upgradeFor } from './entitlements.ts';
import { accountId, openAccount, post, type TransferSpec } from './ledger.ts';
import { termsOf } from './purchases.service.ts';
import { type StripeAccount, stripeFor } from './stripe.ts';
import { recordStripeObject } from './stripe-objects.repository.ts';
import {
  addTeamMember,
  agentsOwnedBy,
  findSubscriptionInvoice,
  invoicesOf,
  listSubscriptions,
  markInvoicePosted,
  removeTeamMember,
  type SubscriptionRow,
  type SubscriptionStatus,
  saveSubscription,
  setInvoiceRefunded,
  subscriptionByStripeId,
  subscriptionOf,
  teamMembers,
  teamOwnerOf,
} from './subscriptions.repository.ts';

const MICRO = 1_000_000n;
const ms = (s: number | null | undefined) => (s == null ? null : s * 1000);
const iso = (t: number | null) => (t == null ? null : new Date(t).toISOString());
const LIVE: readonly SubscriptionStatus[] = ['active', 'trialing', 'past_due'];

function tierById(c: PlatformRequestContext, id: string): SubscriptionTier {
  const t = c.blueprint().monetization.subscription_tiers.find((x) => x.id === id);
  if (!t)
    throw new AppError('billing.tier_unknown', `tier: this platform has no tier ${id}`, 404, [
      { path: '/tier', reason: 'no such tier' },
    ]);
  return t;
}

const card = (c: PlatformRequestContext): StripeAccount => {
  const s = stripeFor(c);
  if (!s)
    throw new AppError(
      'billing.stripe_disabled',
      'this platform takes no card payments: an admin sets your plan',
      409,
    );
  return s;
};

const tierView = (t: SubscriptionTier, current: boolean) => ({
  id: t.id,
  name: t.name,
  price: t.price,
  interval: t.interval,
  features: t.features ?? [],
  limits: {
    requests_per_day: t.limits?.requests_per_day ?? null,
    agents: t.limits?.agents ?? null,
    seats: t.limits?.seats ?? null,
  },
  current,
});

const finite = (n: number) => (n === Number.POSITIVE_INFINITY ? null : n);

/** The user's plan, status, period, limits and today's usage against them; the tiers on offer. */
export function subscriptionView(c: PlatformRequestContext, userId: string, meter?: Meter) {
  const plan = planOf(c, userId);
  const own = subscriptionOf(c.db, userId);
  const r = plan.row;
  const bp = c.blueprint();
  return {
    plan: {
      tier: plan.tier ? tierView(plan.tier, true) : null,
      status: plan.status,
      via: plan.via,
      seats: r && plan.via !== 'free' ? r.seats : 1,
      method: r?.method ?? null,
      current_period_start: plan.via !== 'free' ? iso(r?.current_period_start ?? null) : null,
      current_period_end: plan.via !== 'free' ? iso(r?.current_period_end ?? null) : null,
      cancel_at_period_end: plan.via !== 'free' && r?.cancel_at_period_end === 1,
      trial_end: plan.via !== 'free' ? iso(r?.trial_end ?? null) : null,
      grace_ends_at: iso(plan.graceEndsAt),
      // What the user's own row says (e.g. past due beyond the grace period, a checkout open).
      subscription: own ? { tier: own.tier_id, status: own.status } : null,
      manageable: own?.stripe_customer != null,
    },
    limits: {
      requests_per_day: finite(limitOf(plan.tier, 'requests_per_day')),
      agents: finite(limitOf(plan.tier, 'agents')),
      seats: finite(limitOf(plan.tier, 'seats')),
    },
    usage: { requests_today: requestsToday(c, userId, meter), agents: agentsOwnedBy(c.db, userId) },
    members: own
      ? teamMembers(c.db, userId).map((m) => ({ user_id: m.user_id, added_at: iso(m.added_at) }))
      : [],
    tiers: bp.monetization.subscription_tiers.map((t) => tierView(t, t.id === plan.tier?.id)),
    pricing_strategy: bp.monetization.pricing_strategy,
    grace_days: graceDays(c),
    card_payments: stripeFor(c) !== null,
    invoices: invoicesOf(c.db, userId, 24).map((i) => ({
      id: i.invoice_id,
      tier: i.tier_id,
      amount_minor: i.amount_minor,
      currency: i.currency,
      paid_at: iso(i.posted_at),
    })),
  };
}

const blank = (c: PlatformRequestContext, userId: string, tierId: string): SubscriptionRow => {
  const now = c.app.clock.now();
  return {
    user_id: userId,
    tier_id: tierId,
    status: 'incomplete',
    method: 'stripe',
    seats: 1,
    current_period_start: null,
    current_period_end: null,
    cancel_at_period_end: 0,
    stripe_customer: null,
    stripe_subscription: null,
    checkout_session: null,
    past_due_since: null,
    trial_end: null,
    set_by: null,
    created_at: now,
    updated_at: now,
  };
};

function seatsFor(tier: SubscriptionTier, seats: number | undefined): number {
  const n = seats ?? 1;
  const max = limitOf(tier, 'seats');
  if (!Number.isInteger(n) || n < 1 || n > max)
    throw new AppError(
      'billing.invalid',
      `seats: from 1 to ${finite(max) ?? 'any number'} on ${tier.name}`,
      400,
      [{ path: '/seats', reason: `from 1 to ${finite(max) ?? 'any'}` }],
    );
  return n;
}

/**
 * Subscribes the user to `tierId`: 201 `{checkout_url}` for a paid tier; the free tier at once
 * (200 with the plan). 409 when the user already has a paid subscription (change it with PATCH).
 */
export async function subscribe(
  c: PlatformRequestContext,
  tierId: string,
  seatsAsked?: number,
): Promise<{ status: number; body: unknown }> {
  const userId = userOf(c);
  const tier = tierById(c, tierId);
  const seats = seatsFor(tier, seatsAsked);
  // A checkout still in flight: paid meanwhile, it is synced first; open, it is given again for
  // the same tier and seats, else expired (two open checkouts could make two subscriptions).
  const before = subscriptionOf(c.db, userId);
  const account = stripeFor(c);
  if (before?.status === 'incomplete' && before.checkout_session && account) {
    const open = await account.client.checkout.sessions.retrieve(before.checkout_session);
    if (open.status === 'complete') await syncCheckoutSession(c, open.id);
    else if (open.status === 'open') {
      if (open.metadata?.tier_id === tier.id && before.seats === seats && open.url)
        return { status: 201, body: { checkout_url: open.url, session_id: open.id } };
      await account.client.checkout.sessions.expire(open.id);
    }
  }
  const cur = subscriptionOf(c.db, userId);
  const live = cur && LIVE.includes(cur.status) && cur.tier_id !== freeTier(c.blueprint())?.id;
  if (live)
    throw new AppError(
      'billing.subscription_exists',
      cur.status === 'past_due'
        ? `your ${cur.tier_id} subscription is past due: update your payment method (POST /api/v1/billing/portal)`
        : `you are subscribed to ${cur.tier_id}: change tier with PATCH /api/v1/billing/subscription, or cancel it`,
      409,
    );
  if (tier.price.amount === 0) {
    if (cur && cur.method === 'stripe' && cur.status === 'incomplete')
      saveSubscription(c.db, {
        ...cur,
        status: 'canceled',
        checkout_session: null,
        updated_at: c.app.clock.now(),
      });
    return { status: 200, body: subscriptionView(c, userId) };
  }
  const stripe = card(c);
  const now = c.app.clock.now();
  const metadata = { platform_id: c.platform.id, user_id: userId, tier_id: tier.id };
  let customer = cur?.stripe_customer ?? null;
  if (!customer) {
    const email = createUserRepository({ db: c.db }).byId(userId)?.email;
    const made = await stripe.client.customers.create(
      { ...(email ? { email } : {}), metadata: { platform_id: c.platform.id, user_id: userId } },
      { idempotencyKey: `cus:${c.platform.id}:${userId}` },
    );
    customer = made.id;
    recordStripeObject(c.app.control, customer, c.platform.id, now);
  }
  const trialDays = c.app.config.billing?.trial_days ?? 0;
  const trial = trialDays > 0 && !cur?.stripe_subscription;
  const key = `sco:${newId('sub')}`;
  const back = (path: string) => new URL(path, c.origin).toString();
  const s = await stripe.client.checkout.sessions.create(
    {
      mode: 'subscription',
      customer,
      line_items: [
        {
          quantity: seats,
          price_data: {
            currency: tier.price.currency,
            unit_amount: tier.price.amount,
            recurring: { interval: tier.interval },
            product_data: {
              name: `${c.blueprint().identity.name || c.platform.slug}: ${tier.name}`.slice(0, 250),
            },
          },
        },
      ],
      client_reference_id: userId,
      metadata,
      subscription_data: { metadata, ...(trial ? { trial_period_days: trialDays } : {}) },
      success_url: back('/app/billing?subscription=success'),
      cancel_url: back('/app/pricing?subscription=cancel'),
    },
    { idempotencyKey: key },
  );
  recordStripeObject(c.app.control, s.id, c.platform.id, now);
  saveSubscription(c.db, {
    ...(cur ?? blank(c, userId, tier.id)),
    tier_id: tier.id,
    status: 'incomplete',
    method: 'stripe',
    seats,
    stripe_customer: customer,
    stripe_subscription: cur?.status === 'canceled' ? cur.stripe_subscription : null,
    checkout_session: s.id,
    past_due_since: null,
    cancel_at_period_end: 0,
    set_by: null,
    updated_at: now,
  });
  return { status: 201, body: { checkout_url: s.url, session_id: s.id } };
}

/** Stripe's subscription status as this platform keeps it. */
function statusOf(s: Stripe.Subscription.Status): SubscriptionStatus {
  switch (s as string) {
    case 'active':
    case 'trialing':
    case 'past_due':
    case 'incomplete':
    case 'canceled':
      return s as SubscriptionStatus;
    case 'unpaid':
      return 'past_due';
    default:
      // incomplete_expired, paused: nothing to entitle.
      return 'canceled';
  }
}

const idOf = (x: string | { id: string } | null | undefined) => (typeof x === 'string' ? x : (x?.id ?? null));

/**
 * Writes the user's row from a subscription as Stripe has it now (retrieved, not an event's
 * copy). The user is the row that holds the subscription, else the one its metadata names (for
 * this platform). Idempotent: the same state writes the same row. Answers the row, or null
 * when the subscription is not one of this platform's users'.
 */
export async function applySubscription(
  c: PlatformRequestContext,
  sub: Stripe.Subscription,
): Promise<SubscriptionRow | null> {
  const md = sub.metadata ?? {};
  const held = subscriptionByStripeId(c.db, sub.id);
  const userId = held?.user_id ?? (md.platform_id === c.platform.id ? md.user_id : undefined);
  if (!userId || !createUserRepository({ db: c.db }).byId(userId)) return null;
  const now = c.app.clock.now();
  const cur = subscriptionOf(c.db, userId) ?? blank(c, userId, md.tier_id ?? '');
  // The row follows the user's current subscription: one it does not hold is taken only when
  // the row holds none, or when it is the subscription of the user's latest checkout (an older
  // subscription's late events change nothing).
  if (!held && cur.stripe_subscription && cur.stripe_subscription !== sub.id) {
    const session = cur.checkout_session
      ? await card(c).client.checkout.sessions.retrieve(cur.checkout_session)
      : null;
    if (idOf(session?.subscription) !== sub.id) return cur;
  }
  const status = statusOf(sub.status);
  const item = sub.items.data[0];
  const tierId = md.tier_id || cur.tier_id;
  const next: SubscriptionRow = {
    ...cur,
    tier_id: tierId,
    status,
    method: 'stripe',
    seats: item?.quantity ?? cur.seats,
    current_period_start: ms(item?.current_period_start),
    current_period_end: ms(item?.current_period_end),
    cancel_at_period_end: sub.cancel_at_period_end ? 1 : 0,
    stripe_customer: idOf(sub.customer) ?? cur.stripe_customer,
    stripe_subscription: sub.id,
    past_due_since:
      status === 'past_due' ? (cur.status === 'past_due' ? (cur.past_due_since ?? now) : now) : null,
    trial_end: ms(sub.trial_end),
    set_by: null,
  };
  const changed = (Object.keys(next) as (keyof SubscriptionRow)[]).some(
    (k) => k !== 'updated_at' && next[k] !== cur[k],
  );
  if (!changed) return cur;
  c.db.transaction(() => {
    saveSubscription(c.db, { ...next, updated_at: now });
    if (cur.status !== next.status || cur.tier_id !== next.tier_id)
      c.app.audit.append(c.db, {
        actor: 'stripe',
        action: 'billing.subscription_changed',
        target: `user:${userId}`,
        details: { tier: next.tier_id, status: next.status, was: { tier: cur.tier_id, status: cur.status } },
      });
  })();
  recordStripeObject(c.app.control, sub.id, c.platform.id, now);
  if (next.stripe_customer) recordStripeObject(c.app.control, next.stripe_customer, c.platform.id, now);
  return subscriptionOf(c.db, userId);
}

/** Retrieves a subscription from Stripe and applies it. */
/** Syncs in flight, per platform and subscription (each waits for the one before it). */
const syncing = new Map<string, Promise<SubscriptionRow | null>>();

/**
 * Retrieves a subscription from Stripe and applies it. Syncs of one subscription run one after
 * another (webhooks may come at once): a sync that started later retrieves later and writes
 * later, so an older state is never written over a newer one.
 */
export function syncSubscription(c: PlatformRequestContext, id: string): Promise<SubscriptionRow | null> {
  const key = `${c.platform.id} ${id}`;
  const before = syncing.get(key) ?? Promise.resolve(null);
  const next = before
    .catch(() => null)
    .then(async () => applySubscription(c, await card(c).client.subscriptions.retrieve(id)));
  syncing.set(key, next);
  const done = () => {
    if (syncing.get(key) === next) syncing.delete(key);
  };
  next.then(done, done);
  return next;
}

/** The subscription an invoice is for (its parent's, in current API versions). */
export function subscriptionOfInvoice(inv: Stripe.Invoice): string | null {
  const legacy = (inv as unknown as { subscription?: string | { id: string } | null }).subscription;
  return idOf(inv.parent?.subscription_details?.subscription) ?? idOf(legacy);
}

const money = (amount: bigint, currency: string) =>
  dinero({ amount, currency: { code: currency.toUpperCase(), base: 10n, exponent: 2n } });

/** A paid subscription invoice's linked chain (see the module's comment). */
export function invoiceChain(
  invoiceId: string,
  userId: string,
  tierId: string,
  amountMinor: number,
  currency: string,
  operatorFeePercent: number,
): TransferSpec[] {
  const amount = BigInt(amountMinor) * MICRO;
  const fee = BigInt(Math.round(operatorFeePercent * 100));
  const [operator] = allocate(money(amount, currency), [fee, 10_000n - fee]).map(
    (d) => toSnapshot(d).amount,
  ) as [bigint, bigint];
  const user = accountId('end_user', userId, currency);
  const platform = accountId('platform', '', currency);
  const t = (leg: string, debit: string, credit: string, amt: bigint, code: string, ref: string) => ({
    id: `${invoiceId}:${leg}`,
    debit,
    credit,
    amount: amt,
    currency,
    code,
    ref,
  });
  return [
    t('payment', accountId('processor', '', currency), user, amount, 'payment', invoiceId),
    t('subscription', user, platform, amount, 'subscription', tierId),
    t('fee', platform, accountId('operator', '', currency), operator, 'fee', tierId),
  ];
}

/**
 * A refund of `amountMinor` of a paid invoice as one chain: each leg of `invoiceChain` reversed by
 * its share of the refund (the fee split as it was posted). `refundKey` makes it idempotent
 * (what was refunded in all after it).
 */
export function invoiceRefundChain(
  invoiceId: string,
  refundKey: string,
  userId: string,
  tierId: string,
  amountMinor: number,
  currency: string,
  operatorFeePercent: number,
): TransferSpec[] {
  return invoiceChain(invoiceId, userId, tierId, amountMinor, currency, operatorFeePercent).map((t) => ({
    ...t,
    id: `${t.id}:${refundKey}`,
    debit: t.credit,
    credit: t.debit,
    code: 'refund',
  }));
}

/**
 * Applies a refund of a subscription invoice's charge as Stripe reports it (`refundedMinor`:
 * refunded in all): the part beyond what the ledger has is posted as the reversed legs, in one
 * chain, so an event twice, an older one or one out of order posts nothing more. The user's
 * subscription itself follows Stripe's subscription events (a refund does not cancel it).
 */
export function applyInvoiceRefund(
  c: PlatformRequestContext,
  invoiceId: string,
  refundedMinor: number,
): boolean {
  const now = c.app.clock.now();
  return c.db.transaction(() => {
    const inv = findSubscriptionInvoice(c.db, invoiceId);
    if (!inv) return false;
    const total = Math.min(refundedMinor, inv.amount_minor);
    const delta = total - (inv.refunded_minor ?? 0);
    if (delta <= 0) return false;
    post(
      c.db,
      invoiceRefundChain(
        inv.invoice_id,
        `re${total}`,
        inv.user_id,
        inv.tier_id,
        delta,
        inv.currency,
        inv.fee_percent,
      ),
      now,
    );
    setInvoiceRefunded(c.db, inv.invoice_id, total);
    c.app.audit.append(c.db, {
      actor: 'stripe',
      action: 'billing.subscription_refunded',
      target: `user:${inv.user_id}`,
      details: {
        invoice: inv.invoice_id,
        refunded_minor: total,
        this_refund_minor: delta,
        currency: inv.currency,
      },
    });
    return true;
  })();
}

/** The payment intent that paid an invoice (the invoice's default payment). */
const paymentIntentOfInvoice = (inv: Stripe.Invoice): string | null => {
  const pays = (
    inv as { payments?: { data?: { payment?: { payment_intent?: string | { id: string } | null } }[] } }
  ).payments?.data;
  const pi = pays?.find((p) => p.payment?.payment_intent)?.payment?.payment_intent;
  return typeof pi === 'string' ? pi : (pi?.id ?? null);
};

/**
 * Posts a paid invoice to the ledger once (the invoice retrieved from Stripe: paid, amount above
 * 0, for a subscription of this platform's). Answers whether it posted now.
 */
export async function postInvoice(c: PlatformRequestContext, invoiceId: string): Promise<boolean> {
  const stripe = card(c);
  const inv = await stripe.client.invoices.retrieve(invoiceId, { expand: ['payments'] });
  if (inv.status !== 'paid' || inv.amount_paid <= 0 || !inv.id) return false;
  const pi = paymentIntentOfInvoice(inv);
  const subId = subscriptionOfInvoice(inv);
  if (!subId) return false;
  const row = subscriptionByStripeId(c.db, subId) ?? (await syncSubscription(c, subId));
  if (!row || row.stripe_subscription !== subId) return false;
  const tierId = inv.parent?.subscription_details?.metadata?.tier_id || row.tier_id;
  const currency = inv.currency.toLowerCase();
  const now = c.app.clock.now();
  const fee = termsOf(c).operatorFee;
  const id = inv.id;
  const posted = c.db.transaction(() => {
    const fresh = markInvoicePosted(c.db, {
      invoice_id: id,
      user_id: row.user_id,
      tier_id: tierId,
      amount_minor: inv.amount_paid,
      currency,
      posted_at: now,
      payment_intent: pi,
      fee_percent: fee,
    });
    if (!fresh) return false;
    // Its charge's later events (a refund) are routed to this platform by the payment intent.
    if (pi) recordStripeObject(c.app.control, pi, c.platform.id, now);
    openAccount(c.db, { kind: 'processor', currency }, now);
    openAccount(c.db, { kind: 'end_user', owner: row.user_id, currency }, now);
    openAccount(c.db, { kind: 'platform', currency }, now);
    openAccount(c.db, { kind: 'operator', currency }, now);
    post(c.db, invoiceChain(id, row.user_id, tierId, inv.amount_paid, currency, fee), now);
    c.app.audit.append(c.db, {
      actor: 'stripe',
      action: 'billing.subscription_paid',
      target: `user:${row.user_id}`,
      details: {
        invoice: id,
        tier: tierId,
        amount_minor: inv.amount_paid,
        currency,
        operator_fee_percent: fee,
      },
    });
    return true;
  })();
  // A refund Stripe reported before the invoice was posted here: applied now, from the charge.
  if (posted && pi) {
    const intent = await stripe.client.paymentIntents.retrieve(pi);
    const charge = typeof intent.latest_charge === 'string' ? intent.latest_charge : intent.latest_charge?.id;
    if (charge) {
      const ch = await stripe.client.charges.retrieve(charge);
      if (ch.amount_refunded > 0) applyInvoiceRefund(c, id, ch.amount_refunded);
    }
  }
  return posted;
}

/** Back from the checkout (`?subscription=success`): the session, subscription and invoice checked with Stripe. */
export async function returnFromCheckout(c: PlatformRequestContext, meter?: Meter) {
  const userId = userOf(c);
  const row = subscriptionOf(c.db, userId);
  if (row?.checkout_session && stripeFor(c)) await syncCheckoutSession(c, row.checkout_session);
  return subscriptionView(c, userId, meter);
}

/** A subscription checkout's session retrieved: its subscription applied and its first invoice posted. */
export async function syncCheckoutSession(c: PlatformRequestContext, sessionId: string): Promise<boolean> {
  const stripe = card(c);
  const s = await stripe.client.checkout.sessions.retrieve(sessionId);
  if (s.mode !== 'subscription') return false;
  const subId = idOf(s.subscription);
  if (s.status !== 'complete' || !subId) return false;
  const row = await syncSubscription(c, subId);
  const inv = idOf(s.invoice);
  if (row && inv) await postInvoice(c, inv);
  return row !== null;
}

function ownLive(
  c: PlatformRequestContext,
  userId: string,
): SubscriptionRow & { stripe_subscription: string } {
  const row = subscriptionOf(c.db, userId);
  if (!row || !LIVE.includes(row.status))
    throw new AppError('billing.no_subscription', 'you have no paid subscription: subscribe first', 409);
  if (row.method !== 'stripe' || !row.stripe_subscription)
    throw new AppError('billing.subscription_manual', 'an admin set your plan: ask them to change it', 409);
  return row as SubscriptionRow & { stripe_subscription: string };
}

/** Changes tier now, with proration (up or down; see the module's comment). */
export async function changeTier(c: PlatformRequestContext, tierId: string, meter?: Meter) {
  const userId = userOf(c);
  const tier = tierById(c, tierId);
  const row = ownLive(c, userId);
  if (tier.price.amount === 0)
    throw new AppError(
      'billing.invalid',
      'tier: to go back to the free tier, cancel your subscription',
      400,
      [{ path: '/tier', reason: 'the free tier: cancel instead' }],
    );
  if (row.tier_id === tier.id) return subscriptionView(c, userId, meter);
  seatsFor(tier, row.seats);
  const stripe = card(c);
  const sub = await stripe.client.subscriptions.retrieve(row.stripe_subscription);
  const item = sub.items.data[0];
  if (!item) throw new AppError('billing.stripe_state', 'the subscription has no item to change', 409);
  const key = `sch:${newId('sub')}`;
  const product = await stripe.client.products.create(
    { name: `${c.blueprint().identity.name || c.platform.slug}: ${tier.name}`.slice(0, 250) },
    { idempotencyKey: `${key}:product` },
  );
  const updated = await stripe.client.subscriptions.update(
    sub.id,
    {
      items: [
        {
          id: item.id,
          quantity: row.seats,
          price_data: {
            currency: tier.price.currency,
            product: product.id,
            unit_amount: tier.price.amount,
            recurring: { interval: tier.interval },
          },
        },
      ],
      proration_behavior: 'create_prorations',
      metadata: { ...sub.metadata, tier_id: tier.id },
    },
    { idempotencyKey: key },
  );
  await syncSubscription(c, updated.id);
  return subscriptionView(c, userId, meter);
}

/** Cancels at the period's end (the tier kept until then) or now. */
export async function cancelSubscription(c: PlatformRequestContext, at: 'period_end' | 'now', meter?: Meter) {
  const userId = userOf(c);
  const row = subscriptionOf(c.db, userId);
  if (row && row.method === 'manual' && LIVE.includes(row.status)) {
    saveSubscription(c.db, { ...row, status: 'canceled', updated_at: c.app.clock.now() });
    return subscriptionView(c, userId, meter);
  }
  const live = ownLive(c, userId);
  const stripe = card(c);
  const sub =
    at === 'now'
      ? await stripe.client.subscriptions.cancel(live.stripe_subscription)
      : await stripe.client.subscriptions.update(
          live.stripe_subscription,
          { cancel_at_period_end: true },
          { idempotencyKey: `scc:${newId('sub')}` },
        );
  await syncSubscription(c, sub.id);
  return subscriptionView(c, userId, meter);
}

/** A Billing Portal session for the user's Stripe customer (payment methods, invoices). */
export async function portalLink(c: PlatformRequestContext) {
  const userId = userOf(c);
  const row = subscriptionOf(c.db, userId);
  if (!row?.stripe_customer)
    throw new AppError('billing.no_subscription', 'you have no Stripe customer yet: subscribe first', 409);
  const s = await card(c).client.billingPortal.sessions.create({
    customer: row.stripe_customer,
    return_url: new URL('/app/billing', c.origin).toString(),
  });
  return { url: s.url };
}

/** An admin sets a user's tier by hand (no Stripe, or paid another way); audited. */
export function setTierByHand(
  c: PlatformRequestContext,
  userId: string,
  b: { tier: string; seats?: number; note: string },
) {
  if (!createUserRepository({ db: c.db }).byId(userId))
    throw new AppError('billing.user_not_found', 'no such user on this platform', 404);
  const tier = tierById(c, b.tier);
  const seats = seatsFor(tier, b.seats);
  if (!b.note.trim())
    throw new AppError('billing.invalid', 'note: say why (how it was paid)', 400, [
      { path: '/note', reason: 'required' },
    ]);
  const cur = subscriptionOf(c.db, userId);
  if (cur?.method === 'stripe' && cur.stripe_subscription && LIVE.includes(cur.status))
    throw new AppError(
      'billing.subscription_stripe',
      `this user pays for ${cur.tier_id} through Stripe: they change or cancel it there`,
      409,
    );
  const now = c.app.clock.now();
  const by = actorOf(c.principal);
  c.db.transaction(() => {
    saveSubscription(c.db, {
      ...(cur ?? blank(c, userId, tier.id)),
      tier_id: tier.id,
      status: 'active',
      method: 'manual',
      seats,
      current_period_start: now,
      current_period_end: null,
      cancel_at_period_end: 0,
      checkout_session: null,
      past_due_since: null,
      trial_end: null,
      set_by: by,
      updated_at: now,
    });
    c.app.audit.append(c.db, {
      actor: by,
      action: 'billing.subscription_set',
      target: `user:${userId}`,
      details: {
        tier: tier.id,
        seats,
        note: b.note,
        was: cur ? { tier: cur.tier_id, status: cur.status } : null,
      },
    });
  })();
  return { subscription: adminView(subscriptionOf(c.db, userId)!) };
}

const adminView = (r: SubscriptionRow) => ({
  user_id: r.user_id,
  tier: r.tier_id,
  status: r.status,
  method: r.method,
  seats: r.seats,
  current_period_end: iso(r.current_period_end),
  cancel_at_period_end: r.cancel_at_period_end === 1,
  past_due_since: iso(r.past_due_since),
  set_by: r.set_by,
  updated_at: iso(r.updated_at),
});

export function allSubscriptions(c: PlatformRequestContext) {
  return { subscriptions: listSubscriptions(c.db, 500).map(adminView) };
}

/** Adds a member to the user's team subscription: 402 when its seats are all taken. */
export function addMember(c: PlatformRequestContext, memberId: string, meter?: Meter) {
  const ownerId = userOf(c);
  const plan = planOf(c, ownerId);
  if (plan.via !== 'own' || !plan.row || plan.tier?.price.amount === 0)
    throw new AppError(
      'billing.no_subscription',
      'you have no paid subscription to share: subscribe first',
      409,
    );
  if (memberId === ownerId)
    throw new AppError('billing.invalid', 'user_id: you are covered already', 400, [
      { path: '/user_id', reason: 'yourself' },
    ]);
  if (!createUserRepository({ db: c.db }).byId(memberId))
    throw new AppError('billing.user_not_found', 'user_id: no such user on this platform', 404, [
      { path: '/user_id', reason: 'no such user' },
    ]);
  const other = teamOwnerOf(c.db, memberId);
  if (other)
    throw new AppError(
      'billing.member_taken',
      other === ownerId ? 'user_id: already a member' : "user_id: already on another's subscription",
      409,
      [{ path: '/user_id', reason: 'already a member' }],
    );
  const seats = Math.min(plan.row.seats, limitOf(plan.tier, 'seats'));
  const used = 1 + teamMembers(c.db, ownerId).length;
  if (used >= seats) {
    const e = new AppError(
      'billing.payment_required',
      `seats: your subscription covers ${seats} ${seats === 1 ? 'person' : 'people'}, all taken: buy more seats or upgrade`,
      402,
      [{ path: '/seats', reason: `at most ${seats}` }],
    ).with({ limit: 'seats', limit_value: seats, used });
    const up = upgradeFor(c, 'seats', used);
    throw up ? e.with({ upgrade_tier: up.id, upgrade_url: new URL('/app/pricing', c.origin).toString() }) : e;
  }
  addTeamMember(c.db, ownerId, memberId, c.app.clock.now());
  return subscriptionView(c, ownerId, meter);
}

/** The owner removes a member, or a member leaves (their own id). */
export function removeMember(c: PlatformRequestContext, memberId: string, meter?: Meter) {
  const me = userOf(c);
  const ownerId = memberId === me ? (teamOwnerOf(c.db, me) ?? me) : me;
  if (!removeTeamMember(c.db, ownerId, memberId))
    throw new AppError('billing.member_not_found', 'not a member of your subscription', 404);
  return subscriptionView(c, me, meter);
}
