import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { type OpenAIStub, startOpenAIStub } from '../../tests/peers/openai-stub.ts';
import { holdsFor, waitFor } from '../../tests/wait.ts';
import { DEFAULT_CONFIG, silentLogger } from '../app/index.ts';
import { type AiRuntime, createAiRuntime } from './runtime.ts';

let stub: OpenAIStub;
let runtime: AiRuntime;

beforeAll(async () => {
  stub = await startOpenAIStub();
  runtime = await createAiRuntime(
    {
      ...DEFAULT_CONFIG,
      providers: [{ id: 'up', kind: 'openai', url: stub.url, location: 'on_prem', timeout_ms: 1_000 }],
      models: [{ alias: 'default', route: ['up/stub-model'] }],
    },
    silentLogger,
  );
});
afterAll(async () => {
  await runtime.close();
  await stub.stop();
});

const healthChecks = () => stub.requests.filter((r) => r.method === 'GET' && r.path === '/v1/models').length;

const until = (cond: () => boolean) => waitFor(cond, { interval: 5 });

describe('the health loop', () => {
  test('failing checks open the circuit before any request has to find out; a passing one closes it', async () => {
    const breaker = runtime.breakers.get('up')!;
    expect(breaker.state(Date.now())).toBe('closed');
    runtime.startHealthLoop(25);
    await until(() => healthChecks() >= 2);
    expect(breaker.state(Date.now())).toBe('closed');

    stub.setFault('status500');
    await until(() => breaker.state(Date.now()) === 'open');
    stub.setFault('refuse');
    const before = healthChecks();
    // Refused connections never reach the stub's log, and the circuit stays open (six rounds).
    expect(await holdsFor(() => healthChecks() === before && breaker.state(Date.now()) === 'open', 150)).toBe(
      true,
    );

    stub.setFault(null);
    await until(() => breaker.state(Date.now()) === 'closed');
  });

  test('close() stops the loop', async () => {
    await runtime.close();
    // A check in flight at close() may still land; no other in eight rounds of the loop.
    const n = healthChecks();
    expect(await holdsFor(() => healthChecks() <= n + 1, 200)).toBe(true);
  });
});
