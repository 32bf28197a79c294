import { afterAll, afterEach, beforeAll, describe, expect, test } from 'bun:test';
import {
  delayHeaders,
  type OpenAIStub,
  STUB_CREATED,
  type StubFault,
  startOpenAIStub,
  stubEmbedding,
} from '../../../tests/peers/openai-stub.ts';
import type { ChatChunk, ChatRequest, Provider, ProviderConfig } from '../provider.ts';
import { UpstreamError } from '../provider.ts';
import { createOpenAIProvider } from './openai.ts';

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

function provider(extra: Partial<ProviderConfig> = {}): Provider {
  return createOpenAIProvider({ id: 'oai', kind: 'openai', url: stub.url, api_key_env: KEY_ENV, ...extra });
}

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

describe('openai provider: chat', () => {
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
    expect(p.location).toBe('cloud');
    const c = await p.chat(req, signal());
    expect(c).toEqual({
      id: 'chatcmpl-stub-1',
      object: 'chat.completion',
      created: STUB_CREATED,
      model: 'gpt-4o-mini',
      choices: [
        { index: 0, message: { role: 'assistant', content: 'You said: hello there' }, finish_reason: 'stop' },
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

  test('a location from the configuration wins over the default', () => {
    expect(provider({ location: 'on_prem' }).location).toBe('on_prem');
  });

  test('max_tokens cuts the answer: finish_reason length', async () => {
    const c = await provider().chat({ ...hello, max_tokens: 2 }, signal());
    expect(c.choices[0]!.message.content).toBe('You said: ');
    expect(c.choices[0]!.finish_reason).toBe('length');
    expect(c.usage).toEqual({ prompt_tokens: 2, completion_tokens: 2, total_tokens: 4 });
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

describe('openai provider: streaming', () => {
  test('chunks as sent, usage requested and last, the text exact', async () => {
    const chunks = await collect(await provider().chatStream(hello, signal()));
    expect(chunks[0]!.choices[0]!.delta.role).toBe('assistant');
    expect(chunks.map((c) => c.choices[0]?.delta.content ?? '').join('')).toBe('You said: hello there');
    expect(chunks.map((c) => c.choices[0]?.delta.content).filter(Boolean)).toEqual([
      'You ',
      'said: ',
      'hello ',
      'there',
    ]);
    const finish = chunks.filter((c) => c.choices[0]?.finish_reason);
    expect(finish.map((c) => c.choices[0]!.finish_reason)).toEqual(['stop']);
    const last = chunks.at(-1)!;
    expect(last.choices).toEqual([]);
    expect(last.usage).toEqual({ prompt_tokens: 2, completion_tokens: 4, total_tokens: 6 });
    expect(chunks.every((c) => c.id === 'chatcmpl-stub-1' && c.object === 'chat.completion.chunk')).toBe(
      true,
    );
    expect(stub.requests[0]!.body).toEqual({
      ...hello,
      stream: true,
      stream_options: { include_usage: true },
    });
  });

  test('finish_reason length when max_tokens cuts the stream', async () => {
    const chunks = await collect(await provider().chatStream({ ...hello, max_tokens: 3 }, signal()));
    expect(chunks.map((c) => c.choices[0]?.delta.content ?? '').join('')).toBe('You said: hello ');
    expect(chunks.flatMap((c) => c.choices.map((x) => x.finish_reason)).filter(Boolean)).toEqual(['length']);
    expect(chunks.at(-1)!.usage).toEqual({ prompt_tokens: 2, completion_tokens: 3, total_tokens: 5 });
  });

  test('a consumer that stops early aborts the upstream request', async () => {
    stub.setFault('stallAfterFirstChunk');
    const it = await provider().chatStream(hello, signal());
    for await (const c of it) {
      expect(c.choices[0]!.delta.role).toBe('assistant');
      break;
    }
    // The stalled answer would stay open forever if the request were not aborted.
    await stub.idle();
    expect(stub.requests).toHaveLength(1);
  });

  test('a consumer that returns before its first next() aborts the upstream request too', async () => {
    stub.setFault('stallAfterFirstChunk');
    const it = (await provider().chatStream(hello, signal()))[Symbol.asyncIterator]();
    await it.return?.();
    await stub.idle();
    expect(stub.requests).toHaveLength(1);
  });
});

describe('openai provider: tools', () => {
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

  test('streamed tool calls: id and name first, then the arguments in pieces', async () => {
    const req: ChatRequest = {
      model: 'gpt-4o-mini',
      messages: [{ role: 'user', content: 'weather for Oslo, please' }],
      tools: [weatherTool],
    };
    const chunks = await collect(await provider().chatStream(req, signal()));
    const calls = chunks.flatMap((c) => c.choices.flatMap((x) => x.delta.tool_calls ?? []));
    expect(calls[0]).toEqual({
      index: 0,
      id: 'call_get_weather_0',
      type: 'function',
      function: { name: 'get_weather', arguments: '' },
    });
    expect(calls.map((t) => t.function?.arguments ?? '').join('')).toBe('{"location":"Oslo"}');
    expect(calls.every((t) => t.index === 0)).toBe(true);
    expect(chunks.flatMap((c) => c.choices.map((x) => x.finish_reason)).filter(Boolean)).toEqual([
      'tool_calls',
    ]);
  });
});

describe('openai provider: embeddings and health', () => {
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

  test('health: models answer → true; a 500 → false', async () => {
    expect(await provider().health(signal())).toBe(true);
    expect(stub.requests[0]!.method).toBe('GET');
    expect(stub.requests[0]!.path).toBe('/v1/models');
    stub.setFault('status500');
    expect(await provider().health(signal())).toBe(false);
  });
});

describe('openai provider: keys', () => {
  test('a wrong key: 401 → client (not retryable)', async () => {
    process.env.SOULFRA_TEST_OPENAI_WRONG_KEY = 'sk-wrong';
    try {
      const e = await rejection(
        provider({ api_key_env: 'SOULFRA_TEST_OPENAI_WRONG_KEY' }).chat(hello, signal()),
      );
      expect(e).toBeInstanceOf(UpstreamError);
      expect((e as UpstreamError).kind).toBe('client');
      expect((e as UpstreamError).status).toBe(401);
      expect((e as UpstreamError).retryable).toBe(false);
      expect((e as UpstreamError).provider).toBe('oai');
      expect(stub.requests[0]!.headers.authorization).toBe('Bearer sk-wrong');
    } finally {
      delete process.env.SOULFRA_TEST_OPENAI_WRONG_KEY;
    }
  });

  test('no key in the environment: the placeholder key is sent, 401 → client', async () => {
    const e = await rejection(
      provider({ api_key_env: 'SOULFRA_TEST_OPENAI_UNSET_KEY' }).chat(hello, signal()),
    );
    expect((e as UpstreamError).kind).toBe('client');
    expect(stub.requests[0]!.headers.authorization).toBe('Bearer none');
  });
});

describe('openai provider: faults → kinds', () => {
  const table: [string, StubFault, UpstreamError['kind'], number | undefined][] = [
    ['refused connection', 'refuse', 'connect', undefined],
    ['500', 'status500', 'server', 500],
    ['429', 'status429', 'rate_limited', 429],
    ['malformed body', 'malformed', 'malformed', undefined],
  ];
  for (const [name, fault, kind, status] of table) {
    test(`${name} → ${kind} (chat, stream and embeddings)`, async () => {
      stub.setFault(fault);
      const calls = [
        () => provider().chat(hello, signal()),
        () => provider().chatStream(hello, signal()),
        () => provider().embeddings({ model: 'text-embedding-3-small', input: ['x'] }, signal()),
      ];
      for (const call of calls) {
        const e = await rejection(call());
        expect(e).toBeInstanceOf(UpstreamError);
        expect((e as UpstreamError).kind).toBe(kind);
        expect((e as UpstreamError).status).toBe(status);
        expect((e as UpstreamError).retryable).toBe(true);
      }
      // A refused connection never reaches the server.
      expect(stub.requests).toHaveLength(fault === 'refuse' ? 0 : 3);
    });
  }

  test('429 carries retry-after upstream (the error is rate_limited, not retried by the SDK)', async () => {
    stub.setFault('status429');
    const e = await rejection(provider().chat(hello, signal()));
    expect((e as UpstreamError).kind).toBe('rate_limited');
    expect(stub.requests).toHaveLength(1);
  });

  test("headers later than the router's timeout signal → timeout", async () => {
    stub.setFault(delayHeaders(60_000));
    const c = new AbortController();
    const pending = rejection(provider().chat(hello, c.signal));
    const pendingStream = rejection(provider().chatStream(hello, c.signal));
    await waitForRequests(2);
    c.abort(new DOMException('The operation timed out.', 'TimeoutError'));
    for (const e of [await pending, await pendingStream]) {
      expect(e).toBeInstanceOf(UpstreamError);
      expect((e as UpstreamError).kind).toBe('timeout');
    }
  });

  test('headers later than a short AbortSignal.timeout → timeout', async () => {
    stub.setFault(delayHeaders(60_000));
    const e = await rejection(provider().chat(hello, AbortSignal.timeout(50)));
    expect((e as UpstreamError).kind).toBe('timeout');
  });

  test("headers later than the configured timeout_ms (the SDK's own timeout) → timeout", async () => {
    stub.setFault(delayHeaders(60_000));
    const e = await rejection(provider({ timeout_ms: 50 }).chat(hello, signal()));
    expect(e).toBeInstanceOf(UpstreamError);
    expect((e as UpstreamError).kind).toBe('timeout');
  });

  test('stall after the first chunk: chatStream resolves, next() rejects with timeout once the signal aborts', async () => {
    stub.setFault('stallAfterFirstChunk');
    const c = new AbortController();
    const it = (await provider().chatStream(hello, c.signal))[Symbol.asyncIterator]();
    const first = await it.next();
    expect(first.done).toBe(false);
    expect((first.value as ChatChunk).choices[0]!.delta).toMatchObject({ role: 'assistant', content: '' });
    const next = rejection(it.next());
    c.abort(new DOMException('The operation timed out.', 'TimeoutError'));
    const e = await next;
    expect(e).toBeInstanceOf(UpstreamError);
    expect((e as UpstreamError).kind).toBe('timeout');
    await stub.idle();
  });

  test('stall after the first bytes of a whole answer: chat rejects with timeout once the signal aborts', async () => {
    stub.setFault('stallAfterFirstChunk');
    const c = new AbortController();
    const pending = rejection(provider().chat(hello, c.signal));
    await waitForRequests(1);
    c.abort(new DOMException('The operation timed out.', 'TimeoutError'));
    expect(((await pending) as UpstreamError).kind).toBe('timeout');
  });

  test('the client going away is not an upstream failure: the abort surfaces as is', async () => {
    stub.setFault('stallAfterFirstChunk');
    const c = new AbortController();
    const it = (await provider().chatStream(hello, c.signal))[Symbol.asyncIterator]();
    await it.next();
    const next = rejection(it.next());
    c.abort();
    const e = await next;
    expect(e).not.toBeInstanceOf(UpstreamError);
    expect((e as Error).name).toBe('AbortError');
  });

  test('an already aborted signal sends nothing', async () => {
    const c = new AbortController();
    c.abort();
    const e = await rejection(provider().chat(hello, c.signal));
    expect((e as Error).name).toBe('AbortError');
    expect(stub.requests).toHaveLength(0);
  });
});

/** Resolves once `n` requests have reached the stub (they are recorded on arrival). */
async function waitForRequests(n: number): Promise<void> {
  while (stub.requests.length < n) await new Promise((r) => setTimeout(r, 5));
}

describe('health of servers without a model list', () => {
  test('a 4xx other than 429 still means up; 429 and 5xx mean down', async () => {
    const { answeredUp } = await import('./openai.ts');
    expect([404, 401, 400].map((status) => answeredUp({ status }))).toEqual([true, true, true]);
    expect([429, 500, 503].map((status) => answeredUp({ status }))).toEqual([false, false, false]);
    expect(answeredUp(new Error('ECONNREFUSED'))).toBe(false);
  });
});
