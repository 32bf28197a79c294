/**
 * The Ollama provider, through the official `ollama` client: OpenAI shapes in, Ollama's
 * `/api/chat` and `/api/embed` upstream, OpenAI shapes out.
 *
 * Every call gets its own client whose `fetch` carries that call's AbortSignal (the client's
 * own `abort()` would abort every request of an instance, and the router runs calls
 * concurrently). The same `fetch` guards the response body: read failures become connection
 * failures, and NDJSON lines are checked before the client sees them, because the client
 * skips lines that are not JSON with a console warning and turns `{"error":...}` lines and
 * truncated streams into plain Errors.
 */
import { randomBytes } from 'node:crypto';
import {
  type ChatResponse,
  type Message,
  Ollama,
  type ChatRequest as OllamaChatRequest,
  type Options,
  type Tool,
} from 'ollama';
import { type Clock, systemClock } from '../../shared/time.ts';
import {
  type ChatChunk,
  type ChatCompletion,
  type ChatMessage,
  type ChatRequest,
  type EmbeddingsResult,
  type Provider,
  type ProviderConfig,
  type ToolCall,
  UpstreamError,
  type Usage,
} from '../provider.ts';

/** Where Ollama listens when the configuration names no url. */
export const OLLAMA_DEFAULT_URL = 'http://127.0.0.1:11434';

/** The connection failed, or broke while the answer was being read. */
class TransportError extends Error {
  override name = 'TransportError';
}
/** Ollama answered something that is not what its API documents. */
class MalformedError extends Error {
  override name = 'MalformedError';
}
/** Ollama reported an error inside a stream (`{"error":"..."}` line). */
class StreamError extends Error {
  override name = 'StreamError';
}

type Finish = ChatCompletion['choices'][number]['finish_reason'];

const rand = (bytes: number) => randomBytes(bytes).toString('hex');

