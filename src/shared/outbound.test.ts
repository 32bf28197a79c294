import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TCPSocketListener } from 'bun';
import {
  type CheckedTarget,
  type Connector,
  classifyAddress,
  createOutboundGuard,
  fetchConnector,
  OUTBOUND_FAILED,
  OUTBOUND_MESSAGE,
  OutboundError,
  type OutboundInit,
  type OutboundOptions,
  type OutboundReason,
  parseCidr,
  type Resolver,
} from './outbound.ts';

// Public addresses the fake resolver hands out. No socket is ever opened to them: the fake
// connector answers for them from a script (or refuses), and records every attempt.
const PUBLIC = '93.184.216.34';
const PUBLIC_2 = '151.101.1.69';
const PUBLIC_V6 = '2606:2800:220:1:248:1893:25c8:1946';

/** A resolver from a table; a name with a list of answer lists answers them in turn (rebinding). */
function fakeResolver(table: Record<string, string[] | string[][] | Error>): Resolver & { calls: string[] } {
  const calls: string[] = [];
  const seen = new Map<string, number>();
  const r = async (name: string) => {
    calls.push(name);
    const entry = table[name];
    if (entry === undefined)
      throw Object.assign(new Error(`getaddrinfo ENOTFOUND ${name}`), { code: 'ENOTFOUND' });
    if (entry instanceof Error) throw entry;
    const n = seen.get(name) ?? 0;
    seen.set(name, n + 1);
    const list = Array.isArray(entry[0])
      ? (entry as string[][])[Math.min(n, entry.length - 1)]!
      : (entry as string[]);
    return list.map((address) => ({ address, family: address.includes(':') ? (6 as const) : (4 as const) }));
  };
  return Object.assign(r, { calls });
}

/** A connector that records every attempt and answers only for scripted public addresses. */
function fakeConnector(
  script: Record<string, (t: CheckedTarget, headers: Headers) => Response> = {},
): Connector & { attempts: { address: string; url: string; host: string | null }[] } {
  const attempts: { address: string; url: string; host: string | null }[] = [];
  const c: Connector = async (t, req) => {
    attempts.push({ address: t.address, url: t.url.href, host: t.url.host });
    const answer = script[t.address];
    if (!answer) throw new TypeError(`test connector: no connection to ${t.address}`);
    return answer(t, req.headers);
  };
  return Object.assign(c, { attempts });
}

const redirect =
  (location: string, status = 302) =>
  () =>
    new Response(null, { status, headers: { location } });

/** Runs a request and returns the OutboundError it fails with (fails the test if it succeeds). */
async function refusal(p: Promise<unknown>): Promise<OutboundError> {
  try {
    await p;
  } catch (e) {
    expect(e).toBeInstanceOf(OutboundError);
    return e as OutboundError;
  }
  throw new Error('the request was not refused');
}

/** Every address a forbidden-address check must refuse, whatever the resolver or URL spells. */
const FORBIDDEN =
  /^(127\.|10\.|0\.|169\.254\.|172\.(1[6-9]|2\d|3[01])\.|192\.168\.|100\.(6[4-9]|[7-9]\d|1[01]\d|12[0-7])\.|22[4-9]\.|23\d\.|24\d\.|25[0-5]\.|::1$|::$|f[cd]|fe[89ab]|ff|::ffff:|64:ff9b|2002:|2001:0?:)/i;

interface Attack {
  name: string;
  url: string;
  /** What the fake resolver answers. */
  dns?: Record<string, string[] | string[][] | Error>;
  /** What scripted public addresses answer (redirect hops). */
  script?: Record<string, (t: CheckedTarget, headers: Headers) => Response>;
  reason: OutboundReason;
  options?: Partial<OutboundOptions>;
  init?: OutboundInit;
}

