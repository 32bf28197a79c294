import { afterAll, beforeAll, beforeEach, describe, expect, test } from 'bun:test';
import { hostFetch, operatorApi, startTestServer } from '../../tests/helpers.ts';
import { type OllamaStub, startOllamaStub } from '../../tests/peers/ollama-stub.ts';
import { type OpenAIStub, startOpenAIStub } from '../../tests/peers/openai-stub.ts';
import { parseChatBody, parseEmbeddingsBody } from './ai.models.ts';
import { costMicro } from './meter.ts';
import { toOpenAiError } from './openai-errors.ts';
import { resolveAiPolicy } from './policy.ts';
import type { ChatChunk } from './provider.ts';
import { NoRouteError, routeHeader } from './router.ts';
import { DEFAULT_MAX_TOKENS } from './runtime.ts';
import {
  type AiCaller,
  type AiDeps,
  aiDeps,
  completeChat,
  embed,
  listModels,
  promptTokenBound,
  setBudget,
} from './service.ts';

// The AI service called directly (no HTTP) on real platform databases, next to the same
// inputs sent through /v1/chat/completions on a twin platform: policy, safety, budgets and
// metering must come out the same both ways.
let local: OllamaStub;
let cloud: OpenAIStub;
let s: Awaited<ReturnType<typeof startTestServer>>;
let deps: AiDeps;
const keys: Record<string, string> = {};
const leases: (() => void)[] = [];

const PRICE = { input: 15_000_000, output: 60_000_000 };

async function platform(slug: string, blueprint: Record<string, unknown> = {}) {
  const res = await operatorApi(s.base, s.firstRun!.token, 'POST', '/platforms', {
    slug,
    template: 'creator',
    blueprint,
  });
  expect(res.status).toBe(201);
  const k = await operatorApi(s.base, s.firstRun!.token, 'POST', `/platforms/${slug}/api-keys`, {
    name: 'sdk',
    scopes: ['ai:invoke'],
  });
  keys[slug] = ((await k.json()) as { key: string }).key;
}

/** The service's view of a platform: its caller (anonymous: platform budgets apply) and policy. */
function onPlatform(slug: string): { caller: AiCaller; policy: ReturnType<typeof resolveAiPolicy> } {
  const { id } = s.tenancy.get(slug);
  const lease = s.app.platformDbs.acquire(id);
  leases.push(() => lease.release());
  return {
    caller: { platform: { id, slug }, db: lease.db, userId: null, keyId: null, agentId: null },
    policy: resolveAiPolicy(s.tenancy.blueprintOf(id)),
  };
}

/** A chat through the service, its answer or error shaped as the route shapes it. */
async function viaService(slug: string, body: Record<string, unknown>) {
  const { caller, policy } = onPlatform(slug);
  try {
    const r = await completeChat(deps, caller, policy, parseChatBody(body), new AbortController().signal);
    if (r.kind !== 'completion') throw new Error('expected a whole completion');
    return {
      status: 200,
      route: routeHeader(r.plan, r.attempts),
      retryAfter: null,
      body: r.completion as unknown as Record<string, unknown>,
    };
  } catch (e) {
    const res = toOpenAiError(e);
    return {
      status: res.status,
      route: res.headers.get('x-ai-route'),
      retryAfter: res.headers.get('retry-after'),
      body: (await res.json()) as Record<string, unknown>,
      error: e,
    };
  }
}

