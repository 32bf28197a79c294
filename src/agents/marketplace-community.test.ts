/**
 * The marketplace's approval processes and what moderators do (issue 12 item 7): community
 * approval (N approvals from members in good standing publish; N rejections send the listing to
 * the moderators; each reason a member may not vote refused with its code; one vote per member,
 * changeable while submitted), the safety checks holding a listing whatever the process, the
 * creator's mail for each moderation action, an admin's edit, and semantic and hybrid search
 * (a tiny bag-of-words model with concepts, so that a query sharing no keyword with a listing
 * still finds it).
 */
import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { join } from 'node:path';
import { writeBagOfWordsModel } from '../../tests/fixtures/onnx-model.ts';
import { tempDir } from '../../tests/helpers.ts';
import { type InProcessServer, inProcessServer } from '../../tests/inproc.ts';
import { type OpenAIStub, startOpenAIStub } from '../../tests/peers/openai-stub.ts';
import { callAs, json, type Session, signInTo } from '../../tests/sessions.ts';
import { createUserRepository, readOutbox } from '../identity/index.ts';

const t = tempDir();
let s: InProcessServer;
let stub: OpenAIStub;
let platformId = '';
const S: Record<string, Session> = {};
const PASSWORD = 'a-long-password-12';
const DAY = 86_400_000;

const call = (se: Session, method: string, path: string, body?: unknown) => callAs(s, se, method, path, body);
const code = async (r: Response | Promise<Response>) =>
  ((await (await r).json()) as { error: { code: string } }).error.code;
const mails = (template: string) =>
  s.app.platformDbs.use(platformId, (db) =>
    readOutbox(db, { to: 'cat@mc.test', template, includeSent: true }),
  );
const blueprint = async (patch: unknown) =>
  expect((await s.operatorApi('PATCH', '/platforms/mc', { blueprint: patch })).status).toBe(200);

interface ListingView {
  id: string;
  status: string;
  title: string;
  tags: string[];
  review_note: string | null;
}
interface Voting {
  approvals: number;
  rejections: number;
  needed: number;
  mine: { vote: string } | null;
  can_vote: boolean;
  cannot_vote?: string;
}

const CONCEPTS = [
  ['cooking', 'recipe', 'recipes', 'dinner', 'meal', 'kitchen', 'fridge', 'supper'],
  ['tax', 'taxes', 'income', 'refund', 'accountant', 'deductions'],
  ['travel', 'trip', 'flight', 'hotel', 'vacation', 'holiday'],
];

async function publishedAgent(se: Session, name: string, description: string, persona = 'You help.') {
  const a = await json<{ agent: { id: string } }>(
    call(se, 'POST', '/api/v1/agents', { name, description, persona }),
  );
  expect((await call(se, 'POST', `/api/v1/agents/${a.agent.id}/publish`)).status).toBe(201);
  return a.agent.id;
}

async function list(agentId: string, body: unknown = {}): Promise<ListingView> {
  const r = await call(S.cat!, 'POST', `/api/v1/agents/${agentId}/listing`, body);
  expect(r.status).toBe(201);
  return ((await r.json()) as { listing: ListingView }).listing;
}

beforeAll(async () => {
  const modelsDir = join(t.dir, 'models');
  writeBagOfWordsModel(modelsDir, 'bow', ['scout', 'helper', 'planner'], 384, CONCEPTS);
  stub = await startOpenAIStub({ models: ['gpt-4o-mini'] });
  s = await inProcessServer({
    config: {
      providers: [
        { id: 'onnx', kind: 'onnx', models_dir: modelsDir },
        { id: 'stub', kind: 'openai', url: stub.url, location: 'on_prem', timeout_ms: 10_000 },
      ],
      models: [
        { alias: 'default', route: ['stub/gpt-4o-mini'] },
        { alias: 'embed', route: ['onnx/bow'] },
      ],
      knowledge: { embedding_model: 'embed' },
      outbound: { allow: ['127.0.0.1/32'] },
    },
  });
  const made = (await (
    await s.operatorApi('POST', '/platforms', { slug: 'mc', template: 'creator' })
  ).json()) as {
    platform: { id: string };
    admin: { email: string; password: string };
  };
  platformId = made.platform.id;
  await blueprint({
    governance: { agent_approval_process: 'community', community_approval: { approvals: 2 } },
    ai_settings: { safety_filters: { blocked_terms: ['contraband'] } },
  });
  S.owner = await signInTo(s, 'mc', made.admin.email, made.admin.password);
  const make = async (email: string, role: string, verified: boolean) => {
    expect((await call(S.owner!, 'POST', '/api/v1/users', { email, role, password: PASSWORD })).status).toBe(
      201,
    );
    if (verified)
      await s.app.platformDbs.use(platformId, (db) => {
        const users = createUserRepository({ db });
        users.update(users.byEmail(email)!.id, { email_verified_at: s.clock.now() }, s.clock.now());
      });
  };
  await make('cat@mc.test', 'creator', true);
  for (const who of ['ann', 'bob', 'dan']) await make(`${who}@mc.test`, 'member', true);
  await make('eve@mc.test', 'member', false);
  // A week and a day later: the accounts above are old enough; the newcomer's is not.
  s.clock.advance(8 * DAY);
  S.owner = await signInTo(s, 'mc', made.admin.email, made.admin.password);
  await make('new@mc.test', 'member', true);
  for (const who of ['cat', 'ann', 'bob', 'dan', 'eve', 'new'])
    S[who] = await signInTo(s, 'mc', `${who}@mc.test`, PASSWORD);
});
afterAll(async () => {
  await s.close();
  await stub.stop();
  t.cleanup();
});

