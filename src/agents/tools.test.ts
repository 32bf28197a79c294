/**
 * Agent tools (issue 12 item 3), end to end in process: tools in the spec (checked, frozen by a
 * version, old hashes unchanged), the platform's host allowlist, function calling in a chat turn
 * against a protocol-faithful OpenAI stub (streamed tool_calls), confirm and decline of calls
 * that change something, the safe flag, per-call deadline and size limit, sealed secrets, the
 * feature switch, and the SSRF table.
 *
 * No socket is ever opened to a non-loopback address: the instance runs without `outbound.allow`
 * and with the guard's resolver and connector injected. The resolver maps the test names to
 * addresses; the connector forwards the one public address (93.184.216.34, `api.tools.test`) to
 * the tool server on 127.0.0.1, makes a real connection for loopback addresses (so a guard that
 * let one through would be seen by the canary listener on 127.0.0.1), and records and refuses
 * any other address without touching the network.
 */
import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Server, TCPSocketListener } from 'bun';
import canonicalize from 'canonicalize';
import { type InProcessServer, inProcessServer } from '../../tests/inproc.ts';
import { type OpenAIStub, startOpenAIStub } from '../../tests/peers/openai-stub.ts';
import { callAs, json, type Session, signInTo } from '../../tests/sessions.ts';
import { rotateDataKey } from '../flows/keys.ts';
import { LOCAL_ROOT } from '../identity/index.ts';
import { sha256Hex } from '../shared/crypto.ts';
import { type Connector, fetchConnector, type Resolver } from '../shared/outbound.ts';
import { TOOL_FAILED } from './tools.service.ts';
import { checkTools, hostAllowed, normalizeHostPattern, requestOf } from './tools.ts';

const PUBLIC = '93.184.216.34';
const SECRET = 'Bearer tool-secret-9c4e1a7f3b2d8e60';

let s: InProcessServer;
let stub: OpenAIStub;
let tools: Server<undefined>;
let canary: TCPSocketListener<undefined>;
let canaryConnections = 0;
/** Requests the tool server received. */
const hits: {
  method: string;
  path: string;
  search: string;
  headers: Record<string, string>;
  body: string;
}[] = [];
/** Addresses the connector was asked to reach that are neither the public test address nor loopback. */
const refusedByConnector: string[] = [];
let hang: () => void = () => {};
const hung = new Promise<void>((r) => {
  hang = r;
});
const S: Record<string, Session> = {};
const P: Record<string, { id: string; owner: { email: string; password: string } }> = {};

/** Names the resolver knows (anything else does not resolve). */
const NAMES: Record<string, string[]> = {
  'api.tools.test': [PUBLIC],
  'api2.tools.test': [PUBLIC],
  'not-listed.example': [PUBLIC],
  'loop.evil.test': ['127.0.0.1'],
  'loop6.evil.test': ['::1'],
  'mapped.evil.test': ['::ffff:127.0.0.1'],
  'meta.evil.test': ['169.254.169.254'],
  'ten.evil.test': ['10.0.0.5'],
  'oneseventwo.evil.test': ['172.16.0.1'],
  'oneninetwo.evil.test': ['192.168.1.1'],
  'cgnat.evil.test': ['100.64.0.1'],
  'ula.evil.test': ['fd00::1'],
  'linklocal.evil.test': ['fe80::1'],
  'mixed.evil.test': [PUBLIC, '10.0.0.5'],
};

const resolve: Resolver = async (name) => {
  const a = NAMES[name];
  if (!a) throw Object.assign(new Error(`getaddrinfo ENOTFOUND ${name}`), { code: 'ENOTFOUND' });
  return a.map((address) => ({ address, family: address.includes(':') ? 6 : 4 }));
};

const real = fetchConnector();
const connect: Connector = async (target, req) => {
  if (target.address === PUBLIC) {
    const u = target.url;
    return fetch(`http://127.0.0.1:${tools.port}${u.pathname}${u.search}`, {
      method: req.method,
      headers: req.headers,
      body: (req.body ?? null) as BodyInit | null,
      redirect: 'manual',
      signal: req.signal,
    });
  }
  // Loopback for real: a guard that let it through would reach the canary.
  if (target.address === '127.0.0.1' || target.address === '::1') return real(target, req);
  refusedByConnector.push(target.address);
  throw new Error(`the test connector opens no socket to ${target.address}`);
};

const call = (se: Session, method: string, path: string, body?: unknown) => callAs(s, se, method, path, body);

type Ev = { event: string; data: Record<string, unknown> };
/** Reads server-sent events to the end of the stream. */
async function events(res: Response): Promise<Ev[]> {
  expect(res.status).toBe(200);
  const out: Ev[] = [];
  const text = await res.text();
  for (const block of text.split('\n\n')) {
    if (!block.trim()) continue;
    const event = /^event: (.*)$/m.exec(block)?.[1] ?? 'message';
    out.push({ event, data: JSON.parse(/^data: (.*)$/m.exec(block)?.[1] ?? 'null') });
  }
  return out;
}

const params = {
  type: 'object',
  properties: { location: { type: 'string', description: 'A city' } },
  required: ['location'],
};
const weather = (url: string, extra: Record<string, unknown> = {}) => ({
  name: 'weather',
  description: 'The weather in a city',
  kind: 'http',
  method: 'GET',
  url,
  parameters: params,
  ...extra,
});

