import { afterAll, beforeAll, beforeEach, describe, expect, test } from 'bun:test';
import OpenAI from 'openai';
import {
  costOf,
  DEFAULT_MAX_TOKENS,
  estimateCost,
  planRoute,
  policyOf,
  promptTokenBound,
} from '../src/ai/index.ts';
import { templateBlueprint } from '../src/tenancy/index.ts';
import { hostFetch, operatorApi, startTestServer } from './helpers.ts';
import { type OllamaStub, startOllamaStub } from './peers/ollama-stub.ts';
import { type OpenAIStub, type OpenAIStubFault, startOpenAIStub } from './peers/openai-stub.ts';
import { PlatformClient } from './platform-client.ts';

// The router end to end: the official OpenAI SDK → soulfra (auth, policy, safety, metering) →
// a protocol-faithful Ollama server (on_prem) and an OpenAI-compatible server (cloud).
let local: OllamaStub;
let cloud: OpenAIStub;
let vllm: OpenAIStub;
let s: Awaited<ReturnType<typeof startTestServer>>;
const keys: Record<string, string> = {};
const owners: Record<string, { email: string; password: string }> = {};

function sdk(slug: string, key = keys[slug]!) {
  const host = `${slug}.localhost`;
  return new OpenAI({
    baseURL: `${s.base}/v1`,
    apiKey: key,
    maxRetries: 0,
    timeout: 15_000,
    fetch: (url, init) => {
      const headers = new Headers(init?.headers);
      headers.set('host', host);
      return fetch(url, { ...init, headers });
    },
  });
}

async function platform(slug: string, blueprint: Record<string, unknown> = {}) {
  const res = await operatorApi(s.base, s.firstRun!.token, 'POST', '/platforms', {
    slug,
    template: 'creator',
    blueprint,
  });
  expect(res.status).toBe(201);
  owners[slug] = ((await res.json()) as { admin: { email: string; password: string } }).admin;
  const k = await operatorApi(s.base, s.firstRun!.token, 'POST', `/platforms/${slug}/api-keys`, {
    name: 'sdk',
    scopes: ['ai:invoke'],
  });
  keys[slug] = ((await k.json()) as { key: string }).key;
}

beforeAll(async () => {
  local = await startOllamaStub();
  process.env.SOULFRA_TEST_CLOUD_KEY = 'sk-cloud-test';
  cloud = await startOpenAIStub({
    apiKey: 'sk-cloud-test',
    models: ['gpt-4o-mini', 'text-embedding-3-small'],
  });
  // An on-prem OpenAI-compatible server (vLLM, llama.cpp): no key, on this network.
  vllm = await startOpenAIStub({ models: ['llama-3.1-8b'] });
  s = await startTestServer({
    config: {
      providers: [
        { id: 'local', kind: 'ollama', url: local.url, timeout_ms: 1_000 },
        {
          id: 'cloud',
          kind: 'openai',
          url: cloud.url,
          api_key_env: 'SOULFRA_TEST_CLOUD_KEY',
          location: 'cloud',
          timeout_ms: 2_000,
        },
        { id: 'vllm', kind: 'openai', url: vllm.url, location: 'on_prem', timeout_ms: 2_000 },
      ],
      models: [
        { alias: 'default', route: ['local/llama3.2', 'cloud/gpt-4o-mini'] },
        { alias: 'embed', route: ['local/nomic-embed-text', 'cloud/text-embedding-3-small'] },
        { alias: 'cloud-only', route: ['cloud/gpt-4o-mini'] },
        { alias: 'onprem-oai', route: ['vllm/llama-3.1-8b', 'cloud/gpt-4o-mini'] },
      ],
      prices: { 'cloud/gpt-4o-mini': { input: 15_000_000, output: 60_000_000, currency: 'usd' } },
    },
  });
  await platform('open', {
    ai_settings: { safety_filters: { blocked_terms: ['project zeus'], redact_pii: true } },
  });
  await platform('strict', { ai_settings: { cloud_fallback: 'never' } });
  await platform('clinic', { governance: { compliance_packs: ['hipaa'] } });
}, 30_000);
afterAll(async () => {
  await s?.cleanup();
  await local?.stop();
  await cloud?.stop();
  await vllm?.stop();
});
beforeEach(() => {
  local.setFault(null);
  cloud.setFault(null);
  vllm.setFault(null);
  // Each case starts with every circuit closed (the breaker itself is tested in router.test.ts).
  for (const b of s.ai.runtime.breakers.values()) b.success();
});

