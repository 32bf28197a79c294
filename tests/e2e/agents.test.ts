/**
 * Agents in the browser (issue 12, first part): a creator builds an agent in the portal, tests
 * its draft in the chat (the stub sees its instructions as the system prompt), publishes it for
 * everyone on the platform, and a member finds it and chats with the live version. axe and
 * screenshots on the agents pages.
 */
import { describe, expect, test } from 'bun:test';
import { join } from 'node:path';
import { axeProblems, newContext, screenshots } from '../browser.ts';
import { writeBagOfWordsModel } from '../fixtures/onnx-model.ts';
import { e2eSetup, signIn } from './setup.ts';

const GUIDE = `# Packing guide

Pack a rain jacket for the hills: the weather turns fast above the tree line.

For the sea, bring sunscreen and a hat; the wind hides how strong the sun is.`;

const e = e2eSetup({
  slug: 'agt',
  config: (dir) => {
    const modelsDir = join(dir, 'models');
    writeBagOfWordsModel(
      modelsDir,
      'bow',
      `${GUIDE} what should i pack for the sea`.match(/[\p{L}\p{N}]+/gu)!,
      64,
    );
    return {
      providers: [{ id: 'onnx', kind: 'onnx', models_dir: modelsDir }],
      models: [{ alias: 'embed', route: ['onnx/bow'] }],
      knowledge: { embedding_model: 'embed', chunk_chars: 120 },
    };
  },
});

