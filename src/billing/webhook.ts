/**
 * Stripe's webhook events (issue 13 item 6). Both endpoints verify `Stripe-Signature` with the
 * SDK (`webhooks.constructEvent` over the raw body, its default tolerance of 300 s): a missing,
 * forged or stale signature answers 400 `billing.signature_invalid` and nothing else happens.
 * An event is applied once per platform (stripe_events, by event id, marked once applied): a
 * duplicate or a replay answers 200 and changes nothing. What an event means is read from Stripe's state, not from
 * the order events arrive in: a completed checkout is fulfilled from the session retrieved; a
 * refund posts what the charge says was refunded in all beyond what the ledger has; a
 * subscription's events (checkout, invoices, `customer.subscription.*`) write the user's plan
 * from the subscription retrieved, and a paid invoice posts its chain once
 * (subscriptions.service.ts).
 *
 * The operator's endpoint (`/_operator/api/billing/stripe/webhook`) serves every platform: the
 * object's platform comes from stripe_objects (recorded when the checkout was made and
 * fulfilled). The platform's endpoint (`/api/v1/billing/stripe/webhook`, for a platform with its
 * own Stripe account later) applies only events of its own platform.
 */
import type Stripe from 'stripe';
import type { App } from '../app/index.ts';
import type { PlatformRequestContext } from '../identity/index.ts';
import { AppError } from '../shared/errors.ts';
import { syncTopup } from './credits.service.ts';
import { syncConnectAccount } from './payouts.service.ts';
import {
  findPurchase,
  markStripeEvent,
  purchaseByPaymentIntent,
  purchaseBySession,
  stripeEventSeen,
  topupBySession,
} from './purchases.repository.ts';
import { applyRefund, syncCheckout } from './purchases.service.ts';
import { type StripeAccount, stripeAccount, stripeFor } from './stripe.ts';
import { platformOfStripeObject } from './stripe-objects.repository.ts';
import { subscriptionBySession, subscriptionInvoiceByPaymentIntent } from './subscriptions.repository.ts';
import {
  applyInvoiceRefund,
  postInvoice,
  subscriptionOfInvoice,
  syncCheckoutSession,
  syncSubscription,
} from './subscriptions.service.ts';

/**
 * The event, verified with `stripe`'s signing secret (the operator's account, or a platform's
 * own); 400 when the signature is missing, forged or stale, 404 when there is no account.
 */
export async function verifiedEvent(
  stripe: StripeAccount | null,
  raw: string,
  signature: string | null,
): Promise<Stripe.Event> {
  if (!stripe)
    throw new AppError(
      'billing.stripe_disabled',
      'this instance has no Stripe account (billing.stripe)',
      404,
    );
  if (!signature)
    throw new AppError('billing.signature_invalid', 'Stripe-Signature: missing', 400, [
      { path: '/headers/stripe-signature', reason: 'missing' },
    ]);
  try {
    return await stripe.client.webhooks.constructEventAsync(raw, signature, stripe.webhookSecret);
  } catch {
    throw new AppError(
      'billing.signature_invalid',
      'Stripe-Signature: does not verify (forged, altered or stale)',
      400,
      [{ path: '/headers/stripe-signature', reason: 'does not verify' }],
    );
  }
}

type Ref = string | { id: string } | null | undefined;
const refId = (x: Ref) => (typeof x === 'string' ? x : (x?.id ?? undefined));

/**
 * The Stripe object an event is about, and the ids to route it by: the object, its payment
 * intent, its subscription (an invoice's, a checkout's) and its customer.
 */
function subjectIds(e: Stripe.Event): string[] {
  const o = e.data.object as {
    id?: string;
    object?: string;
    payment_intent?: Ref;
    subscription?: Ref;
    customer?: Ref;
  };
  const sub = o.object === 'invoice' ? subscriptionOfInvoice(o as Stripe.Invoice) : refId(o.subscription);
  return [o.id, refId(o.payment_intent), sub, refId(o.customer)].filter(
    (x): x is string => typeof x === 'string',
  );
}

/**
 * The platform this instance named in a subscription's metadata (set at checkout): on the
 * subscription, the checkout session, or an invoice's copy of its subscription's. The event is
 * signed, so its metadata is what this instance set.
 */
function platformInMetadata(e: Stripe.Event): string | null {
  const o = e.data.object as {
    object?: string;
    metadata?: Record<string, string> | null;
    parent?: { subscription_details?: { metadata?: Record<string, string> | null } | null } | null;
  };
  if (o.object === 'invoice') return o.parent?.subscription_details?.metadata?.platform_id ?? null;
  if (o.object === 'subscription' || o.object === 'checkout.session') return o.metadata?.platform_id ?? null;
  return null;
}

