import { afterAll, afterEach, beforeAll, describe, expect, test } from 'bun:test';
import { startAnthropicStub } from '../../../tests/peers/anthropic-stub.ts';
import { stubEmbedding as ollamaEmbedding, startOllamaStub } from '../../../tests/peers/ollama-stub.ts';
import { stubEmbedding as openaiEmbedding, startOpenAIStub } from '../../../tests/peers/openai-stub.ts';
import { waitFor } from '../../../tests/wait.ts';
import type { ChatChunk, ChatRequest, Provider, ProviderConfig } from '../provider.ts';
import { UpstreamError } from '../provider.ts';
import { createAnthropicProvider } from './anthropic.ts';
import { createOllamaProvider } from './ollama.ts';
import { createLeanProvider, createOpenAIProvider } from './openai.ts';

/**
 * The provider contract: what every chat provider does the same way, whatever its wire format
 * and transport (chat, streaming, usage, tool calls, embeddings, health, keys, the mapping of
 * upstream faults to `UpstreamError` kinds, aborts and timeouts). One table-driven suite runs
 * against each target below through a small adapter over its fake server (tests/peers/*);
 * what only one provider does (its request mapping, its wire quirks) stays in `<provider>.test.ts`.
 * The ONNX provider runs in process on local files (no transport, no upstream faults): its
 * contract is its own file's.
 */

/** The faults every fake server can play (named as the OpenAI stub names them). */
type Fault =
  | 'refuse'
  | 'status500'
  | 'status429'
  | 'malformed'
  | 'stallAfterFirstChunk'
  /** An error reported by the server after the first chunk of a stream. */
  | 'midStreamError'
  | { delayHeaders: number };

/** One provider over one transport, with its fake server. */
interface Target {
  name: string;
  /** The provider id (errors name it). */
  id: string;
  kind: Provider['kind'];
  location: 'cloud' | 'on_prem';
  model: string;
  start(): Promise<void>;
  stop(): Promise<void>;
  /** After each test: no fault, the request log emptied. */
  reset(): void;
  provider(extra?: Partial<ProviderConfig>): Provider;
  fault(f: Fault | null): void;
  /** Requests that reached the fake server so far (refused connections never do). */
  received(): number;
  /** Resolves once no exchange is in progress at the fake server (finished or cut). */
  idle(): Promise<void>;
  /** Embeddings: the model and the fake's vector of a text; null where unsupported. */
  embeddings: { model: string; vector(text: string): number[] } | null;
  /**
   * An API key the fake checks: its env var, the message of a wrong key, and the Authorization
   * header of the last request (both SDKs and the lean client send a bearer token); null for none.
   */
  key: { env: string; wrongKeyMessage: string; sent(): string | undefined } | null;
  /** Whether `timeout_ms` in the config is applied by the provider itself (else only the signal). */
  ownTimeout: boolean;
  /** The shape of a tool call id the fake hands out. */
  toolCallId: RegExp;
  /** Text the fake sends beside a tool call (null: none). */
  toolText: string | null;
  /** The message of the error a stream meets mid-way (`midStreamError`). */
  midStreamMessage: string | RegExp;
  /** The text of the first streamed chunk (role chunk) before the answer's pieces. */
  firstDelta: string;
  /** Whether that chunk's delta holds only the role and that text (the SDK adds fields of its own). */
  exactFirstDelta: boolean;
}

const hello = (model: string): ChatRequest => ({
  model,
  messages: [{ role: 'user', content: 'hello there' }],
});
const weatherTool = {
  type: 'function' as const,
  function: {
    name: 'get_weather',
    description: 'The weather in a city',
    parameters: { type: 'object', properties: { location: { type: 'string' } }, required: ['location'] },
  },
};

const openaiKeyEnv = 'SOULFRA_TEST_CONTRACT_OPENAI_KEY';
const openaiKey = 'sk-test-contract-openai-0123';
const anthropicKeyEnv = 'SOULFRA_TEST_CONTRACT_ANTHROPIC_KEY';
const anthropicKey = 'sk-ant-test-contract-0123';

