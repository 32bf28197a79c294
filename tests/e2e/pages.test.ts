/**
 * Every main page of the three browser apps, in Debian's chromium: each shows its screen with
 * no script error, axe-core finds no serious or critical violation (in light and in dark), and a
 * screenshot at 1280 and 375 px lands in tests/artifacts/screens. The walk (walk.test.ts) drives
 * the flows; this visits what the walk passes by.
 */
import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { Secret, TOTP } from 'otpauth';
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
        ['/plans', 'Plans', 'console-plans'],
        ['/operators', 'Operators', 'console-operators'],
        ['/tokens', 'Tokens', 'console-tokens'],
        ['/health', 'Health', 'console-health'],
        ['/billing', 'Fee income', 'console-fees'],
        ['/audit', 'Audit', 'console-audit'],
        ['/account', 'Your account', 'console-account'],
      ] as const)
        await visit(c.page, base + path, heading, name, scheme);
      // The health screen lists each platform's database.
      await c.page.goto(`${base}/health`);
      await c.page
        .getByRole('table', { name: 'Platform databases' })
        .getByRole('link', { name: 'pages' })
        .waitFor();
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
        ['/admin/revenue', 'Revenue', 'admin-revenue'],
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

test('the operator runs a platform through its lifecycle, and makes and revokes a token, from the console', async () => {
  await operatorApi(s.base, s.firstRun!.token, 'POST', '/platforms', {
    slug: 'life',
    template: 'blank',
    name: 'Life Co',
  });
  const c = await newContext(browser);
  const base = `http://localhost:${s.port}`;
  await c.page.goto(`${base}/sign-in?next=/platforms/life`);
  await c.page.getByLabel('Email').fill(s.firstRun!.email);
  await c.page.getByLabel('Password').fill(s.firstRun!.password);
  await c.page.getByRole('button', { name: 'Sign in' }).click();
  await c.page.getByRole('heading', { name: 'Life Co' }).waitFor();
  const status = () => c.page.locator('.card .badge').first();
  const confirm = () => c.page.getByRole('dialog').getByRole('button', { name: 'Confirm' }).click();
  const host = () => fetch(`http://life.localhost:${s.port}/app`).then((r) => r.status);
  await c.page.getByRole('button', { name: 'Suspend' }).click();
  await confirm();
  await c.page.getByRole('button', { name: 'Resume' }).waitFor();
  expect(await status().textContent()).toBe('suspended');
  expect(await host()).toBe(503);
  await c.page.getByRole('button', { name: 'Resume' }).click();
  await c.page.getByRole('button', { name: 'Suspend' }).waitFor();
  expect(await host()).toBe(200);
  await c.page.getByRole('button', { name: 'Archive' }).click();
  await confirm();
  await c.page.getByRole('button', { name: 'Unarchive' }).waitFor();
  expect(await status().textContent()).toBe('archived');
  await c.page.getByRole('button', { name: 'Unarchive' }).click();
  await c.page.getByRole('button', { name: 'Archive' }).waitFor();
  await c.page.getByRole('button', { name: 'Archive' }).click();
  await confirm();
  await c.page.getByRole('button', { name: 'Delete' }).click();
  await confirm();
  await c.page.waitForURL(/\/platforms$/);
  const left = (await (await operatorApi(s.base, s.firstRun!.token, 'GET', '/platforms')).json()) as {
    platforms: { slug: string }[];
  };
  expect(left.platforms.map((p) => p.slug)).not.toContain('life');
  // A token: made (shown once), listed, revoked.
  await c.page.goto(`${base}/tokens`);
  await c.page.getByLabel('Token name').fill('from the console');
  await c.page.getByRole('button', { name: 'Make token' }).click();
  const secret = (await c.page.locator('[data-secret="Operator token"]').textContent())!.trim();
  const me = await fetch(`${s.base}/_operator/api/me`, {
    headers: { host: 'localhost', authorization: `Bearer ${secret}` },
  });
  expect(me.status).toBe(200);
  await c.page.getByRole('button', { name: 'Revoke from the console' }).click();
  await confirm();
  await c.page.getByRole('row').filter({ hasText: 'from the console' }).getByText('revoked').waitFor();
  const after = await fetch(`${s.base}/_operator/api/me`, {
    headers: { host: 'localhost', authorization: `Bearer ${secret}` },
  });
  expect(after.status).toBe(401);
  expect(c.errors).toEqual([]);
  await c.context.close();
}, 60_000);

