/**
 * Agent tools in the browser (issue 12 item 3): the owner allows a host in the admin, gives an agent a tool
 * that changes something (POST) and its secret in the builder, tests the draft: the chat shows
 * the call waiting, Confirm runs it once (the tool server sees the secret header), Decline does
 * not call it. The tool server is on 127.0.0.1, which this instance's `outbound.allow` opens
 * (the SSRF refusals are tested in src/agents/tools.test.ts, where nothing is opened).
 */
import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import type { Server } from 'bun';
import type { Browser } from 'playwright-core';
import { axeProblems, launchBrowser, newContext, screenshots } from '../browser.ts';
import { operatorApi, startTestServer } from '../helpers.ts';
import { type OpenAIStub, startOpenAIStub } from '../peers/openai-stub.ts';

let browser: Browser;
let s: Awaited<ReturnType<typeof startTestServer>>;
let stub: OpenAIStub;
let tool: Server<undefined>;
let owner: { email: string; password: string };
const calls: { method: string; path: string; auth: string | null; body: string }[] = [];

beforeAll(async () => {
  tool = Bun.serve({
    hostname: '127.0.0.1',
    port: 0,
    async fetch(req) {
      const u = new URL(req.url);
      calls.push({
        method: req.method,
        path: u.pathname,
        auth: req.headers.get('authorization'),
        body: await req.text(),
      });
      return Response.json({ booked: true });
    },
  });
  stub = await startOpenAIStub({ models: ['gpt-4o-mini'] });
  s = await startTestServer({
    config: {
      providers: [{ id: 'stub', kind: 'openai', url: stub.url, location: 'on_prem', timeout_ms: 10_000 }],
      models: [{ alias: 'default', route: ['stub/gpt-4o-mini'] }],
      outbound: { allow: ['127.0.0.1/32'] },
    },
  });
  const r = await operatorApi(s.base, s.firstRun!.token, 'POST', '/platforms', {
    slug: 'tls',
    template: 'creator',
  });
  owner = ((await r.json()) as { admin: { email: string; password: string } }).admin;
  browser = await launchBrowser();
}, 60_000);
afterAll(async () => {
  await browser?.close();
  await s?.cleanup();
  await stub?.stop();
  tool?.stop(true);
});

describe('agent tools in the portal', () => {
  test('add a tool and its secret → the chat asks before a call that changes something → Confirm, Decline', async () => {
    const base = `http://tls.localhost:${s.port}`;
    const o = await newContext(browser);
    await o.page.goto(`${base}/app/sign-in?next=${encodeURIComponent('/admin/tool-hosts')}`);
    await o.page.getByLabel('Email').fill(owner.email);
    await o.page.getByLabel('Password').fill(owner.password);
    await o.page.getByRole('button', { name: 'Sign in' }).click();
    // The platform's admin allows the host; a bad entry is named by the server.
    await o.page.getByRole('heading', { name: 'Agent tools' }).waitFor();
    await o.page.getByLabel('Allowed hosts (one per line)').fill('127.0.0.1\n*.com');
    await o.page.getByRole('button', { name: 'Save' }).click();
    await o.page.getByText('*.com: must be a host name, *.example.com, or an IP address').waitFor();
    await o.page.getByLabel('Allowed hosts (one per line)').fill('127.0.0.1');
    await o.page.getByRole('button', { name: 'Save' }).click();
    await o.page.getByRole('status').getByText('Saved', { exact: true }).waitFor();
    expect(await axeProblems(o.page)).toEqual([]);
    await screenshots(o.page, 'admin-tool-hosts');
    await o.page.goto(`${base}/app/agents/new`);
    await o.page.getByRole('heading', { name: 'New agent' }).waitFor();
    await o.page.getByLabel('Name', { exact: true }).fill('Room Booker');
    await o.page.getByRole('button', { name: 'Create agent' }).click();
    await o.page.getByRole('heading', { name: 'Edit agent' }).waitFor();
    await o.page.getByText('Hosts this platform allows: 127.0.0.1.').waitFor();
    await o.page.getByText('Add a tool').click();
    const add = o.page.getByRole('form', { name: 'New tool' });
    await add.getByLabel('Name', { exact: true }).fill('book_weather');
    await add.getByLabel('Method').selectOption('POST');
    await add.getByLabel('Description').fill('Books a room where the weather is good');
    // A URL on a host the platform does not allow: the server's reason shows at the field.
    await add.getByLabel('URL').fill('https://elsewhere.example/book');
    await add
      .getByLabel('Arguments (a JSON schema of type object)')
      .fill('{"type":"object","properties":{"location":{"type":"string"}},"required":["location"]}');
    await add.getByRole('button', { name: 'Add tool' }).click();
    await add.getByText("URL is not on the platform's tool host allowlist", { exact: true }).waitFor();
    expect(await add.locator('input[name="tools/0/url"]').getAttribute('aria-invalid')).toBe('true');
    await add.getByLabel('URL').fill(`http://127.0.0.1:${tool.port}/book`);
    await add.getByRole('button', { name: 'Add tool' }).click();
    const card = o.page.locator('.tools li').filter({ hasText: 'book_weather' });
    await card.getByText('asks first').waitFor();
    await card.getByText('Set a secret header').click();
    await card.getByLabel('Value').fill('Bearer room-key-1');
    await card.getByRole('button', { name: 'Set secret' }).click();
    await card.getByText('secret in authorization').waitFor();
    expect(await axeProblems(o.page)).toEqual([]);
    await screenshots(o.page, 'agent-tools-builder');

    await o.page.getByRole('button', { name: 'Test the draft' }).click();
    await o.page.getByText('agent draft (test)').waitFor();
    await o.page.getByLabel('Message').fill('what is the weather in Lisbon?');
    await o.page.getByRole('button', { name: 'Send' }).click();
    await o.page.getByRole('heading', { name: 'The agent wants to use book_weather' }).waitFor();
    await o.page.getByText(`POST on 127.0.0.1:${tool.port}`).waitFor();
    expect(calls).toEqual([]);
    expect(await axeProblems(o.page)).toEqual([]);
    await screenshots(o.page, 'agent-tools-confirm');
    await o.page.getByRole('button', { name: 'Confirm' }).click();
    await o.page
      .locator('[role="log"] [data-role="assistant"]')
      .getByText('Tool said: {"booked":true}')
      .waitFor();
    expect(calls).toEqual([
      { method: 'POST', path: '/book', auth: 'Bearer room-key-1', body: '{"location":"Lisbon"}' },
    ]);
    expect(await o.page.getByRole('heading', { name: /wants to use/ }).count()).toBe(0);

    // Asked again, declined: the tool is not called.
    await o.page.getByLabel('Message').fill('and the weather in Porto?');
    await o.page.getByRole('button', { name: 'Send' }).click();
    await o.page.getByRole('heading', { name: 'The agent wants to use book_weather' }).waitFor();
    await o.page.getByRole('button', { name: 'Decline' }).click();
    await o.page.getByText('the user declined this call').waitFor();
    expect(calls.length).toBe(1);
    // After a reload the answers still show their calls: one done, one declined (stored with them).
    await o.page.reload();
    const steps = o.page.getByRole('list', { name: 'Tool calls' });
    await steps.first().waitFor();
    expect(
      await steps
        .locator('li[data-state]')
        .evaluateAll((els) => els.map((e) => e.getAttribute('data-state'))),
    ).toEqual(['ok', 'declined']);
    expect(o.errors).toEqual([]);
    await o.context.close();
  }, 90_000);
});