const attacks: Attack[] = [
  // Loopback, in every spelling the URL parser turns into 127.0.0.1 or ::1.
  { name: 'loopback IPv4', url: 'http://127.0.0.1:8080/', reason: 'forbidden_address' },
  { name: 'loopback, another 127/8 address', url: 'http://127.10.20.30/', reason: 'forbidden_address' },
  { name: 'loopback, short form 127.1', url: 'http://127.1/', reason: 'forbidden_address' },
  { name: 'loopback, one decimal number', url: 'http://2130706433/', reason: 'forbidden_address' },
  { name: 'loopback, hex', url: 'http://0x7f.0.0.1/', reason: 'forbidden_address' },
  { name: 'loopback, octal', url: 'http://0177.0.0.1/', reason: 'forbidden_address' },
  { name: 'loopback, percent-encoded', url: 'http://%31%32%37.0.0.1/', reason: 'forbidden_address' },
  { name: 'loopback, fullwidth digits', url: 'http://１２７.0.0.1/', reason: 'forbidden_address' },
  { name: 'loopback IPv6', url: 'http://[::1]:8080/', reason: 'forbidden_address' },
  { name: 'loopback, IPv4-mapped IPv6', url: 'http://[::ffff:127.0.0.1]/', reason: 'forbidden_address' },
  {
    name: 'loopback, IPv4-mapped long form',
    url: 'http://[0:0:0:0:0:ffff:7f00:1]/',
    reason: 'forbidden_address',
  },
  { name: 'loopback, IPv4-compatible IPv6', url: 'http://[::127.0.0.1]/', reason: 'forbidden_address' },
  {
    name: 'loopback through Teredo',
    url: 'http://[2001:0:4136:e378:8000:63bf:80ff:fffe]/',
    reason: 'forbidden_address',
  },
  {
    name: 'a name that resolves to loopback',
    url: 'https://idp.evil.test/',
    dns: { 'idp.evil.test': ['127.0.0.1'] },
    reason: 'forbidden_address',
  },
  {
    name: 'a name that resolves to ::1',
    url: 'https://idp.evil.test/',
    dns: { 'idp.evil.test': ['::1'] },
    reason: 'forbidden_address',
  },
  // Unspecified (connects to this machine on most systems).
  { name: 'unspecified 0.0.0.0', url: 'http://0.0.0.0:8080/', reason: 'forbidden_address' },
  { name: 'unspecified, 0 alone', url: 'http://0/', reason: 'forbidden_address' },
  { name: 'unspecified ::', url: 'http://[::]/', reason: 'forbidden_address' },
  // Cloud metadata, by address and by name.
  {
    name: 'metadata 169.254.169.254',
    url: 'http://169.254.169.254/latest/meta-data/',
    reason: 'forbidden_address',
  },
  { name: 'metadata, decimal', url: 'http://2852039166/', reason: 'forbidden_address' },
  { name: 'metadata, IPv4-mapped', url: 'http://[::ffff:a9fe:a9fe]/', reason: 'forbidden_address' },
  { name: 'metadata through NAT64', url: 'http://[64:ff9b::169.254.169.254]/', reason: 'forbidden_address' },
  { name: 'metadata through 6to4', url: 'http://[2002:a9fe:a9fe::1]/', reason: 'forbidden_address' },
  { name: 'metadata over IPv6 (AWS)', url: 'http://[fd00:ec2::254]/', reason: 'forbidden_address' },
  { name: 'ECS task metadata', url: 'http://169.254.170.2/v2/credentials', reason: 'forbidden_address' },
  { name: 'Alibaba metadata', url: 'http://100.100.100.200/latest/meta-data/', reason: 'forbidden_address' },
  {
    name: 'metadata.google.internal, even when it resolves to a public address',
    url: 'http://metadata.google.internal/computeMetadata/v1/',
    dns: { 'metadata.google.internal': [PUBLIC] },
    reason: 'forbidden_name',
  },
  {
    name: 'metadata name, upper case and trailing dot',
    url: 'http://METADATA.Google.Internal./',
    reason: 'forbidden_name',
  },
  { name: 'metadata, bare name', url: 'http://metadata/', reason: 'forbidden_name' },
  {
    name: 'a name that resolves to the metadata address',
    url: 'https://meta.evil.test/',
    dns: { 'meta.evil.test': ['169.254.169.254'] },
    reason: 'forbidden_address',
  },
  // Link-local.
  { name: 'link-local IPv4', url: 'http://169.254.10.20/', reason: 'forbidden_address' },
  { name: 'link-local IPv6', url: 'http://[fe80::1]/', reason: 'forbidden_address' },
  // Private networks.
  { name: 'RFC 1918 10/8', url: 'http://10.0.0.1/', reason: 'forbidden_address' },
  { name: 'RFC 1918 172.16/12 (low end)', url: 'http://172.16.0.1/', reason: 'forbidden_address' },
  { name: 'RFC 1918 172.16/12 (high end)', url: 'http://172.31.255.254/', reason: 'forbidden_address' },
  { name: 'RFC 1918 192.168/16', url: 'https://192.168.1.1/', reason: 'forbidden_address' },
  { name: 'CGNAT 100.64/10', url: 'http://100.64.0.1/', reason: 'forbidden_address' },
  { name: 'CGNAT 100.64/10 (high end)', url: 'http://100.127.255.254/', reason: 'forbidden_address' },
  { name: 'ULA fc00::/7 (fd)', url: 'http://[fd12:3456:789a::1]/', reason: 'forbidden_address' },
  { name: 'ULA fc00::/7 (fc)', url: 'http://[fc00::1]/', reason: 'forbidden_address' },
  { name: 'private through NAT64', url: 'http://[64:ff9b::a00:1]/', reason: 'forbidden_address' },
  { name: 'private through 6to4', url: 'http://[2002:c0a8:101::]/', reason: 'forbidden_address' },
  {
    name: 'a name that resolves to a private address',
    url: 'https://intranet.evil.test/',
    dns: { 'intranet.evil.test': ['10.1.2.3'] },
    reason: 'forbidden_address',
  },
  {
    name: 'a name that resolves to IPv4-mapped private',
    url: 'https://m.evil.test/',
    dns: { 'm.evil.test': ['::ffff:192.168.0.10'] },
    reason: 'forbidden_address',
  },
  {
    name: 'a name with a public and a private answer',
    url: 'https://mixed.evil.test/',
    dns: { 'mixed.evil.test': [PUBLIC, '10.0.0.5'] },
    reason: 'forbidden_address',
  },
  {
    name: 'a name with a public IPv6 and a ULA answer',
    url: 'https://mixed6.evil.test/',
    dns: { 'mixed6.evil.test': [PUBLIC_V6, 'fd00::5'] },
    reason: 'forbidden_address',
  },
  // Multicast, broadcast, reserved.
  { name: 'multicast IPv4', url: 'http://224.0.0.1/', reason: 'forbidden_address' },
  { name: 'multicast IPv6', url: 'http://[ff02::1]/', reason: 'forbidden_address' },
  { name: 'broadcast', url: 'http://255.255.255.255/', reason: 'forbidden_address' },
  { name: 'reserved 240/4', url: 'http://240.0.0.1/', reason: 'forbidden_address' },
  { name: 'benchmarking 198.18/15', url: 'http://198.18.0.1/', reason: 'forbidden_address' },
  { name: 'IPv6 outside global unicast', url: 'http://[4000::1]/', reason: 'forbidden_address' },
  // URLs the guard does not take at all.
  { name: 'file: scheme', url: 'file:///etc/passwd', reason: 'scheme' },
  { name: 'gopher: scheme', url: 'gopher://93.184.216.34:70/_x', reason: 'scheme' },
  { name: 'ftp: scheme', url: 'ftp://93.184.216.34/', reason: 'scheme' },
  { name: 'userinfo in the URL', url: `http://user:pass@${PUBLIC}/`, reason: 'userinfo' },
  { name: 'userinfo that hides the host', url: `http://${PUBLIC}@127.0.0.1/`, reason: 'userinfo' },
  { name: 'not a URL', url: 'not a url', reason: 'bad_url' },
  { name: 'a name that does not resolve', url: 'https://nowhere.evil.test/', dns: {}, reason: 'dns' },
  {
    name: 'a name with no address',
    url: 'https://empty.evil.test/',
    dns: { 'empty.evil.test': [] },
    reason: 'dns',
  },
  {
    name: 'a resolver answering junk',
    url: 'https://junk.evil.test/',
    dns: { 'junk.evil.test': ['not-an-ip'] },
    reason: 'dns',
  },
  // Redirects: every hop is checked again.
  {
    name: 'a public server redirecting to the metadata address',
    url: `http://${PUBLIC}/`,
    script: { [PUBLIC]: redirect('http://169.254.169.254/latest/meta-data/iam/') },
    reason: 'forbidden_address',
  },
  {
    name: 'a redirect to loopback, protocol-relative',
    url: `http://${PUBLIC}/`,
    script: { [PUBLIC]: redirect('//127.0.0.1:6379/') },
    reason: 'forbidden_address',
  },
  {
    name: 'a 307 redirect to a private address',
    url: `https://${PUBLIC}/token`,
    script: { [PUBLIC]: redirect('https://10.0.0.1/token', 307) },
    reason: 'forbidden_address',
  },
  {
    name: 'a redirect to a name that resolves to a private address',
    url: `https://${PUBLIC}/`,
    dns: { 'internal.evil.test': ['192.168.0.1'] },
    script: { [PUBLIC]: redirect('https://internal.evil.test/') },
    reason: 'forbidden_address',
  },
  {
    name: 'DNS rebinding across a redirect to the same name',
    url: 'https://rebind.evil.test/a',
    dns: { 'rebind.evil.test': [[PUBLIC], ['127.0.0.1']] },
    script: { [PUBLIC]: redirect('/b') },
    reason: 'forbidden_address',
  },
  {
    name: 'a redirect to a metadata name',
    url: `http://${PUBLIC}/`,
    script: { [PUBLIC]: redirect('http://metadata.google.internal/') },
    reason: 'forbidden_name',
  },
  {
    name: 'a redirect to file:',
    url: `http://${PUBLIC}/`,
    script: { [PUBLIC]: redirect('file:///etc/passwd') },
    reason: 'scheme',
  },
  {
    name: 'a redirect from https down to http',
    url: `https://${PUBLIC}/`,
    script: { [PUBLIC]: redirect(`http://${PUBLIC_2}/`) },
    reason: 'bad_redirect',
  },
  {
    name: 'an endless redirect loop',
    url: `https://${PUBLIC}/`,
    script: { [PUBLIC]: (t) => redirect(`/${Number(t.url.pathname.slice(1) || 0) + 1}`)() },
    reason: 'too_many_redirects',
  },
  {
    name: 'a redirect when the caller allows none',
    url: `https://${PUBLIC}/`,
    script: { [PUBLIC]: redirect(`https://${PUBLIC_2}/`) },
    init: { redirect: 'error' },
    reason: 'bad_redirect',
  },
  // Answers too big.
  {
    name: 'a declared body over the limit',
    url: `https://${PUBLIC}/`,
    script: { [PUBLIC]: () => new Response('x'.repeat(2048), { headers: { 'content-length': '2048' } }) },
    options: { maxBytes: 1024 },
    reason: 'too_large',
  },
  {
    name: 'a streamed body over the limit',
    url: `https://${PUBLIC}/`,
    script: {
      [PUBLIC]: () =>
        new Response(
          new ReadableStream({
            pull(c) {
              c.enqueue(new Uint8Array(512));
            },
          }),
        ),
    },
    options: { maxBytes: 4096 },
    reason: 'too_large',
  },
];

