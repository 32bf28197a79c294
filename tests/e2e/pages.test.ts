/**
 * Every main page of the three browser apps, in Debian's chromium: each shows its screen with
 * no script error, axe-core finds no serious or critical violation (in light and in dark), and a
 * screenshot at 1280 and 375 px lands in tests/artifacts/screens. The walk (walk.test.ts) drives
 * the flows; this visits what the walk passes by.
 */
import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import type { Browser, Page } from 'playwright-core';
import { axeProblems, launchBrowser, newContext, screenshots } from '../browser.ts';
import { operatorApi, startTestServer } from '../helpers.ts';

let browser: Browser;
let s: Awaited<ReturnType<typeof startTestServer>>;
let owner: { email: string; password: string };

beforeAll(async () => {
  s = await startTestServer();
  const r = await operatorApi(s.base, s.firstRun!.token, 'POST', '/platforms', {
    slug: 'pages',
    template: 'business',
    name: 'Pages Co',
  });
  owner = ((await r.json()) as { admin: { email: string; password: string } }).admin;
  browser = await launchBrowser();
}, 60_000);
afterAll(async () => {
  await browser?.close();
  await s?.cleanup();
});

/** Opens `url`, waits for its heading, and checks it; the heading names the screen. */
async function visit(page: Page, url: string, heading: string | RegExp, name: string, scheme: string) {
  await page.goto(url);
  await page.getByRole('heading', { name: heading, level: 1 }).waitFor();
  // Loading states settle before axe looks (no spinner left on the page).
  await page
    .locator('.loading')
    .first()
    .waitFor({ state: 'detached' })
    .catch(() => undefined);
  expect({ page: name, problems: await axeProblems(page) }).toEqual({ page: name, problems: [] });
  if (scheme === 'light') await screenshots(page, `page-${name}`);
}

for (const scheme of ['light', 'dark'] as const) {
  describe(`every main page (${scheme})`, () => {
    test('the operator console', async () => {
      const c = await newContext(browser, { colorScheme: scheme });
      const base = `http://localhost:${s.port}`;
      await c.page.goto(`${base}/sign-in`);
      await c.page.getByLabel('Email').fill(s.firstRun!.email);
      await c.page.getByLabel('Password').fill(s.firstRun!.password);
      await c.page.getByRole('button', { name: 'Sign in' }).click();
      await c.page.waitForURL(/\/platforms$/);
      for (const [path, heading, name] of [
        ['/platforms', 'Platforms', 'console-platforms'],
        ['/platforms/pages', 'Pages Co', 'console-platform'],
        ['/new', 'New platform', 'console-new'],
        ['/operators', 'Operators', 'console-operators'],
        ['/tokens', 'Tokens', 'console-tokens'],
        ['/health', 'Health', 'console-health'],
        ['/audit', 'Audit', 'console-audit'],
        ['/account', 'Your account', 'console-account'],
      ] as const)
        await visit(c.page, base + path, heading, name, scheme);
      // The audit viewer shows the control plane's entries, and verifies the chain.
      await c.page.goto(`${base}/audit`);
      await c.page.getByRole('cell', { name: 'platform.created' }).first().waitFor();
      await c.page.getByRole('button', { name: 'Verify the chain' }).click();
      await c.page.getByText(/control: intact/).waitFor();
      expect(c.errors).toEqual([]);
      await c.context.close();
    }, 60_000);

    test('the platform admin and the portal', async () => {
      const c = await newContext(browser, { colorScheme: scheme });
      const base = `http://pages.localhost:${s.port}`;
      // Signed out, the portal's public screens.
      for (const [path, heading, name] of [
        ['/app/sign-in', 'Sign in', 'portal-sign-in'],
        ['/app/sign-up', 'Create an account', 'portal-sign-up'],
        ['/app/reset-password', /password/i, 'portal-reset-password'],
      ] as const)
        await visit(c.page, base + path, heading, name, scheme);
      await c.page.goto(`${base}/app/sign-in`);
      await c.page.getByLabel('Email').fill(owner.email);
      await c.page.getByLabel('Password').fill(owner.password);
      await c.page.getByRole('button', { name: 'Sign in' }).click();
      await c.page.getByLabel('Message').waitFor();
      for (const [path, heading, name] of [
        ['/app', 'New chat', 'portal-chat-new'],
        ['/app/profile', /profile/i, 'portal-profile'],
        ['/admin', 'Pages Co', 'admin-overview'],
        ['/admin/branding', 'Branding', 'admin-branding'],
        ['/admin/features', 'Features', 'admin-features'],
        ['/admin/users', 'Users', 'admin-users'],
        ['/admin/invitations', 'Invitations', 'admin-invitations'],
        ['/admin/security', 'Security', 'admin-security'],
        ['/admin/sso', 'Single sign-on', 'admin-sso'],
        ['/admin/api-keys', 'API keys', 'admin-api-keys'],
        ['/admin/usage', 'AI usage', 'admin-usage'],
        ['/admin/audit', 'Audit trail', 'admin-audit'],
        ['/admin/nowhere', 'Page not found', 'admin-not-found'],
        ['/app/nowhere', 'Page not found', 'portal-not-found'],
      ] as const)
        await visit(c.page, base + path, heading, name, scheme);
      // The admin's audit shows the platform's own trail.
      await c.page.goto(`${base}/admin/audit`);
      await c.page.getByRole('table', { name: 'Audit entries' }).waitFor();
      expect(await c.page.getByRole('row').count()).toBeGreaterThan(1);
      expect(c.errors).toEqual([]);
      await c.context.close();
    }, 60_000);
  });
}

