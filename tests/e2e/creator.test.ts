/**
 * Sharing in the browser (issue 12 items 1, 6 and 9): a creator makes a link-only agent, makes
 * its share link and copies the Share links (with the referral code); a visitor arrives by the
 * sign-up link, signs up (credited to the creator), opens the agent's share link and chats with
 * it; the creator's page shows the agent's figures and the referrals, and the admin's table of
 * referrers the owner's. axe and screenshots.
 */
import { describe, expect, test } from 'bun:test';
import { axeProblems, newContext, screenshots } from '../browser.ts';
import { e2eSetup, signIn } from './setup.ts';

const e = e2eSetup({
  slug: 'crt',
  blueprint: { governance: { user_verification: { email_required: false, age_verification: false } } },
});

describe('sharing in the portal', () => {
  test('link agent → share links → a referred sign-up opens the link and chats → the creator page', async () => {
    const base = e.base;
    const o = await newContext(e.browser);
    await signIn(o.page, base, e.owner.email, e.owner.password, '/app/agents/new');
    await o.page.getByRole('heading', { name: 'New agent' }).waitFor();
    await o.page.getByLabel('Name', { exact: true }).fill('Quiet Helper');
    await o.page.getByLabel('Description').fill('Only for those with the link.');
    await o.page.getByLabel('Instructions').fill('You help quietly.');
    await o.page.getByLabel('Who can use it').selectOption('link');
    await o.page.getByRole('button', { name: 'Create agent' }).click();
    await o.page.getByRole('heading', { name: 'Edit agent' }).waitFor();
    await o.page.getByRole('button', { name: 'Publish' }).click();
    await o.page.getByRole('dialog').getByRole('button', { name: 'Confirm' }).click();
    await o.page.getByText('Version 1 published').waitFor();
    // The share link (its token), then the Share links (with the referral code).
    await o.page.getByRole('button', { name: 'Make a link' }).click();
    const link = await o.page.getByLabel('Share link link').inputValue();
    expect(link).toStartWith(`${base}/app/agents/agt_`);
    expect(new URL(link).searchParams.get('share')).toBeTruthy();
    await o.page.getByRole('button', { name: 'Share', exact: true }).click();
    const signupLink = await o.page.getByLabel('Sign-up link').inputValue();
    const ref = new URL(signupLink).searchParams.get('ref')!;
    expect(signupLink).toBe(`${base}/app/sign-up?ref=${ref}`);
    // The agent's Share link carries both its token and the code.
    const agentLink = new URL(await o.page.getByLabel('Agent link').inputValue());
    expect(agentLink.searchParams.get('ref')).toBe(ref);
    expect(agentLink.searchParams.get('share')).toBe(new URL(link).searchParams.get('share'));
    expect(await axeProblems(o.page)).toEqual([]);
    await screenshots(o.page, 'agents-share');
    expect(o.errors).toEqual([]);

    // A visitor comes by the sign-up link, signs up, then opens the agent's link and chats.
    const v = await newContext(e.browser);
    await v.page.goto(signupLink);
    await v.page.getByRole('heading', { name: 'Create an account' }).waitFor();
    await v.page.getByLabel('Email').fill('vic@crt.test');
    await v.page.getByLabel('Password').fill('visitor-long-password');
    await v.page.getByRole('button', { name: 'Create account' }).click();
    await v.page.waitForURL(`${base}/app`);
    await v.page.goto(agentLink.toString());
    await v.page.getByText('Only for those with the link.').waitFor();
    await v.page.getByRole('button', { name: 'Chat with Quiet Helper' }).click();
    await v.page.getByLabel('Message').fill('hello there');
    await v.page.getByRole('button', { name: 'Send' }).click();
    await v.page.locator('[role="log"] [data-role="assistant"]').getByText('You said: hello there').waitFor();
    expect(v.errors).toEqual([]);
    await v.context.close();

    // The creator's page: the agent's figures and the referrals (two visits, one sign-up).
    await o.page.goto(`${base}/app/creator`);
    await o.page.getByRole('heading', { name: 'Creator' }).waitFor();
    const row = o.page.getByRole('row', { name: /Quiet Helper/ });
    await row.waitFor();
    const cells = await row.locator('td').allTextContents();
    // Installs, by referral, chats, messages, users.
    expect(cells.slice(0, 5)).toEqual(['0', '0', '1', '2', '1']);
    await o.page.getByText('brought 2 visits, 1 sign-ups and 0 installs').waitFor();
    await o.page.locator('.chart canvas').first().waitFor();
    expect(await axeProblems(o.page)).toEqual([]);
    await screenshots(o.page, 'creator-page');
    // The admin's table of referrers: the owner's links brought two visits and one sign-up.
    await o.page.goto(`${base}/admin/referrals`);
    await o.page.getByRole('heading', { name: 'Referrals' }).waitFor();
    const referrer = o.page.getByRole('table', { name: 'Referrers' }).locator('tbody tr').first();
    expect((await referrer.locator('td').allTextContents()).slice(1)).toEqual(['2', '1', '0']);
    expect(await axeProblems(o.page)).toEqual([]);
    await screenshots(o.page, 'admin-referrals');
    expect(o.errors).toEqual([]);
    await o.context.close();
  }, 90_000);
});