/** Builds the Ollama provider for one `providers:` entry of kind `ollama`. */
export function createOllamaProvider(cfg: ProviderConfig, clock: Clock = systemClock): Provider {
  const host = cfg.url ?? OLLAMA_DEFAULT_URL;
  const id = cfg.id;
  /** Calls in flight, so that `close` can end them. */
  const inflight = new Set<AbortController>();

  /** A client for one call: every request it makes is aborted by `signal`. */
  const clientFor = (signal: AbortSignal, ndjson: boolean) =>
    new Ollama({ host, fetch: guardedFetch(signal, ndjson) });

  /** Runs one non-streamed call with its own controller (aborted by `close`). */
  async function call<T>(signal: AbortSignal, run: (client: Ollama) => Promise<T>): Promise<T> {
    const local = new AbortController();
    inflight.add(local);
    try {
      return await run(clientFor(AbortSignal.any([signal, local.signal]), false));
    } catch (e) {
      throw toUpstream(id, e, signal, local.signal);
    } finally {
      inflight.delete(local);
    }
  }

  return {
    id,
    kind: 'ollama',
    location: cfg.location ?? 'on_prem',

    async chat(req, signal) {
      const body = toOllamaChat(id, req);
      const res = await call(signal, (c) => c.chat({ ...body, stream: false }));
      return toCompletion(id, req.model, res, clock);
    },

    async chatStream(req, signal) {
      const body = toOllamaChat(id, req);
      const local = new AbortController();
      inflight.add(local);
      const callSignal = AbortSignal.any([signal, local.signal]);
      let upstream: AsyncIterator<ChatResponse>;
      let first: IteratorResult<ChatResponse>;
      try {
        const stream = await clientFor(callSignal, true).chat({ ...body, stream: true });
        upstream = stream[Symbol.asyncIterator]();
        first = await upstream.next();
        if (first.done) throw new MalformedError('ollama ended the stream without a line');
      } catch (e) {
        const err = toUpstream(id, e, signal, local.signal);
        inflight.delete(local);
        local.abort();
        throw err;
      }

      const toChunks = chunkMapper(id, req.model, clock);
      let released = false;
      let finished = false;
      async function* produce(): AsyncGenerator<ChatChunk, void, undefined> {
        try {
          let line: IteratorResult<ChatResponse> = first;
          while (!line.done) {
            yield* toChunks(line.value);
            if (line.value.done) break;
            line = await upstream.next();
          }
          if (!toChunks.ended()) throw new MalformedError('ollama ended the stream before its final line');
          finished = true;
        } catch (e) {
          if (released) return;
          throw toUpstream(id, e, signal, local.signal);
        } finally {
          inflight.delete(local);
          if (!finished) local.abort();
        }
      }
      const gen = produce();
      const release = () => {
        released = true;
        local.abort();
      };
      const iterator: AsyncIterableIterator<ChatChunk> = {
        next: () => gen.next(),
        // The consumer stopped early: abort the request now (a pending next() then ends quietly).
        return: async () => {
          release();
          await gen.return(undefined);
          return { done: true, value: undefined };
        },
        throw: async (e?: unknown) => {
          release();
          return gen.throw(e);
        },
        [Symbol.asyncIterator]() {
          return this;
        },
      };
      return iterator;
    },

    async embeddings(req, signal) {
      const res = await call(signal, (c) => c.embed({ model: req.model, input: req.input }));
      const vectors = res?.embeddings;
      if (
        !Array.isArray(vectors) ||
        vectors.length !== req.input.length ||
        !vectors.every((v) => Array.isArray(v) && v.every((x) => typeof x === 'number'))
      ) {
        throw new UpstreamError(
          id,
          'malformed',
          `ollama answered ${req.input.length} inputs without one vector each`,
        );
      }
      const prompt = typeof res.prompt_eval_count === 'number' ? res.prompt_eval_count : 0;
      return { vectors, usage: { prompt_tokens: prompt, total_tokens: prompt } } satisfies EmbeddingsResult;
    },

    async health(signal) {
      try {
        const v = await call(signal, (c) => c.version());
        return typeof v?.version === 'string';
      } catch {
        return false;
      }
    },

    async close() {
      for (const c of inflight) c.abort(new TransportError('the ollama provider was closed'));
      inflight.clear();
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Transport: the fetch each client gets.

/**
 * A `fetch` that aborts with `callSignal` (as well as the client's own signal) and guards the
 * body: read failures become TransportErrors; with `ndjson`, every line must be a JSON object,
 * a `{"error":...}` line becomes a StreamError and the stream must end with a `done` line.
 */
function guardedFetch(callSignal: AbortSignal, ndjson: boolean): typeof fetch {
  const f = async (input: string | URL | Request, init?: RequestInit): Promise<Response> => {
    const signal = init?.signal ? AbortSignal.any([init.signal, callSignal]) : callSignal;
    let res: Response;
    try {
      res = await fetch(input, { ...init, signal });
    } catch (e) {
      throw new TransportError(messageOf(e), { cause: e });
    }
    if (!res.ok || !res.body) return res;
    return new Response(guardBody(res.body, ndjson), {
      status: res.status,
      statusText: res.statusText,
      headers: res.headers,
    });
  };
  return f as typeof fetch;
}

function guardBody(src: ReadableStream<Uint8Array>, ndjson: boolean): ReadableStream<Uint8Array> {
  const reader = src.getReader();
  const decoder = new TextDecoder();
  const encoder = new TextEncoder();
  let buffer = '';
  let sawDone = false;
  /** A bad line found after good ones: the good ones go out first, this error on the next pull. */
  let pending: Error | null = null;
  const fail = (e: Error): never => {
    reader.cancel(e).catch(() => {});
    throw e;
  };
  /** Why a line is unacceptable, or null when it is a JSON object that is not an error. */
  const problem = (line: string): Error | null => {
    let v: unknown;
    try {
      v = JSON.parse(line);
    } catch {
      return new MalformedError(`ollama sent a stream line that is not JSON: ${line.slice(0, 80)}`);
    }
    if (typeof v !== 'object' || v === null || Array.isArray(v)) {
      return new MalformedError(`ollama sent a stream line that is not an object: ${line.slice(0, 80)}`);
    }
    const o = v as Record<string, unknown>;
    if (o.error !== undefined) return new StreamError(`ollama failed mid-stream: ${String(o.error)}`);
    if (o.done === true) sawDone = true;
    return null;
  };
  /** Enqueues the good lines of `text` (complete lines) up to the first bad one. */
  const pass = (text: string, controller: ReadableStreamDefaultController<Uint8Array>): boolean => {
    const good: string[] = [];
    for (const line of text.split('\n')) {
      if (line.trim() === '') continue;
      const err = problem(line);
      if (err) {
        pending = err;
        break;
      }
      good.push(`${line}\n`);
    }
    if (good.length > 0) controller.enqueue(encoder.encode(good.join('')));
    if (pending && good.length === 0) fail(pending);
    return good.length > 0;
  };
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      if (pending) fail(pending);
      for (;;) {
        let r: Awaited<ReturnType<typeof reader.read>>;
        try {
          r = await reader.read();
        } catch (e) {
          throw new TransportError(`reading ollama's answer failed: ${messageOf(e)}`, { cause: e });
        }
        if (!ndjson) {
          if (r.done) controller.close();
          else controller.enqueue(r.value);
          return;
        }
        if (r.done) {
          buffer += decoder.decode();
          const rest = buffer;
          buffer = '';
          if (pass(rest, controller) && pending) return;
          if (!sawDone) fail(new MalformedError('ollama ended the stream before its final (done) line'));
          controller.close();
          return;
        }
        buffer += decoder.decode(r.value, { stream: true });
        const nl = buffer.lastIndexOf('\n');
        if (nl < 0) continue;
        const complete = buffer.slice(0, nl + 1);
        buffer = buffer.slice(nl + 1);
        if (pass(complete, controller)) return;
      }
    },
    cancel(reason) {
      return reader.cancel(reason);
    },
  });
}

