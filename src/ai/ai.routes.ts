import { Elysia } from 'elysia';
import { type Permission, type PlatformRequestContext, requestContext } from '../identity/index.ts';
import { AppError, isAppError } from '../shared/errors.ts';
import type { PlatformBlueprint } from '../tenancy/index.ts';
import {
  type CostEstimate,
  costOf,
  type Meter,
  periodStart,
  type Reservation,
  type UsageRecord,
} from './meter.ts';
import type { ChatChunk, ChatMessage, ChatRequest, Usage } from './provider.ts';
import { UpstreamError } from './provider.ts';
import {
  type AiPolicy,
  type Candidate,
  NoRouteError,
  planRoute,
  type RoutePlan,
  routeHeader,
  runPlan,
} from './router.ts';
import type { AiRuntime } from './runtime.ts';
import { findBlockedTerm, redactPii } from './safety.ts';

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

/** A platform's AI policy from its blueprint: allowed providers, and whether cloud is off and why. */
export function policyOf(bp: PlatformBlueprint): AiPolicy {
  const g = bp.governance as PlatformBlueprint['governance'] & { hipaa_baa_signed?: boolean };
  const cloudBlocked =
    bp.ai_settings.cloud_fallback === 'never'
      ? "cloud_fallback is 'never'"
      : g.compliance_packs.includes('hipaa') && !g.hipaa_baa_signed
        ? 'HIPAA pack without a signed BAA'
        : null;
  return { allowedProviders: bp.ai_settings.allowed_providers, cloudBlocked };
}

/** An error in OpenAI's wire shape (`error.message/type/param/code`), our dotted code as `code`. */
function openAiError(
  status: number,
  code: string,
  message: string,
  param: string | null = null,
  headers: Record<string, string> = {},
): Response {
  const type =
    status === 401
      ? 'authentication_error'
      : status === 403
        ? 'permission_error'
        : status === 404
          ? 'not_found_error'
          : status === 429
            ? 'rate_limit_error'
            : status >= 500
              ? 'api_error'
              : 'invalid_request_error';
  return Response.json({ error: { message, type, param, code } }, { status, headers });
}

