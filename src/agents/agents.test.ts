/**
 * Agents (issue 12 item 1, item 5's chat): make, edit the draft, publish immutable versions
 * named by their hash, share on the platform, chat with a version (persona, model, settings;
 * usage attributed to the agent), test the draft, feature gate, and the attack table.
 */
import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import canonicalize from 'canonicalize';
import { type InProcessServer, inProcessServer } from '../../tests/inproc.ts';
import { type OpenAIStub, startOpenAIStub } from '../../tests/peers/openai-stub.ts';
import { callAs, json, type Session, signInTo } from '../../tests/sessions.ts';
import { sha256Hex } from '../shared/crypto.ts';

let s: InProcessServer;
let stub: OpenAIStub;
const P: Record<string, { id: string; owner: { email: string; password: string } }> = {};

const S: Record<string, Session> = {};

const signIn = (slug: string, email: string, password: string) => signInTo(s, slug, email, password);

const call = (se: Session, method: string, path: string, body?: unknown) => callAs(s, se, method, path, body);

interface AgentView {
  id: string;
  slug: string;
  name: string;
  persona?: string;
  visibility: string;
  latest_version: { version: number; hash: string } | null;
  draft?: { persona: string; changed: boolean };
  can_edit: boolean;
}

beforeAll(async () => {
  stub = await startOpenAIStub({ models: ['gpt-4o-mini'] });
  s = await inProcessServer({
    config: {
      providers: [{ id: 'stub', kind: 'openai', url: stub.url, location: 'on_prem', timeout_ms: 10_000 }],
      models: [
        { alias: 'default', route: ['stub/gpt-4o-mini'] },
        { alias: 'second', route: ['stub/gpt-4o-mini'] },
      ],
      outbound: { allow: ['127.0.0.1/32'] },
    },
  });
  for (const slug of ['ag', 'other']) {
    const r = await s.operatorApi('POST', '/platforms', { slug, template: 'creator' });
    const b = (await r.json()) as { admin: { email: string; password: string }; platform: { id: string } };
    P[slug] = { id: b.platform.id, owner: b.admin };
  }
  S.owner = await signIn('ag', P.ag!.owner.email, P.ag!.owner.password);
  for (const [email, role] of [
    ['cleo@ag.test', 'creator'],
    ['mo@ag.test', 'member'],
  ] as const) {
    const r = await call(S.owner, 'POST', '/api/v1/users', { email, role, password: 'a-long-password-12' });
    expect(r.status).toBe(201);
  }
  S.creator = await signIn('ag', 'cleo@ag.test', 'a-long-password-12');
  S.member = await signIn('ag', 'mo@ag.test', 'a-long-password-12');
  S.other = await signIn('other', P.other!.owner.email, P.other!.owner.password);
});
afterAll(async () => {
  await s.close();
  await stub.stop();
});

/** Reads a turn's stream to its end. */
async function turn(se: Session, conversation: string, content: string) {
  const r = await call(se, 'POST', `/api/v1/conversations/${conversation}/messages`, { content });
  expect(r.status).toBe(200);
  return r.text();
}

let agentId = '';

