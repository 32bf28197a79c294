import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { Validator } from '@seriousme/openapi-schema-validator';
import type { OpenAPIV3_1 } from 'openapi-types';
import { openApiPath } from '../src/server/openapi.ts';
import { operatorRoutes } from '../src/server/operator.routes.ts';
import { platformRoutes } from '../src/server/platform.routes.ts';
import { hostFetch, operatorApi } from './helpers.ts';
import { serverWithPlatform } from './platform-client.ts';

// The two API descriptions are generated from the apps' own route tables: each must be a valid
// OpenAPI 3.1 document listing every route of its app (and nothing else), with a reference
// page that works offline. And the typed routes keep the contract's order: 401/403 before a
// body is validated, then a 400 naming each field.
let env: Awaited<ReturnType<typeof serverWithPlatform>>;
beforeAll(async () => {
  env = await serverWithPlatform('orbit');
});
afterAll(async () => {
  await env.s.cleanup();
});

const getJson = async (host: string, path: string) => {
  const res = await hostFetch(env.s.base, host, path, { headers: { accept: 'application/json' } });
  return { res, doc: (await res.json()) as OpenAPIV3_1.Document };
};

/** `METHOD /path/{param}` of every operation of a document. */
const operations = (doc: OpenAPIV3_1.Document) =>
  Object.entries(doc.paths ?? {})
    .flatMap(([path, item]) => Object.keys(item ?? {}).map((m) => `${m.toUpperCase()} ${path}`))
    .sort();

/** `METHOD /path/{param}` of every route of an app (Elysia's own table). */
const routesOf = (app: { routes: { method: string; path: string }[] }) =>
  app.routes.map((r) => `${r.method} ${openApiPath(r.path)}`).sort();

const cases = [
  {
    name: 'platform',
    host: 'orbit.localhost',
    path: '/api/v1/openapi.json',
    page: '/api/v1/docs',
    routes: () => routesOf(platformRoutes({ ai: {} } as never)),
  },
  {
    name: 'operator',
    host: 'localhost',
    path: '/_operator/api/openapi.json',
    page: '/_operator/api/docs',
    routes: () => routesOf(operatorRoutes({} as never)),
  },
];

