import { Elysia } from 'elysia';
import { AppError } from '../shared/errors.ts';
import { requestContext } from './context.ts';
import type { Permission, Principal } from './permissions.ts';
import {
  createGroup,
  createScimUser,
  deleteGroup,
  deleteUser,
  getGroup,
  getUser,
  type ListQuery,
  listGroups,
  listScimTokens,
  listUsers,
  patchGroup,
  patchUser,
  replaceGroup,
  replaceUser,
  resourceTypes,
  type ScimContext,
  schemas,
  scimErrorBody,
  scimTokenView,
  serviceProviderConfig,
  staticList,
} from './scim.ts';
import { createScimToken, revokeScimToken } from './scim-tokens.ts';

/** The scim routes and the permission each needs (merged into the platform's table). */
export const SCIM_ROUTE_PERMISSIONS: Record<string, Permission> = {
  'POST /api/v1/scim/tokens': 'scim:admin',
  'GET /api/v1/scim/tokens': 'scim:admin',
  'DELETE /api/v1/scim/tokens/:id': 'scim:admin',
  'GET /scim/v2/ServiceProviderConfig': 'scim:provision',
  'GET /scim/v2/ResourceTypes': 'scim:provision',
  'GET /scim/v2/ResourceTypes/:id': 'scim:provision',
  'GET /scim/v2/Schemas': 'scim:provision',
  'GET /scim/v2/Schemas/:id': 'scim:provision',
  'GET /scim/v2/Users': 'scim:provision',
  'POST /scim/v2/Users': 'scim:provision',
  'GET /scim/v2/Users/:id': 'scim:provision',
  'PUT /scim/v2/Users/:id': 'scim:provision',
  'PATCH /scim/v2/Users/:id': 'scim:provision',
  'DELETE /scim/v2/Users/:id': 'scim:provision',
  'GET /scim/v2/Groups': 'scim:provision',
  'POST /scim/v2/Groups': 'scim:provision',
  'GET /scim/v2/Groups/:id': 'scim:provision',
  'PUT /scim/v2/Groups/:id': 'scim:provision',
  'PATCH /scim/v2/Groups/:id': 'scim:provision',
  'DELETE /scim/v2/Groups/:id': 'scim:provision',
};

/** The SCIM media type (RFC 7644 §3.1); application/json is accepted on the way in too. */
const SCIM_MEDIA_TYPE = 'application/scim+json';

const actorOf = (p: Principal | null) =>
  !p
    ? 'anonymous'
    : p.kind === 'user'
      ? `user:${p.userId}`
      : p.kind === 'api_key'
        ? `apikey:${p.keyId}`
        : `scim:${p.tokenId}`;

const obj = (b: unknown): Record<string, unknown> =>
  b && typeof b === 'object' && !Array.isArray(b) ? (b as Record<string, unknown>) : {};

/**
 * Admins' SCIM tokens under /api/v1/scim: make one (its secret shown once, with the base URL
 * to paste into Okta or Entra ID), list them, revoke one.
 */
const scimTokenRoutes = new Elysia({ name: 'scim.tokens.routes', prefix: '/api/v1/scim' })
  .post('/tokens', ({ request, body }) => {
    const c = requestContext(request);
    const r = createScimToken(c.app, c.db, obj(body).name, actorOf(c.principal));
    return Response.json(
      { id: r.id, token: r.token, base_url: `${c.origin}/scim/v2`, scim_token: scimTokenView(c.db, r.id) },
      { status: 201, headers: { 'cache-control': 'no-store' } },
    );
  })
  .get('/tokens', ({ request }) => ({ scim_tokens: listScimTokens(requestContext(request).db) }))
  .delete('/tokens/:id', ({ request, params }) => {
    const c = requestContext(request);
    revokeScimToken(c.app, c.db, params.id, actorOf(c.principal));
    return { scim_token: scimTokenView(c.db, params.id) };
  });

const scim = (body: unknown, status = 200, headers: Record<string, string> = {}) =>
  new Response(JSON.stringify(body), {
    status,
    headers: { 'content-type': `${SCIM_MEDIA_TYPE}; charset=utf-8`, ...headers },
  });

const ctx = (request: Request): ScimContext => {
  const c = requestContext(request);
  return { app: c.app, db: c.db, origin: c.origin, actor: actorOf(c.principal) };
};

const listQuery = (q: Record<string, string | undefined>): ListQuery => ({
  filter: q.filter,
  startIndex: q.startIndex,
  count: q.count,
  attributes: q.attributes,
  excludedAttributes: q.excludedAttributes,
});

