import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { platformRoutes, routePermissions } from '../src/server/platform.routes.ts';
import { inProcessWithPlatform } from './inproc.ts';
import { PlatformClient } from './platform-client.ts';

// Credentials of platform A must be refused on every route of platform B, and on the operator
// API. The walk covers every route of the platform app's route table, whatever issue added it.
// In process (the server's fetch handler, no socket): what is under test is who is let in.
let env: Awaited<ReturnType<typeof inProcessWithPlatform>>;
const creds: { name: string; headers: Record<string, string> }[] = [];

beforeAll(async () => {
  env = await inProcessWithPlatform('alpha');
  // Every feature that gates routes is on at B, so each route answers for its credentials
  // (a switched-off feature answers 404 feature.disabled to everyone, before credentials).
  const b = await env.s.operatorApi('POST', '/platforms', {
    slug: 'beta',
    blueprint: {
      features: {
        agent_creation: true,
        agent_marketplace: true,
        sso_integration: true,
        collaborative_agents: true,
        viral_sharing: true,
      },
    },
  });
  expect(b.status).toBe(201);
  const a = new PlatformClient(env.s.request, env.host);
  expect((await a.signIn(env.owner.email, env.owner.password)).status).toBe(200);
  creds.push({
    name: "A's session cookie",
    headers: { cookie: `sf_session=${a.jar.get('sf_session')}`, 'x-csrf-token': a.csrf! },
  });
  const key = await env.s.operatorApi('POST', '/platforms/alpha/api-keys', {
    name: 'all',
    scopes: ['admin'],
  });
  creds.push({
    name: "A's admin API key",
    headers: { authorization: `Bearer ${((await key.json()) as { key: string }).key}` },
  });
  const scim = await a.json<{ token?: string }>('POST', '/api/v1/scim/tokens', { name: 'idp' });
  if (scim.status === 201 && scim.body.token)
    creds.push({ name: "A's SCIM token", headers: { authorization: `Bearer ${scim.body.token}` } });
});
afterAll(async () => {
  await env.s.close();
});

describe("A's credentials on B", () => {
  test('every non-public route of B refuses them with 401', async () => {
    const routes = [...routePermissions(platformRoutes({ ai: {} } as never))].filter(
      ([, perm]) => perm !== 'public',
    );
    expect(routes.length).toBeGreaterThan(10);
    const failures: string[] = [];
    for (const [route, perm] of routes) {
      const [method, path] = route.split(' ') as [string, string];
      const url = path.replace(/:(\w+)/g, 'x1');
      for (const c of creds) {
        const res = await env.s.request('beta.localhost', url, {
          method,
          headers: { accept: 'application/json', 'content-type': 'application/json', ...c.headers },
          body: method === 'GET' || method === 'HEAD' ? undefined : '{}',
        });
        if (res.status !== 401)
          failures.push(`${route} (${perm}) with ${c.name}: ${res.status} ${await res.text()}`);
      }
    }
    expect(failures).toEqual([]);
  });

  test('the same credentials work on A (so the walk above tests isolation, not broken credentials)', async () => {
    for (const c of creds.filter((x) => !x.name.includes('SCIM'))) {
      const res = await env.s.request('alpha.localhost', '/api/v1/me', {
        headers: { accept: 'application/json', ...c.headers },
      });
      expect({ cred: c.name, status: res.status }).toEqual({ cred: c.name, status: 200 });
    }
  });

  test('the operator API refuses platform credentials', async () => {
    for (const c of creds) {
      const res = await env.s.request('localhost', '/_operator/api/platforms', {
        headers: { accept: 'application/json', ...c.headers },
      });
      expect({ cred: c.name, status: res.status }).toEqual({ cred: c.name, status: 401 });
    }
  });
});
