/**
 * Request schemas of the SAML routes (saml.routes.ts), documented only. The settings body is
 * checked by the service (validateSamlSettings in saml.ts), which reports every fault at once,
 * each at its JSON Pointer (400 `sso.saml_invalid`); the ACS form is read by finishSamlLogin,
 * whose refusals (codes, audit, replay accounting) the tests pin. Both schemas go into the route
 * metadata (the OpenAPI document), as the AI routes do.
 */
import { Type } from '@sinclair/typebox';
import { PLATFORM_ROLES } from '../../accounts/users.repository.ts';
import type { OperationDoc } from '../oidc/oidc.models.ts';

export { documentedBody, type OperationDoc, SsoLinkBody } from '../oidc/oidc.models.ts';

const role = (description: string) =>
  Type.Union(
    PLATFORM_ROLES.map((r) => Type.Literal(r)),
    { description },
  );
const attribute = (description: string) =>
  Type.Optional(Type.Union([Type.String({ minLength: 1, maxLength: 256 }), Type.Null()], { description }));
const flag = (description: string) => Type.Optional(Type.Boolean({ description }));

/** PUT /api/v1/sso/saml: the whole settings (a full replace). */
export const SamlSettingsBody = Type.Object(
  {
    idp_entity_id: Type.String({ minLength: 1, maxLength: 1024, description: "The IdP's entity ID." }),
    idp_sso_url: Type.String({
      maxLength: 2048,
      description:
        "The IdP's single sign-on URL, HTTP-Redirect binding (https; http only for 127.0.0.1 or localhost).",
    }),
    idp_cert: Type.Union(
      [Type.String(), Type.Array(Type.String({ maxLength: 32_768 }), { minItems: 1, maxItems: 5 })],
      { description: "The IdP's signing certificate(s) (RSA), PEM or base64 DER: 1 to 5." },
    ),
    sign_requests: flag('Sign the AuthnRequests (an SP key is made the first time; default false).'),
    allow_idp_initiated: flag('Accept IdP-initiated sign-ins (default false).'),
    email_attribute: attribute('The attribute holding the email (default: the NameID).'),
    name_attribute: attribute('The attribute holding the display name.'),
    role_attribute: attribute('The attribute whose value picks the role (needed with role_map).'),
    role_map: Type.Optional(
      Type.Union([Type.Record(Type.String(), role('A platform role.')), Type.Null()], {
        description: 'Attribute value → platform role (at most 200; only an owner may map to owner).',
      }),
    ),
    default_role: Type.Optional(role('The role of a new user no mapping names (not owner; default member).')),
    jit: flag('Create users at their first sign-in (default true).'),
    link_existing_by_email: flag(
      'Link an existing account by its email (owner only; left out: kept for the same IdP, off for another).',
    ),
    enabled: flag('Whether sign-in through it is on (default true).'),
  },
  { additionalProperties: false, description: 'SAML settings; every fault is reported at once.' },
);

/** POST /sso/saml/acs: the IdP's HTTP-POST binding form. */
export const SamlAcsForm = Type.Object({
  SAMLResponse: Type.String({ maxLength: 512 * 1024, description: 'The base64 SAML Response.' }),
  RelayState: Type.Optional(Type.String({ maxLength: 512, description: 'The path to return to.' })),
});

/**
 * The query of GET /sso/saml/login, documented only: Elysia's query validation would refuse
 * parameters it does not name (the app does not normalize) and take the last of repeated ones,
 * where the route has always ignored the others and read the first.
 */
export const SAML_LOGIN_DETAIL: OperationDoc = {
  summary: 'Start a SAML sign-in (302 to the IdP, HTTP-Redirect binding)',
  tags: ['sso'],
  parameters: [
    {
      name: 'return_to',
      in: 'query',
      required: false,
      description: 'Where to go after signing in (a path on this site).',
      schema: { type: 'string' },
    },
  ],
};