describe('outbound guard: attacks (fake resolver and connector; no socket is opened)', () => {
  for (const a of attacks) {
    test(`${a.name}: refused (${a.reason}), no connection to a forbidden address`, async () => {
      const resolve = fakeResolver(a.dns ?? {});
      const connect = fakeConnector(a.script);
      const failures: OutboundError[] = [];
      const guard = createOutboundGuard({
        resolve,
        connect,
        onFailure: (e) => failures.push(e),
        ...a.options,
      });
      const e = await refusal(guard.fetch(a.url, a.init));
      expect(e.reason).toBe(a.reason);
      // One code, one message, one status, whatever happened.
      expect(e.code).toBe(OUTBOUND_FAILED);
      expect(e.message).toBe(OUTBOUND_MESSAGE);
      expect(e.status).toBe(502);
      expect(JSON.stringify(e.toJSON())).not.toContain(e.detail);
      // What happened went to the log hook.
      expect(failures.map((f) => f.reason)).toEqual([a.reason]);
      expect(failures[0]!.detail.length).toBeGreaterThan(0);
      for (const at of connect.attempts) expect(at.address).not.toMatch(FORBIDDEN);
      // Only scripted public addresses were ever handed to the connector.
      for (const at of connect.attempts) expect(Object.keys(a.script ?? {})).toContain(at.address);
    });
  }

  test('the forbidden-address pattern of this table matches what it should (the check is real)', () => {
    for (const ip of ['127.0.0.1', '10.0.0.1', '169.254.169.254', '::1', 'fd00::1', '::ffff:10.0.0.1'])
      expect(ip).toMatch(FORBIDDEN);
    for (const ip of [PUBLIC, PUBLIC_2, PUBLIC_V6]) expect(ip).not.toMatch(FORBIDDEN);
  });

  test('DNS rebinding: the name is resolved once and the connection goes to the checked address', async () => {
    const resolve = fakeResolver({ 'idp.rebind.test': [[PUBLIC], ['169.254.169.254']] });
    const seen: { host: string | null }[] = [];
    const connect = fakeConnector({
      [PUBLIC]: (_t, h) => {
        seen.push({ host: h.get('host') });
        return Response.json({ ok: true });
      },
    });
    const guard = createOutboundGuard({ resolve, connect });
    const res = await guard.fetch('https://idp.rebind.test/.well-known/openid-configuration');
    expect(await res.json()).toEqual({ ok: true });
    expect(resolve.calls).toEqual(['idp.rebind.test']);
    expect(connect.attempts).toEqual([
      {
        address: PUBLIC,
        url: 'https://idp.rebind.test/.well-known/openid-configuration',
        host: 'idp.rebind.test',
      },
    ]);
    // A second request resolves again and is refused at the rebound address.
    const e = await refusal(guard.fetch('https://idp.rebind.test/jwks'));
    expect(e.reason).toBe('forbidden_address');
    expect(connect.attempts.length).toBe(1);
  });

  test('a redirect chain among public servers is followed, method and credentials as fetch does', async () => {
    const seen: { address: string; url: string; method?: string; auth: string | null }[] = [];
    const connect: Connector = async (t, req) => {
      seen.push({
        address: t.address,
        url: t.url.href,
        method: req.method,
        auth: req.headers.get('authorization'),
      });
      if (t.address === PUBLIC && t.url.pathname === '/start')
        return new Response(null, { status: 303, headers: { location: '/same-origin' } });
      if (t.address === PUBLIC)
        return new Response(null, { status: 302, headers: { location: `https://${PUBLIC_2}/end` } });
      return new Response('done');
    };
    const guard = createOutboundGuard({ resolve: fakeResolver({}), connect });
    const res = await guard.fetch(`https://${PUBLIC}/start`, {
      method: 'POST',
      body: 'a=1',
      headers: { authorization: 'Bearer s3cret', 'content-type': 'application/x-www-form-urlencoded' },
    });
    expect(await res.text()).toBe('done');
    expect(seen).toEqual([
      { address: PUBLIC, url: `https://${PUBLIC}/start`, method: 'POST', auth: 'Bearer s3cret' },
      { address: PUBLIC, url: `https://${PUBLIC}/same-origin`, method: 'GET', auth: 'Bearer s3cret' },
      // Another origin: the credentials stay behind.
      { address: PUBLIC_2, url: `https://${PUBLIC_2}/end`, method: 'GET', auth: null },
    ]);
  });

  test("redirect: 'manual' (what openid-client asks for) hands the redirect back unfollowed", async () => {
    const connect = fakeConnector({ [PUBLIC]: redirect('http://169.254.169.254/') });
    const guard = createOutboundGuard({ resolve: fakeResolver({}), connect });
    const res = await guard.fetch(`https://${PUBLIC}/`, { redirect: 'manual' });
    expect(res.status).toBe(302);
    expect(connect.attempts.map((a) => a.address)).toEqual([PUBLIC]);
  });

  test('a public IPv6 name is reached at its checked address', async () => {
    const connect = fakeConnector({ [PUBLIC_V6]: () => new Response('v6') });
    const guard = createOutboundGuard({ resolve: fakeResolver({ 'v6.example.test': [PUBLIC_V6] }), connect });
    expect(await (await guard.fetch('https://v6.example.test/')).text()).toBe('v6');
    expect(connect.attempts).toEqual([
      { address: PUBLIC_V6, url: 'https://v6.example.test/', host: 'v6.example.test' },
    ]);
  });

  test('a request that gets no answer in time fails as a timeout, with the same message', async () => {
    const connect: Connector = (_t, req) =>
      new Promise((_resolve, reject) =>
        req.signal.addEventListener('abort', () => reject(req.signal.reason)),
      );
    const guard = createOutboundGuard({ resolve: fakeResolver({}), connect, timeoutMs: 50 });
    const e = await refusal(guard.fetch(`https://${PUBLIC}/`));
    expect(e.reason).toBe('timeout');
    expect(e.message).toBe(OUTBOUND_MESSAGE);
  });

  test('a resolver that never answers is bounded by the same deadline', async () => {
    const guard = createOutboundGuard({
      resolve: () => new Promise(() => {}),
      connect: fakeConnector(),
      timeoutMs: 50,
    });
    expect((await refusal(guard.fetch('https://slow-dns.test/'))).reason).toBe('timeout');
  });

  test('checkTarget vets without connecting', async () => {
    const connect = fakeConnector();
    const guard = createOutboundGuard({
      resolve: fakeResolver({ 'ok.test': [PUBLIC], 'bad.test': ['10.9.8.7'] }),
      connect,
    });
    expect(await guard.checkTarget('https://ok.test/jwks')).toMatchObject({ address: PUBLIC, family: 4 });
    expect((await refusal(guard.checkTarget('https://bad.test/jwks'))).reason).toBe('forbidden_address');
    expect(connect.attempts).toEqual([]);
  });
});

