import { Elysia } from 'elysia';
import type { Permission } from './permissions.ts';

/** The scim routes and the permission each needs (merged into the platform's table). */
export const SCIM_ROUTE_PERMISSIONS: Record<string, Permission> = {};

/** SCIM routes of a platform (see the identity issue). */
export const scimRoutes = new Elysia({ name: 'scim.routes' });
