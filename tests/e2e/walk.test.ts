/**
 * The walk of issue 11, in Debian's chromium against a real server on 127.0.0.1: the operator
 * signs in → creates a platform in the wizard → its owner signs in on the platform → changes
 * the brand color and sees it on the portal without a rebuild → invites a member → the member
 * accepts from the mail the loopback SMTP server received → chats with a stub model and sees
 * tokens appear as they stream → the owner sees the call in the usage table. axe-core runs on
 * every page on the way; each is screenshotted at 1280 and 375 px (tests/artifacts/screens).
 */
import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import type { Browser, Page } from 'playwright-core';
import { axeProblems, launchBrowser, newContext, screenshots } from '../browser.ts';
import { startTestServer } from '../helpers.ts';
import { type OpenAIStub, startOpenAIStub } from '../peers/openai-stub.ts';
import { type LoopbackSmtp, startLoopbackSmtp } from '../smtp.ts';
import { waitFor } from '../wait.ts';

let browser: Browser;
let s: Awaited<ReturnType<typeof startTestServer>>;
let smtp: LoopbackSmtp;
let stub: OpenAIStub;
let port: number;

beforeAll(async () => {
  smtp = await startLoopbackSmtp();
  stub = await startOpenAIStub({ models: ['gpt-4o-mini'] });
  s = await startTestServer({
    config: {
      mail: { from: 'noreply@mail.test', smtp: { host: '127.0.0.1', port: smtp.port, starttls: 'never' } },
      providers: [{ id: 'stub', kind: 'openai', url: stub.url, location: 'on_prem', timeout_ms: 10_000 }],
      models: [{ alias: 'default', route: ['stub/gpt-4o-mini'] }],
      prices: { 'stub/gpt-4o-mini': { input: 15_000_000, output: 60_000_000, currency: 'usd' } },
    },
  });
  port = s.port;
  browser = await launchBrowser();
}, 60_000);
afterAll(async () => {
  await browser?.close();
  await s?.cleanup();
  await stub?.stop();
  await smtp?.close();
});

/** axe and the screenshots of one main page. */
async function check(page: Page, name: string): Promise<void> {
  expect(await axeProblems(page)).toEqual([]);
  await screenshots(page, `walk-${name}`);
}

