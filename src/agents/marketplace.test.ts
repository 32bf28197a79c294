/**
 * The marketplace (issue 12 item 7, in part): list under the automatic and manual approval
 * processes, search, install (pinned to a version), chat with what was installed, review,
 * report, moderate (approve, suspend, revoke: each with a reason, audited), paid listings
 * answering 402, the feature switch, and the attack table.
 */
import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { type InProcessServer, inProcessServer } from '../../tests/inproc.ts';
import { type OpenAIStub, startOpenAIStub } from '../../tests/peers/openai-stub.ts';
import { callAs, json, type Session, signInTo } from '../../tests/sessions.ts';

let s: InProcessServer;
let stub: OpenAIStub;
const S: Record<string, Session> = {};

const signIn = (slug: string, email: string, password: string) => signInTo(s, slug, email, password);
const call = (se: Session, method: string, path: string, body?: unknown) => callAs(s, se, method, path, body);
const code = async (r: Response | Promise<Response>) =>
  ((await (await r).json()) as { error: { code: string } }).error.code;

interface ListingView {
  id: string;
  status: string;
  agent: { id: string; version: number };
  installs: number;
  reviews: number;
  rating: number | null;
  installed: number | null;
}

let agentId = '';
let listingId = '';

beforeAll(async () => {
  stub = await startOpenAIStub({ models: ['gpt-4o-mini'] });
  s = await inProcessServer({
    config: {
      providers: [{ id: 'stub', kind: 'openai', url: stub.url, location: 'on_prem', timeout_ms: 10_000 }],
      models: [{ alias: 'default', route: ['stub/gpt-4o-mini'] }],
      outbound: { allow: ['127.0.0.1/32'] },
    },
  });
  const owners: Record<string, { email: string; password: string }> = {};
  for (const slug of ['mk', 'mx']) {
    const r = await s.operatorApi('POST', '/platforms', { slug, template: 'creator' });
    owners[slug] = ((await r.json()) as { admin: { email: string; password: string } }).admin;
  }
  S.owner = await signIn('mk', owners.mk!.email, owners.mk!.password);
  for (const [email, role] of [
    ['cat@mk.test', 'creator'],
    ['ann@mk.test', 'member'],
    ['bob@mk.test', 'member'],
  ] as const)
    expect(
      (await call(S.owner, 'POST', '/api/v1/users', { email, role, password: 'a-long-password-12' })).status,
    ).toBe(201);
  S.creator = await signIn('mk', 'cat@mk.test', 'a-long-password-12');
  S.ann = await signIn('mk', 'ann@mk.test', 'a-long-password-12');
  S.bob = await signIn('mk', 'bob@mk.test', 'a-long-password-12');
  S.other = await signIn('mx', owners.mx!.email, owners.mx!.password);
  const a = await json<{ agent: { id: string } }>(
    call(S.creator, 'POST', '/api/v1/agents', {
      name: 'Recipe Scout',
      description: 'Finds recipes.',
      persona: 'v1 persona',
    }),
  );
  agentId = a.agent.id;
  expect((await call(S.creator, 'POST', `/api/v1/agents/${agentId}/publish`)).status).toBe(201);
});
afterAll(async () => {
  await s.close();
  await stub.stop();
});

async function systemOfTurn(se: Session): Promise<string> {
  const c = await json<{ conversation: { id: string } }>(
    call(se, 'POST', '/api/v1/conversations', { agent_id: agentId }),
  );
  const before = stub.requests.length;
  const r = await call(se, 'POST', `/api/v1/conversations/${c.conversation.id}/messages`, { content: 'hi' });
  expect(r.status).toBe(200);
  await r.text();
  const sent = stub.requests.slice(before).find((x) => x.path.endsWith('/chat/completions'))!.body as {
    messages: { role: string; content: string }[];
  };
  return sent.messages[0]!.content;
}

