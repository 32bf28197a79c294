import {
  createParser,
  type EventSourceMessage,
  type EventSourceParser,
  type ParseError,
} from 'eventsource-parser';
import OpenAI, { APIConnectionError, APIConnectionTimeoutError, APIError, APIUserAbortError } from 'openai';
import type { Stream } from 'openai/core/streaming';
import { createHttp1Client } from '../../app/index.ts';
import { type Clock, systemClock } from '../../shared/time.ts';
import {
  type ChatChunk,
  type ChatCompletion,
  type EmbeddingsResult,
  type Provider,
  type ProviderConfig,
  type ToolCall,
  UpstreamError,
  type Usage,
} from '../provider.ts';

/** Where the SDK goes when the configuration names no url. */
const OPENAI_URL = 'https://api.openai.com/v1';

/**
 * An OpenAI-compatible upstream (OpenAI itself, or any server speaking its Chat Completions API).
 * `location: cloud` (the default) goes through the official `openai` SDK, unchanged: cloud APIs
 * use their official client. `location: on_prem` (vLLM, llama.cpp, LocalAI...) uses a lean
 * `fetch` client of the same wire format, which is the contract of servers that have no client of
 * their own: the SDK costs about twice the CPU of a plain `fetch` per call. Both behave the same:
 * same shapes, same UpstreamError kinds, same abort rules.
 */
export function createOpenAIProvider(cfg: ProviderConfig, clock: Clock = systemClock): Provider {
  return (cfg.location ?? 'cloud') === 'on_prem'
    ? createLeanProvider(cfg, 'auto', clock)
    : createSdkProvider(cfg, clock);
}

/**
 * The lean transport with a given HTTP client: by default the JS-thread HTTP/1.1 client for
 * `http:` servers (see shared/http1.ts for why) and Bun's `fetch` for `https:` ones or when an
 * HTTP proxy is configured. Tests pick `fetch` to prove that path too.
 */
export function createLeanProvider(
  cfg: ProviderConfig,
  client: 'auto' | 'fetch' = 'auto',
  clock: Clock = systemClock,
): Provider {
  const base = cfg.url ?? OPENAI_URL;
  // With an HTTP proxy configured, `fetch` honours it (and NO_PROXY); our client does not.
  const proxied = Boolean(process.env.HTTP_PROXY || process.env.http_proxy);
  if (client === 'fetch' || proxied || !base.startsWith('http://')) {
    return createFetchProvider(cfg, fetchWithDeadline, null, clock);
  }
  const h1 = createHttp1Client();
  return createFetchProvider(cfg, h1.fetch, () => h1.close(), clock);
}

/**
 * Through the official `openai` SDK. The SDK never retries (fallback is the router's job); its
 * timeout covers the wait for the answer's headers.
 */
