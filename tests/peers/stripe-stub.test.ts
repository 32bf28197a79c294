import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import Stripe from 'stripe';
import { parseStripeForm, type StripeStub, startStripeStub } from './stripe-stub.ts';

/** A webhook receiver on 127.0.0.1 that verifies each delivery with the SDK, as production would. */
function startReceiver(secret: string) {
  const verifier = new Stripe('sk_test_receiver');
  const got: { payload: string; event: Stripe.Event | null; error: string | null }[] = [];
  const server = Bun.serve({
    hostname: '127.0.0.1',
    port: 0,
    async fetch(req) {
      const payload = await req.text();
      const header = req.headers.get('stripe-signature') ?? '';
      try {
        // Under Bun the SDK's crypto is SubtleCrypto: the async verifier is the one that works.
        const event = await verifier.webhooks.constructEventAsync(payload, header, secret);
        got.push({ payload, event, error: null });
        return new Response('ok');
      } catch (e) {
        got.push({ payload, event: null, error: e instanceof Error ? e.message : String(e) });
        return new Response('bad signature', { status: 400 });
      }
    },
  });
  return {
    url: `http://127.0.0.1:${server.port}/webhooks/stripe`,
    got,
    events: (type: string) => got.filter((g) => g.event?.type === type).map((g) => g.event!),
    stop: () => server.stop(true),
  };
}

let stub: StripeStub;
let stripe: Stripe;
let receiver: ReturnType<typeof startReceiver>;
const SECRET = 'whsec_test_receiver_secret';

beforeAll(async () => {
  stub = await startStripeStub();
  stripe = new Stripe('sk_test_soulfra123', {
    host: '127.0.0.1',
    port: stub.port,
    protocol: 'http',
    maxNetworkRetries: 0,
  });
  receiver = startReceiver(SECRET);
  stub.addEndpoint(receiver.url, SECRET);
});

afterAll(async () => {
  await stub.stop();
  receiver.stop();
});

/** Completes a Checkout Session through its hosted page, as a buyer's browser would. */
async function pay(session: Stripe.Checkout.Session, email = 'buyer@example.com'): Promise<Response> {
  const res = await fetch(session.url!, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ email }),
    redirect: 'manual',
  });
  return res;
}

async function expectStripeError(p: Promise<unknown>): Promise<Stripe.errors.StripeError> {
  try {
    await p;
  } catch (e) {
    expect(e).toBeInstanceOf(Stripe.errors.StripeError);
    return e as Stripe.errors.StripeError;
  }
  throw new Error('expected a Stripe error');
}

