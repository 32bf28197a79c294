/**
 * Federation in the browser (issue 12 item 8): platform A's owner exports a version from the
 * builder, platform B's owner imports the file on the Import page; A shares the agent in the
 * admin's ecosystem catalog with a revenue share, B imports it from there; A revokes the
 * version and B's copy shows it revoked. axe and screenshots on the new pages.
 */
import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { generateKeyPairSync } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { Browser, Page } from 'playwright-core';
import { axeProblems, launchBrowser, newContext, screenshots } from '../browser.ts';
import { operatorApi, startTestServer } from '../helpers.ts';
import { type OpenAIStub, startOpenAIStub } from '../peers/openai-stub.ts';

let browser: Browser;
let s: Awaited<ReturnType<typeof startTestServer>>;
let stub: OpenAIStub;
const owners: Record<string, { email: string; password: string }> = {};

beforeAll(async () => {
  stub = await startOpenAIStub({ models: ['gpt-4o-mini'] });
  s = await startTestServer({
    config: {
      providers: [{ id: 'stub', kind: 'openai', url: stub.url, location: 'on_prem', timeout_ms: 10_000 }],
      models: [{ alias: 'default', route: ['stub/gpt-4o-mini'] }],
    },
  });
  for (const [slug, name] of [
    ['fea', 'Alpha Kitchen'],
    ['feb', 'Beta School'],
  ] as const) {
    const r = await operatorApi(s.base, s.firstRun!.token, 'POST', '/platforms', {
      slug,
      name,
      template: 'creator',
    });
    owners[slug] = ((await r.json()) as { admin: { email: string; password: string } }).admin;
  }
  browser = await launchBrowser();
}, 60_000);
afterAll(async () => {
  await browser?.close();
  await s?.cleanup();
  await stub?.stop();
});

async function signIn(page: Page, base: string, who: { email: string; password: string }, next: string) {
  await page.goto(`${base}/app/sign-in?next=${encodeURIComponent(next)}`);
  await page.getByLabel('Email').fill(who.email);
  await page.getByLabel('Password').fill(who.password);
  await page.getByRole('button', { name: 'Sign in' }).click();
}

