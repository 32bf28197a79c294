import type { Socket } from 'bun';
import { HTTPParser } from 'http-parser-js';

/**
 * A keep-alive HTTP/1.1 client on the JS thread, for plain-`http:` upstreams on this machine's
 * network (on-prem model servers). Why not `fetch`: Bun's `fetch` runs its connections on a
 * separate HTTP-client thread, and each request pays two cross-thread hand-offs; on the 2-core
 * machine of docs/performance.md that is ~0.2 ms of added latency per call at low load, against
 * ~0.06 ms for a socket read and written where the request is handled. The AI router's latency
 * budget is 0.25 ms in all, so its on-prem hop uses this.
 *
 * It is deliberately small: one request per connection at a time (no pipelining), idle
 * connections kept per origin for `idleMs` (LIFO, so the warmest is reused), request bodies as
 * strings, responses parsed by `http-parser-js` (status line, headers, content-length, chunked
 * and close-delimited bodies). It returns a real `Response`: whole when the answer arrived in
 * one read (the usual case for a JSON answer), else with a streamed body (server-sent events).
 *
 * Failure semantics follow `fetch`: a refused or reset connection before the answer rejects
 * with a TypeError; an abort rejects with the signal's reason (or errors the body stream once
 * the answer has started) and closes the connection. A request on a reused connection that the
 * server had already closed (its keep-alive timeout racing ours) and that got no byte of an
 * answer is sent once more on a new connection, as browsers and Go's client do.
 *
 * Two guards, since an upstream is not trusted to be well-behaved: a method, path, header name
 * or header value holding CR, LF or another control character is refused with a TypeError
 * before a byte is written (no header injection through a configured header or a forwarded
 * value); and an answer whose headers exceed `maxHeaderBytes` or whose body exceeds
 * `maxBodyBytes` fails the call with a TypeError naming the limit, and its connection is closed
 * (no upstream can make the process buffer without bound).
 *
 * It lives in `app/` (not `shared/`) because it does I/O; providers import it from
 * `app/index.ts`.
 */
export interface Http1FetchInit {
  method: string;
  headers: Record<string, string>;
  body?: string | undefined;
  signal?: AbortSignal;
  /** No answer's headers within this many ms: the request is abandoned with a `TimeoutError`. */
  timeoutMs?: number;
}

export type Http1Fetch = (url: string, init: Http1FetchInit) => Promise<Response>;

/** What `createHttp1Client` takes. */
export interface Http1Options {
  /** How long an idle connection is kept for reuse (ms); below the servers' keep-alive (uvicorn: 5 s). */
  idleMs?: number;
  /** Idle connections kept per origin at most. */
  maxIdle?: number;
  /** An answer's status line and headers at most, in bytes (default 64 KiB). */
  maxHeaderBytes?: number;
  /** An answer's body at most, in bytes after de-chunking (default 128 MiB: a large embeddings batch). */
  maxBodyBytes?: number;
}

/** The defaults of `Http1Options`' size limits. */
export const HTTP1_DEFAULT_MAX_HEADER_BYTES = 64 * 1024;
export const HTTP1_DEFAULT_MAX_BODY_BYTES = 128 * 1024 * 1024;

/** A client: `fetch` for `http://host:port/...` URLs, and `close()` for its idle connections. */
export interface Http1Client {
  fetch: Http1Fetch;
  /** Closes every idle connection (busy ones close when their answer ends). */
  close(): void;
  /** Connections open now (idle and busy), for tests and metrics. */
  openConnections(): number;
}

/** One request in flight on a connection. */
interface Exchange {
  resolve(res: Response): void;
  reject(e: unknown): void;
  /** Sends the request again on a new connection (once); false when that is not allowed. */
  retry(): boolean;
  /** Stops listening to the caller's signal (the exchange is over). */
  done(): void;
  /** Whether the answer's head was handed out (the promise is settled). */
  answered: boolean;
  /** The body stream's controller once the answer is out with an unfinished body. */
  stream: ReadableStreamDefaultController<Uint8Array> | null;
  status: number;
  statusText: string;
  headers: string[];
  /** Body parts parsed before the answer was handed out. */
  parts: Uint8Array[];
  complete: boolean;
  keepAlive: boolean;
  /** Any byte of an answer seen (a reused connection's failure before that may be retried). */
  sawBytes: boolean;
  /** Body bytes received so far (against `maxBodyBytes`). */
  bodyBytes: number;
  /** The head went over `maxHeaderBytes` or the body over `maxBodyBytes`: the exchange fails after this read. */
  tooLarge: 'head' | 'body' | null;
}

