import { describe, expect, test } from 'bun:test';
import { operatorRoutes } from './operator.routes.ts';
import { platformRoutes, routePermissions } from './platform.routes.ts';

// Every route declares its permission beside itself (route metadata); a route without one cannot
// be reached (deny by default), and this walk over Elysia's own route table fails the build
// before that surprises anyone.
const cases = [
  { name: 'operator', app: operatorRoutes({} as never) },
  { name: 'platform', app: platformRoutes({ ai: {} } as never) },
];

describe('route permissions', () => {
  for (const c of cases) {
    test(`every ${c.name} route declares a permission`, () => {
      const routes = c.app.routes.map((r) => `${r.method} ${r.path}`).sort();
      expect(routes.length).toBeGreaterThan(1);
      const declared = routePermissions(c.app);
      expect(routes.filter((r) => !declared.has(r))).toEqual([]);
    });
  }

  test('a route that declares no permission is missing from the table (it answers 500)', () => {
    const table = routePermissions({
      routes: [
        { method: 'GET', path: '/a', hooks: { detail: { 'x-permission': 'public' } } },
        { method: 'GET', path: '/b', hooks: {} },
      ],
    });
    expect([...table.keys()]).toEqual(['GET /a']);
  });
});
