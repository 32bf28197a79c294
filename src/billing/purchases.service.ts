/**
 * Buying a paid marketplace listing (issue 13 items 4, 6 and 7). A user who installs or forks
 * a listing with a one-time price and has not bought it gets 402 `billing.payment_required`
 * with `checkout_url`: a Stripe Checkout Session (mode payment) on the operator's account, made
 * through the official SDK with the purchase's id as idempotency key, its links from the
 * platform's stored public origin. The purchase is fulfilled from Stripe's own state (the
 * session retrieved), whichever comes first: the webhook (`checkout.session.completed`) or the
 * buyer's return (the install retried), so a lost, late or reordered event changes nothing.
 * Fulfilling posts the sale's linked transfers (creator, platform, operator: sales.ts) and
 * marks the purchase paid, in one transaction. Refunds post the reversed legs of what Stripe
 * says was refunded beyond what the ledger has. Without Stripe (air-gapped), the purchase
 * waits for an admin to record its payment by hand; the same ledger chain is posted.
 *
 * The operator's transaction fee comes from the platform's operator plan (issue 13 item 1:
 * operator-plans.ts); each purchase keeps the terms it was sold under.
 */
import type { PlatformRequestContext } from '../identity/index.ts';
import { actorOf } from '../identity/index.ts';
import { AppError } from '../shared/errors.ts';
import { newId } from '../shared/ids.ts';
import { maybeAutoTopup } from './auto-topup.ts';
import { checkLowBalance } from './credit-settings.ts';
import { creditBalance, userOf } from './credits.service.ts';
import { openAccount, post } from './ledger.ts';
import { operatorFeeOf } from './operator-plans.ts';
import {
  findPurchase,
  insertPurchase,
  listPurchases,
  openPurchase,
  type PurchaseRow,
  paidPurchase,
  updatePurchase,
} from './purchases.repository.ts';
import { refundChain, type Sale, type SaleTerms, saleAccounts, saleChain } from './sales.ts';
import { checkoutState, stripeFor } from './stripe.ts';
import { recordStripeObject } from './stripe-objects.repository.ts';

/**
 * The Starter plan's seeded transaction fee (product spec). Only a fallback: a platform's fee is
 * its operator plan's `transaction_fee_percent`.
 */
export const DEFAULT_TRANSACTION_FEE_PERCENT = 15;

const MICRO = 1_000_000n;

/** What the marketplace sells: a listing's price and who made it. */
export interface Sellable {
  listingId: string;
  version: number;
  title: string;
  priceModel: string;
  priceMinor: number;
  currency: string;
  creatorId: string;
}

/**
 * The split a sale on this platform gets now: the blueprint's shares, and the operator's fee
 * from the platform's operator plan (a purchase stores these terms, so a later plan change
 * applies to the next sale, never to a past one).
 */
export function termsOf(c: PlatformRequestContext): SaleTerms {
  const m = c.blueprint().monetization;
  return {
    creatorShare: m.creator_revenue_share,
    commission: m.marketplace_commission,
    operatorFee: operatorFeeOf(c.app, c.platform.id),
  };
}

const saleOf = (p: PurchaseRow): Sale => ({
  id: `sale:${p.id}`,
  amount: BigInt(p.amount_minor) * MICRO,
  currency: p.currency,
  creatorId: p.creator_id,
  source: p.method === 'credits' ? { kind: 'credits', userId: p.user_id } : { kind: 'processor' },
  terms: JSON.parse(p.terms) as SaleTerms,
  ref: p.listing_id,
});

/** Posts a purchase's sale and marks it paid, in one transaction; false if it was not open. */
function fulfil(
  c: PlatformRequestContext,
  p: PurchaseRow,
  paymentIntent: string | null,
  by: string,
): boolean {
  const now = c.app.clock.now();
  return c.db.transaction(() => {
    const fresh = findPurchase(c.db, p.id);
    if (fresh?.status !== 'open') return false;
    const sale = saleOf(fresh);
    for (const a of saleAccounts(sale)) openAccount(c.db, a, now);
    post(c.db, saleChain(sale), now);
    updatePurchase(c.db, p.id, { status: 'paid', payment_intent: paymentIntent }, now);
    c.app.audit.append(c.db, {
      actor: by,
      action: 'billing.purchase_paid',
      target: `purchase:${p.id}`,
      details: {
        listing: p.listing_id,
        amount_minor: p.amount_minor,
        currency: p.currency,
        method: p.method,
      },
    });
    return true;
  })();
}