describe('stripe stub: wire format', () => {
  test('parses bracket-nested forms into objects and arrays', () => {
    expect(
      parseStripeForm(
        'line_items[0][price_data][unit_amount]=500&line_items[0][quantity]=2&line_items[1][price]=price_1&metadata[k]=v%20w&expand[]=a&expand[]=b.c',
      ),
    ).toEqual({
      line_items: [{ price_data: { unit_amount: '500' }, quantity: '2' }, { price: 'price_1' }],
      metadata: { k: 'v w' },
      expand: ['a', 'b.c'],
    });
  });

  test('rejects a key that is not a test secret key with 401 and the error body', async () => {
    const bad = new Stripe('pk_test_wrong', { host: '127.0.0.1', port: stub.port, protocol: 'http' });
    const err = await expectStripeError(bad.customers.create({ email: 'a@example.com' }));
    expect(err).toBeInstanceOf(Stripe.errors.StripeAuthenticationError);
    expect(err.statusCode).toBe(401);
    expect(err.type).toBe('StripeAuthenticationError');
    // The SDK prefixes the message with the request id.
    expect(err.message).toContain('] Invalid API Key provided: pk_test_');
    expect(err.requestId).toStartWith('req_');
    const raw = await fetch(`${stub.url}/v1/customers`);
    expect(raw.status).toBe(401);
    const body = (await raw.json()) as { error: { type: string; message: string } };
    expect(body.error.type).toBe('invalid_request_error');
    expect(body.error.message).toContain('did not provide an API key');
  });

  test('customers: create, retrieve, update metadata; unknown ids are resource_missing', async () => {
    const c = await stripe.customers.create({
      email: 'ada@example.com',
      name: 'Ada',
      metadata: { tenant: 't1' },
    });
    expect(c.id).toStartWith('cus_');
    expect(c.object).toBe('customer');
    expect(c.livemode).toBe(false);
    expect(Math.abs(c.created - Date.now() / 1000)).toBeLessThan(60);
    const updated = await stripe.customers.update(c.id, { metadata: { plan: 'pro', tenant: '' } });
    expect(updated.metadata).toEqual({ plan: 'pro' });
    const again = await stripe.customers.retrieve(c.id);
    expect((again as Stripe.Customer).email).toBe('ada@example.com');
    const err = await expectStripeError(stripe.customers.retrieve('cus_nope'));
    expect(err).toBeInstanceOf(Stripe.errors.StripeInvalidRequestError);
    expect(err.statusCode).toBe(404);
    expect(err.code).toBe('resource_missing');
    expect(err.message).toEndWith("No such customer: 'cus_nope'");
    expect(err.param).toBe('id');
    const rec = stub.requests.find((r) => r.method === 'POST' && r.path === `/v1/customers/${c.id}`);
    expect(rec?.body).toEqual({ metadata: { plan: 'pro', tenant: '' } });
  });

  test('idempotency: same key and body replay; same key, other body is an idempotency_error', async () => {
    const a = await stripe.customers.create({ email: 'idem@example.com' }, { idempotencyKey: 'key-1' });
    const b = await stripe.customers.create({ email: 'idem@example.com' }, { idempotencyKey: 'key-1' });
    expect(b.id).toBe(a.id);
    expect(b.lastResponse.requestId).toBe(a.lastResponse.requestId);
    expect(b.lastResponse.idempotencyKey).toBe('key-1');
    const replay = await fetch(`${stub.url}/v1/customers`, {
      method: 'POST',
      headers: {
        authorization: 'Bearer sk_test_soulfra123',
        'content-type': 'application/x-www-form-urlencoded',
        'idempotency-key': 'key-1',
      },
      body: 'email=idem%40example.com',
    });
    expect(replay.headers.get('idempotent-replayed')).toBe('true');
    expect(((await replay.json()) as { id: string }).id).toBe(a.id);
    const err = await expectStripeError(
      stripe.customers.create({ email: 'other@example.com' }, { idempotencyKey: 'key-1' }),
    );
    expect(err).toBeInstanceOf(Stripe.errors.StripeIdempotencyError);
    expect(err.statusCode).toBe(400);
    const c = await stripe.customers.create({ email: 'idem@example.com' }, { idempotencyKey: 'key-2' });
    expect(c.id).not.toBe(a.id);

    // Concurrent requests with one key make one object.
    const [x, y] = await Promise.all([
      stripe.customers.create({ email: 'race@example.com' }, { idempotencyKey: 'key-race' }),
      stripe.customers.create({ email: 'race@example.com' }, { idempotencyKey: 'key-race' }),
    ]);
    expect(x.id).toBe(y.id);

    // A request that failed validation saves nothing: its key may be used again, fixed.
    const bad = await expectStripeError(
      stripe.refunds.create({ charge: 'ch_missing' }, { idempotencyKey: 'key-3' }),
    );
    expect(bad.code).toBe('resource_missing');
    const fixed = await stripe.customers.create({ email: 'fixed@example.com' }, { idempotencyKey: 'key-3' });
    expect(fixed.id).toStartWith('cus_');
  });

  test('parameters the SDK does not document are refused as Stripe does', async () => {
    const params = { email: 'x@example.com', emial: 'typo' } as Stripe.CustomerCreateParams;
    const err = await expectStripeError(stripe.customers.create(params));
    expect(err.statusCode).toBe(400);
    expect(err.code).toBe('parameter_unknown');
    expect(err.param).toBe('emial');
  });

  test('expand works on retrieved objects and on lists (data.*); GET /v1/account is the platform', async () => {
    const c = await stripe.customers.create({ email: 'expand@example.com' });
    const s = await stripe.checkout.sessions.create(
      {
        mode: 'payment',
        customer: c.id,
        line_items: [{ price_data: { currency: 'usd', unit_amount: 250, product_data: { name: 'E' } } }],
        success_url: 'https://app.example.com/ok',
      },
      { idempotencyKey: 'expand-1' },
    );
    const got = await stripe.checkout.sessions.retrieve(s.id, { expand: ['customer', 'line_items'] });
    expect((got.customer as Stripe.Customer).email).toBe('expand@example.com');
    expect(got.line_items?.data[0]?.price?.unit_amount).toBe(250);
    const subs = await stripe.customers.list({
      email: 'expand@example.com',
      expand: ['data.invoice_settings'],
    });
    expect(subs.data[0]!.id).toBe(c.id);
    const platform = await stripe.accounts.retrieveCurrent();
    expect(platform.id).toStartWith('acct_');
    expect(platform.charges_enabled).toBe(true);
  });

  test('lists page by limit and starting_after', async () => {
    const email = 'page@example.com';
    const made: string[] = [];
    for (let i = 0; i < 3; i++) made.push((await stripe.customers.create({ email })).id);
    const first = await stripe.customers.list({ email, limit: 2 });
    expect(first.object).toBe('list');
    expect(first.data.map((c) => c.id)).toEqual([made[2]!, made[1]!]);
    expect(first.has_more).toBe(true);
    const next = await stripe.customers.list({ email, limit: 2, starting_after: first.data[1]!.id });
    expect(next.data.map((c) => c.id)).toEqual([made[0]!]);
    expect(next.has_more).toBe(false);
    const all: string[] = [];
    for await (const c of stripe.customers.list({ email, limit: 1 })) all.push(c.id);
    expect(all).toEqual([...made].reverse());
  });

  test('validation errors carry param and code', async () => {
    const err = await expectStripeError(
      stripe.checkout.sessions.create({
        mode: 'subscription',
        line_items: [
          { price_data: { currency: 'usd', unit_amount: 500, product_data: { name: 'One' } }, quantity: 1 },
        ],
        success_url: 'http://127.0.0.1/ok',
      }),
    );
    expect(err.statusCode).toBe(400);
    expect(err.param).toBe('line_items');
    expect(err.message).toContain('recurring price');
  });
});

