/**
 * Request schemas of the OIDC routes (oidc.routes.ts). The settings body is checked by the
 * service (validateOidcSettings in oidc.ts), which reports every fault at once, each at its JSON
 * Pointer (400 `sso.oidc_invalid`), and the tests pin that: its schema only documents the body
 * (route metadata, the OpenAPI document), as the AI routes do. The sign-in's query is validated.
 */
import { Type } from '@sinclair/typebox';
import { PLATFORM_ROLES } from '../../accounts/users.repository.ts';

const role = (description: string) =>
  Type.Union(
    PLATFORM_ROLES.map((r) => Type.Literal(r)),
    { description },
  );

/** PUT /api/v1/sso/oidc: the whole settings (a full replace). */
export const OidcSettingsBody = Type.Object(
  {
    issuer: Type.String({
      maxLength: 2048,
      description: 'The IdP issuer URL (https; http only for 127.0.0.1 or localhost), no query or fragment.',
    }),
    client_id: Type.String({
      minLength: 1,
      maxLength: 255,
      description: 'The client ID registered at the IdP.',
    }),
    client_secret: Type.Optional(
      Type.String({
        minLength: 1,
        maxLength: 1024,
        description: 'The client secret; may be left out to keep the secret of the same issuer and client.',
      }),
    ),
    scopes: Type.Optional(
      Type.Array(Type.String(), {
        minItems: 1,
        maxItems: 20,
        description: "The scopes asked for; must include 'openid' (default openid, email, profile).",
      }),
    ),
    role_claim: Type.Optional(
      Type.Union([Type.String({ pattern: '^[A-Za-z0-9_.:/-]{1,100}$' }), Type.Null()], {
        description: 'The claim whose value picks the role (needed with role_map).',
      }),
    ),
    role_map: Type.Optional(
      Type.Union([Type.Record(Type.String(), role('A platform role.')), Type.Null()], {
        description: 'Claim value → platform role (at most 200; only an owner may map to owner).',
      }),
    ),
    default_role: Type.Optional(role('The role of a new user no mapping names (not owner; default member).')),
    jit: Type.Optional(Type.Boolean({ description: 'Create users at their first sign-in (default true).' })),
    link_existing_by_email: Type.Optional(
      Type.Boolean({
        description:
          'Link an existing account by its email (owner only; left out: kept for the same IdP, off for another).',
      }),
    ),
    enabled: Type.Optional(Type.Boolean({ description: 'Whether sign-in through it is on (default true).' })),
  },
  { additionalProperties: false, description: 'OIDC settings; every fault is reported at once.' },
);

/** POST /api/v1/sso/oidc/link: where to go once the identity is linked. */
export const SsoLinkBody = Type.Object({
  return_to: Type.Optional(Type.String({ description: 'Where to go afterwards (a path on this site).' })),
});

/**
 * The query of GET /sso/oidc/login, documented only: Elysia's query validation would refuse
 * parameters it does not name (the app does not normalize) and take the last of repeated ones,
 * where the route has always ignored the others and read the first.
 */
const LOGIN_PARAMETERS = [
  {
    name: 'return_to',
    in: 'query',
    required: false,
    description: 'Where to go after signing in (a path on this site).',
    schema: { type: 'string' },
  },
];

/** The parameters the IdP sends back to GET /sso/oidc/callback (read by openid-client). */
const CALLBACK_PARAMETERS = [
  ['code', 'The authorization code.'],
  ['state', 'The state of the sign-in (names its cookie).'],
  ['iss', 'The issuer (RFC 9207), when the IdP sends it.'],
  ['error', 'The IdP refused: its error code.'],
  ['error_description', "The IdP's reason."],
].map(([name, description]) => ({
  name,
  in: 'query',
  required: false,
  description,
  schema: { type: 'string' },
}));

/**
 * A route's OpenAPI operation fields (its `detail`); the routes hand it to Elysia as its
 * DocumentDecoration (models import no Elysia).
 */
export type OperationDoc = { summary: string; tags: string[]; [field: string]: unknown };

/** A route's documented body: the schema goes into the OpenAPI document, the service checks it. */
export const documentedBody = (
  schema: object,
  summary: string,
  required = true,
  mediaType = 'application/json',
): OperationDoc => ({
  summary,
  tags: ['sso'],
  requestBody: { required, content: { [mediaType]: { schema } } },
});

export const OIDC_LOGIN_DETAIL: OperationDoc = {
  summary: 'Start an OIDC sign-in (302 to the IdP)',
  tags: ['sso'],
  parameters: LOGIN_PARAMETERS,
};

export const OIDC_CALLBACK_DETAIL: OperationDoc = {
  summary: 'Finish the OIDC sign-in (sets the session cookie, 302 to the return path)',
  tags: ['sso'],
  parameters: CALLBACK_PARAMETERS,
};