describe('agents', () => {
  test('a creator makes an agent: a private draft, no version yet, a slug from its name', async () => {
    const r = await call(S.creator!, 'POST', '/api/v1/agents', {
      name: 'Recipe Helper',
      description: 'Cooks with what you have.',
      avatar: '🍳',
      persona: 'You are a friendly chef.',
      model: 'second',
      temperature: 0.3,
      max_tokens: 200,
      starter_prompts: ['What can I make with eggs?'],
    });
    expect(r.status).toBe(201);
    const a = ((await r.json()) as { agent: AgentView }).agent;
    agentId = a.id;
    expect(a).toMatchObject({
      slug: 'recipe-helper',
      visibility: 'private',
      latest_version: null,
      can_edit: true,
    });
    expect(a.draft).toMatchObject({ persona: 'You are a friendly chef.', changed: true });
    // Unpublished and private: the member sees nothing of it.
    expect((await json<{ agents: AgentView[] }>(call(S.member!, 'GET', '/api/v1/agents'))).agents).toEqual(
      [],
    );
    expect((await call(S.member!, 'GET', `/api/v1/agents/${agentId}`)).status).toBe(404);
    // The same name again gets a free slug.
    const twin = await json<{ agent: AgentView }>(
      call(S.creator!, 'POST', '/api/v1/agents', { name: 'Recipe Helper' }),
    );
    expect(twin.agent.slug).toBe('recipe-helper-2');
    expect((await call(S.creator!, 'DELETE', `/api/v1/agents/${twin.agent.id}`)).status).toBe(204);
  });

  test('publishing freezes the draft as a version named by the hash of its canonical JSON', async () => {
    const r = await call(S.creator!, 'POST', `/api/v1/agents/${agentId}/publish`);
    expect(r.status).toBe(201);
    const { agent, version } = (await r.json()) as {
      agent: AgentView;
      version: { version: number; hash: string };
    };
    const v1 = (
      await json<{ versions: { version: number; hash: string; spec: unknown }[] }>(
        call(S.creator!, 'GET', `/api/v1/agents/${agentId}/versions`),
      )
    ).versions;
    expect(version.version).toBe(1);
    expect(version.hash).toBe(sha256Hex(canonicalize(v1[0]!.spec)!));
    expect(agent.draft!.changed).toBe(false);
    // Publishing an unchanged draft is refused.
    const again = await call(S.creator!, 'POST', `/api/v1/agents/${agentId}/publish`);
    expect(again.status).toBe(409);
    expect((await again.json()) as object).toMatchObject({ error: { code: 'agent.unchanged' } });
    // A new draft, a new version; the first stays as it was.
    await call(S.creator!, 'PATCH', `/api/v1/agents/${agentId}`, { persona: 'You are a terse chef.' });
    const v2 = await json<{ version: { version: number; hash: string } }>(
      call(S.creator!, 'POST', `/api/v1/agents/${agentId}/publish`),
    );
    expect(v2.version.version).toBe(2);
    expect(v2.version.hash).not.toBe(version.hash);
    const all = await json<{ versions: { version: number; hash: string; spec: { persona: string } }[] }>(
      call(S.creator!, 'GET', `/api/v1/agents/${agentId}/versions`),
    );
    expect(all.versions.map((v) => [v.version, v.spec.persona])).toEqual([
      [2, 'You are a terse chef.'],
      [1, 'You are a friendly chef.'],
    ]);
    // A version cannot be changed, even by SQL.
    await s.app.platformDbs.use(P.ag!.id, (db) => {
      expect(() => db.query("UPDATE agent_versions SET spec = '{}' WHERE agent_id = ?").run(agentId)).toThrow(
        /immutable/,
      );
    });
    // The audit trail has it.
    const audit = await json<{ entries: { action: string; target: string }[] }>(
      call(S.owner!, 'GET', '/api/v1/audit?order=desc&action=agent.&limit=20'),
    );
    expect(audit.entries.filter((e) => e.target === `agent:${agentId}`).map((e) => e.action)).toEqual([
      'agent.published',
      'agent.published',
      'agent.created',
    ]);
  });

  test('shared on the platform, members chat with the latest version: its persona, model and settings', async () => {
    await call(S.creator!, 'PATCH', `/api/v1/agents/${agentId}`, {
      visibility: 'platform',
      persona: 'an unpublished change',
    });
    const seen = (await json<{ agents: AgentView[] }>(call(S.member!, 'GET', '/api/v1/agents'))).agents;
    expect(seen.map((a) => a.id)).toEqual([agentId]);
    // Members see the published version, not the draft.
    expect(seen[0]!.persona).toBe('You are a terse chef.');
    expect(seen[0]!.draft).toBeUndefined();
    expect(seen[0]!.can_edit).toBe(false);
    const c = await json<{
      conversation: { id: string; title: string; model: string; agent: { id: string; version: number } };
    }>(call(S.member!, 'POST', '/api/v1/conversations', { agent_id: agentId }));
    expect(c.conversation).toMatchObject({
      title: 'Recipe Helper',
      model: 'second',
      agent: { id: agentId, version: 2 },
    });
    const before = stub.requests.length;
    const text = await turn(S.member!, c.conversation.id, 'eggs and rice');
    expect(text).toContain('event: done');
    const sent = stub.requests.slice(before).find((r) => r.path.endsWith('/chat/completions'))!.body as {
      messages: { role: string; content: string }[];
      temperature: number;
      max_tokens: number;
    };
    expect(sent.messages[0]).toEqual({ role: 'system', content: 'You are a terse chef.' });
    expect(sent.messages.at(-1)).toEqual({ role: 'user', content: 'eggs and rice' });
    expect(sent.temperature).toBe(0.3);
    expect(sent.max_tokens).toBe(200);
    // The turn cannot pick another model than the agent's.
    const other = await call(S.member!, 'POST', `/api/v1/conversations/${c.conversation.id}/messages`, {
      content: 'hi',
      model: 'default',
    });
    expect(other.status).toBe(400);
    // Usage is attributed to the agent.
    await s.ai.meter.flush();
    const rows = await s.app.platformDbs.use(P.ag!.id, (db) =>
      db.query<{ agent_id: string | null }, []>('SELECT agent_id FROM usage_events').all(),
    );
    expect(rows.some((r) => r.agent_id === agentId)).toBe(true);
  });

  test("the agent's editors test its draft; others may not; an unpublished agent has no chat", async () => {
    const d = await json<{ conversation: { id: string; agent: { version: number | null } } }>(
      call(S.creator!, 'POST', '/api/v1/conversations', { agent_id: agentId, draft: true }),
    );
    expect(d.conversation.agent.version).toBeNull();
    const before = stub.requests.length;
    await turn(S.creator!, d.conversation.id, 'test the draft');
    const sent = stub.requests.slice(before).find((r) => r.path.endsWith('/chat/completions'))!.body as {
      messages: { role: string; content: string }[];
    };
    expect(sent.messages[0]!.content).toBe('an unpublished change');
    const denied = await call(S.member!, 'POST', '/api/v1/conversations', { agent_id: agentId, draft: true });
    expect(denied.status).toBe(403);
    const fresh = await json<{ agent: AgentView }>(
      call(S.creator!, 'POST', '/api/v1/agents', { name: 'Not yet', visibility: 'platform' }),
    );
    const none = await call(S.creator!, 'POST', '/api/v1/conversations', { agent_id: fresh.agent.id });
    expect(none.status).toBe(409);
    expect((await none.json()) as object).toMatchObject({ error: { code: 'agent.unpublished' } });
  });

  test('attack table: bad fields are named; others cannot change, see private, or cross platforms', async () => {
    const cases: [string, Session, string, string, unknown, number, string, string?][] = [
      [
        'temperature 3',
        S.creator!,
        'POST',
        '/api/v1/agents',
        { name: 'x', temperature: 3 },
        400,
        'agent.invalid',
        '/temperature',
      ],
      [
        'a model the platform does not have',
        S.creator!,
        'POST',
        '/api/v1/agents',
        { name: 'x', model: 'gpt-5' },
        400,
        'agent.invalid',
        '/model',
      ],
      ['no name', S.creator!, 'POST', '/api/v1/agents', { persona: 'p' }, 400, 'agent.invalid', '/name'],
      [
        'marketplace visibility (not here yet)',
        S.creator!,
        'POST',
        '/api/v1/agents',
        { name: 'x', visibility: 'marketplace' },
        400,
        'agent.invalid',
        '/visibility',
      ],
      [
        'a script avatar',
        S.creator!,
        'POST',
        '/api/v1/agents',
        { name: 'x', avatar: 'javascript:alert(1)' },
        400,
        'agent.invalid',
        '/avatar',
      ],
      [
        'seven starter prompts',
        S.creator!,
        'POST',
        '/api/v1/agents',
        { name: 'x', starter_prompts: Array(7).fill('a') },
        400,
        'agent.invalid',
        '/starter_prompts',
      ],
      ['a member makes an agent', S.member!, 'POST', '/api/v1/agents', { name: 'x' }, 403, 'auth.forbidden'],
      [
        'a member edits a shared agent',
        S.member!,
        'PATCH',
        `/api/v1/agents/${agentId}`,
        { name: 'mine' },
        403,
        'auth.forbidden',
      ],
      [
        'a member deletes a shared agent',
        S.member!,
        'DELETE',
        `/api/v1/agents/${agentId}`,
        undefined,
        403,
        'auth.forbidden',
      ],
      [
        'another platform reads it',
        S.other!,
        'GET',
        `/api/v1/agents/${agentId}`,
        undefined,
        404,
        'agent.not_found',
      ],
      [
        'another platform chats with it',
        S.other!,
        'POST',
        '/api/v1/conversations',
        { agent_id: agentId },
        404,
        'agent.not_found',
      ],
      [
        'another platform publishes it',
        S.other!,
        'POST',
        `/api/v1/agents/${agentId}/publish`,
        undefined,
        404,
        'agent.not_found',
      ],
    ];
    for (const [what, se, method, path, body, status, code, field] of cases) {
      const r = await call(se, method, path, body);
      const e =
        r.status === 204
          ? null
          : ((await r.json()) as { error: { code: string; details?: { path: string }[] } }).error;
      expect({ what, status: r.status, code: e?.code }).toEqual({ what, status, code });
      if (field) expect({ what, field: e?.details?.[0]?.path }).toEqual({ what, field });
    }
    // A second creator may read a shared agent but not change it; a private one is not found.
    const r = await call(S.owner!, 'POST', '/api/v1/users', {
      email: 'cy@ag.test',
      role: 'creator',
      password: 'a-long-password-12',
    });
    expect(r.status).toBe(201);
    const cy = await signIn('ag', 'cy@ag.test', 'a-long-password-12');
    const edit = await call(cy, 'PATCH', `/api/v1/agents/${agentId}`, { name: 'taken over' });
    expect(edit.status).toBe(403);
    expect(((await edit.json()) as { error: { code: string } }).error.code).toBe('agent.forbidden');
    const priv = await json<{ agent: AgentView }>(
      call(S.creator!, 'POST', '/api/v1/agents', { name: 'Secret sauce' }),
    );
    expect((await call(cy, 'GET', `/api/v1/agents/${priv.agent.id}`)).status).toBe(404);
    expect((await call(cy, 'PATCH', `/api/v1/agents/${priv.agent.id}`, { name: 'x' })).status).toBe(404);
    // The platform's owner may read and change anything (the right to remove).
    const owned = await json<{ agent: AgentView }>(call(S.owner!, 'GET', `/api/v1/agents/${priv.agent.id}`));
    expect(owned.agent.can_edit).toBe(true);
    expect((await call(S.owner!, 'DELETE', `/api/v1/agents/${priv.agent.id}`)).status).toBe(204);
    // Anonymous: nothing.
    expect((await s.request('ag.localhost', '/api/v1/agents')).status).toBe(401);
  });

  test('features.agent_creation off: making, editing and publishing answer 404; using stays', async () => {
    const off = await s.operatorApi('PATCH', '/platforms/ag', {
      blueprint: { features: { agent_creation: false } },
    });
    expect(off.status).toBe(200);
    for (const [method, path] of [
      ['POST', '/api/v1/agents'],
      ['PATCH', `/api/v1/agents/${agentId}`],
      ['POST', `/api/v1/agents/${agentId}/publish`],
    ] as const) {
      const r = await call(S.creator!, method, path, { name: 'x' });
      expect({ path, status: r.status }).toEqual({ path, status: 404 });
      expect(((await r.json()) as { error: { code: string } }).error.code).toBe('feature.disabled');
    }
    expect((await call(S.member!, 'GET', `/api/v1/agents/${agentId}`)).status).toBe(200);
    expect((await call(S.member!, 'POST', '/api/v1/conversations', { agent_id: agentId })).status).toBe(201);
    await s.operatorApi('PATCH', '/platforms/ag', { blueprint: { features: { agent_creation: true } } });
  });

  test('deleting an agent keeps the conversations with it, as plain chats', async () => {
    const c = await json<{ conversation: { id: string } }>(
      call(S.member!, 'POST', '/api/v1/conversations', { agent_id: agentId }),
    );
    expect((await call(S.creator!, 'DELETE', `/api/v1/agents/${agentId}`)).status).toBe(204);
    const after = await json<{ conversation: { agent: unknown } }>(
      call(S.member!, 'GET', `/api/v1/conversations/${c.conversation.id}`),
    );
    expect(after.conversation.agent).toBeNull();
    expect(await turn(S.member!, c.conversation.id, 'still here?')).toContain('event: done');
    expect((await call(S.member!, 'GET', `/api/v1/agents/${agentId}`)).status).toBe(404);
  });
});
