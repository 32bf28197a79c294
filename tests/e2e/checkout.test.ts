/**
 * Buying a marketplace agent in the browser (issue 13, "Done when"): a member opens a paid
 * listing, clicks to buy, pays on Stripe Checkout (the protocol-faithful stub's hosted page,
 * on 127.0.0.1), comes back to the listing, and sees the agent installed; the stub's signed
 * webhook reached the operator's endpoint, and the ledger holds the sale's legs. Then the
 * member tops up credits on the billing page (another checkout), and buys a second agent with
 * them at once, with no checkout.
 */
import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { axeProblems, newContext, screenshots } from '../browser.ts';
import { type StripeStub, startStripeStub } from '../peers/stripe-stub.ts';
import { apiFrom, e2eSetup, signIn } from './setup.ts';

const KEY_ENV = 'SOULFRA_TEST_E2E_STRIPE_KEY';
const WHSEC_ENV = 'SOULFRA_TEST_E2E_STRIPE_WHSEC';
const WHSEC = 'whsec_e2e_checkout';
const PASSWORD = 'member-long-password';

let stripe: StripeStub;
beforeAll(async () => {
  process.env[KEY_ENV] = 'sk_test_e2e';
  process.env[WHSEC_ENV] = WHSEC;
  stripe = await startStripeStub({ apiKey: 'sk_test_e2e' });
});
afterAll(async () => {
  await stripe?.stop();
});

const e = e2eSetup({
  slug: 'buy',
  config: () => ({
    billing: { stripe: { secret_key_env: KEY_ENV, webhook_secret_env: WHSEC_ENV, api_base: stripe.url } },
  }),
});

let listingId = '';
let secondId = '';
let creatorId = '';

beforeAll(async () => {
  stripe.addEndpoint(`http://127.0.0.1:${e.s.port}/_operator/api/billing/stripe/webhook`, WHSEC);
  const o = await newContext(e.browser);
  await signIn(o.page, e.base, e.owner.email, e.owner.password, '/app/agents');
  await o.page.getByRole('heading', { name: 'Agents' }).waitFor();
  for (const [email, role] of [
    ['cat@buy.test', 'creator'],
    ['dan@buy.test', 'member'],
  ] as const) {
    const r = await apiFrom(o.page, 'POST', '/api/v1/users', { email, role, password: PASSWORD });
    expect(r.status).toBe(201);
    if (role === 'creator') creatorId = (r.body as { user: { id: string } }).user.id;
  }
  // The creator template's free tier allows one agent: cat lists two, on Enterprise.
  const tier = await apiFrom(o.page, 'POST', `/api/v1/admin/billing/subscriptions/${creatorId}`, {
    tier: 'enterprise',
    note: 'the test creator',
  });
  expect(tier.status).toBe(200);
  await o.context.close();
  const c = await newContext(e.browser);
  await signIn(c.page, e.base, 'cat@buy.test', PASSWORD, '/app/agents');
  await c.page.getByRole('heading', { name: 'Agents' }).waitFor();
  const a = await apiFrom(c.page, 'POST', '/api/v1/agents', { name: 'Tax Pro', persona: 'You do taxes.' });
  const agentId = (a.body as { agent: { id: string } }).agent.id;
  expect((await apiFrom(c.page, 'POST', `/api/v1/agents/${agentId}/publish`)).status).toBe(201);
  const l = await apiFrom(c.page, 'POST', `/api/v1/agents/${agentId}/listing`, {
    title: 'Tax Pro',
    summary: 'Your taxes, done.',
    category: 'finance',
    tags: ['tax'],
    price_model: 'one_time',
    price_minor: 999,
    currency: 'usd',
  });
  expect(l.status).toBe(201);
  listingId = (l.body as { listing: { id: string } }).listing.id;
  const a2 = await apiFrom(c.page, 'POST', '/api/v1/agents', {
    name: 'Poem Pro',
    persona: 'You write poems.',
  });
  const agent2 = (a2.body as { agent: { id: string } }).agent.id;
  expect((await apiFrom(c.page, 'POST', `/api/v1/agents/${agent2}/publish`)).status).toBe(201);
  const l2 = await apiFrom(c.page, 'POST', `/api/v1/agents/${agent2}/listing`, {
    title: 'Poem Pro',
    summary: 'Poems on demand.',
    category: 'writing',
    tags: ['poems'],
    price_model: 'one_time',
    price_minor: 700,
    currency: 'usd',
  });
  secondId = (l2.body as { listing: { id: string } }).listing.id;
  await c.context.close();
}, 60_000);

