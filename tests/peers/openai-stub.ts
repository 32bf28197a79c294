import { createHash } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

/**
 * A deterministic OpenAI-compatible upstream on 127.0.0.1 speaking the documented wire format:
 * `POST /v1/chat/completions` (JSON `chat.completion`, or SSE `chat.completion.chunk` lines
 * ending with `data: [DONE]`, with a usage chunk when `stream_options.include_usage`),
 * `POST /v1/embeddings`, `GET /v1/models`, errors as `{error:{message,type,param,code}}`.
 *
 * What it answers:
 * - text: `You said: <last user message text>` (streamed one word, with its trailing space, per
 *   chunk); after a tool message: `Tool said: <its content>`. One word is one token; the prompt's
 *   tokens are the words of every message's text.
 * - tool calls: when the request has tools, `tool_choice` is not 'none' and the last message is a
 *   user message mentioning 'weather' (or `tool_choice` is 'required' or names a function), one call
 *   of the named tool, else the first whose name contains 'weather', else the first, with arguments
 *   `{"location":"<city after 'weather in|for'>"}` (default Paris) and id `call_<name>_0`.
 * - `max_tokens`/`max_completion_tokens` cut the words (finish_reason 'length'); `stop` cuts the
 *   text before the first stop string (finish_reason 'stop').
 * - embeddings: `stubEmbedding(text, dims)` per input (dims: `dimensions`, or 8).
 *
 * Every request that reaches it is recorded (refused connections never do).
 */
export interface OpenAIStub {
  /** The API base, `http://127.0.0.1:<port>/v1`. */
  readonly url: string;
  readonly port: number;
  /** Every request that reached the stub, in arrival order. */
  readonly requests: RecordedRequest[];
  /** Sets (or clears, with null) the fault every following request meets. */
  setFault(fault: OpenAIStubFault | null): void;
  /** Resolves once no answer is in progress (every response finished or its connection closed). */
  idle(): Promise<void>;
  /**
   * Holds every following request (after it is recorded, before its fault or answer) until the
   * gate releases it: for tests that need many calls in flight at once, ordered by events.
   * Starting a new gate releases the old one's requests.
   */
  hold(): StubGate;
  /**
   * Holds every streamed piece (token) of the following answers at a gate until released: a
   * test lets tokens out one at a time (`release(1)`) and sees each arrive; `release()` opens it.
   */
  drip(): StubGate;
  stop(): Promise<void>;
}

/** Requests held by `OpenAIStub.hold()`. */
export interface StubGate {
  /** Requests waiting at the gate now. */
  readonly held: number;
  /** Resolves once `n` requests wait at the gate (at once). */
  whenHeld(n: number): Promise<void>;
  /** Lets the first `n` waiting requests go on (all when omitted); with no `n`, the gate opens for good. */
  release(n?: number): void;
}

/** One request as the stub received it (header names lower-case; body parsed when JSON). */
export interface RecordedRequest {
  method: string;
  path: string;
  headers: Record<string, string>;
  body: unknown;
}

/**
 * What goes wrong upstream:
 * - `refuse`: connections are closed as soon as they are accepted (no request is read or recorded);
 * - `status500` / `status429`: the provider's error body (429 with `retry-after: 1`);
 * - `{ delayHeaders: ms }`: the answer's headers are held back `ms` milliseconds;
 * - `stallAfterFirstChunk`: the first chunk (JSON: the first bytes) is sent, then nothing more;
 * - `malformed`: 200 with a body that is not JSON (SSE: a `data:` line that is not JSON).
 */
export type StubFault =
  | 'refuse'
  | 'status500'
  | 'status429'
  | 'stallAfterFirstChunk'
  | 'malformed'
  | { delayHeaders: number };

/**
 * The faults above (shared with the Anthropic stub), and ones of this stub alone:
 * - `status502Html`: 502 with an HTML body, as a reverse proxy in front of a dead server answers;
 * - `errorMidStream`: a stream sends its first chunk, then an `{"error":{...}}` event
 *   (`server_error`, as vLLM does when generation fails), then `data: [DONE]`;
 * - `splitEvents`: a stream as usual, framed awkwardly yet validly: CRLF line ends, a comment
 *   first, and each event cut in two writes a few milliseconds apart (the first cut inside a
 *   multi-byte character when the event has one).
 * Streaming faults leave whole (non-streamed) answers alone.
 */
export type OpenAIStubFault = StubFault | 'status502Html' | 'errorMidStream' | 'splitEvents';

/** The fault that delays the answer's headers by `ms`. */
export const delayHeaders = (ms: number): StubFault => ({ delayHeaders: ms });

