/**
 * Federation between two instances (issue 12 item 8): two in-process servers, each with its own
 * data dir and keyring. A package from instance one is refused by instance two until its
 * operator pins instance one's key for the importing platform; then the round trip holds (same
 * spec, same hash, it runs). A version revoked at instance one keeps running at instance two
 * until the signed revocation list arrives (posted by the operator, or fetched from the peer's
 * URL through the outbound guard, here a listener on 127.0.0.1 the operator opened); then the
 * copy stops and the package is refused. A tampered list, and a list from a key no platform
 * trusts, are refused.
 */
import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { type InProcessServer, inProcessServer } from './inproc.ts';
import { type OpenAIStub, startOpenAIStub } from './peers/openai-stub.ts';
import { callAs, json, type Session, signInTo } from './sessions.ts';

let one: InProcessServer;
let two: InProcessServer;
let stub: OpenAIStub;
let peer: ReturnType<typeof Bun.serve>;
const S: Record<string, Session> = {};
const code = async (r: Response | Promise<Response>) =>
  ((await (await r).json()) as { error: { code: string } }).error.code;

interface Pkg {
  provenance: { instance_key_id: string; hash: string };
  public_key: string;
  agent: { persona: string };
}
interface AgentView {
  id: string;
  latest_version: { version: number; hash: string } | null;
  imported_from: Record<string, unknown> | null;
  revoked: unknown;
}

let agentId = '';
let pkg: Pkg;
let copyId = '';

beforeAll(async () => {
  stub = await startOpenAIStub({ models: ['gpt-4o-mini'] });
  const config = {
    providers: [
      {
        id: 'stub',
        kind: 'openai' as const,
        url: stub.url,
        location: 'on_prem' as const,
        timeout_ms: 10_000,
      },
    ],
    models: [{ alias: 'default', route: ['stub/gpt-4o-mini'] }],
    outbound: { allow: ['127.0.0.1/32'] },
  };
  // Instance one offers a model alias instance two does not.
  one = await inProcessServer({
    config: { ...config, models: [...config.models, { alias: 'special', route: ['stub/gpt-4o-mini'] }] },
  });
  two = await inProcessServer({ config });
  expect(one.dataDir).not.toBe(two.dataDir);
  for (const [s, slug, key] of [
    [one, 'src', 'src'],
    [two, 'dst', 'dst'],
  ] as const) {
    const r = await s.operatorApi('POST', '/platforms', {
      slug,
      name: `Platform ${slug}`,
      template: 'creator',
    });
    expect(r.status).toBe(201);
    const b = (await r.json()) as { admin: { email: string; password: string } };
    S[key] = await signInTo(s, slug, b.admin.email, b.admin.password);
  }
  // Instance one, seen by instance two as a peer on 127.0.0.1 (its operator host, as a proxy would).
  peer = Bun.serve({
    hostname: '127.0.0.1',
    port: 0,
    fetch: (req) => {
      const u = new URL(req.url);
      return one.request('localhost', u.pathname + u.search, { method: req.method });
    },
  });
  const a = await json<{ agent: { id: string } }>(
    callAs(one, S.src!, 'POST', '/api/v1/agents', { name: 'Travel Planner', persona: 'You plan trips.' }),
  );
  agentId = a.agent.id;
  expect((await callAs(one, S.src!, 'POST', `/api/v1/agents/${agentId}/publish`)).status).toBe(201);
  const r = await callAs(one, S.src!, 'GET', `/api/v1/agents/${agentId}/versions/1/package`);
  expect(r.status).toBe(200);
  pkg = (await r.json()) as Pkg;
});
afterAll(async () => {
  peer?.stop(true);
  await one?.close();
  await two?.close();
  await stub?.stop();
});

const keyOf = async (s: InProcessServer) =>
  (
    (await (await s.operatorApi('GET', '/federation/key')).json()) as {
      key: { key_id: string; public_key: string };
    }
  ).key;

