/**
 * Publishing under each approval process, in the browser (issue 12, "Done when"): for each
 * `governance.agent_approval_process` (set on the platform's blueprint by the operator's API),
 * a creator builds an agent in the portal, publishes it and lists it from its page, and the test
 * checks what each person's browser shows:
 * - automatic: the listing is live at once (after the safety checks, which still hold a listing
 *   with a blocked term for the moderators), and a member finds and installs it;
 * - manual: the listing is in review for its creator, absent from a member's marketplace, in the
 *   admin's /admin/moderation queue, approved there with a reason, then found and installed;
 * - community (`governance.community_approval.approvals: 2`): the listing waits for votes; its
 *   creator may not vote; two members approve it from the community queue; after the second
 *   vote it is live and others install it.
 * Then the admin takes one listing down (suspend) and revokes another from /admin/moderation,
 * after members report them: gone from the marketplace, the revoked agent stops working, and
 * it cannot be listed again.
 */
import { beforeAll, describe, expect, test } from 'bun:test';
import type { Page } from 'playwright-core';
import { axeProblems, newContext, screenshots } from '../browser.ts';
import { apiFrom, e2eSetup, signIn } from './setup.ts';

const e = e2eSetup({
  slug: 'apr',
  blueprint: { ai_settings: { safety_filters: { blocked_terms: ['contraband'] } } },
});

const PASSWORD = 'member-long-password';
const CREATOR = 'cara@apr.test';
// Members: ann and bob vote, dan browses and installs.
const ANN = 'ann@apr.test';
const BOB = 'bob@apr.test';
const DAN = 'dan@apr.test';

beforeAll(async () => {
  const o = await newContext(e.browser);
  await signIn(o.page, e.base, e.owner.email, e.owner.password, '/app/agents');
  await o.page.getByRole('heading', { name: 'Agents' }).waitFor();
  for (const [email, role] of [
    [CREATOR, 'creator'],
    [ANN, 'member'],
    [BOB, 'member'],
    [DAN, 'member'],
  ] as const)
    expect((await apiFrom(o.page, 'POST', '/api/v1/users', { email, role, password: PASSWORD })).status).toBe(
      201,
    );
  await o.context.close();
}, 30_000);

/** Builds an agent in the portal, publishes version 1 and lists it; the page shows what listing did. */
async function buildPublishList(page: Page, name: string, description: string) {
  await page.goto(`${e.base}/app/agents/new`);
  await page.getByRole('heading', { name: 'New agent' }).waitFor();
  await page.getByLabel('Name', { exact: true }).fill(name);
  await page.getByLabel('Description').fill(description);
  await page.getByLabel('Instructions').fill(`You are ${name}. Be brief.`);
  await page.getByRole('button', { name: 'Create agent' }).click();
  await page.getByRole('heading', { name: 'Edit agent' }).waitFor();
  await page.getByRole('button', { name: 'Publish' }).click();
  await page.getByRole('dialog').getByRole('button', { name: 'Confirm' }).click();
  await page.getByText('Version 1 published').waitFor();
  await page.getByRole('button', { name: 'List in the marketplace' }).click();
  await page.getByRole('link', { name: 'See the listing' }).waitFor();
}

/** The member's marketplace, loaded: the titles it lists. */
async function marketplaceTitles(page: Page): Promise<string[]> {
  await page.goto(`${e.base}/app/marketplace`);
  await page.getByRole('heading', { name: 'Marketplace' }).waitFor();
  await page.locator('.agent-grid, .empty').first().waitFor();
  return (await page.locator('.agent-grid li strong').allTextContents()).sort();
}

async function install(page: Page, title: string) {
  await page.goto(`${e.base}/app/marketplace`);
  await page.getByRole('link', { name: title }).click();
  await page.getByRole('heading', { name: title }).waitFor();
  await page.getByRole('button', { name: 'Install' }).click();
  await page.getByText('Installed (version 1)').waitFor();
}

/** The queue item of a listing on /admin/moderation. */
const queued = (page: Page, title: string) => page.locator('ul.queue > li').filter({ hasText: title });