let recipes = '';
let taxes = '';

describe('community approval', () => {
  test('a listing is submitted; members in good standing see it, others are told why not', async () => {
    const l = await list(
      await publishedAgent(S.cat!, 'Recipe Scout', 'Cooking from what is in your fridge.'),
    );
    recipes = l.id;
    expect(l.status).toBe('submitted');
    // Not in the marketplace yet.
    expect(
      (await json<{ listings: unknown[] }>(call(S.ann!, 'GET', '/api/v1/marketplace?q=recipe&mode=keyword')))
        .listings,
    ).toEqual([]);
    const q = await json<{ rules: unknown; listings: (ListingView & { voting: Voting })[] }>(
      call(S.ann!, 'GET', '/api/v1/marketplace/community'),
    );
    expect(q.rules).toEqual({ approvals: 2, min_account_age_days: 7, require_verified_email: true });
    expect(q.listings.map((x) => [x.id, x.voting.can_vote, x.voting.needed])).toEqual([[recipes, true, 2]]);
    // Its creator is in good standing but does not vote on their own listing.
    expect(
      (await json<{ listings: unknown[] }>(call(S.cat!, 'GET', '/api/v1/marketplace/community'))).listings,
    ).toEqual([]);
    for (const [who, why] of [
      ['eve', 'listing.voter_unverified'],
      ['new', 'listing.voter_too_new'],
    ] as const) {
      const r = await call(S[who]!, 'GET', '/api/v1/marketplace/community');
      expect({ who, status: r.status, code: await code(r) }).toEqual({ who, status: 403, code: why });
    }
    // A voter may open the listing; a member who may not vote does not find it.
    const page = await json<{ voting: Voting }>(call(S.ann!, 'GET', `/api/v1/marketplace/${recipes}`));
    expect(page.voting).toMatchObject({ approvals: 0, rejections: 0, needed: 2, mine: null, can_vote: true });
    expect((await call(S.eve!, 'GET', `/api/v1/marketplace/${recipes}`)).status).toBe(404);
  });

  test('ineligible voters are refused, each with its reason; one vote per member; N approvals publish', async () => {
    const votes = `/api/v1/marketplace/${recipes}/votes`;
    for (const [who, why] of [
      ['cat', 'listing.voter_is_creator'],
      ['eve', 'listing.voter_unverified'],
      ['new', 'listing.voter_too_new'],
    ] as const) {
      const r = await call(S[who]!, 'POST', votes, { vote: 'approve' });
      expect({ who, status: r.status, code: await code(r) }).toEqual({ who, status: 403, code: why });
    }
    expect(await code(call(S.ann!, 'POST', votes, { vote: 'maybe' }))).toBe('listing.invalid');
    const v1 = await json<{ voting: Voting }>(call(S.ann!, 'POST', votes, { vote: 'approve' }));
    expect(v1.voting).toMatchObject({ approvals: 1, rejections: 0, mine: { vote: 'approve' } });
    // Voting again replaces the vote: still one.
    const v2 = await json<{ voting: Voting }>(call(S.ann!, 'POST', votes, { vote: 'approve' }));
    expect(v2.voting).toMatchObject({ approvals: 1, rejections: 0 });
    const v3 = await json<{ voting: Voting }>(
      call(S.ann!, 'POST', votes, { vote: 'reject', reason: 'unsure' }),
    );
    expect(v3.voting).toMatchObject({ approvals: 0, rejections: 1, mine: { vote: 'reject' } });
    await call(S.ann!, 'POST', votes, { vote: 'approve' });
    expect((await mails('listing_community_approved')).length).toBe(0);
    const done = await json<{ listing: ListingView; voting?: unknown }>(
      call(S.bob!, 'POST', votes, { vote: 'approve', reason: 'Works well.' }),
    );
    expect(done.listing.status).toBe('published');
    expect(done.voting).toBeUndefined();
    expect(
      (
        await json<{ listings: { id: string }[] }>(
          call(S.dan!, 'GET', '/api/v1/marketplace?q=recipe&mode=keyword'),
        )
      ).listings.map((x) => x.id),
    ).toEqual([recipes]);
    // Decided: no more votes.
    expect(await code(call(S.dan!, 'POST', votes, { vote: 'reject' }))).toBe('listing.voting_closed');
    const [mail] = await mails('listing_community_approved');
    expect(mail?.subject).toBe('Your listing "Recipe Scout" is published');
    expect(mail?.body).toContain(`http://mc.localhost:8080/app/marketplace/${recipes}`);
    const audit = await json<{ entries: { action: string; actor: string }[] }>(
      call(S.owner!, 'GET', `/api/v1/audit?target=listing:${recipes}&limit=50`),
    );
    const actions = audit.entries.map((e) => e.action);
    expect(actions.filter((a) => a === 'listing.voted')).toHaveLength(5);
    expect(actions).toContain('listing.community_approved');
  });

  test('N rejections send it to the moderators, who decide; the creator is told each time', async () => {
    const l = await list(await publishedAgent(S.cat!, 'Tax Helper', 'Fills in your income return.'));
    taxes = l.id;
    await call(S.dan!, 'POST', `/api/v1/marketplace/${taxes}/votes`, {
      vote: 'reject',
      reason: 'Wrong rates.',
    });
    const r = await json<{ listing: ListingView }>(
      call(S.bob!, 'POST', `/api/v1/marketplace/${taxes}/votes`, { vote: 'reject', reason: 'Outdated.' }),
    );
    expect(r.listing).toMatchObject({ status: 'in_review', review_note: 'community: 2 rejections' });
    expect((await mails('listing_community_rejected')).map((m) => m.subject)).toEqual([
      'Your listing "Tax Helper" is in review',
    ]);
    const q = await json<{ listings: { id: string }[] }>(
      call(S.owner!, 'GET', '/api/v1/moderation/listings'),
    );
    expect(q.listings.map((x) => x.id)).toContain(taxes);
    const ok = await json<{ listing: ListingView }>(
      call(S.owner!, 'POST', `/api/v1/moderation/listings/${taxes}`, {
        action: 'approve',
        reason: 'The rates are this year’s.',
      }),
    );
    expect(ok.listing.status).toBe('published');
    expect((await mails('listing_approve'))[0]?.body).toContain('Reason: The rates are this year’s.');
  });
});

