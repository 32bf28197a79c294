import { Elysia } from 'elysia';
import type { AiRuntime } from '../ai/index.ts';
import { platformGuard } from '../identity/index.ts';
import { AgentBody, AgentListQuery, AgentParams } from './agents.models.ts';
import {
  agent,
  agents,
  agentVersions,
  createAgent,
  editAgent,
  publishAgent,
  removeAgent,
} from './agents.service.ts';

/**
 * Agents: reading needs `agents:read` (members have it), making and changing one
 * `agents:write` (creators, admins, owners). Another user's private agent is 404; changing an
 * agent one may read but not edit is 403. Creating, editing and publishing are gated by
 * `features.agent_creation` (src/server/feature-gates.ts).
 */
export function agentRoutes(d: { runtime: AiRuntime }) {
  const tags = ['agents'];
  return new Elysia({ name: 'agents.routes' })
    .use(platformGuard)
    .get('/api/v1/agents', ({ ctx, query }) => agents(ctx, query), {
      permission: 'agents:read',
      query: AgentListQuery,
      detail: {
        summary: "The agents you may use: yours, and the platform's published ones (admins: all)",
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
    );
}