describe('stripe stub: subscription checkout and billing', () => {
  let session: Stripe.Checkout.Session;
  let customer: Stripe.Customer;
  let subscriptionId: string;

  test('a subscription checkout completes through the hosted page and emits signed webhooks', async () => {
    customer = await stripe.customers.create({ email: 'sub@example.com' });
    session = await stripe.checkout.sessions.create({
      mode: 'subscription',
      customer: customer.id,
      client_reference_id: 'tenant-42',
      metadata: { tenant: '42' },
      subscription_data: { metadata: { plan: 'pro' } },
      line_items: [
        {
          price_data: {
            currency: 'usd',
            unit_amount: 1500,
            product_data: { name: 'Pro plan' },
            recurring: { interval: 'month' },
          },
          quantity: 1,
        },
      ],
      success_url: 'https://app.example.com/billing/done?session={CHECKOUT_SESSION_ID}',
      cancel_url: 'https://app.example.com/billing',
    });
    expect(session.id).toStartWith('cs_');
    expect(session.status).toBe('open');
    expect(session.payment_status).toBe('unpaid');
    expect(session.amount_total).toBe(1500);
    expect(session.url).toBe(`${stub.url}/pay/${session.id}`);

    const pageRes = await fetch(session.url!);
    expect(pageRes.status).toBe(200);
    const html = await pageRes.text();
    expect(html).toContain('<html lang="en">');
    expect(html).toContain('$15.00');
    expect(html).toMatch(/<button type="submit">Pay<\/button>/);
    expect(html).toContain('<label for="email">Email</label>');

    const res = await pay(session);
    expect(res.status).toBe(303);
    expect(res.headers.get('location')).toBe(`https://app.example.com/billing/done?session=${session.id}`);

    const completed = await stub.delivered('checkout.session.completed', session.id);
    await stub.delivered('invoice.paid');
    await stub.delivered('customer.subscription.created');
    expect(completed.status).toBe(200);
    const got = receiver.events('checkout.session.completed');
    expect(got).toHaveLength(1);
    const obj = got[0]!.data.object as Stripe.Checkout.Session;
    expect(obj.id).toBe(session.id);
    expect(obj.client_reference_id).toBe('tenant-42');
    expect(obj.metadata).toEqual({ tenant: '42' });
    expect(obj.status).toBe('complete');
    expect(typeof obj.subscription).toBe('string');
    expect(got[0]!.api_version).toBe(Stripe.API_VERSION);
    expect(receiver.got.every((g) => g.error === null)).toBe(true);

    const full = await stripe.checkout.sessions.retrieve(session.id, {
      expand: ['subscription', 'line_items'],
    });
    expect(full.status).toBe('complete');
    expect(full.payment_status).toBe('paid');
    const sub = full.subscription as Stripe.Subscription;
    expect(sub.id).toStartWith('sub_');
    expect(sub.status).toBe('active');
    expect(sub.metadata).toEqual({ plan: 'pro' });
    expect(sub.customer).toBe(customer.id);
    expect(sub.items.data[0]!.price.unit_amount).toBe(1500);
    expect(sub.items.data[0]!.current_period_end).toBeGreaterThan(sub.items.data[0]!.current_period_start);
    expect(full.line_items?.data[0]?.amount_total).toBe(1500);
    subscriptionId = sub.id;

    const created = receiver.events('customer.subscription.created');
    expect((created[0]!.data.object as Stripe.Subscription).id).toBe(sub.id);

    // A completed session's page is gone; paying twice does nothing.
    expect((await pay(session)).status).toBe(410);
  });

  test('invoices: the first is paid and listed by customer; payInvoice and failInvoice drive renewals', async () => {
    const first = await stripe.invoices.list({ customer: customer.id });
    expect(first.data).toHaveLength(1);
    const inv = first.data[0]!;
    expect(inv.id).toStartWith('in_');
    expect(inv.status).toBe('paid');
    expect(inv.amount_paid).toBe(1500);
    expect(inv.billing_reason).toBe('subscription_create');
    expect(inv.parent?.subscription_details?.subscription).toBe(subscriptionId);
    expect((await stripe.invoices.retrieve(inv.id)).total).toBe(1500);

    const renewal = await stub.payInvoice(subscriptionId);
    expect(receiver.events('invoice.paid').map((e) => (e.data.object as Stripe.Invoice).id)).toContain(
      renewal.id,
    );
    const listed = await stripe.invoices.list({ customer: customer.id });
    expect(listed.data.map((i) => i.id)).toEqual([renewal.id, inv.id]);
    expect(listed.data[0]!.period_start).toBe(inv.period_end);

    const failed = await stub.failInvoice(subscriptionId);
    expect(failed.status).toBe('open');
    const sub = await stripe.subscriptions.retrieve(subscriptionId);
    expect(sub.status).toBe('past_due');
    const failures = receiver.events('invoice.payment_failed');
    expect((failures.at(-1)!.data.object as Stripe.Invoice).id).toBe(failed.id);
    const updated = receiver.events('customer.subscription.updated').at(-1)!;
    expect(updated.data.previous_attributes).toEqual({ status: 'active' });

    await stub.payInvoice(subscriptionId);
    expect((await stripe.invoices.retrieve(failed.id)).status).toBe('paid');
    expect((await stripe.subscriptions.retrieve(subscriptionId)).status).toBe('active');
  });

  test('billing portal session and subscription changes: price, cancel_at_period_end, delete', async () => {
    const portal = await stripe.billingPortal.sessions.create({
      customer: customer.id,
      return_url: 'https://app.example.com/billing',
    });
    expect(portal.id).toStartWith('bps_');
    expect(portal.object).toBe('billing_portal.session');
    expect(portal.url).toStartWith(`${stub.url}/portal/`);
    const html = await (await fetch(portal.url)).text();
    expect(html).toContain('Cancel plan');
    expect(html).toContain('https://app.example.com/billing');

    const sub = await stripe.subscriptions.retrieve(subscriptionId);
    const price = await stripe.prices.create({
      currency: 'usd',
      unit_amount: 4000,
      recurring: { interval: 'month' },
      product_data: { name: 'Team plan' },
    });
    const changed = await stripe.subscriptions.update(subscriptionId, {
      items: [{ id: sub.items.data[0]!.id, price: price.id }],
      proration_behavior: 'create_prorations',
    });
    expect(changed.items.data).toHaveLength(1);
    expect(changed.items.data[0]!.price.id).toBe(price.id);

    const ending = await stripe.subscriptions.update(subscriptionId, { cancel_at_period_end: true });
    expect(ending.cancel_at_period_end).toBe(true);
    expect(ending.cancel_at).toBe(sub.items.data[0]!.current_period_end);
    await stub.idle();
    const updates = receiver.events('customer.subscription.updated');
    expect(updates.at(-1)!.data.previous_attributes).toMatchObject({ cancel_at_period_end: false });

    const canceled = await stripe.subscriptions.cancel(subscriptionId);
    expect(canceled.status).toBe('canceled');
    const deleted = await stub.delivered('customer.subscription.deleted', subscriptionId);
    expect(deleted.status).toBe(200);
    const err = await expectStripeError(
      stripe.subscriptions.update(subscriptionId, { cancel_at_period_end: false }),
    );
    expect(err.statusCode).toBe(400);
  });

  test('stub.cancelSubscription emits customer.subscription.deleted', async () => {
    const price = await stripe.prices.create({
      currency: 'eur',
      unit_amount: 900,
      recurring: { interval: 'year' },
      product_data: { name: 'Yearly' },
    });
    const s = await stripe.checkout.sessions.create({
      mode: 'subscription',
      line_items: [{ price: price.id, quantity: 2 }],
      success_url: 'https://app.example.com/ok',
    });
    expect(s.amount_total).toBe(1800);
    expect((await pay(s, 'new@example.com')).status).toBe(303);
    const done = await stub.delivered('checkout.session.completed', s.id);
    const obj = done.event.data.object;
    expect(String(obj.customer)).toStartWith('cus_');
    const cus = (await stripe.customers.retrieve(String(obj.customer))) as Stripe.Customer;
    expect(cus.email).toBe('new@example.com');
    await stub.cancelSubscription(String(obj.subscription));
    const deleted = receiver
      .events('customer.subscription.deleted')
      .map((e) => (e.data.object as Stripe.Subscription).id);
    expect(deleted).toContain(String(obj.subscription));
  });
});