interface Conn {
  socket: Socket<undefined>;
  parser: InstanceType<typeof HTTPParser>;
  ex: Exchange | null;
  closed: boolean;
  idleTimer: ReturnType<typeof setTimeout> | null;
  /** Bytes still to write (the socket took only part of the request). */
  pending: Uint8Array | null;
  reused: boolean;
}

const enc = new TextEncoder();

/** A connection failure in fetch's shape (a TypeError, its cause the underlying error). */
function networkError(message: string, cause?: unknown): TypeError {
  return new TypeError(message, cause === undefined ? undefined : { cause });
}

/** An RFC 9110 token (method, header name). */
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
/** A control character other than HTAB (CR and LF among them), or DEL. */
const CONTROL = /[\x00-\x08\x0a-\x1f\x7f]/;
/** A request target or authority: no control characters and no spaces. */
const BAD_TARGET = /[\x00-\x20\x7f]/;

/** Why the request cannot be written safely, or null: checked before anything reaches a socket. */
function invalidRequest(
  method: string,
  origin: string,
  path: string,
  headers: Record<string, string>,
): string | null {
  if (!TOKEN.test(method)) return 'the method is not a token';
  if (BAD_TARGET.test(origin)) return 'the host holds a space or a control character';
  if (BAD_TARGET.test(path)) return 'the path holds a space or a control character';
  for (const k in headers) {
    if (!TOKEN.test(k)) return `the header name ${JSON.stringify(k)} is not a token`;
    const v = headers[k];
    if (typeof v !== 'string' || CONTROL.test(v)) {
      return `the value of header ${JSON.stringify(k)} holds CR, LF or another control character`;
    }
  }
  return null;
}

function abortReason(signal: AbortSignal): unknown {
  return signal.reason ?? new DOMException('The operation was aborted.', 'AbortError');
}