describe('two instances', () => {
  test('each data dir has its own federation key', async () => {
    const k1 = await keyOf(one);
    const k2 = await keyOf(two);
    expect(k1.key_id).toMatch(/^ed25519:[0-9a-f]{32}$/);
    expect(k2.key_id).toMatch(/^ed25519:[0-9a-f]{32}$/);
    expect(k1.key_id).not.toBe(k2.key_id);
    expect(pkg.provenance.instance_key_id).toBe(k1.key_id);
  });

  test("before the operator pins instance one's key: untrusted; after: the round trip holds", async () => {
    const before = await callAs(two, S.dst!, 'POST', '/api/v1/agents/import', pkg);
    expect(before.status).toBe(403);
    expect(await code(before)).toBe('federation.untrusted_key');
    // A signed list from a key no platform here trusts is refused too.
    const list = await (await one.request('localhost', '/federation/revocations')).json();
    expect(await code(two.operatorApi('POST', '/federation/revocations', list))).toBe(
      'federation.untrusted_key',
    );
    // The operator of two pins one's key (as one's operator read it out) for dst.
    const k1 = await keyOf(one);
    const pin = await two.operatorApi('POST', '/platforms/dst/trusted-keys', {
      public_key: k1.public_key,
      key_id: k1.key_id,
      label: 'instance one',
    });
    expect(pin.status).toBe(201);
    const r = await callAs(two, S.dst!, 'POST', '/api/v1/agents/import', pkg);
    expect(r.status).toBe(201);
    const copy = ((await r.json()) as { agent: AgentView }).agent;
    copyId = copy.id;
    expect(copy.latest_version).toMatchObject({ version: 1, hash: pkg.provenance.hash });
    expect(copy.imported_from).toMatchObject({ instance_key_id: k1.key_id, hash: pkg.provenance.hash });
    expect((await callAs(two, S.dst!, 'POST', '/api/v1/conversations', { agent_id: copyId })).status).toBe(
      201,
    );
    // A tampered copy of the same package is still refused.
    const tampered = JSON.parse(JSON.stringify(pkg)) as Pkg;
    tampered.agent.persona = 'You plan trips badly.';
    expect(await code(callAs(two, S.dst!, 'POST', '/api/v1/agents/import', tampered))).toBe(
      'federation.bad_signature',
    );
  });

  test('a revocation at instance one reaches instance two with its signed list; a tampered list is refused', async () => {
    const rv = await callAs(one, S.src!, 'POST', `/api/v1/agents/${agentId}/versions/1/revoke`, {
      reason: 'unsafe advice',
    });
    expect(rv.status).toBe(200);
    // Instance two has not heard yet: the copy still runs.
    expect((await callAs(two, S.dst!, 'POST', '/api/v1/conversations', { agent_id: copyId })).status).toBe(
      201,
    );
    const list = (await (await one.request('localhost', '/federation/revocations')).json()) as {
      revocations: { hash: string; reason: string }[];
    };
    expect(list.revocations.map((r) => r.hash)).toContain(pkg.provenance.hash);
    // (The list fetched before pinning had none of it: the signed list is made again after a change.)
    const tampered = JSON.parse(JSON.stringify(list)) as typeof list;
    tampered.revocations[0]!.reason = 'something else';
    expect(await code(two.operatorApi('POST', '/federation/revocations', tampered))).toBe(
      'federation.bad_signature',
    );
    const dropped = JSON.parse(JSON.stringify(list)) as typeof list;
    dropped.revocations = [];
    expect(await code(two.operatorApi('POST', '/federation/revocations', dropped))).toBe(
      'federation.bad_signature',
    );
    expect((await callAs(two, S.dst!, 'POST', '/api/v1/conversations', { agent_id: copyId })).status).toBe(
      201,
    );
    // The genuine list, posted by the operator: the copy stops, the package is refused.
    const took = await two.operatorApi('POST', '/federation/revocations', list);
    expect(took.status).toBe(200);
    expect(await took.json()).toMatchObject({ added: list.revocations.length });
    const c = await callAs(two, S.dst!, 'POST', '/api/v1/conversations', { agent_id: copyId });
    expect(c.status).toBe(410);
    expect(await code(c)).toBe('federation.revoked');
    const again = await callAs(two, S.dst!, 'POST', '/api/v1/agents/import', pkg);
    expect(again.status).toBe(410);
    const shown = await json<{ agent: AgentView }>(callAs(two, S.dst!, 'GET', `/api/v1/agents/${copyId}`));
    expect(shown.agent.revoked).toMatchObject({ reason: 'unsafe advice' });
  });

  test("a second version, revoked later, arrives by fetching the peer's list from its URL", async () => {
    await callAs(one, S.src!, 'PATCH', `/api/v1/agents/${agentId}`, { persona: 'You plan trips, v2.' });
    expect((await callAs(one, S.src!, 'POST', `/api/v1/agents/${agentId}/publish`)).status).toBe(201);
    const p2 = (await (
      await callAs(one, S.src!, 'GET', `/api/v1/agents/${agentId}/versions/2/package`)
    ).json()) as Pkg;
    const copy2 = await callAs(two, S.dst!, 'POST', '/api/v1/agents/import', p2);
    expect(copy2.status).toBe(201);
    const id2 = ((await copy2.json()) as { agent: AgentView }).agent.id;
    await callAs(one, S.src!, 'POST', `/api/v1/agents/${agentId}/versions/2/revoke`, {
      reason: 'also unsafe',
    });
    expect((await callAs(two, S.dst!, 'POST', '/api/v1/conversations', { agent_id: id2 })).status).toBe(201);
    const fetched = await two.operatorApi('POST', '/federation/revocations/fetch', {
      url: `http://127.0.0.1:${peer.port}/federation/revocations`,
    });
    expect(fetched.status).toBe(200);
    expect(await fetched.json()).toMatchObject({ added: 1 });
    expect((await callAs(two, S.dst!, 'POST', '/api/v1/conversations', { agent_id: id2 })).status).toBe(410);
    // The operator's actions are on two's control chain.
    const audit = (await (await two.operatorApi('GET', '/audit?action=federation.')).json()) as {
      entries: { action: string }[];
    };
    expect(new Set(audit.entries.map((e) => e.action))).toEqual(
      new Set(['federation.key_created', 'federation.key_trusted', 'federation.revocations_received']),
    );
  });

  test("a model instance two does not offer: refused clearly, or mapped with ?model= (noted; the source's hash kept)", async () => {
    const a = await json<{ agent: { id: string } }>(
      callAs(one, S.src!, 'POST', '/api/v1/agents', {
        name: 'Special',
        persona: 'special',
        model: 'special',
      }),
    );
    await callAs(one, S.src!, 'POST', `/api/v1/agents/${a.agent.id}/publish`);
    const p = (await (
      await callAs(one, S.src!, 'GET', `/api/v1/agents/${a.agent.id}/versions/1/package`)
    ).json()) as Pkg;
    const refused = await callAs(two, S.dst!, 'POST', '/api/v1/agents/import', p);
    expect(refused.status).toBe(422);
    const err = ((await refused.json()) as { error: { code: string; message: string } }).error;
    expect(err.code).toBe('federation.model_unavailable');
    expect(err.message).toContain('special');
    expect(err.message).toContain('default');
    expect((await callAs(two, S.dst!, 'POST', '/api/v1/agents/import?model=nope', p)).status).toBe(400);
    const mapped = await callAs(two, S.dst!, 'POST', '/api/v1/agents/import?model=default', p);
    expect(mapped.status).toBe(201);
    const copy = ((await mapped.json()) as { agent: AgentView & { model: string } }).agent;
    expect(copy.model).toBe('default');
    expect(copy.imported_from).toMatchObject({ model_from: 'special', hash: p.provenance.hash });
    expect(copy.latest_version!.hash).not.toBe(p.provenance.hash);
    // A revocation of the source's version still reaches the mapped copy (by the source's hash).
    await callAs(one, S.src!, 'POST', `/api/v1/agents/${a.agent.id}/versions/1/revoke`, {
      reason: 'withdrawn',
    });
    expect((await callAs(two, S.dst!, 'POST', '/api/v1/conversations', { agent_id: copy.id })).status).toBe(
      201,
    );
    const list = await (await one.request('localhost', '/federation/revocations')).json();
    expect((await two.operatorApi('POST', '/federation/revocations', list)).status).toBe(200);
    expect((await callAs(two, S.dst!, 'POST', '/api/v1/conversations', { agent_id: copy.id })).status).toBe(
      410,
    );
  });
});
