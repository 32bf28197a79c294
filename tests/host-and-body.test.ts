import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { connect } from 'node:net';
import { readOutbox } from '../src/identity/index.ts';
import { hostFetch } from './helpers.ts';
import { PlatformClient, serverWithPlatform } from './platform-client.ts';

// Issue 8, points 2 and 8: links come from the stored public URL, a junk Host is refused
// before routing, and bodies are capped before they are read, parsed or authenticated.
// Host handling is tested over raw sockets: fetch clients drop or rewrite the Host header.

let env: Awaited<ReturnType<typeof serverWithPlatform>>;

beforeAll(async () => {
  env = await serverWithPlatform('alpha');
});
afterAll(() => env.s.cleanup());

/** One HTTP/1.1 exchange on a fresh connection to the test server: the status, headers and body. */
function raw(
  text: string,
  opts: { body?: Uint8Array | string; holdBody?: boolean } = {},
): Promise<{ status: number; headers: Record<string, string>; body: string }> {
  return new Promise((resolve, reject) => {
    const sock = connect({ host: '127.0.0.1', port: env.s.port });
    let buf = Buffer.alloc(0);
    const done = (e?: Error) => {
      sock.destroy();
      if (e) reject(e);
    };
    sock.on('error', (e) => done(e));
    sock.on('data', (d) => {
      buf = Buffer.concat([buf, Buffer.from(d)]);
      const end = buf.indexOf('\r\n\r\n');
      if (end < 0) return;
      const head = buf.subarray(0, end).toString('latin1').split('\r\n');
      const status = Number(head[0]!.split(' ')[1]);
      const headers: Record<string, string> = {};
      for (const line of head.slice(1)) {
        const i = line.indexOf(':');
        headers[line.slice(0, i).trim().toLowerCase()] = line.slice(i + 1).trim();
      }
      const len = Number(headers['content-length'] ?? 0);
      if (buf.length - end - 4 < len) return;
      resolve({ status, headers, body: buf.subarray(end + 4, end + 4 + len).toString('utf8') });
      done();
    });
    sock.on('connect', () => {
      sock.write(text);
      if (opts.body !== undefined && !opts.holdBody) sock.write(opts.body);
    });
  });
}

const get = (host: string, path = '/readyz') =>
  raw(`GET ${path} HTTP/1.1\r\nHost: ${host}\r\naccept: application/json\r\nconnection: close\r\n\r\n`);

const post = (host: string, path: string, json: unknown) => {
  const body = JSON.stringify(json);
  return raw(
    `POST ${path} HTTP/1.1\r\nHost: ${host}\r\ncontent-type: application/json\r\naccept: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n`,
    { body },
  );
};

/** The platform's outbox rows, newest first. */
function outboxCount(): Promise<number> {
  return env.s.app.platformDbs.use(env.platformId, (db) =>
    Number(db.query<{ n: number }, []>('SELECT count(*) AS n FROM outbox').get()?.n ?? 0),
  );
}

