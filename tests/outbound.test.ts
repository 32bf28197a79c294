import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import type { TCPSocketListener } from 'bun';
import { operatorApi } from './helpers.ts';
import { PlatformClient, serverWithPlatform } from './platform-client.ts';

// SSRF through OIDC discovery, end to end: an instance whose config does NOT open loopback. A
// tenant admin (and the operator) save OIDC settings whose issuer points at a canary on
// 127.0.0.1; the save is refused with one generic answer and the canary sees no connection.
// Every target here is 127.0.0.1 (or a spelling of it): the refusals of other address classes
// are tested in src/shared/outbound.test.ts with a resolver and connector that open no socket.

let env: Awaited<ReturnType<typeof serverWithPlatform>>;
let canary: TCPSocketListener<undefined>;
let connections = 0;
let admin: PlatformClient;
const GENERIC = 'the issuer could not be reached, or did not answer as an OpenID provider';

beforeAll(async () => {
  // A raw TCP canary: it counts every connection (http or TLS alike) and answers like a web server.
  canary = Bun.listen({
    hostname: '127.0.0.1',
    port: 0,
    socket: {
      open() {
        connections++;
      },
      data(s) {
        s.end('HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n{}');
      },
    },
  });
  env = await serverWithPlatform('acme');
  const owner = new PlatformClient(env.s.base, `acme.localhost:${env.s.port}`);
  expect((await owner.signIn(env.owner.email, env.owner.password)).status).toBe(200);
  const pw = 'an-admin-password-123';
  expect(
    (await owner.json('POST', '/api/v1/users', { email: 'admin@acme.test', password: pw, role: 'admin' }))
      .status,
  ).toBe(201);
  admin = new PlatformClient(env.s.base, `acme.localhost:${env.s.port}`);
  expect((await admin.signIn('admin@acme.test', pw)).status).toBe(200);
}, 30_000);

afterAll(async () => {
  canary?.stop(true);
  await env?.s.cleanup();
});

describe('SSRF through OIDC discovery, without outbound.allow', () => {
  const issuers = () => {
    const p = canary.port;
    return [
      { name: 'loopback over http', issuer: `http://127.0.0.1:${p}/` },
      { name: 'loopback over https', issuer: `https://127.0.0.1:${p}/` },
      { name: 'localhost (resolved, then refused)', issuer: `http://localhost:${p}/` },
      { name: 'IPv6 loopback', issuer: `http://[::1]:${p}/` },
      { name: 'loopback as one decimal number', issuer: `https://2130706433:${p}/` },
      { name: 'loopback in hex', issuer: `https://0x7f000001:${p}/` },
      { name: 'loopback, IPv4-mapped IPv6', issuer: `https://[::ffff:127.0.0.1]:${p}/` },
      { name: 'the unspecified address (this machine)', issuer: `https://0.0.0.0:${p}/` },
      { name: 'a path that names the discovery document', issuer: `https://127.0.0.1:${p}/.well-known/x` },
    ];
  };

  test('a tenant admin: every spelling of loopback is refused with one answer, and no connection is made', async () => {
    for (const c of issuers()) {
      const r = await admin.json<{
        error: { code: string; message: string; details: { path: string; reason: string }[] };
      }>('PUT', '/api/v1/sso/oidc', {
        issuer: c.issuer,
        client_id: 'probe',
        client_secret: 'probe-secret-0123456789',
      });
      expect({ name: c.name, status: r.status }).toEqual({ name: c.name, status: 400 });
      expect(r.body.error.code).toBe('sso.oidc_discovery_failed');
      expect(r.body.error.message).toBe(`OpenID discovery at ${c.issuer} failed: ${GENERIC}`);
      expect(r.body.error.details).toEqual([{ path: '/issuer', reason: GENERIC }]);
    }
    expect(connections).toBe(0);
    const g = await admin.json<{ error: { code: string } }>('GET', '/api/v1/sso/oidc');
    expect(g.status).toBe(404);
  });

  test('the operator console goes through the same guard', async () => {
    for (const c of issuers().slice(0, 3)) {
      const r = await operatorApi(env.s.base, env.operatorToken, 'PUT', '/sso/oidc', {
        issuer: c.issuer,
        client_id: 'console',
        client_secret: 'console-secret-0123456789',
      });
      const body = (await r.json()) as { error: { code: string; message: string } };
      expect({ name: c.name, status: r.status }).toEqual({ name: c.name, status: 400 });
      expect(body.error).toMatchObject({
        code: 'sso.oidc_discovery_failed',
        message: `OpenID discovery at ${c.issuer} failed: ${GENERIC}`,
      });
    }
    expect(connections).toBe(0);
  });

  test('the canary does count connections (this test can see one)', async () => {
    const before = connections;
    const res = await fetch(`http://127.0.0.1:${canary.port}/`);
    expect(await res.text()).toBe('{}');
    expect(connections).toBe(before + 1);
  });
});