describe('agents in the portal', () => {
  test('build → test the draft → publish → a member chats with it', async () => {
    const base = e.base;
    const o = await newContext(e.browser);
    // A member to share with, made by the owner's API.
    await signIn(o.page, base, e.owner.email, e.owner.password, '/app/agents');
    await o.page.getByRole('heading', { name: 'Agents' }).waitFor();
    const made = await o.page.evaluate(async () => {
      const me = await (await fetch('/api/v1/me')).json();
      return (
        await fetch('/api/v1/users', {
          method: 'POST',
          headers: { 'content-type': 'application/json', 'x-csrf-token': me.csrf_token },
          body: JSON.stringify({ email: 'mem@agt.test', role: 'member', password: 'member-long-password' }),
        })
      ).status;
    });
    expect(made).toBe(201);
    await o.page.getByText('No agents yet.').waitFor();
    expect(await axeProblems(o.page)).toEqual([]);
    await o.page.getByRole('link', { name: 'New agent' }).click();
    await o.page.getByRole('heading', { name: 'New agent' }).waitFor();
    await o.page.getByLabel('Name', { exact: true }).fill('Trip Planner');
    await o.page.getByLabel('Avatar').fill('🧭');
    await o.page.getByLabel('Description').fill('Plans weekend trips.');
    await o.page.getByLabel('Instructions').fill('You plan short trips. Answer in lists.');
    await o.page.getByLabel('Who can use it').selectOption('platform');
    // A bad temperature is named by the server at its field.
    await o.page.getByLabel('Temperature').fill('5');
    await o.page.getByRole('button', { name: 'Create agent' }).click();
    await o.page.locator('input[name="temperature"][aria-invalid="true"]').waitFor();
    await o.page.getByLabel('Temperature').fill('0.5');
    await o.page.getByRole('button', { name: 'Create agent' }).click();
    await o.page.getByRole('heading', { name: 'Edit agent' }).waitFor();
    await o.page.getByText('Not published yet').waitFor();
    // Knowledge: a Markdown file, read, embedded and listed; a broken PDF fails with the server's
    // reason; a Word file is refused in the page.
    await o.page.getByLabel('Add documents').setInputFiles([
      { name: 'packing.md', mimeType: 'text/markdown', buffer: Buffer.from(GUIDE) },
      { name: 'scan.pdf', mimeType: 'application/pdf', buffer: Buffer.from('%PDF-1.4') },
      { name: 'notes.docx', mimeType: 'application/octet-stream', buffer: Buffer.from('PK') },
    ]);
    await o.page.getByRole('listitem').filter({ hasText: 'packing.md:' }).getByText('added').waitFor();
    await o.page.getByRole('listitem').filter({ hasText: 'scan.pdf:' }).getByText('failed').waitFor();
    await o.page.getByRole('listitem').filter({ hasText: 'notes.docx:' }).getByText('refused').waitFor();
    await o.page.getByRole('button', { name: 'Remove packing.md' }).waitFor();
    expect(await axeProblems(o.page)).toEqual([]);
    await screenshots(o.page, 'agents-builder');
    // Test the draft: the stub is sent the instructions as the system prompt.
    await o.page.getByRole('button', { name: 'Test the draft' }).click();
    await o.page.getByText('agent draft (test)').waitFor();
    const before = e.stub.requests.length;
    await o.page.getByLabel('Message').fill('a weekend in the hills');
    await o.page.getByRole('button', { name: 'Send' }).click();
    await o.page
      .locator('[role="log"] [data-role="assistant"]')
      .getByText('You said: a weekend in the hills')
      .waitFor();
    const sent = e.stub.requests.slice(before).find((r) => r.path.endsWith('/chat/completions'))!.body as {
      messages: { role: string; content: string }[];
      temperature: number;
    };
    expect(sent.messages[0]).toEqual({ role: 'system', content: 'You plan short trips. Answer in lists.' });
    expect(sent.temperature).toBe(0.5);
    // Publish.
    await o.page.goto(`${base}/app/agents`);
    await o.page.getByRole('link', { name: 'Edit Trip Planner' }).click();
    await o.page.getByRole('button', { name: 'Publish' }).click();
    await o.page.getByRole('dialog').getByRole('button', { name: 'Confirm' }).click();
    await o.page.getByText('Version 1 published').waitFor();
    expect(o.errors).toEqual([]);
    await o.context.close();

    // The member finds it and chats with version 1.
    const m = await newContext(e.browser);
    await signIn(m.page, base, 'mem@agt.test', 'member-long-password', '/app/agents');
    await m.page.getByRole('heading', { name: 'Agents' }).waitFor();
    await m.page.getByText('Plans weekend trips.').waitFor();
    expect(await m.page.getByRole('link', { name: 'New agent' }).count()).toBe(0);
    expect(await m.page.getByRole('link', { name: 'Edit Trip Planner' }).count()).toBe(0);
    expect(await axeProblems(m.page)).toEqual([]);
    await screenshots(m.page, 'agents-list');
    await m.page.getByRole('button', { name: 'Chat with Trip Planner' }).click();
    await m.page
      .getByRole('heading', { name: /Trip Planner/ })
      .getByText('agent v1')
      .waitFor();
    expect(await m.page.getByLabel('Model').isDisabled()).toBe(true);
    await m.page.getByLabel('Message').fill('what should I pack for the sea');
    await m.page.getByRole('button', { name: 'Send' }).click();
    await m.page
      .locator('[role="log"] [data-role="assistant"]')
      .getByText('You said: what should I pack for the sea')
      .waitFor();
    // The answer lists its sources: the guide's part about the sea first.
    await m.page.getByText('Sources (').click();
    const first = m.page.locator('.sources li').first();
    expect(await first.textContent()).toContain('packing.md');
    expect(await first.textContent()).toContain('sunscreen');
    expect(await axeProblems(m.page)).toEqual([]);
    await screenshots(m.page, 'agents-chat-sources');
    expect(m.errors).toEqual([]);
    await m.context.close();
  }, 90_000);

  test('list → a member finds, installs, reviews and reports it → the owner moderates it', async () => {
    const base = e.base;
    const o = await newContext(e.browser);
    await signIn(o.page, base, e.owner.email, e.owner.password, '/app/agents');
    await o.page.getByRole('link', { name: 'Edit Trip Planner' }).click();
    await o.page.getByRole('button', { name: 'List in the marketplace' }).click();
    await o.page.getByText('Listed in the marketplace').waitFor();

    const m = await newContext(e.browser);
    await signIn(m.page, base, 'mem@agt.test', 'member-long-password', '/app/marketplace');
    await m.page.getByRole('heading', { name: 'Marketplace' }).waitFor();
    await m.page.getByLabel('Search agents').fill('weekend');
    await m.page.getByRole('button', { name: 'Search' }).click();
    await m.page.getByRole('link', { name: 'Trip Planner' }).click();
    await m.page.getByRole('heading', { name: 'Trip Planner' }).waitFor();
    expect(await axeProblems(m.page)).toEqual([]);
    await m.page.getByRole('button', { name: 'Install' }).click();
    await m.page.getByText('Installed (version 1)').waitFor();
    await m.page.getByLabel('Your rating').selectOption('4');
    await m.page.getByLabel('Your review').fill('Good for short trips.');
    await m.page.getByRole('button', { name: 'Post review' }).click();
    await m.page.getByText('Good for short trips.').waitFor();
    await m.page.getByText('Report this agent').click();
    await m.page.getByLabel('What is wrong').fill('It sent me to a closed road.');
    await m.page.getByRole('button', { name: 'Send report' }).click();
    await m.page.getByText("the platform's moderators will look at it").waitFor();
    await screenshots(m.page, 'marketplace-listing');
    expect(m.errors).toEqual([]);
    await m.context.close();

    // The owner forks it: a private copy to build on, from the listed version.
    await o.page.goto(`${base}/app/marketplace`);
    await o.page.getByRole('link', { name: 'Trip Planner' }).click();
    await o.page.getByRole('button', { name: 'Fork Trip Planner' }).click();
    await o.page.getByRole('heading', { name: 'Edit agent' }).waitFor();
    expect(await o.page.getByLabel('Instructions').inputValue()).toBe(
      'You plan short trips. Answer in lists.',
    );
    await o.page.goto(`${base}/admin/moderation`);
    await o.page.getByRole('heading', { name: 'Moderation' }).waitFor();
    await o.page.getByText('It sent me to a closed road.').waitFor();
    expect(await axeProblems(o.page)).toEqual([]);
    await screenshots(o.page, 'admin-moderation');
    // No reason: the server's reason shows, nothing changes.
    await o.page.getByRole('button', { name: 'Suspend' }).click();
    await o.page.getByRole('alert').getByText('listing.invalid').waitFor();
    await o.page.getByLabel('Reason for Trip Planner').fill('Checking the road advice.');
    await o.page.getByRole('button', { name: 'Suspend' }).click();
    // Suspended, it stays in the queue with what a moderator can still do: restore or revoke.
    await o.page.getByRole('button', { name: 'Restore' }).waitFor();
    await o.page.getByRole('button', { name: 'Revoke' }).waitFor();
    const list = await o.page.evaluate(
      async () => (await (await fetch('/api/v1/marketplace')).json()).listings.length,
    );
    expect(list).toBe(0);
    expect(o.errors).toEqual([]);
    await o.context.close();
  }, 90_000);
});