function createSdkProvider(cfg: ProviderConfig, clock: Clock): Provider {
  const client = new OpenAI(sdkOptions(cfg, OPENAI_URL));
  const fail = (e: unknown, signal: AbortSignal) => mapOpenAIError(cfg.id, e, signal);

  return {
    id: cfg.id,
    kind: 'openai',
    location: cfg.location ?? 'cloud',

    async chat(req, signal) {
      let raw: unknown;
      try {
        const body = { ...req, stream: false } as OpenAI.ChatCompletionCreateParamsNonStreaming;
        raw = await client.chat.completions.create(body, { signal });
      } catch (e) {
        throw fail(e, signal);
      }
      return normalizeCompletion(cfg.id, raw, req.model, clock);
    },

    async chatStream(req, signal) {
      const body = {
        ...req,
        stream: true,
        stream_options: { include_usage: true },
      } as OpenAI.ChatCompletionCreateParamsStreaming;
      async function* chunks(): AsyncGenerator<ChatChunk> {
        let stream: Stream<OpenAI.ChatCompletionChunk>;
        try {
          stream = await client.chat.completions.create(body, { signal });
        } catch (e) {
          throw fail(e, signal);
        }
        const it = stream[Symbol.asyncIterator]();
        let ended = false;
        let finished = false;
        try {
          while (true) {
            let next: IteratorResult<unknown>;
            try {
              next = await it.next();
            } catch (e) {
              ended = true;
              throw fail(e, signal);
            }
            if (next.done) {
              ended = true;
              if (signal.aborted || !finished) {
                throw endedEarly(cfg.id, signal, 'the stream ended before a finish_reason');
              }
              return;
            }
            const chunk = checkChunk(cfg.id, next.value);
            if (chunk.choices.some((c) => c.finish_reason)) finished = true;
            yield chunk;
          }
        } finally {
          // The consumer stopped early (or a chunk was bad): abort the upstream request.
          if (!ended) {
            stream.controller.abort();
            await it.return?.().catch(() => {});
          }
        }
      }
      return primeStream(cfg.id, chunks(), signal);
    },

    async embeddings(req, signal) {
      let raw: OpenAI.CreateEmbeddingResponse;
      try {
        raw = await client.embeddings.create(
          { model: req.model, input: req.input, encoding_format: 'float' },
          { signal },
        );
      } catch (e) {
        throw fail(e, signal);
      }
      return normalizeEmbeddings(cfg.id, raw, req.input.length);
    },

    async health(signal) {
      try {
        await client.models.list({ signal });
        return true;
      } catch (e) {
        // A 4xx other than 429 means a server answered (some OpenAI-compatible servers have no
        // model list): it is up. Refused, timed out, 429 and 5xx mean it is not.
        return answeredUp(e);
      }
    },
  };
}

/** The lean transport's user agent (the SDK sends `OpenAI/JS <version>`). */
const USER_AGENT = 'soulfra';

/** How much of an unfinished server-sent event the lean transport buffers (a runaway server). */
const SSE_MAX_BUFFER = 16 * 1024 * 1024;

/** How the lean transport sends a request (`fetch`, or the HTTP/1.1 client's). */
type LeanFetch = (
  url: string,
  init: {
    method: string;
    headers: Record<string, string>;
    body?: string | undefined;
    signal: AbortSignal;
    /** How long to wait for the answer's headers. */
    timeoutMs: number;
  },
) => Promise<Response>;

/**
 * The lean transport for on-prem servers: one HTTP request on the OpenAI wire format, through
 * `send`. Everything a call does not need to make afresh (URLs, headers) is built here, once.
 */
