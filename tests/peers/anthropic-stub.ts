import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { type RecordedRequest, type StubFault, stubTokens } from './openai-stub.ts';

export { delayHeaders, type RecordedRequest } from './openai-stub.ts';

/**
 * A deterministic upstream speaking Anthropic's Messages API on 127.0.0.1: `POST /v1/messages`
 * (headers `x-api-key` or `Authorization: Bearer`, and `anthropic-version`; JSON `message`, or with `stream: true` the SSE events
 * `message_start`, `content_block_start`, `ping`, `content_block_delta` (`text_delta` /
 * `input_json_delta`), `content_block_stop`, `message_delta`, `message_stop`), `GET /v1/models`,
 * errors as `{type:'error', error:{type, message}}`.
 *
 * It validates the request as the API does: `max_tokens` is required, roles are only user and
 * assistant (system is top-level), `tool_use` blocks only in assistant turns and each answered by
 * a `tool_result` in the very next (user) turn, tools need an `input_schema`, temperature is 0..1.
 *
 * What it answers:
 * - text: `You said: <text of the last user turn>` (one word, with its trailing space, per
 *   delta); when the last user turn carries tool results: `Tool said: <their text>`. One word is
 *   one token; input tokens are the words of `system` and of every text and tool result.
 * - tool use: when the request has tools and `tool_choice` is not none, and the last user turn
 *   mentions 'weather' (auto: after a text block `Let me check the weather.`), or `tool_choice` is
 *   any/tool (no text block): one `tool_use` block, id `toolu_<name>_0`, of the named tool, else the
 *   first whose name contains 'weather', else the first, input `{location: <city after 'weather
 *   in|for'> or Paris}`, stop_reason `tool_use`.
 * - `max_tokens` cuts the words (stop_reason `max_tokens`); `stop_sequences` cut the text before the
 *   first one found (stop_reason `stop_sequence`, `stop_sequence` set).
 */
export interface AnthropicStub {
  /** The API base, `http://127.0.0.1:<port>` (the SDK adds `/v1/...`). */
  readonly url: string;
  readonly port: number;
  /** Every request that reached the stub, in arrival order. */
  readonly requests: RecordedRequest[];
  /** Sets (or clears, with null) the fault every following request meets. */
  setFault(fault: AnthropicStubFault | null): void;
  /** Resolves once no answer is in progress (every response finished or its connection closed). */
  idle(): Promise<void>;
  stop(): Promise<void>;
}

/**
 * The faults of the OpenAI stub (`refuse`, `status500` → 500 `api_error`, `status429` → 429
 * `rate_limit_error` with `retry-after: 1`, `{delayHeaders}`, `stallAfterFirstChunk` (stream: after
 * `message_start`), `malformed`), plus `status529` (`overloaded_error`) and `overloadedMidStream`
 * (streams: an `error` event of type `overloaded_error` after the first text delta).
 */
export type AnthropicStubFault = StubFault | 'status529' | 'overloadedMidStream';

/** What `startAnthropicStub` takes. */
export interface AnthropicStubOptions {
  /**
   * When set, every request must carry the key, as `x-api-key: <apiKey>` or as
   * `Authorization: Bearer <apiKey>` (what @anthropic-ai/sdk 1.x sends); 401 otherwise.
   */
  apiKey?: string;
  /** The ids `GET /v1/models` lists. */
  models?: string[];
}

type Block = { type?: unknown; text?: unknown; id?: unknown; tool_use_id?: unknown; content?: unknown };
type Turn = { role?: unknown; content?: unknown };

function anthropicError(type: string, message: string) {
  return { type: 'error', error: { type, message } };
}

function blocksOf(content: unknown): Block[] {
  if (typeof content === 'string') return [{ type: 'text', text: content }];
  return Array.isArray(content) ? (content as Block[]) : [];
}

/** The text of text blocks (and of tool results' content, which is a string or text blocks). */
function textOf(content: unknown): string {
  return blocksOf(content)
    .map((b) =>
      b.type === 'text' && typeof b.text === 'string'
        ? b.text
        : b.type === 'tool_result'
          ? textOf(b.content ?? '')
          : '',
    )
    .join('');
}

/** The first problem with a Messages request, as the API words it, or null. */
const FIELDS = new Set([
  'model',
  'max_tokens',
  'messages',
  'system',
  'stop_sequences',
  'stream',
  'tools',
  'tool_choice',
  'metadata',
  'thinking',
  'temperature',
  'top_p',
  'top_k',
  'service_tier',
  'output_config',
  'container',
  'cache_control',
  'inference_geo',
  'speed',
  'diagnostics',
]);

