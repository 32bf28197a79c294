import { AppError } from '../shared/errors.ts';
import type { PlatformBlueprint } from '../tenancy/index.ts';

/** A feature switch of the blueprint. */
export type FeatureName = keyof PlatformBlueprint['features'];

/**
 * The platform routes each feature switch gates (`METHOD /path`, as the route table has them):
 * when the switch is off, each answers 404 `feature.disabled` to every caller, before any
 * credential is read. Only end-user features are here, never what an owner or admin needs to
 * administer the platform (users, roles, API keys, SSO and SCIM settings, the SAML metadata an
 * IdP is set up with, the audit log). `features.api_access` gates a credential, not routes: it
 * is checked where API keys are read (platform.routes.ts). A switch whose feature does not exist
 * yet gates nothing (src/tenancy/enforcement.ts says which capability will enforce it).
 */
export const FEATURE_ROUTES: Readonly<Partial<Record<FeatureName, readonly string[]>>> = {
  // Making and changing agents; using the published ones stays (they are the platform's).
  agent_marketplace: [
    'POST /api/v1/agents/:id/listing',
    'GET /api/v1/marketplace',
    'GET /api/v1/marketplace/:id',
    'POST /api/v1/marketplace/:id/install',
    'POST /api/v1/marketplace/:id/fork',
    'POST /api/v1/marketplace/:id/reviews',
    'POST /api/v1/marketplace/:id/reports',
    'GET /api/v1/marketplace/community',
    'POST /api/v1/marketplace/:id/votes',
    'GET /api/v1/moderation/listings',
    'POST /api/v1/moderation/listings/:id',
    'PATCH /api/v1/moderation/listings/:id',
    // Federation (issue 12 item 8): import is a fork from elsewhere; revoking stays ungated.
    'GET /api/v1/agents/:id/versions/:version/package',
    'POST /api/v1/agents/import',
    'GET /api/v1/federation/catalog',
    'POST /api/v1/federation/catalog',
    'DELETE /api/v1/federation/catalog/:entry',
    'POST /api/v1/federation/catalog/:entry/import',
  ],
  agent_creation: [
    'POST /api/v1/agents',
    'PATCH /api/v1/agents/:id',
    'POST /api/v1/agents/:id/publish',
    'PUT /api/v1/agents/:id/tools/:tool/secret',
    'DELETE /api/v1/agents/:id/tools/:tool/secret',
    // Members: inviting is part of making agents (a viewer's access to a private agent stays
    // with the switch off: only who can change members goes).
    'GET /api/v1/agents/:id/members',
    'POST /api/v1/agents/:id/members',
    'PATCH /api/v1/agents/:id/members/:userId',
    'DELETE /api/v1/agents/:id/members/:userId',
  ],
  // Shared conversations; with the switch off their participants lose access (the service).
  collaborative_agents: [
    'GET /api/v1/conversations/:id/participants',
    'POST /api/v1/conversations/:id/participants',
    'DELETE /api/v1/conversations/:id/participants/:userId',
    'GET /api/v1/conversations/:id/events',
  ],
  // Share links with referral codes and what they brought (a `ref` elsewhere is ignored when off).
  viral_sharing: [
    'POST /api/v1/agents/:id/share',
    'GET /api/v1/referrals/me',
    'GET /api/v1/referrals',
    'POST /api/v1/referrals/visit',
  ],
  sso_integration: [
    'GET /sso/oidc/login',
    'GET /sso/oidc/callback',
    'POST /api/v1/sso/oidc/link',
    'GET /sso/saml/login',
    'POST /sso/saml/acs',
    'POST /api/v1/sso/saml/link',
  ],
};

/** `METHOD /path` → the feature that gates it. */
export const GATED_ROUTES: ReadonlyMap<string, FeatureName> = new Map(
  Object.entries(FEATURE_ROUTES).flatMap(([feature, routes]) =>
    (routes ?? []).map((r) => [r, feature as FeatureName] as const),
  ),
);

/** The one answer of a feature that is off: 404 `feature.disabled`, naming the switch. */
export function featureDisabled(feature: FeatureName): AppError {
  return new AppError('feature.disabled', `this platform has turned features.${feature} off`, 404);
}

/** 403 `platform.api_access_disabled`: an API key was used on a platform whose API access is off. */
export function apiAccessDisabled(): AppError {
  return new AppError(
    'platform.api_access_disabled',
    'API access is turned off for this platform (features.api_access): API keys are refused; sign in instead',
    403,
  );
}
