import { Elysia } from 'elysia';
import type { Permission } from './permissions.ts';

/** The oidc routes and the permission each needs (merged into the platform's table). */
export const OIDC_ROUTE_PERMISSIONS: Record<string, Permission> = {};

/** OIDC routes of a platform (see the identity issue). */
export const oidcRoutes = new Elysia({ name: 'oidc.routes' });