function invalid(body: Record<string, unknown>): string | null {
  for (const k of Object.keys(body)) if (!FIELDS.has(k)) return `${k}: Extra inputs are not permitted`;
  if (typeof body.model !== 'string') return 'model: Field required';
  if (body.max_tokens === undefined) return 'max_tokens: Field required';
  if (!Number.isInteger(body.max_tokens) || (body.max_tokens as number) < 1) {
    return 'max_tokens: Input should be a valid integer greater than or equal to 1';
  }
  if (!Array.isArray(body.messages)) return 'messages: Field required';
  if (body.messages.length === 0) return 'messages: at least one message is required';
  if (
    body.temperature !== undefined &&
    (typeof body.temperature !== 'number' || body.temperature < 0 || body.temperature > 1)
  ) {
    return 'temperature: range: 0..1';
  }
  if (body.system !== undefined && typeof body.system !== 'string') {
    if (
      !Array.isArray(body.system) ||
      !body.system.every((b: Block) => b?.type === 'text' && typeof b.text === 'string')
    ) {
      return 'system: Input should be a valid string or a list of text blocks';
    }
  }
  if (body.stop_sequences !== undefined) {
    if (!Array.isArray(body.stop_sequences) || !body.stop_sequences.every((s) => typeof s === 'string')) {
      return 'stop_sequences: Input should be a valid list of strings';
    }
  }
  if (body.tools !== undefined) {
    if (!Array.isArray(body.tools)) return 'tools: Input should be a valid list';
    for (const [i, t] of (body.tools as Record<string, unknown>[]).entries()) {
      if (typeof t?.name !== 'string' || !/^[a-zA-Z0-9_-]{1,128}$/.test(t.name)) {
        return `tools.${i}.custom.name: String should match pattern '^[a-zA-Z0-9_-]{1,128}$'`;
      }
      const schema = t.input_schema as { type?: unknown } | undefined;
      if (!schema) return `tools.${i}.custom.input_schema: Field required`;
      if (schema.type !== 'object') return `tools.${i}.custom.input_schema.type: Input should be 'object'`;
    }
  }
  if (body.tool_choice !== undefined) {
    const c = body.tool_choice as { type?: unknown; name?: unknown };
    if (!['auto', 'any', 'tool', 'none'].includes(String(c?.type))) {
      return "tool_choice: Input tag does not match any of the expected tags: 'auto', 'any', 'tool', 'none'";
    }
    if (c.type === 'tool' && typeof c.name !== 'string') return 'tool_choice.tool.name: Field required';
  }
  const turns = body.messages as Turn[];
  for (const [i, m] of turns.entries()) {
    if (m?.role !== 'user' && m?.role !== 'assistant') {
      return `messages.${i}.role: Input should be 'user' or 'assistant'`;
    }
    if (typeof m.content !== 'string' && !Array.isArray(m.content)) {
      return `messages.${i}.content: Input should be a valid string or a list of content blocks`;
    }
    for (const [j, b] of blocksOf(m.content).entries()) {
      if (!['text', 'image', 'document', 'tool_use', 'tool_result'].includes(String(b?.type))) {
        return `messages.${i}.content.${j}.type: Input tag '${String(b?.type)}' does not match any of the expected tags`;
      }
      if (b.type === 'text' && typeof b.text !== 'string')
        return `messages.${i}.content.${j}.text.text: Field required`;
      if (b.type === 'tool_use' && m.role !== 'assistant') {
        return `messages.${i}.content.${j}: \`tool_use\` blocks can only be in \`assistant\` messages`;
      }
      if (b.type === 'tool_result' && m.role !== 'user') {
        return `messages.${i}.content.${j}: \`tool_result\` blocks can only be in \`user\` messages`;
      }
    }
    // Every tool_use is answered in the very next turn, and every tool_result answers the turn before.
    const uses = blocksOf(m.content)
      .filter((b) => b.type === 'tool_use')
      .map((b) => String(b.id));
    if (uses.length > 0) {
      const next = turns[i + 1];
      const answered = new Set(
        blocksOf(next?.content)
          .filter((b) => b.type === 'tool_result')
          .map((b) => String(b.tool_use_id)),
      );
      const missing = uses.filter((id) => !answered.has(id));
      if (next && missing.length > 0) {
        return `messages.${i}: \`tool_use\` ids were found without \`tool_result\` blocks immediately after: ${missing.join(', ')}. Each \`tool_use\` block must have a corresponding \`tool_result\` block in the next message.`;
      }
    }
    const results = blocksOf(m.content)
      .filter((b) => b.type === 'tool_result')
      .map((b) => String(b.tool_use_id));
    if (results.length > 0) {
      const prev = new Set(
        blocksOf(turns[i - 1]?.role === 'assistant' ? turns[i - 1]?.content : [])
          .filter((b) => b.type === 'tool_use')
          .map((b) => String(b.id)),
      );
      const stray = results.filter((id) => !prev.has(id));
      if (stray.length > 0) {
        return `messages.${i}.content.0: unexpected \`tool_use_id\` found in \`tool_result\` blocks: ${stray.join(', ')}. Each \`tool_result\` block must have a corresponding \`tool_use\` block in the previous message.`;
      }
    }
  }
  return null;
}