test("the admin's and the profile's actions work from the browser: role, security, keys, password, authenticator", async () => {
  const c = await newContext(browser);
  const base = `http://pages.localhost:${s.port}`;
  const confirm = () => c.page.getByRole('dialog').getByRole('button', { name: 'Confirm' }).click();
  // A second user to manage, made by the API the admin uses.
  await c.page.goto(`${base}/app/sign-in?next=/admin/users`);
  await c.page.getByLabel('Email').fill(owner.email);
  await c.page.getByLabel('Password').fill(owner.password);
  await c.page.getByRole('button', { name: 'Sign in' }).click();
  await c.page.getByRole('heading', { name: 'Users' }).waitFor();
  const made = await c.page.evaluate(async () => {
    const me = await (await fetch('/api/v1/me')).json();
    const r = await fetch('/api/v1/users', {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-csrf-token': me.csrf_token },
      body: JSON.stringify({ email: 'ada@pages.test', role: 'member', password: 'ada-long-password-1' }),
    });
    return r.status;
  });
  expect(made).toBe(201);
  await c.page.reload();
  await c.page.getByLabel('Role of ada@pages.test').selectOption('creator');
  await c.page.getByLabel('Role of ada@pages.test').and(c.page.locator(':enabled')).waitFor();
  const users = () =>
    c.page.evaluate(
      async () =>
        (await (await fetch('/api/v1/users')).json()).users as {
          email: string;
          role: string;
          status: string;
        }[],
    );
  await c.page.waitForFunction(async () =>
    ((await (await fetch('/api/v1/users')).json()).users as { email: string; role: string }[]).some(
      (u) => u.email === 'ada@pages.test' && u.role === 'creator',
    ),
  );
  await c.page.getByRole('button', { name: 'Disable ada@pages.test' }).click();
  await confirm();
  await c.page.getByRole('button', { name: 'Enable ada@pages.test' }).waitFor();
  expect((await users()).find((u) => u.email === 'ada@pages.test')!.status).toBe('disabled');
  // Security: owners must use MFA; saved, and read back.
  await c.page.goto(`${base}/admin/security`);
  await c.page.getByRole('checkbox', { name: 'auditor' }).check();
  await c.page.getByLabel('Sign out after idle (minutes)').fill('1');
  await c.page.getByRole('button', { name: 'Save security settings' }).click();
  // 1 minute is below the minimum: the server's reason shows on that field.
  await c.page.locator('input[name="session_idle_minutes"][aria-invalid="true"]').waitFor();
  await c.page.getByLabel('Sign out after idle (minutes)').fill('60');
  await c.page.getByRole('button', { name: 'Save security settings' }).click();
  await c.page.getByText('Security settings saved').waitFor();
  const settings = await c.page.evaluate(async () => (await fetch('/api/v1/settings/identity')).json());
  expect(settings).toMatchObject({ mfa_required_roles: ['auditor'], session_idle_minutes: 60 });
  // An API key made in the admin works, and stops when revoked there.
  await c.page.goto(`${base}/admin/api-keys`);
  await c.page.getByLabel('Key name').fill('admin key');
  await c.page.getByRole('button', { name: 'Create key' }).click();
  const key = (await c.page.locator('[data-secret="API key"]').textContent())!.trim();
  const asKey = () =>
    fetch(`${s.base}/api/v1/me`, {
      headers: { host: `pages.localhost:${s.port}`, authorization: `Bearer ${key}` },
    });
  expect((await asKey()).status).toBe(200);
  await c.page.getByRole('button', { name: 'Revoke admin key' }).click();
  await confirm();
  await c.page.getByRole('row').filter({ hasText: 'admin key' }).getByText('revoked').waitFor();
  expect((await asKey()).status).toBe(401);
  // The profile: an authenticator, then a new password (other sessions end; this one stays).
  await c.page.goto(`${base}/app/profile`);
  await c.page.getByRole('button', { name: 'Set up authenticator' }).click();
  const secret = (await c.page
    .locator('#mfa ~ form .secret, section[aria-labelledby="mfa"] .secret')
    .first()
    .textContent())!.trim();
  await c.page
    .getByLabel('Authentication code')
    .fill(new TOTP({ secret: Secret.fromBase32(secret) }).generate());
  await c.page.getByRole('button', { name: 'Turn on' }).click();
  await c.page.getByText('Two-step sign-in is on').waitFor();
  await c.page.getByLabel('Current password').fill(owner.password);
  await c.page.getByLabel('New password').fill('a-brand-new-owner-password');
  await c.page.getByRole('button', { name: 'Change password' }).click();
  await c.page.getByText(/password (is )?changed/i).waitFor();
  const old = await fetch(`${s.base}/api/v1/auth/login`, {
    method: 'POST',
    headers: { host: `pages.localhost:${s.port}`, origin: base, 'content-type': 'application/json' },
    body: JSON.stringify(owner),
  });
  expect(old.status).toBe(401);
  owner = { ...owner, password: 'a-brand-new-owner-password' };
  expect(c.errors).toEqual([]);
  await c.context.close();
}, 60_000);

test('the console invites an operator, maps a domain and makes an owner reset link', async () => {
  const c = await newContext(browser);
  const base = `http://localhost:${s.port}`;
  await c.page.goto(`${base}/sign-in?next=/operators`);
  await c.page.getByLabel('Email').fill(s.firstRun!.email);
  await c.page.getByLabel('Password').fill(s.firstRun!.password);
  await c.page.getByRole('button', { name: 'Sign in' }).click();
  await c.page.getByRole('heading', { name: 'Operators' }).waitFor();
  await c.page.getByLabel('Email').fill('second-op@ops.test');
  await c.page.getByRole('button', { name: 'Invite' }).click();
  await c.page.getByRole('cell', { name: 'second-op@ops.test', exact: true }).waitFor();
  await c.page.goto(`${base}/platforms/pages`);
  await c.page.getByLabel('Domain', { exact: true }).fill('ai.pages.test');
  await c.page.getByRole('button', { name: 'Add domain' }).click();
  await c.page.getByRole('button', { name: 'Remove ai.pages.test' }).waitFor();
  const p = (await (await operatorApi(s.base, s.firstRun!.token, 'GET', '/platforms/pages')).json()) as {
    domains: string[];
  };
  expect(p.domains).toEqual(['ai.pages.test']);
  await c.page.getByRole('button', { name: 'Remove ai.pages.test' }).click();
  await c.page.getByRole('dialog').getByRole('button', { name: 'Confirm' }).click();
  await c.page.getByText('None: the platform answers on its own subdomain.').waitFor();
  await c.page.getByRole('button', { name: 'Make an owner reset link' }).click();
  const link = (await c.page.locator('[data-secret^="Reset link for"]').textContent())!.trim();
  expect(link).toStartWith(`http://pages.localhost:`);
  expect(new URL(link).pathname).toBe('/app/reset-password');
  expect(c.errors).toEqual([]);
  await c.context.close();
}, 60_000);
