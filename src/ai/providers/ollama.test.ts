import { afterAll, afterEach, beforeAll, describe, expect, test } from 'bun:test';
import {
  type OllamaStub,
  STUB_EMBEDDING_DIMS,
  startOllamaStub,
  stubEmbedding,
} from '../../../tests/peers/ollama-stub.ts';
import { deadline } from '../../../tests/wait.ts';
import { type ChatChunk, type ChatRequest, type Provider, UpstreamError } from '../provider.ts';
import { createOllamaProvider } from './ollama.ts';

let stub: OllamaStub;
let provider: Provider;

beforeAll(async () => {
  stub = await startOllamaStub();
  provider = createOllamaProvider({ id: 'local', kind: 'ollama', url: stub.url });
});
afterEach(() => {
  stub.setFault(null);
  stub.setModels(['llama3.2', 'nomic-embed-text']);
});
afterAll(async () => {
  await provider.close?.();
  await stub.stop();
});

const long = () => AbortSignal.timeout(20_000);
const hello: ChatRequest = { model: 'llama3.2', messages: [{ role: 'user', content: 'hello world' }] };
const weatherTool = {
  type: 'function' as const,
  function: {
    name: 'get_weather',
    description: 'The weather in a city',
    parameters: { type: 'object', properties: { location: { type: 'string' } }, required: ['location'] },
  },
};

/** The last request the stub received. */
const lastBody = () => stub.requests[stub.requests.length - 1]!.body as Record<string, unknown>;

async function collect(it: AsyncIterable<ChatChunk>): Promise<ChatChunk[]> {
  const out: ChatChunk[] = [];
  for await (const c of it) out.push(c);
  return out;
}

/** The UpstreamError a promise rejects with (fails the test when it resolves or throws something else). */
async function upstreamError(p: Promise<unknown>): Promise<UpstreamError> {
  try {
    await p;
  } catch (e) {
    expect(e).toBeInstanceOf(UpstreamError);
    return e as UpstreamError;
  }
  throw new Error('expected an UpstreamError, the call succeeded');
}

/** Rejects after `ms` so that a hang fails the test instead of hitting the runner's timeout. */
const guard = (ms: number) => deadline(ms);