function openaiTarget(variant: 'cloud' | 'on_prem' | 'on_prem+fetch'): Target {
  let stub: Awaited<ReturnType<typeof startOpenAIStub>>;
  const location = variant === 'cloud' ? 'cloud' : 'on_prem';
  return {
    name: `openai (${variant === 'cloud' ? 'cloud: the SDK' : variant === 'on_prem' ? 'on_prem: http1' : 'on_prem: fetch'})`,
    id: 'oai',
    kind: 'openai',
    location,
    model: 'gpt-4o-mini',
    async start() {
      process.env[openaiKeyEnv] = openaiKey;
      stub = await startOpenAIStub({ apiKey: openaiKey });
    },
    stop: () => stub.stop(),
    reset() {
      stub.setFault(null);
      stub.requests.length = 0;
    },
    provider(extra = {}) {
      const cfg: ProviderConfig = {
        id: 'oai',
        kind: 'openai',
        url: stub.url,
        api_key_env: openaiKeyEnv,
        ...(location === 'on_prem' ? { location } : {}),
        ...extra,
      };
      return variant === 'on_prem+fetch' ? createLeanProvider(cfg, 'fetch') : createOpenAIProvider(cfg);
    },
    fault: (f) => stub.setFault(f === 'midStreamError' ? 'errorMidStream' : f),
    received: () => stub.requests.length,
    idle: () => stub.idle(),
    embeddings: { model: 'text-embedding-3-small', vector: (t) => openaiEmbedding(t) },
    key: {
      env: openaiKeyEnv,
      wrongKeyMessage: 'Incorrect API key',
      sent: () => stub.requests.at(-1)?.headers.authorization,
    },
    ownTimeout: true,
    toolCallId: /^call_get_weather_0$/,
    toolText: null,
    midStreamMessage: 'oai: The model failed while generating; retry later',
    firstDelta: '',
    exactFirstDelta: false,
  };
}

function anthropicTarget(): Target {
  let stub: Awaited<ReturnType<typeof startAnthropicStub>>;
  return {
    name: 'anthropic (cloud: the SDK)',
    id: 'ant',
    kind: 'anthropic',
    location: 'cloud',
    model: 'claude-haiku-4-5',
    async start() {
      process.env[anthropicKeyEnv] = anthropicKey;
      stub = await startAnthropicStub({ apiKey: anthropicKey });
    },
    stop: () => stub.stop(),
    reset() {
      stub.setFault(null);
      stub.requests.length = 0;
    },
    provider: (extra = {}) =>
      createAnthropicProvider({
        id: 'ant',
        kind: 'anthropic',
        url: stub.url,
        api_key_env: anthropicKeyEnv,
        ...extra,
      }),
    fault: (f) => stub.setFault(f === 'midStreamError' ? 'overloadedMidStream' : f),
    received: () => stub.requests.length,
    idle: () => stub.idle(),
    embeddings: null,
    key: {
      env: anthropicKeyEnv,
      wrongKeyMessage: 'invalid x-api-key',
      sent: () => stub.requests.at(-1)?.headers.authorization,
    },
    ownTimeout: true,
    toolCallId: /^toolu_get_weather_0$/,
    toolText: 'Let me check the weather.',
    midStreamMessage: /overloaded/i,
    firstDelta: '',
    exactFirstDelta: true,
  };
}

function ollamaTarget(): Target {
  let stub: Awaited<ReturnType<typeof startOllamaStub>>;
  const made: Provider[] = [];
  return {
    name: 'ollama (on_prem: fetch)',
    id: 'local',
    kind: 'ollama',
    location: 'on_prem',
    model: 'llama3.2',
    async start() {
      stub = await startOllamaStub();
    },
    async stop() {
      for (const p of made) await p.close?.();
      await stub.stop();
    },
    reset() {
      stub.setFault(null);
      stub.setModels(['llama3.2', 'nomic-embed-text']);
      stub.requests.length = 0;
    },
    provider(extra = {}) {
      const p = createOllamaProvider({ id: 'local', kind: 'ollama', url: stub.url, ...extra });
      made.push(p);
      return p;
    },
    fault: (f) => stub.setFault(f === 'midStreamError' ? 'errorAfterFirstChunk' : f),
    received: () => stub.requests.length,
    idle: async () => {
      await Promise.all(stub.requests.map((r) => r.outcome));
    },
    embeddings: { model: 'nomic-embed-text', vector: (t) => ollamaEmbedding(t) },
    key: null,
    ownTimeout: false,
    toolCallId: /^call_[0-9a-f]{24}$/,
    toolText: null,
    midStreamMessage: /llama runner process has terminated/,
    firstDelta: 'You ',
    exactFirstDelta: true,
  };
}

