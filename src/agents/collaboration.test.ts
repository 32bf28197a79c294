/**
 * Collaboration (issue 12 item 4): an agent's members (the roles table: owner, admin, editor,
 * viewer and a non-member against read, chat, edit, publish, visibility, members, delete), a
 * removal that takes effect at once, and shared conversations (features.collaborative_agents):
 * two users chat with one agent through the stub upstream, authors recorded and shown to the
 * model, the other's event stream gets the messages live, one turn at a time, usage attributed
 * to who sent the turn, non-participants and the switch off.
 */
import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { type InProcessServer, inProcessServer } from '../../tests/inproc.ts';
import { type OpenAIStub, startOpenAIStub } from '../../tests/peers/openai-stub.ts';
import { callAs, json, type Session, signInTo } from '../../tests/sessions.ts';
import { deadline, waitFor } from '../../tests/wait.ts';
import { readOutbox } from '../identity/index.ts';
import { live } from './live.ts';

let s: InProcessServer;
let stub: OpenAIStub;
const P: Record<string, { id: string; owner: { email: string; password: string } }> = {};
const S: Record<string, Session> = {};
const U: Record<string, string> = {};
const PASSWORD = 'a-long-password-12';

const call = (se: Session, method: string, path: string, body?: unknown) => callAs(s, se, method, path, body);