const messageOf = (e: unknown) => (e instanceof Error ? e.message : String(e));

/**
 * Any failure of a call as what the router understands. An abort caused by a timeout is
 * `timeout`; any other abort of the caller's signal (the client went away) is rethrown as is.
 */
function toUpstream(id: string, e: unknown, signal: AbortSignal, local: AbortSignal): Error {
  if (e instanceof UpstreamError) return e;
  if (signal.aborted) {
    const reason: unknown = signal.reason;
    if (reason instanceof Error && reason.name === 'TimeoutError') {
      return new UpstreamError(id, 'timeout', 'ollama did not answer in time', { cause: e });
    }
    return reason instanceof Error ? reason : new DOMException('The operation was aborted.', 'AbortError');
  }
  if (local.aborted) return new UpstreamError(id, 'connect', 'the ollama provider was closed', { cause: e });
  if (e instanceof TransportError) {
    return new UpstreamError(id, 'connect', `cannot reach ollama: ${e.message}`, { cause: e });
  }
  if (e instanceof StreamError) return new UpstreamError(id, 'server', e.message, { cause: e });
  if (e instanceof MalformedError) return new UpstreamError(id, 'malformed', e.message, { cause: e });
  if (e instanceof SyntaxError) {
    return new UpstreamError(id, 'malformed', `ollama answered something that is not JSON: ${e.message}`, {
      cause: e,
    });
  }
  const status =
    e instanceof Error && e.name === 'ResponseError'
      ? (e as { status_code?: unknown }).status_code
      : undefined;
  if (typeof status === 'number') {
    const msg = `ollama answered ${status}: ${messageOf(e)}`;
    if (status === 429) return new UpstreamError(id, 'rate_limited', msg, { status, cause: e });
    if (status >= 500) return new UpstreamError(id, 'server', msg, { status, cause: e });
    if (status >= 400) return new UpstreamError(id, 'client', msg, { status, cause: e });
    return new UpstreamError(id, 'malformed', msg, { status, cause: e });
  }
  return new UpstreamError(id, 'malformed', `ollama call failed: ${messageOf(e)}`, { cause: e });
}

// ---------------------------------------------------------------------------------------------
// Requests: OpenAI → Ollama.

type OllamaBody = Omit<OllamaChatRequest, 'stream'>;

/** An OpenAI chat request as Ollama's `/api/chat` body (without `stream`). */
export function toOllamaChat(id: string, req: ChatRequest): OllamaBody {
  const body: OllamaBody = { model: req.model, messages: toOllamaMessages(id, req.messages) };
  if (req.tools && req.tools.length > 0 && req.tool_choice !== 'none') {
    body.tools = req.tools.map((t) => ({
      type: t.type ?? 'function',
      function: t.function as Tool['function'],
    }));
  }
  const options: Partial<Options> = {};
  if (typeof req.temperature === 'number') options.temperature = req.temperature;
  if (typeof req.top_p === 'number') options.top_p = req.top_p;
  if (typeof req.seed === 'number') options.seed = req.seed;
  if (typeof req.max_tokens === 'number') options.num_predict = req.max_tokens;
  if (typeof req.stop === 'string') options.stop = [req.stop];
  else if (Array.isArray(req.stop) && req.stop.length > 0) options.stop = [...req.stop];
  if (Object.keys(options).length > 0) body.options = options;
  const format = toFormat(req.response_format);
  if (format !== undefined) body.format = format;
  return body;
}