const TARGETS: Target[] = [
  openaiTarget('cloud'),
  openaiTarget('on_prem'),
  openaiTarget('on_prem+fetch'),
  anthropicTarget(),
  ollamaTarget(),
];

const signal = () => new AbortController().signal;
const timedOut = () => new DOMException('The operation timed out.', 'TimeoutError');

async function collect(it: AsyncIterable<ChatChunk>): Promise<ChatChunk[]> {
  const out: ChatChunk[] = [];
  for await (const c of it) out.push(c);
  return out;
}
const text = (chunks: ChatChunk[]) => chunks.map((c) => c.choices[0]?.delta.content ?? '').join('');
const finishes = (chunks: ChatChunk[]) =>
  chunks.flatMap((c) => c.choices.map((x) => x.finish_reason)).filter((f) => f !== null && f !== undefined);

/** The rejection of `p` (fails the test when it resolves). */
async function rejection(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (e) {
    return e;
  }
  throw new Error('expected a rejection');
}
/** The UpstreamError `p` rejects with (fails on anything else). */
async function upstreamError(p: Promise<unknown>): Promise<UpstreamError> {
  const e = await rejection(p);
  expect(e).toBeInstanceOf(UpstreamError);
  return e as UpstreamError;
}
/** An abort that is the caller's own (not an upstream failure). */
function expectCallerAbort(e: unknown): void {
  expect(e).not.toBeInstanceOf(UpstreamError);
  expect((e as Error).name).toBe('AbortError');
}

