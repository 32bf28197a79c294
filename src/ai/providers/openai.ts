import OpenAI, { APIConnectionError, APIConnectionTimeoutError, APIError, APIUserAbortError } from 'openai';
import type { Stream } from 'openai/core/streaming';
import {
  type ChatChunk,
  type ChatCompletion,
  type Provider,
  type ProviderConfig,
  type ToolCall,
  UpstreamError,
  type Usage,
} from '../provider.ts';

/**
 * An OpenAI-compatible upstream (OpenAI itself, or any server speaking its Chat Completions API)
 * through the official `openai` SDK, unchanged. The SDK never retries (fallback is the router's
 * job); its timeout covers the wait for the answer's headers.
 */
export function createOpenAIProvider(cfg: ProviderConfig): Provider {
  const client = new OpenAI(sdkOptions(cfg, 'https://api.openai.com/v1'));
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
      return normalizeCompletion(cfg.id, raw, req.model);
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
      const data = (raw as { data?: unknown })?.data;
      if (!Array.isArray(data) || data.length !== req.input.length) {
        throw new UpstreamError(
          cfg.id,
          'malformed',
          `${cfg.id}: the embeddings answer has no vector per input`,
        );
      }
      const sorted = [...(data as { index?: number; embedding?: unknown }[])].sort(
        (a, b) => (a.index ?? 0) - (b.index ?? 0),
      );
      const vectors = sorted.map((d) => d.embedding);
      if (!vectors.every((v): v is number[] => Array.isArray(v) && v.every((x) => typeof x === 'number'))) {
        throw new UpstreamError(cfg.id, 'malformed', `${cfg.id}: an embedding is not a list of numbers`);
      }
      const usage = (raw as { usage?: { prompt_tokens?: number; total_tokens?: number } }).usage;
      return {
        vectors,
        usage: {
          prompt_tokens: usage?.prompt_tokens ?? 0,
          total_tokens: usage?.total_tokens ?? usage?.prompt_tokens ?? 0,
        },
      };
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
function normalizeCompletion(provider: string, raw: unknown, model: string): ChatCompletion {
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
    created: typeof c.created === 'number' ? c.created : Math.floor(Date.now() / 1000),
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
  return {
    baseURL: cfg.url ?? defaultUrl,
    apiKey: (cfg.api_key_env ? process.env[cfg.api_key_env] : undefined) ?? 'none',
    maxRetries: 0,
    timeout: cfg.timeout_ms ?? 30_000,
    logLevel: 'off' as const,
  };
}
