import type { Database } from 'bun:sqlite';
import type { App } from '../app/index.ts';
import { AppError } from '../shared/errors.ts';
import { microOfMinor } from '../shared/money.ts';
import type { BudgetInput, ChatInput, EmbeddingsInput } from './ai.models.ts';
import {
  type Budget,
  type CostEstimate,
  costMicro,
  describeRefusal,
  type Meter,
  markupMicro,
  periodStart,
  type Reservation,
  type UsageRecord,
} from './meter.ts';
import { type CallOutcome, logRouting } from './observe.ts';
import type { PlatformAiPolicy } from './policy.ts';
import {
  type ChatChunk,
  type ChatCompletion,
  type ChatMessage,
  type ChatRequest,
  UpstreamError,
  type Usage,
} from './provider.ts';
import { cheapestFirst, outputTokens } from './route-settings.ts';
import { type Attempt, type Candidate, NoRouteError, planRoute, type RoutePlan, runPlan } from './router.ts';
import type { AiRuntime } from './runtime.ts';
import { findBlockedTerm, redactPii } from './safety.ts';
import {
  type BudgetRow,
  deleteBudget,
  listBudgets,
  type UsageHour,
  type UsageLine,
  upsertBudget,
  usageBetween,
  usageByHour,
} from './usage.repository.ts';

/*
 * The AI pipeline as a service: what /v1/chat/completions, /v1/embeddings, /v1/models and the
 * budget routes do, without HTTP, for the routes and for agents alike. A call runs, in order:
 * safety (blocked terms, the classifier), policy (planning removes what the platform may not
 * use), budgets (room for the worst case is held before the call, settled with the actual
 * usage after), the call itself with fallback, PII redaction and the audit of every call that
 * leaves the box, then metering. Errors are AppError (400, 404, 429), NoRouteError (no
 * candidate could answer) or UpstreamError (the provider refused the request itself; carries
 * the plan and the attempts).
 */

/** What the service needs: the AI runtime and meter, and the App's pieces it uses. */
export interface AiDeps extends Pick<App, 'clock' | 'audit' | 'events' | 'log' | 'platformDbs'> {
  runtime: AiRuntime;
  meter: Meter;
  /** `clock.now`, bound once (the router's breakers read it on every attempt). */
  now: () => number;
}

/**
 * The service's dependencies for the App a request runs in, built once per App (one App serves
 * every platform): what each set of routes keeps to call the service.
 */
export function aiDepsOf(ai: { runtime: AiRuntime; meter: Meter }): (app: App) => AiDeps {
  let depsApp: App | null = null;
  let deps: AiDeps | null = null;
  return (app) => {
    if (depsApp !== app || !deps) {
      deps = aiDeps(app, ai);
      depsApp = app;
    }
    return deps;
  };
}

/** The service's dependencies from the App and the AI runtime. */
export function aiDeps(
  app: Pick<App, 'clock' | 'audit' | 'events' | 'log' | 'platformDbs'>,
  ai: { runtime: AiRuntime; meter: Meter },
): AiDeps {
  return {
    runtime: ai.runtime,
    meter: ai.meter,
    clock: app.clock,
    now: () => app.clock.now(),
    audit: app.audit,
    events: app.events,
    log: app.log,
    platformDbs: app.platformDbs,
  };
}

/**
 * Who calls, on which platform: the platform, its database (leased by the caller for the
 * call; a stream takes its own lease), and the user, API key and agent the call is for
 * (budgets, metering and the audit use them). Permission is checked before the service.
 */
export interface AiCaller {
  platform: { id: string; slug: string };
  db: Database;
  userId: string | null;
  keyId: string | null;
  agentId: string | null;
  /** With an agent: the version that ran (null: its draft) and its creator (the owner now). */
  agentVersion?: number | null;
  creatorId?: string | null;
}

/** How a call went to the provider: the plan, every attempt, and the candidate that answered. */
export interface Routing {
  plan: RoutePlan;
  attempts: Attempt[];
  candidate: Candidate;
}

/** A chat answered whole: the completion with its usage (reported or counted). */
export interface ChatAnswer extends Routing {
  kind: 'completion';
  completion: ChatCompletion;
}