describe('OpenAI wire format through the official SDK', () => {
  test('models, plain chat, streaming and embeddings, answered on-prem', async () => {
    const models = await sdk('open').models.list();
    expect(models.data.map((m) => m.id).sort()).toEqual(['cloud-only', 'default', 'embed', 'onprem-oai']);
    const { data, response } = await sdk('open')
      .chat.completions.create({ model: 'default', messages: [{ role: 'user', content: 'hello there' }] })
      .withResponse();
    expect(data.choices[0]!.message.content).toBe('You said: hello there');
    expect(data.usage?.total_tokens).toBeGreaterThan(0);
    expect(response.headers.get('x-ai-provider')).toBe('local');
    expect(response.headers.get('x-ai-route')).toBe('default; local/llama3.2=ok');
    const stream = await sdk('open').chat.completions.create({
      model: 'default',
      messages: [{ role: 'user', content: 'stream me please' }],
      stream: true,
    });
    let text = '';
    for await (const chunk of stream) text += chunk.choices[0]?.delta.content ?? '';
    expect(text).toBe('You said: stream me please');
    const emb = await sdk('open').embeddings.create({ model: 'embed', input: ['a', 'b', 'c'] });
    expect(emb.data.map((d) => d.index)).toEqual([0, 1, 2]);
    expect(emb.data[0]!.embedding.length).toBe(16);
  });

  test('an on-prem OpenAI-compatible server answers plain and streamed chat, even where cloud is off', async () => {
    vllm.requests.length = 0;
    const { data, response } = await sdk('strict')
      .chat.completions.create({ model: 'onprem-oai', messages: [{ role: 'user', content: 'hello vllm' }] })
      .withResponse();
    expect(data.choices[0]!.message.content).toContain('hello vllm');
    expect(response.headers.get('x-ai-provider')).toBe('vllm');
    expect(response.headers.get('x-ai-route')).toStartWith(
      'onprem-oai; vllm/llama-3.1-8b=ok, cloud/gpt-4o-mini=skipped(',
    );
    const stream = await sdk('strict').chat.completions.create({
      model: 'onprem-oai',
      messages: [{ role: 'user', content: 'stream from vllm' }],
      stream: true,
    });
    let text = '';
    for await (const chunk of stream) text += chunk.choices[0]?.delta.content ?? '';
    expect(text).toContain('stream from vllm');
    // Reached by the lean client (no SDK headers), with the provider's own model name.
    expect(
      vllm.requests.map((r) => [r.path, r.headers['user-agent'], (r.body as { model: string }).model]),
    ).toEqual([
      ['/v1/chat/completions', 'soulfra', 'llama-3.1-8b'],
      ['/v1/chat/completions', 'soulfra', 'llama-3.1-8b'],
    ]);
    // Down, it falls back... but not for a platform whose cloud use is off: a clean 503.
    vllm.setFault('status500');
    const err = (await sdk('strict')
      .chat.completions.create({ model: 'onprem-oai', messages: [{ role: 'user', content: 'x' }] })
      .catch((e) => e)) as InstanceType<typeof OpenAI.APIError>;
    expect(err.status).toBe(503);
    expect(err.code).toBe('ai.no_provider_available');
  });

  test('tools pass through: a tool call comes back in OpenAI shape', async () => {
    const r = await sdk('open').chat.completions.create({
      model: 'default',
      messages: [{ role: 'user', content: 'what is the weather in Paris?' }],
      tools: [
        {
          type: 'function',
          function: {
            name: 'get_weather',
            parameters: { type: 'object', properties: { location: { type: 'string' } } },
          },
        },
      ],
    });
    expect(r.choices[0]!.finish_reason).toBe('tool_calls');
    const call = r.choices[0]!.message.tool_calls![0]!;
    expect(call.type === 'function' && call.function.name).toBe('get_weather');
  });

  test('errors come back in OpenAI shape', async () => {
    const err = (await sdk('open')
      .chat.completions.create({ model: 'no-such-model', messages: [{ role: 'user', content: 'x' }] })
      .catch((e) => e)) as InstanceType<typeof OpenAI.APIError>;
    expect(err).toBeInstanceOf(OpenAI.NotFoundError);
    expect(err.code).toBe('ai.model_not_found');
    const bad = (await sdk('open', 'sf_nope')
      .models.list()
      .catch((e) => e)) as InstanceType<typeof OpenAI.APIError>;
    expect(bad).toBeInstanceOf(OpenAI.AuthenticationError);
  });
});