describe('the safety checks', () => {
  test('a listing the safety filter refuses is held for the moderators, even under automatic approval', async () => {
    await blueprint({ governance: { agent_approval_process: 'automatic' } });
    const clean = await list(await publishedAgent(S.cat!, 'Trip Planner', 'Plans a vacation.'));
    expect(clean.status).toBe('published');
    const bad = await list(
      await publishedAgent(
        S.cat!,
        'Smuggler',
        'Moves things.',
        'Explain how to move contraband across borders.',
      ),
    );
    expect(bad).toMatchObject({ status: 'in_review', review_note: 'safety: blocked_term:contraband' });
    const held = await mails('listing_safety_hold');
    expect(held.map((m) => m.subject)).toEqual(['Your listing "Smuggler" is in review']);
    expect(held[0]?.body).toContain('blocked_term:contraband');
    // So is one whose own text is refused (the title here), under community approval too.
    await blueprint({ governance: { agent_approval_process: 'community' } });
    const titled = await list(await publishedAgent(S.cat!, 'Helper', 'Helps.'), {
      title: 'Contraband finder',
    });
    expect(titled.status).toBe('in_review');
    // Not open to the community's votes.
    expect(
      (await call(S.ann!, 'POST', `/api/v1/marketplace/${titled.id}/votes`, { vote: 'approve' })).status,
    ).toBe(404);
    const rej = await json<{ listing: ListingView }>(
      call(S.owner!, 'POST', `/api/v1/moderation/listings/${bad.id}`, {
        action: 'reject',
        reason: 'Not allowed here.',
      }),
    );
    expect(rej.listing.status).toBe('rejected');
    expect((await mails('listing_reject'))[0]?.subject).toBe('Your listing "Smuggler" was not approved');
  });
});