describe('outbound guard: the operator allow list', () => {
  test('an allowed range is reached; a neighbour outside it is still refused', async () => {
    const connect = fakeConnector({ '10.1.2.3': () => new Response('on-prem idp') });
    const guard = createOutboundGuard({
      allow: ['10.1.0.0/16'],
      resolve: fakeResolver({ 'idp.corp.test': ['10.1.2.3'], 'db.corp.test': ['10.2.0.1'] }),
      connect,
    });
    expect(await (await guard.fetch('http://idp.corp.test/')).text()).toBe('on-prem idp');
    expect((await refusal(guard.fetch('http://db.corp.test/'))).reason).toBe('forbidden_address');
    expect((await refusal(guard.fetch('http://10.0.0.1/'))).reason).toBe('forbidden_address');
    expect(connect.attempts.map((a) => a.address)).toEqual(['10.1.2.3']);
  });

  test('allowing an IPv4 range covers its IPv4-mapped IPv6 spelling, and the connection uses IPv4', async () => {
    const connect = fakeConnector({ '127.0.0.1': () => new Response('mapped') });
    const guard = createOutboundGuard({ allow: ['127.0.0.1/32'], resolve: fakeResolver({}), connect });
    expect(await (await guard.fetch('http://[::ffff:127.0.0.1]:9/')).text()).toBe('mapped');
    expect(connect.attempts[0]!.address).toBe('127.0.0.1');
    // 127.0.0.2 is loopback too, but not allowed.
    expect((await refusal(guard.fetch('http://127.0.0.2/'))).reason).toBe('forbidden_address');
  });

  test('an allowed IPv6 range', async () => {
    const connect = fakeConnector({ 'fd00:1::5': () => new Response('ula ok') });
    const guard = createOutboundGuard({
      allow: ['fd00:1::/32'],
      resolve: fakeResolver({ 'idp6.corp.test': ['fd00:1::5'] }),
      connect,
    });
    expect(await (await guard.fetch('https://idp6.corp.test/')).text()).toBe('ula ok');
  });

  test('metadata names stay refused even when their address is allowed', async () => {
    const guard = createOutboundGuard({
      allow: ['169.254.0.0/16'],
      resolve: fakeResolver({ 'metadata.google.internal': ['169.254.169.254'] }),
      connect: fakeConnector(),
    });
    expect((await refusal(guard.fetch('http://metadata.google.internal/'))).reason).toBe('forbidden_name');
  });

  test('a bad CIDR in the allow list is refused when the guard is built', () => {
    expect(() => createOutboundGuard({ allow: ['10.0.0.0'] })).toThrow(/prefix length/);
  });
});

