import type { TSchema } from '@sinclair/typebox';
import { type DocumentDecoration, Elysia } from 'elysia';
import { AppError } from '../../shared/errors.ts';
import type { PlatformRequestContext } from '../context.ts';
import { platformGuard } from '../guard.routes.ts';
import { actorOf } from '../permissions.ts';
import {
  ScimGroup,
  ScimIdParams,
  ScimListQuery,
  ScimPatchOp,
  ScimProjectionQuery,
  ScimTokenCreate,
  ScimTokenParams,
  ScimUser,
} from './scim.models.ts';
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

/** The SCIM media type (RFC 7644 §3.1); application/json is accepted on the way in too. */
const SCIM_MEDIA_TYPE = 'application/scim+json';

const queryParameters = (props: Record<string, TSchema>) =>
  Object.entries(props).map(([name, schema]) => ({ name, in: 'query', required: false, schema }));

const BODY_TYPES = ['application/scim+json', 'application/json'];

/**
 * A SCIM route's documentation: its summary, and its body (as application/scim+json and
 * application/json) or its query parameters, which the route reads itself.
 */
function scimDoc(
  summary: string,
  o: { body?: TSchema; query?: 'list' | 'projection'; types?: string[] } = {},
): DocumentDecoration {
  const types = o.types ?? BODY_TYPES;
  return {
    summary,
    tags: ['scim'],
    ...(o.body
      ? {
          requestBody: {
            required: true,
            content: Object.fromEntries(types.map((type) => [type, { schema: o.body }])),
          },
        }
      : {}),
    ...(o.query
      ? { parameters: queryParameters(o.query === 'list' ? ScimListQuery : ScimProjectionQuery) }
      : {}),
  } as DocumentDecoration;
}

const ADMIN = 'scim:admin';
const PROVISION = 'scim:provision';

/**
 * Admins' SCIM tokens under /api/v1/scim: make one (its secret shown once, with the base URL
 * to paste into Okta or Entra ID), list them, revoke one. The token body is checked by
 * `createScimToken` (its `scim_token.invalid`), so its schema is documented, not validated.
 */
const scimTokenRoutes = new Elysia({ name: 'scim.tokens.routes', prefix: '/api/v1/scim' })
  .use(platformGuard)
  .post(
    '/tokens',
    ({ ctx: c, body }) => {
      const name = (body as { name?: unknown } | null | undefined)?.name;
      const r = createScimToken(c.app, c.db, name, actorOf(c.principal));
      return Response.json(
        { id: r.id, token: r.token, base_url: `${c.origin}/scim/v2`, scim_token: scimTokenView(c.db, r.id) },
        { status: 201, headers: { 'cache-control': 'no-store' } },
      );
    },
    {
      permission: ADMIN,
      detail: scimDoc('Make a SCIM token (its secret shown once)', {
        body: ScimTokenCreate,
        types: ['application/json'],
      }),
    },
  )
  .get('/tokens', ({ ctx }) => ({ scim_tokens: listScimTokens(ctx.db) }), {
    permission: ADMIN,
    detail: scimDoc("The platform's SCIM tokens"),
  })
  .delete(
    '/tokens/:id',
    ({ ctx: c, params }) => {
      revokeScimToken(c.app, c.db, params.id, actorOf(c.principal));
      return { scim_token: scimTokenView(c.db, params.id) };
    },
    { permission: ADMIN, params: ScimTokenParams, detail: scimDoc('Revoke a SCIM token') },
  );

const scim = (body: unknown, status = 200, headers: Record<string, string> = {}) =>
  new Response(JSON.stringify(body), {
    status,
    headers: { 'content-type': `${SCIM_MEDIA_TYPE}; charset=utf-8`, ...headers },
  });

/** What the SCIM service needs of a request: its platform's database, origin and actor. */
const scimOf = (c: PlatformRequestContext): ScimContext => ({
  app: c.app,
  db: c.db,
  origin: c.origin,
  actor: actorOf(c.principal),
});

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
 * reshaped into the SCIM error envelope. Bodies and queries are checked by the SCIM service
 * (scim.ts), whose faults carry a `scimType`; their schemas (scim.models.ts) are documented.
 */
