/**
 * The operator's plans in the console (issue 13 item 1), in chromium: the operator edits a
 * plan's limit on the Plans page, puts a platform on it from the platform's page, sees the
 * over-limit warning there, and moves it to a bigger plan, which clears the warning.
 */
import { afterAll, beforeAll, expect, test } from 'bun:test';
import type { Browser } from 'playwright-core';
import { axeProblems, launchBrowser, newContext } from '../browser.ts';
import { operatorApi, startTestServer } from '../helpers.ts';

let browser: Browser;
let s: Awaited<ReturnType<typeof startTestServer>>;

beforeAll(async () => {
  s = await startTestServer();
  const r = await operatorApi(s.base, s.firstRun!.token, 'POST', '/platforms', {
    slug: 'plansco',
    template: 'creator',
    name: 'Plans Co',
  });
  expect(r.status).toBe(201);
  // Two more users: three with the owner (made by the owner through the API).
  const owner = ((await r.json()) as { admin: { email: string; password: string } }).admin;
  const host = `http://plansco.localhost:${s.port}`;
  const login = await fetch(`${host}/api/v1/auth/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', origin: host },
    body: JSON.stringify(owner),
  });
  expect(login.status).toBe(200);
  const cookie = (login.headers.get('set-cookie') ?? '').split(';')[0]!;
  const csrf = ((await login.json()) as { csrf_token: string }).csrf_token;
  for (const email of ['a@plans.test', 'b@plans.test']) {
    const u = await fetch(`${host}/api/v1/users`, {
      method: 'POST',
      headers: { cookie, 'x-csrf-token': csrf, 'content-type': 'application/json', origin: host },
      body: JSON.stringify({ email, role: 'member', password: 'a-long-password-12' }),
    });
    expect(u.status).toBe(201);
  }
  browser = await launchBrowser();
}, 60_000);
afterAll(async () => {
  await browser?.close();
  await s?.cleanup();
});

test('edit a plan, put a platform on it, see the over-limit warning, upgrade', async () => {
  const c = await newContext(browser);
  const base = `http://localhost:${s.port}`;
  await c.page.goto(`${base}/sign-in?next=/plans`);
  await c.page.getByLabel('Email').fill(s.firstRun!.email);
  await c.page.getByLabel('Password').fill(s.firstRun!.password);
  await c.page.getByRole('button', { name: 'Sign in' }).click();
  await c.page.getByRole('heading', { name: 'Plans', level: 1 }).waitFor();
  const table = c.page.getByRole('table', { name: 'Plans' });
  await table.getByRole('cell', { name: 'Starter (starter)' }).waitFor();

  // A new plan with a limit of 2 users.
  await c.page.getByRole('button', { name: 'New plan' }).click();
  await c.page.getByLabel(/^Id/).fill('duo');
  await c.page.getByLabel('Name').fill('Duo');
  await c.page.getByLabel(/^User limit/).fill('2');
  await c.page.getByLabel(/^Transaction fee/).fill('150');
  await c.page.getByRole('button', { name: 'Save' }).click();
  // The server's error names the field.
  await c.page.getByText(/Transaction fee \(%\) a percentage from 0 to 100/).waitFor();
  await c.page.getByLabel(/^Transaction fee/).fill('12.5');
  await c.page.getByRole('button', { name: 'Save' }).click();
  await table.getByRole('cell', { name: 'Duo (duo)' }).waitFor();
  expect({ problems: await axeProblems(c.page) }).toEqual({ problems: [] });

  // The platform's page: its plan, then Duo, which it is over.
  await c.page.goto(`${base}/platforms/plansco`);
  await c.page.getByRole('heading', { name: 'Plan', exact: true }).waitFor();
  await c.page.getByText(/3 users of 1,000/).waitFor();
  await c.page.getByLabel('Move to plan').selectOption('duo');
  await c.page.getByRole('button', { name: 'Change plan' }).click();
  await c.page.getByText(/Over its limit: .*limit of 2/).waitFor();
  expect({ problems: await axeProblems(c.page) }).toEqual({ problems: [] });
  // The platforms list warns too.
  await c.page.goto(`${base}/platforms`);
  await c.page.getByText("Over their plan's user limit").waitFor();
  await c.page.getByRole('listitem').filter({ hasText: 'plansco (duo, 3 users)' }).waitFor();
  await c.page.goto(`${base}/platforms/plansco`);
  await c.page.getByLabel('Move to plan').selectOption('business');
  await c.page.getByRole('button', { name: 'Change plan' }).click();
  await c.page.getByText(/3 users of 50,000/).waitFor();
  expect(await c.page.getByText(/Over its limit/).count()).toBe(0);
  expect(c.errors).toEqual([]);
  await c.context.close();
}, 60_000);
