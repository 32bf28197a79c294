import { afterAll, afterEach, describe, expect, test } from 'bun:test';
import type { Socket, TCPSocketListener } from 'bun';
import { waitFor } from '../../tests/wait.ts';
import { createHttp1Client, type Http1Client } from './http1.ts';

/** A Bun.serve upstream on 127.0.0.1 that records the client port of every request. */
const ports: number[] = [];
/** How many /slow requests have arrived (each holds until its client goes away). */
let slowArrived = 0;
const upstream = Bun.serve({
  hostname: '127.0.0.1',
  port: 0,
  async fetch(req, server) {
    ports.push(server.requestIP(req)?.port ?? -1);
    const path = new URL(req.url).pathname;
    if (path === '/echo') {
      const body = await req.text();
      return Response.json({
        method: req.method,
        length: body.length,
        head: body.slice(0, 10),
        ct: req.headers.get('content-type'),
      });
    }
    if (path === '/chunked') {
      // A body in three parts, 30 ms apart (chunked transfer coding).
      let i = 0;
      const stream = new ReadableStream<Uint8Array>({
        async pull(ctrl) {
          if (i === 3) return ctrl.close();
          if (i > 0) await Bun.sleep(30);
          ctrl.enqueue(new TextEncoder().encode(`part${i++};`));
        },
      });
      return new Response(stream, { headers: { 'content-type': 'text/plain' } });
    }
    if (path === '/slow') {
      // Never answers on its own: it holds until the client goes away (abort, timeout).
      slowArrived++;
      await new Promise((r) => req.signal.addEventListener('abort', r, { once: true }));
      return new Response('late');
    }
    if (path === '/empty') return new Response(null, { status: 204 });
    if (path === '/status') return Response.json({ error: { message: 'nope' } }, { status: 503 });
    return new Response('not here', { status: 404 });
  },
});
const base = `http://127.0.0.1:${upstream.port}`;

/** A raw TCP server scripted per connection: `onData(socket, text, connectionIndex)`. */
function rawServer(onData: (s: Socket<{ n: number }>, text: string, conn: number) => void): {
  port: number;
  connections: () => number;
  stop: () => void;
} {
  let n = 0;
  const l: TCPSocketListener<{ n: number }> = Bun.listen<{ n: number }>({
    hostname: '127.0.0.1',
    port: 0,
    socket: {
      open(s) {
        s.data = { n: n++ };
      },
      data(s, d) {
        onData(s, d.toString(), s.data.n);
      },
    },
  });
  return { port: l.port, connections: () => n, stop: () => l.stop(true) };
}

let client: Http1Client;
afterEach(() => {
  client?.close();
  ports.length = 0;
});
afterAll(() => upstream.stop(true));

