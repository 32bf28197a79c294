import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import type { Browser } from 'playwright-core';
import { launchBrowser, newContext } from './browser.ts';
import { startTestServer } from './helpers.ts';

// The harness itself: chromium starts, loads the portal and the console from a real listener,
// runs their scripts under the strict CSP without a console error.
let browser: Browser;
let s: Awaited<ReturnType<typeof startTestServer>>;

beforeAll(async () => {
  s = await startTestServer({ demo: true });
  browser = await launchBrowser();
});
afterAll(async () => {
  await browser?.close();
  await s?.cleanup();
});

describe('browser harness', () => {
  test('the portal and the console render under their CSP', async () => {
    const { context, page, errors } = await newContext(browser);
    await page.goto(`http://demo.localhost:${s.port}/app`);
    await page.locator('#main h1').waitFor();
    expect(await page.title()).not.toBe('');
    await page.goto(`http://localhost:${s.port}/`);
    await page.locator('#main h1').waitFor();
    expect(errors).toEqual([]);
    await context.close();
  });
});