/** What `startOpenAIStub` takes. */
export interface OpenAIStubOptions {
  /** When set, every request must carry `Authorization: Bearer <apiKey>` (401 otherwise). */
  apiKey?: string;
  /** The ids `GET /v1/models` lists. */
  models?: string[];
}

/** The fixed `created` timestamp of every object the stub makes. */
export const STUB_CREATED = 1_700_000_000;

/** The stub's deterministic embedding of `text`: `dims` values in [-1, 1], L2-normalised. */
export function stubEmbedding(text: string, dims = 8): number[] {
  const raw: number[] = [];
  for (let block = 0; raw.length < dims; block++) {
    const h = createHash('sha256').update(`${block}\u0000${text}`).digest();
    for (const b of h) {
      if (raw.length === dims) break;
      raw.push(b / 127.5 - 1);
    }
  }
  const norm = Math.sqrt(raw.reduce((s, v) => s + v * v, 0)) || 1;
  return raw.map((v) => v / norm);
}

/** Word-tokens: one per run of non-space characters. */
export function stubTokens(text: string): number {
  return text.split(/\s+/).filter(Boolean).length;
}

type Msg = { role?: unknown; content?: unknown; tool_calls?: unknown };
type Tool = { type?: unknown; function?: { name?: unknown } };

/** The text of an OpenAI message's content (a string, or the text of its text parts). */
function textOf(content: unknown): string {
  if (typeof content === 'string') return content;
  if (Array.isArray(content)) {
    return content
      .filter((p): p is { type: 'text'; text: string } => p?.type === 'text' && typeof p.text === 'string')
      .map((p) => p.text)
      .join('');
  }
  return '';
}

function openAIError(message: string, type: string, code: string | null = null, param: string | null = null) {
  return { error: { message, type, param, code } };
}

