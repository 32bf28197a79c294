import { afterAll, beforeAll, describe, expect } from 'bun:test';
import { type InProcessServer, inProcessServer } from '../../tests/inproc.ts';
import { type ApiScenario, errorCode, scenarios } from '../../tests/scenario.ts';
import { LOCAL_ROOT } from '../identity/index.ts';
import { operatorRoutes, routePermissionsOf } from './operator.routes.ts';
import { platformRoutes } from './platform.routes.ts';

// A walk over Elysia's own route tables (not over a permission list beside them): every
// operator API route (but the public documentation) and every AI route refuses a caller without credentials with 401, even
// with a body that is not JSON (authentication answers before the body is looked at), and
// nothing is published or audited.
let s: InProcessServer;
beforeAll(async () => {
  s = await inProcessServer();
  await s.actions.createPlatform(LOCAL_ROOT, { slug: 'walk' });
});
afterAll(() => s.close());

const concrete = (path: string) => path.replace(/:slug/g, 'walk').replace(/:[a-z_]+/g, 'x1');
const withBody = (method: string) => method !== 'GET' && method !== 'HEAD';

/** Each body route again with a multipart body that does not parse (Elysia's parser threw first). */
function walkMultipart(host: string, routes: { method: string; path: string }[]): ApiScenario[] {
  return routes
    .filter((r) => withBody(r.method))
    .map(
      (r): ApiScenario => ({
        name: `${r.method} ${r.path} with no credentials and a broken multipart body → 401 auth.required`,
        method: r.method,
        host,
        url: concrete(r.path),
        headers: { 'content-type': 'multipart/form-data; boundary=x', accept: 'application/json' },
        body: '--y\r\njunk',
        expectedStatus: 401,
        expectedContent: (b) => expect(errorCode(b)).toBe('auth.required'),
      }),
    );
}

function walk(host: string, routes: { method: string; path: string }[]): ApiScenario[] {
  return routes.map(
    (r): ApiScenario => ({
      name: `${r.method} ${r.path} with no credentials → 401 auth.required`,
      method: r.method,
      host,
      url: concrete(r.path),
      headers: withBody(r.method)
        ? { 'content-type': 'application/json', accept: 'application/json' }
        : ({} as Record<string, string>),
      body: withBody(r.method) ? '{"not json' : undefined,
      expectedStatus: 401,
      expectedContent: (b) => expect(errorCode(b)).toBe('auth.required'),
    }),
  );
}

// Every operator API route but the public ones (the OpenAPI document and its reference page).
const operatorApp = operatorRoutes({} as never);
const operatorNeeds = routePermissionsOf(operatorApp);
const operatorApi = operatorApp.routes.filter(
  (r) => r.path.startsWith('/_operator/api/') && operatorNeeds.get(`${r.method} ${r.path}`) !== 'public',
);
const aiApi = platformRoutes({ ai: {} } as never).routes.filter((r) => r.path.startsWith('/v1/'));

describe('operator API routes: authentication before anything else', () => {
  expect(operatorApi.length).toBeGreaterThan(10);
  scenarios(() => s, walk('localhost', operatorApi));
  scenarios(() => s, walkMultipart('localhost', operatorApi));
});

describe('AI routes: authentication before anything else', () => {
  expect(aiApi.length).toBeGreaterThanOrEqual(3);
  scenarios(() => s, walk('walk.localhost', aiApi));
  scenarios(() => s, walkMultipart('walk.localhost', aiApi));
});
