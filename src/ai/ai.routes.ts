import { Elysia } from 'elysia';
import type { App } from '../app/index.ts';
import { type Permission, type PlatformRequestContext, requestContext } from '../identity/index.ts';
import { parseBudgetBody, parseChatBody, parseEmbeddingsBody, parseUsageQuery } from './ai.models.ts';
import type { Meter } from './meter.ts';
import { toOpenAiError } from './openai-errors.ts';
import { platformAiPolicy } from './policy.ts';
import { routeHeader } from './router.ts';
import type { AiRuntime } from './runtime.ts';
import {
  type AiCaller,
  type AiDeps,
  aiDeps,
  budgets,
  completeChat,
  embed,
  listModels,
  type Routing,
  removeBudget,
  setBudget,
  usageReport,
} from './service.ts';
import { SSE_HEADERS, sseStream } from './sse.ts';

/** The OpenAI-compatible routes and their permission. */
export const AI_ROUTE_PERMISSIONS: Record<string, Permission> = {
  'GET /v1/models': 'ai:invoke',
  'POST /v1/chat/completions': 'ai:invoke',
  'POST /v1/embeddings': 'ai:invoke',
  'GET /api/v1/ai/budgets': 'billing:read',
  'PUT /api/v1/ai/budgets': 'billing:write',
  'DELETE /api/v1/ai/budgets/:id': 'billing:write',
  'GET /api/v1/ai/usage': 'billing:read',
};

/** The caller of an AI call from a platform request: its platform, database and principal. */
function callerOf(c: PlatformRequestContext): AiCaller {
  const p = c.principal;
  const userId = !p || p.kind === 'scim' ? null : p.userId;
  const keyId = p?.kind === 'api_key' ? p.keyId : null;
  return { platform: c.platform, db: c.db, userId, keyId, agentId: null };
}

/** The headers naming who answered and how the call was routed. */
function routingHeaders(r: Routing): Record<string, string> {
  return { 'x-ai-provider': r.candidate.provider.id, 'x-ai-route': routeHeader(r.plan, r.attempts) };
}

/**
 * The OpenAI-compatible API of a platform (/v1/models, /v1/chat/completions plain and SSE,
 * /v1/embeddings) and its budgets and usage. Each route parses, calls the AI service
 * (service.ts: policy, safety, budgets, routing, metering, audit) and shapes the answer;
 * failures of the OpenAI routes answer in OpenAI's error shape (openai-errors.ts).
 */
export function aiRoutes(d: { runtime: AiRuntime; meter: Meter }) {
  // The service's dependencies, built once per App (one App serves every platform).
  let depsApp: App | null = null;
  let deps: AiDeps | null = null;
  const depsOf = (app: App): AiDeps => {
    if (depsApp !== app || !deps) {
      deps = aiDeps(app, d);
      depsApp = app;
    }
    return deps;
  };

  return new Elysia({ name: 'ai.routes' })
    .get('/api/v1/ai/budgets', ({ request }) => ({ budgets: budgets(requestContext(request)) }))
    .put('/api/v1/ai/budgets', ({ request, body }) => {
      const c = requestContext(request);
      const b = parseBudgetBody(body);
      return { budget: setBudget(depsOf(c.app), callerOf(c), b) };
    })
    .delete('/api/v1/ai/budgets/:id', ({ request, params }) => {
      const c = requestContext(request);
      removeBudget(depsOf(c.app), callerOf(c), params.id);
      return new Response(null, { status: 204 });
    })
    .get('/api/v1/ai/usage', async ({ request, query }) => {
      const c = requestContext(request);
      const range = parseUsageQuery(query);
      const r = await usageReport(depsOf(c.app), c, range);
      return { from: new Date(r.from).toISOString(), to: new Date(r.to).toISOString(), usage: r.usage };
    })
    .get('/v1/models', ({ request }) => {
      const c = requestContext(request);
      const data = listModels(d, platformAiPolicy(c.blueprint())).map((id) => ({
        id,
        object: 'model',
        created: 0,
        owned_by: c.platform.slug,
      }));
      return { object: 'list', data };
    })
    .post('/v1/chat/completions', async ({ request, body }) => {
      const c = requestContext(request);
      try {
        const input = parseChatBody(body);
        const policy = platformAiPolicy(c.blueprint());
        const r = await completeChat(depsOf(c.app), callerOf(c), policy, input, request.signal);
        if (r.kind === 'completion') return Response.json(r.completion, { headers: routingHeaders(r) });
        return new Response(sseStream(r.chunks, request.signal), {
          headers: { ...SSE_HEADERS, ...routingHeaders(r) },
        });
      } catch (e) {
        // A client that went away is not a server error: nobody reads this answer.
        if (request.signal.aborted) return new Response(null, { status: 499 });
        return toOpenAiError(e);
      }
    })
    .post('/v1/embeddings', async ({ request, body }) => {
      const c = requestContext(request);
      try {
        const input = parseEmbeddingsBody(body);
        const policy = platformAiPolicy(c.blueprint());
        const r = await embed(depsOf(c.app), callerOf(c), policy, input, request.signal);
        return Response.json(
          {
            object: 'list',
            model: r.candidate.model,
            data: r.vectors.map((v, index) => ({
              object: 'embedding',
              index,
              embedding: input.base64 ? Buffer.from(new Float32Array(v).buffer).toString('base64') : v,
            })),
            usage: { prompt_tokens: r.promptTokens, total_tokens: r.promptTokens },
          },
          { headers: routingHeaders(r) },
        );
      } catch (e) {
        // A client that went away is not a server error: nobody reads this answer.
        if (request.signal.aborted) return new Response(null, { status: 499 });
        return toOpenAiError(e);
      }
    });
}