describe('stripe stub: checkout expiry and the portal page', () => {
  test('an expired session emits checkout.session.expired and its page is gone', async () => {
    const s = await stripe.checkout.sessions.create({
      mode: 'payment',
      line_items: [{ price_data: { currency: 'usd', unit_amount: 100, product_data: { name: 'X' } } }],
      success_url: 'https://app.example.com/ok',
    });
    const url = s.url!;
    const expired = await stripe.checkout.sessions.expire(s.id);
    expect(expired.status).toBe('expired');
    expect(expired.url).toBeNull();
    expect((await stub.delivered('checkout.session.expired', s.id)).status).toBe(200);
    expect((await fetch(url)).status).toBe(410);
    const again = await expectStripeError(stripe.checkout.sessions.expire(s.id));
    expect(again.statusCode).toBe(400);
  });

  test('cancelling in the portal page sets cancel_at_period_end and emits the update', async () => {
    const price = await stripe.prices.create({
      currency: 'usd',
      unit_amount: 800,
      recurring: { interval: 'week' },
      product_data: { name: 'Weekly' },
    });
    const s = await stripe.checkout.sessions.create({
      mode: 'subscription',
      line_items: [{ price: price.id }],
      success_url: 'https://app.example.com/ok',
    });
    await pay(s, 'portal@example.com');
    const done = await stub.delivered('checkout.session.completed', s.id);
    const subId = String(done.event.data.object.subscription);
    const portal = await stripe.billingPortal.sessions.create({
      customer: String(done.event.data.object.customer),
    });
    const html = await (await fetch(portal.url)).text();
    const action = /<form method="post" action="([^"]+)"><button type="submit">Cancel plan<\/button>/.exec(
      html,
    )?.[1];
    expect(action).toBeDefined();
    const res = await fetch(new URL(action!, portal.url), { method: 'POST', redirect: 'manual' });
    expect(res.status).toBe(303);
    const updated = await stub.delivered('customer.subscription.updated', subId);
    expect(updated.event.data.object.cancel_at_period_end).toBe(true);
    expect((await stripe.subscriptions.retrieve(subId)).cancel_at_period_end).toBe(true);
  });
});