beforeAll(async () => {
  stub = await startOpenAIStub({ models: ['gpt-4o-mini'] });
  s = await inProcessServer({
    config: {
      providers: [{ id: 'stub', kind: 'openai', url: stub.url, location: 'on_prem', timeout_ms: 10_000 }],
      models: [{ alias: 'default', route: ['stub/gpt-4o-mini'] }],
      outbound: { allow: ['127.0.0.1/32'] },
    },
  });
  for (const slug of ['co', 'other']) {
    const r = await s.operatorApi('POST', '/platforms', {
      slug,
      template: 'creator',
      blueprint: { features: { collaborative_agents: true } },
    });
    expect(r.status).toBe(201);
    const b = (await r.json()) as { admin: { email: string; password: string }; platform: { id: string } };
    P[slug] = { id: b.platform.id, owner: b.admin };
  }
  S.root = await signInTo(s, 'co', P.co!.owner.email, P.co!.owner.password);
  for (const [key, email, role, name] of [
    ['cleo', 'cleo@co.test', 'creator', 'Cleo'],
    ['adm', 'adm@co.test', 'admin', 'Adam'],
    ['ed', 'ed@co.test', 'creator', 'Ed'],
    ['vi', 'vi@co.test', 'member', 'Vi'],
    ['no', 'no@co.test', 'member', 'Noor'],
    ['tgt', 'tgt@co.test', 'member', 'Tig'],
  ] as const) {
    const r = await call(S.root, 'POST', '/api/v1/users', { email, role, name, password: PASSWORD });
    expect(r.status).toBe(201);
    U[key] = ((await r.json()) as { user: { id: string } }).user.id;
    S[key] = await signInTo(s, 'co', email, PASSWORD);
  }
  S.other = await signInTo(s, 'other', P.other!.owner.email, P.other!.owner.password);
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

/** The server-sent events of a response, one at a time. */
function sse(res: Response) {
  const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
  let buf = '';
  let ended = false;
  return {
    /** The next event (null once the stream has ended); comments are skipped. */
    async next(): Promise<{ event: string; data: Record<string, unknown> } | null> {
      for (;;) {
        const cut = buf.indexOf('\n\n');
        if (cut >= 0) {
          const block = buf.slice(0, cut);
          buf = buf.slice(cut + 2);
          const event = /^event: (.*)$/m.exec(block)?.[1];
          if (!event) continue;
          return { event, data: JSON.parse(/^data: (.*)$/m.exec(block)?.[1] ?? 'null') };
        }
        if (ended) return null;
        const { value, done } = await reader.read();
        if (done) ended = true;
        else buf += value;
      }
    },
    /** The first event `pick` accepts, within 5 s. */
    async until(pick: (e: { event: string; data: Record<string, unknown> }) => boolean) {
      const find = async () => {
        for (;;) {
          const e = await this.next();
          if (!e || pick(e)) return e;
        }
      };
      return Promise.race([find(), deadline(5_000, 'the awaited event')]);
    },
    cancel: () => reader.cancel(),
  };
}

interface AgentView {
  id: string;
  role: string | null;
  can_edit: boolean;
  can_manage: boolean;
}

let agentId = '';

describe('agent members', () => {
  beforeAll(async () => {
    const a = await json<{ agent: AgentView }>(
      call(S.cleo!, 'POST', '/api/v1/agents', { name: 'Team Helper', persona: 'You help the team.' }),
    );
    agentId = a.agent.id;
    expect((await call(S.cleo!, 'POST', `/api/v1/agents/${agentId}/publish`)).status).toBe(201);
  });

  test('the owner invites an editor and a viewer by email; they get a mail; each change is audited', async () => {
    const ed = await call(S.cleo!, 'POST', `/api/v1/agents/${agentId}/members`, {
      email: 'ED@co.test',
      role: 'editor',
    });
    expect(ed.status).toBe(201);
    expect(((await ed.json()) as { member: unknown }).member).toMatchObject({
      user_id: U.ed,
      role: 'editor',
      name: 'Ed',
    });
    const vi = await call(S.cleo!, 'POST', `/api/v1/agents/${agentId}/members`, {
      user_id: U.vi,
      role: 'viewer',
    });
    expect(vi.status).toBe(201);
    const list = await json<{ owner: { user_id: string }; members: { user_id: string; role: string }[] }>(
      call(S.cleo!, 'GET', `/api/v1/agents/${agentId}/members`),
    );
    expect(list.owner.user_id).toBe(U.cleo!);
    expect(list.members.map((m) => [m.user_id, m.role])).toEqual([
      [U.ed!, 'editor'],
      [U.vi!, 'viewer'],
    ]);
    const mail = await s.app.platformDbs.use(P.co!.id, (db) => readOutbox(db, { template: 'agent_member' }));
    expect(mail.map((m) => m.to_email).sort()).toEqual(['ed@co.test', 'vi@co.test']);
    // Links from the stored public URL: the builder for an editor, the agents for a viewer.
    // (tests/inproc.ts stores http://localhost:8080: the platform's host, that scheme and port.)
    const origin = 'http://co.localhost:8080';
    expect(mail.find((m) => m.to_email === 'ed@co.test')!.body).toContain(
      `${origin}/app/agents/${agentId}\n`,
    );
    expect(mail.find((m) => m.to_email === 'vi@co.test')!.body).toContain(`${origin}/app/agents\n`);
    const audit = await json<{ entries: { action: string; target: string }[] }>(
      call(S.root!, 'GET', '/api/v1/audit?action=agent.member_added'),
    );
    expect(audit.entries.filter((e) => e.target === `agent:${agentId}`).length).toBe(2);
  });

  test('invitations that cannot be: unknown email, a member as editor, the owner, a bad role, another platform', async () => {
    const add = (body: unknown) => call(S.cleo!, 'POST', `/api/v1/agents/${agentId}/members`, body);
    const unknown = await add({ email: 'nobody@co.test', role: 'viewer' });
    expect(unknown.status).toBe(404);
    expect(((await unknown.json()) as { error: { code: string } }).error.code).toBe('user.not_found');
    const memberEditor = await add({ email: 'no@co.test', role: 'editor' });
    expect(memberEditor.status).toBe(409);
    expect(((await memberEditor.json()) as { error: { code: string } }).error.code).toBe(
      'agent.member_cannot_edit',
    );
    expect((await add({ email: 'cleo@co.test', role: 'viewer' })).status).toBe(409);
    const badRole = await add({ email: 'no@co.test', role: 'owner' });
    expect(badRole.status).toBe(400);
    expect(
      ((await badRole.json()) as { error: { details: { path: string }[] } }).error.details[0]!.path,
    ).toBe('/role');
    expect((await add({ role: 'viewer' })).status).toBe(400);
    // A disabled account is no active user.
    const dis = await json<{ user: { id: string } }>(
      call(S.root!, 'POST', '/api/v1/users', { email: 'dis@co.test', role: 'creator', password: PASSWORD }),
    );
    expect(
      (await call(S.root!, 'PATCH', `/api/v1/users/${dis.user.id}`, { status: 'disabled' })).status,
    ).toBe(200);
    expect((await add({ user_id: dis.user.id, role: 'viewer' })).status).toBe(404);
    // The other platform's owner is no user here.
    expect((await add({ email: P.other!.owner.email, role: 'viewer' })).status).toBe(404);
    // And no one on the other platform reaches this agent's members.
    expect((await call(S.other!, 'GET', `/api/v1/agents/${agentId}/members`)).status).toBe(404);
  });

  test('the list of agents includes those shared with me, with my role', async () => {
    const role = async (se: Session) =>
      (await json<{ agents: AgentView[] }>(call(se, 'GET', '/api/v1/agents'))).agents.find(
        (a) => a.id === agentId,
      )?.role ?? null;
    expect(await role(S.cleo!)).toBe('owner');
    expect(await role(S.ed!)).toBe('editor');
    expect(await role(S.vi!)).toBe('viewer');
    expect(await role(S.adm!)).toBe('admin');
    expect(await role(S.no!)).toBeNull();
  });

  test('the roles table: owner, admin, editor, viewer, non-member', async () => {
    const who = ['cleo', 'adm', 'ed', 'vi', 'no'] as const;
    const got: Record<string, Record<string, number>> = {};
    for (const k of who) {
      const se = S[k]!;
      const r: Record<string, number> = {};
      r.read = (await call(se, 'GET', `/api/v1/agents/${agentId}`)).status;
      r.chat = (await call(se, 'POST', '/api/v1/conversations', { agent_id: agentId })).status;
      r.test_draft = (
        await call(se, 'POST', '/api/v1/conversations', { agent_id: agentId, draft: true })
      ).status;
      r.edit = (await call(se, 'PATCH', `/api/v1/agents/${agentId}`, { persona: `Persona by ${k}.` })).status;
      r.publish = (await call(se, 'POST', `/api/v1/agents/${agentId}/publish`)).status;
      r.visibility = (await call(se, 'PATCH', `/api/v1/agents/${agentId}`, { visibility: 'private' })).status;
      r.visibility_change = (
        await call(se, 'PATCH', `/api/v1/agents/${agentId}`, { visibility: 'platform' })
      ).status;
      if (r.visibility_change === 200)
        await call(S.cleo!, 'PATCH', `/api/v1/agents/${agentId}`, { visibility: 'private' });
      r.list_members = (await call(se, 'GET', `/api/v1/agents/${agentId}/members`)).status;
      r.add_member = (
        await call(se, 'POST', `/api/v1/agents/${agentId}/members`, { user_id: U.tgt, role: 'viewer' })
      ).status;
      if (r.add_member === 201)
        expect((await call(S.cleo!, 'DELETE', `/api/v1/agents/${agentId}/members/${U.tgt}`)).status).toBe(
          204,
        );
      r.remove_member = (await call(se, 'DELETE', `/api/v1/agents/${agentId}/members/${U.ed}`)).status;
      if (r.remove_member === 204)
        await call(S.cleo!, 'POST', `/api/v1/agents/${agentId}/members`, { user_id: U.ed, role: 'editor' });
      r.delete =
        k === 'cleo' || k === 'adm' ? 0 : (await call(se, 'DELETE', `/api/v1/agents/${agentId}`)).status;
      got[k] = r;
    }
    // prettier-ignore
    expect(got).toEqual({
      cleo: {
        read: 200,
        chat: 201,
        test_draft: 201,
        edit: 200,
        publish: 201,
        visibility: 200,
        visibility_change: 200,
        list_members: 200,
        add_member: 201,
        remove_member: 204,
        delete: 0,
      },
      adm: {
        read: 200,
        chat: 201,
        test_draft: 201,
        edit: 200,
        publish: 201,
        visibility: 200,
        visibility_change: 200,
        list_members: 200,
        add_member: 201,
        remove_member: 204,
        delete: 0,
      },
      ed: {
        read: 200,
        chat: 201,
        test_draft: 201,
        edit: 200,
        publish: 201,
        visibility: 200,
        visibility_change: 403,
        list_members: 200,
        add_member: 403,
        remove_member: 204,
        delete: 403,
      },
      vi: {
        read: 200,
        chat: 201,
        test_draft: 403,
        edit: 403,
        publish: 403,
        visibility: 403,
        visibility_change: 403,
        list_members: 403,
        add_member: 403,
        remove_member: 403,
        delete: 403,
      },
      no: {
        read: 404,
        chat: 404,
        test_draft: 404,
        edit: 403,
        publish: 403,
        visibility: 403,
        visibility_change: 403,
        list_members: 404,
        add_member: 403,
        remove_member: 404,
        delete: 403,
      },
    });
    // Deleting: the owner and the admins (a throwaway agent for the admin).
    const spare = await json<{ agent: AgentView }>(
      call(S.cleo!, 'POST', '/api/v1/agents', { name: 'Spare' }),
    );
    expect((await call(S.adm!, 'DELETE', `/api/v1/agents/${spare.agent.id}`)).status).toBe(204);
  });

  test('a viewer chats with the latest version, never the draft; removing a member takes effect at once', async () => {
    const c = await json<{ conversation: { id: string; agent: { version: number } } }>(
      call(S.vi!, 'POST', '/api/v1/conversations', { agent_id: agentId }),
    );
    const latest = (
      await json<{ agent: { latest_version: { version: number } } }>(
        call(S.cleo!, 'GET', `/api/v1/agents/${agentId}`),
      )
    ).agent.latest_version.version;
    expect(c.conversation.agent.version).toBe(latest);
    // The viewer sees the published spec, not the draft.
    const seen = await json<{ agent: { draft?: unknown; can_edit: boolean } }>(
      call(S.vi!, 'GET', `/api/v1/agents/${agentId}`),
    );
    expect(seen.agent.draft).toBeUndefined();
    expect(seen.agent.can_edit).toBe(false);
    await turn(S.vi!, c.conversation.id, 'hello there');
    // Removed: the next turn, and the agent itself, are gone for them.
    expect((await call(S.cleo!, 'DELETE', `/api/v1/agents/${agentId}/members/${U.vi}`)).status).toBe(204);
    const after = await call(S.vi!, 'POST', `/api/v1/conversations/${c.conversation.id}/messages`, {
      content: 'still there?',
    });
    expect(after.status).toBe(404);
    expect((await call(S.vi!, 'GET', `/api/v1/agents/${agentId}`)).status).toBe(404);
    const removed = await json<{ entries: { details: { user: string } }[] }>(
      call(S.root!, 'GET', '/api/v1/audit?action=agent.member_removed'),
    );
    expect(removed.entries.some((e) => e.details.user === U.vi)).toBe(true);
    // Back as a viewer for what follows; a member may also leave on their own.
    expect(
      (await call(S.cleo!, 'POST', `/api/v1/agents/${agentId}/members`, { user_id: U.vi, role: 'viewer' }))
        .status,
    ).toBe(201);
    expect(
      (await call(S.cleo!, 'POST', `/api/v1/agents/${agentId}/members`, { user_id: U.tgt, role: 'viewer' }))
        .status,
    ).toBe(201);
    expect((await call(S.tgt!, 'DELETE', `/api/v1/agents/${agentId}/members/${U.tgt}`)).status).toBe(204);
    // A role changed: the editor made a viewer can no longer edit.
    const ch = await call(S.cleo!, 'PATCH', `/api/v1/agents/${agentId}/members/${U.ed}`, { role: 'viewer' });
    expect(ch.status).toBe(200);
    expect((await call(S.ed!, 'PATCH', `/api/v1/agents/${agentId}`, { persona: 'x' })).status).toBe(403);
    expect(
      (await call(S.cleo!, 'PATCH', `/api/v1/agents/${agentId}/members/${U.ed}`, { role: 'editor' })).status,
    ).toBe(200);
    expect(
      (await call(S.cleo!, 'PATCH', `/api/v1/agents/${agentId}/members/${U.no}`, { role: 'viewer' })).status,
    ).toBe(404);
  });
});

describe('shared conversations', () => {
  let conv = '';

  test('the owner of a conversation with an agent shares it with a user who may use the agent', async () => {
    conv = (
      await json<{ conversation: { id: string } }>(
        call(S.cleo!, 'POST', '/api/v1/conversations', { agent_id: agentId }),
      )
    ).conversation.id;
    // Not someone who may not use the agent (the agent is private; Noor is no member).
    const refused = await call(S.cleo!, 'POST', `/api/v1/conversations/${conv}/participants`, {
      email: 'no@co.test',
    });
    expect(refused.status).toBe(409);
    expect(((await refused.json()) as { error: { code: string } }).error.code).toBe(
      'conversation.participant_cannot_use_agent',
    );
    const r = await call(S.cleo!, 'POST', `/api/v1/conversations/${conv}/participants`, {
      email: 'vi@co.test',
    });
    expect(r.status).toBe(201);
    const body = (await r.json()) as { participants: { user_id: string; name: string }[] };
    expect(body.participants.map((p) => p.user_id)).toEqual([U.vi!]);
    // A conversation without an agent is not shared.
    const plain = await json<{ conversation: { id: string } }>(
      call(S.cleo!, 'POST', '/api/v1/conversations', {}),
    );
    expect(
      (
        await call(S.cleo!, 'POST', `/api/v1/conversations/${plain.conversation.id}/participants`, {
          user_id: U.vi,
        })
      ).status,
    ).toBe(409);
    // The participant sees it in their list, shared, owned by Cleo; only the owner shares it further.
    const list = await json<{ conversations: { id: string; owner_id: string; shared: boolean }[] }>(
      call(S.vi!, 'GET', '/api/v1/conversations'),
    );
    expect(list.conversations.find((c) => c.id === conv)).toMatchObject({ owner_id: U.cleo, shared: true });
    expect(
      (await call(S.vi!, 'POST', `/api/v1/conversations/${conv}/participants`, { user_id: U.ed })).status,
    ).toBe(403);
    expect((await call(S.vi!, 'PATCH', `/api/v1/conversations/${conv}`, { title: 'mine now' })).status).toBe(
      403,
    );
    expect((await call(S.vi!, 'DELETE', `/api/v1/conversations/${conv}`)).status).toBe(403);
  });

  test("two users chat with one agent: authors recorded, names shown to the model, the other's stream live", async () => {
    // Vi listens; the `ready` event says the stream is registered.
    const res = await call(S.vi!, 'GET', `/api/v1/conversations/${conv}/events`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toContain('text/event-stream');
    const events = sse(res);
    expect((await events.next())?.event).toBe('ready');
    const before = stub.requests.length;
    await turn(S.cleo!, conv, 'what should we cook');
    const userEvent = await events.until((e) => e.event === 'message');
    expect(userEvent!.data.message).toMatchObject({
      role: 'user',
      content: 'what should we cook',
      author: { id: U.cleo, name: 'Cleo' },
    });
    const answer = await events.until(
      (e) => e.event === 'message' && (e.data.message as { role: string }).role === 'assistant',
    );
    expect((answer!.data.message as { content: string }).content).toBe('You said: Cleo: what should we cook');
    // Vi answers in the same conversation.
    await turn(S.vi!, conv, 'pasta please');
    const sent = stub.requests.slice(before).filter((r) => r.path.endsWith('/chat/completions'));
    const last = (sent.at(-1)!.body as { messages: { role: string; content: string }[] }).messages;
    expect(last.filter((m) => m.role !== 'system')).toEqual([
      { role: 'user', content: 'Cleo: what should we cook' },
      { role: 'assistant', content: 'You said: Cleo: what should we cook' },
      { role: 'user', content: 'Vi: pasta please' },
    ]);
    await events.cancel();
    const full = await json<{ messages: { role: string; author?: { id: string; name: string } }[] }>(
      call(S.cleo!, 'GET', `/api/v1/conversations/${conv}`),
    );
    expect(full.messages.map((m) => (m.role === 'user' ? m.author!.name : m.role))).toEqual([
      'Cleo',
      'assistant',
      'Vi',
      'assistant',
    ]);
    // The usage of a turn is the one who sent it.
    await s.ai.meter.flush();
    const users = await s.app.platformDbs.use(P.co!.id, (db) =>
      db
        .query<{ user_id: string }, [string]>(
          "SELECT user_id FROM usage_events WHERE agent_id = ? AND kind = 'chat' ORDER BY id DESC LIMIT 2",
        )
        .all(agentId),
    );
    expect(users.map((u) => u.user_id)).toEqual([U.vi!, U.cleo!]);
  });

  test('one turn at a time: a second send while one streams is 409 conversation.busy', async () => {
    const drip = stub.drip();
    const first = await call(S.cleo!, 'POST', `/api/v1/conversations/${conv}/messages`, { content: 'a b c' });
    expect(first.status).toBe(200);
    await drip.whenHeld(1);
    const second = await call(S.vi!, 'POST', `/api/v1/conversations/${conv}/messages`, { content: 'me too' });
    expect(second.status).toBe(409);
    expect(((await second.json()) as { error: { code: string } }).error.code).toBe('conversation.busy');
    drip.release();
    await first.text();
    // Free again once it ended.
    await turn(S.vi!, conv, 'now me');
  });

  test('a non-participant, another platform and a removed participant get 404; the stream closes', async () => {
    for (const se of [S.no!, S.ed!]) {
      expect((await call(se, 'GET', `/api/v1/conversations/${conv}`)).status).toBe(404);
      expect((await call(se, 'GET', `/api/v1/conversations/${conv}/events`)).status).toBe(404);
      expect(
        (await call(se, 'POST', `/api/v1/conversations/${conv}/messages`, { content: 'let me in' })).status,
      ).toBe(404);
    }
    expect((await call(S.other!, 'GET', `/api/v1/conversations/${conv}`)).status).toBe(404);
    const res = await call(S.vi!, 'GET', `/api/v1/conversations/${conv}/events`);
    const events = sse(res);
    expect((await events.next())?.event).toBe('ready');
    expect((await call(S.cleo!, 'DELETE', `/api/v1/conversations/${conv}/participants/${U.vi}`)).status).toBe(
      204,
    );
    // The removed participant's stream ends (no more events), and the conversation is gone for them.
    expect(await Promise.race([events.next(), deadline(5_000, 'the stream to end')])).toBeNull();
    expect((await call(S.vi!, 'GET', `/api/v1/conversations/${conv}`)).status).toBe(404);
    expect(
      (await call(S.vi!, 'POST', `/api/v1/conversations/${conv}/messages`, { content: 'hello?' })).status,
    ).toBe(404);
    const audit = await json<{ entries: { action: string }[] }>(
      call(S.root!, 'GET', `/api/v1/audit?target=conversation:${conv}`),
    );
    expect(audit.entries.map((e) => e.action).sort()).toEqual([
      'conversation.participant_added',
      'conversation.participant_removed',
    ]);
  });

  test("removing a participant's agent membership ends their access to the shared conversation", async () => {
    expect(
      (await call(S.cleo!, 'POST', `/api/v1/conversations/${conv}/participants`, { user_id: U.vi })).status,
    ).toBe(201);
    expect((await call(S.vi!, 'GET', `/api/v1/conversations/${conv}`)).status).toBe(200);
    const events = sse(await call(S.vi!, 'GET', `/api/v1/conversations/${conv}/events`));
    expect((await events.next())?.event).toBe('ready');
    expect((await call(S.cleo!, 'DELETE', `/api/v1/agents/${agentId}/members/${U.vi}`)).status).toBe(204);
    expect(await Promise.race([events.next(), deadline(5_000, 'the stream to end')])).toBeNull();
    expect((await call(S.vi!, 'GET', `/api/v1/conversations/${conv}`)).status).toBe(404);
    const listed = await json<{ conversations: { id: string }[] }>(
      call(S.vi!, 'GET', '/api/v1/conversations'),
    );
    expect(listed.conversations.some((c) => c.id === conv)).toBe(false);
    expect(
      (await call(S.cleo!, 'POST', `/api/v1/agents/${agentId}/members`, { user_id: U.vi, role: 'viewer' }))
        .status,
    ).toBe(201);
    expect((await call(S.vi!, 'GET', `/api/v1/conversations/${conv}`)).status).toBe(200);
  });

  test('with collaborative_agents off: participant routes are 404 feature.disabled, only the owner keeps access', async () => {
    // Vi's open stream, and the owner's, before the switch goes off.
    const vis = sse(await call(S.vi!, 'GET', `/api/v1/conversations/${conv}/events`));
    expect((await vis.next())?.event).toBe('ready');
    const owners = sse(await call(S.cleo!, 'GET', `/api/v1/conversations/${conv}/events`));
    expect((await owners.next())?.event).toBe('ready');
    const off = await s.operatorApi('PATCH', '/platforms/co', {
      blueprint: { features: { collaborative_agents: false } },
    });
    expect(off.status).toBe(200);
    try {
      // The next access check (each stream's timer; run now) ends the participant's stream only.
      live(s.app.state).recheck();
      expect(await Promise.race([vis.next(), deadline(5_000, 'the stream to end')])).toBeNull();
      await turn(S.cleo!, conv, 'only me now');
      expect((await owners.until((e) => e.event === 'message'))?.data.message).toMatchObject({
        content: 'only me now',
      });
      await owners.cancel();
      for (const [method, path] of [
        ['GET', `/api/v1/conversations/${conv}/participants`],
        ['POST', `/api/v1/conversations/${conv}/participants`],
        ['DELETE', `/api/v1/conversations/${conv}/participants/${U.vi}`],
        ['GET', `/api/v1/conversations/${conv}/events`],
      ] as const) {
        const r = await call(S.cleo!, method, path, method === 'POST' ? { user_id: U.vi } : undefined);
        expect(r.status).toBe(404);
        expect(((await r.json()) as { error: { code: string } }).error.code).toBe('feature.disabled');
      }
      expect((await call(S.vi!, 'GET', `/api/v1/conversations/${conv}`)).status).toBe(404);
      expect(
        (
          await json<{ conversations: { id: string }[] }>(call(S.vi!, 'GET', '/api/v1/conversations'))
        ).conversations.some((c) => c.id === conv),
      ).toBe(false);
      expect((await call(S.cleo!, 'GET', `/api/v1/conversations/${conv}`)).status).toBe(200);
    } finally {
      await s.operatorApi('PATCH', '/platforms/co', {
        blueprint: { features: { collaborative_agents: true } },
      });
    }
    // Back on: the participant's access is back (the row was kept).
    await waitFor(async () => (await call(S.vi!, 'GET', `/api/v1/conversations/${conv}`)).status === 200, {
      what: 'the participant to be let in again',
    });
  });
});
