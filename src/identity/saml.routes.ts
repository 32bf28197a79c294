import { Elysia } from 'elysia';
import type { Permission } from './permissions.ts';

/** The saml routes and the permission each needs (merged into the platform's table). */
export const SAML_ROUTE_PERMISSIONS: Record<string, Permission> = {};

/** SAML routes of a platform (see the identity issue). */
export const samlRoutes = new Elysia({ name: 'saml.routes' });