function createFetchProvider(
  cfg: ProviderConfig,
  send: LeanFetch,
  close: (() => void) | null,
  clock: Clock,
): Provider {
  const id = cfg.id;
  const base = (cfg.url ?? OPENAI_URL).replace(/\/+$/, '');
  const chatUrl = `${base}/chat/completions`;
  const embeddingsUrl = `${base}/embeddings`;
  const modelsUrl = `${base}/models`;
  const timeoutMs = cfg.timeout_ms ?? 30_000;
  // No key (a local server that takes none): no Authorization header at all, never `Bearer none`.
  const key = providerKey(cfg);
  const auth: Record<string, string> = key ? { authorization: `Bearer ${key}` } : {};
  const jsonHeaders = {
    ...auth,
    'content-type': 'application/json',
    accept: 'application/json',
    'user-agent': USER_AGENT,
  };
  const sseHeaders = { ...jsonHeaders, accept: 'text/event-stream' };
  const getHeaders = { ...auth, accept: 'application/json', 'user-agent': USER_AGENT };

  return {
    id,
    kind: 'openai',
    location: 'on_prem',

    async close() {
      close?.();
    },

    async chat(req, signal) {
      const call = new FetchCall(id, signal, timeoutMs, send);
      let raw: unknown;
      try {
        const res = await call.open(chatUrl, 'POST', JSON.stringify({ ...req, stream: false }), jsonHeaders);
        raw = await res.json();
      } catch (e) {
        throw call.fail(e);
      }
      return normalizeCompletion(id, raw, req.model, clock);
    },

    async chatStream(req, signal) {
      const body = JSON.stringify({ ...req, stream: true, stream_options: { include_usage: true } });
      const call = new FetchCall(id, signal, timeoutMs, send);
      async function* chunks(): AsyncGenerator<ChatChunk> {
        let res: Response;
        try {
          res = await call.open(chatUrl, 'POST', body, sseHeaders);
        } catch (e) {
          throw call.fail(e);
        }
        const events = new SseEvents(id, res);
        let finished = false;
        try {
          while (true) {
            let raw: unknown;
            try {
              raw = await events.next();
            } catch (e) {
              throw call.fail(e);
            }
            if (raw === undefined) {
              if (signal.aborted || !finished) {
                throw endedEarly(id, signal, 'the stream ended before a finish_reason');
              }
              return;
            }
            const chunk = checkChunk(id, raw);
            if (chunk.choices.some((c) => c.finish_reason)) finished = true;
            yield chunk;
          }
        } finally {
          // The consumer stopped early (or the stream failed): cancelling the body closes the
          // upstream request (a finished one is already closed).
          await events.close();
        }
      }
      return primeStream(id, chunks(), signal);
    },

    async embeddings(req, signal) {
      const call = new FetchCall(id, signal, timeoutMs, send);
      let raw: unknown;
      try {
        const body = JSON.stringify({ model: req.model, input: req.input, encoding_format: 'float' });
        const res = await call.open(embeddingsUrl, 'POST', body, jsonHeaders);
        raw = await res.json();
      } catch (e) {
        throw call.fail(e);
      }
      return normalizeEmbeddings(id, raw, req.input.length);
    },

    async health(signal) {
      const call = new FetchCall(id, signal, timeoutMs, send);
      try {
        const res = await call.open(modelsUrl, 'GET', undefined, getHeaders);
        // As the SDK: a JSON answer must parse (anything else that is 2xx is taken as is).
        const text = await res.text();
        if (text && /json/.test(res.headers.get('content-type') ?? '')) JSON.parse(text);
        return true;
      } catch (e) {
        // A 4xx other than 429 means a server answered (some OpenAI-compatible servers have no
        // model list): it is up. Refused, timed out, 429 and 5xx mean it is not.
        return answeredUp(e);
      }
    },
  };
}

/**
 * One request of the lean transport. The caller's signal and the provider's timeout (for the
 * answer's headers) go to the sender as they are: the HTTP/1.1 client handles both itself, and
 * `fetchWithDeadline` does the same for Bun's fetch; a timeout rejects with a `TimeoutError`.
 */
class FetchCall {
  /** The headers came: a failure now is the answer's, not the connection's. */
  answered = false;

  constructor(
    readonly provider: string,
    readonly signal: AbortSignal,
    private readonly timeoutMs: number,
    private readonly send: LeanFetch,
  ) {}

  /** Sends the request; resolves with a 2xx answer whose body is still to read. */
  async open(url: string, method: string, body: string | undefined, headers: Record<string, string>) {
    if (this.signal.aborted) throw abortedError(this.provider, this.signal);
    const res = await this.send(url, {
      method,
      headers,
      body,
      signal: this.signal,
      timeoutMs: this.timeoutMs,
    });
    this.answered = true;
    if (!res.ok) throw await statusError(this.provider, res);
    return res;
  }

  /** What a failure of this call is, as the SDK path words it (see `mapOpenAIError`). */
  fail(e: unknown): unknown {
    // As the SDK path: once the signal fired, whatever broke is the abort's doing.
    if (this.signal.aborted) return abortedError(this.provider, this.signal, e);
    if (e instanceof UpstreamError) return e;
    const p = this.provider;
    // With the caller's signal quiet, a TimeoutError is the provider's own header deadline.
    if (!this.answered && (e as { name?: unknown })?.name === 'TimeoutError') {
      return new UpstreamError(p, 'timeout', `${p} did not answer in time`, { cause: e });
    }
    if (!this.answered) {
      const why = (e as Error)?.message ?? String(e);
      return new UpstreamError(p, 'connect', `${p} could not be reached: ${why}`, { cause: e });
    }
    return mapOpenAIError(p, e, this.signal);
  }
}