describe('fault table: each ends in a fallback or a clean error, never a hang', () => {
  const before = [
    ['refuse', 'connect'],
    ['status500', 'server'],
    ['status429', 'rate_limited'],
    ['malformed', 'malformed'],
    [{ delayHeaders: 3_000 }, 'timeout'],
  ] as const;
  for (const [fault, outcome] of before) {
    test(`local ${JSON.stringify(fault)} before the first byte → the cloud answers`, async () => {
      local.setFault(fault);
      const { data, response } = await sdk('open')
        .chat.completions.create({ model: 'default', messages: [{ role: 'user', content: 'fall back' }] })
        .withResponse();
      expect(data.choices[0]!.message.content).toBe('You said: fall back');
      expect(response.headers.get('x-ai-provider')).toBe('cloud');
      expect(response.headers.get('x-ai-route')).toBe(
        `default; local/llama3.2=${outcome}, cloud/gpt-4o-mini=ok`,
      );
    });
  }

  test('a stall mid-stream ends the stream with an error event (no fallback after the first byte)', async () => {
    local.setFault('stallAfterFirstChunk');
    const stream = await sdk('open').chat.completions.create({
      model: 'default',
      messages: [{ role: 'user', content: 'one two three' }],
      stream: true,
    });
    let text = '';
    const err = await (async () => {
      for await (const chunk of stream) text += chunk.choices[0]?.delta.content ?? '';
    })().catch((e) => e);
    expect(text.length).toBeGreaterThan(0);
    expect(String((err as Error)?.message ?? err)).toContain('stalled');
  });

  test('the cloud failing too → 503 ai.no_provider_available naming each step', async () => {
    local.setFault('status500');
    cloud.setFault('status500');
    const err = (await sdk('open')
      .chat.completions.create({ model: 'default', messages: [{ role: 'user', content: 'x' }] })
      .catch((e) => e)) as InstanceType<typeof OpenAI.APIError>;
    expect(err.status).toBe(503);
    expect(err.code).toBe('ai.no_provider_available');
  });
});

describe('policy: nothing leaves the box unless allowed', () => {
  for (const slug of ['strict', 'clinic']) {
    test(`${slug}: with the local provider down, the cloud receives zero requests and the client a clear error`, async () => {
      local.setFault('refuse');
      const seen = cloud.requests.length;
      const err = (await sdk(slug)
        .chat.completions.create({ model: 'default', messages: [{ role: 'user', content: 'secret' }] })
        .catch((e) => e)) as InstanceType<typeof OpenAI.APIError>;
      expect(err.status).toBe(503);
      expect(err.message).toContain('skipped (policy:');
      const direct = (await sdk(slug)
        .chat.completions.create({ model: 'cloud-only', messages: [{ role: 'user', content: 'secret' }] })
        .catch((e) => e)) as InstanceType<typeof OpenAI.APIError>;
      expect(direct.status).toBe(503);
      expect(cloud.requests.length).toBe(seen);
      expect((await sdk(slug).models.list()).data.map((m) => m.id).sort()).toEqual([
        'default',
        'embed',
        'onprem-oai',
      ]);
    });
  }

  test('a blocked term is refused with 400 ai.blocked_by_policy naming the rule', async () => {
    const err = (await sdk('open')
      .chat.completions.create({
        model: 'default',
        messages: [{ role: 'user', content: 'Tell me about Project Zeus' }],
      })
      .catch((e) => e)) as InstanceType<typeof OpenAI.APIError>;
    expect(err.status).toBe(400);
    expect(err.code).toBe('ai.blocked_by_policy');
    expect(err.message).toContain("blocked_term 'project zeus'");
  });

  test('PII is redacted before the cloud (not before on-prem), and the cloud call is audited', async () => {
    const content = 'mail ann@example.com, card 4111 1111 1111 1111';
    await sdk('open').chat.completions.create({ model: 'cloud-only', messages: [{ role: 'user', content }] });
    const sent = cloud.requests.at(-1)!.body as { messages: { content: string }[] };
    expect(sent.messages[0]!.content).toBe('mail [EMAIL], card [CARD]');
    await sdk('open').chat.completions.create({ model: 'default', messages: [{ role: 'user', content }] });
    expect((local.requests.at(-1)!.body as { messages: { content: string }[] }).messages[0]!.content).toBe(
      content,
    );
    const owner = new PlatformClient(s.base, 'open.localhost');
    await owner.signIn(owners.open!.email, owners.open!.password);
    const audit = await owner.json<{
      entries: { action: string; details: { pii_redacted: number; policy: unknown } }[];
    }>('GET', '/api/v1/audit?limit=500');
    const calls = audit.body.entries.filter((e) => e.action === 'ai.cloud_call');
    expect(calls.length).toBeGreaterThan(0);
    expect(calls.at(-1)!.details.pii_redacted).toBe(2);
  });
});

