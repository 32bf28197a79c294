import { Elysia } from 'elysia';
import type { AiRuntime, Meter } from '../ai/index.ts';
import { platformGuard } from '../identity/index.ts';
import { CatalogEntryParams, FederationBody, ImportQuery, VersionParams } from './agents.models.ts';
import {
  catalog,
  exportPackage,
  importFromCatalog,
  importPackage,
  revokeVersion,
  shareToCatalog,
  withdrawFromCatalog,
} from './federation.service.ts';

/**
 * Federation's platform routes (issue 12 item 8): export a version as a signed package, import
 * one, revoke a version, and the instance-wide ecosystem catalog. Gated by
 * `features.agent_marketplace` (src/server/feature-gates.ts), as forks are, except revoking,
 * which stays with the platform whatever its features (the right to remove).
 */
export function federationRoutes(d: { runtime: AiRuntime; meter: Meter }) {
  const tags = ['federation'];
  return new Elysia({ name: 'federation.routes' })
    .use(platformGuard)
    .get(
      '/api/v1/agents/:id/versions/:version/package',
      ({ ctx, params }) => exportPackage(ctx, params.id, Number(params.version)),
      {
        permission: 'agents:write',
        params: VersionParams,
        detail: {
          summary:
            "A version as a signed package (RFC 8785 canonical JSON, Ed25519 under the instance's federation key; the agent's editors; audited)",
          tags,
        },
      },
    )
    .post(
      '/api/v1/agents/:id/versions/:version/revoke',
      ({ ctx, params, body }) => revokeVersion(ctx, params.id, Number(params.version), body),
      {
        permission: 'agents:write',
        params: VersionParams,
        body: FederationBody,
        detail: {
          summary:
            "Revoke a version ({reason}): it joins the instance's signed revocation list, and its imported copies stop working",
          tags,
        },
      },
    )
    .post('/api/v1/agents/import', ({ ctx, body, query }) => importPackage(d, ctx, body, query.model), {
      permission: 'agents:write',
      body: FederationBody,
      query: ImportQuery,
      detail: {
        summary:
          'Import a signed package as your new agent (version 1 = its spec; refused: tampered, an untrusted key, a revoked version)',
        tags,
      },
    })
    .get('/api/v1/federation/catalog', ({ ctx }) => catalog(ctx), {
      permission: 'agents:read',
      detail: {
        summary: "The instance's ecosystem catalog: what its platforms share, with their attribution",
        tags,
      },
    })
    .post('/api/v1/federation/catalog', ({ ctx, body }) => shareToCatalog(ctx, body), {
      permission: 'settings:write',
      body: FederationBody,
      detail: {
        summary:
          'Share a published version in the ecosystem catalog ({agent_id, version?, title?, summary?, revenue_share_percent?})',
        tags,
      },
    })
    .delete(
      '/api/v1/federation/catalog/:entry',
      ({ ctx, params }) => {
        withdrawFromCatalog(ctx, params.entry);
        return new Response(null, { status: 204 });
      },
      {
        permission: 'settings:write',
        params: CatalogEntryParams,
        detail: { summary: "Withdraw this platform's entry from the ecosystem catalog", tags },
      },
    )
    .post(
      '/api/v1/federation/catalog/:entry/import',
      ({ ctx, params, query }) => importFromCatalog(d, ctx, params.entry, query.model),
      {
        permission: 'agents:write',
        params: CatalogEntryParams,
        query: ImportQuery,
        detail: {
          summary:
            'Import a catalog entry as your new agent (the same checks as a package; attribution kept)',
          tags,
        },
      },
    );
}
