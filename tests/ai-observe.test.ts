import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { createLogger } from '../src/app/index.ts';
import { type InProcessServer, inProcessServer } from './inproc.ts';
import { delayHeaders, type OpenAIStub, startOpenAIStub } from './peers/openai-stub.ts';

/*
 * An observable router: a provider whose API key variable is unset is reported at start,
 * marked down and never sent a request (so never `Bearer none`); every fallback, timeout,
 * circuit change and policy skip is a log line; the calls, their time to first byte and tokens
 * are Prometheus series; GET /_operator/api/providers shows each provider's health, circuit and
 * last error.
 */

const UNSET = 'SOULFRA_TEST_OBSERVE_UNSET_KEY';
let s: InProcessServer;
let nokey: OpenAIStub;
let flaky: OpenAIStub;
let good: OpenAIStub;
let key = '';
const lines: Record<string, unknown>[] = [];
const logged = (msg: string) => lines.filter((l) => l.msg === msg);

const chat = (model: string, content = 'hello there') =>
  s.request('obs.localhost', '/v1/chat/completions', {
    method: 'POST',
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
    body: JSON.stringify({ model, messages: [{ role: 'user', content }] }),
  });

interface Status {
  id: string;
  health: string;
  circuit: string;
  failures: number;
  down_reason: string | null;
  last_error: { message: string; at: string } | null;
}
async function providers(): Promise<Record<string, Status>> {
  const res = await s.operatorApi('GET', '/providers');
  expect(res.status).toBe(200);
  const body = (await res.json()) as { providers: Status[] };
  return Object.fromEntries(body.providers.map((p) => [p.id, p]));
}

async function metrics(): Promise<string> {
  const res = await s.request('localhost', '/metrics');
  expect(res.status).toBe(200);
  return res.text();
}

beforeAll(async () => {
  delete process.env[UNSET];
  [nokey, flaky, good] = await Promise.all([
    startOpenAIStub({ models: ['m'] }),
    startOpenAIStub({ models: ['m'] }),
    startOpenAIStub({ models: ['m'] }),
  ]);
  s = await inProcessServer({
    log: createLogger({ level: 'debug', json: true, write: (l) => lines.push(JSON.parse(l)) }),
    config: {
      providers: [
        { id: 'nokey', kind: 'openai', url: nokey.url, location: 'on_prem', api_key_env: UNSET },
        { id: 'flaky', kind: 'openai', url: flaky.url, location: 'on_prem', timeout_ms: 150 },
        { id: 'good', kind: 'openai', url: good.url, location: 'on_prem', timeout_ms: 5_000 },
      ],
      models: [
        { alias: 'chain', route: ['nokey/m', 'flaky/m', 'good/m'] },
        { alias: 'nokey-only', route: ['nokey/m'] },
        { alias: 'flaky-only', route: ['flaky/m'] },
      ],
      prices: { 'good/m': { input: 15, output: 60, currency: 'usd' } },
    },
  });
  const res = await s.operatorApi('POST', '/platforms', { slug: 'obs' });
  expect(res.status).toBe(201);
  const k = await s.operatorApi('POST', '/platforms/obs/api-keys', { name: 'obs' });
  key = ((await k.json()) as { key: string }).key;
}, 30_000);
afterAll(async () => {
  await s?.close();
  await Promise.all([nokey, flaky, good].map((p) => p?.stop()));
});

describe('a provider whose API key variable is unset', () => {
  test('is reported at start, shown down with the reason, skipped by routing and never sent a request', async () => {
    expect(logged('AI provider down: it will not be called')).toEqual([
      expect.objectContaining({
        level: 'warn',
        provider: 'nokey',
        reason: `its API key variable ${UNSET} is not set`,
      }),
    ]);
    expect((await providers()).nokey).toMatchObject({
      health: 'down',
      circuit: 'closed',
      down_reason: `its API key variable ${UNSET} is not set`,
      last_error: null,
    });
    const res = await chat('chain');
    expect(res.status).toBe(200);
    expect(res.headers.get('x-ai-provider')).toBe('flaky');
    expect(res.headers.get('x-ai-route')).toBe(
      `chain; flaky/m=ok, nokey/m=skipped(provider down: its API key variable ${UNSET} is not set)`,
    );
    // Its only route: no candidate, refused at once (and no SDK retry: nothing can change it).
    const only = await chat('nokey-only');
    expect(only.status).toBe(503);
    expect(only.headers.get('x-should-retry')).toBe('false');
    // Nor does the health loop ask it: not a single request, so no `Bearer none` ever.
    await s.ai.runtime.checkHealth();
    expect(nokey.requests).toEqual([]);
    expect(flaky.requests.length).toBeGreaterThan(0);
    expect(logged('AI route step skipped')).toContainEqual(
      expect.objectContaining({ platform: 'obs', alias: 'chain', step: 'nokey/m' }),
    );
  });
});

