import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import OpenAI from 'openai';
import { aiDeps, setBudget } from '../src/ai/index.ts';
import { type InProcessServer, inProcessServer } from './inproc.ts';
import { type OpenAIStub, startOpenAIStub } from './peers/openai-stub.ts';

/*
 * Refusals never make the official SDK retry: the `openai` SDK with its DEFAULT retries (2, with
 * backoff) gets each refusal in exactly one request and raises at once. openai-node retries 408,
 * 409, 429 and 5xx unless the answer says `x-should-retry: false` (openai-python alike); before
 * this, a spent budget (429) and a route that policy emptied (503) were each sent three times,
 * seconds apart.
 */

const KEY_ENV = 'SOULFRA_TEST_SDK_RETRIES_KEY';
let s: InProcessServer;
let cloud: OpenAIStub;
const keys: Record<string, string> = {};
/** Requests that reached the server's handler, per platform host. */
const arrived: Record<string, number> = {};

async function platform(slug: string, blueprint: Record<string, unknown> = {}): Promise<string> {
  const res = await s.operatorApi('POST', '/platforms', { slug, blueprint });
  if (res.status !== 201) throw new Error(`create ${slug}: ${res.status} ${await res.text()}`);
  const { platform: p } = (await res.json()) as { platform: { id: string } };
  const k = await s.operatorApi('POST', `/platforms/${slug}/api-keys`, { name: 'sdk' });
  keys[slug] = ((await k.json()) as { key: string }).key;
  return p.id;
}

/** The official SDK with its default retries, whose fetch counts each request at the server. */
function sdk(slug: string, logs: string[]): OpenAI {
  const host = `${slug}.localhost`;
  const record = (level: string) => (msg: string) => logs.push(`${level}: ${msg}`);
  return new OpenAI({
    apiKey: keys[slug]!,
    baseURL: `http://${host}/v1`,
    // Default maxRetries (2) on purpose: the server's answer alone must stop the retries.
    logLevel: 'debug',
    logger: { debug: record('debug'), info: record('info'), warn: record('warn'), error: record('error') },
    fetch: async (url: string | URL | Request, init?: RequestInit) => {
      arrived[host] = (arrived[host] ?? 0) + 1;
      const u = new URL(url instanceof Request ? url.url : url);
      return s.request(host, u.pathname + u.search, init);
    },
  });
}

beforeAll(async () => {
  process.env[KEY_ENV] = 'sk-sdk-retries';
  cloud = await startOpenAIStub({ apiKey: 'sk-sdk-retries', models: ['gpt-4o-mini'] });
  s = await inProcessServer({
    config: {
      providers: [
        {
          id: 'cloud',
          kind: 'openai',
          url: cloud.url,
          api_key_env: KEY_ENV,
          location: 'cloud',
          timeout_ms: 2_000,
        },
      ],
      models: [{ alias: 'cloud-only', route: ['cloud/gpt-4o-mini'] }],
      prices: { 'cloud/gpt-4o-mini': { input: 15, output: 60, currency: 'usd' } },
    },
  });
  const spentId = await platform('spent');
  await s.app.platformDbs.use(spentId, (db) =>
    setBudget(
      aiDeps(s.app, s.ai),
      { platform: { id: spentId, slug: 'spent' }, db, userId: null, keyId: null, agentId: null },
      { scope: 'platform', subject: '', period: 'month', limit_minor: 0, currency: 'usd', alert_percent: 80 },
    ),
  );
  await platform('policed', { ai_settings: { safety_filters: { blocked_terms: ['project zeus'] } } });
  await platform('clinic', { governance: { compliance_packs: ['hipaa'] } });
}, 30_000);
afterAll(async () => {
  await s?.close();
  await cloud?.stop();
});

describe('the official openai SDK with default retries gets each refusal in one request', () => {
  const cases = [
    { name: 'a spent budget', slug: 'spent', content: 'hello', status: 429, code: 'ai.budget_exceeded' },
    {
      name: 'a policy refusal (blocked term)',
      slug: 'policed',
      content: 'tell me about Project Zeus',
      status: 400,
      code: 'ai.blocked_by_policy',
    },
    {
      name: 'a request the policy blocks from every provider (HIPAA, no BAA: no cloud)',
      slug: 'clinic',
      content: 'hello',
      status: 503,
      code: 'ai.no_provider_available',
    },
  ];
  for (const c of cases) {
    test(`${c.name}: ${c.status} ${c.code}, x-should-retry: false, no Retry-After, raised after one request`, async () => {
      const logs: string[] = [];
      const host = `${c.slug}.localhost`;
      const before = arrived[host] ?? 0;
      const upstream = cloud.requests.length;
      const err = (await sdk(c.slug, logs)
        .chat.completions.create({ model: 'cloud-only', messages: [{ role: 'user', content: c.content }] })
        .catch((e: unknown) => e)) as InstanceType<typeof OpenAI.APIError>;
      expect(err).toBeInstanceOf(OpenAI.APIError);
      expect(err.status).toBe(c.status);
      expect(err.code).toBe(c.code);
      expect(err.headers?.get('x-should-retry')).toBe('false');
      expect(err.headers?.get('retry-after')).toBeNull();
      // The SDK settles only once it has given up, so one request now is one request for good.
      expect((arrived[host] ?? 0) - before).toBe(1);
      // It said why it did not retry, and never scheduled a retry.
      expect(logs.some((l) => l.includes('error; not retryable'))).toBe(true);
      expect(logs.filter((l) => l.includes('retrying'))).toEqual([]);
      expect(cloud.requests.length).toBe(upstream);
    });
  }

  test('a refusal a retry can end (the budget room held by a call in flight) keeps its Retry-After and no x-should-retry: false', async () => {
    // Through the error mapper directly: the in-flight case needs a call held upstream (tests/ai-router.test.ts).
    const { toOpenAiError } = await import('../src/ai/index.ts');
    const { AppError } = await import('../src/shared/errors.ts');
    const e = new AppError('ai.too_many_streams', 'wait', 429);
    e.retryAfter = 1;
    const res = toOpenAiError(e);
    expect(res.headers.get('retry-after')).toBe('1');
    expect(res.headers.get('x-should-retry')).toBeNull();
  });
});
