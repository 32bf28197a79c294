/**
 * The two API descriptions: a platform's (every platform host, public, served with the
 * platform's own name and origin) and the operator's. Documents are generated from the apps'
 * route tables the first time they are asked for (server/openapi.ts), then kept.
 */
import type { OpenAPIV3_1 } from 'openapi-types';
import pkg from '../../package.json' with { type: 'json' };
import { type DocumentSpec, openApiDocument, type RouteInfo } from './openapi.ts';

const VERSION: string = pkg.version;

/** The tag of a platform route that declares none, by its path. */
function platformTag(path: string): string {
  if (path.startsWith('/v1/') || path.startsWith('/api/v1/ai/')) return 'ai';
  if (path.startsWith('/scim/') || path.startsWith('/api/v1/scim/')) return 'scim';
  if (path.startsWith('/sso/') || path.startsWith('/api/v1/sso/')) return 'sso';
  if (path.startsWith('/api/v1/auth/')) return 'auth';
  if (path.startsWith('/api/v1/me')) return 'account';
  const m = /^\/api\/v1\/([a-z-]+)/.exec(path);
  return m ? m[1]! : 'platform';
}

/** Summaries of the AI routes, which still declare their permissions in a table (ai/). */
const AI_SUMMARIES: Record<string, string> = {
  'GET /v1/models': 'The models this caller may use (OpenAI format)',
  'POST /v1/chat/completions': 'A chat completion, streamed (SSE) or not (OpenAI format)',
  'POST /v1/embeddings': 'Embeddings of the input (OpenAI format)',
  'GET /api/v1/ai/budgets': "The platform's AI budgets",
  'PUT /api/v1/ai/budgets': 'Set an AI budget',
  'DELETE /api/v1/ai/budgets/:id': 'Remove an AI budget',
  'GET /api/v1/ai/usage': 'AI usage by period, model and user',
};

export const PLATFORM_SPEC: DocumentSpec = {
  title: 'Platform API',
  version: VERSION,
  description:
    "A platform's API: sign-in and accounts, users and roles, API keys, two-factor sign-in, single sign-on (OIDC, SAML), SCIM provisioning, and the OpenAI-compatible AI endpoints.",
  securitySchemes: {
    sessionCookie: {
      type: 'apiKey',
      in: 'cookie',
      name: 'sf_session',
      description:
        'The session cookie set by sign-in (POST /api/v1/auth/login or SSO). Writes made with it need the x-csrf-token header.',
    },
    apiKey: {
      type: 'http',
      scheme: 'bearer',
      description: 'A platform API key (its scopes cap what it may do).',
    },
    scimToken: {
      type: 'http',
      scheme: 'bearer',
      description: "A SCIM token, for an identity provider's provisioning.",
    },
  },
  securityOf(permission): OpenAPIV3_1.SecurityRequirementObject[] {
    if (permission === 'public') return [];
    if (permission === 'scim:provision') return [{ scimToken: [] }];
    if (permission === 'mfa_pending') return [{ sessionCookie: [] }];
    return [{ sessionCookie: [] }, { apiKey: [] }];
  },
  bodyMediaType: (path) => (path.startsWith('/scim/') ? 'application/scim+json' : 'application/json'),
  tagOf: platformTag,
  summaries: AI_SUMMARIES,
};

export const OPERATOR_SPEC: DocumentSpec = {
  title: 'Operator API',
  version: VERSION,
  description:
    "The operator's API: platforms, custom domains, operators and their tokens, the console's single sign-on, audit verification and keys. Routes marked local:root answer only over the control socket.",
  securitySchemes: {
    operatorToken: {
      type: 'http',
      scheme: 'bearer',
      description: 'An operator token (soulfra operator token create).',
    },
    consoleSession: {
      type: 'apiKey',
      in: 'cookie',
      name: 'sf_operator_session',
      description: "The console's session cookie (after SSO). Writes need the x-csrf-token header.",
    },
    metricsToken: { type: 'http', scheme: 'bearer', description: 'The metrics token.' },
  },
  securityOf(permission): OpenAPIV3_1.SecurityRequirementObject[] {
    if (permission === 'public' || permission === 'local:root') return [];
    return [{ operatorToken: [] }, { consoleSession: [] }];
  },
  tagOf: (path) => /^\/_operator\/api\/([a-z-]+)/.exec(path)?.[1] ?? 'console',
};

/** A document built once from an app's routes, when first asked for. */
export function lazyDocument(
  routes: () => readonly RouteInfo[],
  spec: DocumentSpec,
  permissionOf?: (route: string) => string | undefined,
): () => OpenAPIV3_1.Document {
  let doc: OpenAPIV3_1.Document | undefined;
  return () => {
    doc ??= openApiDocument(routes(), spec, permissionOf);
    return doc;
  };
}