describe('stripe stub: payments and refunds', () => {
  test('payment checkout, partial refunds accumulate, over-refund refused', async () => {
    const s = await stripe.checkout.sessions.create({
      mode: 'payment',
      line_items: [
        {
          price_data: { currency: 'usd', unit_amount: 1000, product_data: { name: 'Credits' } },
          quantity: 1,
        },
      ],
      payment_intent_data: { metadata: { order: 'o-1' } },
      success_url: 'https://app.example.com/paid',
    });
    expect((await pay(s)).status).toBe(303);
    await stub.delivered('checkout.session.completed', s.id);
    const done = await stripe.checkout.sessions.retrieve(s.id, { expand: ['payment_intent'] });
    const pi = done.payment_intent as Stripe.PaymentIntent;
    expect(pi.id).toStartWith('pi_');
    expect(pi.status).toBe('succeeded');
    expect(pi.metadata).toEqual({ order: 'o-1' });
    const chargeId = String(pi.latest_charge);
    expect(chargeId).toStartWith('ch_');

    const r1 = await stripe.refunds.create({ payment_intent: pi.id, amount: 300 });
    expect(r1.id).toStartWith('re_');
    expect(r1.amount).toBe(300);
    expect(r1.status).toBe('succeeded');
    const r2 = await stripe.refunds.create({ charge: chargeId, amount: 500 });
    expect(r2.charge).toBe(chargeId);
    let charge = await stripe.charges.retrieve(chargeId);
    expect(charge.amount_refunded).toBe(800);
    expect(charge.refunded).toBe(false);

    const over = await expectStripeError(stripe.refunds.create({ payment_intent: pi.id, amount: 300 }));
    expect(over.statusCode).toBe(400);
    expect(over.code).toBe('amount_too_large');
    expect(over.param).toBe('amount');
    expect(over.message).toEndWith(
      'Refund amount ($3.00) is greater than unrefunded amount on charge ($2.00)',
    );

    const rest = await stripe.refunds.create({ payment_intent: pi.id });
    expect(rest.amount).toBe(200);
    charge = await stripe.charges.retrieve(chargeId);
    expect(charge.amount_refunded).toBe(1000);
    expect(charge.refunded).toBe(true);
    const again = await expectStripeError(stripe.refunds.create({ charge: chargeId }));
    expect(again.code).toBe('charge_already_refunded');

    await stub.idle();
    const refunded = receiver
      .events('charge.refunded')
      .filter((e) => (e.data.object as Stripe.Charge).id === chargeId);
    expect(refunded.map((e) => (e.data.object as Stripe.Charge).amount_refunded)).toEqual([300, 800, 1000]);
    expect(refunded[0]!.request).toMatchObject({ id: expect.stringMatching(/^req_/) });
  });

  test('stub.refund (outside the API) follows the same rules and emits charge.refunded', async () => {
    const s = await stripe.checkout.sessions.create({
      mode: 'payment',
      line_items: [{ price_data: { currency: 'usd', unit_amount: 700, product_data: { name: 'Thing' } } }],
      success_url: 'https://app.example.com/paid',
    });
    await pay(s);
    const done = await stub.delivered('checkout.session.completed', s.id);
    const pi = String(done.event.data.object.payment_intent);
    const r = await stub.refund({ payment_intent: pi, amount: 700 });
    expect(r.amount).toBe(700);
    await expect(stub.refund({ payment_intent: pi, amount: 1 })).rejects.toThrow('has already been refunded');
    expect(
      receiver.events('charge.refunded').some((e) => (e.data.object as Stripe.Charge).payment_intent === pi),
    ).toBe(true);
  });
});