describe('buying an agent', () => {
  test('buy, pay on Stripe Checkout, come back: installed, and the ledger holds the sale', async () => {
    const d = await newContext(e.browser);
    await signIn(d.page, e.base, 'dan@buy.test', PASSWORD, `/app/marketplace/${listingId}`);
    const buy = d.page.getByRole('button', { name: 'Buy and install ($9.99)' });
    await buy.waitFor();
    await buy.click();
    // Stripe's hosted page (the stub's, on 127.0.0.1).
    await d.page.waitForURL(`${stripe.url}/pay/**`);
    await d.page.getByRole('heading', { name: 'Pay $9.99' }).waitFor();
    await d.page.getByRole('button', { name: 'Pay' }).click();
    // Back on the listing: what was bought is installed.
    await d.page.waitForURL(`${e.base}/app/marketplace/${listingId}**`);
    await d.page.getByText('Payment received: the agent is installed.').waitFor();
    await d.page.getByText('Installed (version 1)').waitFor();
    expect(await axeProblems(d.page)).toEqual([]);
    await screenshots(d.page, 'marketplace-bought');
    await d.context.close();

    await stripe.idle();
    expect(stripe.state.events.map((x) => [x.event.type, x.status])).toContainEqual([
      'checkout.session.completed',
      200,
    ]);
    const o = await newContext(e.browser);
    await signIn(o.page, e.base, e.owner.email, e.owner.password, '/app');
    await o.page.waitForURL(`${e.base}/app**`);
    const ledger = await apiFrom(o.page, 'GET', '/api/v1/admin/billing/ledger');
    const credit = (id: string) =>
      (ledger.body as { accounts: { id: string; credits_posted_micro: number }[] }).accounts.find(
        (a) => a.id === id,
      )?.credits_posted_micro;
    // 9.99 at 70/30, the operator's 15% from the platform's side (micro-units of a cent).
    expect(credit(`creator:${creatorId}:usd`)).toBe(699.3 * 1_000_000);
    expect(credit('operator::usd')).toBe(149.85 * 1_000_000);
    const purchases = await apiFrom(o.page, 'GET', '/api/v1/admin/billing/purchases');
    expect((purchases.body as { purchases: { status: string }[] }).purchases.map((p) => p.status)).toEqual([
      'paid',
    ]);
    await o.context.close();
  }, 60_000);

  test('top up credits on the billing page, then buy with them at once', async () => {
    const d = await newContext(e.browser);
    await signIn(d.page, e.base, 'dan@buy.test', PASSWORD, '/app/billing');
    await d.page.getByRole('heading', { name: 'Billing' }).waitFor();
    await d.page.getByRole('textbox', { name: /^Amount/ }).fill('20.00');
    await d.page.getByRole('button', { name: 'Top up' }).click();
    await d.page.waitForURL(`${stripe.url}/pay/**`);
    await d.page.getByRole('heading', { name: 'Pay $20.00' }).waitFor();
    await d.page.getByRole('button', { name: 'Pay' }).click();
    await d.page.waitForURL(`${e.base}/app/billing**`);
    await d.page.getByText('Payment received: your credits are topped up.').waitFor();
    await d.page.getByRole('strong').getByText('$20.00', { exact: true }).waitFor();
    expect(await axeProblems(d.page)).toEqual([]);
    await screenshots(d.page, 'portal-billing');
    const sessions = stripe.state.checkoutSessions.size;
    await d.page.goto(`${e.base}/app/marketplace/${secondId}`);
    await d.page.getByRole('button', { name: 'Buy and install ($7.00)' }).click();
    await d.page.getByText('Installed (version 1)').waitFor();
    // Paid from the credits: no new checkout.
    expect(stripe.state.checkoutSessions.size).toBe(sessions);
    await d.page.goto(`${e.base}/app/billing`);
    await d.page.getByRole('strong').getByText('$13.00', { exact: true }).waitFor();
    await d.page.getByRole('cell', { name: 'credits' }).waitFor();
    // The low-balance notice's threshold: a bad amount names the field; a good one is kept.
    await d.page.getByLabel('Notify me below').fill('abc');
    await d.page.getByRole('button', { name: 'Save' }).click();
    await d.page
      .getByText(/low_balance_minor|from 0 to/)
      .first()
      .waitFor();
    await d.page.getByLabel('Notify me below').fill('25.00');
    await d.page.getByRole('button', { name: 'Save' }).click();
    await d.page.getByText('Saved.').waitFor();
    await d.page.reload();
    await d.page.getByText('We mail you when your credits fall below this amount.').waitFor();
    expect(await d.page.getByLabel('Notify me below').inputValue()).toBe('25.00');
    expect(await axeProblems(d.page)).toEqual([]);
    await d.context.close();
  }, 60_000);

  test('subscribe to a plan on the pricing page, pay, come back: the plan is active', async () => {
    const d = await newContext(e.browser);
    await signIn(d.page, e.base, 'dan@buy.test', PASSWORD, '/app/pricing');
    await d.page.getByRole('heading', { name: 'Plans' }).waitFor();
    await d.page.getByRole('heading', { name: /Free\s+Your plan/ }).waitFor();
    expect(await axeProblems(d.page)).toEqual([]);
    await screenshots(d.page, 'portal-pricing');
    await d.page.getByRole('button', { name: 'Subscribe to Pro' }).click();
    await d.page.waitForURL(`${stripe.url}/pay/**`);
    await d.page.getByRole('heading', { name: 'Pay $19.00' }).waitFor();
    await d.page.getByRole('button', { name: 'Pay' }).click();
    await d.page.waitForURL(`${e.base}/app/billing**`);
    await d.page.getByText('Welcome to Pro: your plan is active.').waitFor();
    const plan = d.page.getByRole('region', { name: 'Your plan' });
    await plan.getByText('Pro', { exact: true }).waitFor();
    await plan.getByText(/^Renews on /).waitFor();
    expect(await axeProblems(d.page)).toEqual([]);
    await screenshots(d.page, 'portal-billing-plan');
    // The payment method is managed on Stripe's billing portal.
    await plan.getByRole('button', { name: 'Manage payment method' }).click();
    await d.page.waitForURL(`${stripe.url}/portal/**`);
    await d.page.goto(`${e.base}/app/pricing`);
    await d.page.getByRole('heading', { name: /Pro\s+Your plan/ }).waitFor();
    await d.context.close();
  }, 60_000);
});