test('dark mode follows the system unless the brand fixes it', async () => {
  const c = await newContext(browser, { colorScheme: 'dark' });
  const base = `http://pages.localhost:${s.port}`;
  const bg = () => c.page.evaluate(() => getComputedStyle(document.body).backgroundColor);
  await c.page.goto(`${base}/app/sign-in`);
  await c.page.getByRole('heading', { name: 'Sign in' }).waitFor();
  const dark = await bg();
  const light = await newContext(browser, { colorScheme: 'light' });
  await light.page.goto(`${base}/app/sign-in`);
  await light.page.getByRole('heading', { name: 'Sign in' }).waitFor();
  const lightBg = await light.page.evaluate(() => getComputedStyle(document.body).backgroundColor);
  expect(dark).not.toBe(lightBg);
  // The operator fixes the scheme to light: a dark system now gets the light page.
  const r = await operatorApi(s.base, s.firstRun!.token, 'PATCH', '/platforms/pages', {
    blueprint: { identity: { branding: { color_scheme: 'light' } } },
  });
  expect(r.status).toBe(200);
  await c.page.reload();
  await c.page.getByRole('heading', { name: 'Sign in' }).waitFor();
  expect(await bg()).toBe(lightBg);
  await operatorApi(s.base, s.firstRun!.token, 'PATCH', '/platforms/pages', {
    blueprint: { identity: { branding: { color_scheme: 'system' } } },
  });
  await c.context.close();
  await light.context.close();
});

test('the owner uploads a logo in the branding editor; the portal shows it from the platform', async () => {
  const c = await newContext(browser);
  const base = `http://pages.localhost:${s.port}`;
  await c.page.goto(`${base}/app/sign-in?next=/admin/branding`);
  await c.page.getByLabel('Email').fill(owner.email);
  await c.page.getByLabel('Password').fill(owner.password);
  await c.page.getByRole('button', { name: 'Sign in' }).click();
  await c.page.getByRole('heading', { name: 'Branding' }).waitFor();
  const png = Buffer.from(
    'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==',
    'base64',
  );
  await c.page
    .getByLabel(/Upload a logo/)
    .setInputFiles({ name: 'logo.png', mimeType: 'image/png', buffer: png });
  await c.page.getByText('Logo uploaded and saved.').waitFor();
  const address = await c.page.getByLabel('Logo address').inputValue();
  expect(address).toMatch(/^\/brand\/logo-[0-9a-f]{16}\.png$/);
  await c.page.goto(`${base}/app`);
  const img = c.page.locator('header .brand img');
  await img.waitFor();
  expect(await img.getAttribute('src')).toBe(address);
  // It loaded under the page's CSP (a broken image has no natural width).
  await c.page.waitForFunction(
    () => (document.querySelector('header .brand img') as HTMLImageElement)?.naturalWidth > 0,
  );
  expect(c.errors).toEqual([]);
  await c.context.close();
});