describe('ollama provider: chat', () => {
  test('a plain chat answers the exact text with usage mapped from the eval counts', async () => {
    const res = await provider.chat(
      {
        model: 'llama3.2',
        messages: [
          { role: 'system', content: 'Be brief.' },
          { role: 'user', content: 'hello world' },
        ],
      },
      long(),
    );
    expect(res.id).toMatch(/^chatcmpl-[0-9a-f]{24}$/);
    expect(res.object).toBe('chat.completion');
    expect(res.model).toBe('llama3.2');
    expect(Number.isInteger(res.created)).toBe(true);
    expect(Math.abs(res.created - Date.now() / 1000)).toBeLessThan(120);
    expect(res.choices).toEqual([
      { index: 0, message: { role: 'assistant', content: 'You said: hello world' }, finish_reason: 'stop' },
    ]);
    // prompt: "Be brief." (2) + "hello world" (2); completion: four pieces.
    expect(res.usage).toEqual({ prompt_tokens: 4, completion_tokens: 4, total_tokens: 8 });
    expect(lastBody()).toEqual({
      model: 'llama3.2',
      stream: false,
      messages: [
        { role: 'system', content: 'Be brief.' },
        { role: 'user', content: 'hello world' },
      ],
    });
  });

  test('options, stop, max_tokens and response_format map to Ollama options and format', async () => {
    const res = await provider.chat(
      {
        ...hello,
        temperature: 0.2,
        top_p: 0.9,
        seed: 7,
        stop: 'xyz',
        max_tokens: 50,
        response_format: { type: 'json_object' },
      },
      long(),
    );
    expect(res.choices[0]!.message.content).toBe('{"said":"hello world"}');
    expect(lastBody().options).toEqual({
      temperature: 0.2,
      top_p: 0.9,
      seed: 7,
      num_predict: 50,
      stop: ['xyz'],
    });
    expect(lastBody().format).toBe('json');

    const schema = { type: 'object', properties: { said: { type: 'string' } } };
    await provider.chat(
      { ...hello, response_format: { type: 'json_schema', json_schema: { name: 's', schema } } },
      long(),
    );
    expect(lastBody().format).toEqual(schema);
  });

  // max_tokens → finish_reason 'length': contract.test.ts.
  test('a stop string cuts the answer', async () => {
    const stopped = await provider.chat({ ...hello, stop: ['world'] }, long());
    expect(stopped.choices[0]!.message.content).toBe('You said: hello ');
    expect(stopped.choices[0]!.finish_reason).toBe('stop');
  });

  test('messages map: text parts joined, developer as system, data-URL images, tool results named', async () => {
    await provider.chat(
      {
        model: 'llama3.2',
        messages: [
          { role: 'developer', content: 'Rules.' },
          {
            role: 'user',
            content: [
              { type: 'text', text: 'first' },
              { type: 'image_url', image_url: { url: 'data:image/png;base64,iVBORw0KGgo=' } },
              { type: 'text', text: 'second' },
            ],
          },
          {
            role: 'assistant',
            content: null,
            tool_calls: [
              { id: 'call_1', type: 'function', function: { name: 'lookup', arguments: '{"q":"x","n":2}' } },
            ],
          },
          { role: 'tool', tool_call_id: 'call_1', content: 'found' },
          { role: 'user', content: 'thanks' },
        ],
      },
      long(),
    );
    expect(lastBody().messages).toEqual([
      { role: 'system', content: 'Rules.' },
      { role: 'user', content: 'first\nsecond', images: ['iVBORw0KGgo='] },
      {
        role: 'assistant',
        content: '',
        tool_calls: [{ function: { name: 'lookup', arguments: { q: 'x', n: 2 } } }],
      },
      { role: 'tool', content: 'found', tool_name: 'lookup' },
      { role: 'user', content: 'thanks' },
    ]);
  });

  test('requests Ollama cannot take are refused before anything is sent', async () => {
    const before = stub.requests.length;
    const remote = await upstreamError(
      provider.chat(
        {
          model: 'llama3.2',
          messages: [
            {
              role: 'user',
              content: [{ type: 'image_url', image_url: { url: 'https://example.com/a.png' } }],
            },
          ],
        },
        long(),
      ),
    );
    expect(remote.kind).toBe('unsupported');
    const badArgs = await upstreamError(
      provider.chat(
        {
          model: 'llama3.2',
          messages: [
            {
              role: 'assistant',
              content: null,
              tool_calls: [{ id: 'c', type: 'function', function: { name: 'f', arguments: '{not json' } }],
            },
          ],
        },
        long(),
      ),
    );
    expect(badArgs.kind).toBe('client');
    expect(badArgs.retryable).toBe(false);
    expect(stub.requests.length).toBe(before);
  });
});

describe('ollama provider: streaming', () => {
  // Pieces, role, finish_reason and usage: contract.test.ts. Here, Ollama's framing of them.
  test('four content chunks, then a final one with an empty delta, finish_reason and usage', async () => {
    const chunks = await collect(await provider.chatStream(hello, long()));
    expect(lastBody().stream).toBe(true);
    expect(chunks.length).toBe(5);
    expect(chunks[0]!.id).toMatch(/^chatcmpl-/);
    expect(chunks.slice(0, -1).map((c) => c.choices[0]!.finish_reason)).toEqual([null, null, null, null]);
    const last = chunks[chunks.length - 1]!;
    expect(last.choices).toEqual([{ index: 0, delta: {}, finish_reason: 'stop' }]);
  });
});