/**
 * Checks Stripe for an open purchase's checkout and fulfils it if paid (the buyer's return, or
 * a webhook). Answers the purchase as it is afterwards.
 */
export async function syncCheckout(c: PlatformRequestContext, p: PurchaseRow): Promise<PurchaseRow> {
  const stripe = stripeFor(c);
  if (!stripe || p.status !== 'open' || !p.checkout_session) return p;
  const s = await checkoutState(c, stripe, p.checkout_session);
  if (s.state === 'paid') fulfil(c, p, s.paymentIntent, 'stripe');
  else if (s.state === 'expired') updatePurchase(c.db, p.id, { status: 'expired' }, c.app.clock.now());
  return findPurchase(c.db, p.id)!;
}

/**
 * Passes when the user has bought `item`; else answers 402 `billing.payment_required` with the
 * checkout to pay at (`checkout_url`, `purchase_id`), or, with no Stripe account, the purchase
 * an admin records the payment of.
 */
export async function requirePurchase(
  c: PlatformRequestContext,
  item: Sellable,
  payWith?: 'credits' | 'card',
): Promise<void> {
  const userId = userOf(c);
  if (item.priceModel === 'subscription')
    throw new AppError(
      'billing.payment_required',
      'subscriptions to listings open with the platform plans (not yet); ask the creator for a one-time price',
      402,
    );
  if (paidPurchase(c.db, userId, item.listingId)) return;
  const open = openPurchase(c.db, userId, item.listingId);
  if (open) {
    const now = await syncCheckout(c, open);
    if (now.status === 'paid') return;
  }
  const stripe = stripeFor(c);
  const at = c.app.clock.now();
  const row = (id: string, method: PurchaseRow['method'], session: string | null): PurchaseRow => ({
    id,
    user_id: userId,
    listing_id: item.listingId,
    version: item.version,
    creator_id: item.creatorId,
    amount_minor: item.priceMinor,
    currency: item.currency,
    terms: JSON.stringify(termsOf(c)),
    status: 'open',
    method,
    checkout_session: session,
    payment_intent: null,
    refunded_minor: 0,
    recorded_by: null,
    created_at: at,
    updated_at: at,
  });
  const price = `${(item.priceMinor / 100).toFixed(2)} ${item.currency.toUpperCase()}`;
  // With credits that cover it (unless a card was asked for): bought at once, from the credits.
  const covered = creditBalance(c, userId, item.currency) >= BigInt(item.priceMinor) * MICRO;
  if (payWith === 'credits' && !covered)
    throw new AppError('billing.credits_insufficient', `pay_with: your credits do not cover ${price}`, 402, [
      { path: '/pay_with', reason: 'not enough credits' },
    ]);
  if (payWith !== 'card' && covered) {
    const p = row(newId('pur'), 'credits', null);
    c.db.transaction(() => {
      insertPurchase(c.db, p);
      fulfil(c, p, null, actorOf(c.principal));
    })();
    // After the spend's transaction: the low-balance notice (one mail per crossing).
    checkLowBalance(c.app, c.db, userId, item.currency);
    await maybeAutoTopup(c.app, c.db, c.platform.id, userId, item.currency);
    return;
  }
  if (!stripe) {
    const p = openPurchase(c.db, userId, item.listingId) ?? row(newId('pur'), 'manual', null);
    if (!findPurchase(c.db, p.id)) insertPurchase(c.db, p);
    throw new AppError(
      'billing.payment_required',
      `this listing costs ${price}; this platform takes payments by hand: an admin records yours (purchase ${p.id})`,
      402,
    ).with({ purchase_id: p.id });
  }
  const reuse = open?.status === 'open' && open.method === 'stripe' ? open : null;
  let p = reuse;
  let url: string | null = null;
  if (reuse?.checkout_session) {
    const s = await stripe.client.checkout.sessions.retrieve(reuse.checkout_session);
    url = s.status === 'open' ? s.url : null;
    if (!url) updatePurchase(c.db, reuse.id, { status: 'expired' }, at);
  }
  if (!url) {
    const id = newId('pur');
    const back = (state: string) =>
      new URL(
        `/app/marketplace/${encodeURIComponent(item.listingId)}?checkout=${state}`,
        c.origin,
      ).toString();
    const metadata = { platform_id: c.platform.id, purchase_id: id, listing_id: item.listingId };
    const s = await stripe.client.checkout.sessions.create(
      {
        mode: 'payment',
        line_items: [
          {
            quantity: 1,
            price_data: {
              currency: item.currency,
              unit_amount: item.priceMinor,
              product_data: { name: item.title.slice(0, 250) },
            },
          },
        ],
        client_reference_id: id,
        metadata,
        payment_intent_data: { metadata },
        success_url: back('success'),
        cancel_url: back('cancel'),
      },
      { idempotencyKey: id },
    );
    recordStripeObject(c.app.control, s.id, c.platform.id, at);
    p = row(id, 'stripe', s.id);
    insertPurchase(c.db, p);
    url = s.url;
  }
  throw new AppError(
    'billing.payment_required',
    `this listing costs ${price}: pay at the checkout, then install it`,
    402,
  ).with({ checkout_url: url ?? '', purchase_id: p!.id });
}