/**
 * Bun's `fetch` with the lean transport's deadline: the caller's signal, or no headers within
 * `timeoutMs` (then it rejects with a `TimeoutError`), aborts the request.
 */
const fetchWithDeadline: LeanFetch = async (url, init) => {
  const ctl = new AbortController();
  const onAbort = () => ctl.abort(init.signal.reason);
  init.signal.addEventListener('abort', onAbort);
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    ctl.abort();
  }, init.timeoutMs);
  try {
    return await fetch(url, {
      method: init.method,
      headers: init.headers,
      body: init.body,
      signal: ctl.signal,
    });
  } catch (e) {
    if (timedOut && !init.signal.aborted) {
      throw new DOMException(`no answer within ${init.timeoutMs} ms`, 'TimeoutError');
    }
    throw e;
  } finally {
    clearTimeout(timer);
    // NB! The caller's signal keeps reaching a streamed body: the listener stays until it fires
    // or the signal is collected with the request.
    if (timedOut) init.signal.removeEventListener('abort', onAbort);
  }
};

/** The UpstreamError for a non-2xx answer (its body read, so the connection is released). */
async function statusError(provider: string, res: Response): Promise<UpstreamError> {
  let text: string;
  try {
    text = await res.text();
  } catch (e) {
    text = (e as Error)?.message ?? '';
  }
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    body = undefined;
  }
  // OpenAI's `{error:{message,type,code}}`; some servers put the fields at the top level.
  const err = body && typeof body === 'object' ? ((body as { error?: unknown }).error ?? body) : undefined;
  const fallback = text.trim().slice(0, 500) || res.statusText;
  const { message, type } = errorParts(err, fallback);
  return fromStatus(
    provider,
    res.status,
    message ? `${res.status} ${message}` : `${res.status} status code (no body)`,
    type,
    err ?? text,
  );
}

/** An OpenAI error object's message and type, worded as the SDK words them (`APIError`). */
function errorParts(
  err: unknown,
  fallback: string | undefined,
): { message: string | undefined; type: string | null } {
  const e = err as { message?: unknown; type?: unknown; code?: unknown } | null | undefined;
  const message = e?.message
    ? typeof e.message === 'string'
      ? e.message
      : JSON.stringify(e.message)
    : e
      ? JSON.stringify(e)
      : fallback;
  const type = e?.type ?? e?.code ?? null;
  return { message, type: type === null ? null : String(type) };
}

/**
 * The events of a streamed answer, parsed, one at a time: server-sent events through
 * `eventsource-parser` (CRLF, comments, events split across reads), each `data` as JSON.
 * `[DONE]` or the end of the body ends them; a malformed event, or an error event, throws as the
 * SDK's stream throws.
 */
class SseEvents {
  private readonly reader: ReadableStreamDefaultReader<Uint8Array> | undefined;
  private readonly decoder = new TextDecoder();
  private readonly parser: EventSourceParser;
  private readonly queue: EventSourceMessage[] = [];
  private head = 0;
  private overflow: ParseError | undefined;
  private done = false;

  constructor(
    private readonly provider: string,
    res: Response,
  ) {
    this.reader = res.body?.getReader();
    this.parser = createParser({
      onEvent: (m) => this.queue.push(m),
      onError: (e) => {
        if (e.type === 'max-buffer-size-exceeded') this.overflow = e;
      },
      maxBufferSize: SSE_MAX_BUFFER,
    });
  }