export function createHttp1Client(opts: Http1Options = {}): Http1Client {
  const idleMs = opts.idleMs ?? 2_000;
  const maxIdle = opts.maxIdle ?? 64;
  const maxHeaderBytes = opts.maxHeaderBytes ?? HTTP1_DEFAULT_MAX_HEADER_BYTES;
  const maxBodyBytes = opts.maxBodyBytes ?? HTTP1_DEFAULT_MAX_BODY_BYTES;
  const idle = new Map<string, Conn[]>();
  const all = new Set<Conn>();

  const dropIdle = (origin: string, c: Conn) => {
    const list = idle.get(origin);
    const i = list ? list.indexOf(c) : -1;
    if (i >= 0) list!.splice(i, 1);
  };

  const destroy = (c: Conn) => {
    if (c.closed) return;
    c.closed = true;
    all.delete(c);
    if (c.idleTimer) clearTimeout(c.idleTimer);
    c.socket.terminate();
  };

  /** A free connection: kept for reuse (most recent last) until `idleMs` passes, or closed. */
  const release = (c: Conn, origin: string, keepAlive: boolean) => {
    c.ex = null;
    if (!keepAlive || c.closed) return destroy(c);
    let list = idle.get(origin);
    if (!list) {
      list = [];
      idle.set(origin, list);
    }
    if (list.length >= maxIdle) return destroy(c);
    list.push(c);
    c.idleTimer = setTimeout(() => {
      dropIdle(origin, c);
      destroy(c);
    }, idleMs);
    c.idleTimer.unref?.();
  };

  /** The answer's head is complete: hand out a Response (whole if its body is already here). */
  const answer = (c: Conn, ex: Exchange) => {
    ex.answered = true;
    const headers = new Headers();
    for (let i = 0; i < ex.headers.length; i += 2) headers.append(ex.headers[i]!, ex.headers[i + 1]!);
    const init = { status: ex.status, statusText: ex.statusText, headers };
    if (ex.complete) {
      ex.resolve(new Response(concat(ex.parts) as Uint8Array<ArrayBuffer>, init));
      return;
    }
    const parts = ex.parts;
    ex.parts = [];
    const body = new ReadableStream<Uint8Array>({
      start(ctrl) {
        ex.stream = ctrl;
        for (const p of parts) ctrl.enqueue(p);
      },
      cancel() {
        // The reader gave up on the body: this connection cannot be reused.
        ex.stream = null;
        ex.done();
        if (c.ex === ex) {
          c.ex = null;
          destroy(c);
        }
      },
    });
    ex.resolve(new Response(body, init));
  };

  /** The answer is complete: end its body stream and free the connection. */
  const finish = (c: Conn, origin: string, ex: Exchange) => {
    ex.done();
    if (ex.stream) {
      ex.stream.close();
      ex.stream = null;
    }
    release(c, origin, ex.keepAlive);
  };

  /** The connection failed or closed: finish or fail what it was carrying, or send it again. */
  const lost = (c: Conn, origin: string, err: unknown) => {
    const ex = c.ex;
    // A close-delimited body ends with the connection (the parser completes it on finish).
    if (ex?.stream && !ex.complete) c.parser.finish();
    c.ex = null;
    dropIdle(origin, c);
    const reused = c.reused;
    destroy(c);
    if (!ex) return;
    if (ex.answered) {
      if (ex.stream && ex.complete) {
        ex.done();
        ex.stream.close();
        ex.stream = null;
        return;
      }
      ex.done();
      ex.stream?.error(networkError('the upstream closed the connection mid-answer', err));
      ex.stream = null;
      return;
    }
    if (reused && !ex.sawBytes && ex.retry()) return;
    ex.reject(networkError('the upstream closed the connection before answering', err));
  };

  const connect = async (host: string, port: number, origin: string): Promise<Conn> => {
    const holder: { c: Conn | null } = { c: null };
    const socket = await Bun.connect<undefined>({
      hostname: host,
      port,
      socket: {
        data(_s, data) {
          const c = holder.c;
          if (!c || c.closed) return;
          const ex = c.ex;
          if (!ex) {
            // Bytes nobody asked for: the connection is not in a known state.
            dropIdle(origin, c);
            destroy(c);
            return;
          }
          ex.sawBytes = true;
          const r = c.parser.execute(data as Buffer);
          if (r instanceof Error || ex.tooLarge) {
            c.ex = null;
            destroy(c);
            const e =
              ex.tooLarge === 'head' || (r instanceof Error && r.message === 'max header size exceeded')
                ? networkError(`the upstream's answer headers exceed the ${maxHeaderBytes}-byte limit`, r)
                : ex.tooLarge === 'body'
                  ? networkError(`the upstream's answer body exceeds the ${maxBodyBytes}-byte limit`)
                  : networkError(`the upstream sent a bad HTTP answer: ${(r as Error).message}`, r);
            ex.done();
            if (!ex.answered) ex.reject(e);
            else ex.stream?.error(e);
            ex.stream = null;
            return;
          }
          if (!ex.answered && ex.status !== 0) answer(c, ex);
          if (ex.complete && c.ex === ex) finish(c, origin, ex);
        },
        drain(s) {
          const c = holder.c;
          if (!c?.pending) return;
          const n = s.write(c.pending);
          c.pending = n >= 0 && n < c.pending.length ? c.pending.subarray(n) : null;
        },
        close() {
          const c = holder.c;
          if (c && !c.closed) lost(c, origin, undefined);
        },
        error(_s, e) {
          const c = holder.c;
          if (c && !c.closed) lost(c, origin, e);
        },
      },
    });
    // Requests go out whole in one write: no reason to let Nagle hold a segment back.
    socket.setNoDelay(true);
    const parser = new HTTPParser(HTTPParser.RESPONSE);
    parser.maxHeaderSize = maxHeaderBytes;
    const c: Conn = {
      socket,
      parser,
      ex: null,
      closed: false,
      idleTimer: null,
      pending: null,
      reused: false,
    };
    holder.c = c;
    all.add(c);
    parser[HTTPParser.kOnHeadersComplete] = (info) => {
      const ex = c.ex;
      if (!ex) return 1;
      // 1xx (never asked for): skipped; the real answer follows.
      if (info.statusCode < 200) return 1;
      // The parser's own cap counts only a head split over reads; a head that came in one read is
      // measured here (status line, and each header as `name: value` CRLF).
      let size = 15 + info.statusMessage.length;
      for (const h of info.headers) size += h.length + 2;
      if (size > maxHeaderBytes) {
        ex.tooLarge = 'head';
        return 1;
      }
      ex.status = info.statusCode;
      ex.statusText = info.statusMessage;
      ex.headers = info.headers;
      ex.keepAlive = info.shouldKeepAlive;
      // No body, whatever the headers say.
      return info.statusCode === 204 || info.statusCode === 304 ? 1 : 0;
    };
    parser[HTTPParser.kOnBody] = (chunk, offset, length) => {
      const ex = c.ex;
      if (!ex || ex.tooLarge) return;
      ex.bodyBytes += length;
      if (ex.bodyBytes > maxBodyBytes) {
        // Failed by the data handler once this read is parsed; nothing more is kept.
        ex.tooLarge = 'body';
        return;
      }
      // A copy: the read buffer is not ours to keep.
      const part = new Uint8Array(chunk.buffer, chunk.byteOffset + offset, length).slice();
      if (ex.stream) ex.stream.enqueue(part);
      else ex.parts.push(part);
    };
    parser[HTTPParser.kOnMessageComplete] = () => {
      const ex = c.ex;
      if (ex && ex.status !== 0 && !ex.tooLarge) ex.complete = true;
    };
    return c;
  };

  const fetchOnce = (url: string, init: Http1FetchInit, retried: boolean): Promise<Response> =>
    new Promise<Response>((resolve, reject) => {
      const signal = init.signal;
      if (signal?.aborted) return reject(abortReason(signal));
      // http://host:port/path, parsed by hand (a URL object per call is measurable here).
      if (!url.startsWith('http://')) {
        return reject(new TypeError(`http1: only http: URLs are supported, got ${url.slice(0, 40)}`));
      }
      const slash = url.indexOf('/', 7);
      const origin = slash < 0 ? url.slice(7) : url.slice(7, slash);
      const path = slash < 0 ? '/' : url.slice(slash);
      const colon = origin.lastIndexOf(':');
      const hasPort = colon > 0 && !origin.endsWith(']');
      const host = (hasPort ? origin.slice(0, colon) : origin).replace(/^\[|\]$/g, '');
      const port = hasPort ? Number(origin.slice(colon + 1)) : 80;
      const invalid = invalidRequest(init.method, origin, path, init.headers);
      if (invalid) return reject(new TypeError(`http1: refused to send the request: ${invalid}`));

      let conn: Conn | null = null;
      let settled = false;
      let listening = false;
      let timer: ReturnType<typeof setTimeout> | null = null;
      const onAbort = (why?: unknown) => {
        const reason = why instanceof DOMException ? why : abortReason(signal!);
        ex.done();
        if (!ex.answered) ex.reject(reason);
        else if (ex.stream) {
          ex.stream.error(reason);
          ex.stream = null;
        }
        if (conn && conn.ex === ex) {
          conn.ex = null;
          destroy(conn);
        }
      };
      const ex: Exchange = {
        resolve(r) {
          if (settled) return;
          settled = true;
          if (timer) clearTimeout(timer);
          // A whole answer needs the signal no more; a streamed one keeps it until its end.
          if (!ex.stream) ex.done();
          resolve(r);
        },
        reject(e) {
          if (settled) return;
          settled = true;
          ex.done();
          reject(e);
        },
        retry() {
          if (retried || settled) return false;
          settled = true;
          ex.done();
          fetchOnce(url, init, true).then(resolve, reject);
          return true;
        },
        done() {
          if (timer) clearTimeout(timer);
          if (listening) signal!.removeEventListener('abort', onAbort);
          listening = false;
        },
        answered: false,
        stream: null,
        status: 0,
        statusText: '',
        headers: [],
        parts: [],
        complete: false,
        keepAlive: false,
        sawBytes: false,
        bodyBytes: 0,
        tooLarge: null,
      };
      if (signal) {
        signal.addEventListener('abort', onAbort);
        listening = true;
      }
      if (init.timeoutMs !== undefined) {
        const ms = init.timeoutMs;
        timer = setTimeout(() => onAbort(new DOMException(`no answer within ${ms} ms`, 'TimeoutError')), ms);
      }

      // One string, written at once (the socket encodes it; no intermediate buffers).
      let request = `${init.method} ${path} HTTP/1.1\r\nhost: ${origin}\r\n`;
      for (const k in init.headers) request += `${k}: ${init.headers[k]}\r\n`;
      if (init.body !== undefined) {
        request += `content-length: ${Buffer.byteLength(init.body)}\r\n\r\n${init.body}`;
      } else request += '\r\n';

      const send = (c: Conn) => {
        conn = c;
        c.ex = ex;
        const n = c.socket.write(request);
        // The socket took part of it (a large body): the rest goes out on `drain`.
        if (n < Buffer.byteLength(request)) c.pending = enc.encode(request).subarray(Math.max(0, n));
      };

      const reuse = idle.get(origin)?.pop();
      if (reuse && !reuse.closed) {
        if (reuse.idleTimer) clearTimeout(reuse.idleTimer);
        reuse.idleTimer = null;
        reuse.reused = true;
        return send(reuse);
      }
      connect(host, port, origin).then(
        (c) => {
          // Aborted while connecting: the fresh connection waits for the next request.
          if (settled) return release(c, origin, true);
          send(c);
        },
        (e) => ex.reject(networkError(`the upstream could not be reached: ${(e as Error)?.message ?? e}`, e)),
      );
    });

  return {
    fetch: (url, init) => fetchOnce(url, init, false),
    close() {
      for (const list of idle.values()) for (const c of list.splice(0)) destroy(c);
    },
    openConnections: () => all.size,
  };
}

function concat(parts: Uint8Array[]): Uint8Array {
  if (parts.length === 1) return parts[0]!;
  let n = 0;
  for (const p of parts) n += p.length;
  const out = new Uint8Array(n);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}