describe('stripe stub: Connect', () => {
  test('express account, onboarding through an account link, transfer, Stripe-Account scoping', async () => {
    const acct = await stripe.accounts.create({
      type: 'express',
      email: 'creator@example.com',
      capabilities: { transfers: { requested: true } },
      metadata: { creator: 'c1' },
    });
    expect(acct.id).toStartWith('acct_');
    expect(acct.type).toBe('express');
    expect(acct.charges_enabled).toBe(false);
    expect(acct.capabilities?.transfers).toBe('inactive');

    const refused = await expectStripeError(
      stripe.transfers.create({ amount: 100, currency: 'usd', destination: acct.id }),
    );
    expect(refused.param).toBe('destination');

    const link = await stripe.accountLinks.create({
      account: acct.id,
      type: 'account_onboarding',
      refresh_url: 'https://app.example.com/connect/refresh',
      return_url: 'https://app.example.com/connect/done',
    });
    expect(link.object).toBe('account_link');
    expect(link.expires_at).toBeGreaterThan(link.created);
    const pageHtml = await (await fetch(link.url)).text();
    expect(pageHtml).toContain('Finish onboarding');
    const finished = await fetch(link.url, { method: 'POST', redirect: 'manual' });
    expect(finished.status).toBe(303);
    expect(finished.headers.get('location')).toBe('https://app.example.com/connect/done');
    const updated = await stub.delivered('account.updated', acct.id);
    const verified = receiver.events('account.updated').find((e) => e.id === updated.event.id)!;
    expect(verified.account).toBe(acct.id);
    expect((verified.data.object as Stripe.Account).charges_enabled).toBe(true);
    expect(verified.data.previous_attributes).toMatchObject({ charges_enabled: false });

    const ready = await stripe.accounts.retrieve(acct.id);
    expect(ready.details_submitted).toBe(true);
    expect(ready.capabilities?.transfers).toBe('active');

    const s = await stripe.checkout.sessions.create({
      mode: 'payment',
      line_items: [{ price_data: { currency: 'usd', unit_amount: 2000, product_data: { name: 'Agent' } } }],
      success_url: 'https://app.example.com/paid',
    });
    await pay(s);
    const paid = await stub.delivered('checkout.session.completed', s.id);
    const pi = await stripe.paymentIntents.retrieve(String(paid.event.data.object.payment_intent));
    const tr = await stripe.transfers.create({
      amount: 1400,
      currency: 'usd',
      destination: acct.id,
      transfer_group: 'order-9',
      source_transaction: String(pi.latest_charge),
    });
    expect(tr.id).toStartWith('tr_');
    expect(tr.destination).toBe(acct.id);
    expect(tr.transfer_group).toBe('order-9');
    expect(tr.source_transaction).toBe(String(pi.latest_charge));
    expect(stub.state.transfers.get(tr.id)?.amount).toBe(1400);

    const scoped = await stripe.customers.create(
      { email: 'on-acct@example.com' },
      { stripeAccount: acct.id },
    );
    expect(stub.state.accountOf(scoped.id)).toBe(acct.id);
    expect((await stripe.customers.retrieve(scoped.id, {}, { stripeAccount: acct.id })).id).toBe(scoped.id);
    const hidden = await expectStripeError(stripe.customers.retrieve(scoped.id));
    expect(hidden.code).toBe('resource_missing');
    const unknown = await expectStripeError(stripe.customers.create({}, { stripeAccount: 'acct_unknown' }));
    expect(unknown.statusCode).toBe(403);

    await stub.updateAccount(acct.id, { payouts_enabled: false });
    const last = receiver.events('account.updated').at(-1)!;
    expect(last.data.previous_attributes).toEqual({ payouts_enabled: true });
  });
});

