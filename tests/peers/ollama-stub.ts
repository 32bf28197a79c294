/**
 * An Ollama server for tests, faithful to Ollama's documented wire format (docs/api.md):
 * `POST /api/chat` (one JSON object, or NDJSON lines when `stream` is true, which is Ollama's
 * default), `POST /api/embed`, `GET /api/tags`, `GET /api/version` and `GET /` ("Ollama is
 * running"). Answers are deterministic so tests can assert exact values:
 *
 * - chat answers `You said: <content of the last user message>`, streamed one word (with its
 *   trailing whitespace) per line; after a tool result (last message role `tool`) it answers
 *   `The tool <tool_name> said: <content>`; with `format` set it answers
 *   `{"said":"<content>"}`. `options.stop` cuts the answer before the first stop string and
 *   `options.num_predict` keeps that many pieces (then `done_reason` is `length`).
 * - when the request has `tools` and the last user message mentions "weather", the answer is a
 *   call to the FIRST tool, whose first parameter (or `query`) gets the text after the last
 *   " in " (trailing punctuation removed), or the whole message when there is none.
 * - token counts: `prompt_eval_count` is the number of whitespace-separated words over every
 *   message's content, `eval_count` the number of pieces sent.
 * - embeddings: `stubEmbedding(text)`, a unit vector from the text's SHA-256 (16 dimensions).
 * - a model that is not installed (see `setModels`) answers 404 `{"error":"model 'x' not found"}`.
 *
 * Faults (`setFault`) apply to every request until cleared; see `OllamaFault`.
 */
import { createHash } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

/** What the stub does wrong, for the router's fault table. */
export type OllamaFault =
  /** Every connection is closed as soon as it is accepted (pooled ones too): nothing is answered. */
  | 'refuse'
  /** 500 `{"error":"..."}`. */
  | 'status500'
  /** 429 `{"error":"server busy, ..."}` (what Ollama says when its queue is full). */
  | 'status429'
  /** 200 with a body that is not JSON (streams: a first NDJSON line that is not JSON). */
  | 'malformed'
  /** Streams: one good NDJSON line, then nothing, the socket held open until `stop`.
   *  Non-streamed answers: the headers, then nothing. */
  | 'stallAfterFirstChunk'
  /** Streams: one good NDJSON line, then a line that is not JSON. */
  | 'malformedAfterFirstChunk'
  /** Streams: one good NDJSON line, then `{"error":"..."}` as Ollama reports failures mid-stream. */
  | 'errorAfterFirstChunk'
  /** Waits this many ms before sending anything, then answers normally. */
  | { delayHeaders: number };

/** One request the stub received (refused connections never become requests). */
export interface StubRequest {
  method: string;
  path: string;
  /** The parsed JSON body (null for GET, the raw text when it was not JSON). */
  body: unknown;
  /** Settles when the exchange ends: 'finished' (answer sent) or 'aborted' (the client went away first). */
  outcome: Promise<'finished' | 'aborted'>;
}

export interface OllamaStub {
  /** `http://127.0.0.1:<port>` */
  readonly url: string;
  readonly port: number;
  /** Every request received, in order. */
  readonly requests: StubRequest[];
  /** How many connections the `refuse` fault closed. */
  readonly refusedConnections: number;
  setFault(fault: OllamaFault | null): void;
  /** The installed models (names without a tag mean `:latest`). */
  setModels(names: string[]): void;
  /**
   * Destroys every open connection now (a stalled stream's too), as a crashed server would.
   * With `stallAfterFirstChunk`, call it after the client has read the first line to break a
   * stream mid-way: a drop that races the first line would lose it with the connection.
   */
  dropConnections(): void;
  /** Closes every connection (stalled ones too) and stops listening. */
  stop(): Promise<void>;
}

export interface OllamaStubOptions {
  /** Installed models (default `llama3.2`, `nomic-embed-text`). */
  models?: string[];
  /** What `GET /api/version` answers (default `0.12.0`). */
  version?: string;
  fault?: OllamaFault | null;
}