function toOpenAi(e: unknown, plan: RoutePlan | null): Response {
  if (e instanceof NoRouteError) {
    return openAiError(503, 'ai.no_provider_available', e.message, null, {
      'x-ai-route': routeHeader(e.plan, e.attempts),
    });
  }
  if (e instanceof UpstreamError) {
    const attempts = (e as UpstreamError & { attempts?: [] }).attempts ?? [];
    const h: Record<string, string> = plan
      ? { 'x-ai-route': routeHeader(plan, attempts), 'x-ai-provider': e.provider }
      : {};
    return openAiError(
      e.status && e.status >= 400 && e.status < 500 ? e.status : 400,
      'ai.upstream_rejected',
      e.message,
      null,
      h,
    );
  }
  if (isAppError(e)) {
    const h: Record<string, string> = e.retryAfter ? { 'retry-after': String(e.retryAfter) } : {};
    return openAiError(e.status, e.code, e.message, e.details?.[0]?.path.replace(/^\//, '') || null, h);
  }
  throw e;
}

const ROLES = new Set(['system', 'user', 'assistant', 'tool', 'developer']);

/** Checks an OpenAI chat body; every bad field is named (as OpenAI's `param`). */
function checkChatBody(body: unknown): {
  req: Omit<ChatRequest, 'model'>;
  model: string;
  stream: boolean;
  includeUsage: boolean;
} {
  if (!body || typeof body !== 'object' || Array.isArray(body))
    throw new AppError('ai.invalid_request', 'the body must be a JSON object', 400, [
      { path: '', reason: 'must be an object' },
    ]);
  const b = body as Record<string, unknown>;
  if (typeof b.model !== 'string' || !b.model)
    throw new AppError('ai.invalid_request', 'model is required', 400, [
      { path: '/model', reason: 'required' },
    ]);
  if (!Array.isArray(b.messages) || b.messages.length === 0) {
    throw new AppError('ai.invalid_request', 'messages must be a non-empty array', 400, [
      { path: '/messages', reason: 'must be a non-empty array' },
    ]);
  }
  b.messages.forEach((m, i) => {
    const msg = m as Record<string, unknown>;
    if (!msg || typeof msg !== 'object' || !ROLES.has(msg.role as string)) {
      throw new AppError(
        'ai.invalid_request',
        `messages[${i}].role must be one of: ${[...ROLES].join(', ')}`,
        400,
        [{ path: `/messages/${i}/role`, reason: 'invalid role' }],
      );
    }
    const c = msg.content;
    if (!(typeof c === 'string' || c === null || c === undefined || Array.isArray(c))) {
      throw new AppError('ai.invalid_request', `messages[${i}].content must be text, parts or null`, 400, [
        { path: `/messages/${i}/content`, reason: 'invalid content' },
      ]);
    }
  });
  if (b.n !== undefined && b.n !== 1)
    throw new AppError('ai.invalid_request', 'only n = 1 is supported', 400, [
      { path: '/n', reason: 'must be 1' },
    ]);
  const req: Record<string, unknown> = { messages: b.messages };
  for (const k of PASSED_THROUGH) if (b[k] !== undefined) req[k] = b[k];
  for (const k of ['max_tokens', 'max_completion_tokens'] as const) {
    const v = b[k];
    // A budget reserves this many tokens: a negative or fractional one would reserve nothing.
    if (
      v !== undefined &&
      v !== null &&
      !(Number.isInteger(v) && (v as number) >= 1 && (v as number) <= 10_000_000)
    )
      throw new AppError('ai.invalid_request', `${k} must be a whole number from 1 to 10,000,000`, 400, [
        { path: `/${k}`, reason: 'an integer ≥ 1' },
      ]);
  }
  const maxTokens = b.max_tokens ?? b.max_completion_tokens;
  if (typeof maxTokens === 'number') req.max_tokens = maxTokens;
  return {
    model: b.model,
    stream: b.stream === true,
    includeUsage: Boolean((b.stream_options as { include_usage?: boolean } | undefined)?.include_usage),
    req: req as unknown as Omit<ChatRequest, 'model'>,
  };
}

/** The request fields passed on to providers as sent (besides messages and max_tokens). */
const PASSED_THROUGH = [
  'temperature',
  'top_p',
  'stop',
  'tools',
  'tool_choice',
  'response_format',
  'seed',
  'user',
] as const satisfies readonly (keyof ChatRequest)[];

/** Every text of a message list (string content and text parts). */
function textsOf(messages: readonly ChatMessage[]): string[] {
  const out: string[] = [];
  for (const m of messages) {
    if (typeof m.content === 'string') out.push(m.content);
    else if (Array.isArray(m.content))
      for (const p of m.content) if (typeof p.text === 'string') out.push(p.text);
  }
  return out;
}

function redactMessages(messages: readonly ChatMessage[]): { messages: ChatMessage[]; redacted: number } {
  let redacted = 0;
  const one = (t: string) => {
    const r = redactPii(t);
    for (const n of Object.values(r.counts)) redacted += n;
    return r.text;
  };
  return {
    messages: messages.map((m) => ({
      ...m,
      content:
        typeof m.content === 'string'
          ? one(m.content)
          : Array.isArray(m.content)
            ? m.content.map((p) => (typeof p.text === 'string' ? { ...p, text: one(p.text) } : p))
            : m.content,
    })),
    redacted,
  };
}

/** Rough token count (≈4 characters a token) when a provider reports no usage. */
export function countTokens(texts: readonly string[]): number {
  return Math.max(1, Math.ceil(texts.reduce((a, t) => a + t.length, 0) / 4));
}

/**
 * Tokens a non-text content part (an image, audio) is assumed to cost when reserving budget:
 * its URL or data says nothing of it. Above what a high-detail image costs at OpenAI or Anthropic.
 */
const NON_TEXT_PART_TOKENS = 2_048;

/**
 * An upper bound of a request's prompt tokens, for budget reservations: the UTF-8 size of what
 * is sent (messages, tools, response format, as JSON). A byte-level tokenizer (OpenAI's,
 * Llama's, Anthropic's) never makes more tokens than bytes, and the JSON's quotes and keys
 * cover the few tokens of each message's chat template. Non-text parts add NON_TEXT_PART_TOKENS.
 */
export function promptTokenBound(req: Pick<ChatRequest, 'messages' | 'tools' | 'response_format'>): number {
  let parts = 0;
  for (const m of req.messages) {
    if (Array.isArray(m.content)) for (const p of m.content) if (typeof p.text !== 'string') parts++;
  }
  const sent = JSON.stringify([req.messages, req.tools ?? null, req.response_format ?? null]);
  return Buffer.byteLength(sent) + parts * NON_TEXT_PART_TOKENS;
}

/**
 * The most a call on `plan` may cost, per currency: for each candidate that has a price (the
 * call may fall back to any of them), the cost of `promptTokens` in and `maxOut` out, plus the
 * platform's markup, rounded as the meter rounds; the dearest candidate per currency.
 */
export function estimateCost(
  plan: RoutePlan,
  prices: AiRuntime['prices'],
  promptTokens: number,
  maxOut: number,
  markupPercent: number,
): CostEstimate {
  const out = new Map<string, number>();
  for (const cand of plan.candidates) {
    const price = prices[cand.key];
    if (!price) continue;
    const cost = costOf(price, promptTokens, maxOut);
    const total = cost + Math.ceil((cost * markupPercent) / 100);
    if (total > (out.get(price.currency) ?? 0)) out.set(price.currency, total);
  }
  return out;
}

/**
 * The OpenAI-compatible API of a platform: /v1/models, /v1/chat/completions (plain and SSE),
 * /v1/embeddings. Policy (allowed providers, cloud off), safety (blocked terms, PII redaction
 * before cloud), budgets (hard stop), routing with fallback, metering and the audit of every
 * call that leaves the box all happen here, per platform.
 */
export function aiRoutes(d: { runtime: AiRuntime; meter: Meter }) {
  const { runtime, meter } = d;
  const timeoutOf = (c: Candidate) => runtime.configs.get(c.provider.id)?.timeout_ms ?? 30_000;

  /** Refuses the call (400) when the safety classifier puts it in a blocked class. */
  const classify = async (bp: PlatformBlueprint, texts: string[], signal: AbortSignal) => {
    const sc = runtime.classifier;
    if (!sc || bp.ai_settings.safety_filters.level === 'minimal') return;
    const verdict = await sc.classify(texts.join('\n'), signal);
    if (verdict && sc.block.includes(verdict.label) && verdict.score >= sc.minScore) {
      throw new AppError(
        'ai.blocked_by_policy',
        `the request was blocked by the platform's policy (rule: classifier '${verdict.label}', score ${verdict.score.toFixed(2)})`,
        400,
        [{ path: '/messages', reason: `classifier:${verdict.label}` }],
      );
    }
  };

  /**
   * Holds budget room for a call on `plan` before it is made (429 `ai.budget_exceeded` when
   * some budget that applies has no room for the call's worst case), or null when no budget
   * applies. The hold is settled with the actual usage, or released when the call fails.
   */
  const reserveBudgets = (
    c: PlatformRequestContext,
    plan: RoutePlan,
    promptTokens: () => number,
    maxOut: number,
  ): Reservation | null => {
    const markup = c.blueprint().monetization.usage_pricing?.markup_percent ?? 0;
    const r = meter.reserve(c.db, c.platform.id, whoOf(c), c.app.clock.now(), () =>
      estimateCost(plan, runtime.prices, promptTokens(), maxOut, markup),
    );
    if ('refused' in r) {
      const { budget, spent, reserved, needed } = r.refused;
      const e = new AppError(
        'ai.budget_exceeded',
        needed > 0 && spent < budget.limit_minor
          ? `the ${budget.scope} ${budget.period}ly AI budget (${budget.limit_minor} ${budget.currency} minor units) has no room for this call: ${spent} spent, ${reserved} held by calls in flight, up to ${needed} needed`
          : `the ${budget.scope} ${budget.period}ly AI budget (${budget.limit_minor} ${budget.currency} minor units) is spent`,
        429,
      );
      e.retryAfter = reserved > 0 && spent + needed <= budget.limit_minor ? 1 : 3600;
      throw e;
    }
    return r.reservation;
  };

  /**
   * A slot for one more stream of this caller, or 429 `ai.too_many_streams`. Counted per user,
   * across their sessions and all their keys (any member may make keys, so a cap per key alone
   * is no cap), and per key for a key that belongs to no user.
   */
  const streamSlot = (c: PlatformRequestContext): (() => void) => {
    const who = whoOf(c);
    const caller = `${c.platform.id} ${who.userId ? `user:${who.userId}` : `key:${who.keyId ?? ''}`}`;
    const release = runtime.streams.acquire(caller);
    if (!release) {
      const e = new AppError(
        'ai.too_many_streams',
        `at most ${runtime.streams.limit} streamed completions may be open at once per user (all their API keys together) or per platform key; wait for one to end`,
        429,
      );
      e.retryAfter = 1;
      throw e;
    }
    return release;
  };

  /** Audits a call about to leave the box, with the policy that allowed it. */
  const auditCloud = (
    c: PlatformRequestContext,
    cand: Candidate,
    policy: AiPolicy,
    kind: string,
    redacted: number,
  ) => {
    if (cand.provider.location !== 'cloud') return;
    const who = whoOf(c);
    c.app.audit.append(c.db, {
      actor: who.keyId ? `apikey:${who.keyId}` : who.userId ? `user:${who.userId}` : 'anonymous',
      action: 'ai.cloud_call',
      target: `provider:${cand.provider.id}`,
      details: {
        kind,
        model: cand.key,
        policy: {
          cloud_fallback: 'allowed',
          allowed_providers: policy.allowedProviders.length ? policy.allowedProviders : 'all',
        },
        pii_redacted: redacted,
      },
    });
  };

  const record = (
    c: PlatformRequestContext,
    cand: Candidate,
    alias: string,
    kind: 'chat' | 'embeddings',
    usage: Usage,
    counted: boolean,
    latencyMs: number,
    status: 'ok' | 'error',
    reservation: Reservation | null,
    db = c.db,
  ) => {
    const price = runtime.prices[cand.key];
    const cost = costOf(price, usage.prompt_tokens, usage.completion_tokens);
    const markupPct = c.blueprint().monetization.usage_pricing?.markup_percent ?? 0;
    const who = whoOf(c);
    const usageRecord: UsageRecord = {
      platformId: c.platform.id,
      ts: c.app.clock.now(),
      userId: who.userId,
      keyId: who.keyId,
      agentId: null,
      kind,
      alias,
      provider: cand.provider.id,
      model: cand.model,
      tokensIn: usage.prompt_tokens,
      tokensOut: usage.completion_tokens,
      counted,
      latencyMs: Math.round(latencyMs),
      costMinor: cost,
      markupMinor: Math.ceil((cost * markupPct) / 100),
      currency: price?.currency ?? 'usd',
      status,
    };
    const crossed = reservation ? reservation.settle(db, usageRecord) : meter.record(db, usageRecord);
    for (const b of crossed) {
      c.app.log.warn('AI budget alert', {
        platform: c.platform.slug,
        scope: b.scope,
        subject: b.subject,
        period: b.period,
      });
      c.app.bus.publish('ai.budget_alert', {
        platformId: c.platform.id,
        budgetId: b.id,
        scope: b.scope,
        subject: b.subject,
        percent: b.alert_percent,
      });
    }
  };

  return new Elysia({ name: 'ai.routes' })
    .get('/api/v1/ai/budgets', ({ request }) => ({
      budgets: requestContext(request)
        .db.query('SELECT * FROM budgets ORDER BY scope, subject, period')
        .all(),
    }))
    .put('/api/v1/ai/budgets', ({ request, body }) => {
      const c = requestContext(request);
      const b = checkBudget(body);
      const row = c.db
        .transaction(() => {
          const id = `bud_${b.scope}_${b.subject || 'all'}_${b.period}`.replace(/[^a-zA-Z0-9_]/g, '_');
          c.db
            .query(
              `INSERT INTO budgets (id, scope, subject, period, limit_minor, currency, alert_percent, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)
             ON CONFLICT (scope, subject, period) DO UPDATE SET limit_minor = excluded.limit_minor, currency = excluded.currency, alert_percent = excluded.alert_percent`,
            )
            .run(
              id,
              b.scope,
              b.subject,
              b.period,
              b.limit_minor,
              b.currency,
              b.alert_percent,
              c.app.clock.now(),
            );
          c.app.audit.append(c.db, {
            actor: actorOf(c),
            action: 'ai.budget_set',
            target: `budget:${b.scope}:${b.subject || '*'}:${b.period}`,
            details: { ...b },
          });
          return c.db
            .query('SELECT * FROM budgets WHERE scope = ? AND subject = ? AND period = ?')
            .get(b.scope, b.subject, b.period);
        })
        .immediate();
      meter.invalidate(c.platform.id);
      return { budget: row };
    })
    .delete('/api/v1/ai/budgets/:id', ({ request, params }) => {
      const c = requestContext(request);
      const gone = c.db
        .transaction(() => {
          const n = c.db.query('DELETE FROM budgets WHERE id = ?').run(params.id).changes;
          if (n)
            c.app.audit.append(c.db, {
              actor: actorOf(c),
              action: 'ai.budget_removed',
              target: `budget:${params.id}`,
            });
          return n;
        })
        .immediate();
      if (!gone) throw new AppError('ai.budget_not_found', `no budget ${params.id}`, 404);
      meter.invalidate(c.platform.id);
      return new Response(null, { status: 204 });
    })
    .get('/api/v1/ai/usage', async ({ request, query }) => {
      const c = requestContext(request);
      await meter.flush();
      const from = query.from ? Date.parse(String(query.from)) : periodStart('month', c.app.clock.now());
      const to = query.to ? Date.parse(String(query.to)) : c.app.clock.now() + 1;
      if (Number.isNaN(from) || Number.isNaN(to)) {
        throw new AppError('ai.invalid_request', 'from and to must be ISO-8601 times', 400, [
          { path: Number.isNaN(from) ? '/from' : '/to', reason: 'not a time' },
        ]);
      }
      const rows = c.db
        .query(
          `SELECT provider, model, kind, currency, count(*) AS calls, sum(tokens_in) AS tokens_in, sum(tokens_out) AS tokens_out,
                  sum(cost_minor) AS cost_minor, sum(markup_minor) AS markup_minor
           FROM usage_events WHERE ts >= ? AND ts < ? GROUP BY provider, model, kind, currency ORDER BY provider, model`,
        )
        .all(from, to);
      return { from: new Date(from).toISOString(), to: new Date(to).toISOString(), usage: rows };
    })
    .get('/v1/models', ({ request }) => {
      const c = requestContext(request);
      const policy = policyOf(c.blueprint());
      const data = runtime
        .aliases()
        .filter((a) => planRoute(a.alias, runtime, policy).candidates.length > 0)
        .map((a) => ({ id: a.alias, object: 'model', created: 0, owned_by: c.platform.slug }));
      return { object: 'list', data };
    })
    .post('/v1/chat/completions', async ({ request, body }) => {
      const c = requestContext(request);
      let plan: RoutePlan | null = null;
      let slot: (() => void) | null = null;
      let reservation: Reservation | null = null;
      try {
        const { model, req, stream, includeUsage } = checkChatBody(body);
        const bp = c.blueprint();
        const policy = policyOf(bp);
        const promptTexts = textsOf(req.messages);
        const blocked = findBlockedTerm(promptTexts, bp.ai_settings.safety_filters.blocked_terms);
        if (blocked) {
          throw new AppError(
            'ai.blocked_by_policy',
            `the request was blocked by the platform's policy (rule: blocked_term '${blocked}')`,
            400,
            [{ path: '/messages', reason: `blocked_term:${blocked}` }],
          );
        }
        if (runtime.classifier) await classify(bp, promptTexts, request.signal);
        plan = planRoute(model, runtime, policy);
        const p = plan;
        // Held from here until the call is metered or fails; the catch below gives back whatever
        // has not been handed on to the stream.
        if (stream) slot = streamSlot(c);
        const maxOut = req.max_tokens ?? runtime.maxTokensFor(model);
        reservation = reserveBudgets(c, plan, () => promptTokenBound(req), maxOut);
        // NB! A budget's bound holds only if the provider stops at the reserved length: a request
        // that names no maximum is sent with the one reserved.
        if (reservation && req.max_tokens === undefined) req.max_tokens = maxOut;
        const redact = bp.ai_settings.safety_filters.redact_pii;
        const forCandidate = (cand: Candidate): ChatRequest => {
          const r =
            cand.provider.location === 'cloud' && redact
              ? redactMessages(req.messages)
              : { messages: req.messages, redacted: 0 };
          auditCloud(c, cand, policy, 'chat', r.redacted);
          return { ...req, messages: r.messages, model: cand.model };
        };
        const started = performance.now();
        if (!stream) {
          const routed = await runPlan(p, runtime, request.signal, timeoutOf, (cand, signal) =>
            cand.provider.chat(forCandidate(cand), signal),
          );
          const out = routed.result;
          const counted = !out.usage?.total_tokens;
          const usage: Usage = counted
            ? (() => {
                const pi = countTokens(promptTexts);
                const o = countTokens(out.choices.map((ch) => ch.message.content ?? ''));
                return { prompt_tokens: pi, completion_tokens: o, total_tokens: pi + o };
              })()
            : out.usage;
          record(
            c,
            routed.candidate,
            model,
            'chat',
            usage,
            counted,
            performance.now() - started,
            'ok',
            reservation,
          );
          return Response.json(
            { ...out, usage },
            {
              headers: {
                'x-ai-provider': routed.candidate.provider.id,
                'x-ai-route': routeHeader(p, routed.attempts),
              },
            },
          );
        }
        const routed = await runPlan(p, runtime, request.signal, timeoutOf, (cand, signal) =>
          cand.provider.chatStream(forCandidate(cand), signal),
        );
        const cand = routed.candidate;
        // NB! The request's lease ends when this handler returns; the stream outlives it, so it
        // holds its own lease of the platform's database until it is metered.
        const hold = c.app.platformDbs.acquire(c.platform.id);
        // The stream owns the slot and the reservation from here: `done` gives both back.
        const held = { slot, reservation };
        slot = null;
        reservation = null;
        return new Response(
          sseStream(routed.result, timeoutOf(cand), request.signal, (usage, counted, outTexts, ok) => {
            const u =
              usage ??
              (() => {
                const pi = countTokens(promptTexts);
                const po = countTokens(outTexts);
                return { prompt_tokens: pi, completion_tokens: po, total_tokens: pi + po };
              })();
            try {
              record(
                c,
                cand,
                model,
                'chat',
                u,
                counted || !usage,
                performance.now() - started,
                ok ? 'ok' : 'error',
                held.reservation,
                hold.db,
              );
            } finally {
              held.reservation?.release();
              held.slot?.();
              hold.release();
            }
            return includeUsage && !usage ? u : null;
          }),
          {
            headers: {
              'content-type': 'text/event-stream; charset=utf-8',
              'cache-control': 'no-cache',
              'x-ai-provider': cand.provider.id,
              'x-ai-route': routeHeader(p, routed.attempts),
            },
          },
        );
      } catch (e) {
        reservation?.release();
        slot?.();
        // A client that went away is not a server error: nobody reads this answer.
        if (request.signal.aborted) return new Response(null, { status: 499 });
        return toOpenAi(e, plan);
      }
    })
    .post('/v1/embeddings', async ({ request, body }) => {
      const c = requestContext(request);
      let plan: RoutePlan | null = null;
      let reservation: Reservation | null = null;
      try {
        const b = (body ?? {}) as Record<string, unknown>;
        const input = typeof b.input === 'string' ? [b.input] : b.input;
        if (!Array.isArray(input) || input.length === 0 || !input.every((x) => typeof x === 'string')) {
          throw new AppError(
            'ai.invalid_request',
            'input must be a string or a non-empty array of strings',
            400,
            [{ path: '/input', reason: 'must be text' }],
          );
        }
        if (
          b.encoding_format !== undefined &&
          b.encoding_format !== 'float' &&
          b.encoding_format !== 'base64'
        ) {
          throw new AppError('ai.invalid_request', 'encoding_format must be float or base64', 400, [
            { path: '/encoding_format', reason: 'float or base64' },
          ]);
        }
        const bp = c.blueprint();
        const policy = policyOf(bp);
        const texts = input as string[];
        const blocked = findBlockedTerm(texts, bp.ai_settings.safety_filters.blocked_terms);
        if (blocked) {
          throw new AppError(
            'ai.blocked_by_policy',
            `the request was blocked by the platform's policy (rule: blocked_term '${blocked}')`,
            400,
            [{ path: '/input', reason: `blocked_term:${blocked}` }],
          );
        }
        plan = planRoute(b.model, runtime, policy);
        reservation = reserveBudgets(c, plan, () => texts.reduce((n, t) => n + Buffer.byteLength(t), 0), 0);
        const started = performance.now();
        const routed = await runPlan(plan, runtime, request.signal, timeoutOf, (cand, signal) => {
          const redact = cand.provider.location === 'cloud' && bp.ai_settings.safety_filters.redact_pii;
          const inputs = redact ? texts.map((t) => redactPii(t).text) : texts;
          auditCloud(
            c,
            cand,
            policy,
            'embeddings',
            redact ? texts.filter((t, i) => t !== inputs[i]).length : 0,
          );
          return cand.provider.embeddings({ model: cand.model, input: inputs }, signal);
        });
        const r = routed.result;
        const counted = !r.usage.prompt_tokens;
        const promptTokens = counted ? countTokens(texts) : r.usage.prompt_tokens;
        record(
          c,
          routed.candidate,
          plan.alias,
          'embeddings',
          { prompt_tokens: promptTokens, completion_tokens: 0, total_tokens: promptTokens },
          counted,
          performance.now() - started,
          'ok',
          reservation,
        );
        const base64 = b.encoding_format === 'base64';
        return Response.json(
          {
            object: 'list',
            model: routed.candidate.model,
            data: r.vectors.map((v, index) => ({
              object: 'embedding',
              index,
              embedding: base64 ? Buffer.from(new Float32Array(v).buffer).toString('base64') : v,
            })),
            usage: { prompt_tokens: promptTokens, total_tokens: promptTokens },
          },
          {
            headers: {
              'x-ai-provider': routed.candidate.provider.id,
              'x-ai-route': routeHeader(plan, routed.attempts),
            },
          },
        );
      } catch (e) {
        reservation?.release();
        // A client that went away is not a server error: nobody reads this answer.
        if (request.signal.aborted) return new Response(null, { status: 499 });
        return toOpenAi(e, plan);
      }
    });
}

function actorOf(c: PlatformRequestContext): string {
  const w = whoOf(c);
  return w.keyId ? `apikey:${w.keyId}` : w.userId ? `user:${w.userId}` : 'anonymous';
}

/** Checks a budget body; every bad field is named. */
function checkBudget(body: unknown): {
  scope: 'platform' | 'user' | 'key';
  subject: string;
  period: 'day' | 'month';
  limit_minor: number;
  currency: string;
  alert_percent: number;
} {
  const b = (body ?? {}) as Record<string, unknown>;
  const details: { path: string; reason: string }[] = [];
  if (!['platform', 'user', 'key'].includes(b.scope as string))
    details.push({ path: '/scope', reason: 'platform, user or key' });
  if (b.scope !== 'platform' && (typeof b.subject !== 'string' || !b.subject))
    details.push({ path: '/subject', reason: 'the user or key id' });
  if (!['day', 'month'].includes(b.period as string))
    details.push({ path: '/period', reason: 'day or month' });
  if (!Number.isInteger(b.limit_minor) || (b.limit_minor as number) < 0)
    details.push({ path: '/limit_minor', reason: 'an integer ≥ 0 (minor units)' });
  if (typeof b.currency !== 'string' || !/^[a-z]{3}$/.test(b.currency))
    details.push({ path: '/currency', reason: 'ISO 4217, lowercase' });
  if (
    b.alert_percent !== undefined &&
    (!Number.isInteger(b.alert_percent) ||
      (b.alert_percent as number) < 1 ||
      (b.alert_percent as number) > 100)
  ) {
    details.push({ path: '/alert_percent', reason: '1 to 100' });
  }
  if (details.length)
    throw new AppError(
      'ai.budget_invalid',
      `invalid budget: ${details.map((d) => d.path).join(', ')}`,
      400,
      details,
    );
  return {
    scope: b.scope as 'platform',
    subject: b.scope === 'platform' ? '' : (b.subject as string),
    period: b.period as 'day',
    limit_minor: b.limit_minor as number,
    currency: b.currency as string,
    alert_percent: (b.alert_percent as number | undefined) ?? 80,
  };
}

function whoOf(c: PlatformRequestContext): { userId: string | null; keyId: string | null } {
  const p = c.principal;
  if (!p || p.kind === 'scim') return { userId: null, keyId: null };
  return p.kind === 'api_key' ? { userId: p.userId, keyId: p.keyId } : { userId: p.userId, keyId: null };
}

/**
 * The client's SSE stream: each chunk as `data: {json}`, then `data: [DONE]`. The first chunk
 * is already there (the router waited for it). A stall longer than `stallMs` between chunks, or
 * an upstream failure mid-stream, ends the stream with an error event: after the first byte
 * nothing falls back. `done` meters the call and may return a usage chunk to send last.
 */
function sseStream(
  chunks: AsyncIterable<ChatChunk>,
  stallMs: number,
  clientSignal: AbortSignal,
  done: (usage: Usage | null, counted: boolean, outTexts: string[], ok: boolean) => Usage | null,
): ReadableStream<Uint8Array> {
  const enc = new TextEncoder();
  const it = chunks[Symbol.asyncIterator]();
  const outTexts: string[] = [];
  let usage: Usage | null = null;
  let last: ChatChunk | null = null;
  let finished = false;
  const finish = (ctrl: ReadableStreamDefaultController<Uint8Array>, ok: boolean, error?: string) => {
    if (finished) return;
    finished = true;
    if (error) {
      ctrl.enqueue(
        enc.encode(
          `data: ${JSON.stringify({ error: { message: error, type: 'api_error', param: null, code: 'ai.stream_interrupted' } })}\n\n`,
        ),
      );
    }
    const extra = done(usage, false, outTexts, ok);
    if (ok && extra && last) {
      ctrl.enqueue(
        enc.encode(
          `data: ${JSON.stringify({ id: last.id, object: 'chat.completion.chunk', created: last.created, model: last.model, choices: [], usage: extra })}\n\n`,
        ),
      );
    }
    if (ok) ctrl.enqueue(enc.encode('data: [DONE]\n\n'));
    ctrl.close();
    void it.return?.();
  };
  return new ReadableStream<Uint8Array>({
    async pull(ctrl) {
      let timer: ReturnType<typeof setTimeout> | undefined;
      try {
        const stall = new Promise<never>((_, reject) => {
          timer = setTimeout(
            () => reject(new Error(`the provider stalled for ${stallMs} ms mid-stream`)),
            stallMs,
          );
        });
        const r = await Promise.race([it.next(), stall]);
        if (r.done) return finish(ctrl, true);
        const ch = r.value;
        last = ch;
        if (ch.usage) usage = ch.usage;
        for (const choice of ch.choices)
          if (typeof choice.delta.content === 'string') outTexts.push(choice.delta.content);
        ctrl.enqueue(enc.encode(`data: ${JSON.stringify(ch)}\n\n`));
      } catch (e) {
        finish(ctrl, false, clientSignal.aborted ? 'client went away' : (e as Error).message);
      } finally {
        clearTimeout(timer);
      }
    },
    cancel() {
      if (!finished) {
        finished = true;
        done(usage, false, outTexts, false);
        void it.return?.();
      }
    },
  });
}
