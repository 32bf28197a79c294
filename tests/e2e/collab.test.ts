/**
 * Collaboration in the browser (issue 12 item 4): the owner adds a viewer to a private agent
 * in the builder's Members panel, shares a conversation with them, and each sees what the other
 * says arrive live (no reload), with the author's name. axe on both pages.
 */
import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import type { Browser, Page } from 'playwright-core';
import { axeProblems, launchBrowser, newContext, screenshots } from '../browser.ts';
import { operatorApi, startTestServer } from '../helpers.ts';
import { type OpenAIStub, startOpenAIStub } from '../peers/openai-stub.ts';

let browser: Browser;
let s: Awaited<ReturnType<typeof startTestServer>>;
let stub: OpenAIStub;
let owner: { email: string; password: string };

beforeAll(async () => {
  stub = await startOpenAIStub({ models: ['gpt-4o-mini'] });
  s = await startTestServer({
    config: {
      providers: [{ id: 'stub', kind: 'openai', url: stub.url, location: 'on_prem', timeout_ms: 10_000 }],
      models: [{ alias: 'default', route: ['stub/gpt-4o-mini'] }],
    },
  });
  const r = await operatorApi(s.base, s.firstRun!.token, 'POST', '/platforms', {
    slug: 'col',
    template: 'creator',
    blueprint: { features: { collaborative_agents: true } },
  });
  owner = ((await r.json()) as { admin: { email: string; password: string } }).admin;
  browser = await launchBrowser();
}, 60_000);
afterAll(async () => {
  await browser?.close();
  await s?.cleanup();
  await stub?.stop();
});

async function signIn(page: Page, base: string, email: string, password: string, next = '/app') {
  await page.goto(`${base}/app/sign-in?next=${encodeURIComponent(next)}`);
  await page.getByLabel('Email').fill(email);
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Sign in' }).click();
}

/** A JSON call from the page (its session and CSRF token). */
function apiFrom(page: Page, method: string, path: string, body?: unknown) {
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

describe('collaboration in the portal', () => {
  test('members panel → share a conversation → both see each other live', async () => {
    const base = `http://col.localhost:${s.port}`;
    const o = await newContext(browser);
    await signIn(o.page, base, owner.email, owner.password, '/app/agents');
    await o.page.getByRole('heading', { name: 'Agents' }).waitFor();
    const made = await apiFrom(o.page, 'POST', '/api/v1/users', {
      email: 'vi@col.test',
      name: 'Vi',
      role: 'member',
      password: 'member-long-password',
    });
    expect(made.status).toBe(201);
    const agent = await apiFrom(o.page, 'POST', '/api/v1/agents', { name: 'Team Helper' });
    expect(agent.status).toBe(201);
    const id = (agent.body as { agent: { id: string } }).agent.id;
    expect((await apiFrom(o.page, 'POST', `/api/v1/agents/${id}/publish`)).status).toBe(201);

    // The Members panel: an unknown email is named by the server; then Vi as a viewer.
    await o.page.goto(`${base}/app/agents/${id}`);
    await o.page.getByRole('heading', { name: 'Members' }).waitFor();
    const add = o.page.getByRole('form', { name: 'Add a member' });
    await add.getByLabel('Email').fill('nobody@col.test');
    await add.getByRole('button', { name: 'Add member' }).click();
    await add.locator('input[name="email"][aria-invalid="true"]').waitFor();
    await add.getByLabel('Email').fill('vi@col.test');
    await add.getByLabel('Role').selectOption('viewer');
    await add.getByRole('button', { name: 'Add member' }).click();
    await o.page.getByRole('button', { name: 'Remove vi@col.test' }).waitFor();
    expect(await axeProblems(o.page)).toEqual([]);
    await screenshots(o.page, 'collab-members');

    // The owner chats with it and shares the conversation with Vi.
    await o.page.getByRole('button', { name: 'Chat with Team Helper' }).click();
    await o.page.getByRole('heading', { name: /Team Helper/ }).waitFor();
    const conv = /\/app\/c\/([^/?#]+)/.exec(o.page.url())![1]!;
    await o.page.getByRole('button', { name: 'Share conversation' }).click();
    const share = o.page.getByRole('form', { name: 'Add someone' });
    await share.getByLabel('Email').fill('vi@col.test');
    await share.getByRole('button', { name: 'Add' }).click();
    await o.page.getByRole('button', { name: 'Remove vi@col.test' }).waitFor();
    expect(await axeProblems(o.page)).toEqual([]);

    // Vi opens it: shared with them, and what the owner says arrives without a reload.
    const v = await newContext(browser);
    await signIn(v.page, base, 'vi@col.test', 'member-long-password', `/app/c/${conv}`);
    await v.page.getByText('Shared with you').waitFor();
    await v.page.getByRole('heading', { name: /Team Helper/ }).waitFor();
    // Once Vi's page listens (its event stream is open), the owner speaks.
    await v.page.locator('[data-live]').waitFor();
    await o.page.getByLabel('Message').fill('hello team');
    await o.page.getByRole('button', { name: 'Send' }).click();
    await o.page
      .locator('[role="log"] [data-role="assistant"]')
      .getByText(/You said: .*hello team/)
      .waitFor();
    await v.page.locator('[role="log"] [data-role="user"]').getByText('hello team').waitFor();
    await v.page
      .locator('[role="log"] [data-role="assistant"]')
      .getByText(/You said: .*hello team/)
      .waitFor();
    // Vi answers; the owner sees it under Vi's name.
    await v.page.getByLabel('Message').fill('pasta please');
    await v.page.getByRole('button', { name: 'Send' }).click();
    await o.page
      .locator('[role="log"] .msg.user')
      .filter({ hasText: 'pasta please' })
      .getByText('Vi')
      .waitFor();
    await o.page
      .locator('[role="log"] [data-role="assistant"]')
      .getByText('You said: Vi: pasta please')
      .waitFor();
    expect(await axeProblems(v.page)).toEqual([]);
    await screenshots(v.page, 'collab-shared-chat');
    // Vi may not rename or delete it.
    expect(await v.page.getByRole('button', { name: 'Rename' }).count()).toBe(0);
    expect(await v.page.getByRole('button', { name: 'Delete' }).count()).toBe(0);
    expect(o.errors).toEqual([]);
    expect(v.errors).toEqual([]);
    await v.context.close();
    await o.context.close();
  }, 90_000);
});
