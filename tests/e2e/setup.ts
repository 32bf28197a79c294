/**
 * The browser tests' shared setup: an OpenAI stub as the `default` model, a server on
 * 127.0.0.1 (a run-time port) routing to it, one platform made by the operator's API (the
 * creator template unless told, with a blueprint patch), its admin's credentials, and chromium.
 * `e2eSetup` registers the beforeAll and afterAll hooks of the file it is called from and
 * returns an object filled in by the time the tests run.
 */
import { afterAll, beforeAll } from 'bun:test';
import type { Browser, Page } from 'playwright-core';
import type { InstanceConfig } from '../../src/app/index.ts';
import { launchBrowser } from '../browser.ts';
import { operatorApi, startTestServer, tempDir } from '../helpers.ts';
import { type OpenAIStub, startOpenAIStub } from '../peers/openai-stub.ts';

export interface E2E {
  browser: Browser;
  s: Awaited<ReturnType<typeof startTestServer>>;
  stub: OpenAIStub;
  /** The platform admin made with it. */
  owner: { email: string; password: string };
  /** The platform's origin: http://<slug>.localhost:<port>. */
  base: string;
  /** A blueprint patch through the operator's API (PATCH /platforms/<slug>); throws unless 200. */
  patchBlueprint(patch: unknown): Promise<void>;
}

export interface E2EOptions {
  slug: string;
  template?: string;
  /** The platform's blueprint patch at creation (omitted: none sent). */
  blueprint?: unknown;
  /**
   * More instance config, given a temporary directory (removed after): its providers and models
   * come after the stub's; anything else is set as given.
   */
  config?: (dir: string) => Partial<InstanceConfig>;
}

export function e2eSetup(opts: E2EOptions): E2E {
  const e = {} as E2E;
  let t: ReturnType<typeof tempDir> | null = null;
  beforeAll(async () => {
    e.stub = await startOpenAIStub({ models: ['gpt-4o-mini'] });
    let more: Partial<InstanceConfig> = {};
    if (opts.config) {
      t = tempDir();
      more = opts.config(t.dir);
    }
    const { providers = [], models = [], ...rest } = more;
    e.s = await startTestServer({
      config: {
        providers: [
          { id: 'stub', kind: 'openai', url: e.stub.url, location: 'on_prem', timeout_ms: 10_000 },
          ...providers,
        ],
        models: [{ alias: 'default', route: ['stub/gpt-4o-mini'] }, ...models],
        ...rest,
      },
    });
    const r = await operatorApi(e.s.base, e.s.firstRun!.token, 'POST', '/platforms', {
      slug: opts.slug,
      template: opts.template ?? 'creator',
      ...(opts.blueprint === undefined ? {} : { blueprint: opts.blueprint }),
    });
    if (r.status !== 201) throw new Error(`POST /platforms: ${r.status} ${await r.text()}`);
    e.owner = ((await r.json()) as { admin: { email: string; password: string } }).admin;
    e.base = `http://${opts.slug}.localhost:${e.s.port}`;
    e.patchBlueprint = async (patch) => {
      const p = await operatorApi(e.s.base, e.s.firstRun!.token, 'PATCH', `/platforms/${opts.slug}`, {
        blueprint: patch,
      });
      if (p.status !== 200) throw new Error(`PATCH /platforms/${opts.slug}: ${p.status} ${await p.text()}`);
    };
    e.browser = await launchBrowser();
  }, 60_000);
  afterAll(async () => {
    await e.browser?.close();
    await e.s?.cleanup();
    await e.stub?.stop();
    t?.cleanup();
  });
  return e;
}

/** Signs in on the platform's sign-in page, to `next`. */
export async function signIn(page: Page, base: string, email: string, password: string, next = '/app') {
  await page.goto(`${base}/app/sign-in?next=${encodeURIComponent(next)}`);
  await page.getByLabel('Email').fill(email);
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Sign in' }).click();
}

/** A JSON call from the page (its session and CSRF token). */
export function apiFrom(page: Page, method: string, path: string, body?: unknown) {
  return page.evaluate(
    async ({ method, path, body }) => {
      const me = await (await fetch('/api/v1/me')).json();
      const r = await fetch(path, {
        method,
        headers: { 'content-type': 'application/json', 'x-csrf-token': me.csrf_token },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      return { status: r.status, body: await r.json().catch(() => null) };
    },
    { method, path, body },
  );
}
