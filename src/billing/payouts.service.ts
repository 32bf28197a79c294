/**
 * Creator payouts through Stripe Connect (issue 13 item 6), with separate charges and
 * transfers: sales are charged on the operator's account (purchases.service.ts), and a
 * creator's earnings (the ledger's `creator:<user>` account) are sent later by a transfer to
 * the creator's connected account. Destination charges would allow one recipient per charge;
 * a sale here pays a creator, the platform and the operator.
 *
 * A creator connects once: an Express account made through the SDK (idempotent per platform
 * and user), then Stripe's hosted onboarding (an account link, its return and refresh links
 * from the platform's stored public origin). What Stripe says of the account (payouts
 * enabled, details submitted) is read from Stripe, on the onboarding's return and on
 * `account.updated`, never taken from the event's body alone.
 *
 * A payout reserves the amount first: a pending ledger transfer creator → processor, in the
 * same transaction that checks the creator's available earnings (credits posted less debits
 * posted and pending), so two payouts cannot spend the same earnings. Then the Stripe transfer
 * (the payout's id is its idempotency key); accepted, the reservation is posted; refused, it
 * is voided and the payout marked failed. Stripe unreachable: the payout stays pending and
 * `retryPendingPayouts` sends it again under the same idempotency key (Stripe answers the
 * first transfer if it was made). Without Stripe, an admin records a payout made another way
 * (method manual) and the same ledger transfer is posted at once.
 */
import Stripe from 'stripe';
import type { PlatformRequestContext } from '../identity/index.ts';
import { actorOf, createUserRepository } from '../identity/index.ts';
import { AppError } from '../shared/errors.ts';
import { newId } from '../shared/ids.ts';
import { jsonInteger } from '../shared/money.ts';
import { userOf } from './credits.service.ts';
import { findAccount } from './ledger.repository.ts';
import { accountId, openAccount, post } from './ledger.ts';
import {
  creatorAccountByStripe,
  findCreatorAccount,
  findPayout,
  insertCreatorAccount,
  insertPayout,
  listPayouts,
  type PayoutRow,
  pendingPayouts,
  settlePayout,
  updateCreatorAccount,
} from './payouts.repository.ts';
import { creatorTotals } from './reports.repository.ts';
import { type StripeAccount, stripeFor } from './stripe.ts';
import { recordStripeObject } from './stripe-objects.repository.ts';

const MICRO = 1_000_000n;

/** What a creator may be paid now, in micro-units: earned, less paid out and reserved. */
export function availableEarnings(c: PlatformRequestContext, creatorId: string, currency: string): bigint {
  const a = findAccount(c.db, accountId('creator', creatorId, currency));
  if (!a) return 0n;
  const v = a.credits_posted - a.debits_posted - a.debits_pending;
  return v > 0n ? v : 0n;
}

const requireStripe = (c: PlatformRequestContext): StripeAccount => {
  const s = stripeFor(c);
  if (!s)
    throw new AppError(
      'billing.stripe_disabled',
      'this platform has no Stripe account: payouts are made outside soulfra and recorded by an admin',
      409,
    );
  return s;
};

const accountView = (
  c: PlatformRequestContext,
  userId: string,
  currency: string,
  row: ReturnType<typeof findCreatorAccount>,
) => ({
  connected: row !== null,
  payouts_enabled: row?.payouts_enabled === 1,
  details_submitted: row?.details_submitted === 1,
  currency,
  available_micro: jsonInteger(availableEarnings(c, userId, currency)),
});

/** Reads a connected account from Stripe and keeps what it says (returns the row after). */
export async function syncConnectAccount(c: PlatformRequestContext, account: string) {
  const stripe = stripeFor(c);
  if (!stripe || !creatorAccountByStripe(c.db, account)) return null;
  const a = await stripe.client.accounts.retrieve(account);
  updateCreatorAccount(
    c.db,
    account,
    { payouts_enabled: a.payouts_enabled === true, details_submitted: a.details_submitted === true },
    c.app.clock.now(),
  );
  return creatorAccountByStripe(c.db, account);
}

/** The signed-in creator's payout account (synced with Stripe until payouts are enabled). */
export async function myPayoutAccount(c: PlatformRequestContext, currency: string) {
  const userId = userOf(c);
  let row = findCreatorAccount(c.db, userId);
  if (row && row.payouts_enabled === 0 && stripeFor(c))
    row = (await syncConnectAccount(c, row.stripe_account)) ?? row;
  return accountView(c, userId, currency, row);
}