describe('the marketplace', () => {
  test('automatic approval: listed and live at once; found by search; installed and used at its version', async () => {
    const r = await call(S.creator!, 'POST', `/api/v1/agents/${agentId}/listing`, {
      summary: 'Finds recipes from what is in your fridge.',
      category: 'Food',
      tags: ['cooking', 'recipes'],
    });
    expect(r.status).toBe(201);
    const l = ((await r.json()) as { listing: ListingView }).listing;
    listingId = l.id;
    expect(l).toMatchObject({ status: 'published', agent: { id: agentId, version: 1 }, installs: 0 });
    const found = await json<{ listings: { id: string }[] }>(
      call(S.ann!, 'GET', '/api/v1/marketplace?q=fridge'),
    );
    expect(found.listings.map((x) => x.id)).toEqual([listingId]);
    expect(
      (await json<{ listings: unknown[] }>(call(S.ann!, 'GET', '/api/v1/marketplace?q=spaceship'))).listings,
    ).toEqual([]);
    expect(
      (await json<{ listings: unknown[] }>(call(S.ann!, 'GET', '/api/v1/marketplace?category=food')))
        .listings,
    ).toHaveLength(1);
    // Listed (though private): usable by everyone on the platform; Ann installs version 1.
    const ins = await json<{ listing: ListingView }>(
      call(S.ann!, 'POST', `/api/v1/marketplace/${listingId}/install`),
    );
    expect(ins.listing).toMatchObject({ installed: 1, installs: 1 });
    expect(await systemOfTurn(S.ann!)).toBe('v1 persona');
    // A newer version is listed; Ann keeps version 1 until she installs again; Bob gets 2.
    await call(S.creator!, 'PATCH', `/api/v1/agents/${agentId}`, { persona: 'v2 persona' });
    await call(S.creator!, 'POST', `/api/v1/agents/${agentId}/publish`);
    const relisted = await json<{ listing: ListingView }>(
      call(S.creator!, 'POST', `/api/v1/agents/${agentId}/listing`, {}),
    );
    expect(relisted.listing.agent.version).toBe(2);
    expect(await systemOfTurn(S.ann!)).toBe('v1 persona');
    expect(await systemOfTurn(S.bob!)).toBe('v2 persona');
    await call(S.ann!, 'POST', `/api/v1/marketplace/${listingId}/install`);
    expect(await systemOfTurn(S.ann!)).toBe('v2 persona');
  });

  test('reviews come from those who installed; reports go to the moderators', async () => {
    expect(await code(call(S.bob!, 'POST', `/api/v1/marketplace/${listingId}/reviews`, { rating: 1 }))).toBe(
      'listing.not_installed',
    );
    expect(await code(call(S.ann!, 'POST', `/api/v1/marketplace/${listingId}/reviews`, { rating: 6 }))).toBe(
      'listing.invalid',
    );
    const rev = await json<{
      listing: ListingView;
      reviews: { rating: number; text: string; version: number }[];
    }>(
      call(S.ann!, 'POST', `/api/v1/marketplace/${listingId}/reviews`, {
        rating: 4,
        text: 'Good with leftovers.',
      }),
    );
    expect(rev.listing).toMatchObject({ reviews: 1, rating: 4 });
    expect(rev.reviews[0]).toMatchObject({ rating: 4, text: 'Good with leftovers.', version: 2 });
    const rep = await call(S.bob!, 'POST', `/api/v1/marketplace/${listingId}/reports`, {
      reason: 'It suggested raw chicken.',
    });
    expect(rep.status).toBe(201);
    const q = await json<{ listings: { id: string; reports: { reason: string }[] }[] }>(
      call(S.owner!, 'GET', '/api/v1/moderation/listings'),
    );
    expect(q.listings.find((x) => x.id === listingId)!.reports.map((r) => r.reason)).toEqual([
      'It suggested raw chicken.',
    ]);
    // Members see no reports and cannot moderate.
    expect(
      (await json<{ reports?: unknown }>(call(S.ann!, 'GET', `/api/v1/marketplace/${listingId}`))).reports,
    ).toBeUndefined();
    expect((await call(S.ann!, 'GET', '/api/v1/moderation/listings')).status).toBe(403);
  });

  test("a fork is the forker's own private copy of the listed version, with its provenance", async () => {
    // Members cannot fork (making agents needs agents:write); a creator can.
    expect((await call(S.ann!, 'POST', `/api/v1/marketplace/${listingId}/fork`)).status).toBe(403);
    const r = await call(S.owner!, 'POST', `/api/v1/marketplace/${listingId}/fork`);
    expect(r.status).toBe(201);
    const f = (
      (await r.json()) as {
        agent: {
          id: string;
          visibility: string;
          latest_version: unknown;
          draft: { persona: string };
          forked_from: unknown;
        };
      }
    ).agent;
    const versions = await json<{ versions: { version: number; hash: string }[] }>(
      call(S.creator!, 'GET', `/api/v1/agents/${agentId}/versions`),
    );
    const listed = versions.versions.find((v) => v.version === 2)!;
    expect(f).toMatchObject({
      visibility: 'private',
      latest_version: null,
      draft: { persona: 'v2 persona' },
    });
    expect(f.forked_from).toEqual({ listing: listingId, agent: agentId, version: 2, hash: listed.hash });
    // It is the forker's: the source's creator does not see it.
    expect((await call(S.creator!, 'GET', `/api/v1/agents/${f.id}`)).status).toBe(404);
    const audit = await json<{ entries: { action: string; target: string }[] }>(
      call(S.owner!, 'GET', '/api/v1/audit?action=agent.forked'),
    );
    expect(audit.entries.map((e) => e.target)).toEqual([`agent:${f.id}`]);
  });

  test('moderation: a reason always; suspend hides it but keeps installs; revoke stops it for all but its editors', async () => {
    expect(
      await code(call(S.owner!, 'POST', `/api/v1/moderation/listings/${listingId}`, { action: 'suspend' })),
    ).toBe('listing.invalid');
    expect(
      await code(
        call(S.owner!, 'POST', `/api/v1/moderation/listings/${listingId}`, {
          action: 'approve',
          reason: 'ok then',
        }),
      ),
    ).toBe('listing.bad_transition');
    const sus = await json<{ listing: ListingView }>(
      call(S.owner!, 'POST', `/api/v1/moderation/listings/${listingId}`, {
        action: 'suspend',
        reason: 'Food safety report under review.',
      }),
    );
    expect(sus.listing.status).toBe('suspended');
    expect(
      (await json<{ listings: unknown[] }>(call(S.bob!, 'GET', '/api/v1/marketplace'))).listings,
    ).toEqual([]);
    // Ann installed it: it keeps working for her; Bob never did: it is gone for him.
    expect(await systemOfTurn(S.ann!)).toBe('v2 persona');
    expect((await call(S.bob!, 'POST', '/api/v1/conversations', { agent_id: agentId })).status).toBe(404);
    // The report was resolved by the action; the suspended listing stays in the queue, so that
    // a moderator can restore or revoke it.
    const q = await json<{ listings: { id: string; status: string; reports: unknown[] }[] }>(
      call(S.owner!, 'GET', '/api/v1/moderation/listings'),
    );
    expect(q.listings.find((x) => x.id === listingId)).toMatchObject({ status: 'suspended', reports: [] });
    await call(S.owner!, 'POST', `/api/v1/moderation/listings/${listingId}`, {
      action: 'revoke',
      reason: 'Confirmed unsafe advice.',
    });
    expect((await call(S.ann!, 'POST', '/api/v1/conversations', { agent_id: agentId })).status).toBe(404);
    expect((await call(S.ann!, 'GET', `/api/v1/agents/${agentId}`)).status).toBe(404);
    // Its creator still has it, and cannot list it again.
    expect((await call(S.creator!, 'GET', `/api/v1/agents/${agentId}`)).status).toBe(200);
    expect(await code(call(S.creator!, 'POST', `/api/v1/agents/${agentId}/listing`, {}))).toBe(
      'listing.revoked',
    );
    const audit = await json<{ entries: { action: string; details: { reason?: string } }[] }>(
      call(S.owner!, 'GET', '/api/v1/audit?action=listing.&order=desc&limit=50'),
    );
    expect(
      audit.entries
        .filter((e) => e.details.reason && e.action !== 'listing.reported')
        .map((e) => [e.action, e.details.reason]),
    ).toEqual([
      ['listing.revoke', 'Confirmed unsafe advice.'],
      ['listing.suspend', 'Food safety report under review.'],
    ]);
  });

  test('manual approval: in review until a moderator approves; paid listings answer 402', async () => {
    expect(
      (
        await s.operatorApi('PATCH', '/platforms/mk', {
          blueprint: { governance: { agent_approval_process: 'manual' } },
        })
      ).status,
    ).toBe(200);
    const b = await json<{ agent: { id: string } }>(
      call(S.creator!, 'POST', '/api/v1/agents', { name: 'Tax Helper', description: 'Taxes.' }),
    );
    await call(S.creator!, 'POST', `/api/v1/agents/${b.agent.id}/publish`);
    const l = await json<{ listing: ListingView }>(
      call(S.creator!, 'POST', `/api/v1/agents/${b.agent.id}/listing`, {
        price_model: 'one_time',
        price_minor: 500,
        currency: 'usd',
      }),
    );
    expect(l.listing.status).toBe('in_review');
    expect(
      (await json<{ listings: unknown[] }>(call(S.ann!, 'GET', '/api/v1/marketplace?q=tax'))).listings,
    ).toEqual([]);
    expect((await call(S.ann!, 'GET', `/api/v1/marketplace/${l.listing.id}`)).status).toBe(404);
    const q = await json<{ listings: { id: string }[] }>(
      call(S.owner!, 'GET', '/api/v1/moderation/listings'),
    );
    expect(q.listings.map((x) => x.id)).toContain(l.listing.id);
    await call(S.owner!, 'POST', `/api/v1/moderation/listings/${l.listing.id}`, {
      action: 'approve',
      reason: 'Checked the persona.',
    });
    expect(
      (
        await json<{ listings: { id: string }[] }>(call(S.ann!, 'GET', '/api/v1/marketplace?q=tax'))
      ).listings.map((x) => x.id),
    ).toEqual([l.listing.id]);
    const buy = await call(S.ann!, 'POST', `/api/v1/marketplace/${l.listing.id}/install`);
    expect(buy.status).toBe(402);
    expect(await code(buy)).toBe('billing.payment_required');
  });

  test('attack table, and the feature switch', async () => {
    const cases: [string, Session, string, string, unknown, number, string][] = [
      [
        'a member lists an agent',
        S.ann!,
        'POST',
        `/api/v1/agents/${agentId}/listing`,
        {},
        403,
        'auth.forbidden',
      ],
      [
        'a member moderates',
        S.ann!,
        'POST',
        `/api/v1/moderation/listings/${listingId}`,
        { action: 'restore', reason: 'mine now' },
        403,
        'auth.forbidden',
      ],
      [
        'another platform reads it',
        S.other!,
        'GET',
        `/api/v1/marketplace/${listingId}`,
        undefined,
        404,
        'listing.not_found',
      ],
      [
        'another platform installs it',
        S.other!,
        'POST',
        `/api/v1/marketplace/${listingId}/install`,
        undefined,
        404,
        'listing.not_found',
      ],
      [
        'an unknown action',
        S.owner!,
        'POST',
        `/api/v1/moderation/listings/${listingId}`,
        { action: 'delete', reason: 'because' },
        400,
        'listing.invalid',
      ],
      [
        'nine tags',
        S.creator!,
        'POST',
        `/api/v1/agents/${agentId}/listing`,
        { tags: Array(9).fill('x') },
        400,
        'listing.invalid',
      ],
    ];
    for (const [what, se, method, path, body, status, c] of cases) {
      const r = await call(se, method, path, body);
      expect({ what, status: r.status, code: await code(r) }).toEqual({ what, status, code: c });
    }
    expect(
      (
        await s.operatorApi('PATCH', '/platforms/mk', {
          blueprint: { features: { agent_marketplace: false } },
        })
      ).status,
    ).toBe(200);
    for (const path of [
      '/api/v1/marketplace',
      `/api/v1/marketplace/${listingId}`,
      '/api/v1/moderation/listings',
    ]) {
      const r = await call(S.owner!, 'GET', path);
      expect({ path, status: r.status, code: await code(r) }).toEqual({
        path,
        status: 404,
        code: 'feature.disabled',
      });
    }
  });
});