/**
 * A chat answered as a stream: `chunks` yields the provider's chunks (the first one already
 * arrived) and, when the caller asked for usage and the provider gave none, a last chunk with
 * the counted usage. It throws when the provider stalls past its timeout or fails mid-stream.
 * The call is metered, its budget settled and its stream slot freed exactly once, when the
 * iterator ends, throws, or is returned (the client went away).
 */
export interface ChatStreamAnswer extends Routing {
  kind: 'stream';
  chunks: AsyncIterator<ChatChunk>;
}

/** Embeddings, one vector per input in order, with the prompt tokens (reported or counted). */
export interface EmbeddingsAnswer extends Routing {
  vectors: number[][];
  promptTokens: number;
}

/** Rough token count (≈4 characters a token) when a provider reports no usage. */
export function countTokens(texts: readonly string[]): number {
  let n = 0;
  for (const t of texts) n += t.length;
  return Math.max(1, Math.ceil(n / 4));
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
 * The most a call on `plan` may cost, per currency, in micro-units: for each candidate that has a
 * price (the call may fall back to any of them), the cost of `promptTokens` in and `maxOut` out,
 * plus the platform's markup, as the meter computes it; the dearest candidate per currency.
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
    const cost = costMicro(price, promptTokens, maxOut);
    const total = cost + markupMicro(cost, markupPercent);
    if (total > (out.get(price.currency) ?? 0)) out.set(price.currency, total);
  }
  return out;
}

/** The models a platform may call: every alias whose route keeps a candidate under its policy. */
export function listModels(deps: Pick<AiDeps, 'runtime'>, policy: PlatformAiPolicy): string[] {
  const out: string[] = [];
  for (const a of deps.runtime.aliases()) {
    if (planRoute(a.alias, deps.runtime, policy).candidates.length > 0) out.push(a.alias);
  }
  return out;
}

/** A chat completion, whole or streamed (see ChatAnswer and ChatStreamAnswer). */
export async function completeChat(
  deps: AiDeps,
  caller: AiCaller,
  policy: PlatformAiPolicy,
  input: ChatInput,
  signal: AbortSignal,
): Promise<ChatAnswer | ChatStreamAnswer> {
  const { runtime } = deps;
  const { model, stream } = input;
  let req = input.req;
  let slot: (() => void) | null = null;
  let reservation: Reservation | null = null;
  try {
    const promptTexts = textsOf(req.messages);
    refuseBlockedTerms(policy, promptTexts, '/messages');
    if (runtime.classifier && policy.classify) await classify(runtime, promptTexts, signal);
    const plan = routeFor(model, deps, policy);
    // Held from here until the call is metered or fails; the catch below gives back whatever
    // has not been handed on to the stream.
    if (stream) slot = streamSlot(runtime, caller);
    const maxOut = outputTokens(req.max_tokens, runtime.maxTokensFor(model), policy.maxOutputTokens);
    const r0 = req;
    reservation = reserveBudgets(deps, caller, policy, plan, () => promptTokenBound(r0), maxOut);
    // NB! A budget's bound holds only if the provider stops at the reserved length: a request
    // that names no maximum is sent with the one reserved; under a cap, it is sent capped.
    if (req.max_tokens !== maxOut && (reservation || policy.maxOutputTokens !== null))
      req = { ...req, max_tokens: maxOut };
    const sent = req;
    const forCandidate = (cand: Candidate): ChatRequest => {
      const r =
        cand.provider.location === 'cloud' && policy.redactPiiBeforeCloud
          ? redactMessages(sent.messages)
          : { messages: sent.messages, redacted: 0 };
      auditCloud(deps, caller, policy, cand, 'chat', r.redacted);
      return { ...sent, messages: r.messages, model: cand.model };
    };
    const timeoutOf = timeoutsOf(runtime);
    const started = performance.now();
    if (!stream) {
      const routed = await runPlan(
        plan,
        runtime,
        signal,
        timeoutOf,
        (cand, s) => cand.provider.chat(forCandidate(cand), s),
        deps.now,
      );
      firstByte(deps, routed.candidate, started);
      const out = routed.result;
      const counted = !out.usage?.total_tokens;
      const usage: Usage = counted
        ? countedUsage(
            promptTexts,
            out.choices.map((ch) => ch.message.content ?? ''),
          )
        : out.usage;
      recordUsage(deps, caller, policy, caller.db, reservation, {
        candidate: routed.candidate,
        alias: model,
        kind: 'chat',
        usage,
        counted,
        latencyMs: performance.now() - started,
        status: 'ok',
      });
      observeCall(deps, caller, plan, routed.attempts, 'ok', routed.candidate, usage);
      return {
        kind: 'completion',
        completion: { ...out, usage },
        plan,
        attempts: routed.attempts,
        candidate: routed.candidate,
      };
    }
    const routed = await runPlan(
      plan,
      runtime,
      signal,
      timeoutOf,
      (cand, s) => cand.provider.chatStream(forCandidate(cand), s),
      deps.now,
    );
    const cand = routed.candidate;
    firstByte(deps, cand, started);
    const streamAttempts = routed.attempts;
    // NB! The caller's lease may end before the stream does (a request's ends when its handler
    // returns), so the stream holds its own lease of the platform's database until it is metered.
    const hold = deps.platformDbs.acquire(caller.platform.id);
    const held = { slot, reservation };
    // The stream owns the slot and the reservation from here: its end gives both back.
    slot = null;
    reservation = null;
    const chunks = meteredStream(
      routed.result,
      timeoutOf(cand),
      input.includeUsage,
      (usage, outTexts, ok) => {
        const u = usage ?? countedUsage(promptTexts, outTexts);
        try {
          recordUsage(deps, caller, policy, hold.db, held.reservation, {
            candidate: cand,
            alias: model,
            kind: 'chat',
            usage: u,
            counted: !usage,
            latencyMs: performance.now() - started,
            status: ok ? 'ok' : 'error',
          });
          observeCall(deps, caller, plan, streamAttempts, ok ? 'ok' : 'error', cand, u);
        } finally {
          held.reservation?.release();
          held.slot?.();
          hold.release();
        }
        return usage ? null : u;
      },
    );
    return { kind: 'stream', chunks, plan, attempts: routed.attempts, candidate: cand };
  } catch (e) {
    reservation?.release();
    slot?.();
    if (!signal.aborted) observeFailure(deps, caller, e);
    throw e;
  }
}