describe('Host header attacks: refused with 400 before routing, nothing written', () => {
  const cases: { name: string; host: string; path?: string }[] = [
    { name: 'userinfo after a port (the reported attack)', host: 'alpha.localhost:1@evil.example' },
    {
      name: 'the padded path of the reported attack',
      host: 'alpha.localhost:1@evil.example',
      path: '/xxxxxxxxxxx/api/v1/auth/password-reset',
    },
    { name: 'a name where the port goes', host: 'alpha.localhost:evil.example' },
    { name: 'userinfo without a port', host: 'alpha.localhost@evil.example' },
    { name: 'userinfo before the host', host: 'user@alpha.localhost' },
    { name: 'two ports', host: 'alpha.localhost:80:81' },
    { name: 'an empty port', host: 'alpha.localhost:' },
    { name: 'a port past 65535', host: 'alpha.localhost:99999' },
    { name: 'a port with a sign', host: 'alpha.localhost:+80' },
    { name: 'a path in the host', host: 'alpha.localhost/evil' },
    { name: 'a query in the host', host: 'alpha.localhost?x=1' },
    { name: 'a fragment in the host', host: 'alpha.localhost#x' },
    { name: 'percent-encoding', host: 'alpha.localhost%2fevil.example' },
    { name: 'an unclosed IPv6 bracket', host: '[::1' },
    { name: 'junk after an IPv6 literal', host: '[::1]evil' },
    { name: 'not an IPv6 address in brackets', host: '[evil.example]' },
    { name: 'a backslash', host: 'alpha.localhost\\evil.example' },
    { name: 'an empty label', host: 'alpha..localhost' },
    { name: 'a label of 64 characters', host: `${'a'.repeat(64)}.localhost` },
    // Red-team variants: an IPv6 zone id is no part of a Host (RFC 9110 uri-host).
    { name: 'an IPv6 zone id (percent-encoded)', host: '[fe80::1%25eth0]' },
    { name: 'an IPv6 zone id', host: '[fe80::1%eth0]:8080' },
    { name: 'an IPv6 zone id hiding a name', host: '[::1%25@evil.example]' },
  ];
  for (const c of cases) {
    test(`${c.name}: ${JSON.stringify(c.host)}`, async () => {
      const before = await outboxCount();
      const r = c.path
        ? await post(c.host, c.path, { email: env.owner.email })
        : await get(c.host, '/api/v1/auth/me');
      expect(r.status).toBe(400);
      expect(JSON.parse(r.body).error.code).toBe('request.bad_host');
      expect(await outboxCount()).toBe(before);
    });
  }

  test('a request with no Host header at all is refused', async () => {
    const r = await raw('GET /readyz HTTP/1.0\r\naccept: application/json\r\n\r\n');
    expect(r.status).toBe(400);
  });

  const honest: { name: string; host: string; kind: 'platform' | 'operator' }[] = [
    { name: 'the platform host with the port', host: `alpha.localhost:${0}`, kind: 'platform' },
    { name: 'the platform host without a port', host: 'alpha.localhost', kind: 'platform' },
    { name: 'upper case', host: 'ALPHA.LOCALHOST', kind: 'platform' },
    { name: 'a trailing dot', host: 'alpha.localhost.', kind: 'platform' },
    { name: 'the base domain', host: 'localhost', kind: 'operator' },
    { name: 'an IPv4 address and port', host: '127.0.0.1:8080', kind: 'operator' },
    { name: 'an IPv6 literal and port', host: '[::1]:8080', kind: 'operator' },
  ];
  for (const h of honest) {
    test(`honest Host is served: ${h.name}`, async () => {
      const host = h.host.replace(':0', `:${env.s.port}`);
      const r = await get(host);
      expect(r.status).toBe(200);
      const body = JSON.parse(r.body);
      if (h.kind === 'platform') expect(body.platform).toBe('alpha');
      else expect(body.status).toBeDefined();
    });
  }
});

describe('links and endpoints come from the stored public URL and the platform host', () => {
  // The server's stored public URL is http://localhost:<port>: scheme and port come from it.
  const expected = () => `http://alpha.localhost:${env.s.port}`;

  for (const host of ['alpha.localhost', 'ALPHA.localhost:1', 'alpha.localhost.:65535']) {
    test(`with Host ${host}: the SAML SP entity ID and ACS URL are the stored ones`, async () => {
      const r = await get(host, '/sso/saml/metadata');
      expect(r.status).toBe(200);
      expect(r.body).toContain(`entityID="${expected()}/sso/saml/metadata"`);
      expect(r.body).toContain(`Location="${expected()}/sso/saml/acs"`);
    });
  }

  test('a password-reset link asked for with an odd but valid Host points at the stored origin', async () => {
    const r = await post('ALPHA.localhost:1', '/api/v1/auth/password-reset', { email: env.owner.email });
    expect(r.status).toBe(202);
    // Bodies are sealed at rest; readOutbox opens them as the mailer would.
    const body = await env.s.app.platformDbs.use(env.platformId, (db) =>
      readOutbox(db, { template: 'reset_password', includeSent: true }).at(-1),
    );
    expect(body?.body).toContain(`${expected()}/app/reset-password?token=`);
    expect(body?.body).not.toContain(':1/');
  });
});