const projection = (q: Record<string, string | undefined>) => ({
  attributes: q.attributes,
  excludedAttributes: q.excludedAttributes,
});

/**
 * The SCIM 2.0 service provider under /scim/v2, for identity providers holding a SCIM token.
 * Bodies arrive as application/scim+json or application/json and are read as text, so bad
 * JSON is a SCIM `invalidSyntax`; every error answer, the server's own 401/403 included, is
 * reshaped into the SCIM error envelope.
 */
const scimV2Routes = new Elysia({ name: 'scim.v2.routes', prefix: '/scim/v2' })
  .onParse(({ request }, contentType) => {
    if (contentType === '' || contentType === SCIM_MEDIA_TYPE || contentType === 'application/json')
      return request.text();
  })
  .mapResponse(async ({ response }) => {
    // NB! The platform's error handler renders the contract's problem JSON; SCIM clients
    // expect RFC 7644's envelope instead, so errors are re-shaped here, status kept.
    if (!(response instanceof Response) || response.status < 400) return;
    if (response.headers.get('content-type')?.startsWith(SCIM_MEDIA_TYPE)) return;
    let problem: { error?: { code?: unknown; message?: unknown } };
    try {
      problem = (await response.clone().json()) as typeof problem;
    } catch {
      return;
    }
    const code = typeof problem.error?.code === 'string' ? problem.error.code : 'error';
    const message = typeof problem.error?.message === 'string' ? problem.error.message : response.statusText;
    const headers: Record<string, string> = {};
    const retry = response.headers.get('retry-after');
    if (retry) headers['retry-after'] = retry;
    if (response.status === 401) headers['www-authenticate'] = 'Bearer realm="scim"';
    return scim(scimErrorBody(response.status, code, message), response.status, headers);
  })
  .get('/ServiceProviderConfig', ({ request }) => scim(serviceProviderConfig(requestContext(request).origin)))
  .get('/ResourceTypes', ({ request }) => scim(staticList(resourceTypes(requestContext(request).origin))))
  .get('/ResourceTypes/:id', ({ request, params }) => {
    const t = resourceTypes(requestContext(request).origin).find((r) => r.id === params.id);
    if (!t) throw new AppError('scim.not_found', `no resource type ${params.id}`, 404);
    return scim(t);
  })
  .get('/Schemas', ({ request }) => scim(staticList(schemas(requestContext(request).origin))))
  .get('/Schemas/:id', ({ request, params }) => {
    const s = schemas(requestContext(request).origin).find((r) => r.id === params.id);
    if (!s) throw new AppError('scim.not_found', `no schema ${params.id}`, 404);
    return scim(s);
  })
  .get('/Users', ({ request, query }) => scim(listUsers(ctx(request), listQuery(query))))
  .post('/Users', async ({ request, body }) => {
    const r = await createScimUser(ctx(request), body);
    return scim(r, 201, { location: (r.meta as { location: string }).location });
  })
  .get('/Users/:id', ({ request, params, query }) =>
    scim(getUser(ctx(request), params.id, projection(query))),
  )
  .put('/Users/:id', ({ request, params, body }) => scim(replaceUser(ctx(request), params.id, body)))
  .patch('/Users/:id', ({ request, params, body }) => scim(patchUser(ctx(request), params.id, body)))
  .delete('/Users/:id', ({ request, params }) => {
    deleteUser(ctx(request), params.id);
    return new Response(null, { status: 204 });
  })
  .get('/Groups', ({ request, query }) => scim(listGroups(ctx(request), listQuery(query))))
  .post('/Groups', ({ request, body }) => {
    const r = createGroup(ctx(request), body);
    return scim(r, 201, { location: (r.meta as { location: string }).location });
  })
  .get('/Groups/:id', ({ request, params, query }) =>
    scim(getGroup(ctx(request), params.id, projection(query))),
  )
  .put('/Groups/:id', ({ request, params, body }) => scim(replaceGroup(ctx(request), params.id, body)))
  .patch('/Groups/:id', ({ request, params, body }) => scim(patchGroup(ctx(request), params.id, body)))
  .delete('/Groups/:id', ({ request, params }) => {
    deleteGroup(ctx(request), params.id);
    return new Response(null, { status: 204 });
  });

/** SCIM routes of a platform: admins' token management and the /scim/v2 service provider. */
export const scimRoutes = new Elysia({ name: 'scim.routes' }).use(scimTokenRoutes).use(scimV2Routes);