/** Embeddings for one or more texts. */
export async function embed(
  deps: AiDeps,
  caller: AiCaller,
  policy: PlatformAiPolicy,
  input: Pick<EmbeddingsInput, 'model' | 'input'>,
  signal: AbortSignal,
): Promise<EmbeddingsAnswer> {
  const { runtime } = deps;
  const texts = input.input;
  let reservation: Reservation | null = null;
  try {
    refuseBlockedTerms(policy, texts, '/input');
    const plan = routeFor(input.model, deps, policy);
    reservation = reserveBudgets(
      deps,
      caller,
      policy,
      plan,
      () => texts.reduce((n, t) => n + Buffer.byteLength(t), 0),
      0,
    );
    const started = performance.now();
    const routed = await runPlan(
      plan,
      runtime,
      signal,
      timeoutsOf(runtime),
      (cand, s) => {
        const redact = cand.provider.location === 'cloud' && policy.redactPiiBeforeCloud;
        const inputs = redact ? texts.map((t) => redactPii(t).text) : texts;
        auditCloud(
          deps,
          caller,
          policy,
          cand,
          'embeddings',
          redact ? texts.filter((t, i) => t !== inputs[i]).length : 0,
        );
        return cand.provider.embeddings({ model: cand.model, input: inputs }, s);
      },
      deps.now,
    );
    firstByte(deps, routed.candidate, started);
    const r = routed.result;
    const counted = !r.usage.prompt_tokens;
    const promptTokens = counted ? countTokens(texts) : r.usage.prompt_tokens;
    recordUsage(deps, caller, policy, caller.db, reservation, {
      candidate: routed.candidate,
      alias: plan.alias,
      kind: 'embeddings',
      usage: { prompt_tokens: promptTokens, completion_tokens: 0, total_tokens: promptTokens },
      counted,
      latencyMs: performance.now() - started,
      status: 'ok',
    });
    observeCall(deps, caller, plan, routed.attempts, 'ok', routed.candidate, {
      prompt_tokens: promptTokens,
      completion_tokens: 0,
      total_tokens: promptTokens,
    });
    return { vectors: r.vectors, promptTokens, plan, attempts: routed.attempts, candidate: routed.candidate };
  } catch (e) {
    reservation?.release();
    if (!signal.aborted) observeFailure(deps, caller, e);
    throw e;
  }
}

