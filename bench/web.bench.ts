/**
 * `npm run bench -- web`: the portal in headless chromium on loopback.
 * - navigation → chat usable: from the navigation's start (the page's time origin) to the
 *   message box being on screen and enabled, cold (empty cache) and warm (cached assets);
 * - token → painted: the stub model lets one token out (its drip gate); the time until the
 *   browser has painted it (a MutationObserver on the answer, then the next animation frame),
 *   beside the time until the same token reaches a plain HTTP client of the same API (the
 *   server's share), so the ratio shows what the browser adds.
 * Flags: --tokens N (default 40), --navigations N (default 10).
 */
import type { Page } from 'playwright-core';
import { launchBrowser } from '../tests/browser.ts';
import { startTestServer } from '../tests/helpers.ts';
import { startOpenAIStub } from '../tests/peers/openai-stub.ts';

export const description =
  'portal in chromium: navigation → chat usable, stub token → painted (vs a raw SSE client)';

const now = () => performance.timeOrigin + performance.now();

function stats(xs: number[]) {
  const s = [...xs].sort((a, b) => a - b);
  const q = (p: number) => s[Math.min(s.length - 1, Math.floor(p * s.length))] ?? Number.NaN;
  return { n: s.length, p50: q(0.5), p90: q(0.9), max: s.at(-1) ?? Number.NaN };
}
const ms = (v: number) => `${v.toFixed(1)} ms`;

