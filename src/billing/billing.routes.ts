import { Elysia, t } from 'elysia';
import type { Meter } from '../ai/index.ts';
import { platformGuard } from '../identity/index.ts';
import { AppError } from '../shared/errors.ts';
import { jsonInteger } from '../shared/money.ts';
import {
  myCreditSettings,
  myCredits,
  returnFromTopup,
  setCreditSettings,
  startTopup,
  userOf,
} from './credits.service.ts';
import { listAccounts } from './ledger.repository.ts';
import {
  creatorPayoutSummary,
  myPayoutAccount,
  payOut,
  payoutsOf,
  startOnboarding,
} from './payouts.service.ts';
import { purchasesOf, recordPayment } from './purchases.service.ts';
import { myEarnings, platformRevenue, revenueSeries, subscriptionMetrics } from './reports.service.ts';
import { stripeFor } from './stripe.ts';
import { clearStripeSettings, setStripeSettings, stripeSettingsView } from './stripe-settings.service.ts';
import {
  addMember,
  allSubscriptions,
  cancelSubscription,
  changeTier,
  portalLink,
  removeMember,
  returnFromCheckout,
  setTierByHand,
  subscribe,
  subscriptionView,
} from './subscriptions.service.ts';
import { applyEvent, platformOfEvent, verifiedEvent } from './webhook.ts';

const PurchaseParams = t.Object({ id: t.String({ pattern: '^pur_[0-9a-z]{26}$' }) });
const PaymentBody = t.Object({ note: t.String({ minLength: 1, maxLength: 500 }) });
const Currency = t.String({ pattern: '^[a-z]{3}$', description: 'ISO 4217, lower case (default usd)' });
const CreditsQuery = t.Object({ currency: t.Optional(Currency) });
const TopupBody = t.Object({
  amount_minor: t.Integer({ minimum: 100, maximum: 1_000_000, description: 'minor units (1999 = 19.99)' }),
  currency: t.Optional(Currency),
});
const StripeKeysBody = t.Object({
  secret_key: t.String({
    pattern: '^(sk|rk)_(test|live)_[A-Za-z0-9]{8,247}$',
    description: "the platform's Stripe secret key (sk_live_… or a restricted rk_live_…)",
    errorMessage: 'must be a Stripe secret key: sk_live_…, sk_test_…, rk_live_… or rk_test_…',
  }),
  webhook_secret: t.String({
    pattern: '^whsec_[A-Za-z0-9+/=_-]{8,200}$',
    description: "the signing secret of the platform's webhook endpoint in Stripe (whsec_…)",
    errorMessage: 'must be a webhook signing secret: whsec_…',
  }),
});
const PayoutBody = t.Object({
  creator_id: t.String({ minLength: 1, maxLength: 64, description: "the creator's user id" }),
  amount_minor: t.Optional(
    t.Integer({ minimum: 1, description: 'minor units; default: all of the available earnings' }),
  ),
  currency: t.Optional(Currency),
  method: t.Optional(
    t.Union([t.Literal('stripe'), t.Literal('manual')], {
      description: 'stripe (a Connect transfer, the default) or manual (paid another way; note required)',
    }),
  ),
  note: t.Optional(t.String({ maxLength: 500 })),
});

const CreditSettingsBody = t.Object({
  low_balance_minor: t.Optional(
    t.Union([t.Number(), t.Null()], {
      description:
        'mail me once when my credits fall below this many minor units (0–1,000,000); null: the default, 500',
    }),
  ),
  auto_topup: t.Optional(
    t.Union(
      [
        t.Object({
          below_minor: t.Number({
            description: 'charge my saved card when my credits fall below this (minor units)',
          }),
          amount_minor: t.Number({ description: 'how much to add each time (minor units, 100–1,000,000)' }),
        }),
        t.Null(),
      ],
      { description: 'automatic top-up with the card saved by a paid top-up; null: off' },
    ),
  ),
  currency: t.Optional(Currency),
});

const TopupParams = t.Object({ id: t.String({ pattern: '^top_[0-9a-z]{26}$' }) });
const TierId = t.String({ pattern: '^[a-z][a-z0-9_-]{0,31}$', description: "a tier's id in the blueprint" });
const Seats = t.Integer({ minimum: 1, maximum: 10_000, description: 'people covered (default 1)' });
const SubscribeBody = t.Object({ tier: TierId, seats: t.Optional(Seats) });
const ChangeBody = t.Object({ tier: TierId });
const CancelQuery = t.Object({
  at: t.Optional(t.Union([t.Literal('period_end'), t.Literal('now')], { description: 'default period_end' })),
});
const MemberBody = t.Object({ user_id: t.String({ minLength: 1, maxLength: 64 }) });
const MemberParams = t.Object({ user: t.String({ minLength: 1, maxLength: 64 }) });
const SetTierBody = t.Object({
  tier: TierId,
  seats: t.Optional(Seats),
  note: t.String({ minLength: 1, maxLength: 500 }),
});