const scimV2Routes = new Elysia({ name: 'scim.v2.routes', prefix: '/scim/v2' })
  .use(platformGuard)
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
  .get('/ServiceProviderConfig', ({ ctx }) => scim(serviceProviderConfig(ctx.origin)), {
    permission: PROVISION,
    detail: scimDoc("The service provider's configuration (RFC 7644 §5)"),
  })
  .get('/ResourceTypes', ({ ctx }) => scim(staticList(resourceTypes(ctx.origin))), {
    permission: PROVISION,
    detail: scimDoc('The resource types (User, Group)'),
  })
  .get(
    '/ResourceTypes/:id',
    ({ ctx, params }) => {
      const t = resourceTypes(ctx.origin).find((r) => r.id === params.id);
      if (!t) throw new AppError('scim.not_found', `no resource type ${params.id}`, 404);
      return scim(t);
    },
    { permission: PROVISION, params: ScimIdParams, detail: scimDoc('One resource type') },
  )
  .get('/Schemas', ({ ctx }) => scim(staticList(schemas(ctx.origin))), {
    permission: PROVISION,
    detail: scimDoc('The schemas of the attributes kept'),
  })
  .get(
    '/Schemas/:id',
    ({ ctx, params }) => {
      const s = schemas(ctx.origin).find((r) => r.id === params.id);
      if (!s) throw new AppError('scim.not_found', `no schema ${params.id}`, 404);
      return scim(s);
    },
    { permission: PROVISION, params: ScimIdParams, detail: scimDoc('One schema') },
  )
  .get('/Users', ({ ctx, query }) => scim(listUsers(scimOf(ctx), listQuery(query))), {
    permission: PROVISION,
    detail: scimDoc('Users, filtered and paged', { query: 'list' }),
  })
  .post(
    '/Users',
    async ({ ctx, body }) => {
      const r = await createScimUser(scimOf(ctx), body);
      return scim(r, 201, { location: (r.meta as { location: string }).location });
    },
    { permission: PROVISION, detail: scimDoc('Provision a user', { body: ScimUser }) },
  )
  .get('/Users/:id', ({ ctx, params, query }) => scim(getUser(scimOf(ctx), params.id, projection(query))), {
    permission: PROVISION,
    params: ScimIdParams,
    detail: scimDoc('One user', { query: 'projection' }),
  })
  .put('/Users/:id', ({ ctx, params, body }) => scim(replaceUser(scimOf(ctx), params.id, body)), {
    permission: PROVISION,
    params: ScimIdParams,
    detail: scimDoc("Replace a user's attributes", { body: ScimUser }),
  })
  .patch('/Users/:id', ({ ctx, params, body }) => scim(patchUser(scimOf(ctx), params.id, body)), {
    permission: PROVISION,
    params: ScimIdParams,
    detail: scimDoc('Change a user (add, replace, remove)', { body: ScimPatchOp }),
  })
  .delete(
    '/Users/:id',
    ({ ctx, params }) => {
      deleteUser(scimOf(ctx), params.id);
      return new Response(null, { status: 204 });
    },
    { permission: PROVISION, params: ScimIdParams, detail: scimDoc('Deprovision (delete) a user') },
  )
  .get('/Groups', ({ ctx, query }) => scim(listGroups(scimOf(ctx), listQuery(query))), {
    permission: PROVISION,
    detail: scimDoc('Groups, filtered and paged', { query: 'list' }),
  })
  .post(
    '/Groups',
    ({ ctx, body }) => {
      const r = createGroup(scimOf(ctx), body);
      return scim(r, 201, { location: (r.meta as { location: string }).location });
    },
    { permission: PROVISION, detail: scimDoc('Make a group', { body: ScimGroup }) },
  )
  .get('/Groups/:id', ({ ctx, params, query }) => scim(getGroup(scimOf(ctx), params.id, projection(query))), {
    permission: PROVISION,
    params: ScimIdParams,
    detail: scimDoc('One group', { query: 'projection' }),
  })
  .put('/Groups/:id', ({ ctx, params, body }) => scim(replaceGroup(scimOf(ctx), params.id, body)), {
    permission: PROVISION,
    params: ScimIdParams,
    detail: scimDoc("Replace a group's name and members", { body: ScimGroup }),
  })
  .patch('/Groups/:id', ({ ctx, params, body }) => scim(patchGroup(scimOf(ctx), params.id, body)), {
    permission: PROVISION,
    params: ScimIdParams,
    detail: scimDoc('Change a group (rename, members added, replaced or removed)', { body: ScimPatchOp }),
  })
  .delete(
    '/Groups/:id',
    ({ ctx, params }) => {
      deleteGroup(scimOf(ctx), params.id);
      return new Response(null, { status: 204 });
    },
    { permission: PROVISION, params: ScimIdParams, detail: scimDoc('Delete a group') },
  );

/** SCIM routes of a platform: admins' token management and the /scim/v2 service provider. */
export const scimRoutes = new Elysia({ name: 'scim.routes' }).use(scimTokenRoutes).use(scimV2Routes);