export async function main(args: string[]): Promise<number> {
  const flag = (name: string, d: number) => {
    const i = args.indexOf(name);
    return i >= 0 ? Number(args[i + 1]) || d : d;
  };
  const tokens = flag('--tokens', 40);
  const navigations = flag('--navigations', 10);
  const stub = await startOpenAIStub({ models: ['gpt-4o-mini'] });
  const s = await startTestServer({
    config: {
      providers: [{ id: 'stub', kind: 'openai', url: stub.url, location: 'on_prem', timeout_ms: 60_000 }],
      models: [{ alias: 'default', route: ['stub/gpt-4o-mini'] }],
    },
  });
  const browser = await launchBrowser();
  try {
    const create = await fetch(`${s.base}/_operator/api/platforms`, {
      method: 'POST',
      headers: {
        host: 'localhost',
        authorization: `Bearer ${s.firstRun!.token}`,
        'content-type': 'application/json',
      },
      body: JSON.stringify({ slug: 'bench', template: 'creator' }),
    });
    const owner = ((await create.json()) as { admin: { email: string; password: string } }).admin;
    const origin = `http://bench.localhost:${s.port}`;
    const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    const page = await context.newPage();
    await page.goto(`${origin}/`);
    const login = await page.evaluate(async (o) => {
      const r = await fetch('/api/v1/auth/login', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(o),
      });
      return { status: r.status, body: await r.json() };
    }, owner);
    if (login.status !== 200) throw new Error(`sign-in failed: ${JSON.stringify(login.body)}`);

    // Navigation → chat usable (the time origin is the navigation's start): a script run before
    // the page's own watches the DOM from the first byte and notes the frame in which the
    // message box is first on screen and enabled (not when the test runner next looks).
    const watchUsable = () => {
      const w = window as unknown as { __usable?: number };
      const ready = () => {
        const el = document.querySelector<HTMLTextAreaElement>('textarea');
        return !!el && !el.disabled && el.offsetParent !== null;
      };
      const mo = new MutationObserver(() => {
        if (w.__usable === undefined && ready()) {
          mo.disconnect();
          requestAnimationFrame(() => {
            w.__usable = performance.now();
          });
        }
      });
      mo.observe(document, { subtree: true, childList: true, attributes: true });
    };
    const usable = async (p: Page) => {
      await p.getByLabel('Message').waitFor();
      await p.waitForFunction(() => (window as unknown as { __usable?: number }).__usable !== undefined);
      return p.evaluate(() => (window as unknown as { __usable: number }).__usable);
    };
    const cold: number[] = [];
    const warm: number[] = [];
    for (let i = 0; i < navigations; i++) {
      const c = await browser.newContext({ viewport: { width: 1280, height: 800 } });
      await c.addCookies(await context.cookies(origin));
      await c.addInitScript(watchUsable);
      const p = await c.newPage();
      await p.goto(`${origin}/app`);
      cold.push(await usable(p));
      await p.goto(`${origin}/app`);
      warm.push(await usable(p));
      await c.close();
    }

    // Token → painted, one token at a time through the drip gate.
    await page.goto(`${origin}/app`);
    await page.getByLabel('Message').waitFor();
    await page.evaluate(() => {
      const w = window as unknown as { __paints: number[] };
      w.__paints = [];
      const mo = new MutationObserver(() => {
        const el = [...document.querySelectorAll('[role="log"] [data-role="assistant"]')].at(-1);
        if (!el) return;
        requestAnimationFrame(() => w.__paints.push(performance.timeOrigin + performance.now()));
      });
      mo.observe(document.body, { subtree: true, childList: true, characterData: true });
    });
    const words = Array.from({ length: tokens }, (_, i) => `w${i}`).join(' ');
    let drip = stub.drip();
    await page.getByLabel('Message').fill(words);
    await page.getByRole('button', { name: 'Send' }).click();
    const painted: number[] = [];
    // The first pieces ("You", "said:") warm the path; then one measured token per release.
    for (let i = 0; i < tokens + 2; i++) {
      await drip.whenHeld(1);
      const before = await page.evaluate(() => (window as unknown as { __paints: number[] }).__paints.length);
      const t0 = now();
      drip.release(1);
      await page.waitForFunction(
        (n) => (window as unknown as { __paints: number[] }).__paints.length > n,
        before,
      );
      const t1 = await page.evaluate(
        (n) => (window as unknown as { __paints: number[] }).__paints[n] as number,
        before,
      );
      if (i >= 2) painted.push(t1 - t0);
    }
    drip.release();
    await page.getByRole('button', { name: 'Send' }).waitFor();

    // The same through a plain client of the platform's API: token released → SSE delta read.
    const cookie = (await context.cookies(origin)).map((c) => `${c.name}=${c.value}`).join('; ');
    const csrf = login.body.csrf_token as string;
    const conv = await fetch(`${s.base}/api/v1/conversations`, {
      method: 'POST',
      headers: {
        host: `bench.localhost:${s.port}`,
        cookie,
        'x-csrf-token': csrf,
        'content-type': 'application/json',
      },
      body: '{}',
    });
    const id = ((await conv.json()) as { conversation: { id: string } }).conversation.id;
    drip = stub.drip();
    const res = await fetch(`${s.base}/api/v1/conversations/${id}/messages`, {
      method: 'POST',
      headers: {
        host: `bench.localhost:${s.port}`,
        cookie,
        'x-csrf-token': csrf,
        'content-type': 'application/json',
      },
      body: JSON.stringify({ content: words }),
    });
    const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
    const raw: number[] = [];
    let buf = '';
    const nextDelta = async () => {
      for (;;) {
        const cut = buf.indexOf('\n\n');
        if (cut >= 0) {
          const block = buf.slice(0, cut);
          buf = buf.slice(cut + 2);
          if (block.includes('event: delta')) return;
          continue;
        }
        const { value, done } = await reader.read();
        if (done) throw new Error('stream ended early');
        buf += value;
      }
    };
    for (let i = 0; i < tokens + 2; i++) {
      await drip.whenHeld(1);
      const t0 = now();
      drip.release(1);
      await nextDelta();
      if (i >= 2) raw.push(now() - t0);
    }
    drip.release();
    await reader.cancel();

    const c = stats(cold);
    const w = stats(warm);
    const p = stats(painted);
    const r = stats(raw);
    const out = {
      navigation_to_chat_usable_ms: { cold: c, warm: w },
      token_to_painted_ms: p,
      token_to_raw_client_ms: r,
      painted_over_raw_p50: p.p50 / r.p50,
    };
    if (args.includes('--json')) console.log(JSON.stringify(out, null, 2));
    else {
      console.log(`portal in headless chromium on loopback (${navigations} navigations, ${tokens} tokens)`);
      console.log(`  navigation → chat usable, cold   p50 ${ms(c.p50)}  p90 ${ms(c.p90)}  max ${ms(c.max)}`);
      console.log(`  navigation → chat usable, warm   p50 ${ms(w.p50)}  p90 ${ms(w.p90)}  max ${ms(w.max)}`);
      console.log(`  token → painted                  p50 ${ms(p.p50)}  p90 ${ms(p.p90)}  max ${ms(p.max)}`);
      console.log(`  token → raw SSE client           p50 ${ms(r.p50)}  p90 ${ms(r.p90)}  max ${ms(r.max)}`);
      console.log(`  painted / raw (p50)              ${(p.p50 / r.p50).toFixed(2)}×`);
    }
    return 0;
  } finally {
    await browser.close();
    await s.cleanup();
    await stub.stop();
  }
}