  /** The next event's JSON, or undefined at the end. */
  async next(): Promise<unknown> {
    while (!this.done) {
      if (this.head < this.queue.length) {
        const m = this.queue[this.head++]!;
        if (m.data === '[DONE]') break;
        return this.parse(m);
      }
      this.queue.length = 0;
      this.head = 0;
      const r = this.reader ? await this.reader.read() : undefined;
      if (!r || r.done) break;
      this.parser.feed(this.decoder.decode(r.value, { stream: true }));
      if (this.overflow) {
        const p = this.provider;
        throw new UpstreamError(p, 'malformed', `${p}: ${this.overflow.message}`, { cause: this.overflow });
      }
    }
    this.done = true;
    return undefined;
  }

  /** An event's JSON; an error event (named so, or an `{error}` object) throws. */
  private parse(m: EventSourceMessage): unknown {
    const p = this.provider;
    let v: unknown;
    try {
      v = JSON.parse(m.data);
    } catch (e) {
      throw new UpstreamError(
        p,
        'malformed',
        `${p} answered something that is not JSON: malformed server-sent event JSON`,
        {
          cause: e,
        },
      );
    }
    const inner = v && typeof v === 'object' ? (v as { error?: unknown }).error : undefined;
    if (m.event === 'error' || inner) {
      // No status inside a stream: the kind comes from the error's type.
      const err = inner ?? v;
      const { message, type } = errorParts(err, undefined);
      throw fromStatus(p, undefined, message ?? '(no status code or body)', type, err);
    }
    return v;
  }

  /** Releases the body (a no-op once it was read to its end). */
  async close(): Promise<void> {
    await this.reader?.cancel().catch(() => {});
  }
}

/** Did the signal fire because of a timeout (the router's per-call deadline)? */
function isTimeoutAbort(signal: AbortSignal): boolean {
  const r = signal.reason as { name?: unknown } | undefined;
  return r?.name === 'TimeoutError';
}

/**
 * The error for an aborted call: the router's deadline is a `timeout`; the client going away
 * surfaces the abort reason itself (the router passes it on untouched).
 */
export function abortedError(provider: string, signal: AbortSignal, cause?: unknown): unknown {
  if (isTimeoutAbort(signal)) {
    return new UpstreamError(provider, 'timeout', `${provider} did not answer in time`, { cause });
  }
  return signal.reason instanceof Error
    ? signal.reason
    : new DOMException('The operation was aborted', 'AbortError');
}

/**
 * Waits for the first item of `gen` (so that a failure before any byte went to the client can
 * still fall back), then hands out that item and the rest. `return()` (the consumer stopping
 * early, even before its first `next()`) runs `gen`'s cleanup, which aborts the upstream request.
 */
export async function primeStream<T>(
  provider: string,
  gen: AsyncGenerator<T>,
  signal: AbortSignal,
): Promise<AsyncIterableIterator<T>> {
  const first = await gen.next();
  if (first.done) throw endedEarly(provider, signal, 'the stream ended before its first chunk');
  let pending: T | undefined = first.value;
  let primed = true;
  const iterator: AsyncIterableIterator<T> = {
    [Symbol.asyncIterator]: () => iterator,
    async next() {
      if (primed) {
        primed = false;
        const value = pending as T;
        pending = undefined;
        return { value, done: false };
      }
      return gen.next();
    },
    async return() {
      primed = false;
      pending = undefined;
      await gen.return(undefined);
      return { value: undefined, done: true };
    },
  };
  return iterator;
}

/** A stream that ended too soon: cut by our own abort, or by the upstream. */
export function endedEarly(provider: string, signal: AbortSignal, what: string): unknown {
  if (signal.aborted) return abortedError(provider, signal);
  return new UpstreamError(provider, 'malformed', `${provider}: ${what}`);
}

