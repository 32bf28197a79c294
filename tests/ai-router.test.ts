import { afterAll, beforeAll, beforeEach, describe, expect, test } from 'bun:test';
import OpenAI from 'openai';
import { hostFetch, operatorApi, startTestServer } from './helpers.ts';
import { type OllamaStub, startOllamaStub } from './peers/ollama-stub.ts';
import { type OpenAIStub, startOpenAIStub } from './peers/openai-stub.ts';
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
    const set = await owner.json('PUT', '/api/v1/ai/budgets', {
      scope: 'platform',
      period: 'month',
      limit_minor: row.cost_minor + 1,
      currency: 'usd',
    });
    expect(set.status).toBe(200);
    await sdk('metered').chat.completions.create({
      model: 'cloud-only',
      messages: [{ role: 'user', content: 'one more' }],
    });
    const err = (await sdk('metered')
      .chat.completions.create({ model: 'cloud-only', messages: [{ role: 'user', content: 'over' }] })
      .catch((e) => e)) as InstanceType<typeof OpenAI.APIError>;
    expect(err.status).toBe(429);
    expect(err.code).toBe('ai.budget_exceeded');
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