let n = 0;
async function agentWith(toolList: unknown[], se = S.owner!): Promise<string> {
  const r = await call(se, 'POST', '/api/v1/agents', { name: `Tool agent ${++n}`, tools: toolList });
  if (r.status !== 201) throw new Error(`agent: ${r.status} ${await r.text()}`);
  return ((await r.json()) as { agent: { id: string } }).agent.id;
}

/** A draft conversation with the agent and one turn asking for the weather. */
async function chat(agentId: string, se = S.owner!, content = 'what is the weather in Paris?') {
  const c = await json<{ conversation: { id: string } }>(
    call(se, 'POST', '/api/v1/conversations', { agent_id: agentId, draft: true }),
  );
  const ev = await events(
    await call(se, 'POST', `/api/v1/conversations/${c.conversation.id}/messages`, { content }),
  );
  return { conv: c.conversation.id, ev };
}

const of = (ev: Ev[], name: string) => ev.filter((e) => e.event === name).map((e) => e.data);

interface AuditEntry {
  action: string;
  target: string;
  details: Record<string, unknown>;
}
async function audits(action: string): Promise<AuditEntry[]> {
  return (
    await json<{ entries: AuditEntry[] }>(call(S.owner!, 'GET', `/api/v1/audit?action=${action}&limit=500`))
  ).entries;
}

async function setHosts(hosts: string[], se = S.owner!) {
  const r = await call(se, 'PUT', '/api/v1/platform/tool-hosts', { hosts });
  expect(r.status).toBe(200);
  return ((await r.json()) as { hosts: string[] }).hosts;
}

beforeAll(async () => {
  canary = Bun.listen({
    hostname: '127.0.0.1',
    port: 0,
    socket: {
      open() {
        canaryConnections++;
      },
      data(sock) {
        sock.end('HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 6\r\n\r\ncanary');
      },
    },
  });
  tools = Bun.serve({
    hostname: '127.0.0.1',
    port: 0,
    async fetch(req) {
      const u = new URL(req.url);
      const headers: Record<string, string> = {};
      req.headers.forEach((v, k) => {
        headers[k] = v;
      });
      hits.push({ method: req.method, path: u.pathname, search: u.search, headers, body: await req.text() });
      if (u.pathname === '/redirect')
        return new Response(null, { status: 302, headers: { location: u.searchParams.get('to')! } });
      if (u.pathname === '/hang') {
        await hung;
        return new Response('late');
      }
      if (u.pathname === '/big') return new Response('x'.repeat(100_000));
      if (u.pathname === '/fail') return new Response('boom', { status: 500 });
      if (req.method === 'GET' || req.method === 'HEAD')
        return Response.json({ forecast: `sunny in ${u.searchParams.get('location') ?? '?'}` });
      return Response.json({ done: true, path: u.pathname });
    },
  });
  stub = await startOpenAIStub({ models: ['gpt-4o-mini'] });
  s = await inProcessServer({
    config: {
      providers: [{ id: 'stub', kind: 'openai', url: stub.url, location: 'on_prem', timeout_ms: 10_000 }],
      models: [{ alias: 'default', route: ['stub/gpt-4o-mini'] }],
      // No outbound.allow: nothing non-public is open to the guard.
    },
    outbound: { resolve, connect },
  });
  for (const slug of ['tl', 'other']) {
    const r = await s.operatorApi('POST', '/platforms', { slug, template: 'creator' });
    const b = (await r.json()) as { admin: { email: string; password: string }; platform: { id: string } };
    P[slug] = { id: b.platform.id, owner: b.admin };
  }
  S.owner = await signInTo(s, 'tl', P.tl!.owner.email, P.tl!.owner.password);
  for (const [email, role] of [
    ['cleo@tl.test', 'creator'],
    ['mo@tl.test', 'member'],
  ] as const) {
    const r = await call(S.owner, 'POST', '/api/v1/users', { email, role, password: 'a-long-password-12' });
    expect(r.status).toBe(201);
  }
  S.creator = await signInTo(s, 'tl', 'cleo@tl.test', 'a-long-password-12');
  S.member = await signInTo(s, 'tl', 'mo@tl.test', 'a-long-password-12');
  S.other = await signInTo(s, 'other', P.other!.owner.email, P.other!.owner.password);
});
afterAll(async () => {
  hang();
  await s?.close();
  await stub?.stop();
  tools?.stop(true);
  canary?.stop(true);
});

