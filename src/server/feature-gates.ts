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
  ],
  agent_creation: ['POST /api/v1/agents', 'PATCH /api/v1/agents/:id', 'POST /api/v1/agents/:id/publish'],
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