// ---------------------------------------------------------------------------------------------
// Budgets and usage

/** The platform's budgets. */
export function budgets(caller: Pick<AiCaller, 'db'>): BudgetRow[] {
  return listBudgets(caller.db);
}

/** Sets a budget (creates it, or changes the one of that scope, subject and period), audited. */
export function setBudget(deps: AiDeps, caller: AiCaller, b: BudgetInput): BudgetRow {
  const db = caller.db;
  const row = db
    .transaction(() => {
      const r = upsertBudget(db, b, deps.clock.now());
      deps.audit.append(db, {
        actor: actorOf(caller),
        action: 'ai.budget_set',
        target: `budget:${b.scope}:${b.subject || '*'}:${b.period}`,
        details: { ...b },
      });
      return r;
    })
    .immediate();
  deps.meter.invalidate(caller.platform.id);
  return row;
}

/** Removes a budget, audited (404 `ai.budget_not_found` when there is none). */
export function removeBudget(deps: AiDeps, caller: AiCaller, id: string): void {
  const db = caller.db;
  const gone = db
    .transaction(() => {
      const n = deleteBudget(db, id);
      if (n)
        deps.audit.append(db, {
          actor: actorOf(caller),
          action: 'ai.budget_removed',
          target: `budget:${id}`,
        });
      return n;
    })
    .immediate();
  if (!gone) throw new AppError('ai.budget_not_found', `no budget ${id}`, 404);
  deps.meter.invalidate(caller.platform.id);
}

/**
 * Usage in [from, to) (default: this month so far), with what the meter holds written first;
 * money in micro-units, summed exactly (BigInt).
 */
export async function usageReport(
  deps: AiDeps,
  caller: Pick<AiCaller, 'db'>,
  range: { from?: number; to?: number },
): Promise<{ from: number; to: number; usage: UsageLine[] }> {
  await deps.meter.flush();
  const now = deps.clock.now();
  const from = range.from ?? periodStart('month', now);
  const to = range.to ?? now + 1;
  return { from, to, usage: usageBetween(caller.db, from, to) };
}

/**
 * Usage by hour, model alias and user over [from, to) (default: the last 30 days), with each
 * user's email: the admin's charts group the hours into the viewer's own days.
 */
export async function usageSeries(
  deps: AiDeps,
  caller: Pick<AiCaller, 'db'>,
  range: { from?: number; to?: number },
): Promise<{ from: number; to: number; hours: UsageHour[] }> {
  await deps.meter.flush();
  const now = deps.clock.now();
  const to = range.to ?? now + 1;
  const from = range.from ?? to - 30 * 86_400_000;
  return { from, to, hours: usageByHour(caller.db, from, to) };
}

// ---------------------------------------------------------------------------------------------
// The pipeline's steps

/** Per-call timeouts before the first byte, by provider (30 s when the configuration says none). */
const timeouts = new WeakMap<AiRuntime, (c: Candidate) => number>();
function timeoutsOf(runtime: AiRuntime): (c: Candidate) => number {
  let f = timeouts.get(runtime);
  if (!f) {
    f = (c) => runtime.configs.get(c.provider.id)?.timeout_ms ?? 30_000;
    timeouts.set(runtime, f);
  }
  return f;
}

/** The plan for `model` under the policy, cheapest first when the platform asks for it. */
function routeFor(model: unknown, deps: AiDeps, policy: PlatformAiPolicy): RoutePlan {
  const plan = planRoute(model, deps.runtime, policy);
  return policy.costOptimization ? cheapestFirst(plan, deps.runtime.prices) : plan;
}

/** Refuses (400 `ai.blocked_by_policy`) texts holding one of the platform's blocked terms. */
function refuseBlockedTerms(policy: PlatformAiPolicy, texts: readonly string[], path: string): void {
  if (policy.blockedTerms.length === 0) return;
  const blocked = findBlockedTerm(texts, policy.blockedTerms);
  if (blocked) {
    throw new AppError(
      'ai.blocked_by_policy',
      `the request was blocked by the platform's policy (rule: blocked_term '${blocked}')`,
      400,
      [{ path, reason: `blocked_term:${blocked}` }],
    );
  }
}

