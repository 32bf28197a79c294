import { afterAll, afterEach, beforeAll, describe, expect, test } from 'bun:test';
import { type AnthropicStub, startAnthropicStub } from '../../../tests/peers/anthropic-stub.ts';
import type { ChatChunk, ChatRequest, Provider, ProviderConfig } from '../provider.ts';
import { UpstreamError } from '../provider.ts';
import { createAnthropicProvider, DEFAULT_MAX_TOKENS } from './anthropic.ts';

const KEY_ENV = 'SOULFRA_TEST_ANTHROPIC_PROVIDER_KEY';
const KEY = 'sk-ant-test-0123456789';
const MODEL = 'claude-haiku-4-5';

let stub: AnthropicStub;

beforeAll(async () => {
  process.env[KEY_ENV] = KEY;
  stub = await startAnthropicStub({ apiKey: KEY });
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
  return createAnthropicProvider({
    id: 'ant',
    kind: 'anthropic',
    url: stub.url,
    api_key_env: KEY_ENV,
    ...extra,
  });
}

const signal = () => new AbortController().signal;

const hello: ChatRequest = { model: MODEL, messages: [{ role: 'user', content: 'hello there' }] };

const weatherTool = {
  type: 'function' as const,
  function: {
    name: 'get_weather',
    description: 'The weather in a city',
    parameters: { type: 'object', properties: { location: { type: 'string' } }, required: ['location'] },
  },
};
const anthropicWeatherTool = {
  name: 'get_weather',
  description: 'The weather in a city',
  input_schema: { type: 'object', properties: { location: { type: 'string' } }, required: ['location'] },
};

/** What the stub received as the last request's body. */
const sent = () => stub.requests.at(-1)!.body as Record<string, unknown>;

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

const text = (chunks: ChatChunk[]) => chunks.map((c) => c.choices[0]?.delta.content ?? '').join('');
const finishes = (chunks: ChatChunk[]) =>
  chunks.flatMap((c) => c.choices.map((x) => x.finish_reason)).filter((f) => f !== null);

describe('anthropic provider: chat', () => {
  test('system and developer messages become `system`; max_tokens defaults; the answer maps back', async () => {
    const p = provider();
    expect(p.kind).toBe('anthropic');
    expect(p.location).toBe('cloud');
    const c = await p.chat(
      {
        model: MODEL,
        messages: [
          { role: 'system', content: 'be brief' },
          { role: 'developer', content: [{ type: 'text', text: 'answer in English' }] },
          { role: 'user', content: 'hello there' },
        ],
        temperature: 0.3,
        seed: 7,
      },
      signal(),
    );
    expect(c.id).toBe('msg_stub_1');
    expect(c.object).toBe('chat.completion');
    expect(c.model).toBe(MODEL);
    expect(c.choices).toEqual([
      { index: 0, message: { role: 'assistant', content: 'You said: hello there' }, finish_reason: 'stop' },
    ]);
    // input: 'be brief' + 'answer in English' + 'hello there' = 7 words; output: 4.
    expect(c.usage).toEqual({ prompt_tokens: 7, completion_tokens: 4, total_tokens: 11 });
    const r = stub.requests[0]!;
    expect(r.method).toBe('POST');
    expect(r.path).toBe('/v1/messages');
    expect(r.body).toEqual({
      model: MODEL,
      max_tokens: DEFAULT_MAX_TOKENS,
      system: 'be brief\n\nanswer in English',
      messages: [{ role: 'user', content: [{ type: 'text', text: 'hello there' }] }],
      stream: false,
    });
  });

  test('the key and anthropic-version are sent', async () => {
    await provider().chat(hello, signal());
    const h = stub.requests[0]!.headers;
    // @anthropic-ai/sdk 1.x sends the API key as a bearer token.
    expect(h.authorization).toBe(`Bearer ${KEY}`);
    expect(h['anthropic-version']).toMatch(/^\d{4}-\d{2}-\d{2}$/);
  });

  test('max_tokens → max_tokens, and the cut answer → finish_reason length', async () => {
    const c = await provider().chat({ ...hello, max_tokens: 2 }, signal());
    expect(sent().max_tokens).toBe(2);
    expect(c.choices[0]!.message.content).toBe('You said: ');
    expect(c.choices[0]!.finish_reason).toBe('length');
    expect(c.usage).toEqual({ prompt_tokens: 2, completion_tokens: 2, total_tokens: 4 });
  });

  test('stop → stop_sequences, and the stop sequence → finish_reason stop', async () => {
    const c = await provider().chat({ ...hello, stop: 'there' }, signal());
    expect(sent().stop_sequences).toEqual(['there']);
    expect(c.choices[0]!.message.content).toBe('You said: hello ');
    expect(c.choices[0]!.finish_reason).toBe('stop');
    await provider().chat({ ...hello, stop: ['x', 'y'] }, signal());
    expect(sent().stop_sequences).toEqual(['x', 'y']);
  });

  test('user and assistant turns: text and parts; images from data URIs and URLs; user → metadata', async () => {
    await provider().chat(
      {
        model: MODEL,
        user: 'user-42',
        messages: [
          { role: 'user', content: 'first' },
          { role: 'assistant', content: 'an answer' },
          {
            role: 'user',
            content: [
              { type: 'text', text: 'look at ' },
              { type: 'image_url', image_url: { url: 'data:image/png;base64,iVBORw0KGgo=' } },
              { type: 'image_url', image_url: { url: 'https://example.com/cat.jpg' } },
            ],
          },
          { role: 'user', content: 'and this' },
        ],
      },
      signal(),
    );
    expect(sent().metadata).toEqual({ user_id: 'user-42' });
    expect(sent().messages).toEqual([
      { role: 'user', content: [{ type: 'text', text: 'first' }] },
      { role: 'assistant', content: [{ type: 'text', text: 'an answer' }] },
      {
        role: 'user',
        content: [
          { type: 'text', text: 'look at ' },
          { type: 'image', source: { type: 'base64', media_type: 'image/png', data: 'iVBORw0KGgo=' } },
          { type: 'image', source: { type: 'url', url: 'https://example.com/cat.jpg' } },
          { type: 'text', text: 'and this' },
        ],
      },
    ]);
  });

  test('a content part Anthropic cannot take → unsupported, nothing sent', async () => {
    const e = await rejection(
      provider().chat(
        {
          model: MODEL,
          messages: [{ role: 'user', content: [{ type: 'input_audio', input_audio: { data: 'x' } }] }],
        },
        signal(),
      ),
    );
    expect((e as UpstreamError).kind).toBe('unsupported');
    expect(stub.requests).toHaveLength(0);
  });
});

describe('anthropic provider: streaming', () => {
  test('events → chunks: role first, exact text, finish_reason, usage last', async () => {
    const chunks = await collect(
      await provider().chatStream(
        { model: MODEL, messages: [{ role: 'system', content: 'be brief' }, ...hello.messages] },
        signal(),
      ),
    );
    expect(chunks[0]!.choices[0]!.delta).toEqual({ role: 'assistant', content: '' });
    expect(chunks.map((c) => c.choices[0]?.delta.content).filter(Boolean)).toEqual([
      'You ',
      'said: ',
      'hello ',
      'there',
    ]);
    expect(text(chunks)).toBe('You said: hello there');
    expect(finishes(chunks)).toEqual(['stop']);
    const last = chunks.at(-1)!;
    expect(last.choices).toEqual([]);
    expect(last.usage).toEqual({ prompt_tokens: 4, completion_tokens: 4, total_tokens: 8 });
    expect(
      chunks.every((c) => c.id === 'msg_stub_1' && c.object === 'chat.completion.chunk' && c.model === MODEL),
    ).toBe(true);
    expect(sent()).toEqual({
      model: MODEL,
      max_tokens: DEFAULT_MAX_TOKENS,
      system: 'be brief',
      messages: [{ role: 'user', content: [{ type: 'text', text: 'hello there' }] }],
      stream: true,
    });
  });

  test('a stop sequence in the stream: finish_reason stop', async () => {
    const chunks = await collect(await provider().chatStream({ ...hello, stop: ['hello'] }, signal()));
    expect(text(chunks)).toBe('You said: ');
    expect(finishes(chunks)).toEqual(['stop']);
  });
});

describe('anthropic provider: tools', () => {
  test('OpenAI tools → Anthropic tools; tool_use → tool_calls with JSON-string arguments', async () => {
    const c = await provider().chat(
      {
        model: MODEL,
        messages: [{ role: 'user', content: 'What is the weather in Tallinn?' }],
        tools: [weatherTool],
      },
      signal(),
    );
    expect(sent().tools).toEqual([anthropicWeatherTool]);
    expect(sent().tool_choice).toBeUndefined();
    expect(c.choices[0]).toEqual({
      index: 0,
      message: {
        role: 'assistant',
        content: 'Let me check the weather.',
        tool_calls: [
          {
            id: 'toolu_get_weather_0',
            type: 'function',
            function: { name: 'get_weather', arguments: '{"location":"Tallinn"}' },
          },
        ],
      },
      finish_reason: 'tool_calls',
    });
  });

  test('a tool without parameters gets an empty object schema', async () => {
    await provider().chat({ ...hello, tools: [{ type: 'function', function: { name: 'now' } }] }, signal());
    expect(sent().tools).toEqual([{ name: 'now', input_schema: { type: 'object' } }]);
  });

  test('tool_choice: auto → auto, required → any, a named function → tool, none → none', async () => {
    const cases: [unknown, unknown][] = [
      ['auto', { type: 'auto' }],
      ['required', { type: 'any' }],
      [
        { type: 'function', function: { name: 'get_weather' } },
        { type: 'tool', name: 'get_weather' },
      ],
      ['none', { type: 'none' }],
    ];
    for (const [openai, anthropic] of cases) {
      const c = await provider().chat({ ...hello, tools: [weatherTool], tool_choice: openai }, signal());
      expect(sent().tool_choice).toEqual(anthropic);
      const forced = openai !== 'auto' && openai !== 'none';
      expect(c.choices[0]!.finish_reason).toBe(forced ? 'tool_calls' : 'stop');
      if (forced) {
        // A forced tool call has no text before it.
        expect(c.choices[0]!.message.content).toBeNull();
        expect(c.choices[0]!.message.tool_calls![0]!.function).toEqual({
          name: 'get_weather',
          arguments: '{"location":"Paris"}',
        });
      }
    }
  });

  test('parallel_tool_calls: false → disable_parallel_tool_use', async () => {
    await provider().chat(
      { ...hello, tools: [weatherTool], tool_choice: 'auto', parallel_tool_calls: false } as ChatRequest,
      signal(),
    );
    expect(sent().tool_choice).toEqual({ type: 'auto', disable_parallel_tool_use: true });
  });

  test('the round trip: assistant tool_calls → tool_use (parsed input); tool messages → one user turn of tool_result', async () => {
    const c = await provider().chat(
      {
        model: MODEL,
        messages: [
          { role: 'system', content: 'use tools' },
          { role: 'user', content: 'What is the weather in Tallinn and Oslo?' },
          {
            role: 'assistant',
            content: 'Checking both.',
            tool_calls: [
              {
                id: 'toolu_a',
                type: 'function',
                function: { name: 'get_weather', arguments: '{"location":"Tallinn"}' },
              },
              {
                id: 'toolu_b',
                type: 'function',
                function: { name: 'get_weather', arguments: '{"location":"Oslo"}' },
              },
            ],
          },
          { role: 'tool', tool_call_id: 'toolu_a', content: '18C' },
          { role: 'tool', tool_call_id: 'toolu_b', content: [{ type: 'text', text: '12C' }] },
          { role: 'user', content: 'thanks' },
        ],
        tools: [weatherTool],
      },
      signal(),
    );
    expect(sent().system).toBe('use tools');
    expect(sent().messages).toEqual([
      { role: 'user', content: [{ type: 'text', text: 'What is the weather in Tallinn and Oslo?' }] },
      {
        role: 'assistant',
        content: [
          { type: 'text', text: 'Checking both.' },
          { type: 'tool_use', id: 'toolu_a', name: 'get_weather', input: { location: 'Tallinn' } },
          { type: 'tool_use', id: 'toolu_b', name: 'get_weather', input: { location: 'Oslo' } },
        ],
      },
      {
        role: 'user',
        content: [
          { type: 'tool_result', tool_use_id: 'toolu_a', content: '18C' },
          { type: 'tool_result', tool_use_id: 'toolu_b', content: '12C' },
          { type: 'text', text: 'thanks' },
        ],
      },
    ]);
    expect(c.choices[0]!.message).toEqual({ role: 'assistant', content: 'Tool said: 18C12C' });
    expect(c.choices[0]!.finish_reason).toBe('stop');
  });

  test('an assistant turn with only tool calls (content null) sends only tool_use blocks', async () => {
    await provider().chat(
      {
        model: MODEL,
        messages: [
          { role: 'user', content: 'weather?' },
          {
            role: 'assistant',
            content: null,
            tool_calls: [
              { id: 'toolu_x', type: 'function', function: { name: 'get_weather', arguments: '' } },
            ],
          },
          { role: 'tool', tool_call_id: 'toolu_x', content: 'rain' },
        ],
        tools: [weatherTool],
      },
      signal(),
    );
    expect((sent().messages as unknown[])[1]).toEqual({
      role: 'assistant',
      content: [{ type: 'tool_use', id: 'toolu_x', name: 'get_weather', input: {} }],
    });
  });

  test('tool call arguments that are not a JSON object → client, nothing sent', async () => {
    const e = await rejection(
      provider().chat(
        {
          model: MODEL,
          messages: [
            { role: 'user', content: 'weather?' },
            {
              role: 'assistant',
              content: null,
              tool_calls: [
                { id: 'toolu_x', type: 'function', function: { name: 'get_weather', arguments: '{"loc' } },
              ],
            },
            { role: 'tool', tool_call_id: 'toolu_x', content: 'rain' },
          ],
        },
        signal(),
      ),
    );
    expect((e as UpstreamError).kind).toBe('client');
    expect(stub.requests).toHaveLength(0);
  });

  test('streamed tool use: OpenAI tool call deltas counted apart from Anthropic block indexes', async () => {
    const chunks = await collect(
      await provider().chatStream(
        {
          model: MODEL,
          messages: [{ role: 'user', content: 'weather for Oslo, please' }],
          tools: [weatherTool],
        },
        signal(),
      ),
    );
    // The text block is Anthropic's block 0, the tool_use block 1; the tool call is OpenAI's index 0.
    expect(text(chunks)).toBe('Let me check the weather.');
    const calls = chunks.flatMap((c) => c.choices.flatMap((x) => x.delta.tool_calls ?? []));
    expect(calls[0]).toEqual({
      index: 0,
      id: 'toolu_get_weather_0',
      type: 'function',
      function: { name: 'get_weather', arguments: '' },
    });
    expect(calls.slice(1).every((t) => t.index === 0 && t.id === undefined)).toBe(true);
    expect(calls.map((t) => t.function?.arguments ?? '').join('')).toBe('{"location":"Oslo"}');
    expect(finishes(chunks)).toEqual(['tool_calls']);
    expect(chunks.at(-1)!.usage).toEqual({ prompt_tokens: 4, completion_tokens: 8, total_tokens: 12 });
  });
});

describe('anthropic provider: embeddings and health', () => {
  test('health: models answer → true; a 529 → false', async () => {
    expect(await provider().health(signal())).toBe(true);
    expect(stub.requests[0]!.method).toBe('GET');
    expect(stub.requests[0]!.path).toBe('/v1/models');
    stub.setFault('status529');
    expect(await provider().health(signal())).toBe(false);
  });
});

describe('anthropic provider: keys', () => {
  test('an invalid request (the stub validates as the API does) → client', async () => {
    // A tool call never answered by a tool message.
    const req: ChatRequest = {
      model: MODEL,
      messages: [
        { role: 'user', content: 'weather?' },
        {
          role: 'assistant',
          content: null,
          tool_calls: [
            { id: 'toolu_x', type: 'function', function: { name: 'get_weather', arguments: '{}' } },
          ],
        },
        { role: 'user', content: 'never mind' },
      ],
      tools: [weatherTool],
    };
    const e = await rejection(provider().chat(req, signal()));
    expect((e as UpstreamError).kind).toBe('client');
    expect((e as UpstreamError).status).toBe(400);
    expect((e as UpstreamError).message).toContain('`tool_use` ids were found without `tool_result` blocks');
  });
});

describe('anthropic provider: faults → kinds', () => {
  // Refused, 500, 429, malformed, timeouts and aborts: contract.test.ts. Anthropic's own 529:
  test('529 overloaded_error → server (chat and stream), retryable', async () => {
    stub.setFault('status529');
    for (const call of [
      () => provider().chat(hello, signal()),
      () => provider().chatStream(hello, signal()),
    ]) {
      const e = await rejection(call());
      expect(e).toBeInstanceOf(UpstreamError);
      expect((e as UpstreamError).kind).toBe('server');
      expect((e as UpstreamError).status).toBe(529);
      expect((e as UpstreamError).retryable).toBe(true);
      expect((e as UpstreamError).provider).toBe('ant');
    }
    expect(stub.requests).toHaveLength(2);
  });

  test('an error event mid-stream (overloaded) → the iterator rejects with server', async () => {
    stub.setFault('overloadedMidStream');
    const it = (await provider().chatStream(hello, signal()))[Symbol.asyncIterator]();
    expect(((await it.next()).value as ChatChunk).choices[0]!.delta.role).toBe('assistant');
    expect(((await it.next()).value as ChatChunk).choices[0]!.delta.content).toBe('You ');
    const e = await rejection(it.next());
    expect(e).toBeInstanceOf(UpstreamError);
    expect((e as UpstreamError).kind).toBe('server');
  });
});