/** The number of dimensions of `stubEmbedding` vectors. */
export const STUB_EMBEDDING_DIMS = 16;

/** The stub's embedding of a text: SHA-256 bytes mapped to [-1, 1], then L2-normalised. */
export function stubEmbedding(text: string, dims = STUB_EMBEDDING_DIMS): number[] {
  const bytes = createHash('sha256').update(text, 'utf8').digest();
  const raw = Array.from({ length: dims }, (_, i) => bytes[i % bytes.length]! / 127.5 - 1);
  const norm = Math.sqrt(raw.reduce((s, x) => s + x * x, 0)) || 1;
  return raw.map((x) => x / norm);
}

/** How the stub splits an answer into streamed pieces: each word with the whitespace after it. */
export function stubPieces(text: string): string[] {
  return text.match(/\s*\S+\s*/g) ?? (text ? [text] : []);
}

/** The stub's token count of a text: its whitespace-separated words. */
export function stubTokens(text: string): number {
  return text.split(/\s+/).filter(Boolean).length;
}

const fullName = (name: string) => (name.includes(':') ? name : `${name}:latest`);

interface WireMessage {
  role?: string;
  content?: string;
  tool_name?: string;
  tool_calls?: unknown[];
}

interface WireTool {
  function?: { name?: string; parameters?: { properties?: Record<string, unknown> } };
}

const DURATIONS = { load_duration: 1_000_000, prompt_eval_duration: 2_000_000, eval_duration: 3_000_000 };
const TOTAL_DURATION = 6_000_000;

