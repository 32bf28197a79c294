import { describe, expect, test } from 'bun:test';
import { OPERATOR_ROUTE_PERMISSIONS, operatorRoutes } from './operator.routes.ts';
import { PLATFORM_ROUTE_PERMISSIONS, platformRoutes } from './platform.routes.ts';

// Every route declares its permission; a route without one cannot be reached (deny by default),
// and this walk fails the build before that surprises anyone.
const cases = [
  { name: 'operator', app: operatorRoutes({} as never), table: OPERATOR_ROUTE_PERMISSIONS },
  { name: 'platform', app: platformRoutes({ ai: {} } as never), table: PLATFORM_ROUTE_PERMISSIONS },
];

describe('route permission tables', () => {
  for (const c of cases) {
    test(`every ${c.name} route has a permission, and every permission a route`, () => {
      const routes = c.app.routes.map((r) => `${r.method} ${r.path}`).sort();
      expect(routes.length).toBeGreaterThan(1);
      expect(routes).toEqual(Object.keys(c.table).sort());
    });
  }
});