describe('fallback, timeouts and circuits: logged, counted, and in the providers view', () => {
  test('a timeout falls back (one log line each), the answer is counted with fallback=true, its tokens and time to first byte', async () => {
    flaky.setFault(delayHeaders(3_000));
    const res = await chat('chain', 'count these words');
    flaky.setFault(null);
    expect(res.status).toBe(200);
    expect(res.headers.get('x-ai-provider')).toBe('good');
    const usage = ((await res.json()) as { usage: { prompt_tokens: number; completion_tokens: number } })
      .usage;
    expect(logged('AI provider timed out')).toContainEqual(
      expect.objectContaining({ level: 'warn', platform: 'obs', alias: 'chain', step: 'flaky/m' }),
    );
    expect(logged('AI fallback')).toContainEqual(
      expect.objectContaining({ platform: 'obs', from: 'flaky/m', outcome: 'timeout', to: 'good/m' }),
    );
    const text = await metrics();
    expect(text).toContain(
      'soulfra_ai_calls_total{platform="obs",provider="good",model="m",outcome="ok",fallback="true"} 1',
    );
    expect(text).toContain(
      `soulfra_ai_tokens_total{platform="obs",provider="good",model="m",direction="in"} ${usage.prompt_tokens}`,
    );
    expect(text).toContain(
      `soulfra_ai_tokens_total{platform="obs",provider="good",model="m",direction="out"} ${usage.completion_tokens}`,
    );
    expect(text).toMatch(/soulfra_ai_time_to_first_byte_seconds_count\{provider="good",model="m"\} 1\n/);
    expect(text).toContain(
      'soulfra_ai_calls_total{platform="obs",provider="flaky",model="m",outcome="ok",fallback="false"} 1',
    );
    expect((await providers()).flaky!.last_error!.message).toContain('timeout');
  });

  test('failures open the circuit (logged), the providers view shows it open with the last error; each call no route answered is counted', async () => {
    flaky.setFault('status500');
    for (let i = 0; i < 3; i++) expect((await chat('flaky-only')).status).toBe(503);
    flaky.setFault(null);
    expect(logged('AI provider circuit changed')).toContainEqual(
      expect.objectContaining({ level: 'warn', provider: 'flaky', from: 'closed', to: 'open' }),
    );
    expect(logged('AI route exhausted')).toContainEqual(
      expect.objectContaining({ platform: 'obs', alias: 'flaky-only', last: 'flaky/m', outcome: 'server' }),
    );
    const flakyNow = (await providers()).flaky!;
    expect(flakyNow.circuit).toBe('open');
    expect(flakyNow.failures).toBe(3);
    expect(flakyNow.last_error!.message).toMatch(/^server: /);
    // Skipped while open: the call is no_route without reaching it.
    const seen = flaky.requests.length;
    expect((await chat('flaky-only')).status).toBe(503);
    expect(flaky.requests.length).toBe(seen);
    expect(await metrics()).toMatch(
      /soulfra_ai_calls_total\{platform="obs",provider="none",model="none",outcome="no_route",fallback="false"\} 5\n/,
    );
    // A health check that passes closes it again (logged as a change back to closed).
    await s.ai.runtime.checkHealth();
    expect((await providers()).flaky!.circuit).toBe('closed');
    expect(logged('AI provider circuit changed')).toContainEqual(
      expect.objectContaining({ level: 'info', provider: 'flaky', from: 'open', to: 'closed' }),
    );
  });
});

test('GET /_operator/api/providers needs an operator (operator:read)', async () => {
  const res = await s.request('localhost', '/_operator/api/providers');
  expect(res.status).toBe(401);
  const bad = await s.request('localhost', '/_operator/api/providers', {
    headers: { authorization: `Bearer ${key}` },
  });
  expect(bad.status).toBe(401);
});