/**
 * The platform's safety checks on text that is not a model call (a marketplace listing's title,
 * summary and persona): its blocked terms, and the safety classifier when the policy screens
 * with one. The rule that refuses the text (`blocked_term:<term>`, `classifier:<label>`), or
 * null when it passes.
 */
export async function safetyVerdict(
  deps: Pick<AiDeps, 'runtime'>,
  policy: PlatformAiPolicy,
  texts: string[],
  signal: AbortSignal,
): Promise<string | null> {
  try {
    refuseBlockedTerms(policy, texts, '/text');
    if (deps.runtime.classifier && policy.classify) await classify(deps.runtime, texts, signal);
    return null;
  } catch (e) {
    if (e instanceof AppError && e.code === 'ai.blocked_by_policy') return e.details?.[0]?.reason ?? 'policy';
    throw e;
  }
}

/** Refuses the call (400) when the safety classifier puts it in a blocked class. */
async function classify(runtime: AiRuntime, texts: string[], signal: AbortSignal): Promise<void> {
  const sc = runtime.classifier;
  if (!sc) return;
  const verdict = await sc.classify(texts.join('\n'), signal);
  if (verdict && sc.block.includes(verdict.label) && verdict.score >= sc.minScore) {
    throw new AppError(
      'ai.blocked_by_policy',
      `the request was blocked by the platform's policy (rule: classifier '${verdict.label}', score ${verdict.score.toFixed(2)})`,
      400,
      [{ path: '/messages', reason: `classifier:${verdict.label}` }],
    );
  }
}

/**
 * Holds budget room for a call on `plan` before it is made (429 `ai.budget_exceeded` when
 * some budget that applies has no room for the call's worst case), or null when no budget
 * applies. The hold is settled with the actual usage, or released when the call fails.
 */
/** How a refusal names a budget's period ("the platform daily AI budget"). */
const PERIOD_WORD: Record<Budget['period'], string> = { day: 'daily', month: 'monthly' };

function reserveBudgets(
  deps: AiDeps,
  caller: AiCaller,
  policy: PlatformAiPolicy,
  plan: RoutePlan,
  promptTokens: () => number,
  maxOut: number,
): Reservation | null {
  const r = deps.meter.reserve(caller.db, caller.platform.id, caller, deps.clock.now(), () =>
    estimateCost(plan, deps.runtime.prices, promptTokens(), maxOut, policy.markupPercent),
  );
  if ('refused' in r) {
    const { budget, spent, reserved, needed } = r.refused;
    const limit = microOfMinor(budget.limit_minor);
    const m = describeRefusal(r.refused);
    const e = new AppError(
      'ai.budget_exceeded',
      needed > 0n && spent < limit
        ? `the ${budget.scope} ${PERIOD_WORD[budget.period]} AI budget (${budget.limit_minor} ${budget.currency} minor units) has no room for this call: ${m.spent} spent, ${m.reserved} held by calls in flight, up to ${m.needed} needed`
        : `the ${budget.scope} ${PERIOD_WORD[budget.period]} AI budget (${budget.limit_minor} ${budget.currency} minor units) is spent`,
      429,
    );
    // Worth a retry only when calls in flight hold the room this one needs (they settle within
    // seconds); a spent budget stays spent until its period ends, so no Retry-After: the
    // OpenAI route adds `x-should-retry: false` (openai-errors.ts) and the SDKs raise at once.
    if (reserved > 0n && spent + needed <= limit) e.retryAfter = 1;
    throw e;
  }
  return r.reservation;
}

/**
 * A slot for one more stream of this caller, or 429 `ai.too_many_streams`. Counted per user,
 * across their sessions and all their keys (any member may make keys, so a cap per key alone
 * is no cap), and per key for a key that belongs to no user.
 */
function streamSlot(runtime: AiRuntime, caller: AiCaller): () => void {
  const who = `${caller.platform.id} ${caller.userId ? `user:${caller.userId}` : `key:${caller.keyId ?? ''}`}`;
  const release = runtime.streams.acquire(who);
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
}

/** The audit actor of a caller: its API key, else its user. */
function actorOf(caller: AiCaller): string {
  return caller.keyId ? `apikey:${caller.keyId}` : caller.userId ? `user:${caller.userId}` : 'anonymous';
}