describe('OpenAPI documents', () => {
  for (const c of cases) {
    test(`the ${c.name} document is public, valid OpenAPI 3.1, and lists exactly the app's routes`, async () => {
      const { res, doc } = await getJson(c.host, c.path);
      expect(res.status).toBe(200);
      expect(doc.openapi).toBe('3.1.0');
      const v = await new Validator().validate(doc as never);
      expect({ valid: v.valid, errors: v.errors ?? null }).toEqual({ valid: true, errors: null });
      const routes = c.routes();
      expect(routes.length).toBeGreaterThan(20);
      expect(operations(doc)).toEqual(routes);
    });
  }

  test("the platform document names the platform, its origin, its security schemes, and each route's permission", async () => {
    const { doc } = await getJson('orbit.localhost', '/api/v1/openapi.json');
    expect(doc.info.title).toBe('Orbit API');
    expect(doc.servers?.[0]?.url).toMatch(/^http:\/\/orbit\.localhost(:\d+)?$/);
    expect(Object.keys(doc.components?.securitySchemes ?? {}).sort()).toEqual([
      'apiKey',
      'scimToken',
      'sessionCookie',
    ]);
    const users = doc.paths?.['/api/v1/users']?.post as OpenAPIV3_1.OperationObject & Record<string, unknown>;
    expect(users['x-permission']).toBe('users:write');
    expect(users.security).toEqual([{ sessionCookie: [] }, { apiKey: [] }]);
    const scim = doc.paths?.['/scim/v2/Users']?.get as OpenAPIV3_1.OperationObject;
    expect(scim.security).toEqual([{ scimToken: [] }]);
    const login = doc.paths?.['/api/v1/auth/login']?.post as OpenAPIV3_1.OperationObject;
    expect(login.security).toEqual([]);
    const mfa = doc.paths?.['/api/v1/auth/mfa']?.post as OpenAPIV3_1.OperationObject;
    const body = (mfa.requestBody as OpenAPIV3_1.RequestBodyObject).content['application/json']?.schema as {
      properties: Record<string, unknown>;
    };
    expect(Object.keys(body.properties).sort()).toEqual(['code', 'recovery_code']);
    const platform = doc.paths?.['/_operator/api/platforms'];
    expect(platform).toBeUndefined();
  });

  test('the operator document carries the schemas of its bodies, params and queries', async () => {
    const { doc } = await getJson('localhost', '/_operator/api/openapi.json');
    const create = doc.paths?.['/_operator/api/platforms']?.post as OpenAPIV3_1.OperationObject;
    const schema = (create.requestBody as OpenAPIV3_1.RequestBodyObject).content['application/json']
      ?.schema as {
      required: string[];
      additionalProperties: boolean;
      properties: Record<string, { 'x-error-code'?: string }>;
    };
    expect(schema.required).toEqual(['slug']);
    expect(schema.additionalProperties).toBe(false);
    expect(schema.properties.slug?.['x-error-code']).toBe('platform.slug_invalid');
    const show = doc.paths?.['/_operator/api/platforms/{slug}']?.get as OpenAPIV3_1.OperationObject;
    expect((show.parameters as OpenAPIV3_1.ParameterObject[]).map((p) => [p.name, p.in])).toEqual([
      ['slug', 'path'],
    ]);
    const tokens = doc.paths?.['/_operator/api/tokens']?.get as OpenAPIV3_1.OperationObject;
    expect((tokens.parameters as OpenAPIV3_1.ParameterObject[]).map((p) => [p.name, p.in])).toEqual([
      ['operator', 'query'],
    ]);
  });

  for (const c of cases) {
    test(`the ${c.name} reference page works offline: no script, nothing from elsewhere, CSP of its own`, async () => {
      const res = await hostFetch(env.s.base, c.host, c.page, { headers: { accept: 'text/html' } });
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toStartWith('text/html');
      const csp = res.headers.get('content-security-policy') ?? '';
      expect(csp).toStartWith("default-src 'none'; style-src 'sha256-");
      const html = await res.text();
      expect(html).not.toContain('<script');
      expect(html).not.toMatch(/(src|href)="(https?:)?\/\//);
      expect(html).toContain('openapi.json');
      // Every operation of the document is on the page.
      const { doc } = await getJson(c.host, c.path);
      for (const [path] of Object.entries(doc.paths ?? {})) expect(html).toContain(`<code>${path}</code>`);
      // The one style element matches the hash the CSP allows.
      const style = /<style>([\s\S]*?)<\/style>/.exec(html)?.[1] ?? '';
      const hash = new Bun.CryptoHasher('sha256').update(style).digest('base64');
      expect(csp).toContain(`'sha256-${hash}'`);
    });
  }
});

describe('typed routes', () => {
  test('authentication answers before body validation: an anonymous bad body is 401, not 400', async () => {
    const bad = JSON.stringify({ slug: 7, nope: true });
    const anon = await hostFetch(env.s.base, 'localhost', '/_operator/api/platforms', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: bad,
    });
    expect(anon.status).toBe(401);
    const p = await hostFetch(env.s.base, 'orbit.localhost', '/api/v1/auth/mfa', {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json' },
      body: JSON.stringify({ code: 123456 }),
    });
    expect(p.status).toBe(401);
  });

  test('a body that breaks its schema is a 400 naming each field, ranked, with did-you-mean', async () => {
    const res = await operatorApi(env.s.base, env.operatorToken, 'POST', '/platforms', {
      slug: 'typed-x',
      templat: 'creator',
      name: 7,
    });
    expect(res.status).toBe(400);
    const { error } = (await res.json()) as {
      error: { code: string; message: string; details: { path: string; reason: string }[] };
    };
    expect(error.code).toBe('request.invalid');
    expect(error.details).toEqual([
      { path: '/name', reason: 'must be text' },
      { path: '/templat', reason: "unknown field (did you mean 'template'?)" },
    ]);
    expect(error.message).toContain('the request body has 2 invalid field(s)');
  });

  test("a schema's own error code answers for it (platform.slug_invalid for a slug that is not text)", async () => {
    const res = await operatorApi(env.s.base, env.operatorToken, 'POST', '/platforms', { slug: 12 });
    const { error } = (await res.json()) as { error: { code: string; details: { path: string }[] } };
    expect({ status: res.status, code: error.code, paths: error.details.map((d) => d.path) }).toEqual({
      status: 400,
      code: 'platform.slug_invalid',
      paths: ['/slug'],
    });
  });
});

test('HEAD needs what GET needs (it was a 500: no permission was found for HEAD)', async () => {
  const head = (host: string, path: string) => hostFetch(env.s.base, host, path, { method: 'HEAD' });
  expect((await head('orbit.localhost', '/api/v1/openapi.json')).status).toBe(200);
  expect((await head('localhost', '/_operator/api/openapi.json')).status).toBe(200);
  expect((await head('orbit.localhost', '/api/v1/users')).status).toBe(401);
  expect((await head('localhost', '/_operator/api/platforms')).status).toBe(401);
});