/** The same chat through /v1/chat/completions with the platform's API key. */
async function viaHttp(slug: string, body: Record<string, unknown>) {
  const res = await hostFetch(s.base, `${slug}.localhost`, '/v1/chat/completions', {
    method: 'POST',
    headers: { authorization: `Bearer ${keys[slug]}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  return {
    status: res.status,
    route: res.headers.get('x-ai-route'),
    retryAfter: res.headers.get('retry-after'),
    body: (await res.json()) as Record<string, unknown>,
  };
}

/** What two completions must share (ids and stamps differ per call). */
function comparable(a: Awaited<ReturnType<typeof viaHttp>>) {
  if (a.status !== 200) return a;
  const { id: _id, created: _created, ...rest } = a.body;
  return { ...a, body: rest };
}

function usageRows(slug: string) {
  const { caller } = onPlatform(slug);
  return caller.db
    .query(
      'SELECT kind, alias, provider, model, tokens_in, tokens_out, counted, cost_micro, markup_micro, currency, status FROM usage_events ORDER BY id',
    )
    .all();
}

function cloudAudits(slug: string) {
  const { caller } = onPlatform(slug);
  return caller.db
    .query<{ target: string; details: string }, []>(
      "SELECT target, details FROM audit_log WHERE action = 'ai.cloud_call' ORDER BY seq",
    )
    .all()
    .map((r) => ({ target: r.target, details: JSON.parse(r.details) }));
}

beforeAll(async () => {
  local = await startOllamaStub();
  process.env.SOULFRA_TEST_SERVICE_CLOUD_KEY = 'sk-cloud-test';
  cloud = await startOpenAIStub({ apiKey: 'sk-cloud-test', models: ['gpt-4o-mini'] });
  s = await startTestServer({
    config: {
      providers: [
        { id: 'local', kind: 'ollama', url: local.url, timeout_ms: 1_000 },
        {
          id: 'cloud',
          kind: 'openai',
          url: cloud.url,
          api_key_env: 'SOULFRA_TEST_SERVICE_CLOUD_KEY',
          location: 'cloud',
          timeout_ms: 2_000,
        },
      ],
      models: [
        { alias: 'default', route: ['local/llama3.2', 'cloud/gpt-4o-mini'] },
        { alias: 'cloud-only', route: ['cloud/gpt-4o-mini'] },
        { alias: 'embed', route: ['local/nomic-embed-text'] },
      ],
      prices: { 'cloud/gpt-4o-mini': { ...PRICE, currency: 'usd' } },
    },
  });
  deps = aiDeps(s.app, s.ai);
  for (const via of ['svc', 'http']) {
    await platform(`${via}-clinic`, { governance: { compliance_packs: ['hipaa'] } });
    await platform(`${via}-open`, {
      ai_settings: { safety_filters: { blocked_terms: ['project zeus'], redact_pii: true } },
    });
    await platform(`${via}-metered`);
  }
}, 30_000);
afterAll(async () => {
  for (const release of leases) release();
  await s?.cleanup();
  await local?.stop();
  await cloud?.stop();
});
beforeEach(() => {
  local.setFault(null);
  cloud.setFault(null);
  for (const b of s.ai.runtime.breakers.values()) b.success();
});

describe('the AI service without HTTP, against /v1/chat/completions', () => {
  test('policy: under HIPAA without a BAA the cloud is refused before anything is sent', async () => {
    local.setFault('refuse');
    const seen = cloud.requests.length;
    const body = { model: 'cloud-only', messages: [{ role: 'user', content: 'secret' }] };
    const svc = await viaService('svc-clinic', body);
    expect(svc.error).toBeInstanceOf(NoRouteError);
    expect((svc.error as NoRouteError).plan.skipped).toEqual([
      { key: 'cloud/gpt-4o-mini', reason: 'policy: HIPAA pack without a signed BAA' },
    ]);
    expect(svc.status).toBe(503);
    const { error: _err, ...svcShape } = svc;
    expect(await viaHttp('http-clinic', body)).toEqual(svcShape);
    // The alias with a local step: the local provider refuses, the cloud step was never a candidate.
    const fallback = { model: 'default', messages: [{ role: 'user', content: 'secret' }] };
    const svc2 = await viaService('svc-clinic', fallback);
    expect(svc2.status).toBe(503);
    expect(svc2.route).toBe(
      'default; local/llama3.2=connect, cloud/gpt-4o-mini=skipped(policy: HIPAA pack without a signed BAA)',
    );
    const { error: _e, ...svc2Shape } = svc2;
    expect(await viaHttp('http-clinic', fallback)).toEqual(svc2Shape);
    expect(cloud.requests.length).toBe(seen);
  });

  test('safety: a blocked term is refused, PII is redacted before the cloud and the call audited', async () => {
    const blocked = { model: 'default', messages: [{ role: 'user', content: 'Tell me about Project Zeus' }] };
    const svcBlocked = await viaService('svc-open', blocked);
    expect(svcBlocked.status).toBe(400);
    expect(svcBlocked.body).toEqual({
      error: {
        message: "the request was blocked by the platform's policy (rule: blocked_term 'project zeus')",
        type: 'invalid_request_error',
        param: 'messages',
        code: 'ai.blocked_by_policy',
      },
    });
    const { error: _e, ...blockedShape } = svcBlocked;
    expect(await viaHttp('http-open', blocked)).toEqual(blockedShape);

    const content = 'mail ann@example.com, card 4111 1111 1111 1111';
    const pii = { model: 'cloud-only', messages: [{ role: 'user', content }] };
    const svc = await viaService('svc-open', pii);
    expect(svc.status).toBe(200);
    const sentBySvc = cloud.requests.at(-1)!.body as { messages: { content: string }[] };
    expect(sentBySvc.messages[0]!.content).toBe('mail [EMAIL], card [CARD]');
    const http = await viaHttp('http-open', pii);
    expect(comparable(http)).toEqual(comparable(svc));
    expect(cloud.requests.at(-1)!.body).toEqual(sentBySvc);
    const audited = cloudAudits('svc-open');
    expect(audited).toEqual([
      {
        target: 'provider:cloud',
        details: {
          kind: 'chat',
          model: 'cloud/gpt-4o-mini',
          policy: { cloud_fallback: 'allowed', allowed_providers: 'all' },
          pii_redacted: 2,
        },
      },
    ]);
    expect(cloudAudits('http-open')).toEqual(audited);
  });

  test('budgets and metering: the same usage recorded, the reservation held then settled, the same refusal', async () => {
    const first = { model: 'cloud-only', messages: [{ role: 'user', content: 'count me' }] };
    const svc = await viaService('svc-metered', first);
    const http = await viaHttp('http-metered', first);
    expect(svc.status).toBe(200);
    expect(comparable(http)).toEqual(comparable(svc));
    await s.ai.meter.flush();
    const rows = usageRows('svc-metered') as { tokens_in: number; tokens_out: number; cost_micro: number }[];
    expect(rows).toHaveLength(1);
    expect(rows[0]!.cost_micro).toBe(rows[0]!.tokens_in * 15_000_000 + rows[0]!.tokens_out * 60_000_000);
    expect(usageRows('http-metered')).toEqual(rows);

    // Room for exactly one more call's worst case: its prompt's bound in, the default maximum out.
    const oneMore = [{ role: 'user' as const, content: 'one more' }];
    const worst = costMicro(PRICE, promptTokenBound({ messages: oneMore }), DEFAULT_MAX_TOKENS);
    for (const slug of ['svc-metered', 'http-metered']) {
      setBudget(deps, onPlatform(slug).caller, {
        scope: 'platform',
        subject: '',
        period: 'month',
        limit_minor: (rows[0]!.cost_micro + worst) / 1_000_000,
        currency: 'usd',
        alert_percent: 80,
      });
    }
    // While the call is in flight its worst case is held; once answered, the actual cost.
    const { id } = s.tenancy.get('svc-metered');
    const gate = cloud.hold();
    const pending = viaService('svc-metered', { model: 'cloud-only', messages: oneMore });
    await gate.whenHeld(1);
    expect(s.ai.meter.held(id)).toBe(BigInt(worst));
    gate.release();
    expect((await pending).status).toBe(200);
    expect(s.ai.meter.held(id)).toBe(0n);
    // Sent with the maximum that was reserved, since the request named none.
    expect((cloud.requests.at(-1)!.body as { max_tokens?: number }).max_tokens).toBe(DEFAULT_MAX_TOKENS);
    expect((await viaHttp('http-metered', { model: 'cloud-only', messages: oneMore })).status).toBe(200);

    const over = { model: 'cloud-only', messages: [{ role: 'user', content: 'over' }] };
    const refused = await viaService('svc-metered', over);
    expect(refused.status).toBe(429);
    expect((refused.body.error as { code: string }).code).toBe('ai.budget_exceeded');
    const { error: _e, ...refusedShape } = refused;
    expect(await viaHttp('http-metered', over)).toEqual(refusedShape);
    await s.ai.meter.flush();
    expect(usageRows('svc-metered')).toHaveLength(2);
    expect(usageRows('http-metered')).toEqual(usageRows('svc-metered'));
  });

  test('a stream through the service is metered once, when it ends or when its reader goes away', async () => {
    const { caller, policy } = onPlatform('svc-open');
    await s.ai.meter.flush();
    const before = usageRows('svc-open').length;
    const input = parseChatBody({
      model: 'default',
      stream: true,
      stream_options: { include_usage: true },
      messages: [{ role: 'user', content: 'stream me a few words please' }],
    });
    const r = await completeChat(deps, caller, policy, input, new AbortController().signal);
    if (r.kind !== 'stream') throw new Error('expected a stream');
    expect(r.candidate.key).toBe('local/llama3.2');
    expect(s.ai.runtime.streams.open()).toBe(1);
    const chunks: ChatChunk[] = [];
    for (let n = await r.chunks.next(); !n.done; n = await r.chunks.next()) chunks.push(n.value);
    expect(chunks.length).toBeGreaterThan(1);
    expect(chunks.at(-1)!.usage?.total_tokens).toBeGreaterThan(0);
    expect(s.ai.runtime.streams.open()).toBe(0);

    // The reader goes away after the first chunk: metered as an error, the slot given back.
    const again = await completeChat(deps, caller, policy, input, new AbortController().signal);
    if (again.kind !== 'stream') throw new Error('expected a stream');
    expect((await again.chunks.next()).done).toBe(false);
    await again.chunks.return?.();
    expect(s.ai.runtime.streams.open()).toBe(0);
    expect((await again.chunks.next()).done).toBe(true);
    await s.ai.meter.flush();
    const rows = usageRows('svc-open').slice(before) as { kind: string; provider: string; status: string }[];
    expect(rows.map((x) => [x.kind, x.provider, x.status])).toEqual([
      ['chat', 'local', 'ok'],
      ['chat', 'local', 'error'],
    ]);
  });

  test('embeddings and the model list: the same vectors, usage and models as through HTTP', async () => {
    const { caller, policy } = onPlatform('svc-open');
    const body = { model: 'embed', input: ['one text', 'another text'] };
    const r = await embed(deps, caller, policy, parseEmbeddingsBody(body), new AbortController().signal);
    const res = await hostFetch(s.base, 'http-open.localhost', '/v1/embeddings', {
      method: 'POST',
      headers: { authorization: `Bearer ${keys['http-open']}`, 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    expect(res.status).toBe(200);
    expect(res.headers.get('x-ai-route')).toBe(routeHeader(r.plan, r.attempts));
    const http = (await res.json()) as {
      model: string;
      data: { embedding: number[] }[];
      usage: { prompt_tokens: number };
    };
    expect(http.model).toBe(r.candidate.model);
    expect(http.data.map((d) => d.embedding)).toEqual(r.vectors);
    expect(http.usage.prompt_tokens).toBe(r.promptTokens);
    const blocked = await embed(
      deps,
      caller,
      policy,
      parseEmbeddingsBody({ model: 'embed', input: 'about project zeus' }),
      new AbortController().signal,
    ).catch((e) => e);
    expect(blocked).toMatchObject({ code: 'ai.blocked_by_policy', details: [{ path: '/input' }] });

    const models = await hostFetch(s.base, 'http-clinic.localhost', '/v1/models', {
      headers: { authorization: `Bearer ${keys['http-clinic']}` },
    });
    const listed = ((await models.json()) as { data: { id: string }[] }).data.map((m) => m.id);
    expect(listModels(deps, onPlatform('svc-clinic').policy)).toEqual(listed);
    expect(listed).toEqual(['default', 'embed']);
  });
});
