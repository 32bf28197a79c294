import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { type InProcessServer, inProcessServer } from '../../tests/inproc.ts';
import { type OpenAIStub, startOpenAIStub } from '../../tests/peers/openai-stub.ts';
import { waitFor } from '../../tests/wait.ts';
import { fileNameOf } from './index.ts';

let s: InProcessServer;
let stub: OpenAIStub;
const P: Record<string, { host: string; owner: { email: string; password: string } }> = {};

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
  for (const slug of ['chat', 'other']) {
    const r = await s.operatorApi('POST', '/platforms', { slug, template: 'creator' });
    const b = (await r.json()) as { admin: { email: string; password: string } };
    P[slug] = { host: `${slug}.localhost`, owner: b.admin };
  }
});
afterAll(async () => {
  await s.close();
  await stub.stop();
});

interface Session {
  host: string;
  cookie: string;
  csrf: string;
}

async function signIn(
  slug: string,
  email = P[slug]!.owner.email,
  password = P[slug]!.owner.password,
): Promise<Session> {
  const host = P[slug]!.host;
  const r = await s.request(host, '/api/v1/auth/login', {
    method: 'POST',
    headers: { 'content-type': 'application/json', origin: `http://${host}:8080` },
    body: JSON.stringify({ email, password }),
  });
  expect(r.status).toBe(200);
  const body = (await r.json()) as { csrf_token: string };
  return { host, cookie: (r.headers.get('set-cookie') ?? '').split(';')[0]!, csrf: body.csrf_token };
}