describe('body limits: refused before the body is read, parsed or authenticated', () => {
  test('a declared 120 MB body gets 413 before a byte of it is sent', async () => {
    const r = await raw(
      `POST /api/v1/auth/login HTTP/1.1\r\nHost: alpha.localhost\r\ncontent-type: application/json\r\ncontent-length: 120000000\r\n\r\n`,
      { body: 'x', holdBody: true },
    );
    // Past the largest cap of any route, Bun itself answers (maxRequestBodySize).
    expect(r.status).toBe(413);
  });

  test('a declared body over the platform API limit (64 KiB) gets 413 before authentication', async () => {
    const r = await raw(
      `POST /api/v1/users HTTP/1.1\r\nHost: alpha.localhost\r\ncontent-type: application/json\r\ncontent-length: ${64 * 1024 + 1}\r\n\r\n`,
      { holdBody: true, body: '' },
    );
    expect(r.status).toBe(413);
    expect(JSON.parse(r.body).error.code).toBe('request.too_large');
  });

  test('a chunked body that grows past the limit is refused with 413', async () => {
    const chunk = 'a'.repeat(16 * 1024);
    const res = await hostFetch(env.s.base, 'alpha.localhost', '/api/v1/auth/login', {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json' },
      body: new ReadableStream({
        start(c) {
          for (let i = 0; i < 8; i++) c.enqueue(new TextEncoder().encode(chunk));
          c.close();
        },
      }),
    });
    expect(res.status).toBe(413);
  });

  test('a chunked body under the limit is read and handled as usual', async () => {
    const json = JSON.stringify({ email: env.owner.email, password: env.owner.password });
    const res = await hostFetch(env.s.base, 'alpha.localhost', '/api/v1/auth/login', {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json' },
      body: new ReadableStream({
        start(c) {
          c.enqueue(new TextEncoder().encode(json.slice(0, 10)));
          c.enqueue(new TextEncoder().encode(json.slice(10)));
          c.close();
        },
      }),
    });
    expect(res.status).toBe(200);
  });

  test('AI routes take larger bodies (1 MiB reaches authentication: 401, not 413)', async () => {
    const r = await raw(
      `POST /v1/embeddings HTTP/1.1\r\nHost: alpha.localhost\r\ncontent-type: application/json\r\ncontent-length: ${1024 * 1024}\r\nconnection: close\r\n\r\n`,
      { body: Buffer.alloc(1024 * 1024, 0x20) },
    );
    expect(r.status).toBe(401);
  });

  // Red-team variant: 8 concurrent 120 MB bodies became 64 concurrent 8 MiB ones (+400 MB of
  // resident memory, all answered 401 after the body was read). A body larger than the default
  // cap is read only for a caller who is signed in or holds a valid key: anyone else gets 401,
  // unread, before a byte of the body is sent.
  const anonymousLarge: { name: string; path: string; headers: string; chunked?: boolean; host?: string }[] =
    [
      { name: 'no credentials, AI route', path: '/v1/chat/completions', headers: '' },
      { name: 'no credentials, embeddings', path: '/v1/embeddings', headers: '' },
      {
        name: 'a made-up API key',
        path: '/v1/chat/completions',
        headers: `authorization: Bearer sf_abcdefghij_${'A'.repeat(43)}\r\n`,
      },
      { name: 'a junk bearer', path: '/v1/chat/completions', headers: 'authorization: Bearer x\r\n' },
      {
        name: 'a made-up session cookie',
        path: '/v1/chat/completions',
        headers: `cookie: sf_session=${'a'.repeat(43)}\r\n`,
      },
      {
        name: 'a made-up SCIM token',
        path: '/scim/v2/Users',
        headers: `authorization: Bearer sfscim_${'a'.repeat(43)}\r\n`,
      },
      { name: 'no credentials, chunked', path: '/v1/chat/completions', headers: '', chunked: true },
      {
        name: 'operator API without a token',
        path: '/_operator/api/platforms',
        headers: '',
        host: 'localhost',
      },
      {
        name: 'operator API with a made-up token',
        path: '/_operator/api/platforms',
        headers: `authorization: Bearer sfo_${'a'.repeat(43)}\r\n`,
        host: 'localhost',
      },
    ];
  for (const c of anonymousLarge) {
    test(`a large body without valid credentials is refused unread: ${c.name} → 401`, async () => {
      const size = c.host ? 512 * 1024 : 4 * 1024 * 1024;
      const head = c.chunked ? 'transfer-encoding: chunked\r\n' : `content-length: ${size}\r\n`;
      const chunk = 'a'.repeat(128 * 1024);
      const r = await raw(
        `POST ${c.path} HTTP/1.1\r\nHost: ${c.host ?? 'alpha.localhost'}\r\ncontent-type: application/json\r\naccept: application/json\r\n${c.headers}${head}\r\n`,
        c.chunked ? { body: `${chunk.length.toString(16)}\r\n${chunk}\r\n` } : { body: '', holdBody: true },
      );
      expect(r.status).toBe(401);
      expect(r.headers.connection).toBe('close');
    });
  }

  for (const host of ['nosuch.localhost', 'nosuch.localhost:1']) {
    test(`a chunked body to a host that serves no platform (${host}) is cut at the default cap → 413`, async () => {
      const chunk = 'a'.repeat(128 * 1024);
      const r = await raw(
        `POST /v1/chat/completions HTTP/1.1\r\nHost: ${host}\r\ncontent-type: application/json\r\naccept: application/json\r\ntransfer-encoding: chunked\r\n\r\n`,
        { body: `${chunk.length.toString(16)}\r\n${chunk}\r\n` },
      );
      expect(r.status).toBe(413);
      expect(r.headers.connection).toBe('close');
    });
  }

  test('the SAML ACS still takes a large anonymous body (an IdP answer with many groups): not 401, not 413', async () => {
    const form = `SAMLResponse=${'A'.repeat(200 * 1024)}&RelayState=x`;
    const r = await raw(
      `POST /sso/saml/acs HTTP/1.1\r\nHost: alpha.localhost\r\ncontent-type: application/x-www-form-urlencoded\r\naccept: application/json\r\ncontent-length: ${form.length}\r\nconnection: close\r\n\r\n`,
      { body: form },
    );
    expect([401, 413]).not.toContain(r.status);
  });

  test('a large body with a valid API key is read and reaches the route (not 401, not 413)', async () => {
    const owner = new PlatformClient(env.s.base, 'alpha.localhost');
    expect((await owner.signIn(env.owner.email, env.owner.password)).status).toBe(200);
    const made = await owner.json<{ key: string }>('POST', '/api/v1/api-keys', {
      name: 'big',
      scopes: ['ai:invoke'],
    });
    expect(made.status).toBe(201);
    const body = JSON.stringify({
      model: 'no-such-model',
      messages: [{ role: 'user', content: 'x'.repeat(1024 * 1024) }],
    });
    const res = await hostFetch(env.s.base, 'alpha.localhost', '/v1/chat/completions', {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${made.body.key}` },
      body,
    });
    expect([401, 413]).not.toContain(res.status);
  });

  const unparsed = '{"email": ';
  const order: {
    name: string;
    who: 'anonymous' | 'member' | 'owner';
    path: string;
    status: number;
    code: string;
  }[] = [
    {
      name: 'anonymous, bad JSON to an admin route',
      who: 'anonymous',
      path: '/api/v1/users',
      status: 401,
      code: 'auth.required',
    },
    {
      name: 'a member, bad JSON to an admin route',
      who: 'member',
      path: '/api/v1/users',
      status: 403,
      code: 'auth.forbidden',
    },
    {
      name: 'the owner, bad JSON to an admin route',
      who: 'owner',
      path: '/api/v1/users',
      status: 400,
      code: 'request.invalid_json',
    },
  ];
  for (const c of order) {
    test(`401/403 come before body validation: ${c.name} → ${c.status}`, async () => {
      const client = new PlatformClient(env.s.base, 'alpha.localhost');
      if (c.who !== 'anonymous') {
        const owner = new PlatformClient(env.s.base, 'alpha.localhost');
        expect((await owner.signIn(env.owner.email, env.owner.password)).status).toBe(200);
        if (c.who === 'owner') {
          client.csrf = owner.csrf;
          for (const [k, v] of owner.jar) client.jar.set(k, v);
        } else {
          const email = `m${crypto.randomUUID().slice(0, 8)}@alpha.test`;
          const made = await owner.json<{ password?: string }>('POST', '/api/v1/users', {
            email,
            role: 'member',
            password: 'a-long-member-password-1',
          });
          expect(made.status).toBe(201);
          expect((await client.signIn(email, 'a-long-member-password-1')).status).toBe(200);
        }
      }
      const res = await client.fetch(c.path, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: unparsed,
      });
      expect(res.status).toBe(c.status);
      expect(((await res.json()) as { error: { code: string } }).error.code).toBe(c.code);
    });
  }

  test('media types are case-insensitive: APPLICATION/JSON with charset is parsed as JSON', async () => {
    const res = await hostFetch(env.s.base, 'alpha.localhost', '/api/v1/auth/login', {
      method: 'POST',
      headers: { 'content-type': 'APPLICATION/JSON; charset=UTF-8', accept: 'application/json' },
      body: JSON.stringify({ email: env.owner.email, password: env.owner.password }),
    });
    expect(res.status).toBe(200);
  });

  test('operator API: bad JSON without a token is 401, with a token 400', async () => {
    const anon = await hostFetch(env.s.base, 'localhost', '/_operator/api/platforms', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: unparsed,
    });
    expect(anon.status).toBe(401);
    const authed = await hostFetch(env.s.base, 'localhost', '/_operator/api/platforms', {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${env.operatorToken}` },
      body: unparsed,
    });
    expect(authed.status).toBe(400);
    expect(((await authed.json()) as { error: { code: string } }).error.code).toBe('request.invalid_json');
  });
});