describe('outbound guard: per-request options (agent tools)', () => {
  const PUB = '93.184.216.34';
  const PUB2 = '93.184.216.35';
  test('allowUrl vets the first URL and every redirect, before anything is resolved', async () => {
    const resolve = fakeResolver({ 'a.test': [PUB], 'b.test': [PUB2] });
    const connect = fakeConnector({ [PUB]: redirect('http://b.test/'), [PUB2]: () => new Response('b') });
    const guard = createOutboundGuard({ resolve, connect });
    const onlyA = (u: URL) => u.hostname === 'a.test';
    expect((await refusal(guard.fetch('http://a.test/', { allowUrl: onlyA }))).reason).toBe('not_allowed');
    expect(resolve.calls).toEqual(['a.test']);
    expect(connect.attempts.map((a) => a.address)).toEqual([PUB]);
    expect((await refusal(guard.fetch('http://b.test/', { allowUrl: onlyA }))).reason).toBe('not_allowed');
    expect(resolve.calls).toEqual(['a.test']);
    expect(await (await guard.fetch('http://a.test/')).text()).toBe('b');
  });

  test('sensitive headers are dropped when a redirect leaves the origin, kept within it', async () => {
    const seen: (string | null)[] = [];
    const resolve = fakeResolver({ 'a.test': [PUB], 'b.test': [PUB2] });
    const connect = fakeConnector({
      [PUB]: (t, h) => {
        seen.push(h.get('x-api-key'));
        return t.url.pathname === '/'
          ? redirect('/same')()
          : t.url.pathname === '/same'
            ? redirect('http://b.test/')()
            : new Response('a');
      },
      [PUB2]: (_t, h) => {
        seen.push(h.get('x-api-key'));
        return new Response('b');
      },
    });
    const guard = createOutboundGuard({ resolve, connect });
    await guard.fetch('http://a.test/', { headers: { 'x-api-key': 'k' }, sensitiveHeaders: ['X-Api-Key'] });
    expect(seen).toEqual(['k', 'k', null]);
  });

  test("a request's own size limit and deadline override the guard's", async () => {
    const resolve = fakeResolver({ 'a.test': [PUB] });
    const connect: Connector = async (t, req) => {
      if (t.url.pathname === '/slow')
        return new Promise<Response>((_r, reject) =>
          req.signal.addEventListener('abort', () => reject(req.signal.reason)),
        );
      return new Response('x'.repeat(2000));
    };
    const guard = createOutboundGuard({ resolve, connect, maxBytes: 1_000_000, timeoutMs: 60_000 });
    expect((await guard.fetch('http://a.test/')).status).toBe(200);
    expect((await refusal(guard.fetch('http://a.test/', { maxBytes: 1000 }))).reason).toBe('too_large');
    const e = await refusal(guard.fetch('http://a.test/slow', { timeoutMs: 50 }));
    expect([e.reason, e.detail]).toEqual(['timeout', 'no complete answer within 50 ms']);
  });
});

