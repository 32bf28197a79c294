/**
 * Collaboration in the browser (issue 12 item 4): the owner adds a viewer to a private agent
 * in the builder's Members panel, shares a conversation with them, and each sees what the other
 * says arrive live (no reload), with the author's name. axe on both pages.
 */
import { describe, expect, test } from 'bun:test';
import { axeProblems, newContext, screenshots } from '../browser.ts';
import { apiFrom, e2eSetup, signIn } from './setup.ts';

const e = e2eSetup({ slug: 'col', blueprint: { features: { collaborative_agents: true } } });

describe('collaboration in the portal', () => {
  test('members panel → share a conversation → both see each other live', async () => {
    const base = e.base;
    const o = await newContext(e.browser);
    await signIn(o.page, base, e.owner.email, e.owner.password, '/app/agents');
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
    const v = await newContext(e.browser);
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