/** The payment intent an event's object belongs to, if any. */
function paymentIntentOf(e: Stripe.Event): string | null {
  const o = e.data.object as {
    object?: string;
    id?: string;
    payment_intent?: string | { id: string } | null;
  };
  if (o.object === 'payment_intent') return o.id ?? null;
  return typeof o.payment_intent === 'string' ? o.payment_intent : (o.payment_intent?.id ?? null);
}

/**
 * Which platform an event is for (null: not one of ours, acknowledged and ignored): from the
 * objects recorded at checkout and fulfilment, or, for a payment not fulfilled yet (its events
 * arrived first), from the metadata this instance set on its payment intent, read from Stripe.
 */
export async function platformOfEvent(app: App, e: Stripe.Event): Promise<string | null> {
  for (const id of subjectIds(e)) {
    const p = platformOfStripeObject(app.control, id);
    if (p) return p;
  }
  const named = platformInMetadata(e);
  if (named) return named;
  const pi = paymentIntentOf(e);
  const stripe = stripeAccount(app.config);
  if (!pi || !stripe) return null;
  const intent = await stripe.client.paymentIntents.retrieve(pi);
  return intent.metadata?.platform_id ?? null;
}

export type Applied = 'applied' | 'duplicate' | 'ignored';

/** Applies a verified event to the platform of `c` (once). */
export async function applyEvent(c: PlatformRequestContext, e: Stripe.Event): Promise<Applied> {
  if (stripeEventSeen(c.db, e.id)) return 'duplicate';
  const r = await applyOnce(c, e);
  // Marked once applied: an event that failed half-way (Stripe unreachable) is retried by
  // Stripe and applied then; what it posts is idempotent either way.
  markStripeEvent(c.db, e.id, e.type, c.app.clock.now());
  return r;
}

async function applyOnce(c: PlatformRequestContext, e: Stripe.Event): Promise<Applied> {
  switch (e.type) {
    case 'checkout.session.completed':
    case 'checkout.session.async_payment_succeeded':
    case 'checkout.session.expired': {
      const p = purchaseBySession(c.db, e.data.object.id);
      if (p) {
        await syncCheckout(c, p);
        return 'applied';
      }
      if (e.data.object.mode === 'subscription' || subscriptionBySession(c.db, e.data.object.id))
        return (await syncCheckoutSession(c, e.data.object.id)) ? 'applied' : 'ignored';
      const t = topupBySession(c.db, e.data.object.id);
      if (!t) return 'ignored';
      await syncTopup(c, t);
      return 'applied';
    }
    case 'charge.refunded': {
      const ch = e.data.object;
      const pi = typeof ch.payment_intent === 'string' ? ch.payment_intent : ch.payment_intent?.id;
      let p = pi ? purchaseByPaymentIntent(c.db, pi) : null;
      if (!p && pi) {
        // Before the checkout was fulfilled, the purchase is known by the intent's metadata.
        const intent = await stripeFor(c)!.client.paymentIntents.retrieve(pi);
        const id = intent.metadata?.purchase_id;
        p = id ? findPurchase(c.db, id) : null;
      }
      if (!p) {
        // A subscription invoice's charge (its payment intent recorded when it was posted).
        const inv = pi ? subscriptionInvoiceByPaymentIntent(c.db, pi) : null;
        if (!inv) return 'ignored';
        const now = await stripeFor(c)!.client.charges.retrieve(ch.id);
        applyInvoiceRefund(c, inv.invoice_id, Math.max(now.amount_refunded, ch.amount_refunded));
        return 'applied';
      }
      // A refund reported before the checkout's own event: the sale is posted first.
      if (p.status === 'open') p = await syncCheckout(c, p);
      // What was refunded in all: the charge retrieved (a newer state than an old event's).
      const stripe = stripeFor(c)!;
      const now = await stripe.client.charges.retrieve(ch.id);
      applyRefund(c, p, Math.max(now.amount_refunded, ch.amount_refunded));
      return 'applied';
    }
    case 'invoice.paid':
    case 'invoice.payment_succeeded':
    case 'invoice.payment_failed': {
      // The invoice and its subscription as Stripe has them now: a paid one posts once.
      const subId = subscriptionOfInvoice(e.data.object);
      if (!subId) return 'ignored';
      const row = await syncSubscription(c, subId);
      if (!row) return 'ignored';
      if (e.type !== 'invoice.payment_failed' && e.data.object.id) await postInvoice(c, e.data.object.id);
      return 'applied';
    }
    case 'customer.subscription.created':
    case 'customer.subscription.updated':
    case 'customer.subscription.deleted':
    case 'customer.subscription.paused':
    case 'customer.subscription.resumed':
      return (await syncSubscription(c, e.data.object.id)) ? 'applied' : 'ignored';
    case 'account.updated': {
      // A creator's connected account (Connect): what Stripe says of it now, read from Stripe.
      const synced = await syncConnectAccount(c, e.data.object.id);
      return synced ? 'applied' : 'ignored';
    }
    default:
      return 'ignored';
  }
}