for (const t of TARGETS) {
  const model = t.model;
  const ask = hello(model);
  /** Every call the target supports, each a fresh promise. */
  /** The first chunk: the role, and the text the fake puts in it (nothing else where `exactFirstDelta`). */
  const expectRoleChunk = (c: ChatChunk) => {
    const d = c.choices[0]!.delta;
    if (t.exactFirstDelta) expect(d).toEqual({ role: 'assistant', content: t.firstDelta });
    else expect(d).toMatchObject({ role: 'assistant', content: t.firstDelta });
  };
  const calls = (p: () => Provider, s: () => AbortSignal) => [
    { name: 'chat', run: () => p().chat(ask, s()) },
    { name: 'stream', run: () => p().chatStream(ask, s()) },
    ...(t.embeddings
      ? [{ name: 'embeddings', run: () => p().embeddings({ model: t.embeddings!.model, input: ['x'] }, s()) }]
      : []),
  ];

  describe(`provider contract: ${t.name}`, () => {
    beforeAll(() => t.start());
    afterAll(() => t.stop());
    afterEach(() => t.reset());

    test('identity: kind and location', () => {
      const p = t.provider();
      expect(p.kind).toBe(t.kind);
      expect(p.location).toBe(t.location);
    });

    test('chat: the exact answer, finish_reason stop, usage, in the OpenAI shape', async () => {
      const c = await t.provider().chat(ask, signal());
      expect(c.object).toBe('chat.completion');
      expect(c.model).toBe(model);
      expect(typeof c.id).toBe('string');
      expect(Number.isInteger(c.created)).toBe(true);
      expect(c.choices).toEqual([
        { index: 0, message: { role: 'assistant', content: 'You said: hello there' }, finish_reason: 'stop' },
      ]);
      expect(c.usage).toEqual({ prompt_tokens: 2, completion_tokens: 4, total_tokens: 6 });
      expect(t.received()).toBe(1);
    });

    test('chat: max_tokens cuts the answer, finish_reason length, usage counts the cut', async () => {
      const c = await t.provider().chat({ ...ask, max_tokens: 2 }, signal());
      expect(c.choices[0]!.message.content).toBe('You said: ');
      expect(c.choices[0]!.finish_reason).toBe('length');
      expect(c.usage).toEqual({ prompt_tokens: 2, completion_tokens: 2, total_tokens: 4 });
    });

    test('stream: role first, the pieces in order, one finish_reason stop, usage on the last chunk', async () => {
      const chunks = await collect(await t.provider().chatStream(ask, signal()));
      expectRoleChunk(chunks[0]!);
      expect(chunks.slice(1).every((c) => c.choices[0]?.delta.role === undefined)).toBe(true);
      expect(chunks.map((c) => c.choices[0]?.delta.content).filter(Boolean)).toEqual([
        'You ',
        'said: ',
        'hello ',
        'there',
      ]);
      expect(text(chunks)).toBe('You said: hello there');
      expect(finishes(chunks)).toEqual(['stop']);
      expect(chunks.at(-1)!.usage).toEqual({ prompt_tokens: 2, completion_tokens: 4, total_tokens: 6 });
      expect(chunks.slice(0, -1).every((c) => c.usage === undefined || c.usage === null)).toBe(true);
      expect(new Set(chunks.map((c) => c.id)).size).toBe(1);
      expect(chunks.every((c) => c.object === 'chat.completion.chunk' && c.model === model)).toBe(true);
      expect(t.received()).toBe(1);
    });

    test('stream: max_tokens cuts it, finish_reason length, usage counts the cut', async () => {
      const chunks = await collect(await t.provider().chatStream({ ...ask, max_tokens: 3 }, signal()));
      expect(text(chunks)).toBe('You said: hello ');
      expect(finishes(chunks)).toEqual(['length']);
      expect(chunks.at(-1)!.usage).toEqual({ prompt_tokens: 2, completion_tokens: 3, total_tokens: 5 });
    });

    test('stream: a consumer that breaks out of for-await aborts the upstream request', async () => {
      t.fault('stallAfterFirstChunk');
      for await (const c of await t.provider().chatStream(ask, signal())) {
        expect(c.choices[0]!.delta.role).toBe('assistant');
        break;
      }
      // The stalled answer would stay open for good had the request not been cut.
      await t.idle();
      expect(t.received()).toBe(1);
    });

    test('stream: return() before the first next() aborts the upstream request too', async () => {
      t.fault('stallAfterFirstChunk');
      const it = (await t.provider().chatStream(ask, signal()))[Symbol.asyncIterator]();
      expect(await it.return!()).toEqual({ done: true, value: undefined });
      await t.idle();
      expect(t.received()).toBe(1);
      expect(await it.next()).toEqual({ done: true, value: undefined });
    });

    test('tools: a tool call comes back with JSON-string arguments and finish_reason tool_calls', async () => {
      const c = await t.provider().chat(
        {
          model,
          messages: [{ role: 'user', content: 'What is the weather in Tallinn?' }],
          tools: [weatherTool],
        },
        signal(),
      );
      const choice = c.choices[0]!;
      expect(choice.finish_reason).toBe('tool_calls');
      expect(choice.message.role).toBe('assistant');
      expect(choice.message.content).toBe(t.toolText);
      expect(choice.message.tool_calls).toHaveLength(1);
      const call = choice.message.tool_calls![0]!;
      expect(call.id).toMatch(t.toolCallId);
      expect(call.type).toBe('function');
      expect(call.function).toEqual({ name: 'get_weather', arguments: '{"location":"Tallinn"}' });

      // The round trip: the call and its result go back; the model answers from the result.
      const answer = await t.provider().chat(
        {
          model,
          tools: [weatherTool],
          messages: [
            { role: 'user', content: 'What is the weather in Tallinn?' },
            { role: 'assistant', content: null, tool_calls: [call] },
            { role: 'tool', tool_call_id: call.id, content: '18C and sunny' },
          ],
        },
        signal(),
      );
      expect(answer.choices[0]!.message.content).toEndWith('said: 18C and sunny');
      expect(answer.choices[0]!.message.tool_calls).toBeUndefined();
      expect(answer.choices[0]!.finish_reason).toBe('stop');
    });

    test('tools, streamed: one call at index 0, id and name once, the arguments joined, finish tool_calls', async () => {
      const chunks = await collect(
        await t.provider().chatStream(
          {
            model,
            messages: [{ role: 'user', content: 'What is the weather in Oslo?' }],
            tools: [weatherTool],
          },
          signal(),
        ),
      );
      const calls = chunks.flatMap((c) => c.choices.flatMap((x) => x.delta.tool_calls ?? []));
      expect(calls.length).toBeGreaterThan(0);
      expect(calls.every((c) => c.index === 0)).toBe(true);
      expect(calls[0]!.id).toMatch(t.toolCallId);
      expect(calls[0]!.type).toBe('function');
      expect(calls[0]!.function?.name).toBe('get_weather');
      expect(calls.slice(1).every((c) => c.id === undefined && c.function?.name === undefined)).toBe(true);
      expect(JSON.parse(calls.map((c) => c.function?.arguments ?? '').join(''))).toEqual({
        location: 'Oslo',
      });
      expect(text(chunks)).toBe(t.toolText ?? '');
      expect(finishes(chunks)).toEqual(['tool_calls']);
    });

    if (t.embeddings) {
      const e = t.embeddings;
      test('embeddings: one vector per input, in input order, with usage', async () => {
        const r = await t
          .provider()
          .embeddings({ model: e.model, input: ['alpha beta', 'gamma', 'alpha beta'] }, signal());
        expect(r.vectors).toEqual([e.vector('alpha beta'), e.vector('gamma'), e.vector('alpha beta')]);
        expect(r.vectors[0]).not.toEqual(r.vectors[1]!);
        expect(r.usage).toEqual({ prompt_tokens: 5, total_tokens: 5 });
        expect(t.received()).toBe(1);
      });
    } else {
      test('embeddings: unsupported (not retryable), nothing sent', async () => {
        const err = await upstreamError(t.provider().embeddings({ model, input: ['x'] }, signal()));
        expect(err.kind).toBe('unsupported');
        expect(err.retryable).toBe(false);
        expect(err.provider).toBe(t.id);
        expect(t.received()).toBe(0);
      });
    }

    test('health: an answering server → true; a 500 → false; a refused connection → false', async () => {
      expect(await t.provider().health(signal())).toBe(true);
      expect(t.received()).toBe(1);
      t.fault('status500');
      expect(await t.provider().health(signal())).toBe(false);
      t.fault('refuse');
      expect(await t.provider().health(signal())).toBe(false);
    });

    if (t.key) {
      const k = t.key;
      test('keys: a wrong key → 401 client, not retryable, with the server message', async () => {
        const env = `${k.env}_WRONG`;
        process.env[env] = 'sk-wrong-key';
        try {
          const err = await upstreamError(t.provider({ api_key_env: env }).chat(ask, signal()));
          expect([err.kind, err.status, err.retryable, err.provider]).toEqual(['client', 401, false, t.id]);
          expect(err.message).toContain(k.wrongKeyMessage);
          expect(k.sent()).toBe('Bearer sk-wrong-key');
          expect(t.received()).toBe(1);
        } finally {
          delete process.env[env];
        }
      });
    }

    const faults: [string, Fault, UpstreamError['kind'], number | undefined][] = [
      ['refused connection', 'refuse', 'connect', undefined],
      ['500', 'status500', 'server', 500],
      ['429', 'status429', 'rate_limited', 429],
      ['malformed body', 'malformed', 'malformed', undefined],
    ];
    for (const [name, fault, kind, status] of faults) {
      test(`faults: ${name} → ${kind}${status ? ` ${status}` : ''}, retryable (${calls(t.provider, signal)
        .map((c) => c.name)
        .join(', ')})`, async () => {
        t.fault(fault);
        const list = calls(t.provider, signal);
        for (const c of list) {
          const err = await upstreamError(c.run());
          expect({ call: c.name, kind: err.kind, status: err.status, retryable: err.retryable }).toEqual({
            call: c.name,
            kind,
            status,
            retryable: true,
          });
          expect(err.provider).toBe(t.id);
        }
        // A refused connection never reaches the server; nothing is retried inside the provider.
        expect(t.received()).toBe(fault === 'refuse' ? 0 : list.length);
      });
    }

    test('faults: a server that is gone → connect', async () => {
      const url = await (async () => {
        const gone = Bun.serve({ hostname: '127.0.0.1', port: 0, fetch: () => new Response('') });
        const u = `http://127.0.0.1:${gone.port}${t.kind === 'openai' ? '/v1' : ''}`;
        await gone.stop(true);
        return u;
      })();
      const err = await upstreamError(t.provider({ url }).chat(ask, signal()));
      expect([err.kind, err.retryable]).toEqual(['connect', true]);
    });

    test('faults: an error reported mid-stream → the iterator rejects with server', async () => {
      t.fault('midStreamError');
      const it = (await t.provider().chatStream(ask, signal()))[Symbol.asyncIterator]();
      const first = await it.next();
      expect(first.done).toBe(false);
      expect((first.value as ChatChunk).choices[0]!.delta.role).toBe('assistant');
      let err: unknown;
      for (;;) {
        try {
          if ((await it.next()).done) break;
        } catch (e) {
          err = e;
          break;
        }
      }
      expect(err).toBeInstanceOf(UpstreamError);
      expect((err as UpstreamError).kind).toBe('server');
      expect((err as UpstreamError).status).toBeUndefined();
      if (typeof t.midStreamMessage === 'string')
        expect((err as UpstreamError).message).toBe(t.midStreamMessage);
      else expect((err as UpstreamError).message).toMatch(t.midStreamMessage);
      await t.idle();
    });

    test("timeouts: headers later than the router's timeout signal → timeout (chat and stream)", async () => {
      t.fault({ delayHeaders: 60_000 });
      const c = new AbortController();
      const pending = [
        rejection(t.provider().chat(ask, c.signal)),
        rejection(t.provider().chatStream(ask, c.signal)),
      ];
      await waitFor(() => t.received() >= 2, { what: 'both requests at the fake server' });
      c.abort(timedOut());
      for (const e of await Promise.all(pending)) {
        expect(e).toBeInstanceOf(UpstreamError);
        expect((e as UpstreamError).kind).toBe('timeout');
        expect((e as UpstreamError).retryable).toBe(true);
      }
    });

    test('timeouts: headers later than a short AbortSignal.timeout → timeout (every call)', async () => {
      t.fault({ delayHeaders: 60_000 });
      for (const c of calls(t.provider, () => AbortSignal.timeout(50))) {
        const err = await upstreamError(c.run());
        expect({ call: c.name, kind: err.kind }).toEqual({ call: c.name, kind: 'timeout' });
      }
    });

    if (t.ownTimeout) {
      test('timeouts: headers later than the configured timeout_ms (the transport’s own) → timeout', async () => {
        t.fault({ delayHeaders: 60_000 });
        const err = await upstreamError(t.provider({ timeout_ms: 50 }).chat(ask, signal()));
        expect(err.kind).toBe('timeout');
      });
    }

    test('timeouts: a stream that stalls after its first chunk → next() rejects with timeout once the signal aborts', async () => {
      t.fault('stallAfterFirstChunk');
      const c = new AbortController();
      const it = (await t.provider().chatStream(ask, c.signal))[Symbol.asyncIterator]();
      const first = await it.next();
      expect(first.done).toBe(false);
      expectRoleChunk(first.value as ChatChunk);
      const next = rejection(it.next());
      c.abort(timedOut());
      const e = await next;
      expect(e).toBeInstanceOf(UpstreamError);
      expect((e as UpstreamError).kind).toBe('timeout');
      await t.idle();
    });

    test('timeouts: a whole answer that stalls after its first bytes → chat rejects with timeout', async () => {
      t.fault('stallAfterFirstChunk');
      const c = new AbortController();
      const pending = rejection(t.provider().chat(ask, c.signal));
      await waitFor(() => t.received() >= 1, { what: 'the request at the fake server' });
      c.abort(timedOut());
      const e = await pending;
      expect(e).toBeInstanceOf(UpstreamError);
      expect((e as UpstreamError).kind).toBe('timeout');
    });

    test('aborts: the client going away mid-stream is not an upstream failure', async () => {
      t.fault('stallAfterFirstChunk');
      const c = new AbortController();
      const it = (await t.provider().chatStream(ask, c.signal))[Symbol.asyncIterator]();
      await it.next();
      const next = rejection(it.next());
      c.abort();
      expectCallerAbort(await next);
    });

    test('aborts: the client going away before the headers: the abort as is, the request cut', async () => {
      t.fault({ delayHeaders: 60_000 });
      const c = new AbortController();
      const pending = [
        rejection(t.provider().chat(ask, c.signal)),
        rejection(t.provider().chatStream(ask, c.signal)),
      ];
      await waitFor(() => t.received() >= 2, { what: 'both requests at the fake server' });
      c.abort();
      for (const e of await Promise.all(pending)) expectCallerAbort(e);
    });

    test('aborts: an already aborted signal sends nothing (every call)', async () => {
      const c = new AbortController();
      c.abort();
      for (const call of calls(t.provider, () => c.signal)) expectCallerAbort(await rejection(call.run()));
      expect(t.received()).toBe(0);
    });
  });
}
