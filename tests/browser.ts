/**
 * The browser tests' harness: Debian's chromium through playwright-core, a real server on
 * 127.0.0.1 (a free port; `*.localhost` names resolve to loopback in chromium), axe-core on a
 * page, and screenshots saved to tests/artifacts/screens (git-ignored).
 *
 * Chromium is found at $CHROMIUM_PATH, /usr/bin/chromium or /usr/bin/chromium-headless-shell;
 * `scripts/ensure-chromium.ts` (run by `npm test`) installs it where it can.
 */
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import AxeBuilder from '@axe-core/playwright';
import { type Browser, type BrowserContext, chromium, type Page } from 'playwright-core';
import { ROOT } from './helpers.ts';

export const CHROMIUM_CANDIDATES = [
  '/usr/bin/chromium',
  '/usr/bin/chromium-headless-shell',
  '/usr/bin/chromium-browser',
];

export function findChromium(): string | null {
  const env = process.env.CHROMIUM_PATH;
  if (env && existsSync(env)) return env;
  return CHROMIUM_CANDIDATES.find((p) => existsSync(p)) ?? null;
}

export async function launchBrowser(): Promise<Browser> {
  const executablePath = findChromium();
  if (!executablePath)
    throw new Error(
      'chromium is not installed: run `sudo apt-get install -y chromium` (or set CHROMIUM_PATH)',
    );
  return chromium.launch({
    executablePath,
    headless: true,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--no-first-run',
      '--disable-dev-shm-usage',
    ],
  });
}

export const SCREENS_DIR = join(ROOT, 'tests', 'artifacts', 'screens');

/** Saves a screenshot of `page` at 1280 and 375 px wide (restoring its size after). */
export async function screenshots(page: Page, name: string): Promise<void> {
  mkdirSync(SCREENS_DIR, { recursive: true });
  const size = page.viewportSize() ?? { width: 1280, height: 800 };
  for (const width of [1280, 375]) {
    await page.setViewportSize({ width, height: width === 375 ? 812 : 800 });
    await page.screenshot({ path: join(SCREENS_DIR, `${name}-${width}.png`), fullPage: true });
  }
  await page.setViewportSize(size);
}

/** axe-core's serious and critical violations on the page, as readable lines (empty: none). */
export async function axeProblems(page: Page): Promise<string[]> {
  const r = await new AxeBuilder({ page }).analyze();
  return r.violations
    .filter((v) => v.impact === 'serious' || v.impact === 'critical')
    .map((v) => `${v.id} (${v.impact}): ${v.help} — ${v.nodes.map((n) => n.target.join(' ')).join(', ')}`);
}

/** A new browser context (its own cookies), with console errors and failed requests collected. */
export async function newContext(
  browser: Browser,
  opts: { colorScheme?: 'light' | 'dark'; timezoneId?: string; locale?: string } = {},
): Promise<{ context: BrowserContext; page: Page; errors: string[] }> {
  const context = await browser.newContext({
    viewport: { width: 1280, height: 800 },
    colorScheme: opts.colorScheme ?? 'light',
    timezoneId: opts.timezoneId ?? 'America/New_York',
    locale: opts.locale ?? 'en-US',
  });
  // A step that cannot happen fails in seconds, not at the 30 s test timeout.
  context.setDefaultTimeout(10_000);
  const page = await context.newPage();
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(`pageerror: ${e.message}`));
  page.on('console', (m) => {
    if (m.type() === 'error' && !m.text().startsWith('Failed to load resource'))
      errors.push(`console: ${m.text()}`);
  });
  // A failed load names its URL (the console message does not).
  page.on('response', (r) => {
    if (r.status() >= 400 && r.request().resourceType() !== 'fetch' && r.request().resourceType() !== 'xhr')
      errors.push(`${r.status()} ${r.request().method()} ${new URL(r.url()).pathname}`);
  });
  return { context, page, errors };
}