/** Audits a call about to leave the box, with the policy that allowed it. */
function auditCloud(
  deps: AiDeps,
  caller: AiCaller,
  policy: PlatformAiPolicy,
  cand: Candidate,
  kind: 'chat' | 'embeddings',
  redacted: number,
): void {
  if (cand.provider.location !== 'cloud' || !policy.auditCloudCalls) return;
  deps.audit.append(caller.db, {
    actor: actorOf(caller),
    action: 'ai.cloud_call',
    target: `provider:${cand.provider.id}`,
    details: { kind, model: cand.key, policy: policy.auditView, pii_redacted: redacted },
  });
}

/** One call to meter, as the pipeline knows it. */
interface MeteredCall {
  candidate: Candidate;
  alias: string;
  kind: UsageRecord['kind'];
  usage: Usage;
  /** Whether the tokens were counted here (the provider reported none). */
  counted: boolean;
  latencyMs: number;
  status: UsageRecord['status'];
}

/**
 * Meters a call: its usage record (cost from the price table, the platform's markup) settles
 * the call's reservation, or goes straight to the meter when none was held; budgets whose
 * alert threshold it crossed are announced.
 */
function recordUsage(
  deps: AiDeps,
  caller: AiCaller,
  policy: PlatformAiPolicy,
  db: Database,
  reservation: Reservation | null,
  call: MeteredCall,
): void {
  const price = deps.runtime.prices[call.candidate.key];
  const cost = costMicro(price, call.usage.prompt_tokens, call.usage.completion_tokens);
  const record: UsageRecord = {
    platformId: caller.platform.id,
    ts: deps.clock.now(),
    userId: caller.userId,
    keyId: caller.keyId,
    agentId: caller.agentId,
    agentVersion: caller.agentVersion ?? null,
    creatorId: caller.creatorId ?? null,
    kind: call.kind,
    alias: call.alias,
    provider: call.candidate.provider.id,
    model: call.candidate.model,
    tokensIn: call.usage.prompt_tokens,
    tokensOut: call.usage.completion_tokens,
    counted: call.counted,
    latencyMs: Math.round(call.latencyMs),
    costMicro: cost,
    markupMicro: markupMicro(cost, policy.markupPercent),
    currency: price?.currency ?? 'usd',
    status: call.status,
  };
  const crossed = reservation ? reservation.settle(db, record) : deps.meter.record(db, record);
  if (crossed.length > 0) budgetAlerts(deps, db, caller, crossed);
}

/**
 * The one place budget alerts are raised: logged, and appended to the platform's event log as
 * `ai.budget_alert` (its own transaction: the crossing is of the in-memory counters, whose usage
 * rows the meter writes at its next flush).
 */
function budgetAlerts(deps: AiDeps, db: Database, caller: AiCaller, crossed: readonly Budget[]): void {
  for (const b of crossed) {
    deps.log.warn('AI budget alert', {
      platform: caller.platform.slug,
      scope: b.scope,
      subject: b.subject,
      period: b.period,
    });
    db.transaction(() =>
      deps.events.append(db, 'ai.budget_alert', {
        platformId: caller.platform.id,
        budgetId: b.id,
        scope: b.scope,
        subject: b.subject,
        percent: b.alert_percent,
      }),
    )();
  }
}

// ---------------------------------------------------------------------------------------------
// Observability (observe.ts): series and log lines of each call

/** Time to the first byte of the answer, from the call's start (fallback included). */
function firstByte(deps: AiDeps, cand: Candidate, started: number): void {
  deps.runtime.metrics.firstByte(cand.provider.id, cand.model, (performance.now() - started) / 1000);
}

/** Counts a call that a candidate answered, with its tokens; logs its fallbacks and skips. */
function observeCall(
  deps: AiDeps,
  caller: AiCaller,
  plan: RoutePlan,
  attempts: readonly Attempt[],
  outcome: CallOutcome,
  cand: Candidate,
  usage: Usage,
): void {
  const platform = caller.platform.slug;
  const m = deps.runtime.metrics;
  m.call({ platform, provider: cand.provider.id, model: cand.model, outcome, fallback: attempts.length > 1 });
  m.tokens(platform, cand.provider.id, cand.model, usage.prompt_tokens, usage.completion_tokens);
  // The plain path (first candidate answered, nothing skipped) logs nothing.
  if (attempts.length > 1 || plan.skipped.length > 0) logRouting(deps.log, platform, plan, attempts, true);
}