describe('ollama provider: tool calls', () => {
  test('tools in, tool_calls out with JSON-string arguments, then the tool result round trip', async () => {
    const ask: ChatRequest = {
      model: 'llama3.2',
      messages: [{ role: 'user', content: 'What is the weather in Paris?' }],
      tools: [weatherTool],
    };
    const res = await provider.chat(ask, long());
    expect(lastBody().tools).toEqual([weatherTool]);
    const choice = res.choices[0]!;
    expect(choice.finish_reason).toBe('tool_calls');
    expect(choice.message.content).toBeNull();
    expect(choice.message.tool_calls!.length).toBe(1);
    const call = choice.message.tool_calls![0]!;
    expect(call.id).toMatch(/^call_[0-9a-f]{24}$/);
    expect(call.type).toBe('function');
    expect(call.function).toEqual({ name: 'get_weather', arguments: '{"location":"Paris"}' });

    const answer = await provider.chat(
      {
        ...ask,
        messages: [
          ...ask.messages,
          { role: 'assistant', content: null, tool_calls: [call] },
          { role: 'tool', tool_call_id: call.id, content: '18C and sunny' },
        ],
      },
      long(),
    );
    const sent = lastBody().messages as unknown[];
    expect(sent[1]).toEqual({
      role: 'assistant',
      content: '',
      tool_calls: [{ function: { name: 'get_weather', arguments: { location: 'Paris' } } }],
    });
    expect(sent[2]).toEqual({ role: 'tool', content: '18C and sunny', tool_name: 'get_weather' });
    expect(answer.choices[0]!.message).toEqual({
      role: 'assistant',
      content: 'The tool get_weather said: 18C and sunny',
    });
    expect(answer.choices[0]!.finish_reason).toBe('stop');
  });

  test('streamed tool calls arrive as indexed deltas and finish with tool_calls', async () => {
    const chunks = await collect(
      await provider.chatStream(
        { model: 'llama3.2', messages: [{ role: 'user', content: 'weather in Oslo' }], tools: [weatherTool] },
        long(),
      ),
    );
    expect(chunks.length).toBe(2);
    const delta = chunks[0]!.choices[0]!.delta;
    expect(delta.role).toBe('assistant');
    expect(delta.content).toBeUndefined();
    expect(delta.tool_calls!.length).toBe(1);
    const { id, ...rest } = delta.tool_calls![0]!;
    expect(id).toMatch(/^call_/);
    expect(rest).toEqual({
      index: 0,
      type: 'function',
      function: { name: 'get_weather', arguments: '{"location":"Oslo"}' },
    });
    expect(chunks[1]!.choices[0]!.finish_reason).toBe('tool_calls');
  });

  test("tool_choice 'none' sends no tools", async () => {
    const res = await provider.chat(
      {
        model: 'llama3.2',
        messages: [{ role: 'user', content: 'weather?' }],
        tools: [weatherTool],
        tool_choice: 'none',
      },
      long(),
    );
    expect(lastBody().tools).toBeUndefined();
    expect(res.choices[0]!.message.content).toBe('You said: weather?');
  });
});

describe('ollama provider: embeddings and health', () => {
  test('one deterministic vector per input, in input order', async () => {
    const res = await provider.embeddings(
      { model: 'nomic-embed-text', input: ['alpha', 'beta gamma', 'alpha'] },
      long(),
    );
    expect(lastBody()).toEqual({ model: 'nomic-embed-text', input: ['alpha', 'beta gamma', 'alpha'] });
    expect(res.vectors.length).toBe(3);
    expect(res.vectors[0]!.length).toBe(STUB_EMBEDDING_DIMS);
    expect(res.vectors[0]).toEqual(stubEmbedding('alpha'));
    expect(res.vectors[1]).toEqual(stubEmbedding('beta gamma'));
    expect(res.vectors[2]).toEqual(res.vectors[0]!);
    expect(res.vectors[1]).not.toEqual(res.vectors[0]!);
    expect(Math.sqrt(res.vectors[1]!.reduce((s, x) => s + x * x, 0))).toBeCloseTo(1, 9);
    expect(res.usage).toEqual({ prompt_tokens: 4, total_tokens: 4 });
  });

  test('health: up answers true, a 500 or a stopped server false', async () => {
    expect(await provider.health(long())).toBe(true);
    expect(stub.requests[stub.requests.length - 1]!.path).toBe('/api/version');
    stub.setFault('status500');
    expect(await provider.health(long())).toBe(false);
    stub.setFault(null);

    const gone = await startOllamaStub();
    await gone.stop();
    const p = createOllamaProvider({ id: 'gone', kind: 'ollama', url: gone.url });
    expect(await p.health(long())).toBe(false);
  });
});