test('the owner sets and removes a budget on the usage screen; a bad limit names the field', async () => {
  const c = await newContext(browser);
  const base = `http://pages.localhost:${s.port}`;
  await c.page.goto(`${base}/app/sign-in?next=/admin/usage`);
  await c.page.getByLabel('Email').fill(owner.email);
  await c.page.getByLabel('Password').fill(owner.password);
  await c.page.getByRole('button', { name: 'Sign in' }).click();
  await c.page.getByRole('heading', { name: 'AI usage' }).waitFor();
  await c.page.getByRole('button', { name: 'Set budget' }).click();
  await c.page.getByText('Limit must be an amount, 0 or more').waitFor();
  await c.page.getByLabel('Limit', { exact: false }).first().fill('25');
  await c.page.getByRole('button', { name: 'Set budget' }).click();
  const table = c.page.getByRole('table', { name: 'Budgets' });
  await table.getByRole('cell', { name: '$25.00' }).waitFor();
  await table.getByRole('button', { name: /Remove the month budget/ }).click();
  await c.page.getByRole('dialog').getByRole('button', { name: 'Confirm' }).click();
  await c.page.getByText('No budgets: spending is not capped.').waitFor();
  expect(c.errors).toEqual([]);
  await c.context.close();
});

test("dates show in the viewer's time zone; the API's message shows at the field at fault", async () => {
  const c = await newContext(browser, { timezoneId: 'Asia/Tokyo', locale: 'en-GB' });
  const base = `http://localhost:${s.port}`;
  await c.page.goto(`${base}/sign-in`);
  await c.page.getByLabel('Email').fill(s.firstRun!.email);
  await c.page.getByLabel('Password').fill(s.firstRun!.password);
  await c.page.getByRole('button', { name: 'Sign in' }).click();
  await c.page.getByRole('heading', { name: 'Platforms' }).waitFor();
  const list = (await (await operatorApi(s.base, s.firstRun!.token, 'GET', '/platforms')).json()) as {
    platforms: { slug: string; created_at: string }[];
  };
  const created = list.platforms.find((p) => p.slug === 'pages')!.created_at;
  const tokyo = new Intl.DateTimeFormat('en-GB', {
    dateStyle: 'medium',
    timeStyle: 'short',
    timeZone: 'Asia/Tokyo',
  });
  const utc = new Intl.DateTimeFormat('en-GB', { dateStyle: 'medium', timeStyle: 'short', timeZone: 'UTC' });
  const row = c.page.getByRole('row').filter({ hasText: 'Pages Co' });
  await row.getByRole('cell', { name: tokyo.format(new Date(created)) }).waitFor();
  expect(tokyo.format(new Date(created))).not.toBe(utc.format(new Date(created)));
  // A slug the server refuses: its message is shown on the Slug field, named.
  await c.page.goto(`${base}/new`);
  await c.page.getByRole('button', { name: 'Next' }).click();
  await c.page.getByLabel('Platform name').fill('Bad Slug Co');
  await c.page.getByRole('button', { name: 'Next' }).click();
  await c.page.getByLabel('Slug').fill('Not A Slug!');
  await c.page.getByRole('button', { name: 'Create platform' }).click();
  const slug = c.page.getByLabel('Slug');
  await c.page.locator('input[name="slug"][aria-invalid="true"]').waitFor();
  const describedBy = (await slug.getAttribute('aria-describedby'))!;
  const message = (await c.page.locator(`[id="${describedBy}"]`).textContent())!;
  expect(message.startsWith('Slug ')).toBe(true);
  expect(message.length).toBeGreaterThan('Slug '.length);
  await c.page.getByRole('alert').getByText('platform.slug_invalid').waitFor();
  expect(c.errors).toEqual([]);
  await c.context.close();
});