describe('stripe stub: webhook signatures', () => {
  test('emit returns a replayable payload and header; tampering or a wrong secret fails verification', async () => {
    const before = receiver.got.length;
    const out = await stub.emit('invoice.paid', { id: 'in_manual', object: 'invoice', status: 'paid' });
    expect(out.status).toBe(200);
    expect(receiver.got.length).toBe(before + 1);
    expect(out.event.id).toStartWith('evt_');
    expect(out.event.object).toBe('event');
    expect(out.event.livemode).toBe(false);
    expect(out.event.pending_webhooks).toBe(1);
    const ev = await stripe.webhooks.constructEventAsync(out.payload, out.header, SECRET);
    expect(ev.id).toBe(out.event.id);
    expect(ev.type).toBe('invoice.paid');

    const tampered = out.payload.replace('"paid"', '"void"');
    expect(tampered).not.toBe(out.payload);
    await expect(stripe.webhooks.constructEventAsync(tampered, out.header, SECRET)).rejects.toThrow(
      Stripe.errors.StripeSignatureVerificationError,
    );
    await expect(stripe.webhooks.constructEventAsync(out.payload, out.header, 'whsec_other')).rejects.toThrow(
      Stripe.errors.StripeSignatureVerificationError,
    );

    // Delivered tampered, the receiver refuses it.
    const res = await fetch(receiver.url, {
      method: 'POST',
      headers: { 'stripe-signature': out.header, 'content-type': 'application/json' },
      body: tampered,
    });
    expect(res.status).toBe(400);
    expect(receiver.got.at(-1)!.error).toContain('No signatures found matching the expected signature');

    // An old timestamp is outside the SDK's tolerance.
    const stale = await stub.emit(
      'customer.updated',
      { id: 'cus_x', object: 'customer' },
      {
        timestamp: Math.floor(Date.now() / 1000) - 3600,
      },
    );
    expect(stale.status).toBe(400);
    expect(receiver.got.at(-1)!.error).toContain('Timestamp outside the tolerance zone');
  });
});