describe('ollama provider: faults become UpstreamError kinds', () => {
  // Refused, 500, 429, malformed, timeouts and aborts: contract.test.ts. Here, Ollama's words.
  test("429 carries Ollama's message (server busy)", async () => {
    stub.setFault('status429');
    for (const e of [
      await upstreamError(provider.chat(hello, long())),
      await upstreamError(provider.chatStream(hello, long())),
    ]) {
      expect([e.kind, e.status, e.retryable]).toEqual(['rate_limited', 429, true]);
      expect(e.message).toContain('server busy');
    }
  });

  test("an unknown model → client (404, not retryable) with Ollama's message", async () => {
    const e = await upstreamError(provider.chat({ ...hello, model: 'nope' }, long()));
    expect([e.kind, e.status, e.retryable]).toEqual(['client', 404, false]);
    expect(e.message).toContain("model 'nope' not found");
    stub.setModels(['mistral']);
    const s = await upstreamError(provider.chatStream(hello, long()));
    expect([s.kind, s.status]).toEqual(['client', 404]);
    const m = await upstreamError(provider.embeddings({ model: 'nomic-embed-text', input: ['x'] }, long()));
    expect([m.kind, m.status]).toEqual(['client', 404]);
  });

  test('failures after the first chunk surface from the iterator', async () => {
    stub.setFault('malformedAfterFirstChunk');
    const it = (await provider.chatStream(hello, long()))[Symbol.asyncIterator]();
    expect((await it.next()).value?.choices[0]?.delta).toEqual({ role: 'assistant', content: 'You ' });
    expect((await upstreamError(it.next())).kind).toBe('malformed');

    stub.setFault('stallAfterFirstChunk');
    const it2 = (await provider.chatStream(hello, long()))[Symbol.asyncIterator]();
    expect((await it2.next()).value?.choices[0]?.delta.content).toBe('You ');
    stub.dropConnections();
    expect((await upstreamError(it2.next())).kind).toBe('connect');

    stub.setFault('errorAfterFirstChunk');
    const it3 = (await provider.chatStream(hello, long()))[Symbol.asyncIterator]();
    expect((await it3.next()).value?.choices[0]?.delta.content).toBe('You ');
    const e3 = await upstreamError(it3.next());
    expect(e3.kind).toBe('server');
    expect(e3.message).toContain('llama runner process has terminated');
  });
});

describe('ollama provider: stalls and early release', () => {
  test('stallAfterFirstChunk: chatStream resolves, next() waits until the signal aborts, then rejects', async () => {
    stub.setFault('stallAfterFirstChunk');
    const it = (await Promise.race([provider.chatStream(hello, AbortSignal.timeout(300)), guard(10_000)]))[
      Symbol.asyncIterator
    ]();
    const first = await it.next();
    expect(first.done).toBe(false);
    expect(first.value?.choices[0]?.delta).toEqual({ role: 'assistant', content: 'You ' });
    const e = await upstreamError(Promise.race([it.next(), guard(10_000)]));
    expect(e.kind).toBe('timeout');
    expect(await Promise.race([stub.requests[stub.requests.length - 1]!.outcome, guard(10_000)])).toBe(
      'aborted',
    );
  });

  test('return() on the iterator aborts the upstream request', async () => {
    stub.setFault('stallAfterFirstChunk');
    const it = (await provider.chatStream(hello, long()))[Symbol.asyncIterator]();
    const req = stub.requests[stub.requests.length - 1]!;
    expect((await it.next()).done).toBe(false);
    const pending = it.next();
    expect(await Promise.race([it.return!(), guard(10_000)])).toEqual({ done: true, value: undefined });
    expect(await Promise.race([pending, guard(10_000)])).toEqual({ done: true, value: undefined });
    expect(await Promise.race([req.outcome, guard(10_000)])).toBe('aborted');
    expect(await it.next()).toEqual({ done: true, value: undefined });
  });

  test('breaking out of for-await releases the request', async () => {
    stub.setFault('stallAfterFirstChunk');
    const stream = await provider.chatStream(hello, long());
    const req = stub.requests[stub.requests.length - 1]!;
    const seen: string[] = [];
    for await (const c of stream) {
      seen.push(c.choices[0]!.delta.content ?? '');
      break;
    }
    expect(seen).toEqual(['You ']);
    expect(await Promise.race([req.outcome, guard(10_000)])).toBe('aborted');
  });

  test('close() ends streams in flight with a connect failure', async () => {
    stub.setFault('stallAfterFirstChunk');
    const p = createOllamaProvider({ id: 'closing', kind: 'ollama', url: stub.url });
    const it = (await p.chatStream(hello, long()))[Symbol.asyncIterator]();
    expect((await it.next()).done).toBe(false);
    const pending = it.next();
    await p.close?.();
    const e = await upstreamError(Promise.race([pending, guard(10_000)]));
    expect([e.kind, e.provider]).toEqual(['connect', 'closing']);
  });
});