/** Starts the stub on 127.0.0.1 and a free port. */
export async function startAnthropicStub(opts: AnthropicStubOptions = {}): Promise<AnthropicStub> {
  const requests: RecordedRequest[] = [];
  const sockets = new Set<Socket>();
  const timers = new Set<ReturnType<typeof setTimeout>>();
  const inflight = new Set<ServerResponse>();
  let idleWaiters: (() => void)[] = [];
  let fault: AnthropicStubFault | null = null;
  let seq = 0;
  const models = opts.models ?? ['claude-haiku-4-5', 'claude-opus-4-1'];

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
      'request-id': `req_stub_${seq}`,
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

  function malformedJson(res: ServerResponse) {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end('<html><body>502 Bad Gateway</body></html> this is not JSON');
  }

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

    const f = fault;
    if (f && typeof f === 'object') await sleep(f.delayHeaders);
    if (f === 'status500') return json(res, 500, anthropicError('api_error', 'Internal server error'));
    if (f === 'status529') return json(res, 529, anthropicError('overloaded_error', 'Overloaded'));
    if (f === 'status429') {
      return json(
        res,
        429,
        anthropicError(
          'rate_limit_error',
          'This request would exceed the rate limit for your organization of 50 requests per minute.',
        ),
        { 'retry-after': '1', 'anthropic-ratelimit-requests-remaining': '0' },
      );
    }
    if (opts.apiKey !== undefined) {
      // The key travels as `x-api-key`, or (as @anthropic-ai/sdk 1.x sends it) as a bearer token.
      const bearer = /^Bearer\s+(.+)$/i.exec(headers.authorization ?? '')?.[1];
      const given = headers['x-api-key'] ?? bearer;
      if (given === undefined) {
        return json(res, 401, anthropicError('authentication_error', 'x-api-key header is required'));
      }
      if (given !== opts.apiKey)
        return json(res, 401, anthropicError('authentication_error', 'invalid x-api-key'));
    }
    if (!headers['anthropic-version']) {
      return json(res, 400, anthropicError('invalid_request_error', 'anthropic-version: header is required'));
    }
    if (badJson) {
      return json(
        res,
        400,
        anthropicError('invalid_request_error', 'There was an error parsing the body as JSON'),
      );
    }
    const route = `${req.method} ${url.pathname}`;
    if (route === 'GET /v1/models') {
      if (f === 'malformed') return malformedJson(res);
      const data = models.map((id) => ({
        type: 'model',
        id,
        display_name: id,
        created_at: '2025-01-01T00:00:00Z',
      }));
      return json(res, 200, {
        data,
        has_more: false,
        first_id: models[0] ?? null,
        last_id: models.at(-1) ?? null,
      });
    }
    if (route === 'POST /v1/messages') return messages(res, (body ?? {}) as Record<string, unknown>, f, n);
    return json(res, 404, anthropicError('not_found_error', 'Not found'));
  }

  function messages(
    res: ServerResponse,
    body: Record<string, unknown>,
    f: AnthropicStubFault | null,
    n: number,
  ) {
    const problem = invalid(body);
    if (problem) return json(res, 400, anthropicError('invalid_request_error', problem));
    const turns = body.messages as Turn[];
    const lastUser = [...turns].reverse().find((m) => m.role === 'user');
    const lastBlocks = blocksOf(lastUser?.content);
    const afterTool = lastBlocks.some((b) => b.type === 'tool_result');
    const tools = Array.isArray(body.tools) ? (body.tools as { name: string }[]) : [];
    const choice = (body.tool_choice ?? { type: 'auto' }) as { type: string; name?: string };
    const userText = textOf(lastUser?.content);
    const forced = choice.type === 'any' || choice.type === 'tool';
    const wantsTool =
      tools.length > 0 && choice.type !== 'none' && (forced || (!afterTool && /weather/i.test(userText)));
    const model = body.model as string;
    const id = `msg_stub_${n}`;
    const maxTokens = body.max_tokens as number;

    const inputTokens =
      stubTokens(typeof body.system === 'string' ? body.system : textOf(body.system)) +
      turns.reduce((s, m) => s + stubTokens(textOf(m.content)), 0);

    type OutBlock =
      | { type: 'text'; text: string; pieces: string[] }
      | { type: 'tool_use'; id: string; name: string; input: Record<string, unknown>; pieces: string[] };
    const blocks: OutBlock[] = [];
    let stopReason: 'end_turn' | 'max_tokens' | 'tool_use' | 'stop_sequence' = 'end_turn';
    let stopSequence: string | null = null;
    if (wantsTool) {
      const name =
        (choice.type === 'tool' ? choice.name : undefined) ??
        tools.map((t) => t.name).find((n) => n.includes('weather')) ??
        tools[0]!.name;
      if (!forced) {
        const pre = 'Let me check the weather.';
        blocks.push({ type: 'text', text: pre, pieces: pre.match(/\S+\s*/g) ?? [] });
      }
      const city = /weather\s+(?:in|for|at)\s+([A-Za-z][A-Za-z -]*?)\s*(?:[?.!,]|$)/i.exec(userText)?.[1];
      const input = { location: city ?? 'Paris' };
      blocks.push({
        type: 'tool_use',
        id: `toolu_${name}_0`,
        name,
        input,
        pieces: JSON.stringify(input).match(/.{1,8}/gs) ?? [],
      });
      stopReason = 'tool_use';
    } else {
      let text = afterTool
        ? `Tool said: ${textOf(lastBlocks.filter((b) => b.type === 'tool_result'))}`
        : `You said: ${userText}`;
      let cut = text.length;
      for (const s of (body.stop_sequences as string[] | undefined) ?? []) {
        const at = s.length > 0 ? text.indexOf(s) : -1;
        if (at >= 0 && at < cut) {
          cut = at;
          stopSequence = s;
        }
      }
      if (stopSequence !== null) {
        text = text.slice(0, cut);
        stopReason = 'stop_sequence';
      }
      let pieces: string[] = text.match(/\S+\s*|\s+/g) ?? [];
      if (pieces.length > maxTokens) {
        pieces = pieces.slice(0, maxTokens);
        text = pieces.join('');
        stopReason = 'max_tokens';
        stopSequence = null;
      }
      blocks.push({ type: 'text', text, pieces });
    }
    const outputTokens = blocks.reduce((s, b) => s + b.pieces.length, 0);
    const usage = {
      input_tokens: inputTokens,
      output_tokens: outputTokens,
      cache_creation_input_tokens: 0,
      cache_read_input_tokens: 0,
      service_tier: 'standard',
    };
    const content = blocks.map((b) =>
      b.type === 'text'
        ? { type: 'text', text: b.text }
        : { type: 'tool_use', id: b.id, name: b.name, input: b.input },
    );

    if (body.stream !== true) {
      if (f === 'malformed') return malformedJson(res);
      const message = {
        id,
        type: 'message',
        role: 'assistant',
        model,
        content,
        stop_reason: stopReason,
        stop_sequence: stopSequence,
        usage,
      };
      if (f === 'stallAfterFirstChunk') {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.write(JSON.stringify(message).slice(0, 20));
        return;
      }
      return json(res, 200, message);
    }

    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache',
      connection: 'keep-alive',
      'request-id': `req_stub_${n}`,
    });
    const send = (event: string, data: unknown) =>
      res.write(`event: ${event}\ndata: ${typeof data === 'string' ? data : JSON.stringify(data)}\n\n`);
    if (f === 'malformed') {
      send('message_start', `{"type":"message_start","message":{"id":"${id}",`);
      res.end();
      return;
    }
    send('message_start', {
      type: 'message_start',
      message: {
        id,
        type: 'message',
        role: 'assistant',
        model,
        content: [],
        stop_reason: null,
        stop_sequence: null,
        usage: { ...usage, output_tokens: 1 },
      },
    });
    if (f === 'stallAfterFirstChunk') return;
    for (const [index, b] of blocks.entries()) {
      send('content_block_start', {
        type: 'content_block_start',
        index,
        content_block:
          b.type === 'text'
            ? { type: 'text', text: '' }
            : { type: 'tool_use', id: b.id, name: b.name, input: {} },
      });
      if (index === 0) send('ping', { type: 'ping' });
      for (const p of b.pieces) {
        send('content_block_delta', {
          type: 'content_block_delta',
          index,
          delta:
            b.type === 'text'
              ? { type: 'text_delta', text: p }
              : { type: 'input_json_delta', partial_json: p },
        });
        if (f === 'overloadedMidStream') {
          send('error', anthropicError('overloaded_error', 'Overloaded'));
          res.end();
          return;
        }
      }
      send('content_block_stop', { type: 'content_block_stop', index });
    }
    send('message_delta', {
      type: 'message_delta',
      delta: { stop_reason: stopReason, stop_sequence: stopSequence },
      usage: { output_tokens: outputTokens },
    });
    send('message_stop', { type: 'message_stop' });
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
      if (!res.headersSent) json(res, 500, anthropicError('api_error', 'stub failure'));
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
    url: `http://127.0.0.1:${port}`,
    port,
    requests,
    setFault(next) {
      fault = next;
      if (next === 'refuse') for (const s of sockets) s.destroy();
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
