import { type DocumentDecoration, Elysia } from 'elysia';
import { type PlatformRequestContext, platformGuard } from '../identity/index.ts';
import { jsonInteger } from '../shared/money.ts';
import {
  BudgetBody,
  BudgetParams,
  ChatCompletionBody,
  EmbeddingsBody,
  parseBudgetBody,
  parseChatBody,
  parseEmbeddingsBody,
  parseUsageQuery,
  UsageQuery,
} from './ai.models.ts';
import type { Meter } from './meter.ts';
import { toOpenAiError } from './openai-errors.ts';
import { platformAiPolicy } from './policy.ts';
import { routeHeader } from './router.ts';
import type { AiRuntime } from './runtime.ts';
import {
  type AiCaller,
  aiDepsOf,
  budgets,
  completeChat,
  embed,
  listModels,
  type Routing,
  removeBudget,
  setBudget,
  usageReport,
  usageSeries,
} from './service.ts';
import { SSE_HEADERS, sseStream } from './sse.ts';

/**
 * A route's documented body: the schema goes into the OpenAPI document (route metadata), while
 * the body is checked by the compiled `parse*` of ai.models.ts, whose OpenAI-compatible errors
 * (first bad field, in the order OpenAI reads them) the contract pins.
 */
const documentedBody = (schema: object, summary: string, tags = ['ai']): DocumentDecoration =>
  ({
    summary,
    tags,
    requestBody: { required: true, content: { 'application/json': { schema } } },
  }) as DocumentDecoration;

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
export function aiRoutes(d: {
  runtime: AiRuntime;
  meter: Meter;
  /** Before a chat call: throws when the caller may not make it (billing's tier limits). */
  admit?: (c: PlatformRequestContext, meter: Meter) => void;
}) {
  // The service's dependencies, built once per App (one App serves every platform).
  const depsOf = aiDepsOf(d);

  return new Elysia({ name: 'ai.routes' })
    .use(platformGuard)
    .get('/api/v1/ai/budgets', ({ ctx }) => ({ budgets: budgets(ctx) }), {
      permission: 'billing:read',
      detail: { summary: "The platform's AI budgets", tags: ['ai'] },
    })
    .put(
      '/api/v1/ai/budgets',
      ({ ctx: c, body }) => {
        const b = parseBudgetBody(body);
        return { budget: setBudget(depsOf(c.app), callerOf(c), b) };
      },
      { permission: 'billing:write', detail: documentedBody(BudgetBody, 'Set an AI budget') },
    )
    .delete(
      '/api/v1/ai/budgets/:id',
      ({ ctx: c, params }) => {
        removeBudget(depsOf(c.app), callerOf(c), params.id);
        return new Response(null, { status: 204 });
      },
      {
        permission: 'billing:write',
        params: BudgetParams,
        detail: { summary: 'Remove an AI budget', tags: ['ai'] },
      },
    )
    .get(
      '/api/v1/ai/usage',
      async ({ ctx: c, query }) => {
        const range = parseUsageQuery(query);
        const r = await usageReport(depsOf(c.app), c, range);
        // Money as exact JSON integers of micro-units, however large (never a rounded float).
        const usage = r.usage.map((l) => ({
          ...l,
          cost_micro: jsonInteger(l.cost_micro),
          markup_micro: jsonInteger(l.markup_micro),
        }));
        return { from: new Date(r.from).toISOString(), to: new Date(r.to).toISOString(), usage };
      },
      {
        permission: 'billing:read',
        detail: {
          summary: 'AI usage by day, model and caller',
          tags: ['ai'],
          parameters: Object.entries(UsageQuery.properties).map(([name, schema]) => ({
            name,
            in: 'query',
            required: false,
            schema,
          })),
        } as DocumentDecoration,
      },
    )
    .get(
      '/api/v1/ai/usage/hourly',
      async ({ ctx: c, query }) => {
        const r = await usageSeries(depsOf(c.app), c, parseUsageQuery(query));
        return {
          from: new Date(r.from).toISOString(),
          to: new Date(r.to).toISOString(),
          hours: r.hours.map((h) => ({
            ...h,
            hour: new Date(h.hour).toISOString(),
            cost_micro: jsonInteger(h.cost_micro),
            markup_micro: jsonInteger(h.markup_micro),
          })),
        };
      },
      {
        permission: 'billing:read',
        detail: {
          summary: 'AI usage by hour, model alias and user (default: the last 30 days), for charts',
          tags: ['ai'],
          parameters: Object.entries(UsageQuery.properties).map(([name, schema]) => ({
            name,
            in: 'query',
            required: false,
            schema,
          })),
        } as DocumentDecoration,
      },
    )
    .get(
      '/v1/models',
      ({ ctx: c }) => {
        const data = listModels(d, platformAiPolicy(c.blueprint())).map((id) => ({
          id,
          object: 'model',
          created: 0,
          owned_by: c.platform.slug,
        }));
        return { object: 'list', data };
      },
      {
        permission: 'ai:invoke',
        detail: { summary: 'The models this caller may use (OpenAI-compatible)', tags: ['ai'] },
      },
    )
    .post(
      '/v1/chat/completions',
      async ({ ctx: c, request, body }) => {
        try {
          const input = parseChatBody(body);
          d.admit?.(c, d.meter);
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
      },
      {
        permission: 'ai:invoke',
        detail: documentedBody(
          ChatCompletionBody,
          'A chat completion, plain or streamed (OpenAI-compatible)',
        ),
      },
    )
    .post(
      '/v1/embeddings',
      async ({ ctx: c, request, body }) => {
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
      },
      { permission: 'ai:invoke', detail: documentedBody(EmbeddingsBody, 'Embeddings (OpenAI-compatible)') },
    );
}