/** Maps anything the `openai` SDK throws to an UpstreamError (or the abort of a client gone). */
export function mapOpenAIError(provider: string, e: unknown, signal: AbortSignal): unknown {
  if (e instanceof UpstreamError) return e;
  if (signal.aborted) return abortedError(provider, signal, e);
  if (e instanceof APIConnectionTimeoutError) {
    return new UpstreamError(provider, 'timeout', `${provider} did not answer in time`, { cause: e });
  }
  if (e instanceof APIUserAbortError) {
    return new UpstreamError(provider, 'timeout', `${provider}: the request was aborted`, { cause: e });
  }
  if (e instanceof APIConnectionError) {
    return new UpstreamError(provider, 'connect', `${provider} could not be reached: ${e.message}`, {
      cause: e,
    });
  }
  if (e instanceof APIError) return fromStatus(provider, e.status, e.message, e.type ?? e.code ?? null, e);
  if (e instanceof SyntaxError) {
    return new UpstreamError(
      provider,
      'malformed',
      `${provider} answered something that is not JSON: ${e.message}`,
      {
        cause: e,
      },
    );
  }
  return new UpstreamError(
    provider,
    'malformed',
    `${provider} failed: ${(e as Error)?.message ?? String(e)}`,
    {
      cause: e,
    },
  );
}

/**
 * The kind for an HTTP status (or, for an error event inside a stream, which has none, the
 * error's type): 429 rate_limited, 408 timeout, 5xx (529 overloaded too) server, other 4xx client.
 */
export function fromStatus(
  provider: string,
  status: number | undefined,
  message: string,
  type: string | null,
  cause: unknown,
): UpstreamError {
  const opts = { status, cause };
  if (status === undefined) {
    const t = type ?? '';
    if (/rate_limit|requests|tokens/.test(t))
      return new UpstreamError(provider, 'rate_limited', `${provider}: ${message}`, opts);
    if (/invalid_request|authentication|permission|not_found|request_too_large/.test(t)) {
      return new UpstreamError(provider, 'client', `${provider}: ${message}`, opts);
    }
    return new UpstreamError(provider, 'server', `${provider}: ${message}`, opts);
  }
  if (status === 429)
    return new UpstreamError(provider, 'rate_limited', `${provider} is rate limited: ${message}`, opts);
  if (status === 408) return new UpstreamError(provider, 'timeout', `${provider}: ${message}`, opts);
  if (status >= 500) return new UpstreamError(provider, 'server', `${provider} failed: ${message}`, opts);
  if (status >= 400)
    return new UpstreamError(provider, 'client', `${provider} refused the request: ${message}`, opts);
  return new UpstreamError(
    provider,
    'malformed',
    `${provider}: unexpected status ${status}: ${message}`,
    opts,
  );
}

const FINISH = new Set(['stop', 'length', 'tool_calls', 'content_filter']);

/** The finish reason in our vocabulary (the legacy 'function_call' is a tool call). */
function finishReason(v: unknown): ChatCompletion['choices'][number]['finish_reason'] {
  if (v === 'function_call') return 'tool_calls';
  return typeof v === 'string' && FINISH.has(v) ? (v as 'stop') : v == null ? null : 'stop';
}

function usageOf(u: unknown): Usage {
  const x = (u ?? {}) as Partial<Usage>;
  const prompt = typeof x.prompt_tokens === 'number' ? x.prompt_tokens : 0;
  const completion = typeof x.completion_tokens === 'number' ? x.completion_tokens : 0;
  return {
    prompt_tokens: prompt,
    completion_tokens: completion,
    total_tokens: typeof x.total_tokens === 'number' ? x.total_tokens : prompt + completion,
  };
}