/**
 * Counts a call no candidate answered: refused before routing (budget, policy, safety, the
 * stream cap: `refused`), no route, or the upstream refusing the request itself. Labels name
 * no model the client chose (bounded series): the provider that refused, else 'none'.
 */
function observeFailure(deps: AiDeps, caller: AiCaller, e: unknown): void {
  const platform = caller.platform.slug;
  const m = deps.runtime.metrics;
  if (e instanceof NoRouteError) {
    m.call({
      platform,
      provider: 'none',
      model: 'none',
      outcome: 'no_route',
      fallback: e.attempts.length > 1,
    });
    logRouting(deps.log, platform, e.plan, e.attempts, false);
    return;
  }
  if (e instanceof UpstreamError) {
    const routed = e as UpstreamError & { plan?: RoutePlan; attempts?: Attempt[] };
    const last = routed.attempts?.at(-1)?.key;
    const model = last ? last.slice(last.indexOf('/') + 1) : 'none';
    m.call({
      platform,
      provider: e.provider,
      model,
      outcome: 'upstream_rejected',
      fallback: (routed.attempts?.length ?? 0) > 1,
    });
    if (routed.plan) logRouting(deps.log, platform, routed.plan, routed.attempts ?? [], false);
    return;
  }
  if (e instanceof AppError)
    m.call({ platform, provider: 'none', model: 'none', outcome: 'refused', fallback: false });
}

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

/** The usage of a call whose provider reported none: its texts counted. */
function countedUsage(promptTexts: readonly string[], outTexts: readonly string[]): Usage {
  const pi = countTokens(promptTexts);
  const po = countTokens(outTexts);
  return { prompt_tokens: pi, completion_tokens: po, total_tokens: pi + po };
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

/**
 * The provider's stream, metered: each chunk must come within `stallMs` of the one before (a
 * stall, or an upstream failure, throws). `end` runs exactly once, when the stream ends (ok),
 * throws or is returned (not ok), with the usage the provider reported (or null) and the
 * texts it sent; it returns the counted usage, which is sent as a last chunk when
 * `includeUsage` asks for it and the provider reported none.
 */
function meteredStream(
  upstream: AsyncIterable<ChatChunk>,
  stallMs: number,
  includeUsage: boolean,
  end: (usage: Usage | null, outTexts: string[], ok: boolean) => Usage | null,
): AsyncIterator<ChatChunk> {
  const it = upstream[Symbol.asyncIterator]();
  const outTexts: string[] = [];
  let usage: Usage | null = null;
  let last: ChatChunk | null = null;
  let finished = false;
  let usageChunk: ChatChunk | null = null;
  const finish = (ok: boolean): void => {
    if (finished) return;
    finished = true;
    try {
      const extra = end(usage, outTexts, ok);
      if (ok && includeUsage && extra && last) {
        usageChunk = {
          id: last.id,
          object: 'chat.completion.chunk',
          created: last.created,
          model: last.model,
          choices: [],
          usage: extra,
        };
      }
    } finally {
      void it.return?.();
    }
  };
  const done: IteratorReturnResult<undefined> = { done: true, value: undefined };
  /** After the end: the usage chunk once, when there is one, then done. */
  const tail = (): IteratorResult<ChatChunk> => {
    const u = usageChunk;
    usageChunk = null;
    return u ? { done: false, value: u } : done;
  };
  return {
    async next(): Promise<IteratorResult<ChatChunk>> {
      if (finished) return tail();
      let timer: ReturnType<typeof setTimeout> | undefined;
      try {
        const stall = new Promise<never>((_, reject) => {
          timer = setTimeout(
            () => reject(new Error(`the provider stalled for ${stallMs} ms mid-stream`)),
            stallMs,
          );
        });
        const r = await Promise.race([it.next(), stall]);
        if (r.done) {
          finish(true);
          return tail();
        }
        const ch = r.value;
        last = ch;
        if (ch.usage) usage = ch.usage;
        for (const choice of ch.choices)
          if (typeof choice.delta.content === 'string') outTexts.push(choice.delta.content);
        return { done: false, value: ch };
      } catch (e) {
        finish(false);
        throw e;
      } finally {
        clearTimeout(timer);
      }
    },
    async return(): Promise<IteratorResult<ChatChunk>> {
      finish(false);
      usageChunk = null;
      return done;
    },
  };
}