describe('CIDR parsing and address classes', () => {
  const cidrs: { cidr: string; ok: boolean; reason?: RegExp }[] = [
    { cidr: '127.0.0.1/32', ok: true },
    { cidr: '10.0.0.0/8', ok: true },
    { cidr: '0.0.0.0/0', ok: true },
    { cidr: '::1/128', ok: true },
    { cidr: 'fd00::/8', ok: true },
    { cidr: '2001:db8::/32', ok: true },
    { cidr: '::ffff:10.0.0.0/104', ok: true },
    { cidr: '10.0.0.0', ok: false, reason: /prefix length/ },
    { cidr: '10.1.0.0/8', ok: false, reason: /bits set past/ },
    { cidr: '10.0.0.0/33', ok: false, reason: /0 to 32/ },
    { cidr: '::/129', ok: false, reason: /0 to 128/ },
    { cidr: '10.0.0.0/08', ok: false, reason: /0 to 32/ },
    { cidr: '010.0.0.0/8', ok: false, reason: /not an IPv4 or IPv6/ },
    { cidr: '256.0.0.0/8', ok: false, reason: /not an IPv4 or IPv6/ },
    { cidr: 'localhost/32', ok: false, reason: /not an IPv4 or IPv6/ },
    { cidr: '1:2:3:4:5:6:7:8:9/64', ok: false, reason: /not an IPv4 or IPv6/ },
    { cidr: '1::2::3/64', ok: false, reason: /not an IPv4 or IPv6/ },
    { cidr: 'fe80::1%eth0/64', ok: false, reason: /not an IPv4 or IPv6/ },
  ];
  for (const c of cidrs) {
    test(`${c.cidr}: ${c.ok ? 'a range' : 'refused'}`, () => {
      const r = parseCidr(c.cidr);
      expect(r.ok).toBe(c.ok);
      if (!r.ok) expect(r.reason).toMatch(c.reason!);
    });
  }

  const classes: [string, ReturnType<typeof classifyAddress>][] = [
    ['8.8.8.8', null],
    [PUBLIC, null],
    [PUBLIC_V6, null],
    ['100.63.255.255', null],
    ['100.128.0.0', null],
    ['172.15.255.255', null],
    ['172.32.0.0', null],
    ['64:ff9b::808:808', null], // NAT64 of a public address
    ['2002:808:808::1', null], // 6to4 of a public address
    ['127.0.0.1', 'loopback'],
    ['::1', 'loopback'],
    ['::ffff:127.0.0.1', 'loopback'],
    ['0.0.0.0', 'unspecified'],
    ['::', 'unspecified'],
    ['10.255.255.255', 'private'],
    ['100.64.0.0', 'private'],
    ['fc00::', 'private'],
    ['fdff:ffff::1', 'private'],
    ['169.254.169.254', 'metadata'],
    ['fd00:ec2::254', 'metadata'],
    ['64:ff9b::a9fe:a9fe', 'metadata'],
    ['169.254.0.1', 'link_local'],
    ['febf::1', 'link_local'],
    ['239.255.255.250', 'multicast'],
    ['ff05::1:3', 'multicast'],
    ['255.255.255.255', 'broadcast'],
    ['::7f00:1', 'reserved'],
    ['2001:db8::1', 'reserved'],
  ];
  for (const [ip, k] of classes) {
    test(`${ip} is ${k ?? 'public'}`, () => expect(classifyAddress(ip)).toBe(k));
  }
});