function toFormat(rf: unknown): string | object | undefined {
  if (typeof rf !== 'object' || rf === null) return undefined;
  const r = rf as { type?: unknown; json_schema?: { schema?: unknown } };
  if (r.type === 'json_object') return 'json';
  if (r.type === 'json_schema') {
    const schema = r.json_schema?.schema;
    return typeof schema === 'object' && schema !== null ? schema : 'json';
  }
  return undefined;
}

function toOllamaMessages(id: string, messages: ChatMessage[]): Message[] {
  const toolNames = new Map<string, string>();
  return messages.map((m, i): Message => {
    const { text, images } = contentOf(id, m.content, i);
    switch (m.role) {
      case 'system':
      case 'developer':
        return { role: 'system', content: text };
      case 'user':
        return images.length > 0 ? { role: 'user', content: text, images } : { role: 'user', content: text };
      case 'assistant': {
        const out: Message = { role: 'assistant', content: text };
        if (m.tool_calls && m.tool_calls.length > 0) {
          out.tool_calls = m.tool_calls.map((c) => {
            toolNames.set(c.id, c.function.name);
            return { function: { name: c.function.name, arguments: parseArguments(id, c, i) } };
          });
        }
        return out;
      }
      case 'tool': {
        const name = m.tool_call_id ? toolNames.get(m.tool_call_id) : undefined;
        const toolName = name ?? m.name;
        return toolName
          ? { role: 'tool', content: text, tool_name: toolName }
          : { role: 'tool', content: text };
      }
      default:
        throw new UpstreamError(id, 'client', `messages[${i}]: unknown role '${String(m.role)}'`, {
          status: 400,
        });
    }
  });
}

/** Text parts joined by newlines; `image_url` parts with data URLs become Ollama's base64 images. */
function contentOf(
  id: string,
  content: ChatMessage['content'],
  i: number,
): { text: string; images: string[] } {
  if (content === null || content === undefined) return { text: '', images: [] };
  if (typeof content === 'string') return { text: content, images: [] };
  const texts: string[] = [];
  const images: string[] = [];
  for (const part of content) {
    if (part.type === 'text' && typeof part.text === 'string') {
      texts.push(part.text);
    } else if (part.type === 'image_url') {
      const raw = part.image_url as { url?: unknown } | string | undefined;
      const url = typeof raw === 'string' ? raw : raw?.url;
      const m = typeof url === 'string' ? /^data:[^;,]+;base64,(.*)$/s.exec(url) : null;
      if (!m) {
        throw new UpstreamError(
          id,
          'unsupported',
          `messages[${i}]: ollama takes images only as base64 data URLs`,
        );
      }
      images.push(m[1]!);
    } else {
      throw new UpstreamError(
        id,
        'unsupported',
        `messages[${i}]: ollama cannot take '${part.type}' content parts`,
      );
    }
  }
  return { text: texts.join('\n'), images };
}

function parseArguments(id: string, c: ToolCall, i: number): Record<string, unknown> {
  const raw = c.function.arguments;
  if (raw === undefined || raw === null || raw === '') return {};
  let v: unknown;
  try {
    v = typeof raw === 'string' ? JSON.parse(raw) : raw;
  } catch {
    throw new UpstreamError(
      id,
      'client',
      `messages[${i}].tool_calls: the arguments of '${c.id}' are not JSON`,
      {
        status: 400,
      },
    );
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) {
    throw new UpstreamError(
      id,
      'client',
      `messages[${i}].tool_calls: the arguments of '${c.id}' are not an object`,
      {
        status: 400,
      },
    );
  }
  return v as Record<string, unknown>;
}

// ---------------------------------------------------------------------------------------------
// Answers: Ollama → OpenAI.

/** A Unix timestamp in seconds (OpenAI's `created`). */
const secondsOf = (clock: Clock) => Math.floor(clock.now() / 1000);

