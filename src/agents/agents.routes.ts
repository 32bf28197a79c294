import { Elysia } from 'elysia';
import { type AiRuntime, aiDepsOf, type Meter } from '../ai/index.ts';
import { platformGuard } from '../identity/index.ts';
import {
  AgentBody,
  AgentListQuery,
  AgentParams,
  KnowledgeDocParams,
  KnowledgeSearchQuery,
  ListingParams,
  MarketplaceQuery,
  MemberBody,
  MemberParams,
  ToolHostsBody,
  ToolSecretBody,
  ToolSecretParams,
} from './agents.models.ts';
import {
  agent,
  agents,
  agentVersions,
  createAgent,
  editAgent,
  publishAgent,
  removeAgent,
} from './agents.service.ts';
import { addMember, changeMember, members, removeMember } from './collaboration.service.ts';
import { addKnowledge, knowledgeDocs, removeKnowledge, searchKnowledge } from './knowledge.service.ts';
import {
  communityQueue,
  editAsModerator,
  fork,
  install,
  listAgent,
  listing,
  marketplace,
  moderate,
  queue,
  report,
  review,
  vote,
} from './marketplace.service.ts';
import { InstallBody } from './sharing.models.ts';
import { clearToolSecret, setToolHostList, setToolSecret, toolHostList } from './tools.service.ts';

/**
 * Agents: reading needs `agents:read` (members have it), making and changing one
 * `agents:write` (creators, admins, owners). Another user's private agent is 404; changing an
 * agent one may read but not edit is 403. Creating, editing and publishing are gated by
 * `features.agent_creation` (src/server/feature-gates.ts).
 */
