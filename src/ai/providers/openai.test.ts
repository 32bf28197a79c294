import { afterAll, afterEach, beforeAll, describe, expect, test } from 'bun:test';
import {
  delayHeaders,
  type OpenAIStub,
  STUB_CREATED,
  startOpenAIStub,
  stubEmbedding,
} from '../../../tests/peers/openai-stub.ts';
import type { ChatChunk, ChatRequest, Provider, ProviderConfig } from '../provider.ts';
import { UpstreamError } from '../provider.ts';
import { createLeanProvider, createOpenAIProvider } from './openai.ts';

const KEY_ENV = 'SOULFRA_TEST_OPENAI_PROVIDER_KEY';
const KEY = 'sk-test-openai-0123456789';

let stub: OpenAIStub;

beforeAll(async () => {
  process.env[KEY_ENV] = KEY;
  stub = await startOpenAIStub({ apiKey: KEY });
});
afterAll(async () => {
  await stub.stop();
  delete process.env[KEY_ENV];
});
afterEach(() => {
  stub.setFault(null);
  stub.requests.length = 0;
});

const signal = () => new AbortController().signal;

const hello: ChatRequest = { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hello there' }] };

const weatherTool = {
  type: 'function' as const,
  function: {
    name: 'get_weather',
    description: 'The weather in a city',
    parameters: { type: 'object', properties: { location: { type: 'string' } }, required: ['location'] },
  },
};

async function collect(it: AsyncIterable<ChatChunk>): Promise<ChatChunk[]> {
  const out: ChatChunk[] = [];
  for await (const c of it) out.push(c);
  return out;
}

/** The rejection of `p` (fails the test when it resolves). */
async function rejection(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (e) {
    return e;
  }
  throw new Error('expected a rejection');
}

/**
 * The whole suite runs against every transport: `location: cloud` (left unset: the default) goes
 * through the official SDK; `on_prem` through the lean client, on the JS-thread HTTP/1.1 client
 * for an `http:` server (`on_prem`) or on Bun's `fetch` (`on_prem+fetch`, as for `https:`). All
 * must behave the same.
 */
for (const variant of ['cloud', 'on_prem', 'on_prem+fetch'] as const) {
  const location = variant === 'cloud' ? 'cloud' : 'on_prem';
  const provider = (extra: Partial<ProviderConfig> = {}): Provider => {
    const cfg: ProviderConfig = {
      id: 'oai',
      kind: 'openai',
      url: stub.url,
      api_key_env: KEY_ENV,
      ...(location === 'on_prem' ? { location } : {}),
      ...extra,
    };
    return variant === 'on_prem+fetch' ? createLeanProvider(cfg, 'fetch') : createOpenAIProvider(cfg);
  };

  describe(`openai provider (${variant}): chat`, () => {
    test('sends the request as is (with the bearer key) and returns the completion in our shape', async () => {
      const req: ChatRequest = {
        model: 'gpt-4o-mini',
        messages: [
          { role: 'system', content: 'be brief' },
          { role: 'user', content: 'hello there' },
        ],
        temperature: 0.2,
        max_tokens: 50,
      };
      const p = provider();
      expect(p.kind).toBe('openai');
      expect(p.location).toBe(location);
      const c = await p.chat(req, signal());
      expect(c).toEqual({
        id: 'chatcmpl-stub-1',
        object: 'chat.completion',
        created: STUB_CREATED,
        model: 'gpt-4o-mini',
        choices: [
          {
            index: 0,
            message: { role: 'assistant', content: 'You said: hello there' },
            finish_reason: 'stop',
          },
        ],
        usage: { prompt_tokens: 4, completion_tokens: 4, total_tokens: 8 },
      });
      expect(stub.requests).toHaveLength(1);
      const r = stub.requests[0]!;
      expect(r.method).toBe('POST');
      expect(r.path).toBe('/v1/chat/completions');
      expect(r.headers.authorization).toBe(`Bearer ${KEY}`);
      expect(r.body).toEqual({ ...req, stream: false });
    });

    test('content parts pass through untouched', async () => {
      const req: ChatRequest = {
        model: 'gpt-4o-mini',
        messages: [
          {
            role: 'user',
            content: [
              { type: 'text', text: 'parts ' },
              { type: 'text', text: 'work' },
            ],
          },
        ],
      };
      const c = await provider().chat(req, signal());
      expect(c.choices[0]!.message.content).toBe('You said: parts work');
      expect((stub.requests[0]!.body as ChatRequest).messages).toEqual(req.messages);
    });
  });

  describe(`openai provider (${variant}): streaming`, () => {
    // The shared stream behaviour (pieces, finish, usage) is in contract.test.ts.
    test('the stream asks for usage; the chunks carry the completion id, the last none of the choices', async () => {
      const chunks = await collect(await provider().chatStream(hello, signal()));
      expect(chunks.at(-1)!.choices).toEqual([]);
      expect(chunks.every((c) => c.id === 'chatcmpl-stub-1')).toBe(true);
      expect(stub.requests[0]!.body).toEqual({
        ...hello,
        stream: true,
        stream_options: { include_usage: true },
      });
    });
  });

  describe(`openai provider (${variant}): tools`, () => {
    test('tools and tool_choice go upstream as is; the tool call comes back', async () => {
      const req: ChatRequest = {
        model: 'gpt-4o-mini',
        messages: [{ role: 'user', content: 'What is the weather in Tallinn?' }],
        tools: [weatherTool],
        tool_choice: 'auto',
      };
      const c = await provider().chat(req, signal());
      expect(c.choices[0]).toEqual({
        index: 0,
        message: {
          role: 'assistant',
          content: null,
          tool_calls: [
            {
              id: 'call_get_weather_0',
              type: 'function',
              function: { name: 'get_weather', arguments: '{"location":"Tallinn"}' },
            },
          ],
        },
        finish_reason: 'tool_calls',
      });
      const sent = stub.requests[0]!.body as ChatRequest;
      expect(sent.tools).toEqual([weatherTool]);
      expect(sent.tool_choice).toBe('auto');
    });

    test('the tool result goes back: assistant tool_calls and tool messages as is', async () => {
      const req: ChatRequest = {
        model: 'gpt-4o-mini',
        messages: [
          { role: 'user', content: 'What is the weather in Tallinn?' },
          {
            role: 'assistant',
            content: null,
            tool_calls: [
              {
                id: 'call_1',
                type: 'function',
                function: { name: 'get_weather', arguments: '{"location":"Tallinn"}' },
              },
            ],
          },
          { role: 'tool', tool_call_id: 'call_1', content: '18C and sunny' },
        ],
        tools: [weatherTool],
      };
      const c = await provider().chat(req, signal());
      expect(c.choices[0]!.message).toEqual({ role: 'assistant', content: 'Tool said: 18C and sunny' });
      expect(c.choices[0]!.finish_reason).toBe('stop');
      expect((stub.requests[0]!.body as ChatRequest).messages).toEqual(req.messages);
    });
  });

  describe(`openai provider (${variant}): embeddings and health`, () => {
    test('embeddings: float vectors in input order, with usage', async () => {
      const r = await provider().embeddings(
        { model: 'text-embedding-3-small', input: ['alpha beta', 'gamma'] },
        signal(),
      );
      expect(r.vectors).toEqual([stubEmbedding('alpha beta'), stubEmbedding('gamma')]);
      expect(r.vectors[0]).toHaveLength(8);
      expect(r.usage).toEqual({ prompt_tokens: 3, total_tokens: 3 });
      expect(stub.requests[0]!.path).toBe('/v1/embeddings');
      expect(stub.requests[0]!.body).toEqual({
        model: 'text-embedding-3-small',
        input: ['alpha beta', 'gamma'],
        encoding_format: 'float',
      });
    });
  });

  describe(`openai provider (${variant}): keys`, () => {
    test('no key in the environment: no credential is sent (never `Bearer none`), 401 → client', async () => {
      const e = await rejection(
        provider({ api_key_env: 'SOULFRA_TEST_OPENAI_UNSET_KEY' }).chat(hello, signal()),
      );
      expect((e as UpstreamError).kind).toBe('client');
      expect(stub.requests[0]!.headers.authorization).toBeUndefined();
    });
  });

  describe(`openai provider (${variant}): faults → kinds`, () => {
    // Refused, 500, 429, malformed, timeouts and aborts: contract.test.ts.
    test('502 with an HTML body (a proxy before a dead server) → server, the body in the message', async () => {
      stub.setFault('status502Html');
      for (const call of [
        () => provider().chat(hello, signal()),
        () => provider().chatStream(hello, signal()),
      ]) {
        const e = (await rejection(call())) as UpstreamError;
        expect(e).toBeInstanceOf(UpstreamError);
        expect(e.kind).toBe('server');
        expect(e.status).toBe(502);
        expect(e.message).toStartWith('oai failed: 502 <html><head><title>502 Bad Gateway</title>');
      }
    });

    test('a 404 (no such path) → client, with the message of the error body', async () => {
      const e = (await rejection(
        provider({ url: `${stub.url}/nope` }).chat(hello, signal()),
      )) as UpstreamError;
      expect(e.kind).toBe('client');
      expect(e.status).toBe(404);
      expect(e.retryable).toBe(false);
      expect(e.message).toBe('oai refused the request: 404 Invalid URL (POST /v1/nope/chat/completions)');
    });
  });

  describe(`openai provider (${variant}): wire details`, () => {
    test('a trailing slash on the url is tolerated', async () => {
      const p = provider({ url: `${stub.url}/` });
      expect((await p.chat(hello, signal())).choices[0]!.message.content).toBe('You said: hello there');
      await collect(await p.chatStream(hello, signal()));
      await p.embeddings({ model: 'text-embedding-3-small', input: ['x'] }, signal());
      expect(await p.health(signal())).toBe(true);
      expect(stub.requests.map((r) => `${r.method} ${r.path}`)).toEqual([
        'POST /v1/chat/completions',
        'POST /v1/chat/completions',
        'POST /v1/embeddings',
        'GET /v1/models',
      ]);
    });

    test('awkward but valid SSE framing: CRLF, a comment, events cut across reads and characters', async () => {
      stub.setFault('splitEvents');
      const req: ChatRequest = {
        model: 'gpt-4o-mini',
        messages: [{ role: 'user', content: 'héllo wörld ✓' }],
      };
      const chunks = await collect(await provider().chatStream(req, signal()));
      expect(chunks.map((c) => c.choices[0]?.delta.content ?? '').join('')).toBe('You said: héllo wörld ✓');
      expect(chunks.flatMap((c) => c.choices.map((x) => x.finish_reason)).filter(Boolean)).toEqual(['stop']);
      expect(chunks.at(-1)!.usage).toEqual({ prompt_tokens: 3, completion_tokens: 5, total_tokens: 8 });
    });

    test('health: a server without a model list (404) is up; a proxy 502, a 429 or a garbled list is down', async () => {
      expect(await provider({ url: `${stub.url}/nope` }).health(signal())).toBe(true);
      stub.setFault('status502Html');
      expect(await provider().health(signal())).toBe(false);
      stub.setFault('status429');
      expect(await provider().health(signal())).toBe(false);
      stub.setFault('malformed');
      expect(await provider().health(signal())).toBe(false);
      stub.setFault('refuse');
      expect(await provider().health(signal())).toBe(false);
    });

    test('health: headers later than timeout_ms → down', async () => {
      stub.setFault(delayHeaders(60_000));
      expect(await provider({ timeout_ms: 50 }).health(signal())).toBe(false);
    });
  });
}

describe('openai provider: which transport', () => {
  /** The requests a chat, a stream, an embeddings call and a health check of `p` send. */
  async function everyCall(p: Provider) {
    await p.chat(hello, signal());
    await collect(await p.chatStream(hello, signal()));
    await p.embeddings({ model: 'text-embedding-3-small', input: ['x'] }, signal());
    await p.health(signal());
    return stub.requests.splice(0);
  }
  const cfg = { id: 'oai', kind: 'openai', api_key_env: KEY_ENV } as const;
  const stainless = (h: Record<string, string>) => Object.keys(h).filter((k) => k.startsWith('x-stainless-'));

  test('location unset or cloud: the official SDK (x-stainless-* headers, OpenAI/JS user agent)', async () => {
    for (const location of [undefined, 'cloud'] as const) {
      const p = createOpenAIProvider({ ...cfg, url: stub.url, ...(location ? { location } : {}) });
      expect(p.location).toBe('cloud');
      const sent = await everyCall(p);
      expect(sent).toHaveLength(4);
      for (const r of sent) {
        expect(r.headers['user-agent']).toStartWith('OpenAI/JS ');
        expect(stainless(r.headers)).toContain('x-stainless-lang');
        expect(r.headers.authorization).toBe(`Bearer ${KEY}`);
      }
    }
  });

  test('location on_prem: the lean client (no x-stainless-*, its own user agent, the same wire)', async () => {
    const p = createOpenAIProvider({ ...cfg, url: stub.url, location: 'on_prem' });
    expect(p.location).toBe('on_prem');
    const sent = await everyCall(p);
    expect(sent.map((r) => `${r.method} ${r.path}`)).toEqual([
      'POST /v1/chat/completions',
      'POST /v1/chat/completions',
      'POST /v1/embeddings',
      'GET /v1/models',
    ]);
    for (const r of sent) {
      expect(r.headers['user-agent']).toBe('soulfra');
      expect(stainless(r.headers)).toEqual([]);
      expect(r.headers.authorization).toBe(`Bearer ${KEY}`);
    }
    expect(sent.map((r) => r.headers.accept)).toEqual([
      'application/json',
      'text/event-stream',
      'application/json',
      'application/json',
    ]);
    expect(sent.map((r) => r.headers['content-type'])).toEqual([
      'application/json',
      'application/json',
      'application/json',
      undefined,
    ]);
    // An http: server is reached by the JS-thread HTTP/1.1 client: exactly these headers (Bun's
    // fetch adds accept-encoding and connection of its own).
    expect(Object.keys(sent[0]!.headers).sort()).toEqual([
      'accept',
      'authorization',
      'content-length',
      'content-type',
      'host',
      'user-agent',
    ]);
    const viaFetch = await everyCall(
      createLeanProvider({ ...cfg, url: stub.url, location: 'on_prem' }, 'fetch'),
    );
    expect(Object.keys(viaFetch[0]!.headers)).toContain('accept-encoding');
  });

  test('location on_prem with an HTTP proxy configured: fetch, which honours HTTP_PROXY and NO_PROXY', async () => {
    const saved = { HTTP_PROXY: process.env.HTTP_PROXY, NO_PROXY: process.env.NO_PROXY };
    process.env.HTTP_PROXY = 'http://127.0.0.1:9';
    process.env.NO_PROXY = '127.0.0.1';
    try {
      const p = createOpenAIProvider({ ...cfg, url: stub.url, location: 'on_prem' });
      const sent = await everyCall(p);
      expect(sent).toHaveLength(4);
      expect(Object.keys(sent[0]!.headers)).toContain('accept-encoding');
    } finally {
      for (const [k, v] of Object.entries(saved)) {
        if (v === undefined) delete process.env[k];
        else process.env[k] = v;
      }
    }
  });
});

describe('health of servers without a model list', () => {
  test('a 4xx other than 429 still means up; 429 and 5xx mean down', async () => {
    const { answeredUp } = await import('./openai.ts');
    expect([404, 401, 400].map((status) => answeredUp({ status }))).toEqual([true, true, true]);
    expect([429, 500, 503].map((status) => answeredUp({ status }))).toEqual([false, false, false]);
    expect(answeredUp(new Error('ECONNREFUSED'))).toBe(false);
  });
});