describe('metering and budgets', () => {
  test('usage is recorded with tokens, cost from the price table, and a budget stops calls', async () => {
    await platform('metered');
    const owner = new PlatformClient(s.base, 'metered.localhost');
    await owner.signIn(owners.metered!.email, owners.metered!.password);
    await sdk('metered').chat.completions.create({
      model: 'cloud-only',
      messages: [{ role: 'user', content: 'count me' }],
    });
    const usage = await owner.json<{
      usage: { provider: string; calls: number; tokens_in: number; tokens_out: number; cost_minor: number }[];
    }>('GET', '/api/v1/ai/usage');
    const row = usage.body.usage.find((u) => u.provider === 'cloud')!;
    expect(row.calls).toBe(1);
    expect(row.tokens_in).toBeGreaterThan(0);
    expect(row.cost_minor).toBe(row.tokens_in * 15 + row.tokens_out * 60);
    // Room for exactly one more call's worst case: its prompt's bound in, the default maximum out.
    const oneMore = [{ role: 'user' as const, content: 'one more' }];
    const worst = costOf(
      { input: 15_000_000, output: 60_000_000 },
      promptTokenBound({ messages: oneMore }),
      DEFAULT_MAX_TOKENS,
    );
    const set = await owner.json('PUT', '/api/v1/ai/budgets', {
      scope: 'platform',
      period: 'month',
      limit_minor: row.cost_minor + worst,
      currency: 'usd',
    });
    expect(set.status).toBe(200);
    await sdk('metered').chat.completions.create({ model: 'cloud-only', messages: oneMore });
    // Sent with the maximum that was reserved, since the request named none.
    expect((cloud.requests.at(-1)!.body as { max_tokens?: number }).max_tokens).toBe(DEFAULT_MAX_TOKENS);
    const err = (await sdk('metered')
      .chat.completions.create({ model: 'cloud-only', messages: [{ role: 'user', content: 'over' }] })
      .catch((e) => e)) as InstanceType<typeof OpenAI.APIError>;
    expect(err.status).toBe(429);
    expect(err.code).toBe('ai.budget_exceeded');
  });

  test("a daily budget's refusal names it in English; two subjects differing in `-`/`_` are two budgets; from > to is refused", async () => {
    await platform('daily');
    const owner = new PlatformClient(s.base, 'daily.localhost');
    await owner.signIn(owners.daily!.email, owners.daily!.password);
    const set = await owner.json('PUT', '/api/v1/ai/budgets', {
      scope: 'platform',
      period: 'day',
      limit_minor: 0,
      currency: 'usd',
    });
    expect(set.status).toBe(200);
    const err = (await sdk('daily')
      .chat.completions.create({ model: 'cloud-only', messages: [{ role: 'user', content: 'hi' }] })
      .catch((e) => e)) as InstanceType<typeof OpenAI.APIError>;
    expect(err.status).toBe(429);
    expect(err.message).toContain('the platform daily AI budget (0 usd minor units)');

    // Budget ids built from the subject used to collapse `-` into `_`: the second was a 500.
    const ids: string[] = [];
    for (const subject of ['usr-1', 'usr_1']) {
      const r = await owner.json<{ budget: { id: string; subject: string } }>('PUT', '/api/v1/ai/budgets', {
        scope: 'user',
        subject,
        period: 'day',
        limit_minor: 10,
        currency: 'usd',
      });
      expect({ subject, status: r.status }).toEqual({ subject, status: 200 });
      expect(r.body.budget.subject).toBe(subject);
      ids.push(r.body.budget.id);
    }
    expect(new Set(ids).size).toBe(2);
    const listed = await owner.json<{ budgets: { subject: string }[] }>('GET', '/api/v1/ai/budgets');
    expect(listed.body.budgets.map((b) => b.subject).sort()).toEqual(['', 'usr-1', 'usr_1']);

    const range = await owner.json<{ error: { code: string; details: { path: string; reason: string }[] } }>(
      'GET',
      '/api/v1/ai/usage?from=2026-02-01T00:00:00Z&to=2026-01-01T00:00:00Z',
    );
    expect(range.status).toBe(400);
    expect(range.body.error.code).toBe('ai.usage_from_after_to');
    expect(range.body.error.details).toEqual([{ path: '/from', reason: 'must not be after /to' }]);
    const empty = await owner.json(
      'GET',
      '/api/v1/ai/usage?from=2026-01-01T00:00:00Z&to=2026-01-01T00:00:00Z',
    );
    expect(empty.status).toBe(200);
  });

  test('a key without ai:invoke cannot call the router', async () => {
    const k = await operatorApi(s.base, s.firstRun!.token, 'POST', '/platforms/open/api-keys', {
      name: 'ro',
      scopes: ['agents:read'],
    });
    const key = ((await k.json()) as { key: string }).key;
    const res = await hostFetch(s.base, 'open.localhost', '/v1/models', {
      headers: { authorization: `Bearer ${key}` },
    });
    expect(res.status).toBe(403);
  });
});

