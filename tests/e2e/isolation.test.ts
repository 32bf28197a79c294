/**
 * Isolation in the browser: a session of platform A opens no page or API call of platform B,
 * and a platform admin's session opens no operator page or operator API call. Cookies are
 * host-only, and no host answers another's origin with CORS headers; these tests drive a real
 * chromium, so what the browser would send and read is what is checked.
 */
import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import type { Browser } from 'playwright-core';
import { launchBrowser, newContext } from '../browser.ts';
import { operatorApi, startTestServer } from '../helpers.ts';

let browser: Browser;
let s: Awaited<ReturnType<typeof startTestServer>>;
const owners: Record<string, { email: string; password: string }> = {};

beforeAll(async () => {
  s = await startTestServer();
  for (const slug of ['alpha', 'bravo']) {
    const r = await operatorApi(s.base, s.firstRun!.token, 'POST', '/platforms', {
      slug,
      template: 'creator',
    });
    const body = (await r.json()) as { admin: { email: string; password: string } };
    owners[slug] = body.admin;
  }
  browser = await launchBrowser();
}, 60_000);
afterAll(async () => {
  await browser?.close();
  await s?.cleanup();
});

const origin = (slug: string) => `http://${slug}.localhost:${s.port}`;

/** Signs the owner of `slug` in from the platform's own page (the cookie lands in the context). */
async function signIn(page: import('playwright-core').Page, slug: string) {
  await page.goto(`${origin(slug)}/`);
  const status = await page.evaluate(async (o) => {
    const r = await fetch('/api/v1/auth/login', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(o),
    });
    return r.status;
  }, owners[slug]!);
  expect(status).toBe(200);
}

describe('isolation in the browser', () => {
  test('a session of platform A is not a session on platform B, by page or by API', async () => {
    const { context, page } = await newContext(browser);
    await signIn(page, 'alpha');
    expect(await page.evaluate(async () => (await fetch('/api/v1/me')).status)).toBe(200);
    // B's API from B's own page: the browser has no cookie for B.
    await page.goto(`${origin('bravo')}/`);
    expect(await page.evaluate(async () => (await fetch('/api/v1/me')).status)).toBe(401);
    expect(await page.evaluate(async () => (await fetch('/api/v1/users')).status)).toBe(401);
    // B's admin page shows no data: it sends the browser to sign in.
    await page.goto(`${origin('bravo')}/admin/users`);
    await page.waitForURL(/\/app\/sign-in/);
    // From A's page, a credentialed cross-origin read of B's API is blocked by the browser
    // (B answers with no CORS headers), and it would carry no cookie of A anyway.
    await page.goto(`${origin('alpha')}/`);
    const cross = await page.evaluate(async (b) => {
      try {
        const r = await fetch(`${b}/api/v1/me`, { credentials: 'include' });
        return `read ${r.status}`;
      } catch {
        return 'blocked';
      }
    }, origin('bravo'));
    expect(cross).toBe('blocked');
    const cookies = await context.cookies(origin('bravo'));
    expect(cookies).toEqual([]);
    await context.close();
  });

  test("a platform admin's session opens no operator page or operator API call", async () => {
    const { context, page } = await newContext(browser);
    await signIn(page, 'alpha');
    await page.goto(`http://localhost:${s.port}/platforms`);
    await page.waitForURL(/\/sign-in/);
    expect(await page.evaluate(async () => (await fetch('/_operator/api/me')).status)).toBe(401);
    expect(await page.evaluate(async () => (await fetch('/_operator/api/platforms')).status)).toBe(401);
    expect(await context.cookies(`http://localhost:${s.port}`)).toEqual([]);
    // A platform host does not serve the operator API or the console.
    await page.goto(`${origin('alpha')}/`);
    expect(await page.evaluate(async () => (await fetch('/_operator/api/platforms')).status)).toBe(404);
    await context.close();
  });
});