/** Starts the stub on 127.0.0.1 and a free port. */
export async function startOpenAIStub(opts: OpenAIStubOptions = {}): Promise<OpenAIStub> {
  const requests: RecordedRequest[] = [];
  const sockets = new Set<Socket>();
  const timers = new Set<ReturnType<typeof setTimeout>>();
  const inflight = new Set<ServerResponse>();
  let idleWaiters: (() => void)[] = [];
  let fault: OpenAIStubFault | null = null;
  let seq = 0;
  let gate: (StubGate & { wait(): Promise<void> }) | null = null;
  let drip: (StubGate & { wait(): Promise<void> }) | null = null;

  /** A gate: waiters queue at `wait()` until `release(n)` lets n go (no n: open for good). */
  const makeGate = (onOpen: () => void): StubGate & { wait(): Promise<void> } => {
    const waiting: (() => void)[] = [];
    let watchers: { n: number; resolve: () => void }[] = [];
    let open = false;
    return {
      get held() {
        return waiting.length;
      },
      wait() {
        if (open) return Promise.resolve();
        return new Promise<void>((resolve) => {
          waiting.push(resolve);
          const ready = watchers.filter((w) => waiting.length >= w.n);
          watchers = watchers.filter((w) => waiting.length < w.n);
          for (const w of ready) w.resolve();
        });
      },
      whenHeld(n: number) {
        if (waiting.length >= n) return Promise.resolve();
        return new Promise<void>((resolve) => watchers.push({ n, resolve }));
      },
      release(n?: number) {
        if (n === undefined) {
          open = true;
          onOpen();
        }
        for (const go of waiting.splice(0, n ?? waiting.length)) go();
      },
    };
  };
  const models = opts.models ?? ['gpt-4o-mini', 'text-embedding-3-small'];

  const sleep = (ms: number) =>
    new Promise<void>((resolve) => {
      const t = setTimeout(() => {
        timers.delete(t);
        resolve();
      }, ms);
      timers.add(t);
    });

  const json = (res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) => {
    const text = JSON.stringify(body);
    res.writeHead(status, {
      'content-type': 'application/json',
      'content-length': String(Buffer.byteLength(text)),
      'x-request-id': `req_stub_${seq}`,
      ...headers,
    });
    res.end(text);
  };

  const readBody = (req: IncomingMessage) =>
    new Promise<string>((resolve, reject) => {
      const parts: Buffer[] = [];
      req.on('data', (c: Buffer) => parts.push(c));
      req.on('end', () => resolve(Buffer.concat(parts).toString('utf8')));
      req.on('error', reject);
    });

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (fault === 'refuse') {
      req.socket.destroy();
      return;
    }
    const url = new URL(req.url ?? '/', 'http://stub');
    const raw = await readBody(req);
    let body: unknown = raw.length > 0 ? raw : undefined;
    let badJson = false;
    if (raw.length > 0 && (req.headers['content-type'] ?? '').includes('json')) {
      try {
        body = JSON.parse(raw);
      } catch {
        badJson = true;
      }
    }
    const headers: Record<string, string> = {};
    for (const [k, v] of Object.entries(req.headers)) {
      if (v !== undefined) headers[k] = Array.isArray(v) ? v.join(', ') : v;
    }
    requests.push({ method: req.method ?? 'GET', path: url.pathname, headers, body });
    // Ids count the recorded requests, so a test that empties `requests` knows them.
    seq = requests.length;
    const n = seq;

    if (gate) await gate.wait();
    const f = fault;
    if (f && typeof f === 'object') await sleep(f.delayHeaders);
    if (f === 'status500') {
      return json(
        res,
        500,
        openAIError(
          'The server had an error while processing your request. Sorry about that!',
          'server_error',
        ),
      );
    }
    if (f === 'status502Html') {
      res.writeHead(502, { 'content-type': 'text/html' });
      res.end('<html><head><title>502 Bad Gateway</title></head><body><center>nginx</center></body></html>');
      return;
    }
    if (f === 'status429') {
      return json(
        res,
        429,
        openAIError(
          'Rate limit reached for requests per min (RPM): Limit 3, Used 3, Requested 1. Please try again in 1s.',
          'requests',
          'rate_limit_exceeded',
        ),
        { 'retry-after': '1', 'x-ratelimit-remaining-requests': '0' },
      );
    }

    if (opts.apiKey !== undefined) {
      const auth = headers.authorization;
      if (!auth) {
        return json(
          res,
          401,
          openAIError(
            "You didn't provide an API key. You need to provide your API key in an Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
            'invalid_request_error',
          ),
        );
      }
      if (auth !== `Bearer ${opts.apiKey}`) {
        const given = auth.replace(/^Bearer\s+/i, '');
        return json(
          res,
          401,
          openAIError(
            `Incorrect API key provided: ${given.slice(0, 3)}***${given.slice(-4)}. You can find your API key at https://platform.openai.com/account/api-keys.`,
            'invalid_request_error',
            'invalid_api_key',
          ),
        );
      }
    }
    if (badJson) {
      return json(
        res,
        400,
        openAIError(
          "We could not parse the JSON body of your request. (HINT: This likely means you aren't using your HTTP library correctly. The OpenAI API expects a JSON payload, but what was sent was not valid JSON.)",
          'invalid_request_error',
        ),
      );
    }

    const route = `${req.method} ${url.pathname}`;
    if (route === 'GET /v1/models') {
      if (f === 'malformed') return malformedJson(res);
      return json(res, 200, {
        object: 'list',
        data: models.map((id) => ({ id, object: 'model', created: STUB_CREATED, owned_by: 'soulfra-stub' })),
      });
    }
    if (route === 'POST /v1/embeddings') return embeddings(res, body as Record<string, unknown>, f);
    if (route === 'POST /v1/chat/completions') return chat(res, body as Record<string, unknown>, f, n);
    return json(
      res,
      404,
      openAIError(`Invalid URL (${req.method} ${url.pathname})`, 'invalid_request_error'),
    );
  }

  function malformedJson(res: ServerResponse) {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end('<html><body>502 Bad Gateway</body></html> this is not JSON');
  }

  function embeddings(
    res: ServerResponse,
    body: Record<string, unknown> | undefined,
    f: OpenAIStubFault | null,
  ) {
    const input = body?.input;
    const inputs = typeof input === 'string' ? [input] : input;
    if (!body || typeof body.model !== 'string') {
      return json(
        res,
        400,
        openAIError('you must provide a model parameter', 'invalid_request_error', null, 'model'),
      );
    }
    if (!Array.isArray(inputs) || inputs.length === 0 || !inputs.every((s) => typeof s === 'string')) {
      return json(
        res,
        400,
        openAIError(
          "'input' : input must be a string or an array of strings",
          'invalid_request_error',
          null,
          'input',
        ),
      );
    }
    if (f === 'malformed') return malformedJson(res);
    if (f === 'stallAfterFirstChunk') {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.write('{"object":"list","data":[');
      return;
    }
    const dims = typeof body.dimensions === 'number' ? body.dimensions : 8;
    const base64 = body.encoding_format === 'base64';
    const data = (inputs as string[]).map((text, index) => {
      const v = stubEmbedding(text, dims);
      return {
        object: 'embedding',
        index,
        embedding: base64 ? Buffer.from(new Float32Array(v).buffer).toString('base64') : v,
      };
    });
    const tokens = (inputs as string[]).reduce((s, t) => s + stubTokens(t), 0);
    return json(res, 200, {
      object: 'list',
      data,
      model: body.model,
      usage: { prompt_tokens: tokens, total_tokens: tokens },
    });
  }

  function chat(
    res: ServerResponse,
    body: Record<string, unknown> | undefined,
    f: OpenAIStubFault | null,
    n: number,
  ): void | Promise<void> {
    if (!body || typeof body.model !== 'string') {
      return json(
        res,
        400,
        openAIError('you must provide a model parameter', 'invalid_request_error', null, 'model'),
      );
    }
    const messages = body.messages;
    if (!Array.isArray(messages) || messages.length === 0) {
      return json(
        res,
        400,
        openAIError("[] is too short - 'messages'", 'invalid_request_error', 'empty_array', 'messages'),
      );
    }
    const msgs = messages as Msg[];
    const last = msgs[msgs.length - 1]!;
    const lastUser = [...msgs].reverse().find((m) => m.role === 'user');
    const tools = Array.isArray(body.tools) ? (body.tools as Tool[]) : [];
    const choice = body.tool_choice;
    const named =
      choice && typeof choice === 'object'
        ? (choice as { function?: { name?: string } }).function?.name
        : undefined;
    const wantsTool =
      tools.length > 0 &&
      choice !== 'none' &&
      (choice === 'required' ||
        named !== undefined ||
        (last.role === 'user' && /weather/i.test(textOf(last.content))));

    const promptTokens = msgs.reduce((s, m) => s + stubTokens(textOf(m.content)), 0);
    const id = `chatcmpl-stub-${n}`;
    const model = body.model;
    const stream = body.stream === true;
    const includeUsage =
      stream && (body.stream_options as { include_usage?: unknown } | undefined)?.include_usage === true;

    let finish: 'stop' | 'length' | 'tool_calls' = 'stop';
    let text: string | null = null;
    let pieces: string[] = [];
    let call: { id: string; name: string; arguments: string } | null = null;
    if (wantsTool) {
      const toolNames = tools.map((t) => String(t.function?.name ?? ''));
      const name = named ?? toolNames.find((n) => n.includes('weather')) ?? toolNames[0]!;
      const city = /weather\s+(?:in|for|at)\s+([A-Za-z][A-Za-z -]*?)\s*(?:[?.!,]|$)/i.exec(
        textOf(lastUser?.content),
      )?.[1];
      const args = JSON.stringify({ location: city ?? 'Paris' });
      call = { id: `call_${name}_0`, name, arguments: args };
      pieces = args.match(/.{1,8}/gs) ?? [];
      finish = 'tool_calls';
    } else {
      text =
        last.role === 'tool'
          ? `Tool said: ${textOf(last.content)}`
          : `You said: ${textOf(lastUser?.content)}`;
      const stops = typeof body.stop === 'string' ? [body.stop] : Array.isArray(body.stop) ? body.stop : [];
      let cut = text.length;
      for (const s of stops) {
        const at = typeof s === 'string' && s.length > 0 ? text.indexOf(s) : -1;
        if (at >= 0 && at < cut) cut = at;
      }
      text = text.slice(0, cut);
      pieces = text.match(/\S+\s*|\s+/g) ?? [];
      const max =
        typeof body.max_completion_tokens === 'number' ? body.max_completion_tokens : body.max_tokens;
      if (typeof max === 'number' && pieces.length > max) {
        pieces = pieces.slice(0, max);
        text = pieces.join('');
        finish = 'length';
      }
    }
    const usage = {
      prompt_tokens: promptTokens,
      completion_tokens: pieces.length,
      total_tokens: promptTokens + pieces.length,
    };

    if (!stream) {
      if (f === 'malformed') return malformedJson(res);
      const completion = {
        id,
        object: 'chat.completion',
        created: STUB_CREATED,
        model,
        system_fingerprint: 'fp_stub',
        choices: [
          {
            index: 0,
            message: {
              role: 'assistant',
              content: text,
              refusal: null,
              ...(call
                ? {
                    tool_calls: [
                      {
                        id: call.id,
                        type: 'function',
                        function: { name: call.name, arguments: call.arguments },
                      },
                    ],
                  }
                : {}),
            },
            logprobs: null,
            finish_reason: finish,
          },
        ],
        usage,
      };
      if (f === 'stallAfterFirstChunk') {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.write(JSON.stringify(completion).slice(0, 20));
        return;
      }
      return json(res, 200, completion);
    }

    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache',
      connection: 'keep-alive',
      'x-request-id': `req_stub_${n}`,
    });
    const frames: string[] = [];
    const send = (data: unknown) => {
      const frame = `data: ${typeof data === 'string' ? data : JSON.stringify(data)}\n\n`;
      if (f === 'splitEvents') frames.push(frame);
      else res.write(frame);
    };
    if (f === 'malformed') {
      send(`{"id":"${id}","object":"chat.completion.chunk","choices":[{"delta":{"content":"You`);
      send('[DONE]');
      res.end();
      return;
    }
    const chunk = (delta: Record<string, unknown>, finishReason: string | null) => ({
      id,
      object: 'chat.completion.chunk',
      created: STUB_CREATED,
      model,
      system_fingerprint: 'fp_stub',
      choices: [{ index: 0, delta, logprobs: null, finish_reason: finishReason }],
      ...(includeUsage ? { usage: null } : {}),
    });
    send(
      chunk(
        call
          ? {
              role: 'assistant',
              content: null,
              tool_calls: [
                { index: 0, id: call.id, type: 'function', function: { name: call.name, arguments: '' } },
              ],
            }
          : { role: 'assistant', content: '', refusal: null },
        null,
      ),
    );
    if (f === 'stallAfterFirstChunk') return;
    if (f === 'errorMidStream') {
      send(openAIError('The model failed while generating; retry later', 'server_error'));
      send('[DONE]');
      res.end();
      return;
    }
    const piece = (p: string) =>
      send(chunk(call ? { tool_calls: [{ index: 0, function: { arguments: p } }] } : { content: p }, null));
    const finishStream = () => {
      send(chunk({}, finish));
      if (includeUsage) {
        send({
          id,
          object: 'chat.completion.chunk',
          created: STUB_CREATED,
          model,
          system_fingerprint: 'fp_stub',
          choices: [],
          usage,
        });
      }
      send('[DONE]');
      if (f === 'splitEvents') return writeSplit(res, frames);
      res.end();
    };
    const dripping = drip;
    if (dripping && f !== 'splitEvents') {
      // Each piece waits at the drip gate: a test lets the tokens out one by one.
      return (async () => {
        for (const p of pieces) {
          await dripping.wait();
          if (res.destroyed) return;
          piece(p);
        }
        finishStream();
      })();
    }
    for (const p of pieces) piece(p);
    return finishStream();
  }

  /** Writes SSE frames with CRLF line ends, a comment first, each frame in two pieces. */
  async function writeSplit(res: ServerResponse, frames: string[]): Promise<void> {
    res.write(': the stub frames this stream awkwardly\r\n\r\n');
    for (const frame of frames) {
      const bytes = Buffer.from(frame.replace(/\n/g, '\r\n'), 'utf8');
      const wide = bytes.findIndex((b) => b >= 0x80);
      const cut = wide >= 0 ? wide + 1 : bytes.length >> 1;
      res.write(bytes.subarray(0, cut));
      await sleep(2);
      res.write(bytes.subarray(cut));
    }
    res.end();
  }

  const server = createServer((req, res) => {
    res.on('error', () => {});
    inflight.add(res);
    res.on('close', () => {
      inflight.delete(res);
      if (inflight.size === 0) {
        for (const w of idleWaiters) w();
        idleWaiters = [];
      }
    });
    handle(req, res).catch(() => {
      if (!res.headersSent) json(res, 500, openAIError('stub failure', 'server_error'));
      else res.destroy();
    });
  });
  server.on('connection', (socket: Socket) => {
    socket.on('error', () => {});
    if (fault === 'refuse') {
      socket.destroy();
      return;
    }
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;

  return {
    url: `http://127.0.0.1:${port}/v1`,
    port,
    requests,
    setFault(next) {
      fault = next;
      // Kept-alive connections would let requests through a refusal.
      if (next === 'refuse') for (const s of sockets) s.destroy();
    },
    hold() {
      gate?.release();
      const g = makeGate(() => {
        if (gate === g) gate = null;
      });
      gate = g;
      return g;
    },
    drip() {
      drip?.release();
      const g = makeGate(() => {
        if (drip === g) drip = null;
      });
      drip = g;
      return g;
    },
    idle() {
      return inflight.size === 0
        ? Promise.resolve()
        : new Promise<void>((resolve) => idleWaiters.push(resolve));
    },
    async stop() {
      for (const t of timers) clearTimeout(t);
      timers.clear();
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