// Budgets and stream slots under concurrency: a server of their own, an upstream that holds its
// answers at a gate until the test lets them go (ordered by events, never by sleeps).
describe('under concurrency: budgets hold the worst case, streams are capped per key', () => {
  let up: OpenAIStub;
  let srv: Awaited<ReturnType<typeof startTestServer>>;
  const price = { input: 1_000_000, output: 10_000_000, currency: 'usd' };
  const STREAMS = 3;
  /** A platform with an ai:invoke key, its id and a signed-in owner. */
  async function tenant(slug: string) {
    const res = await operatorApi(srv.base, srv.firstRun!.token, 'POST', '/platforms', { slug });
    const made = (await res.json()) as {
      platform: { id: string };
      admin: { email: string; password: string };
    };
    const k = await operatorApi(srv.base, srv.firstRun!.token, 'POST', `/platforms/${slug}/api-keys`, {
      name: 'race',
      scopes: ['ai:invoke'],
    });
    const owner = new PlatformClient(srv.base, `${slug}.localhost`);
    await owner.signIn(made.admin.email, made.admin.password);
    return { id: made.platform.id, key: ((await k.json()) as { key: string }).key, owner };
  }
  const chat = (slug: string, key: string, body: Record<string, unknown>, signal?: AbortSignal) =>
    hostFetch(srv.base, `${slug}.localhost`, '/v1/chat/completions', {
      method: 'POST',
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'held', ...body }),
      signal,
    });
  const setBudget = (owner: PlatformClient, limit: number) =>
    owner.json('PUT', '/api/v1/ai/budgets', {
      scope: 'platform',
      period: 'month',
      limit_minor: limit,
      currency: 'usd',
    });
  /** What the meter recorded for a platform this month (cost plus markup, every row). */
  async function recorded(owner: PlatformClient): Promise<number> {
    const u = await owner.json<{ usage: { cost_minor: number; markup_minor: number }[] }>(
      'GET',
      '/api/v1/ai/usage',
    );
    return u.body.usage.reduce((a, r) => a + r.cost_minor + r.markup_minor, 0);
  }
  /** The worst case the router reserves for a chat on 'held' with these messages and maximum. */
  const worstCase = (messages: { role: 'user'; content: string }[], maxOut: number) =>
    estimateCost(
      planRoute('held', srv.ai.runtime, policyOf(templateBlueprint('blank'))),
      srv.ai.runtime.prices,
      promptTokenBound({ messages }),
      maxOut,
      0,
    ).get('usd')!;

  beforeAll(async () => {
    up = await startOpenAIStub({ models: ['m'] });
    srv = await startTestServer({
      config: {
        providers: [{ id: 'held', kind: 'openai', url: up.url, location: 'on_prem', timeout_ms: 60_000 }],
        models: [{ alias: 'held', route: ['held/m'], max_tokens: 5 }],
        prices: { 'held/m': price },
        ai: { max_streams_per_key: STREAMS },
      },
    });
  }, 30_000);
  afterAll(async () => {
    await srv?.cleanup();
    await up?.stop();
  });
  beforeEach(() => up.setFault(null));

  test('N concurrent calls against a small budget: only what fits its worst case is let through, and the recorded spend is the actual usage', async () => {
    const t = await tenant('race');
    const N = 12;
    const messages = (i: number) => [{ role: 'user' as const, content: `race ${10 + i}` }];
    const worst = worstCase(messages(0), 5);
    const fits = 3;
    expect((await setBudget(t.owner, fits * worst + Math.floor(worst / 2))).status).toBe(200);
    const gate = up.hold();
    let answered = 0;
    let notify = () => {};
    const calls = Array.from({ length: N }, (_, i) =>
      chat('race', t.key, { messages: messages(i) }).then(async (r) => {
        answered++;
        notify();
        return { status: r.status, body: (await r.json()) as Record<string, unknown> };
      }),
    );
    // Every call is either held upstream or already answered: all N are in flight at once.
    await new Promise<void>((resolve) => {
      notify = () => {
        if (gate.held + answered === N) resolve();
      };
      const onArrival = () => {
        notify();
        if (gate.held < N) void gate.whenHeld(gate.held + 1).then(onArrival);
      };
      onArrival();
    });
    expect(gate.held).toBe(fits);
    expect(srv.ai.meter.held(t.id)).toBe(fits * worst);
    gate.release();
    const results = await Promise.all(calls);
    const ok = results.filter((r) => r.status === 200);
    const refused = results.filter((r) => r.status === 429);
    expect(ok.length).toBe(fits);
    expect(refused.length).toBe(N - fits);
    for (const r of refused) expect((r.body.error as { code: string }).code).toBe('ai.budget_exceeded');
    // The worst case of what was let through stays within the budget...
    expect(ok.length * worst).toBeLessThanOrEqual(fits * worst + Math.floor(worst / 2));
    // ...the alias's maximum was sent upstream (the request named none), and the spend recorded
    // after settlement is the sum of the actual usage, with nothing left held.
    expect(up.requests.slice(-fits).map((r) => (r.body as { max_tokens: number }).max_tokens)).toEqual(
      Array(fits).fill(5),
    );
    const actual = ok.reduce((a, r) => {
      const u = r.body.usage as { prompt_tokens: number; completion_tokens: number };
      return a + costOf(price, u.prompt_tokens, u.completion_tokens);
    }, 0);
    expect(actual).toBeGreaterThan(0);
    expect(await recorded(t.owner)).toBe(actual);
    expect(srv.ai.meter.held(t.id)).toBe(0);
  });

  test('a call whose upstream fails gives its reservation back', async () => {
    const t = await tenant('race-fail');
    const messages = [{ role: 'user' as const, content: 'fail me' }];
    const worst = worstCase(messages, 5);
    expect((await setBudget(t.owner, worst + Math.floor(worst / 2))).status).toBe(200);
    const gate = up.hold();
    const first = chat('race-fail', t.key, { messages });
    await gate.whenHeld(1);
    // While it is in flight the budget has no room for a second one.
    const second = await chat('race-fail', t.key, { messages });
    expect(second.status).toBe(429);
    expect(second.headers.get('retry-after')).toBe('1');
    up.setFault('status500');
    gate.release();
    expect((await first).status).toBe(503);
    expect(srv.ai.meter.held(t.id)).toBe(0);
    up.setFault(null);
    const third = await chat('race-fail', t.key, { messages });
    expect(third.status).toBe(200);
    expect(await recorded(t.owner)).toBeGreaterThan(0);
  });

  test('a request with a maximum reserves that maximum, and a bad maximum is refused', async () => {
    const t = await tenant('race-max');
    const messages = [{ role: 'user' as const, content: 'how long' }];
    // Room for a call of at most 5 tokens out, not for one of 500.
    expect((await setBudget(t.owner, worstCase(messages, 5))).status).toBe(200);
    const big = await chat('race-max', t.key, { messages, max_tokens: 500 });
    expect(big.status).toBe(429);
    const small = await chat('race-max', t.key, { messages, max_completion_tokens: 5 });
    expect(small.status).toBe(200);
    for (const bad of [-1_000_000, 0, 2.5, 1e12]) {
      const r = await chat('race-max', t.key, { messages, max_tokens: bad });
      expect(r.status).toBe(400);
      expect(((await r.json()) as { error: { param: string } }).error.param).toBe('max_tokens');
    }
  });

  /** Opens a stream; `res` resolves once the router has the first chunk (or refused the call). */
  const open = (key: string) => {
    const ctrl = new AbortController();
    const body = { messages: [{ role: 'user', content: 'stream on' }], stream: true };
    return { ctrl, res: chat('streams', key, body, ctrl.signal) };
  };
  type Stream = ReturnType<typeof open>;
  /** Ways a stream ends. `released`: the gate lets one held request go first, then `end` sees it. */
  const ends: {
    name: string;
    fault?: OpenAIStubFault;
    released: boolean;
    end(s: Stream): Promise<void>;
  }[] = [
    {
      name: 'the stream ends',
      released: true,
      async end(s) {
        expect(await (await s.res).text()).toContain('data: [DONE]');
      },
    },
    {
      name: 'the upstream fails mid-stream',
      fault: 'errorMidStream',
      released: true,
      async end(s) {
        expect(await (await s.res).text()).toContain('ai.stream_interrupted');
      },
    },
    {
      name: 'the upstream fails before the first byte',
      fault: 'status500',
      released: true,
      async end(s) {
        expect((await s.res).status).toBe(503);
      },
    },
    {
      name: 'the client goes away before the first byte',
      released: false,
      async end(s) {
        s.ctrl.abort();
        await s.res.catch(() => null);
      },
    },
    {
      name: 'the client goes away mid-stream',
      fault: 'stallAfterFirstChunk',
      released: true,
      async end(s) {
        const reader = (await s.res).body!.getReader();
        expect(new TextDecoder().decode((await reader.read()).value)).toContain('chat.completion.chunk');
        s.ctrl.abort();
        await reader.read().catch(() => null);
      },
    },
  ];
  // Red-team variant: the cap was per key, and any member may make keys, so a second key was a
  // second set of slots. Streams count per user, across all their keys and sessions.
  test("a user's second API key gets no more streams than the first (429 ai.too_many_streams)", async () => {
    const t = await tenant('streams-user');
    const keyOf = async (name: string) => {
      const r = await t.owner.json<{ key: string }>('POST', '/api/v1/api-keys', {
        name,
        scopes: ['ai:invoke'],
      });
      expect(r.status).toBe(201);
      return r.body.key;
    };
    const [first, second] = [await keyOf('one'), await keyOf('two')];
    const slots = srv.ai.runtime.streams;
    const gate = up.hold();
    const body = { messages: [{ role: 'user', content: 'stream on' }], stream: true };
    const streams = Array.from({ length: STREAMS }, () => chat('streams-user', first, body));
    await gate.whenHeld(STREAMS);
    const over = await chat('streams-user', second, body);
    expect(over.status).toBe(429);
    expect(((await over.json()) as { error: { code: string } }).error.code).toBe('ai.too_many_streams');
    gate.release();
    for (const r of streams) expect(await (await r).text()).toContain('data: [DONE]');
    await slots.whenOpenAtMost(0);
  });

  let streamsKey = '';
  for (const c of ends) {
    test(`streams per key are capped (429 ai.too_many_streams), and a slot comes back when ${c.name}`, async () => {
      if (!streamsKey) streamsKey = (await tenant('streams')).key;
      const slots = srv.ai.runtime.streams;
      const gate = up.hold();
      const streams = Array.from({ length: STREAMS }, () => open(streamsKey));
      await gate.whenHeld(STREAMS);
      expect(slots.open()).toBe(STREAMS);
      const over = await chat('streams', streamsKey, {
        messages: [{ role: 'user', content: 'one too many' }],
        stream: true,
      });
      expect(over.status).toBe(429);
      expect(over.headers.get('retry-after')).toBe('1');
      expect(((await over.json()) as { error: { code: string } }).error.code).toBe('ai.too_many_streams');
      up.setFault(c.fault ?? null);
      let which = 0;
      if (c.released) {
        gate.release(1);
        which = await Promise.race(streams.map((s, i) => s.res.then(() => i)));
      }
      await c.end(streams[which]!);
      await slots.whenOpenAtMost(STREAMS - 1);
      expect(slots.open()).toBe(STREAMS - 1);
      // The slot can be taken again; then everything is let go and every slot comes back.
      up.setFault(null);
      const rest = [...streams.filter((_, i) => i !== which), open(streamsKey)];
      await gate.whenHeld(STREAMS);
      gate.release();
      for (const s of rest) expect(await (await s.res).text()).toContain('data: [DONE]');
      await slots.whenOpenAtMost(0);
    });
  }
});