export function agentRoutes(d: { runtime: AiRuntime; meter: Meter }) {
  // The service's dependencies, built once per App (one App serves every platform).
  const depsOf = aiDepsOf(d);
  const tags = ['agents'];
  return (
    new Elysia({ name: 'agents.routes' })
      .use(platformGuard)
      .get('/api/v1/agents', ({ ctx, query }) => agents(ctx, query), {
        permission: 'agents:read',
        query: AgentListQuery,
        detail: {
          summary:
            "The agents you may use: yours, those shared with you (with your role), and the platform's published ones (admins: all)",
          tags,
        },
      })
      .post(
        '/api/v1/agents',
        ({ ctx, body }) => Response.json({ agent: createAgent(d, ctx, body) }, { status: 201 }),
        {
          permission: 'agents:write',
          body: AgentBody,
          detail: { summary: 'Make an agent (its draft; publish to let others use it)', tags },
        },
      )
      .get('/api/v1/agents/:id', ({ ctx, params }) => agent(ctx, params.id), {
        permission: 'agents:read',
        params: AgentParams,
        detail: { summary: 'An agent (its draft too, for its editors)', tags },
      })
      .patch('/api/v1/agents/:id', ({ ctx, params, body }) => editAgent(d, ctx, params.id, body), {
        permission: 'agents:write',
        params: AgentParams,
        body: AgentBody,
        detail: { summary: "Change an agent's draft or its visibility", tags },
      })
      .post(
        '/api/v1/agents/:id/publish',
        ({ ctx, params }) => Response.json(publishAgent(ctx, params.id), { status: 201 }),
        {
          permission: 'agents:write',
          params: AgentParams,
          detail: { summary: 'Publish the draft as a new immutable version (named by its hash)', tags },
        },
      )
      .get('/api/v1/agents/:id/versions', ({ ctx, params }) => agentVersions(ctx, params.id), {
        permission: 'agents:read',
        params: AgentParams,
        detail: { summary: "An agent's published versions, newest first", tags },
      })
      .get('/api/v1/agents/:id/knowledge', ({ ctx, params }) => knowledgeDocs(ctx, params.id), {
        permission: 'agents:read',
        params: AgentParams,
        detail: { summary: "An agent's knowledge documents", tags },
      })
      .post(
        '/api/v1/agents/:id/knowledge',
        async ({ ctx, params, body, request }) => {
          // JSON {name, content_type, text}, or the file itself as the body (?name=; its Content-Type).
          const input =
            body instanceof Uint8Array
              ? {
                  name: new URL(request.url).searchParams.get('name'),
                  content_type: (request.headers.get('content-type') ?? '')
                    .split(';')[0]!
                    .trim()
                    .toLowerCase(),
                  bytes: body,
                }
              : ((body ?? {}) as { name?: unknown; content_type?: unknown; text?: unknown });
          return Response.json(
            await addKnowledge(depsOf(ctx.app), ctx, params.id, {
              name: input.name,
              content_type: input.content_type,
              text: 'text' in input ? input.text : undefined,
              bytes: 'bytes' in input ? input.bytes : undefined,
            }),
            { status: 201 },
          );
        },
        {
          permission: 'agents:write',
          params: AgentParams,
          detail: {
            summary:
              'Add a document to an agent: JSON {name, content_type, text}, or the file as the body (?name=; text/plain, text/markdown, text/html, application/pdf): read, chunked, embedded, indexed',
            tags,
          },
        },
      )
      .get(
        '/api/v1/agents/:id/knowledge/search',
        ({ ctx, params, query }) => searchKnowledge(depsOf(ctx.app), ctx, params.id, query.q),
        {
          permission: 'agents:read',
          params: AgentParams,
          query: KnowledgeSearchQuery,
          detail: { summary: "Search an agent's knowledge (full-text and vector, merged)", tags },
        },
      )
      .delete(
        '/api/v1/agents/:id/knowledge/:doc',
        ({ ctx, params }) => {
          removeKnowledge(ctx, params.id, params.doc);
          return new Response(null, { status: 204 });
        },
        {
          permission: 'agents:write',
          params: KnowledgeDocParams,
          detail: { summary: 'Remove a document from an agent', tags },
        },
      )
      // Tools: the platform's host allowlist (its admins'), and each tool's secret (its editors').
      .get('/api/v1/platform/tool-hosts', ({ ctx }) => toolHostList(ctx), {
        permission: 'agents:write',
        detail: { summary: "The hosts this platform's agent tools may call", tags },
      })
      .put('/api/v1/platform/tool-hosts', ({ ctx, body }) => setToolHostList(ctx, body), {
        permission: 'settings:write',
        body: ToolHostsBody,
        detail: {
          summary: 'Replace the hosts agent tools may call (names, *.example.com, IP addresses; audited)',
          tags,
        },
      })
      .put(
        '/api/v1/agents/:id/tools/:tool/secret',
        ({ ctx, params, body }) => setToolSecret(ctx, params.id, params.tool, body),
        {
          permission: 'agents:write',
          params: ToolSecretParams,
          body: ToolSecretBody,
          detail: {
            summary: "Set a tool's secret header (sealed at rest, never shown again; not part of a version)",
            tags,
          },
        },
      )
      .delete(
        '/api/v1/agents/:id/tools/:tool/secret',
        ({ ctx, params }) => {
          clearToolSecret(ctx, params.id, params.tool);
          return new Response(null, { status: 204 });
        },
        {
          permission: 'agents:write',
          params: ToolSecretParams,
          detail: { summary: "Remove a tool's secret", tags },
        },
      )
      // Members (collaboration.service.ts; features.agent_creation gates them).
      .get('/api/v1/agents/:id/members', ({ ctx, params }) => members(ctx, params.id), {
        permission: 'agents:read',
        params: AgentParams,
        detail: {
          summary: "An agent's owner, editors and viewers (for its owner, editors and admins)",
          tags,
        },
      })
      .post(
        '/api/v1/agents/:id/members',
        ({ ctx, params, body }) => {
          const { status, member } = addMember(ctx, params.id, body);
          return Response.json({ member }, { status });
        },
        {
          permission: 'agents:write',
          params: AgentParams,
          body: MemberBody,
          detail: {
            summary:
              'Invite a user of the platform as an editor or a viewer of an agent (its owner and admins; they get a mail)',
            tags,
          },
        },
      )
      .patch(
        '/api/v1/agents/:id/members/:userId',
        ({ ctx, params, body }) => changeMember(ctx, params.id, params.userId, body),
        {
          permission: 'agents:write',
          params: MemberParams,
          body: MemberBody,
          detail: { summary: "Change a member's role (its owner and admins)", tags },
        },
      )
      .delete(
        '/api/v1/agents/:id/members/:userId',
        ({ ctx, params }) => {
          removeMember(ctx, params.id, params.userId);
          return new Response(null, { status: 204 });
        },
        {
          permission: 'agents:read',
          params: MemberParams,
          detail: { summary: 'Remove a member, at once (its owner and admins; members may leave)', tags },
        },
      )
      // The marketplace (features.agent_marketplace gates every route here).
      .post(
        '/api/v1/agents/:id/listing',
        async ({ ctx, params, body }) =>
          Response.json(await listAgent(depsOf(ctx.app), ctx, params.id, body as Record<string, unknown>), {
            status: 201,
          }),
        {
          permission: 'agents:write',
          params: AgentParams,
          body: AgentBody,
          detail: {
            summary:
              "List an agent's latest version in the marketplace (live, submitted to the community or in review, by governance.agent_approval_process and the safety checks)",
            tags,
          },
        },
      )
      .get('/api/v1/marketplace', ({ ctx, query }) => marketplace(depsOf(ctx.app), ctx, query), {
        permission: 'agents:read',
        query: MarketplaceQuery,
        detail: {
          summary: 'Published listings: search with q by mode (keyword, semantic or hybrid), by category',
          tags,
        },
      })
      .get('/api/v1/marketplace/community', ({ ctx }) => communityQueue(ctx), {
        permission: 'agents:read',
        detail: {
          summary:
            'Listings waiting for community approval, for members in good standing (403 with the reason otherwise)',
          tags,
        },
      })
      .post(
        '/api/v1/marketplace/:id/votes',
        ({ ctx, params, body }) => vote(ctx, params.id, body as Record<string, unknown>),
        {
          permission: 'agents:read',
          params: ListingParams,
          body: AgentBody,
          detail: {
            summary:
              'Vote on a submitted listing {vote: approve|reject, reason?} (one vote per member, changeable while it is submitted)',
            tags,
          },
        },
      )
      .get('/api/v1/marketplace/:id', ({ ctx, params }) => listing(ctx, params.id), {
        permission: 'agents:read',
        params: ListingParams,
        detail: { summary: 'A listing with its reviews (moderators: its open reports)', tags },
      })
      .post(
        '/api/v1/marketplace/:id/install',
        async ({ ctx, params, body }) =>
          Response.json(await install(ctx, params.id, body?.ref, body?.pay_with), { status: 201 }),
        {
          permission: 'agents:read',
          params: ListingParams,
          body: InstallBody,
          detail: {
            summary:
              'Install a listing (pinned to its version); a paid one not bought yet is bought with your credits, or answers 402 with a checkout',
            tags,
          },
        },
      )
      .post('/api/v1/marketplace/:id/fork', ({ ctx, params }) => fork(ctx, params.id), {
        permission: 'agents:write',
        params: ListingParams,
        detail: {
          summary: 'Fork a listing: your own private agent from its version, its provenance recorded',
          tags,
        },
      })
      .post(
        '/api/v1/marketplace/:id/reviews',
        ({ ctx, params, body }) => review(ctx, params.id, body as Record<string, unknown>),
        {
          permission: 'agents:read',
          params: ListingParams,
          body: AgentBody,
          detail: {
            summary: 'Rate and review an installed listing (one review per user, replaced by the next)',
            tags,
          },
        },
      )
      .post(
        '/api/v1/marketplace/:id/reports',
        ({ ctx, params, body }) => report(ctx, params.id, body as Record<string, unknown>),
        {
          permission: 'agents:read',
          params: ListingParams,
          body: AgentBody,
          detail: { summary: 'Report a listing to the moderators (with a reason)', tags },
        },
      )
      .get('/api/v1/moderation/listings', ({ ctx }) => queue(ctx), {
        permission: 'settings:write',
        detail: {
          summary:
            'The moderation queue: listings in review or waiting for votes, suspended listings, and listings with open reports',
          tags,
        },
      })
      .patch(
        '/api/v1/moderation/listings/:id',
        ({ ctx, params, body }) =>
          editAsModerator(depsOf(ctx.app), ctx, params.id, body as Record<string, unknown>),
        {
          permission: 'settings:write',
          params: ListingParams,
          body: AgentBody,
          detail: {
            summary:
              "Edit a listing's title, summary, category or tags (with a reason; audited, the creator told)",
            tags,
          },
        },
      )
      .post(
        '/api/v1/moderation/listings/:id',
        ({ ctx, params, body }) => moderate(ctx, params.id, body as Record<string, unknown>),
        {
          permission: 'settings:write',
          params: ListingParams,
          body: AgentBody,
          detail: {
            summary:
              'Approve, reject, suspend, restore, revoke or dismiss reports on a listing (with a reason; audited)',
            tags,
          },
        },
      )
      .delete(
        '/api/v1/agents/:id',
        ({ ctx, params }) => {
          removeAgent(ctx, params.id);
          return new Response(null, { status: 204 });
        },
        {
          permission: 'agents:write',
          params: AgentParams,
          detail: { summary: 'Delete an agent and its versions (its conversations stay, without it)', tags },
        },
      )
  );
}