const post = (path: string, body: string, signal?: AbortSignal) =>
  client.fetch(`${base}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body,
    ...(signal ? { signal } : {}),
  });

describe('the HTTP/1.1 client', () => {
  test('a whole answer, and the connection kept for the next request', async () => {
    client = createHttp1Client();
    const a = await post('/echo', '{"hello":"wörld"}');
    expect(a.status).toBe(200);
    expect(a.headers.get('content-type')).toContain('application/json');
    expect(await a.json()).toEqual({
      method: 'POST',
      length: 17,
      head: '{"hello":"',
      ct: 'application/json',
    });
    const b = await post('/echo', 'x');
    expect(((await b.json()) as { length: number }).length).toBe(1);
    expect(ports).toHaveLength(2);
    expect(ports[0]).toBe(ports[1]!);
    expect(client.openConnections()).toBe(1);
  });

  test('concurrent requests each get a connection; then all are reused', async () => {
    client = createHttp1Client();
    await Promise.all([1, 2, 3].map(() => post('/echo', 'a').then((r) => r.text())));
    await Promise.all([1, 2, 3].map(() => post('/echo', 'b').then((r) => r.text())));
    expect(new Set(ports.slice(0, 3)).size).toBe(3);
    expect(new Set(ports.slice(3)).size).toBeLessThanOrEqual(3);
    expect([...new Set(ports.slice(3))].every((p) => ports.slice(0, 3).includes(p))).toBe(true);
    expect(client.openConnections()).toBe(3);
  });

  test('a chunked body is streamed as it comes, then the connection is reused', async () => {
    client = createHttp1Client();
    const res = await client.fetch(`${base}/chunked`, { method: 'GET', headers: {} });
    const reader = res.body!.getReader();
    const dec = new TextDecoder();
    const seen: string[] = [];
    for (;;) {
      const r = await reader.read();
      if (r.done) break;
      seen.push(dec.decode(r.value));
    }
    expect(seen.join('')).toBe('part0;part1;part2;');
    expect(seen.length).toBeGreaterThan(1);
    await (await post('/echo', 'z')).text();
    expect(ports[0]).toBe(ports[1]!);
  });

  test('204 has no body and keeps the connection; an error status is an answer, not a failure', async () => {
    client = createHttp1Client();
    const e = await client.fetch(`${base}/empty`, { method: 'GET', headers: {} });
    expect(e.status).toBe(204);
    expect(await e.text()).toBe('');
    const s = await client.fetch(`${base}/status`, { method: 'GET', headers: {} });
    expect(s.status).toBe(503);
    expect(s.ok).toBe(false);
    expect(await s.json()).toEqual({ error: { message: 'nope' } });
    expect(ports[0]).toBe(ports[1]!);
  });

  test('a large request body is written whole (the socket drains in parts)', async () => {
    client = createHttp1Client();
    const big = 'y'.repeat(4 * 1024 * 1024);
    const r = (await (await post('/echo', big)).json()) as { length: number };
    expect(r.length).toBe(big.length);
  });

  test('a refused connection rejects with a TypeError, as fetch does', async () => {
    client = createHttp1Client();
    const free = Bun.listen({ hostname: '127.0.0.1', port: 0, socket: { data() {} } });
    const port = free.port;
    free.stop(true);
    const e = await client.fetch(`http://127.0.0.1:${port}/`, { method: 'GET', headers: {} }).then(
      () => null,
      (x: unknown) => x,
    );
    expect(e).toBeInstanceOf(TypeError);
    expect((e as Error).message).toContain('could not be reached');
  });

  test('an abort before the answer rejects with its reason and closes the connection', async () => {
    client = createHttp1Client();
    const ctl = new AbortController();
    const arrived = slowArrived;
    const p = client.fetch(`${base}/slow`, { method: 'GET', headers: {}, signal: ctl.signal });
    await waitFor(() => slowArrived > arrived, { what: 'the request reaching the upstream' });
    expect(client.openConnections()).toBe(1);
    const reason = new DOMException('deadline', 'TimeoutError');
    ctl.abort(reason);
    expect(
      await p.then(
        () => null,
        (x: unknown) => x,
      ),
    ).toBe(reason);
    expect(client.openConnections()).toBe(0);
    // An already aborted signal sends nothing.
    const before = ports.length;
    const again = await client.fetch(`${base}/echo`, { method: 'GET', headers: {}, signal: ctl.signal }).then(
      () => null,
      (x: unknown) => x,
    );
    expect(again).toBe(reason);
    expect(ports.length).toBe(before);
  });

  test('no headers within timeoutMs: a TimeoutError, and the connection is closed', async () => {
    client = createHttp1Client();
    const t0 = performance.now();
    const e = await client.fetch(`${base}/slow`, { method: 'GET', headers: {}, timeoutMs: 60 }).then(
      () => null,
      (x: unknown) => x,
    );
    expect((e as DOMException).name).toBe('TimeoutError');
    expect(performance.now() - t0).toBeLessThan(1_000);
    expect(client.openConnections()).toBe(0);
    // A quick answer is not cut by its deadline afterwards, even while its body streams (the
    // body takes 60 ms, so the 40 ms deadline passes while it is read).
    const t1 = performance.now();
    const r = await client.fetch(`${base}/chunked`, { method: 'GET', headers: {}, timeoutMs: 40 });
    expect(await r.text()).toBe('part0;part1;part2;');
    expect(performance.now() - t1).toBeGreaterThan(40);
  });

  test('an abort mid-body errors the body stream with its reason', async () => {
    client = createHttp1Client();
    const ctl = new AbortController();
    const res = await client.fetch(`${base}/chunked`, { method: 'GET', headers: {}, signal: ctl.signal });
    const reader = res.body!.getReader();
    expect(new TextDecoder().decode((await reader.read()).value)).toBe('part0;');
    ctl.abort(new Error('client went away'));
    const e = await reader.read().then(
      () => null,
      (x: unknown) => x,
    );
    expect((e as Error).message).toBe('client went away');
    expect(client.openConnections()).toBe(0);
  });

  test('idle connections close after idleMs', async () => {
    client = createHttp1Client({ idleMs: 40 });
    await (await post('/echo', 'a')).text();
    expect(client.openConnections()).toBe(1);
    await waitFor(() => client.openConnections() === 0, { what: 'the idle connection closing' });
  });

  test('a close-delimited body ends with the connection', async () => {
    const srv = rawServer((s) => {
      s.write('HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\nconnection: close\r\n\r\nuntil the end');
      s.end();
    });
    client = createHttp1Client();
    const r = await client.fetch(`http://127.0.0.1:${srv.port}/`, { method: 'GET', headers: {} });
    expect(await r.text()).toBe('until the end');
    expect(client.openConnections()).toBe(0);
    srv.stop();
  });

  test('a reused connection the server closed unanswered is retried once on a new one', async () => {
    // Connection 0 answers its first request, then closes on the second without a word
    // (a keep-alive timeout racing ours); connection 1 answers.
    let seen = 0;
    const srv = rawServer((s, _text, conn) => {
      seen++;
      if (conn === 0 && seen === 1) {
        s.write('HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nfirst');
        return;
      }
      if (conn === 0) return void s.end();
      s.write('HTTP/1.1 200 OK\r\ncontent-length: 6\r\n\r\nsecond');
    });
    client = createHttp1Client();
    const url = `http://127.0.0.1:${srv.port}/`;
    expect(await (await client.fetch(url, { method: 'POST', headers: {}, body: 'a' })).text()).toBe('first');
    expect(await (await client.fetch(url, { method: 'POST', headers: {}, body: 'b' })).text()).toBe('second');
    expect(srv.connections()).toBe(2);
    srv.stop();
  });

  test('a new connection closed unanswered is a failure (no retry), and garbage is a bad answer', async () => {
    const closing = rawServer((s) => void s.end());
    client = createHttp1Client();
    const e = await client
      .fetch(`http://127.0.0.1:${closing.port}/`, { method: 'POST', headers: {}, body: 'a' })
      .then(
        () => null,
        (x: unknown) => x,
      );
    expect(e).toBeInstanceOf(TypeError);
    expect((e as Error).message).toContain('closed the connection before answering');
    expect(closing.connections()).toBe(1);
    closing.stop();

    const garbage = rawServer((s) => void s.write('SMTP ready\r\n\r\n'));
    const g = await client.fetch(`http://127.0.0.1:${garbage.port}/`, { method: 'GET', headers: {} }).then(
      () => null,
      (x: unknown) => x,
    );
    expect(g).toBeInstanceOf(TypeError);
    expect((g as Error).message).toContain('bad HTTP answer');
    garbage.stop();
  });

  test('only http: URLs', async () => {
    client = createHttp1Client();
    const e = await client.fetch('https://127.0.0.1/', { method: 'GET', headers: {} }).then(
      () => null,
      (x: unknown) => x,
    );
    expect((e as Error).message).toContain('only http: URLs');
  });

  test('CR, LF or another control character in a header, the method or the path: refused before a byte is sent', async () => {
    const received: string[] = [];
    const srv = rawServer((s, text) => {
      received.push(text);
      s.write('HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok');
    });
    client = createHttp1Client();
    const url = `http://127.0.0.1:${srv.port}/`;
    const attempts: Array<[string, Parameters<Http1Client['fetch']>[1], string]> = [
      ['value', { method: 'GET', headers: { 'x-a': 'v\r\nx-injected: 1' } }, 'value of header "x-a"'],
      ['value LF', { method: 'GET', headers: { 'x-a': 'v\nx-injected: 1' } }, 'value of header "x-a"'],
      ['value NUL', { method: 'GET', headers: { 'x-a': 'v\u0000' } }, 'value of header "x-a"'],
      ['name', { method: 'GET', headers: { 'x-a\r\nx-injected': '1' } }, 'header name'],
      ['name space', { method: 'GET', headers: { 'x a': '1' } }, 'header name'],
      ['method', { method: 'GET / HTTP/1.1\r\nx-injected: 1\r\n\r\nGET', headers: {} }, 'method'],
    ];
    for (const [what, init, says] of attempts) {
      const e = await client.fetch(url, init).then(
        () => null,
        (x: unknown) => x,
      );
      expect(e, what).toBeInstanceOf(TypeError);
      expect((e as Error).message, what).toContain(says);
    }
    const p = await client.fetch(`${url}a\r\nx-injected: 1`, { method: 'GET', headers: {} }).then(
      () => null,
      (x: unknown) => x,
    );
    expect((p as Error).message).toContain('the path holds');
    // Nothing reached the server, and no connection was even opened.
    expect(srv.connections()).toBe(0);
    expect(received).toEqual([]);
    // A tab inside a value is allowed (RFC 9110 field-content), and the client still works.
    const ok = await client.fetch(url, { method: 'GET', headers: { 'x-a': 'one\ttwo' } });
    expect(await ok.text()).toBe('ok');
    expect(received[0]).toContain('x-a: one\ttwo\r\n');
    srv.stop();
  });

  test('a body over maxBodyBytes fails the call and closes the connection (whole and streamed)', async () => {
    const srv = rawServer((s, text) => {
      if (text.startsWith('GET /whole')) {
        s.write(`HTTP/1.1 200 OK\r\ncontent-length: 2000\r\n\r\n${'x'.repeat(2000)}`);
      } else if (text.startsWith('GET /fits')) {
        s.write(`HTTP/1.1 200 OK\r\ncontent-length: 1000\r\n\r\n${'y'.repeat(1000)}`);
      } else {
        // Chunked: the head and a first small chunk, then, once asked, chunks past the limit.
        s.write('HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n4\r\nfirs\r\n');
      }
    });
    client = createHttp1Client({ maxBodyBytes: 1000 });
    const url = `http://127.0.0.1:${srv.port}`;
    const fits = await client.fetch(`${url}/fits`, { method: 'GET', headers: {} });
    expect((await fits.text()).length).toBe(1000);
    expect(client.openConnections()).toBe(1);
    client.close();

    const e = await client.fetch(`${url}/whole`, { method: 'GET', headers: {} }).then(
      () => null,
      (x: unknown) => x,
    );
    expect(e).toBeInstanceOf(TypeError);
    expect((e as Error).message).toContain('exceeds the 1000-byte limit');
    expect(client.openConnections()).toBe(0);

    // Streamed: the answer is out, then the body grows past the limit: the stream errors.
    const sockets: Socket<{ n: number }>[] = [];
    const streaming = rawServer((s) => {
      sockets.push(s);
      s.write('HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n4\r\nfirs\r\n');
    });
    const res = await client.fetch(`http://127.0.0.1:${streaming.port}/`, { method: 'GET', headers: {} });
    const reader = res.body!.getReader();
    expect(new TextDecoder().decode((await reader.read()).value)).toBe('firs');
    const chunk = 'z'.repeat(600);
    sockets[0]!.write(`258\r\n${chunk}\r\n258\r\n${chunk}\r\n`);
    const err = await (async () => {
      for (;;) {
        const r = await reader.read();
        if (r.done) return null;
      }
    })().then(
      () => null,
      (x: unknown) => x,
    );
    expect(err).toBeInstanceOf(TypeError);
    expect((err as Error).message).toContain('exceeds the 1000-byte limit');
    expect(client.openConnections()).toBe(0);
    streaming.stop();
    srv.stop();
  });

  test('headers over maxHeaderBytes fail the call with the limit named', async () => {
    const srv = rawServer((s) => {
      s.write(`HTTP/1.1 200 OK\r\nx-big: ${'h'.repeat(5000)}\r\ncontent-length: 2\r\n\r\nok`);
    });
    client = createHttp1Client({ maxHeaderBytes: 1024 });
    const e = await client.fetch(`http://127.0.0.1:${srv.port}/`, { method: 'GET', headers: {} }).then(
      () => null,
      (x: unknown) => x,
    );
    expect(e).toBeInstanceOf(TypeError);
    expect((e as Error).message).toContain('headers exceed the 1024-byte limit');
    expect(client.openConnections()).toBe(0);
    srv.stop();
  });

  test('a head sent in two writes is capped too (one read or several: both checks name the limit)', async () => {
    const sockets: Socket<{ n: number }>[] = [];
    const srv = rawServer((s) => {
      sockets.push(s);
      s.write(`HTTP/1.1 200 OK\r\nx-a: ${'h'.repeat(800)}\r\n`);
    });
    client = createHttp1Client({ maxHeaderBytes: 1024 });
    const p = client.fetch(`http://127.0.0.1:${srv.port}/`, { method: 'GET', headers: {} }).then(
      () => null,
      (x: unknown) => x,
    );
    // The rest of the head, once the first part was read (no answer can be out yet).
    await waitFor(() => sockets.length > 0);
    sockets[0]!.write(`x-b: ${'h'.repeat(800)}\r\ncontent-length: 2\r\n\r\nok`);
    const e = await p;
    expect(e).toBeInstanceOf(TypeError);
    expect((e as Error).message).toContain('headers exceed the 1024-byte limit');
    expect(client.openConnections()).toBe(0);
    srv.stop();
  });
});