describe('the browser walk', () => {
  test('operator → wizard → owner → brand → invite → member chats (streamed) → usage', async () => {
    const op = s.firstRun!;
    const console_ = `http://localhost:${port}`;
    const platform = `http://walk.localhost:${port}`;

    // 1. The operator signs in on the console and creates a platform in the wizard.
    const o = await newContext(browser);
    await o.page.goto(`${console_}/`);
    await o.page.waitForURL(/\/sign-in/);
    await check(o.page, 'console-sign-in');
    await o.page.getByLabel('Email').fill(op.email);
    await o.page.getByLabel('Password').fill(op.password);
    await o.page.getByRole('button', { name: 'Sign in' }).click();
    await o.page.waitForURL(/\/platforms$/);
    await o.page.getByRole('heading', { name: 'Platforms' }).waitFor();
    await check(o.page, 'console-platforms');
    await o.page.getByRole('link', { name: 'New platform' }).click();
    await o.page.waitForURL(/\/new$/);
    await o.page.getByRole('radio', { name: /Creator/ }).check();
    await check(o.page, 'console-wizard-template');
    await o.page.getByRole('button', { name: 'Next' }).click();
    await o.page.getByLabel('Platform name').fill('Walk Studio');
    await o.page.getByLabel('Primary color').fill('#0b6e4f');
    await o.page.getByRole('region', { name: 'Preview' }).getByText('Walk Studio').waitFor();
    await check(o.page, 'console-wizard-brand');
    await o.page.getByRole('button', { name: 'Next' }).click();
    await o.page.getByLabel('Slug').fill('walk');
    await check(o.page, 'console-wizard-domain');
    await o.page.getByRole('button', { name: 'Create platform' }).click();
    await o.page.getByRole('heading', { name: 'Platform created' }).waitFor();
    await check(o.page, 'console-wizard-done');
    const ownerEmail = (await o.page.locator('[data-secret="Owner email"]').textContent())!.trim();
    const ownerPassword = (await o.page.locator('[data-secret="Owner password"]').textContent())!.trim();
    expect(ownerEmail).toContain('@');
    expect(ownerPassword.length).toBeGreaterThanOrEqual(12);
    expect(o.errors).toEqual([]);

    // 2. The owner signs in on the platform's portal and opens the admin.
    const w = await newContext(browser);
    await w.page.goto(`${platform}/`);
    expect(await w.page.title()).toBe('Walk Studio');
    await w.page.getByRole('link', { name: 'Sign in' }).click();
    await w.page.waitForURL(/\/app\/sign-in/);
    await check(w.page, 'portal-sign-in');
    await w.page.getByLabel('Email').fill(ownerEmail);
    await w.page.getByLabel('Password').fill(ownerPassword);
    await w.page.getByRole('button', { name: 'Sign in' }).click();
    await w.page.waitForURL(new RegExp(`^${platform}/app(/|$|\\?)`));
    const primary = () =>
      w.page.evaluate(() =>
        getComputedStyle(document.documentElement).getPropertyValue('--brand-primary').trim(),
      );
    expect(await primary()).toBe('#0b6e4f');

    // 3. The owner changes the brand color; the portal shows it on its next load, no rebuild.
    await w.page.goto(`${platform}/admin/branding`);
    await w.page.getByLabel('Primary color').waitFor();
    await check(w.page, 'admin-branding');
    await w.page.getByLabel('Primary color').fill('#b3261e');
    await w.page.getByRole('button', { name: 'Save branding' }).click();
    await w.page.getByText('Branding saved').waitFor();
    await w.page.goto(`${platform}/app`);
    await waitFor(async () => (await primary()) === '#b3261e');

    // 4. The owner invites a member; the member accepts from the mail.
    await w.page.goto(`${platform}/admin/invitations`);
    await w.page.getByLabel('Email').fill('member@walk.test');
    await w.page.getByRole('button', { name: 'Send invitation' }).click();
    await w.page.getByRole('cell', { name: 'member@walk.test', exact: true }).waitFor();
    await check(w.page, 'admin-invitations');
    const mail = await waitFor(() => smtp.received.find((r) => r.to.includes('member@walk.test')));
    const link = /https?:\/\/[^\s"<>]+accept-invite\?token=[A-Za-z0-9_-]+/.exec(mail.mail.text ?? '')?.[0];
    expect(link).toBeDefined();
    expect(new URL(link!).host).toBe(`walk.localhost:${port}`);
    const m = await newContext(browser);
    await m.page.goto(link!);
    await m.page.getByLabel('Your name').fill('Mia Member');
    await m.page.getByLabel('Password').fill('a-long-member-password-1');
    await check(m.page, 'portal-accept-invite');
    await m.page.getByRole('button', { name: 'Accept the invitation' }).click();
    // Signed in (or sent to sign-in with the email filled): either way, into the chat.
    await m.page.waitForURL(/\/app(\/sign-in.*)?$/);
    if (m.page.url().includes('/sign-in')) {
      await m.page.getByLabel('Password').fill('a-long-member-password-1');
      await m.page.getByRole('button', { name: 'Sign in' }).click();
    }
    await m.page.getByLabel('Message').waitFor();
    await check(m.page, 'portal-chat-empty');

    // 5. The member chats; tokens are painted as the stub lets them out, one at a time.
    const drip = stub.drip();
    await m.page.getByLabel('Message').fill('hello streaming world from the walk');
    await m.page.getByRole('button', { name: 'Send' }).click();
    const answer = m.page.locator('[role="log"] [data-role="assistant"]').last();
    const seen: string[] = [];
    for (let i = 0; i < 4; i++) {
      await drip.whenHeld(1);
      drip.release(1);
      await waitFor(async () => {
        const t = ((await answer.textContent()) ?? '').trim();
        if (t && t !== seen.at(-1)) {
          seen.push(t);
          return true;
        }
        return false;
      });
    }
    // Each token showed before the next was released: the text grew word by word.
    expect(seen.length).toBe(4);
    for (let i = 1; i < seen.length; i++) expect(seen[i]!.startsWith(seen[i - 1]!)).toBe(true);
    drip.release();
    await waitFor(async () => ((await answer.textContent()) ?? '').includes('from the walk'));
    expect(((await answer.textContent()) ?? '').trim()).toBe('You said: hello streaming world from the walk');
    await check(m.page, 'portal-chat');
    expect(m.errors).toEqual([]);

    // 6. The owner sees the call in the usage table.
    await w.page.goto(`${platform}/admin/usage`);
    const table = w.page.getByRole('table', { name: 'Usage by model' });
    await table.getByText('default').first().waitFor();
    await check(w.page, 'admin-usage');
    expect(w.errors).toEqual([]);
    for (const c of [o, w, m]) await c.context.close();
  }, 120_000);
});
