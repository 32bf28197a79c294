/**
 * Request shapes of the SCIM routes (scim.routes.ts), for the OpenAPI document only: the
 * routes document them through `detail` and Elysia does not validate them. SCIM reads its own
 * bodies (application/scim+json, as text) and answers faults in RFC 7644's error envelope with
 * a `scimType` (scim.ts: `jsonBody`, the user and group checks), and attribute names and PATCH
 * op names are case-insensitive there, which a JSON Schema cannot say; the token body is
 * checked by `createScimToken`, whose `scim_token.invalid` the contract pins.
 */
import { Type as t } from '@sinclair/typebox';

const OPEN = { additionalProperties: true } as const;

/** The body of POST /api/v1/scim/tokens. */
export const ScimTokenCreate = t.Object(
  { name: t.String({ minLength: 1, maxLength: 100, description: 'A name for the token, e.g. "Okta".' }) },
  { description: 'A SCIM token for an identity provider (its secret is shown once).' },
);

/** A SCIM User resource as POST and PUT /scim/v2/Users take it (RFC 7643 §4.1, the part kept). */
export const ScimUser = t.Object(
  {
    schemas: t.Optional(t.Array(t.String(), { description: 'urn:ietf:params:scim:schemas:core:2.0:User' })),
    userName: t.String({ description: 'The email address the user signs in with (required).' }),
    externalId: t.Optional(
      t.Union([t.String({ maxLength: 255 }), t.Null()], { description: "The IdP's id." }),
    ),
    displayName: t.Optional(t.Union([t.String({ maxLength: 200 }), t.Null()])),
    name: t.Optional(
      t.Object(
        {
          givenName: t.Optional(t.Union([t.String({ maxLength: 200 }), t.Null()])),
          familyName: t.Optional(t.Union([t.String({ maxLength: 200 }), t.Null()])),
          formatted: t.Optional(t.Union([t.String({ maxLength: 200 }), t.Null()])),
        },
        OPEN,
      ),
    ),
    active: t.Optional(
      t.Union([t.Boolean(), t.String({ pattern: '^([Tt][Rr][Uu][Ee]|[Ff][Aa][Ll][Ss][Ee])$' })], {
        description: 'Whether the user may sign in (also "True"/"False", as Entra ID sends).',
      }),
    ),
  },
  {
    ...OPEN,
    description:
      'A User. Attribute names are case-insensitive; attributes not kept (phoneNumbers, the enterprise extension, …) are accepted and ignored; password is refused.',
  },
);

const Member = t.Object({ value: t.String({ description: 'The id of a User.' }) }, OPEN);

/** A SCIM Group resource as POST and PUT /scim/v2/Groups take it. */
export const ScimGroup = t.Object(
  {
    schemas: t.Optional(t.Array(t.String(), { description: 'urn:ietf:params:scim:schemas:core:2.0:Group' })),
    displayName: t.String({ minLength: 1, maxLength: 200, description: "The group's name." }),
    externalId: t.Optional(t.Union([t.String({ maxLength: 255 }), t.Null()])),
    members: t.Optional(t.Array(Member, { description: 'The members (none: no members).' })),
  },
  { ...OPEN, description: 'A Group. Attribute names are case-insensitive.' },
);

/** A SCIM PATCH request (RFC 7644 §3.5.2). */
export const ScimPatchOp = t.Object(
  {
    schemas: t.Optional(
      t.Array(t.String(), { description: 'urn:ietf:params:scim:api:messages:2.0:PatchOp' }),
    ),
    Operations: t.Array(
      t.Object(
        {
          op: t.String({ description: 'add, replace or remove (any case).' }),
          path: t.Optional(
            t.String({
              minLength: 1,
              description: 'e.g. active, name.givenName, members[value eq "usr_…"].',
            }),
          ),
          value: t.Optional(
            t.Unknown({ description: 'The value; without a path, an object of attributes.' }),
          ),
        },
        OPEN,
      ),
      { minItems: 1, maxItems: 100 },
    ),
  },
  { ...OPEN, description: 'A PATCH request: its operations, applied in order, all or none.' },
);

/** The path parameter of /scim/v2/Users/:id, /Groups/:id, /ResourceTypes/:id, /Schemas/:id. */
export const ScimIdParams = t.Object({ id: t.String({ description: 'The resource id.' }) });

/** The path parameter of DELETE /api/v1/scim/tokens/:id. */
export const ScimTokenParams = t.Object({ id: t.String({ description: 'The SCIM token id.' }) });

/** The projection query parameters (RFC 7644 §3.4.2.5). */
export const ScimProjectionQuery = {
  attributes: t.String({ description: 'Comma-separated attributes to return (and no others).' }),
  excludedAttributes: t.String({ description: 'Comma-separated attributes to leave out.' }),
};

/** The query parameters of a list (RFC 7644 §3.4.2); read by the service (scim.ts `paging`). */
export const ScimListQuery = {
  filter: t.String({ description: 'A SCIM filter, e.g. userName eq "a@example.com".' }),
  startIndex: t.String({ pattern: '^-?\\d+$', description: 'The 1-based index of the first result.' }),
  count: t.String({ pattern: '^-?\\d+$', description: 'The most results to return (at most 200).' }),
  ...ScimProjectionQuery,
};
