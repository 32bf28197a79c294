/**
 * Invoices in the browser (issue 13 item 5): last month's activity of a member (AI usage and a
 * charge under a new code, posted to the ledger at last month's time), issued by the admin on the
 * admin's Invoices page; the member sees the invoice on /app/billing, opens the printable page
 * (branded, the lines and total) and downloads the PDF.
 */
import { describe, expect, test } from 'bun:test';
import { accountId, openAccount, post } from '../../src/billing/index.ts';
import { axeProblems, newContext, screenshots } from '../browser.ts';
import { apiFrom, e2eSetup, signIn } from './setup.ts';

const PASSWORD = 'member-long-password';
const e = e2eSetup({ slug: 'inv' });

/** The first instant of last month and a day into it (UTC). */
function lastMonth() {
  const d = new Date();
  const start = Date.UTC(d.getUTCFullYear(), d.getUTCMonth() - 1, 1);
  return { month: new Date(start).toISOString().slice(0, 7), at: start + 86_400_000 };
}

describe('invoices', () => {
  test('the admin issues last month; the member reads the invoice as a page and a PDF', async () => {
    const { month, at } = lastMonth();
    const o = await newContext(e.browser);
    await signIn(o.page, e.base, e.owner.email, e.owner.password, '/admin/invoices');
    await o.page.getByRole('heading', { name: 'Invoices', level: 1 }).waitFor();
    const r = await apiFrom(o.page, 'POST', '/api/v1/users', {
      email: 'dan@inv.test',
      role: 'member',
      password: PASSWORD,
    });
    expect(r.status).toBe(201);
    const danId = (r.body as { user: { id: string } }).user.id;
    const platformId = e.s.tenancy.get('inv').id;
    await e.s.app.platformDbs.use(platformId, (db) => {
      const user = openAccount(db, { kind: 'end_user', owner: danId, currency: 'usd' }, at);
      const platform = openAccount(db, { kind: 'platform', currency: 'usd' }, at);
      expect(user).toBe(accountId('end_user', danId, 'usd'));
      post(
        db,
        [
          {
            id: 'e2e-usage',
            debit: user,
            credit: platform,
            amount: 1_234_567_890n,
            currency: 'usd',
            code: 'usage',
          },
          {
            id: 'e2e-fee',
            debit: user,
            credit: platform,
            amount: 250_000_000n,
            currency: 'usd',
            code: 'agent_fee',
          },
        ],
        at,
      );
    });
    await o.page.getByLabel('Month (UTC)').fill(month);
    await o.page.getByRole('button', { name: 'Issue' }).click();
    // dan's invoice, and the operator's bill to the platform (its plan: Starter).
    await o.page.getByText('2 issued, 0 already issued.').waitFor();
    await o.page.getByRole('cell', { name: 'INV-000001', exact: true }).waitFor();
    await o.page.getByRole('cell', { name: 'dan@inv.test' }).waitFor();
    expect(await axeProblems(o.page)).toEqual([]);
    await screenshots(o.page, 'admin-invoices');
    await o.context.close();

    const d = await newContext(e.browser);
    await signIn(d.page, e.base, 'dan@inv.test', PASSWORD, '/app/billing');
    await d.page.getByRole('heading', { name: 'Invoices' }).waitFor();
    await d.page.getByRole('cell', { name: 'INV-000001', exact: true }).waitFor();
    // 12.35 (usage 12.34567890, rounded once) + 2.50, no tax rates set.
    await d.page.getByRole('cell', { name: '$14.85' }).waitFor();
    expect(await axeProblems(d.page)).toEqual([]);
    const [view] = await Promise.all([
      d.context.waitForEvent('page'),
      d.page.getByRole('link', { name: 'View invoice INV-000001' }).click(),
    ]);
    await view.waitForLoadState();
    expect(await view.title()).toContain('INV-000001');
    await view.getByText('AI usage').waitFor();
    await view.getByText('14.85 USD').first().waitFor();
    const href = await d.page.getByRole('link', { name: 'PDF of invoice INV-000001' }).getAttribute('href');
    // Fetched as the page's link would be (the browser's session cookie).
    const pdf = await d.page.evaluate(async (u) => {
      const r = await fetch(u);
      const head = new Uint8Array(await r.arrayBuffer()).subarray(0, 5);
      return { status: r.status, type: r.headers.get('content-type'), head: String.fromCharCode(...head) };
    }, href!);
    expect(pdf).toEqual({ status: 200, type: 'application/pdf', head: '%PDF-' });
    await d.context.close();
  }, 60_000);
});
