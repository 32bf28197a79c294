/**
 * The portal's Markdown cannot run script: a model's answer (the stub echoes what it is sent)
 * carrying script tags, event handlers, javascript: and data: links, images and raw HTML is
 * shown as text or as safe elements only, in a real chromium; and the Markdown it should
 * render (bold, code, lists, links) is rendered.
 */
import { describe, expect, test } from 'bun:test';
import { newContext } from '../browser.ts';
import { e2eSetup } from './setup.ts';

const e = e2eSetup({ slug: 'md' });

const ATTACKS = [
  '<script>window.__pwned = 1</script>',
  '<img src=x onerror="window.__pwned = 2">',
  '[click me](javascript:window.__pwned=3)',
  '[data](data:text/html,<script>window.__pwned=4</script>)',
  '![pic](https://example.invalid/x.png)',
  '<a href="javascript:window.__pwned=5">raw link</a>',
  '<iframe src="javascript:window.__pwned=6"></iframe>',
  '**<svg onload="window.__pwned=7">**',
  '[ok](https://example.invalid/"onmouseover="window.__pwned=8)',
];

describe('Markdown in the chat', () => {
  test('an answer full of script shows as text; no script, handler, frame, image or unsafe link reaches the page', async () => {
    const c = await newContext(e.browser);
    const base = e.base;
    // A request to anything but the platform would be a leak (the image must not load).
    const outside: string[] = [];
    c.page.on('request', (r) => {
      if (!r.url().startsWith(base)) outside.push(r.url());
    });
    await c.page.goto(`${base}/app/sign-in`);
    await c.page.getByLabel('Email').fill(e.owner.email);
    await c.page.getByLabel('Password').fill(e.owner.password);
    await c.page.getByRole('button', { name: 'Sign in' }).click();
    await c.page.getByLabel('Message').waitFor();
    const answers = c.page.locator('[role="log"] [data-role="assistant"]');
    for (const [i, attack] of ATTACKS.entries()) {
      await c.page.getByLabel('Message').fill(attack);
      await c.page.getByRole('button', { name: 'Send' }).click();
      await answers.nth(i).getByText('You said:').waitFor();
      await c.page.getByRole('button', { name: 'Send' }).waitFor();
    }
    const log = c.page.locator('[role="log"]');
    const report = await log.evaluate((el) => ({
      scripts: el.querySelectorAll('script, iframe, object, embed, svg, img').length,
      handlers: [...el.querySelectorAll('*')].flatMap((n) =>
        [...n.attributes].filter((a) => a.name.startsWith('on')).map((a) => a.name),
      ),
      hrefs: [...el.querySelectorAll('a')].map((a) => a.getAttribute('href')),
      pwned: (window as unknown as { __pwned?: number }).__pwned ?? null,
    }));
    expect(report.scripts).toBe(0);
    expect(report.handlers).toEqual([]);
    expect(report.pwned).toBeNull();
    for (const h of report.hrefs) expect(h ?? '').toMatch(/^(https?:|mailto:)/);
    expect(report.hrefs.some((h) => h?.includes('"'))).toBe(false);
    // What was sent shows as the text it is.
    await answers.first().getByText('<script>window.__pwned = 1</script>', { exact: false }).waitFor();
    expect(outside).toEqual([]);
    expect(c.errors).toEqual([]);
    await c.context.close();
  });

  test('the Markdown answers use is rendered: bold, code, a fenced block, a list, a safe link', async () => {
    const c = await newContext(e.browser);
    const base = e.base;
    await c.page.goto(`${base}/app/sign-in`);
    await c.page.getByLabel('Email').fill(e.owner.email);
    await c.page.getByLabel('Password').fill(e.owner.password);
    await c.page.getByRole('button', { name: 'Sign in' }).click();
    await c.page.getByLabel('Message').waitFor();
    await c.page
      .getByLabel('Message')
      .fill(
        '**strong** and `code` and [docs](https://example.invalid/docs)\n\n- one\n- two\n\n```\nlet x = 1;\n```',
      );
    await c.page.getByRole('button', { name: 'Send' }).click();
    const a = c.page.locator('[role="log"] [data-role="assistant"]').last();
    await a.locator('pre code').waitFor();
    expect(await a.locator('strong').first().textContent()).toBe('strong');
    expect(await a.locator('p code').first().textContent()).toBe('code');
    expect(await a.locator('li').allTextContents()).toEqual(['one', 'two']);
    expect((await a.locator('pre code').textContent())?.trim()).toBe('let x = 1;');
    const link = a.getByRole('link', { name: 'docs' });
    expect(await link.getAttribute('href')).toBe('https://example.invalid/docs');
    expect(await link.getAttribute('rel')).toContain('noreferrer');
    await c.context.close();
  });
});