/**
 * Starts (or resumes) the creator's Stripe onboarding: makes the connected account if there is
 * none, and answers a fresh account link to Stripe's hosted onboarding.
 */
export async function startOnboarding(c: PlatformRequestContext) {
  const stripe = requireStripe(c);
  const userId = userOf(c);
  const now = c.app.clock.now();
  let row = findCreatorAccount(c.db, userId);
  if (!row) {
    const a = await stripe.client.accounts.create(
      {
        type: 'express',
        capabilities: { transfers: { requested: true } },
        metadata: { platform_id: c.platform.id, user_id: userId },
      },
      { idempotencyKey: `acct:${c.platform.id}:${userId}` },
    );
    recordStripeObject(c.app.control, a.id, c.platform.id, now);
    insertCreatorAccount(c.db, userId, a.id, now);
    row = findCreatorAccount(c.db, userId)!;
    c.app.audit.append(c.db, {
      actor: actorOf(c.principal),
      action: 'billing.payout_account_created',
      target: `user:${userId}`,
      details: { stripe_account: a.id },
    });
  }
  const back = (state: string) => new URL(`/app/billing?payouts=${state}`, c.origin).toString();
  const link = await stripe.client.accountLinks.create({
    account: row.stripe_account,
    type: 'account_onboarding',
    refresh_url: back('refresh'),
    return_url: back('return'),
  });
  return { url: link.url };
}

export const payoutView = (p: PayoutRow) => ({
  id: p.id,
  creator_id: p.creator_id,
  amount_minor: p.amount_minor,
  currency: p.currency,
  status: p.status,
  method: p.method,
  stripe_transfer: p.stripe_transfer,
  failure: p.failure,
  note: p.note,
  created_at: new Date(p.created_at).toISOString(),
});

const holdId = (p: { id: string }) => `payout:${p.id}`;

/** Settles a reserved Stripe payout by sending its transfer (again: the same idempotency key). */
async function sendPayout(
  c: PlatformRequestContext,
  stripe: StripeAccount,
  p: PayoutRow,
  destination: string,
) {
  let transfer: Stripe.Transfer;
  try {
    transfer = await stripe.client.transfers.create(
      {
        amount: p.amount_minor,
        currency: p.currency,
        destination,
        transfer_group: p.id,
        metadata: { platform_id: c.platform.id, payout_id: p.id, creator_id: p.creator_id },
      },
      { idempotencyKey: p.id },
    );
  } catch (err) {
    // Stripe did not answer: the outcome is unknown, so the reservation stays (retried later).
    if (err instanceof Stripe.errors.StripeConnectionError || err instanceof Stripe.errors.StripeAPIError)
      throw new AppError(
        'billing.stripe_unreachable',
        `Stripe did not answer; payout ${p.id} stays reserved and is sent again later`,
        502,
      ).with({ payout_id: p.id });
    const message = err instanceof Error ? err.message : String(err);
    const now = c.app.clock.now();
    c.db.transaction(() => {
      post(
        c.db,
        [{ id: `${holdId(p)}:void`, flags: 'void', pendingId: holdId(p), code: 'payout', ref: p.id }],
        now,
      );
      settlePayout(c.db, p.id, { status: 'failed', failure: message.slice(0, 500) }, now);
      c.app.audit.append(c.db, {
        actor: actorOf(c.principal),
        action: 'billing.payout_failed',
        target: `payout:${p.id}`,
        details: {
          creator: p.creator_id,
          amount_minor: p.amount_minor,
          currency: p.currency,
          reason: message,
        },
      });
    })();
    throw new AppError('billing.payout_refused', `Stripe refused the transfer: ${message}`, 409).with({
      payout_id: p.id,
    });
  }
  const now = c.app.clock.now();
  c.db.transaction(() => {
    post(
      c.db,
      [{ id: `${holdId(p)}:post`, flags: 'post', pendingId: holdId(p), code: 'payout', ref: p.id }],
      now,
    );
    settlePayout(c.db, p.id, { status: 'paid', stripe_transfer: transfer.id }, now);
    c.app.audit.append(c.db, {
      actor: actorOf(c.principal),
      action: 'billing.payout_paid',
      target: `payout:${p.id}`,
      details: {
        creator: p.creator_id,
        amount_minor: p.amount_minor,
        currency: p.currency,
        stripe_transfer: transfer.id,
      },
    });
  })();
}

/**
 * Pays a creator (an admin): `amountMinor` (default: all of the available earnings, in whole
 * minor units) by Stripe transfer, or `manual` (paid another way; `note` says how).
 */