/**
 * Billing on a platform's host (issue 13): Stripe's webhook for this platform (public: the
 * signature is the credential), the user's purchases, and the admin's purchases, manual
 * payments and ledger balances.
 */
export const billingRoutes = (d: { meter?: Meter } = {}) =>
  new Elysia({ name: 'billing.routes' })
    .use(platformGuard)
    .post(
      '/api/v1/billing/stripe/webhook',
      async ({ ctx, body, request }) => {
        if (typeof body !== 'string')
          throw new AppError('billing.invalid', 'the body must be the raw event', 400);
        const stripe = stripeFor(ctx);
        const e = await verifiedEvent(stripe, body, request.headers.get('stripe-signature'));
        // The platform's own account: every event is its own. The operator's: only this
        // platform's events; another platform's are acknowledged and left alone.
        if (!stripe?.own && (await platformOfEvent(ctx.app, e)) !== ctx.platform.id)
          return { received: true, applied: 'ignored' };
        return { received: true, applied: await applyEvent(ctx, e) };
      },
      {
        permission: 'public',
        detail: {
          summary:
            "Stripe's webhook for this platform: Stripe-Signature verified (400 if missing, forged or stale), each event applied once",
          tags: ['billing'],
        },
      },
    )
    .get('/api/v1/billing/credits', ({ ctx, query }) => myCredits(ctx, query.currency ?? 'usd'), {
      permission: 'platform:read',
      query: CreditsQuery,
      detail: { summary: 'Your prepaid credits (spendable now) and your top-ups', tags: ['billing'] },
    })
    .get(
      '/api/v1/billing/credits/settings',
      ({ ctx, query }) => myCreditSettings(ctx, query.currency ?? 'usd'),
      {
        permission: 'platform:read',
        query: CreditsQuery,
        detail: { summary: "Your credits' settings: the low-balance notice's threshold", tags: ['billing'] },
      },
    )
    .put('/api/v1/billing/credits/settings', ({ ctx, body }) => setCreditSettings(ctx, body), {
      permission: 'platform:read',
      body: CreditSettingsBody,
      detail: {
        summary:
          'Set your low-balance threshold (one mail each time your credits fall below it) and automatic top-up',
        tags: ['billing'],
      },
    })
    .post(
      '/api/v1/billing/topups',
      async ({ ctx, body }) =>
        Response.json(await startTopup(ctx, body.amount_minor, body.currency ?? 'usd'), { status: 201 }),
      {
        permission: 'platform:read',
        body: TopupBody,
        detail: {
          summary: 'Top up your credits: a checkout to pay at; once paid, the credits are usable at once',
          tags: ['billing'],
        },
      },
    )
    .post('/api/v1/billing/topups/:id/sync', ({ ctx, params }) => returnFromTopup(ctx, params.id), {
      permission: 'platform:read',
      params: TopupParams,
      detail: {
        summary: "Back from a top-up's checkout: the payment is checked with Stripe and the credits posted",
        tags: ['billing'],
      },
    })
    .get('/api/v1/billing/earnings', ({ ctx, query }) => myEarnings(ctx, query.currency ?? 'usd'), {
      permission: 'agents:write',
      query: CreditsQuery,
      detail: {
        summary: 'Your earnings as a creator: in all and per listing (sales less refunds)',
        tags: ['billing'],
      },
    })
    .get(
      '/api/v1/admin/billing/revenue',
      ({ ctx, query }) => platformRevenue(ctx.db, query.currency ?? 'usd'),
      {
        permission: 'billing:read',
        query: CreditsQuery,
        detail: {
          summary:
            "The platform's revenue from its ledger: marketplace sales (creators' share, its own, the operator's fees), AI usage charged and its cost",
          tags: ['billing'],
        },
      },
    )
    .get('/api/v1/billing/subscription', ({ ctx }) => subscriptionView(ctx, userOf(ctx), d.meter), {
      permission: 'platform:read',
      detail: {
        summary: "Your plan: tier, status, period, limits and today's usage against them; the tiers on offer",
        tags: ['billing'],
      },
    })
    .post(
      '/api/v1/billing/subscription',
      async ({ ctx, body }) => {
        const r = await subscribe(ctx, body.tier, body.seats);
        return Response.json(r.body, { status: r.status });
      },
      {
        permission: 'platform:read',
        body: SubscribeBody,
        detail: {
          summary:
            'Subscribe to a tier: 201 with the checkout to pay at (a paid tier), or the free tier at once; 409 without card payments',
          tags: ['billing'],
        },
      },
    )
    .patch('/api/v1/billing/subscription', ({ ctx, body }) => changeTier(ctx, body.tier, d.meter), {
      permission: 'platform:read',
      body: ChangeBody,
      detail: {
        summary: 'Change tier now (up or down), prorated by Stripe on the next invoice',
        tags: ['billing'],
      },
    })
    .delete(
      '/api/v1/billing/subscription',
      ({ ctx, query }) => cancelSubscription(ctx, query.at ?? 'period_end', d.meter),
      {
        permission: 'platform:read',
        query: CancelQuery,
        detail: {
          summary: 'Cancel your subscription at the end of its period (the tier kept until then) or now',
          tags: ['billing'],
        },
      },
    )
    .post('/api/v1/billing/subscription/sync', ({ ctx }) => returnFromCheckout(ctx, d.meter), {
      permission: 'platform:read',
      detail: {
        summary:
          "Back from a subscription's checkout: the subscription and its first invoice checked with Stripe",
        tags: ['billing'],
      },
    })
    .post('/api/v1/billing/subscription/members', ({ ctx, body }) => addMember(ctx, body.user_id, d.meter), {
      permission: 'platform:read',
      body: MemberBody,
      detail: {
        summary: 'Add someone to your team subscription (402 when its seats are taken)',
        tags: ['billing'],
      },
    })
    .delete(
      '/api/v1/billing/subscription/members/:user',
      ({ ctx, params }) => removeMember(ctx, params.user, d.meter),
      {
        permission: 'platform:read',
        params: MemberParams,
        detail: {
          summary: 'Remove someone from your team subscription (or, with your own id, leave one)',
          tags: ['billing'],
        },
      },
    )
    .post('/api/v1/billing/portal', ({ ctx }) => portalLink(ctx), {
      permission: 'platform:read',
      detail: {
        summary: "A link to Stripe's billing portal: payment methods, invoices, cancelling",
        tags: ['billing'],
      },
    })
    .get('/api/v1/admin/billing/subscriptions', ({ ctx }) => allSubscriptions(ctx), {
      permission: 'billing:read',
      detail: { summary: "The platform's users' subscriptions (admins)", tags: ['billing'] },
    })
    .post(
      '/api/v1/admin/billing/subscriptions/:user',
      ({ ctx, params, body }) => setTierByHand(ctx, params.user, body),
      {
        permission: 'billing:write',
        params: MemberParams,
        body: SetTierBody,
        detail: {
          summary: "Set a user's tier by hand (no Stripe, or paid another way), audited",
          tags: ['billing'],
        },
      },
    )
    .get(
      '/api/v1/billing/payouts/account',
      ({ ctx, query }) => myPayoutAccount(ctx, query.currency ?? 'usd'),
      {
        permission: 'agents:write',
        query: CreditsQuery,
        detail: {
          summary:
            'Your payout account as a creator (Stripe Connect): connected, payouts enabled, what you may be paid now',
          tags: ['billing'],
        },
      },
    )
    .post('/api/v1/billing/payouts/account/link', ({ ctx }) => startOnboarding(ctx), {
      permission: 'agents:write',
      detail: {
        summary: "Set up payouts: a link to Stripe's hosted onboarding (the connected account is made once)",
        tags: ['billing'],
      },
    })
    .get('/api/v1/billing/payouts', ({ ctx }) => payoutsOf(ctx, false), {
      permission: 'agents:write',
      detail: { summary: 'Your payouts as a creator', tags: ['billing'] },
    })
    .get(
      '/api/v1/admin/billing/payouts',
      ({ ctx, query }) => ({
        ...payoutsOf(ctx, true),
        creators: creatorPayoutSummary(ctx, query.currency ?? 'usd'),
      }),
      {
        permission: 'billing:read',
        query: CreditsQuery,
        detail: {
          summary: "The platform's payouts, and each creator's available earnings and payout account",
          tags: ['billing'],
        },
      },
    )
    .post(
      '/api/v1/admin/billing/payouts',
      async ({ ctx, body }) =>
        Response.json(
          await payOut(ctx, {
            creatorId: body.creator_id,
            currency: body.currency ?? 'usd',
            ...(body.amount_minor !== undefined ? { amountMinor: body.amount_minor } : {}),
            method: body.method ?? 'stripe',
            ...(body.note !== undefined ? { note: body.note } : {}),
          }),
          { status: 201 },
        ),
      {
        permission: 'billing:write',
        body: PayoutBody,
        detail: {
          summary:
            'Pay a creator: a Stripe Connect transfer of their available earnings (reserved in the ledger first), or a payout made by hand',
          tags: ['billing'],
        },
      },
    )
    .get(
      '/api/v1/admin/billing/subscriptions/metrics',
      ({ ctx }) => subscriptionMetrics(ctx.db, ctx.blueprint(), ctx.app.clock.now()),
      {
        permission: 'billing:read',
        detail: {
          summary:
            "Subscriptions: MRR at today's tier prices, subscribers by tier, trials, and churn over the last 30 days",
          tags: ['billing'],
        },
      },
    )
    .get(
      '/api/v1/admin/billing/revenue/monthly',
      ({ ctx, query }) =>
        revenueSeries(ctx.db, query.currency ?? 'usd', Number(query.months ?? 12), ctx.app.clock.now()),
      {
        permission: 'billing:read',
        query: t.Object({
          currency: t.Optional(Currency),
          months: t.Optional(
            t.String({
              pattern: '^([1-9]|[1-5][0-9]|60)$',
              description: 'How many months back, this one included (1–60, default 12).',
              errorMessage: 'must be a whole number from 1 to 60',
            }),
          ),
        }),
        detail: {
          summary:
            "The platform's money per month from its ledger: sales, refunds, subscriptions, AI charged and cost, the operator's fees, payouts",
          tags: ['billing'],
        },
      },
    )
    .get('/api/v1/admin/billing/stripe', ({ ctx }) => stripeSettingsView(ctx), {
      permission: 'billing:read',
      detail: {
        summary:
          "Which Stripe account the platform's payments go through (its own, the operator's, none); never a secret",
        tags: ['billing'],
      },
    })
    .put('/api/v1/admin/billing/stripe', ({ ctx, body }) => setStripeSettings(ctx, body), {
      permission: 'billing:write',
      body: StripeKeysBody,
      detail: {
        summary: "Use the platform's own Stripe account: its keys, tried against Stripe, then sealed at rest",
        tags: ['billing'],
      },
    })
    .delete('/api/v1/admin/billing/stripe', ({ ctx }) => clearStripeSettings(ctx), {
      permission: 'billing:write',
      detail: {
        summary: "Remove the platform's own Stripe keys: payments go through the operator's account again",
        tags: ['billing'],
      },
    })
    .get('/api/v1/billing/purchases', ({ ctx }) => purchasesOf(ctx, false), {
      permission: 'platform:read',
      detail: { summary: 'Your purchases in the marketplace', tags: ['billing'] },
    })
    .get('/api/v1/admin/billing/purchases', ({ ctx }) => purchasesOf(ctx, true), {
      permission: 'billing:read',
      detail: { summary: "The platform's purchases (admins)", tags: ['billing'] },
    })
    .post(
      '/api/v1/admin/billing/purchases/:id/payment',
      ({ ctx, params, body }) => recordPayment(ctx, params.id, body.note),
      {
        permission: 'billing:write',
        params: PurchaseParams,
        body: PaymentBody,
        detail: {
          summary: "Record a purchase's payment by hand (no Stripe, or paid another way): the sale is posted",
          tags: ['billing'],
        },
      },
    )
    .get(
      '/api/v1/admin/billing/ledger',
      ({ ctx }) => ({
        accounts: listAccounts(ctx.db).map((a) => ({
          id: a.id,
          kind: a.kind,
          owner: a.owner,
          currency: a.currency,
          debits_posted_micro: jsonInteger(a.debits_posted),
          credits_posted_micro: jsonInteger(a.credits_posted),
          debits_pending_micro: jsonInteger(a.debits_pending),
          credits_pending_micro: jsonInteger(a.credits_pending),
        })),
      }),
      {
        permission: 'billing:read',
        detail: {
          summary: "The ledger's accounts and their balances (micro-units of the currency's minor unit)",
          tags: ['billing'],
        },
      },
    );
