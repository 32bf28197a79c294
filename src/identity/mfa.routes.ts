import { Elysia } from 'elysia';
import type { Permission } from './permissions.ts';

/** The mfa routes and the permission each needs (merged into the platform's table). */
export const MFA_ROUTE_PERMISSIONS: Record<string, Permission> = {};

/** MFA routes of a platform (see the identity issue). */
export const mfaRoutes = new Elysia({ name: 'mfa.routes' });