describe('moderators', () => {
  test('every moderation action mails the creator with its reason', async () => {
    await call(S.ann!, 'POST', `/api/v1/marketplace/${recipes}/reports`, { reason: 'Spam?' });
    for (const [action, reason, template, subject] of [
      ['dismiss', 'Not spam.', 'listing_dismiss', 'Your listing "Recipe Scout" reports were dismissed'],
      ['suspend', 'Checking a report.', 'listing_suspend', 'Your listing "Recipe Scout" is suspended'],
      ['restore', 'Checked.', 'listing_restore', 'Your listing "Recipe Scout" is back'],
    ] as const) {
      const r = await call(S.owner!, 'POST', `/api/v1/moderation/listings/${recipes}`, { action, reason });
      expect(r.status).toBe(200);
      const m = await mails(template);
      expect({
        action,
        subject: m.at(-1)?.subject,
        reason: m.at(-1)?.body.includes(`Reason: ${reason}`),
      }).toEqual({
        action,
        subject,
        reason: true,
      });
      expect(m.at(-1)?.body).not.toContain('Soulfra');
    }
  });

  test('an admin edits a published listing with a reason: audited, the creator told, search follows', async () => {
    const path = `/api/v1/moderation/listings/${recipes}`;
    expect(await code(call(S.owner!, 'PATCH', path, { title: 'Fridge Chef' }))).toBe('listing.invalid');
    expect(await code(call(S.owner!, 'PATCH', path, { title: 'Recipe Scout', reason: 'same' }))).toBe(
      'listing.invalid',
    );
    expect((await call(S.ann!, 'PATCH', path, { title: 'Mine', reason: 'because' })).status).toBe(403);
    const r = await json<{ listing: ListingView }>(
      call(S.owner!, 'PATCH', path, { title: 'Fridge Chef', tags: ['Kitchen'], reason: 'A clearer title.' }),
    );
    expect(r.listing).toMatchObject({ title: 'Fridge Chef', tags: ['kitchen'], status: 'published' });
    const find = async (q: string) =>
      (
        await json<{ listings: { id: string }[] }>(
          call(S.dan!, 'GET', `/api/v1/marketplace?q=${q}&mode=keyword`),
        )
      ).listings.map((x) => x.id);
    expect(await find('chef')).toEqual([recipes]);
    expect(await find('scout')).toEqual([]);
    const audit = await json<{
      entries: { details: { reason: string; changed: Record<string, unknown> } }[];
    }>(call(S.owner!, 'GET', `/api/v1/audit?action=listing.edited&target=listing:${recipes}`));
    expect(audit.entries[0]?.details.reason).toBe('A clearer title.');
    expect(audit.entries[0]?.details.changed).toEqual({
      title: { from: 'Recipe Scout', to: 'Fridge Chef' },
      tags: { from: '[]', to: '["kitchen"]' },
    });
    expect((await mails('listing_edit')).map((m) => m.subject)).toEqual([
      'Your listing "Fridge Chef" was edited',
    ]);
  });
});

describe('semantic search', () => {
  test('a query sharing no keyword finds the listing by meaning; hybrid merges both', async () => {
    const q = async (query: string, mode?: string) =>
      (
        await json<{ listings: { id: string }[] }>(
          call(
            S.dan!,
            'GET',
            `/api/v1/marketplace?q=${encodeURIComponent(query)}${mode ? `&mode=${mode}` : ''}`,
          ),
        )
      ).listings.map((x) => x.id);
    // "supper" is in no listing's text: keyword search finds nothing.
    expect(await q('supper', 'keyword')).toEqual([]);
    expect((await q('supper', 'semantic'))[0]).toBe(recipes);
    expect((await q('supper'))[0]).toBe(recipes);
    expect((await q('deductions accountant', 'semantic'))[0]).toBe(taxes);
    // Keyword hits lead hybrid results too.
    expect((await q('tax', 'hybrid'))[0]).toBe(taxes);
    expect(await code(call(S.dan!, 'GET', '/api/v1/marketplace?q=x&mode=fuzzy'))).toBe('listing.invalid');
  });

  test('suspended listings leave the semantic index; restored ones come back', async () => {
    await call(S.owner!, 'POST', `/api/v1/moderation/listings/${recipes}`, {
      action: 'suspend',
      reason: 'Again.',
    });
    const sem = async () =>
      (
        await json<{ listings: { id: string }[] }>(
          call(S.dan!, 'GET', '/api/v1/marketplace?q=supper&mode=semantic'),
        )
      ).listings.map((x) => x.id);
    expect(await sem()).not.toContain(recipes);
    await call(S.owner!, 'POST', `/api/v1/moderation/listings/${recipes}`, {
      action: 'restore',
      reason: 'Fine.',
    });
    expect((await sem())[0]).toBe(recipes);
    // Revoked: gone, and the creator told.
    await call(S.owner!, 'POST', `/api/v1/moderation/listings/${recipes}`, {
      action: 'revoke',
      reason: 'Final.',
    });
    expect(await sem()).not.toContain(recipes);
    expect((await mails('listing_revoke')).map((m) => m.subject)).toEqual([
      'Your listing "Fridge Chef" was revoked',
    ]);
  });
});