const ids: Record<string, string> = {};
/** The listing's id, from the link the agent's page shows once it is listed. */
async function listingId(page: Page): Promise<string> {
  const href = await page.getByRole('link', { name: 'See the listing' }).getAttribute('href');
  const id = /^\/app\/marketplace\/([^/?#]+)$/.exec(href ?? '')?.[1];
  if (!id) throw new Error(`not a listing link: ${href}`);
  return id;
}

describe('publishing under each approval process', () => {
  test('automatic: live after the safety checks; a member finds and installs it', async () => {
    await e.patchBlueprint({ governance: { agent_approval_process: 'automatic' } });
    const c = await newContext(e.browser);
    await signIn(c.page, e.base, CREATOR, PASSWORD, '/app/agents');
    await c.page.getByRole('heading', { name: 'Agents' }).waitFor();
    await buildPublishList(c.page, 'Sun Guide', 'Finds sunny beaches.');
    await c.page.getByText('Listed in the marketplace.').waitFor();
    ids.sun = await listingId(c.page);
    expect(await axeProblems(c.page)).toEqual([]);
    await c.page.getByRole('link', { name: 'See the listing' }).click();
    await c.page.getByRole('heading', { name: 'Sun Guide' }).waitFor();
    await c.page.getByRole('button', { name: 'Install' }).waitFor();
    // The safety checks hold a listing with a blocked term for the moderators, even here.
    await buildPublishList(c.page, 'Smuggler', 'Finds contraband at the docks.');
    await c.page.getByText("Held by the platform's safety checks (safety: ").waitFor();
    ids.held = await listingId(c.page);
    await c.page.getByRole('link', { name: 'See the listing' }).click();
    await c.page.getByRole('heading', { name: 'Smuggler' }).waitFor();
    await c.page.getByText(/This listing is in review \(safety: .+\)\./).waitFor();
    expect(await c.page.getByRole('button', { name: 'Install' }).count()).toBe(0);
    expect(c.errors).toEqual([]);
    await c.context.close();

    const m = await newContext(e.browser);
    await signIn(m.page, e.base, DAN, PASSWORD, '/app/marketplace');
    expect(await marketplaceTitles(m.page)).toEqual(['Sun Guide']);
    await install(m.page, 'Sun Guide');
    await m.page.getByRole('button', { name: 'Chat', exact: true }).click();
    await m.page.waitForURL(/\/app\/c\//);
    await m.page.getByRole('heading', { name: /Sun Guide/ }).waitFor();
    expect(m.errors).toEqual([]);
    await m.context.close();
  }, 90_000);

  test('manual: in review for its creator, absent for members, approved in /admin/moderation, then installed', async () => {
    await e.patchBlueprint({ governance: { agent_approval_process: 'manual' } });
    const c = await newContext(e.browser);
    await signIn(c.page, e.base, CREATOR, PASSWORD, '/app/agents');
    await c.page.getByRole('heading', { name: 'Agents' }).waitFor();
    await buildPublishList(c.page, 'Tax Helper', 'Sorts receipts before the tax return.');
    await c.page.getByText('Sent to the moderators: it is listed once they approve it.').waitFor();
    ids.tax = await listingId(c.page);
    await c.page.getByRole('link', { name: 'See the listing' }).click();
    await c.page.getByRole('heading', { name: 'Tax Helper' }).waitFor();
    await c.page.getByText('This listing is in review.').waitFor();
    expect(await c.page.getByRole('button', { name: 'Install' }).count()).toBe(0);
    expect(await axeProblems(c.page)).toEqual([]);
    await screenshots(c.page, 'listing-in-review');
    expect(c.errors).toEqual([]);

    // A member neither finds it nor opens it.
    const m = await newContext(e.browser);
    await signIn(m.page, e.base, DAN, PASSWORD, '/app/marketplace');
    expect(await marketplaceTitles(m.page)).toEqual(['Sun Guide']);
    await m.page.goto(`${e.base}/app/marketplace/${ids.tax}`);
    await m.page.getByRole('alert').getByText('listing.not_found').waitFor();

    // The admin finds it in the queue; approving needs a reason.
    const o = await newContext(e.browser);
    await signIn(o.page, e.base, e.owner.email, e.owner.password, '/admin/moderation');
    await o.page.getByRole('heading', { name: 'Moderation' }).waitFor();
    const item = queued(o.page, 'Tax Helper');
    await item.getByText('in_review').waitFor();
    // The listing the safety checks held waits here too, with why.
    await queued(o.page, 'Smuggler')
      .getByText(/In review: safety: /)
      .waitFor();
    expect(await axeProblems(o.page)).toEqual([]);
    await screenshots(o.page, 'admin-moderation-review');
    await item.getByRole('button', { name: 'Approve' }).click();
    await item.getByRole('alert').getByText('listing.invalid').waitFor();
    await item.getByLabel('Reason for Tax Helper').fill('Checked the advice: sound.');
    await item.getByRole('button', { name: 'Approve' }).click();
    await item.waitFor({ state: 'detached' });
    await queued(o.page, 'Smuggler').waitFor();
    expect(o.errors).toEqual([]);
    await o.context.close();

    // Live now: its creator's page says so, and the member installs it.
    await c.page.reload();
    await c.page.getByRole('button', { name: 'Install' }).waitFor();
    expect(await c.page.getByText('This listing is in review.').count()).toBe(0);
    await c.context.close();
    expect(await marketplaceTitles(m.page)).toEqual(['Sun Guide', 'Tax Helper']);
    await install(m.page, 'Tax Helper');
    expect(m.errors).toEqual([]);
    await m.context.close();
  }, 90_000);

  test('community: waits for votes; two members approve it from the community queue; then it is live', async () => {
    await e.patchBlueprint({
      governance: {
        agent_approval_process: 'community',
        // The accounts are minutes old and their emails unverified: these members are in good
        // standing here.
        community_approval: { approvals: 2, min_account_age_days: 0, require_verified_email: false },
      },
    });
    const c = await newContext(e.browser);
    await signIn(c.page, e.base, CREATOR, PASSWORD, '/app/agents');
    await c.page.getByRole('heading', { name: 'Agents' }).waitFor();
    await buildPublishList(c.page, 'Recipe Scout', 'Cooks dinner from what is in the fridge.');
    await c.page
      .getByText('Submitted to the community: it is listed once enough members approve it.')
      .waitFor();
    ids.recipe = await listingId(c.page);
    await c.page.getByRole('link', { name: 'See the listing' }).click();
    const creatorPanel = c.page.getByRole('region', { name: 'Community review' });
    await creatorPanel.getByText('0 of 2 approvals · 0 rejections').waitFor();
    await creatorPanel.getByText('You do not vote on your own listing.').waitFor();
    expect(await creatorPanel.getByRole('button', { name: 'Approve' }).count()).toBe(0);
    expect(c.errors).toEqual([]);
    await c.context.close();

    // Not in the marketplace while it waits.
    const d = await newContext(e.browser);
    await signIn(d.page, e.base, DAN, PASSWORD, '/app/marketplace');
    expect(await marketplaceTitles(d.page)).toEqual(['Sun Guide', 'Tax Helper']);

    const vote = async (email: string, reason: string, expectAfter: string | null) => {
      const v = await newContext(e.browser);
      await signIn(v.page, e.base, email, PASSWORD, '/app/marketplace');
      await v.page.getByRole('link', { name: "Listings waiting for the community's review" }).click();
      await v.page.getByRole('heading', { name: 'Community review' }).waitFor();
      await v.page.getByText('2 approvals publish a listing').waitFor();
      await v.page.getByRole('link', { name: 'Recipe Scout' }).click();
      await v.page.getByRole('heading', { name: 'Recipe Scout' }).waitFor();
      const panel = v.page.getByRole('region', { name: 'Community review' });
      await panel.getByLabel('Why (optional)').fill(reason);
      expect(await axeProblems(v.page)).toEqual([]);
      await panel.getByRole('button', { name: 'Approve' }).click();
      if (expectAfter) {
        await panel.getByText(expectAfter).waitFor();
        expect(await v.page.getByRole('button', { name: 'Install' }).count()).toBe(0);
        await screenshots(v.page, 'listing-community-vote');
        expect(await marketplaceTitles(v.page)).toEqual(['Sun Guide', 'Tax Helper']);
      } else {
        // The deciding vote: published, the vote panel gone, installable.
        await v.page.getByRole('button', { name: 'Install' }).waitFor();
        expect(await panel.count()).toBe(0);
        await v.page.goto(`${e.base}/app/marketplace/community`);
        await v.page.getByText("Nothing waits for the community's votes.").waitFor();
      }
      expect(v.errors).toEqual([]);
      await v.context.close();
    };
    await vote(ANN, 'Good recipes.', '1 of 2 approvals · 0 rejections · you voted to approve');
    // One approval is not enough.
    expect(await marketplaceTitles(d.page)).toEqual(['Sun Guide', 'Tax Helper']);
    await vote(BOB, 'Works for me.', null);

    // Others see it now and install it.
    expect(await marketplaceTitles(d.page)).toEqual(['Recipe Scout', 'Sun Guide', 'Tax Helper']);
    await install(d.page, 'Recipe Scout');
    expect(d.errors).toEqual([]);
    await d.context.close();
  }, 120_000);

  test('take-down and revoke from /admin/moderation after reports', async () => {
    const m = await newContext(e.browser);
    await signIn(m.page, e.base, DAN, PASSWORD, '/app/marketplace');
    await m.page.getByRole('heading', { name: 'Marketplace' }).waitFor();
    const agentOf = async (id: string) =>
      (
        (await apiFrom(m.page, 'GET', `/api/v1/marketplace/${id}`)).body as {
          listing: { agent: { id: string } };
        }
      ).listing.agent.id;
    const taxAgent = await agentOf(ids.tax!);
    for (const [title, reason] of [
      ['Sun Guide', 'It sent me to a closed beach.'],
      ['Tax Helper', 'It told me to hide income.'],
    ] as const) {
      await m.page.goto(`${e.base}/app/marketplace`);
      await m.page.getByRole('link', { name: title }).click();
      await m.page.getByRole('heading', { name: title }).waitFor();
      await m.page.getByText('Report this agent').click();
      await m.page.getByLabel('What is wrong').fill(reason);
      await m.page.getByRole('button', { name: 'Send report' }).click();
      await m.page.getByText("the platform's moderators will look at it").waitFor();
    }
    // Before the revocation the member chats with what they installed.
    expect((await apiFrom(m.page, 'POST', '/api/v1/conversations', { agent_id: taxAgent })).status).toBe(201);

    const o = await newContext(e.browser);
    await signIn(o.page, e.base, e.owner.email, e.owner.password, '/admin/moderation');
    await o.page.getByRole('heading', { name: 'Moderation' }).waitFor();
    // Take-down: suspended, out of the marketplace.
    const sun = queued(o.page, 'Sun Guide');
    await sun.getByText('It sent me to a closed beach.').waitFor();
    await sun.getByLabel('Reason for Sun Guide').fill('The beach advice is out of date.');
    await sun.getByRole('button', { name: 'Suspend' }).click();
    // Suspended, it stays in the queue (its report resolved) for a restore or a revoke.
    await sun.getByRole('button', { name: 'Restore' }).waitFor();
    expect(await sun.getByText('It sent me to a closed beach.').count()).toBe(0);
    // Revoke: for good.
    const tax = queued(o.page, 'Tax Helper');
    await tax.getByText('It told me to hide income.').waitFor();
    await tax.getByLabel('Reason for Tax Helper').fill('Advises tax evasion.');
    await tax.getByRole('button', { name: 'Revoke' }).click();
    await tax.waitFor({ state: 'detached' });
    expect(o.errors).toEqual([]);
    await o.context.close();

    expect(await marketplaceTitles(m.page)).toEqual(['Recipe Scout']);
    await m.page.goto(`${e.base}/app/marketplace/${ids.tax}`);
    await m.page.getByRole('alert').getByText('listing.not_found').waitFor();
    // The revoked agent stops working for the member who installed it.
    const refused = await apiFrom(m.page, 'POST', '/api/v1/conversations', { agent_id: taxAgent });
    expect(refused.status).toBe(404);
    expect((refused.body as { error: { code: string } }).error.code).toBe('agent.not_found');
    expect(m.errors).toEqual([]);
    await m.context.close();

    // Its creator cannot list it again; the page says why.
    const c = await newContext(e.browser);
    await signIn(c.page, e.base, CREATOR, PASSWORD, `/app/agents/${taxAgent}`);
    await c.page.getByRole('heading', { name: 'Edit agent' }).waitFor();
    await c.page.getByRole('button', { name: 'List in the marketplace' }).click();
    await c.page.getByRole('alert').getByText('listing.revoked').waitFor();
    expect(await c.page.getByRole('link', { name: 'See the listing' }).count()).toBe(0);
    expect(c.errors).toEqual([]);
    await c.context.close();
  }, 90_000);
});