function call(se: Session, method: string, path: string, body?: unknown, extra: Record<string, string> = {}) {
  return s.request(se.host, path, {
    method,
    headers: {
      cookie: se.cookie,
      ...(method === 'GET' ? {} : { 'x-csrf-token': se.csrf }),
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      ...extra,
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
}

/** Reads server-sent events from a response until it ends, or until `stopAfter` says so. */
async function events(
  res: Response,
  stopAfter?: (e: { event: string; data: Record<string, unknown> }) => boolean,
) {
  const out: { event: string; data: Record<string, unknown> }[] = [];
  const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
  let buf = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buf += value;
    let cut = buf.indexOf('\n\n');
    while (cut >= 0) {
      const block = buf.slice(0, cut);
      buf = buf.slice(cut + 2);
      const event = /^event: (.*)$/m.exec(block)?.[1] ?? 'message';
      const data = JSON.parse(/^data: (.*)$/m.exec(block)?.[1] ?? 'null');
      out.push({ event, data });
      if (stopAfter?.({ event, data })) {
        await reader.cancel();
        return out;
      }
      cut = buf.indexOf('\n\n');
    }
  }
  return out;
}

let owner: Session;
let member: Session;

describe('conversations', () => {
  beforeAll(async () => {
    owner = await signIn('chat');
    // A second user of the same platform.
    const r = await call(owner, 'POST', '/api/v1/users', {
      email: 'mo@chat.test',
      role: 'member',
      password: 'member-password-long-1',
    });
    expect(r.status).toBe(201);
    member = await signIn('chat', 'mo@chat.test', 'member-password-long-1');
  });

  test('the models a user may pick: the default first', async () => {
    const r = await call(owner, 'GET', '/api/v1/conversations/models');
    expect(await r.json()).toEqual({
      models: [
        { id: 'default', default: true },
        { id: 'second', default: false },
      ],
    });
  });

  test('create, send (streamed, stored), list, rename, export, delete', async () => {
    const c = await call(owner, 'POST', '/api/v1/conversations', {});
    expect(c.status).toBe(201);
    const conv = ((await c.json()) as { conversation: { id: string; title: string; model: string } })
      .conversation;
    expect(conv).toMatchObject({ title: 'New chat', model: 'default' });
    const res = await call(owner, 'POST', `/api/v1/conversations/${conv.id}/messages`, {
      content: 'tell me four words',
    });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toStartWith('text/event-stream');
    const ev = await events(res);
    expect(ev[0]!.event).toBe('user');
    const deltas = ev.filter((e) => e.event === 'delta').map((e) => e.data.text as string);
    expect(deltas.length).toBeGreaterThan(3);
    expect(deltas.join('')).toBe('You said: tell me four words');
    const done = ev.at(-1)!;
    expect(done.event).toBe('done');
    expect((done.data.message as { content: string }).content).toBe('You said: tell me four words');

    const got = (await (await call(owner, 'GET', `/api/v1/conversations/${conv.id}`)).json()) as {
      conversation: { title: string };
      messages: { role: string; content: string; status: string; usage?: { completion_tokens: number } }[];
    };
    expect(got.conversation.title).toBe('tell me four words');
    expect(got.messages.map((m) => [m.role, m.status])).toEqual([
      ['user', 'complete'],
      ['assistant', 'complete'],
    ]);
    expect(got.messages[1]!.usage?.completion_tokens).toBeGreaterThan(0);

    // The second turn sends the history.
    const before = stub.requests.length;
    await events(
      await call(owner, 'POST', `/api/v1/conversations/${conv.id}/messages`, { content: 'again' }),
    );
    const sent = stub.requests[before]!.body as { messages: { role: string; content: string }[] };
    expect(sent.messages.map((m) => m.role)).toEqual(['user', 'assistant', 'user']);

    const list = (await (await call(owner, 'GET', '/api/v1/conversations?limit=5')).json()) as {
      conversations: { id: string; message_count: number }[];
    };
    expect(list.conversations[0]).toMatchObject({ id: conv.id, message_count: 4 });

    const renamed = await call(owner, 'PATCH', `/api/v1/conversations/${conv.id}`, {
      title: '  Café notes ✓ ',
    });
    expect(((await renamed.json()) as { conversation: { title: string } }).conversation.title).toBe(
      'Café notes ✓',
    );
    const md = await call(owner, 'GET', `/api/v1/conversations/${conv.id}/export?format=markdown`);
    expect(md.headers.get('content-disposition')).toBe('attachment; filename="cafe-notes.md"');
    const text = await md.text();
    expect(text).toStartWith('# Café notes ✓\n');
    expect(text).toContain('**You**');
    expect(text).toContain('You said: again');
    const js = await call(owner, 'GET', `/api/v1/conversations/${conv.id}/export?format=json`);
    expect(js.headers.get('content-disposition')).toBe('attachment; filename="cafe-notes.json"');
    expect(((await js.json()) as { messages: unknown[] }).messages.length).toBe(4);

    // Usage was metered as for /v1/chat/completions.
    const usage = (await (await call(owner, 'GET', '/api/v1/ai/usage')).json()) as {
      usage: { calls: number }[];
    };
    expect(usage.usage.reduce((n, u) => n + u.calls, 0)).toBeGreaterThanOrEqual(2);

    expect((await call(owner, 'DELETE', `/api/v1/conversations/${conv.id}`)).status).toBe(204);
    expect((await call(owner, 'GET', `/api/v1/conversations/${conv.id}`)).status).toBe(404);
  });

  test('Stop keeps the partial answer, marked stopped', async () => {
    const conv = (
      (await (await call(owner, 'POST', '/api/v1/conversations', {})).json()) as {
        conversation: { id: string };
      }
    ).conversation;
    const drip = stub.drip();
    const ctl = new AbortController();
    const res = await s.request(owner.host, `/api/v1/conversations/${conv.id}/messages`, {
      method: 'POST',
      headers: { cookie: owner.cookie, 'x-csrf-token': owner.csrf, 'content-type': 'application/json' },
      body: JSON.stringify({ content: 'a b c d e f' }),
      signal: ctl.signal,
    });
    for (let i = 0; i < 2; i++) {
      await drip.whenHeld(1);
      drip.release(1);
    }
    const got = await events(res, (e) => e.event === 'delta' && (e.data.text as string).startsWith('said'));
    expect(got.filter((e) => e.event === 'delta').length).toBe(2);
    ctl.abort();
    const stored = await waitFor(async () => {
      const b = (await (await call(owner, 'GET', `/api/v1/conversations/${conv.id}`)).json()) as {
        messages: { role: string; status: string; content: string }[];
      };
      return b.messages.find((m) => m.role === 'assistant');
    });
    expect(stored.status).toBe('stopped');
    expect(stored.content).toBe('You said: ');
    drip.release();
  });

  const attacks: [string, () => Promise<Response>, number, string?][] = [];
  test('attack table: other users, other platforms, no CSRF, bad input', async () => {
    const conv = (
      (await (await call(owner, 'POST', '/api/v1/conversations', { title: 'mine' })).json()) as {
        conversation: { id: string };
      }
    ).conversation;
    const other = await signIn('other');
    const id = conv.id;
    attacks.push(
      [
        'another user reads',
        () => call(member, 'GET', `/api/v1/conversations/${id}`),
        404,
        'conversation.not_found',
      ],
      [
        'another user renames',
        () => call(member, 'PATCH', `/api/v1/conversations/${id}`, { title: 'x' }),
        404,
      ],
      ['another user deletes', () => call(member, 'DELETE', `/api/v1/conversations/${id}`), 404],
      ['another user exports', () => call(member, 'GET', `/api/v1/conversations/${id}/export`), 404],
      [
        'another user posts',
        () => call(member, 'POST', `/api/v1/conversations/${id}/messages`, { content: 'hi' }),
        404,
      ],
      [
        "platform B's session on A's host",
        () => call({ ...other, host: owner.host }, 'GET', '/api/v1/conversations'),
        401,
      ],
      ['anonymous', () => s.request(owner.host, '/api/v1/conversations'), 401, 'auth.required'],
      [
        'cookie write without CSRF',
        () => call({ ...owner, csrf: 'nope' }, 'POST', '/api/v1/conversations', {}),
        403,
        'auth.csrf',
      ],
      [
        'a model the platform does not allow',
        () => call(owner, 'POST', '/api/v1/conversations', { model: 'gpt-5' }),
        400,
        'conversation.model_not_allowed',
      ],
      [
        'a turn on a model not allowed',
        () => call(owner, 'POST', `/api/v1/conversations/${id}/messages`, { content: 'x', model: 'nope' }),
        400,
        'conversation.model_not_allowed',
      ],
      [
        'content too long',
        () => call(owner, 'POST', `/api/v1/conversations/${id}/messages`, { content: 'x'.repeat(32_001) }),
        400,
      ],
      [
        'empty content',
        () => call(owner, 'POST', `/api/v1/conversations/${id}/messages`, { content: '' }),
        400,
      ],
      [
        'blank title',
        () => call(owner, 'PATCH', `/api/v1/conversations/${id}`, { title: '   ' }),
        400,
        'conversation.invalid',
      ],
    );
    for (const [what, run, status, code] of attacks) {
      const r = await run();
      const body = (await r.json().catch(() => ({}))) as {
        error?: { code: string; details?: { path: string }[] };
      };
      expect([what, r.status]).toEqual([what, status]);
      if (code) expect([what, body.error?.code]).toEqual([what, code]);
      if (what === 'content too long') expect(body.error?.details?.[0]?.path).toBe('/content');
    }
    // Nothing was written by the refused turns.
    const b = (await (await call(owner, 'GET', `/api/v1/conversations/${id}`)).json()) as {
      messages: unknown[];
    };
    expect(b.messages).toEqual([]);
  });

  test('file names from titles', () => {
    expect(fileNameOf('Hello, World!')).toBe('hello-world');
    expect(fileNameOf('../../etc/passwd')).toBe('etc-passwd');
    expect(fileNameOf('"; rm -rf')).toBe('rm-rf');
    expect(fileNameOf('日本語')).toBe('conversation');
  });
});