describe('agent tools', () => {
  test('the allowlist: admins set it (normalized, audited), creators read it, members may not', async () => {
    expect(await json(call(S.creator!, 'GET', '/api/v1/platform/tool-hosts'))).toEqual({ hosts: [] });
    const hosts = await setHosts([
      'API.tools.test.',
      '*.evil.test',
      '[::1]',
      '::ffff:127.0.0.1',
      'api.tools.test',
    ]);
    expect(hosts).toEqual(['*.evil.test', '[::1]', '[::ffff:7f00:1]', 'api.tools.test']);
    for (const bad of ['*.com', 'http://x.test', 'a b', '*', '']) {
      const r = await call(S.owner!, 'PUT', '/api/v1/platform/tool-hosts', { hosts: [bad] });
      expect([bad, r.status]).toEqual([bad, 400]);
    }
    expect((await call(S.creator!, 'PUT', '/api/v1/platform/tool-hosts', { hosts: [] })).status).toBe(403);
    expect((await call(S.member!, 'GET', '/api/v1/platform/tool-hosts')).status).toBe(403);
    expect(
      (await call({ ...S.other!, host: S.owner!.host }, 'GET', '/api/v1/platform/tool-hosts')).status,
    ).toBe(401);
    // The other platform's list is its own.
    expect(await json(call(S.other!, 'GET', '/api/v1/platform/tool-hosts'))).toEqual({ hosts: [] });
    const a = await audits('platform.tool_hosts_changed');
    expect(a[0]?.details.added).toEqual(hosts);
  });

  test('tools are checked hard when saved: each fault named by its path', async () => {
    const ok = weather('http://api.tools.test/weather');
    const cases: [string, unknown, string, string?][] = [
      ['bad name', [{ ...ok, name: 'no spaces allowed' }], '/tools/0/name'],
      ['ftp URL', [{ ...ok, url: 'ftp://api.tools.test/x' }], '/tools/0/url'],
      ['userinfo', [{ ...ok, url: 'https://u:p@api.tools.test/x' }], '/tools/0/url'],
      ['placeholder in the host', [{ ...ok, url: 'https://{location}.tools.test/x' }], '/tools/0/url'],
      ['placeholder not a parameter', [{ ...ok, url: 'https://api.tools.test/{city}' }], '/tools/0/url'],
      [
        'parameters not an object schema',
        [{ ...ok, parameters: { type: 'string' } }],
        '/tools/0/parameters/type',
      ],
      ['a $ref in a plain tool', [{ ...ok, parameters: { $ref: '#/x' } }], '/tools/0/parameters'],
      ['bad method', [{ ...ok, method: 'TRACE' }], '/tools/0/method'],
      ['bad kind', [{ ...ok, kind: 'grpc' }], '/tools/0/kind'],
      ['duplicate names', [ok, ok], '/tools/1/name'],
      ['too many', Array.from({ length: 9 }, (_, i) => ({ ...ok, name: `t${i}` })), '/tools'],
      ['timeout out of range', [{ ...ok, timeout_ms: 99_999 }], '/tools/0/timeout_ms'],
      [
        'openapi without the operation',
        [{ kind: 'openapi', openapi: { openapi: '3.1.0', paths: {} }, operation_id: 'x' }],
        '/tools/0/operation_id',
      ],
      [
        'not an openapi document',
        [{ kind: 'openapi', openapi: { swagger: '2.0' }, operation_id: 'x' }],
        '/tools/0/openapi',
      ],
      [
        'a host not on the allowlist',
        [{ ...ok, url: 'https://not-listed.example/weather' }],
        '/tools/0/url',
        'tool.host_not_allowed',
      ],
    ];
    for (const [what, toolList, path, code] of cases) {
      const r = await call(S.creator!, 'POST', '/api/v1/agents', { name: 'x', tools: toolList });
      const b = (await r.json()) as { error: { code: string; message: string; details: { path: string }[] } };
      expect([what, r.status, b.error.code, b.error.details[0]?.path]).toEqual([
        what,
        400,
        code ?? 'agent.invalid',
        path,
      ]);
      expect(b.error.message).toStartWith(path.slice(1).replace(/\//g, '.'));
    }
  });

  test('an OpenAPI operation becomes method, URL and arguments at save time', async () => {
    const doc = {
      openapi: '3.0.3',
      info: { title: 'Tools', version: '1' },
      servers: [{ url: 'https://{env}.tools.test/v1', variables: { env: { default: 'api' } } }],
      components: {
        schemas: { Booking: { type: 'object', properties: { nights: { type: 'integer', minimum: 1 } } } },
        parameters: { Loc: { name: 'location', in: 'path', required: true, schema: { type: 'string' } } },
      },
      paths: {
        '/bookings/{location}': {
          parameters: [{ $ref: '#/components/parameters/Loc' }],
          post: {
            operationId: 'bookRoom',
            summary: 'Book a room',
            parameters: [{ name: 'note', in: 'query', schema: { type: 'string' } }],
            requestBody: {
              content: { 'application/json': { schema: { $ref: '#/components/schemas/Booking' } } },
            },
          },
        },
      },
    };
    const id = await agentWith([
      { kind: 'openapi', openapi: JSON.stringify(doc), operation_id: 'bookRoom', safe: true },
    ]);
    const a = await json<{ agent: { draft: { tools: unknown[] } } }>(
      call(S.owner!, 'GET', `/api/v1/agents/${id}`),
    );
    expect(a.agent.draft.tools).toEqual([
      {
        name: 'bookRoom',
        description: 'Book a room',
        kind: 'http',
        method: 'POST',
        url: 'https://api.tools.test/v1/bookings/{location}',
        parameters: {
          type: 'object',
          properties: {
            location: { type: 'string' },
            note: { type: 'string' },
            nights: { type: 'integer', minimum: 1 },
          },
          required: ['location'],
        },
        query: ['note'],
        safe: true,
        operation_id: 'bookRoom',
      },
    ]);
    // Saved again as it reads (the derived form round-trips).
    const again = await call(S.owner!, 'PATCH', `/api/v1/agents/${id}`, { tools: a.agent.draft.tools });
    expect(again.status).toBe(200);
    // Called: the path filled, the body JSON, no confirmation asked (marked safe).
    const before = hits.length;
    const { ev } = await chat(id);
    expect(of(ev, 'tool_confirm')).toEqual([]);
    expect(hits.slice(before).map((h) => [h.method, h.path, h.body, h.headers['content-type']])).toEqual([
      ['POST', '/v1/bookings/Paris', '{}', 'application/json'],
    ]);
    expect(of(ev, 'tool_result')[0]).toMatchObject({ ok: true, status: 200 });
  });

  test('a read-only tool runs in the turn: its result goes back to the model, the answer streams, usage is metered per round', async () => {
    const id = await agentWith([weather('http://api.tools.test/weather')]);
    const calls0 = stub.requests.length;
    const before = hits.length;
    const { conv, ev } = await chat(id);
    expect(ev.map((e) => e.event).filter((e) => e !== 'delta')).toEqual([
      'user',
      'tool_call',
      'tool_result',
      'done',
    ]);
    expect(of(ev, 'tool_call')[0]).toMatchObject({ tool: 'weather', arguments: '{"location":"Paris"}' });
    expect(of(ev, 'tool_result')[0]).toMatchObject({ tool: 'weather', ok: true, status: 200, outcome: 'ok' });
    expect(hits.slice(before).map((h) => `${h.method} ${h.path}${h.search}`)).toEqual([
      'GET /weather?location=Paris',
    ]);
    const answer = (of(ev, 'done')[0]!.message as { content: string }).content;
    expect(answer).toBe('Tool said: {"forecast":"sunny in Paris"}');
    // Two model calls: the second carried the assistant's tool call and the tool's message.
    expect(stub.requests.length - calls0).toBe(2);
    const second = stub.requests.at(-1)!.body as {
      messages: { role: string; tool_call_id?: string; tool_calls?: { id: string }[] }[];
      tools?: { function: { name: string } }[];
    };
    expect(second.messages.slice(-2).map((m) => m.role)).toEqual(['assistant', 'tool']);
    expect(second.messages.at(-1)!.tool_call_id).toBe(second.messages.at(-2)!.tool_calls![0]!.id);
    expect(second.tools?.map((t) => t.function.name)).toEqual(['weather']);
    const stored = await json<{
      messages: {
        role: string;
        content: string;
        usage?: { completion_tokens: number };
        tool_steps?: Record<string, unknown>[];
      }[];
    }>(call(S.owner!, 'GET', `/api/v1/conversations/${conv}`));
    expect(stored.messages.map((m) => m.role)).toEqual(['user', 'assistant']);
    expect(stored.messages[1]!.content).toBe(answer);
    // The call is kept with the answer (never its result), for a reload, a participant, an export.
    const step = {
      call_id: (of(ev, 'tool_call')[0] as { call_id: string }).call_id,
      tool: 'weather',
      arguments: '{"location":"Paris"}',
      ok: true,
      status: 200,
      outcome: 'ok',
    };
    expect(stored.messages[1]!.tool_steps).toEqual([step]);
    expect((of(ev, 'done')[0]!.message as { tool_steps?: unknown }).tool_steps).toEqual([step]);
    expect(stored.messages[0]!.tool_steps).toBeUndefined();
    const md = await (
      await call(S.owner!, 'GET', `/api/v1/conversations/${conv}/export?format=markdown`)
    ).text();
    expect(md).toContain('> called `weather`: done (HTTP 200)');
    const audit = (await audits('agent.tool_called')).filter((e) => e.target === `agent:${id}`);
    expect(audit.map((e) => e.details)).toEqual([
      expect.objectContaining({
        tool: 'weather',
        method: 'GET',
        host: 'api.tools.test',
        outcome: 'ok',
        status: 200,
        conversation: conv,
      }),
    ]);
  });

  test('a call that changes something waits for the user: approve runs it once, a second answer is 409', async () => {
    const id = await agentWith([{ ...weather('http://api.tools.test/orders'), method: 'POST' }]);
    const before = hits.length;
    const { conv, ev } = await chat(id);
    expect(ev.map((e) => e.event).filter((e) => e !== 'delta')).toEqual([
      'user',
      'tool_call',
      'tool_confirm',
    ]);
    const ask = of(ev, 'tool_confirm')[0]!;
    expect(ask).toMatchObject({
      tool: 'weather',
      method: 'POST',
      host: 'api.tools.test',
      arguments: '{"location":"Paris"}',
    });
    expect(hits.length).toBe(before);
    // The conversation shows the call waiting, and no answer yet.
    const mid = await json<{
      messages: { role: string }[];
      pending_tool_calls: { id: string; tool: string }[];
    }>(call(S.owner!, 'GET', `/api/v1/conversations/${conv}`));
    expect(mid.pending_tool_calls).toEqual([expect.objectContaining({ id: ask.id, tool: 'weather' })]);
    expect(mid.messages.map((m) => m.role)).toEqual(['user']);
    // Another user cannot answer it.
    expect(
      (
        await call(S.creator!, 'POST', `/api/v1/conversations/${conv}/tool-calls/${ask.id}`, {
          approve: true,
        })
      ).status,
    ).toBe(404);
    const go = await events(
      await call(S.owner!, 'POST', `/api/v1/conversations/${conv}/tool-calls/${ask.id}`, { approve: true }),
    );
    expect(go.map((e) => e.event).filter((e) => e !== 'delta')).toEqual(['tool_call', 'tool_result', 'done']);
    expect(hits.slice(before).map((h) => [h.method, h.path, h.body])).toEqual([
      ['POST', '/orders', '{"location":"Paris"}'],
    ]);
    expect((of(go, 'done')[0]!.message as { content: string }).content).toBe(
      'Tool said: {"done":true,"path":"/orders"}',
    );
    const twice = await call(S.owner!, 'POST', `/api/v1/conversations/${conv}/tool-calls/${ask.id}`, {
      approve: true,
    });
    expect(twice.status).toBe(409);
    expect(((await twice.json()) as { error: { code: string } }).error.code).toBe('tool.call_decided');
    expect(hits.length).toBe(before + 1);
    const after = await json<{ messages: { role: string }[]; pending_tool_calls: unknown[] }>(
      call(S.owner!, 'GET', `/api/v1/conversations/${conv}`),
    );
    expect(after.pending_tool_calls).toEqual([]);
    expect(after.messages.map((m) => m.role)).toEqual(['user', 'assistant']);
    expect((await audits('agent.tool_confirmation_asked')).some((e) => e.details.call === ask.id)).toBe(true);
  });

  test('two answers to one call at once: one runs it, the other is 409', async () => {
    const id = await agentWith([{ ...weather('http://api.tools.test/orders'), method: 'PATCH' }]);
    const { conv, ev } = await chat(id);
    const ask = of(ev, 'tool_confirm')[0]!;
    const before = hits.length;
    const path = `/api/v1/conversations/${conv}/tool-calls/${ask.id}`;
    const [a, b] = await Promise.all([
      call(S.owner!, 'POST', path, { approve: true }),
      call(S.owner!, 'POST', path, { approve: false }),
    ]);
    expect([a.status, b.status].sort()).toEqual([200, 409]);
    const won = a.status === 200 ? a : b;
    await events(won);
    await (a.status === 200 ? b : a).text();
    expect(hits.length - before).toBe(won === a ? 1 : 0);
  });

  test('declined: the tool is never called, the model is told; a new message expires a waiting call', async () => {
    const id = await agentWith([{ ...weather('http://api.tools.test/orders'), method: 'DELETE' }]);
    const before = hits.length;
    const { conv, ev } = await chat(id);
    const ask = of(ev, 'tool_confirm')[0]!;
    const no = await events(
      await call(S.owner!, 'POST', `/api/v1/conversations/${conv}/tool-calls/${ask.id}`, { approve: false }),
    );
    expect(of(no, 'tool_result')[0]).toMatchObject({ ok: false, outcome: 'declined' });
    // The paused turn's answer keeps the declined call.
    expect((of(no, 'done')[0]!.message as { tool_steps?: unknown }).tool_steps).toEqual([
      expect.objectContaining({ tool: 'weather', ok: false, status: null, outcome: 'declined' }),
    ]);
    expect((of(no, 'done')[0]!.message as { content: string }).content).toBe(
      'Tool said: {"error":"the user declined this call"}',
    );
    expect(hits.length).toBe(before);
    expect(
      (await call(S.owner!, 'POST', `/api/v1/conversations/${conv}/tool-calls/${ask.id}`, { approve: true }))
        .status,
    ).toBe(409);
    // A second waiting call, then the user just writes again: it expires, never runs.
    const ev2 = await events(
      await call(S.owner!, 'POST', `/api/v1/conversations/${conv}/messages`, {
        content: 'and the weather in Oslo?',
      }),
    );
    const ask2 = of(ev2, 'tool_confirm')[0]!;
    await events(
      await call(S.owner!, 'POST', `/api/v1/conversations/${conv}/messages`, { content: 'never mind' }),
    );
    expect(
      (await call(S.owner!, 'POST', `/api/v1/conversations/${conv}/tool-calls/${ask2.id}`, { approve: true }))
        .status,
    ).toBe(409);
    expect(hits.length).toBe(before);
    const outcomes = (await audits('agent.tool_called'))
      .filter((e) => e.target === `agent:${id}`)
      .map((e) => e.details.outcome);
    expect(outcomes.sort()).toEqual(['declined', 'expired']);
  });

  test('marked safe by its owner, a changing call runs without asking', async () => {
    const id = await agentWith([{ ...weather('http://api.tools.test/orders'), method: 'PUT', safe: true }]);
    const before = hits.length;
    const { ev } = await chat(id);
    expect(of(ev, 'tool_confirm')).toEqual([]);
    expect(hits.slice(before).map((h) => h.method)).toEqual(['PUT']);
  });

  test('per-call deadline, size limit and HTTP errors: the model and the user get a generic failure', async () => {
    const cases: [string, Record<string, unknown>, string, number | null][] = [
      ['deadline', { url: 'http://api.tools.test/hang', timeout_ms: 300 }, 'failed', null],
      ['too large', { url: 'http://api.tools.test/big', max_bytes: 1024 }, 'failed', null],
      ['HTTP error', { url: 'http://api.tools.test/fail' }, 'http_error', 500],
    ];
    for (const [what, extra, outcome, status] of cases) {
      const id = await agentWith([weather(extra.url as string, extra)]);
      const { ev } = await chat(id);
      expect([what, of(ev, 'tool_result')[0]]).toEqual([
        what,
        expect.objectContaining({ ok: false, outcome, status, error: 'the tool call failed' }),
      ]);
      const told = (
        stub.requests.at(-1)!.body as { messages: { role: string; content: string }[] }
      ).messages.at(-1)!;
      expect([what, told.role, told.content]).toEqual([
        what,
        'tool',
        JSON.stringify({ error: status ? `the tool answered HTTP ${status}` : TOOL_FAILED }),
      ]);
      expect(of(ev, 'done').length).toBe(1);
    }
    // The default size limit (64 KiB) holds too.
    const big = await agentWith([weather('http://api.tools.test/big')]);
    expect(of((await chat(big)).ev, 'tool_result')[0]).toMatchObject({ ok: false, outcome: 'failed' });
  });

  test('a secret goes in its header, sealed at rest, never in the API, the audit trail or a version', async () => {
    const id = await agentWith([weather('http://api.tools.test/weather')], S.creator);
    // Only an editor sets it (a member may not write agents at all), for a tool the agent has.
    expect(
      (await call(S.member!, 'PUT', `/api/v1/agents/${id}/tools/weather/secret`, { value: SECRET })).status,
    ).toBe(403);
    expect(
      (await call(S.creator!, 'PUT', `/api/v1/agents/${id}/tools/nope/secret`, { value: SECRET })).status,
    ).toBe(404);
    expect(
      (
        await call(S.creator!, 'PUT', `/api/v1/agents/${id}/tools/weather/secret`, {
          value: SECRET,
          header: 'host',
        })
      ).status,
    ).toBe(400);
    expect(
      (await call(S.creator!, 'PUT', `/api/v1/agents/${id}/tools/weather/secret`, { value: 'a\r\nb: c' }))
        .status,
    ).toBe(400);
    const set = await call(S.creator!, 'PUT', `/api/v1/agents/${id}/tools/weather/secret`, { value: SECRET });
    expect(await set.json()).toEqual({ secret: { tool: 'weather', header: 'authorization', set: true } });
    const view = await call(S.creator!, 'GET', `/api/v1/agents/${id}`);
    const viewText = await view.text();
    expect(viewText).not.toContain('tool-secret');
    expect((JSON.parse(viewText) as { agent: { tool_secrets: unknown } }).agent.tool_secrets).toEqual([
      { tool: 'weather', header: 'authorization', set: true },
    ]);
    const before = hits.length;
    await chat(id, S.creator);
    expect(hits.slice(before).map((h) => h.headers.authorization)).toEqual([SECRET]);
    // Not part of the spec: publishing freezes the tool, not its secret.
    const pub = await json<{ version: { hash: string } }>(
      call(S.creator!, 'POST', `/api/v1/agents/${id}/publish`),
    );
    const versions = await call(S.creator!, 'GET', `/api/v1/agents/${id}/versions`);
    expect(await versions.text()).not.toContain('tool-secret');
    expect(pub.version.hash).toMatch(/^[0-9a-f]{64}$/);
    const audit = await call(S.owner!, 'GET', '/api/v1/audit?limit=500');
    expect(await audit.text()).not.toContain('tool-secret');
    // Sealed at rest: not in the platform's database files (WAL included).
    await s.app.platformDbs.use(P.tl!.id, (db) => {
      const v = db
        .query<{ value: string }, [string]>('SELECT value FROM agent_tool_secrets WHERE agent_id = ?')
        .get(id);
      expect(v?.value).toStartWith('sf1.');
    });
    const dir = join(s.dataDir, 'platforms');
    const files = readdirSync(dir).filter((f) => f.startsWith(P.tl!.id));
    expect(files.length).toBeGreaterThan(0);
    for (const f of files)
      expect([f, readFileSync(join(dir, f)).includes(Buffer.from('tool-secret-9c4e1a7f3b2d8e60'))]).toEqual([
        f,
        false,
      ]);
    // A data key rotation re-seals it (keys rotate knows the site); it still opens and is sent.
    const sealedBefore = await s.app.platformDbs.use(P.tl!.id, (db) =>
      db
        .query<{ value: string }, [string]>('SELECT value FROM agent_tool_secrets WHERE agent_id = ?')
        .get(id),
    );
    const rotated = await rotateDataKey(s.app, s.tenancy, LOCAL_ROOT);
    expect(rotated.resealed.platform_secrets).toBeGreaterThanOrEqual(1);
    const sealedAfter = await s.app.platformDbs.use(P.tl!.id, (db) =>
      db
        .query<{ value: string }, [string]>('SELECT value FROM agent_tool_secrets WHERE agent_id = ?')
        .get(id),
    );
    expect(sealedAfter!.value).not.toBe(sealedBefore!.value);
    const b1 = hits.length;
    await chat(id, S.creator);
    expect(hits.slice(b1).map((h) => h.headers.authorization)).toEqual([SECRET]);
    // Cleared: no longer sent.
    expect((await call(S.creator!, 'DELETE', `/api/v1/agents/${id}/tools/weather/secret`)).status).toBe(204);
    const b2 = hits.length;
    await chat(id, S.creator);
    expect(hits.slice(b2).map((h) => h.headers.authorization)).toEqual([undefined]);
  });

  test('a secret in a custom header is dropped when a redirect leaves the origin', async () => {
    const id = await agentWith([
      weather(`http://api.tools.test/redirect?to=${encodeURIComponent('http://api2.tools.test/weather')}`),
    ]);
    await setHosts(['*.evil.test', '[::1]', '[::ffff:7f00:1]', 'api.tools.test', 'api2.tools.test']);
    expect(
      (
        await call(S.owner!, 'PUT', `/api/v1/agents/${id}/tools/weather/secret`, {
          value: 'k-123',
          header: 'x-api-key',
        })
      ).status,
    ).toBe(200);
    const before = hits.length;
    await chat(id);
    expect(hits.slice(before).map((h) => [h.path, h.headers['x-api-key']])).toEqual([
      ['/redirect', 'k-123'],
      ['/weather', undefined],
    ]);
  });

  test('a version freezes its tools; removing them all keeps the hash of a spec without tools', async () => {
    const id = await agentWith([weather('http://api.tools.test/weather')]);
    const v1 = await json<{ version: { hash: string } }>(
      call(S.owner!, 'POST', `/api/v1/agents/${id}/publish`),
    );
    const versions = await json<{ versions: { spec: Record<string, unknown> }[] }>(
      call(S.owner!, 'GET', `/api/v1/agents/${id}/versions`),
    );
    expect(v1.version.hash).toBe(sha256Hex(canonicalize(versions.versions[0]!.spec)!));
    // The draft changes the URL; a conversation with version 1 still calls version 1's.
    await call(S.owner!, 'PATCH', `/api/v1/agents/${id}`, {
      tools: [weather('http://api.tools.test/v2/weather')],
    });
    const c = await json<{ conversation: { id: string } }>(
      call(S.owner!, 'POST', '/api/v1/conversations', { agent_id: id }),
    );
    const before = hits.length;
    await events(
      await call(S.owner!, 'POST', `/api/v1/conversations/${c.conversation.id}/messages`, {
        content: 'weather in Rome?',
      }),
    );
    expect(hits.slice(before).map((h) => h.path)).toEqual(['/weather']);
    // No tools: the `tools` key is gone from the spec, so its hash is the hash it had before tools existed.
    const plain = await json<{ agent: { id: string } }>(
      call(S.owner!, 'POST', '/api/v1/agents', { name: 'Plain' }),
    );
    const p1 = await json<{ version: { hash: string } }>(
      call(S.owner!, 'POST', `/api/v1/agents/${plain.agent.id}/publish`),
    );
    const spec = (
      await json<{ versions: { spec: Record<string, unknown> }[] }>(
        call(S.owner!, 'GET', `/api/v1/agents/${plain.agent.id}/versions`),
      )
    ).versions[0]!.spec;
    expect(Object.keys(spec).sort()).toEqual(
      [
        'avatar',
        'description',
        'max_tokens',
        'model',
        'name',
        'persona',
        'starter_prompts',
        'temperature',
      ].sort(),
    );
    expect(p1.version.hash).toBe(sha256Hex(canonicalize(spec)!));
    await call(S.owner!, 'PATCH', `/api/v1/agents/${plain.agent.id}`, {
      tools: [weather('http://api.tools.test/weather')],
    });
    const withTools = await json<{ agent: { draft: { changed: boolean } } }>(
      call(S.owner!, 'PATCH', `/api/v1/agents/${plain.agent.id}`, { tools: [] }),
    );
    expect(withTools.agent.draft.changed).toBe(false);
    // Tools go to the model only with an agent that has them.
    expect(stub.requests.at(-1)!.body).toHaveProperty('tools');
  });

  test('SSRF: loopback, link-local, metadata and private targets, names resolving to them, and redirects to them are refused every time, audited; the canary is never contacted', async () => {
    const p = canary.port;
    await setHosts([
      '*.evil.test',
      'api.tools.test',
      '127.0.0.1',
      '[::1]',
      '::ffff:127.0.0.1',
      '169.254.169.254',
      'metadata.google.internal',
      '10.0.0.5',
      '172.16.0.1',
      '192.168.1.1',
      '100.64.0.1',
      '[fd00::1]',
      '[fe80::1]',
    ]);
    const literals = [
      `http://127.0.0.1:${p}/weather`,
      `http://[::1]:${p}/weather`,
      `http://[::ffff:127.0.0.1]:${p}/weather`,
      'http://169.254.169.254/latest/meta-data/',
      'http://metadata.google.internal/computeMetadata/v1/',
      'http://10.0.0.5/weather',
      'http://172.16.0.1/weather',
      'http://192.168.1.1/weather',
      'http://100.64.0.1/weather',
      'http://[fd00::1]/weather',
      'http://[fe80::1]/weather',
    ];
    const names = [
      'loop.evil.test',
      'loop6.evil.test',
      'mapped.evil.test',
      'meta.evil.test',
      'ten.evil.test',
      'oneseventwo.evil.test',
      'oneninetwo.evil.test',
      'cgnat.evil.test',
      'ula.evil.test',
      'linklocal.evil.test',
      'mixed.evil.test',
    ].map((h) => `http://${h}:${p}/weather`);
    const targets = [...literals, ...names];
    const direct = targets.map((u) => ({ what: `direct ${u}`, url: u, viaRedirect: false }));
    const redirected = [...targets, `http://not-listed.example/weather`].map((u) => ({
      what: `redirect to ${u}`,
      url: `http://api.tools.test/redirect?to=${encodeURIComponent(u)}`,
      viaRedirect: true,
    }));
    const hitsBefore = hits.length;
    for (const a of [...direct, ...redirected]) {
      const id = await agentWith([weather(a.url)]);
      const before = hits.length;
      const { ev } = await chat(id);
      const res = of(ev, 'tool_result')[0];
      expect([a.what, res]).toEqual([
        a.what,
        expect.objectContaining({ ok: false, outcome: 'failed', error: 'the tool call failed' }),
      ]);
      // What the user and the model learn says nothing of why.
      const told = (
        stub.requests.at(-1)!.body as { messages: { role: string; content: string }[] }
      ).messages.at(-1)!;
      expect([a.what, told.content]).toEqual([a.what, JSON.stringify({ error: TOOL_FAILED })]);
      expect([a.what, JSON.stringify(ev)]).not.toEqual([
        a.what,
        expect.stringMatching(/forbidden|loopback|link_local|metadata|private|reserved/),
      ]);
      // Only the public tool server's redirect was reached; nothing after it.
      expect([a.what, hits.slice(before).map((h) => h.path)]).toEqual([
        a.what,
        a.viaRedirect ? ['/redirect'] : [],
      ]);
      const audit = (await audits('agent.tool_called')).filter((e) => e.target === `agent:${id}`);
      expect([a.what, audit.map((e) => e.details.outcome)]).toEqual([a.what, ['failed']]);
    }
    expect(hits.length - hitsBefore).toBe(redirected.length);
    expect(canaryConnections).toBe(0);
    // Every refusal came from the guard, before the connector: it was asked for no other address.
    expect(refusedByConnector).toEqual([]);

    // A host taken off the allowlist after the tool was saved: refused at call time, never reached.
    const id = await agentWith([weather('http://api.tools.test/weather')]);
    await setHosts(['*.evil.test']);
    const before = hits.length;
    const { ev } = await chat(id);
    expect(of(ev, 'tool_result')[0]).toMatchObject({ ok: false, outcome: 'host_not_allowed' });
    expect(hits.length).toBe(before);
    // An empty list: no tool may be called (nor saved).
    await setHosts([]);
    const none = await call(S.owner!, 'POST', '/api/v1/agents', {
      name: 'x',
      tools: [weather('http://api.tools.test/w')],
    });
    expect(none.status).toBe(400);
    expect(of((await chat(id)).ev, 'tool_result')[0]).toMatchObject({
      ok: false,
      outcome: 'host_not_allowed',
    });
    expect(canaryConnections).toBe(0);
    await setHosts(['api.tools.test', 'api2.tools.test']);
  });

  test('features.agent_creation off: tool editing and secrets answer 404; chatting with tools stays', async () => {
    const id = await agentWith([weather('http://api.tools.test/weather')]);
    const off = await s.operatorApi('PATCH', '/platforms/tl', {
      blueprint: { features: { agent_creation: false } },
    });
    expect(off.status).toBe(200);
    try {
      for (const [method, path, body] of [
        ['PATCH', `/api/v1/agents/${id}`, { tools: [] }],
        ['PUT', `/api/v1/agents/${id}/tools/weather/secret`, { value: 'x' }],
        ['DELETE', `/api/v1/agents/${id}/tools/weather/secret`, undefined],
      ] as const) {
        const r = await call(S.owner!, method, path, body);
        expect([method, path, r.status]).toEqual([method, path, 404]);
        expect(((await r.json()) as { error: { code: string } }).error.code).toBe('feature.disabled');
      }
      const { ev } = await chat(id);
      expect(of(ev, 'tool_result')[0]).toMatchObject({ ok: true });
    } finally {
      await s.operatorApi('PATCH', '/platforms/tl', { blueprint: { features: { agent_creation: true } } });
    }
  });
});

describe('tools, pure parts', () => {
  const t = (url: string, method = 'GET', query?: string[]) =>
    checkTools([{ ...weather(url), method, ...(query ? { query } : {}) }], () => true)[0]!;

  test('allowlist entries: names, subdomain wildcards, IP addresses; nothing else', () => {
    expect(normalizeHostPattern(' API.Example.com. ')).toBe('api.example.com');
    expect(normalizeHostPattern('*.example.com')).toBe('*.example.com');
    expect(normalizeHostPattern('fd00::1')).toBe('[fd00::1]');
    for (const bad of ['*.com', '*', 'a_b.com', 'http://a.com', 'a..b', '-a.com', '*.*.a.com'])
      expect([bad, normalizeHostPattern(bad)]).toEqual([bad, null]);
    const list = ['api.example.com', '*.tools.test'];
    expect(hostAllowed(list, new URL('https://api.example.com/x'))).toBe(true);
    expect(hostAllowed(list, new URL('https://a.b.tools.test/x'))).toBe(true);
    expect(hostAllowed(list, new URL('https://tools.test/x'))).toBe(false);
    expect(hostAllowed(list, new URL('https://eviltools.test/x'))).toBe(false);
    expect(hostAllowed(list, new URL('https://api.example.com.evil.test/x'))).toBe(false);
  });

  test('a call: placeholders encoded, dot segments refused, query and body by method', () => {
    const get = t('https://api.tools.test/cities/{location}/weather');
    expect(requestOf(get, '{"location":"São Paulo/x?y"}').url.href).toBe(
      'https://api.tools.test/cities/S%C3%A3o%20Paulo%2Fx%3Fy/weather',
    );
    for (const dots of ['..', '.', '%2e%2E', '%2E'])
      expect(() => requestOf(get, JSON.stringify({ location: dots }))).toThrow('may not be . or ..');
    expect(() => requestOf(get, '{}')).toThrow('the argument location is required');
    expect(() => requestOf(get, '[1]')).toThrow('must be a JSON object');
    expect(() => requestOf(get, 'nope')).toThrow('not JSON');
    const q = t('https://api.tools.test/weather?units=metric');
    expect(requestOf(q, '{"location":"Oslo","undeclared":"x"}')).toEqual({
      url: new URL('https://api.tools.test/weather?units=metric&location=Oslo'),
      method: 'GET',
      body: null,
    });
    const post = t('https://api.tools.test/orders', 'POST');
    expect(requestOf(post, '{"location":"Oslo","undeclared":1}').body).toBe('{"location":"Oslo"}');
    const postQ = t('https://api.tools.test/orders', 'POST', ['location']);
    const r = requestOf(postQ, '{"location":"Oslo"}');
    expect([r.url.search, r.body]).toEqual(['?location=Oslo', '{}']);
  });
});