export async function startOllamaStub(opts: OllamaStubOptions = {}): Promise<OllamaStub> {
  let models = new Set((opts.models ?? ['llama3.2', 'nomic-embed-text']).map(fullName));
  let fault: OllamaFault | null = opts.fault ?? null;
  const version = opts.version ?? '0.12.0';
  const requests: StubRequest[] = [];
  const sockets = new Set<Socket>();
  const timers = new Set<ReturnType<typeof setTimeout>>();
  let refused = 0;

  const server = createServer((req, res) => {
    handle(req, res).catch(() => {
      if (!res.headersSent) sendJson(res, 500, { error: 'stub failure' });
      else res.destroy();
    });
  });
  server.on('connection', (socket: Socket) => {
    if (fault === 'refuse') {
      refused++;
      socket.destroy();
      return;
    }
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (fault === 'refuse') {
      // A pooled connection accepted before the fault was set.
      refused++;
      req.socket.destroy();
      return;
    }
    const text = await readBody(req);
    let body: unknown = null;
    if (text.length > 0) {
      try {
        body = JSON.parse(text);
      } catch {
        body = text;
      }
    }
    const path = new URL(req.url ?? '/', 'http://stub').pathname;
    const outcome = new Promise<'finished' | 'aborted'>((resolve) => {
      res.on('finish', () => resolve('finished'));
      res.on('close', () => resolve(res.writableFinished ? 'finished' : 'aborted'));
    });
    requests.push({ method: req.method ?? 'GET', path, body, outcome });

    const f = fault;
    if (f !== null && typeof f === 'object') {
      await new Promise<void>((resolve) => {
        const t = setTimeout(() => {
          timers.delete(t);
          resolve();
        }, f.delayHeaders);
        timers.add(t);
      });
      if (res.destroyed || req.socket.destroyed) return;
    }
    if (f === 'status500') return sendJson(res, 500, { error: 'an internal error occurred (stub fault)' });
    if (f === 'status429') {
      return sendJson(res, 429, {
        error: 'server busy, please try again.  maximum pending requests exceeded',
      });
    }
    route(req.method ?? 'GET', path, body, text, res, typeof f === 'string' ? f : null);
  }

  function route(
    method: string,
    path: string,
    body: unknown,
    text: string,
    res: ServerResponse,
    f: Exclude<OllamaFault, { delayHeaders: number }> | null,
  ) {
    if (method === 'GET' && (path === '/' || path === '')) {
      res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8' });
      res.end('Ollama is running');
      return;
    }
    if (method === 'HEAD' && path === '/') {
      res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8' });
      res.end();
      return;
    }
    const api = ['/api/chat', '/api/embed', '/api/tags', '/api/version'];
    if (!api.includes(path)) return sendJson(res, 404, { error: '404 page not found' });
    const wantMethod = path === '/api/tags' || path === '/api/version' ? 'GET' : 'POST';
    if (method !== wantMethod) return sendJson(res, 405, { error: 'method not allowed' });

    if (path === '/api/version') return answer(res, f, { version });
    if (path === '/api/tags') {
      return answer(res, f, {
        models: [...models].map((name) => ({
          name,
          model: name,
          modified_at: '2025-01-01T00:00:00Z',
          size: 1_000_000,
          digest: createHash('sha256').update(name).digest('hex'),
          details: {
            parent_model: '',
            format: 'gguf',
            family: name.split(/[:.\d]/)[0] ?? name,
            families: null,
            parameter_size: '1B',
            quantization_level: 'Q4_K_M',
          },
        })),
      });
    }

    if (typeof body !== 'object' || body === null || Array.isArray(body)) {
      return sendJson(res, 400, {
        error: text ? 'invalid character in request body' : 'missing request body',
      });
    }
    const b = body as Record<string, unknown>;
    if (typeof b.model !== 'string' || b.model === '')
      return sendJson(res, 400, { error: 'model is required' });
    if (!models.has(fullName(b.model))) return sendJson(res, 404, { error: `model '${b.model}' not found` });

    if (path === '/api/embed') {
      const input = b.input === undefined ? [] : b.input;
      const texts = typeof input === 'string' ? [input] : input;
      if (!Array.isArray(texts) || texts.some((t) => typeof t !== 'string')) {
        return sendJson(res, 400, { error: 'invalid input type' });
      }
      const dims = typeof b.dimensions === 'number' && b.dimensions > 0 ? b.dimensions : STUB_EMBEDDING_DIMS;
      return answer(res, f, {
        model: b.model,
        embeddings: (texts as string[]).map((t) => stubEmbedding(t, dims)),
        total_duration: TOTAL_DURATION,
        load_duration: DURATIONS.load_duration,
        prompt_eval_count: (texts as string[]).reduce((n, t) => n + stubTokens(t), 0),
      });
    }
    chat(b, res, f);
  }

  function chat(b: Record<string, unknown>, res: ServerResponse, f: string | null) {
    const messages = (Array.isArray(b.messages) ? b.messages : []) as WireMessage[];
    const tools = (Array.isArray(b.tools) ? b.tools : []) as WireTool[];
    const options = (typeof b.options === 'object' && b.options !== null ? b.options : {}) as Record<
      string,
      unknown
    >;
    const stream = b.stream !== false;
    const model = b.model as string;
    const promptEval = messages.reduce(
      (n, m) => n + stubTokens(typeof m.content === 'string' ? m.content : ''),
      0,
    );
    const last = messages[messages.length - 1];
    const lastUser = [...messages].reverse().find((m) => m.role === 'user');
    const said = typeof lastUser?.content === 'string' ? lastUser.content : '';

    let toolCalls: { function: { name: string; arguments: Record<string, unknown> } }[] = [];
    let content: string;
    let doneReason = 'stop';
    const firstTool = tools[0]?.function;
    if (last?.role === 'user' && firstTool?.name && /weather/i.test(said)) {
      const param = Object.keys(firstTool.parameters?.properties ?? {})[0] ?? 'query';
      const at = said.toLowerCase().lastIndexOf(' in ');
      const value = at >= 0 ? said.slice(at + 4).replace(/[\s?.!,;:]+$/, '') : said;
      toolCalls = [{ function: { name: firstTool.name, arguments: { [param]: value } } }];
      content = '';
    } else if (last?.role === 'tool') {
      content = `The tool ${last.tool_name ?? 'tool'} said: ${last.content ?? ''}`;
    } else if (b.format !== undefined && b.format !== '') {
      content = JSON.stringify({ said });
    } else {
      content = `You said: ${said}`;
    }
    const stops = Array.isArray(options.stop)
      ? (options.stop as unknown[]).filter((s) => typeof s === 'string')
      : [];
    for (const s of stops as string[]) {
      const at = s ? content.indexOf(s) : -1;
      if (at >= 0) content = content.slice(0, at);
    }
    let pieces = stubPieces(content);
    const limit = options.num_predict;
    if (typeof limit === 'number' && limit > 0 && pieces.length > limit) {
      pieces = pieces.slice(0, limit);
      doneReason = 'length';
    }
    const evalCount = toolCalls.length > 0 ? 1 : pieces.length;
    const final = {
      done: true,
      done_reason: doneReason,
      total_duration: TOTAL_DURATION,
      ...DURATIONS,
      prompt_eval_count: promptEval,
      eval_count: evalCount,
    };
    const createdAt = () => new Date().toISOString();

    if (!stream) {
      const message: Record<string, unknown> = { role: 'assistant', content: pieces.join('') };
      if (toolCalls.length > 0) message.tool_calls = toolCalls;
      return answer(res, f, { model, created_at: createdAt(), message, ...final });
    }

    const lines: Record<string, unknown>[] = [];
    if (toolCalls.length > 0) {
      lines.push({
        model,
        created_at: createdAt(),
        message: { role: 'assistant', content: '', tool_calls: toolCalls },
        done: false,
      });
    } else {
      for (const p of pieces) {
        lines.push({
          model,
          created_at: createdAt(),
          message: { role: 'assistant', content: p },
          done: false,
        });
      }
    }
    lines.push({ model, created_at: createdAt(), message: { role: 'assistant', content: '' }, ...final });

    res.writeHead(200, { 'content-type': 'application/x-ndjson' });
    if (f === 'malformed') {
      res.end('this line is not JSON\n');
      return;
    }
    const write = (o: unknown) => res.write(`${JSON.stringify(o)}\n`);
    if (f === 'stallAfterFirstChunk' || f === 'malformedAfterFirstChunk' || f === 'errorAfterFirstChunk') {
      // The rest goes out once the first line has been handed to the socket.
      res.write(`${JSON.stringify(lines[0])}\n`, () => {
        if (f === 'malformedAfterFirstChunk') res.end('{"model": not json\n');
        if (f === 'errorAfterFirstChunk')
          res.end('{"error":"llama runner process has terminated: exit status 2"}\n');
      });
      return;
    }
    for (const l of lines) write(l);
    res.end();
  }

  /** A whole JSON answer, as faults allow. */
  function answer(res: ServerResponse, f: string | null, body: unknown): void {
    if (f === 'malformed') {
      res.writeHead(200, { 'content-type': 'application/json; charset=utf-8' });
      res.end('<html>this is not JSON</html>');
      return;
    }
    if (f === 'stallAfterFirstChunk') {
      res.writeHead(200, { 'content-type': 'application/json; charset=utf-8' });
      res.flushHeaders();
      return;
    }
    if (f === 'errorAfterFirstChunk') {
      sendJson(res, 500, { error: 'llama runner process has terminated: exit status 2' });
      return;
    }
    sendJson(res, 200, body);
  }

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const port = (server.address() as AddressInfo).port;

  return {
    url: `http://127.0.0.1:${port}`,
    port,
    requests,
    get refusedConnections() {
      return refused;
    },
    setFault(next) {
      fault = next;
      if (next === 'refuse') for (const s of sockets) s.destroy();
    },
    setModels(names) {
      models = new Set(names.map(fullName));
    },
    dropConnections() {
      for (const s of sockets) s.destroy();
    },
    async stop() {
      for (const t of timers) clearTimeout(t);
      timers.clear();
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(text),
  });
  res.end(text);
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}