function usageOf(r: Partial<ChatResponse>): Usage {
  const prompt = typeof r.prompt_eval_count === 'number' ? r.prompt_eval_count : 0;
  const completion = typeof r.eval_count === 'number' ? r.eval_count : 0;
  return { prompt_tokens: prompt, completion_tokens: completion, total_tokens: prompt + completion };
}

function finishOf(doneReason: unknown, toolCalls: boolean): Finish {
  if (toolCalls) return 'tool_calls';
  return doneReason === 'length' ? 'length' : 'stop';
}

function toToolCalls(id: string, calls: unknown): ToolCall[] {
  if (calls === undefined || calls === null) return [];
  if (!Array.isArray(calls)) throw new MalformedError('ollama sent tool_calls that are not a list');
  return calls.map((c): ToolCall => {
    const fn = (c as { function?: { name?: unknown; arguments?: unknown } } | null)?.function;
    if (!fn || typeof fn.name !== 'string')
      throw new MalformedError(`${id}: ollama sent a tool call without a name`);
    const args = fn.arguments ?? {};
    const callId = (c as { id?: unknown }).id;
    return {
      id: typeof callId === 'string' && callId ? callId : `call_${rand(12)}`,
      type: 'function',
      function: { name: fn.name, arguments: typeof args === 'string' ? args : JSON.stringify(args) },
    };
  });
}

function messageOfResponse(r: unknown): { content: string; tool_calls?: unknown } {
  const msg = (r as { message?: unknown } | null)?.message;
  if (typeof msg !== 'object' || msg === null) throw new MalformedError('ollama answered without a message');
  const m = msg as { content?: unknown; tool_calls?: unknown };
  if (m.content !== undefined && m.content !== null && typeof m.content !== 'string') {
    throw new MalformedError('ollama answered a message whose content is not text');
  }
  return { content: (m.content as string | undefined) ?? '', tool_calls: m.tool_calls };
}

function toCompletion(id: string, model: string, r: ChatResponse, clock: Clock): ChatCompletion {
  try {
    const msg = messageOfResponse(r);
    const calls = toToolCalls(id, msg.tool_calls);
    const message: ChatCompletion['choices'][number]['message'] = {
      role: 'assistant',
      content: calls.length > 0 && msg.content === '' ? null : msg.content,
    };
    if (calls.length > 0) message.tool_calls = calls;
    return {
      id: `chatcmpl-${rand(12)}`,
      object: 'chat.completion',
      created: secondsOf(clock),
      model,
      choices: [{ index: 0, message, finish_reason: finishOf(r.done_reason, calls.length > 0) }],
      usage: usageOf(r),
    };
  } catch (e) {
    throw new UpstreamError(id, 'malformed', messageOf(e), { cause: e });
  }
}

/**
 * Maps the lines of one stream to chunks: the first chunk's delta carries the role, content
 * and tool calls follow as they come, and the `done` line becomes a last chunk with an empty
 * delta, the finish reason and the usage.
 */
function chunkMapper(id: string, model: string, clock: Clock) {
  const chunkId = `chatcmpl-${rand(12)}`;
  const created = secondsOf(clock);
  let roleSent = false;
  let toolIndex = 0;
  let ended = false;
  const chunk = (delta: ChatChunk['choices'][number]['delta'], finish: Finish, usage?: Usage): ChatChunk => {
    const c: ChatChunk = {
      id: chunkId,
      object: 'chat.completion.chunk',
      created,
      model,
      choices: [{ index: 0, delta, finish_reason: finish }],
    };
    if (usage) c.usage = usage;
    return c;
  };
  const map = function* (line: ChatResponse): Generator<ChatChunk> {
    const msg =
      line.done && (line as { message?: unknown }).message === undefined
        ? { content: '' }
        : messageOfResponse(line);
    const calls = toToolCalls(id, msg.tool_calls);
    if (!roleSent || msg.content !== '' || calls.length > 0) {
      const delta: ChatChunk['choices'][number]['delta'] = {};
      if (!roleSent) delta.role = 'assistant';
      if (msg.content !== '' || (!roleSent && calls.length === 0)) delta.content = msg.content;
      if (calls.length > 0) delta.tool_calls = calls.map((c) => ({ index: toolIndex++, ...c }));
      roleSent = true;
      yield chunk(delta, null);
    }
    if (line.done) {
      ended = true;
      yield chunk({}, finishOf(line.done_reason, toolIndex > 0), usageOf(line));
    }
  };
  return Object.assign(map, { ended: () => ended });
}