describe('federation in the portal and the admin', () => {
  test('export → import a file → share in the catalog → import from it → revoke', async () => {
    const baseA = `http://fea.localhost:${s.port}`;
    const baseB = `http://feb.localhost:${s.port}`;
    const a = await newContext(browser);
    await signIn(a.page, baseA, owners.fea!, '/app/agents');
    await a.page.getByRole('heading', { name: 'Agents' }).waitFor();
    // The agent, made and published through the API as its owner.
    const agentId = await a.page.evaluate(async () => {
      const me = await (await fetch('/api/v1/me')).json();
      const h = { 'content-type': 'application/json', 'x-csrf-token': me.csrf_token };
      const made = await (
        await fetch('/api/v1/agents', {
          method: 'POST',
          headers: h,
          body: JSON.stringify({ name: 'Soup Helper', description: 'Soups.', persona: 'You make soup.' }),
        })
      ).json();
      await fetch(`/api/v1/agents/${made.agent.id}/publish`, { method: 'POST', headers: h });
      return made.agent.id as string;
    });
    await a.page.goto(`${baseA}/app/agents/${agentId}`);
    const download = a.page.waitForEvent('download');
    await a.page.getByRole('button', { name: 'Export version 1' }).click();
    const file = await download;
    expect(file.suggestedFilename()).toBe('soup-helper-v1.agent.json');
    const pkgText = readFileSync((await file.path())!, 'utf8');
    expect(JSON.parse(pkgText).provenance.platform.name).toBe('Alpha Kitchen');
    await a.page.getByText('Version 1 exported').waitFor();

    // B imports the file on the Import page.
    const b = await newContext(browser);
    await signIn(b.page, baseB, owners.feb!, '/app/agents');
    await b.page.getByRole('heading', { name: 'Agents' }).waitFor();
    await b.page.getByRole('link', { name: 'Import' }).click();
    await b.page.getByRole('heading', { name: 'Import an agent' }).waitFor();
    expect(await axeProblems(b.page)).toEqual([]);
    await screenshots(b.page, 'federation-import');
    // A tampered package is refused with the server's reason.
    await b.page.getByLabel('Or paste it').fill(pkgText.replace('You make soup.', 'You make stew.'));
    await b.page.getByRole('button', { name: 'Import', exact: true }).click();
    await b.page.getByText("the package's signature does not hold").waitFor();
    await b.page.getByLabel('Package file').setInputFiles({
      name: 'soup-helper-v1.agent.json',
      mimeType: 'application/json',
      buffer: Buffer.from(pkgText),
    });
    await b.page.getByRole('button', { name: 'Import', exact: true }).click();
    await b.page.getByRole('heading', { name: 'Edit agent' }).waitFor();
    await b.page.getByText('Imported from Alpha Kitchen').waitFor();
    // Listed in B's marketplace, the copy keeps its attribution.
    await b.page.getByRole('button', { name: 'List in the marketplace' }).click();
    await b.page.getByText('Listed in the marketplace').waitFor();
    await b.page.goto(`${baseB}/app/marketplace`);
    await b.page
      .getByRole('link', { name: /Soup Helper/ })
      .first()
      .click();
    await b.page.getByText('From Alpha Kitchen').waitFor();

    // A shares it in the ecosystem catalog, asking for 10%.
    await a.page.goto(`${baseA}/admin/catalog`);
    await a.page.getByRole('heading', { name: 'Ecosystem catalog' }).waitFor();
    await a.page.getByText('Nothing is shared yet.').waitFor();
    await a.page.getByLabel('Agent (its latest published version)').selectOption(agentId);
    await a.page.getByLabel('Summary').fill('Warm soups for cold days.');
    await a.page.getByLabel('Revenue share to this platform (%)').fill('10');
    await a.page.getByRole('button', { name: 'Share', exact: true }).click();
    await a.page.getByText('is in the catalog').waitFor();
    await a.page.getByText('from this platform').waitFor();
    expect(await axeProblems(a.page)).toEqual([]);
    await screenshots(a.page, 'federation-catalog');

    // B sees it with A's name and imports it from the catalog.
    await b.page.goto(`${baseB}/admin/catalog`);
    await b.page.getByText('Warm soups for cold days.').waitFor();
    await b.page.getByText('from Alpha Kitchen').waitFor();
    await b.page.getByText('revenue share to its source: 10%').waitFor();
    expect(await b.page.getByRole('button', { name: 'Withdraw' }).count()).toBe(0);
    await b.page.getByRole('button', { name: 'Import Soup Helper' }).click();
    await b.page.getByText('imported: it is your agent on Beta School now').waitFor();
    expect(await axeProblems(b.page)).toEqual([]);

    // A revokes version 1 from the builder: B's copies show it revoked.
    await a.page.goto(`${baseA}/app/agents/${agentId}`);
    await a.page.getByLabel('Reason to revoke version 1').fill('the recipe is unsafe');
    await a.page.getByRole('button', { name: 'Revoke version 1' }).click();
    await a.page.getByRole('dialog').getByRole('button', { name: 'Confirm' }).click();
    await a.page.getByText('Version 1 revoked').waitFor();
    await b.page.goto(`${baseB}/app/agents`);
    await b.page.getByRole('heading', { name: 'Agents' }).waitFor();
    await b.page.getByRole('link', { name: 'Edit Soup Helper' }).first().click();
    await b.page.getByText('Revoked at its source: the recipe is unsafe').waitFor();
    expect(a.errors).toEqual([]);
    expect(b.errors).toEqual([]);
    await a.context.close();
    await b.context.close();
  }, 120_000);

  test("the console: this server's key, and pinning another server's key for a platform", async () => {
    const o = await newContext(browser);
    await o.page.goto(`http://localhost:${s.port}/sign-in`);
    await o.page.getByLabel('Email').fill(s.firstRun!.email);
    await o.page.getByLabel('Password').fill(s.firstRun!.password);
    await o.page.getByRole('button', { name: 'Sign in' }).click();
    await o.page.waitForURL(/\/platforms$/);
    await o.page.goto(`http://localhost:${s.port}/platforms/feb`);
    await o.page.getByRole('heading', { name: 'Federation' }).waitFor();
    await o.page.getByText("This server's key is").waitFor();
    await o.page.getByText('No other server').waitFor();
    const pub = generateKeyPairSync('ed25519')
      .publicKey.export({ type: 'spki', format: 'der' })
      .toString('base64');
    // A key id that is not the key's own is refused with the server's reason.
    await o.page.getByLabel('Public key').fill(pub);
    await o.page.getByLabel('Key id (as its operator read it)').fill('ed25519:0000');
    await o.page.getByRole('button', { name: 'Trust this key' }).click();
    await o.page.getByText("is not this public key's id").first().waitFor();
    await o.page.getByLabel('Key id (as its operator read it)').fill('');
    await o.page.getByLabel('Whose key').fill('Gamma server');
    await o.page.getByRole('button', { name: 'Trust this key' }).click();
    await o.page.getByText('(Gamma server)').waitFor();
    expect(await axeProblems(o.page)).toEqual([]);
    await screenshots(o.page, 'federation-console');
    await o.page.getByRole('button', { name: /^Stop trusting/ }).click();
    await o.page.getByRole('dialog').getByRole('button', { name: 'Confirm' }).click();
    await o.page.getByText('No other server').waitFor();
    expect(o.errors).toEqual([]);
    await o.context.close();
  }, 60_000);
});