describe('outbound guard: the default connector, against canaries on 127.0.0.1 only', () => {
  // Every real socket in this file goes to 127.0.0.1, and only because the allow list opens it.
  const hits: { host: string | null; path: string }[] = [];
  let http: ReturnType<typeof Bun.serve>;
  let https: ReturnType<typeof Bun.serve>;
  let silent: TCPSocketListener<undefined>;
  let silentOpened = 0;
  let closedPort = 0;
  let cert = '';
  let dir = '';

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'soulfra-outbound-'));
    const proc = Bun.spawn(
      [
        'openssl',
        'req',
        '-x509',
        '-newkey',
        'rsa:2048',
        '-nodes',
        '-keyout',
        join(dir, 'key.pem'),
        '-out',
        join(dir, 'cert.pem'),
        '-days',
        '2',
        '-subj',
        '/CN=idp.canary.test',
        '-addext',
        'subjectAltName=DNS:idp.canary.test',
      ],
      { stdout: 'ignore', stderr: 'pipe' },
    );
    if ((await proc.exited) !== 0) throw new Error(`openssl: ${await new Response(proc.stderr).text()}`);
    cert = await Bun.file(join(dir, 'cert.pem')).text();
    const key = await Bun.file(join(dir, 'key.pem')).text();
    const handler = (req: Request) => {
      const path = new URL(req.url).pathname;
      hits.push({ host: req.headers.get('host'), path });
      if (path === '/redirect-to-metadata')
        return new Response(null, { status: 302, headers: { location: 'http://169.254.169.254/' } });
      if (path === '/big') return new Response('y'.repeat(5000));
      return Response.json({ path });
    };
    http = Bun.serve({ hostname: '127.0.0.1', port: 0, fetch: handler });
    https = Bun.serve({ hostname: '127.0.0.1', port: 0, tls: { cert, key }, fetch: handler });
    silent = Bun.listen({
      hostname: '127.0.0.1',
      port: 0,
      socket: {
        open() {
          silentOpened++;
        },
        data() {},
      },
    });
    const gone = Bun.serve({ hostname: '127.0.0.1', port: 0, fetch: () => new Response('') });
    closedPort = gone.port!;
    await gone.stop(true);
  });
  afterAll(async () => {
    await http?.stop(true);
    await https?.stop(true);
    silent?.stop(true);
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const guard = (opts: Partial<OutboundOptions> = {}) =>
    createOutboundGuard({
      allow: ['127.0.0.1/32'],
      resolve: fakeResolver({ 'idp.canary.test': ['127.0.0.1'], 'wrong.canary.test': ['127.0.0.1'] }),
      connect: fetchConnector({ ca: cert }),
      ...opts,
    });

  test('without the allow list, the canary sees no connection', async () => {
    const before = hits.length;
    const g = createOutboundGuard({ resolve: fakeResolver({ 'idp.canary.test': ['127.0.0.1'] }) });
    for (const u of [
      `http://127.0.0.1:${http.port}/`,
      `http://idp.canary.test:${http.port}/`,
      `https://127.0.0.1:${https.port}/`,
      `http://[::ffff:127.0.0.1]:${http.port}/`,
    ])
      expect((await refusal(g.fetch(u))).reason).toBe('forbidden_address');
    expect(hits.length).toBe(before);
  });

  test('http: the connection goes to the checked address and Host is the name', async () => {
    const res = await guard().fetch(`http://idp.canary.test:${http.port}/discovery`);
    expect(await res.json()).toEqual({ path: '/discovery' });
    expect(hits.at(-1)).toEqual({ host: `idp.canary.test:${http.port}`, path: '/discovery' });
  });

  test('https: SNI and the certificate check are those of the name, not of the address', async () => {
    const res = await guard().fetch(`https://idp.canary.test:${https.port}/jwks`);
    expect(await res.json()).toEqual({ path: '/jwks' });
    expect(hits.at(-1)).toEqual({ host: `idp.canary.test:${https.port}`, path: '/jwks' });
    // Another name on the same address: the certificate does not name it, so it is refused.
    const e = await refusal(guard().fetch(`https://wrong.canary.test:${https.port}/jwks`));
    expect(e.reason).toBe('connect');
  });

  test('a real redirect to the metadata address is not followed', async () => {
    const e = await refusal(guard().fetch(`http://127.0.0.1:${http.port}/redirect-to-metadata`));
    expect(e.reason).toBe('forbidden_address');
    expect(hits.at(-1)!.path).toBe('/redirect-to-metadata');
  });

  test('closed port, TLS to a plain server, silence and an oversized body: one message for all', async () => {
    const cases: { url: string; reason: OutboundReason; opts?: Partial<OutboundOptions> }[] = [
      { url: `http://127.0.0.1:${closedPort}/`, reason: 'connect' },
      { url: `https://127.0.0.1:${http.port}/`, reason: 'connect' },
      { url: `https://127.0.0.1:${https.port}/`, reason: 'connect' }, // no IP in the certificate
      { url: `http://127.0.0.1:${silent.port}/`, reason: 'timeout', opts: { timeoutMs: 300 } },
      { url: `http://127.0.0.1:${http.port}/big`, reason: 'too_large', opts: { maxBytes: 1000 } },
      { url: `http://127.0.0.2:${http.port}/`, reason: 'forbidden_address' },
    ];
    const messages = new Set<string>();
    for (const c of cases) {
      const e = await refusal(guard(c.opts).fetch(c.url));
      expect(e.reason).toBe(c.reason);
      messages.add(JSON.stringify(e.toJSON()));
    }
    expect([...messages]).toEqual([
      JSON.stringify({ error: { code: OUTBOUND_FAILED, message: OUTBOUND_MESSAGE } }),
    ]);
    expect(silentOpened).toBeGreaterThan(0);
  });
});