/** The SDK's completion in our shape (anything that is not a completion is `malformed`). */
function normalizeCompletion(provider: string, raw: unknown, model: string, clock: Clock): ChatCompletion {
  const c = raw as Partial<OpenAI.ChatCompletion> | null;
  if (!c || typeof c !== 'object' || !Array.isArray(c.choices)) {
    throw new UpstreamError(
      provider,
      'malformed',
      `${provider} answered something that is not a chat completion`,
    );
  }
  return {
    id: typeof c.id === 'string' ? c.id : '',
    object: 'chat.completion',
    created: typeof c.created === 'number' ? c.created : Math.floor(clock.now() / 1000),
    model: typeof c.model === 'string' ? c.model : model,
    choices: c.choices.map((ch, i) => {
      const calls = (ch.message?.tool_calls ?? [])
        .filter((t): t is OpenAI.ChatCompletionMessageFunctionToolCall => t.type === 'function')
        .map(
          (t): ToolCall => ({
            id: t.id,
            type: 'function',
            function: { name: t.function.name, arguments: t.function.arguments },
          }),
        );
      return {
        index: typeof ch.index === 'number' ? ch.index : i,
        message: {
          role: 'assistant',
          content: typeof ch.message?.content === 'string' ? ch.message.content : null,
          ...(calls.length > 0 ? { tool_calls: calls } : {}),
        },
        finish_reason: finishReason(ch.finish_reason),
      };
    }),
    usage: usageOf(c.usage),
  };
}

/** An embeddings answer in our shape: one vector of numbers per input, in input order. */
function normalizeEmbeddings(provider: string, raw: unknown, inputs: number): EmbeddingsResult {
  const data = (raw as { data?: unknown })?.data;
  if (!Array.isArray(data) || data.length !== inputs) {
    throw new UpstreamError(
      provider,
      'malformed',
      `${provider}: the embeddings answer has no vector per input`,
    );
  }
  const sorted = [...(data as { index?: number; embedding?: unknown }[])].sort(
    (a, b) => (a.index ?? 0) - (b.index ?? 0),
  );
  const vectors = sorted.map((d) => d.embedding);
  if (!vectors.every((v): v is number[] => Array.isArray(v) && v.every((x) => typeof x === 'number'))) {
    throw new UpstreamError(provider, 'malformed', `${provider}: an embedding is not a list of numbers`);
  }
  const usage = (raw as { usage?: { prompt_tokens?: number; total_tokens?: number } }).usage;
  return {
    vectors,
    usage: {
      prompt_tokens: usage?.prompt_tokens ?? 0,
      total_tokens: usage?.total_tokens ?? usage?.prompt_tokens ?? 0,
    },
  };
}

/** A streamed chunk as the upstream sent it, once it is known to be one. */
function checkChunk(provider: string, raw: unknown): ChatChunk {
  const c = raw as Partial<ChatChunk> | null;
  if (!c || typeof c !== 'object' || !Array.isArray(c.choices)) {
    throw new UpstreamError(
      provider,
      'malformed',
      `${provider} streamed something that is not a chat completion chunk`,
    );
  }
  return c as ChatChunk;
}

/** Whether a failed health call still proves the server is up (it answered a 4xx other than 429). */
export function answeredUp(e: unknown): boolean {
  const status = (e as { status?: unknown }).status;
  return typeof status === 'number' && status >= 400 && status < 500 && status !== 429;
}

/**
 * Options shared by the official SDK clients: the key from the named environment variable, no
 * retries (fallback is the router's job), the provider's timeout, and no console output
 * (failures reach the router as UpstreamErrors).
 */
export function sdkOptions(cfg: ProviderConfig, defaultUrl: string) {
  const key = providerKey(cfg);
  return {
    baseURL: cfg.url ?? defaultUrl,
    // The SDKs insist on a key; with none, a placeholder that is never sent: the null headers
    // remove the SDK's own `Authorization` (openai) and `X-Api-Key` (anthropic).
    apiKey: key ?? 'unused',
    ...(key ? {} : { defaultHeaders: { authorization: null, 'x-api-key': null } }),
    maxRetries: 0,
    timeout: cfg.timeout_ms ?? 30_000,
    logLevel: 'off' as const,
  };
}

/** The provider's key from its `api_key_env` variable; null when it names none or it is empty. */
export function providerKey(cfg: ProviderConfig): string | null {
  const v = cfg.api_key_env ? process.env[cfg.api_key_env] : undefined;
  return v ? v : null;
}