/** An admin records a purchase's payment by hand (no Stripe, or paid another way). */
export function recordPayment(c: PlatformRequestContext, purchaseId: string, note: string) {
  const p = findPurchase(c.db, purchaseId);
  if (!p) throw new AppError('billing.purchase_not_found', 'no such purchase', 404);
  if (p.status !== 'open')
    throw new AppError('billing.purchase_closed', `purchase ${p.id} is ${p.status}, not open`, 409);
  if (!note.trim())
    throw new AppError('billing.invalid', 'note: say how it was paid', 400, [
      { path: '/note', reason: 'required' },
    ]);
  c.db.transaction(() => {
    updatePurchase(c.db, p.id, { recorded_by: actorOf(c.principal) }, c.app.clock.now());
    fulfil(c, { ...p, status: 'open' }, null, actorOf(c.principal));
  })();
  return { purchase: purchaseView(findPurchase(c.db, p.id)!) };
}

/**
 * Applies a refund Stripe reports: `refundedMinor` is what the charge says was refunded in all;
 * the ledger posts the part it has not posted yet (reversed legs, one chain), so a repeated or
 * older event posts nothing. A whole refund marks the purchase refunded.
 */
export function applyRefund(c: PlatformRequestContext, p: PurchaseRow, refundedMinor: number): boolean {
  const now = c.app.clock.now();
  return c.db.transaction(() => {
    const fresh = findPurchase(c.db, p.id)!;
    if (fresh.status !== 'paid' && fresh.status !== 'refunded') return false;
    const total = Math.min(refundedMinor, fresh.amount_minor);
    const delta = total - fresh.refunded_minor;
    if (delta <= 0) return false;
    post(c.db, refundChain(saleOf(fresh), `re${total}`, BigInt(delta) * MICRO), now);
    updatePurchase(
      c.db,
      p.id,
      { refunded_minor: total, status: total >= fresh.amount_minor ? 'refunded' : 'paid' },
      now,
    );
    c.app.audit.append(c.db, {
      actor: 'stripe',
      action: 'billing.purchase_refunded',
      target: `purchase:${p.id}`,
      details: { refunded_minor: total, this_refund_minor: delta, currency: fresh.currency },
    });
    return true;
  })();
}

export const purchaseView = (p: PurchaseRow) => ({
  id: p.id,
  listing_id: p.listing_id,
  version: p.version,
  user_id: p.user_id,
  amount_minor: p.amount_minor,
  currency: p.currency,
  status: p.status,
  method: p.method,
  refunded_minor: p.refunded_minor,
  created_at: new Date(p.created_at).toISOString(),
});

/** The signed-in user's purchases, or (billing:read) everyone's. */
export function purchasesOf(c: PlatformRequestContext, all: boolean) {
  const rows = listPurchases(c.db, { ...(all ? {} : { userId: userOf(c) }), limit: 200 });
  return { purchases: rows.map(purchaseView) };
}