describe('paying the creator', () => {
  test("the creator sets up payouts on Stripe's hosted onboarding; the admin pays them out from Revenue", async () => {
    const c = await newContext(e.browser);
    await signIn(c.page, e.base, 'cat@buy.test', PASSWORD, '/app/billing');
    await c.page.getByRole('heading', { name: 'Earnings and payouts' }).waitFor();
    // 9.99 and 7.00 sold at 70/30: 6.993 + 4.90 earned.
    await c.page.getByRole('strong').getByText('$11.89', { exact: true }).first().waitFor();
    await c.page.getByRole('button', { name: 'Set up payouts' }).click();
    await c.page.waitForURL(`${stripe.url}/connect/onboard/**`);
    await c.page.getByRole('button', { name: 'Finish onboarding' }).click();
    await c.page.waitForURL(`${e.base}/app/billing**`);
    await c.page.getByText('Payouts are set up').waitFor();
    expect(await axeProblems(c.page)).toEqual([]);
    await c.context.close();

    const o = await newContext(e.browser);
    await signIn(o.page, e.base, e.owner.email, e.owner.password, '/admin/revenue');
    await o.page.getByRole('heading', { name: 'Revenue', exact: true }).waitFor();
    await o.page.getByRole('table', { name: 'Revenue by month' }).waitFor();
    await o.page.locator('.uplot canvas').first().waitFor();
    expect(await axeProblems(o.page)).toEqual([]);
    await screenshots(o.page, 'admin-revenue');
    await o.page.getByRole('button', { name: 'Pay out $11.89 to cat@buy.test' }).click();
    await o.page.getByRole('button', { name: 'Confirm' }).click();
    await o.page.getByRole('table', { name: 'Payouts' }).getByText('Stripe transfer').waitFor();
    expect([...stripe.state.transfers.values()].map((t) => [t.amount, t.destination])).toEqual([
      [1189, [...stripe.state.accounts.values()][0]!.id],
    ]);
    await o.context.close();
  }, 60_000);
});