export async function payOut(
  c: PlatformRequestContext,
  input: {
    creatorId: string;
    currency: string;
    amountMinor?: number;
    method: 'stripe' | 'manual';
    note?: string;
  },
) {
  const stripe = input.method === 'stripe' ? requireStripe(c) : null;
  const acct = findCreatorAccount(c.db, input.creatorId);
  if (stripe && acct?.payouts_enabled !== 1)
    throw new AppError(
      'billing.payouts_not_enabled',
      "creator_id: this creator has not finished Stripe's onboarding (payouts are not enabled)",
      409,
      [{ path: '/creator_id', reason: 'payouts not enabled' }],
    );
  if (input.method === 'manual' && !input.note?.trim())
    throw new AppError('billing.invalid', 'note: say how the payout was made', 400, [
      { path: '/note', reason: 'required for a manual payout' },
    ]);
  const now = c.app.clock.now();
  const p: PayoutRow = c.db.transaction(() => {
    const available = availableEarnings(c, input.creatorId, input.currency);
    const amountMinor = input.amountMinor ?? Number(available / MICRO);
    if (amountMinor <= 0 || BigInt(amountMinor) * MICRO > available)
      throw new AppError(
        'billing.payout_exceeds_earnings',
        `amount_minor: the creator has ${available / MICRO} ${input.currency.toUpperCase()} minor units available`,
        409,
        [{ path: '/amount_minor', reason: 'more than the available earnings' }],
      ).with({ available_micro: jsonInteger(available) });
    const row: PayoutRow = {
      id: newId('pay'),
      creator_id: input.creatorId,
      amount_minor: amountMinor,
      currency: input.currency,
      status: input.method === 'manual' ? 'paid' : 'pending',
      method: input.method,
      stripe_transfer: null,
      failure: null,
      note: input.note?.trim() || null,
      requested_by: actorOf(c.principal),
      created_at: now,
      updated_at: now,
    };
    insertPayout(c.db, row);
    const processor = openAccount(c.db, { kind: 'processor', currency: input.currency }, now);
    post(
      c.db,
      [
        {
          id: holdId(row),
          debit: accountId('creator', input.creatorId, input.currency),
          credit: processor,
          amount: BigInt(amountMinor) * MICRO,
          currency: input.currency,
          flags: input.method === 'manual' ? 'posted' : 'pending',
          code: 'payout',
          ref: row.id,
        },
      ],
      now,
    );
    if (input.method === 'manual')
      c.app.audit.append(c.db, {
        actor: actorOf(c.principal),
        action: 'billing.payout_paid',
        target: `payout:${row.id}`,
        details: {
          creator: row.creator_id,
          amount_minor: amountMinor,
          currency: row.currency,
          method: 'manual',
        },
      });
    return row;
  })();
  if (stripe && acct) await sendPayout(c, stripe, p, acct.stripe_account);
  return { payout: payoutView(findPayout(c.db, p.id)!) };
}

/** Sends again the Stripe payouts left reserved (Stripe unreachable, or a crash) before `olderThan`. */
export async function retryPendingPayouts(c: PlatformRequestContext, olderThan: number): Promise<number> {
  const stripe = stripeFor(c);
  if (!stripe) return 0;
  let done = 0;
  for (const p of pendingPayouts(c.db, olderThan)) {
    const acct = findCreatorAccount(c.db, p.creator_id);
    if (!acct) continue;
    try {
      await sendPayout(c, stripe, p, acct.stripe_account);
      done++;
    } catch (err) {
      if (!(err instanceof AppError) || err.code !== 'billing.payout_refused') throw err;
    }
  }
  return done;
}

/** The signed-in creator's payouts, or (admins) everyone's, with what each creator may be paid. */
export function payoutsOf(c: PlatformRequestContext, all: boolean) {
  const rows = listPayouts(c.db, { ...(all ? {} : { creatorId: userOf(c) }), limit: 200 });
  return { payouts: rows.map(payoutView) };
}

/** Each creator with earnings: what may be paid now, and whether payouts are set up. */
export function creatorPayoutSummary(c: PlatformRequestContext, currency: string) {
  const users = createUserRepository({ db: c.db });
  return creatorTotals(c.db, currency).map((t) => {
    const acct = findCreatorAccount(c.db, t.owner);
    return {
      creator_id: t.owner,
      email: users.byId(t.owner)?.email ?? null,
      earned_micro: jsonInteger(t.net),
      available_micro: jsonInteger(availableEarnings(c, t.owner, currency)),
      payouts_enabled: acct?.payouts_enabled === 1,
    };
  });
}
