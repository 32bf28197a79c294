import { type DocumentDecoration, Elysia } from 'elysia';
import type { PlatformRequestContext } from './context.ts';
import type { Permission } from './permissions.ts';

/** The OpenAPI extension that carries a route's permission in its `detail` (route metadata). */
export const PERMISSION_KEY = 'x-permission';

/** A route's permission as its metadata declares it (Elysia's `app.routes[i].hooks.detail`). */
export function declaredPermission(hooks: unknown): string | undefined {
  const detail = (hooks as { detail?: Record<string, unknown> } | undefined)?.detail;
  const p = detail?.[PERMISSION_KEY];
  return typeof p === 'string' ? p : undefined;
}

/**
 * The platform routes' guard: the `permission` option every platform route declares beside
 * itself, and the typed request context (`ctx`: platform, database, principal, …) its handler
 * receives.
 *
 * The permission is written into the route's metadata (`detail['x-permission']`, which the
 * OpenAPI document shows too). The platform app (server/platform.routes.ts) reads it from its
 * route table and, in the transform phase (before Elysia validates body, query and params),
 * authenticates, checks the permission (401/403), refuses a body that did not parse, and puts
 * the context on the request's Elysia context; a route without a permission answers 500.
 * The macro's resolve only hands that context to the handler, typed.
 */
export const platformGuard = new Elysia({ name: 'platform.guard' }).macro({
  permission: (need: Permission) => ({
    detail: { [PERMISSION_KEY]: need } as DocumentDecoration,
    // Destructured, so Elysia's static analysis sees which context keys are read.
    resolve: ({ ctx }: Record<string, unknown>) => {
      if (!ctx) throw new Error('no platform request context: route mounted outside the platform app');
      return { ctx: ctx as PlatformRequestContext };
    },
  }),
});
