import { describe, expect, test } from 'bun:test';
import { templateBlueprint } from '../tenancy/index.ts';
import { CircuitBreaker } from './breaker.ts';
import { policyOf } from './policy.ts';
import type { ChatCompletion, Provider } from './provider.ts';
import { UpstreamError } from './provider.ts';
import { NoRouteError, planRoute, routeHeader, runPlan } from './router.ts';

function fake(id: string, location: 'on_prem' | 'cloud', behave: () => Promise<ChatCompletion>) {
  const calls: string[] = [];
  const p: Provider = {
    id,
    kind: location === 'cloud' ? 'openai' : 'ollama',
    location,
    chat: async (req) => {
      calls.push(req.model);
      return behave();
    },
    chatStream: async () => {
      throw new Error('not used');
    },
    embeddings: async () => ({ vectors: [], usage: { prompt_tokens: 0, total_tokens: 0 } }),
    health: async () => true,
  };
  return { p, calls };
}
const ok = (text: string) => async (): Promise<ChatCompletion> => ({
  id: 'x',
  object: 'chat.completion',
  created: 0,
  model: 'm',
  choices: [{ index: 0, message: { role: 'assistant', content: text }, finish_reason: 'stop' }],
  usage: { prompt_tokens: 1, completion_tokens: 1, total_tokens: 2 },
});
const fail = (kind: UpstreamError['kind']) => async (): Promise<never> => {
  throw new UpstreamError('x', kind, kind);
};

function tables(local: Provider, cloud: Provider) {
  return {
    providers: new Map([
      ['local', local],
      ['cloud', cloud],
    ]),
    routes: new Map([['default', ['local/llama3.2', 'cloud/gpt-4o-mini']]]),
    breakers: new Map([
      ['local', new CircuitBreaker({ threshold: 2, openMs: 1_000 })],
      ['cloud', new CircuitBreaker()],
    ]),
  };
}
const open = { allowedProviders: [], cloudBlocked: null };
const never = AbortSignal.timeout(60_000);

describe('planning', () => {
  test('an alias, a direct provider/model, an unknown model', () => {
    const t = tables(fake('local', 'on_prem', ok('a')).p, fake('cloud', 'cloud', ok('b')).p);
    expect(planRoute('default', t, open).candidates.map((c) => c.key)).toEqual([
      'local/llama3.2',
      'cloud/gpt-4o-mini',
    ]);
    expect(planRoute('cloud/gpt-4.1', t, open).candidates.map((c) => [c.provider.id, c.model])).toEqual([
      ['cloud', 'gpt-4.1'],
    ]);
    expect(() => planRoute('nope', t, open)).toThrow(/does not exist/);
  });

  test('policy removes cloud steps and disallowed providers before anything is sent', () => {
    const t = tables(fake('local', 'on_prem', ok('a')).p, fake('cloud', 'cloud', ok('b')).p);
    const p = planRoute('default', t, { allowedProviders: [], cloudBlocked: "cloud_fallback is 'never'" });
    expect(p.candidates.map((c) => c.key)).toEqual(['local/llama3.2']);
    expect(p.skipped).toEqual([{ key: 'cloud/gpt-4o-mini', reason: "policy: cloud_fallback is 'never'" }]);
    const q = planRoute('default', t, { allowedProviders: ['cloud'], cloudBlocked: null });
    expect(q.candidates.map((c) => c.key)).toEqual(['cloud/gpt-4o-mini']);
  });

  test("a blueprint's policy: cloud_fallback never, HIPAA without a BAA, HIPAA with one", () => {
    const bp = templateBlueprint('business');
    expect(policyOf(bp).cloudBlocked).toBeNull();
    bp.ai_settings.cloud_fallback = 'never';
    expect(policyOf(bp).cloudBlocked).toBe("cloud_fallback is 'never'");
    bp.ai_settings.cloud_fallback = 'allowed';
    bp.governance.compliance_packs = ['hipaa'];
    expect(policyOf(bp).cloudBlocked).toBe('HIPAA pack without a signed BAA');
    (bp.governance as { hipaa_baa_signed?: boolean }).hipaa_baa_signed = true;
    expect(policyOf(bp).cloudBlocked).toBeNull();
  });
});

describe('running a plan', () => {
  test('falls back on retryable failures, in order, and says so', async () => {
    for (const kind of ['connect', 'timeout', 'rate_limited', 'server', 'malformed'] as const) {
      const local = fake('local', 'on_prem', fail(kind));
      const cloud = fake('cloud', 'cloud', ok('from cloud'));
      const t = tables(local.p, cloud.p);
      const plan = planRoute('default', t, open);
      const r = await runPlan(
        plan,
        t,
        never,
        () => 1_000,
        (c, s) => c.provider.chat({ model: c.model, messages: [] }, s),
      );
      expect({ kind, text: r.result.choices[0]!.message.content, by: r.candidate.key }).toEqual({
        kind,
        text: 'from cloud',
        by: 'cloud/gpt-4o-mini',
      });
      expect(routeHeader(plan, r.attempts)).toBe(`default; local/llama3.2=${kind}, cloud/gpt-4o-mini=ok`);
    }
  });

  test('a bad request is not retried elsewhere', async () => {
    const local = fake('local', 'on_prem', fail('client'));
    const cloud = fake('cloud', 'cloud', ok('never'));
    const t = tables(local.p, cloud.p);
    await expect(
      runPlan(
        planRoute('default', t, open),
        t,
        never,
        () => 1_000,
        (c, s) => c.provider.chat({ model: c.model, messages: [] }, s),
      ),
    ).rejects.toThrow('client');
    expect(cloud.calls).toEqual([]);
  });

  test('a provider that hangs is cut off by its timeout and the next one answers', async () => {
    const local = fake('local', 'on_prem', () => new Promise(() => {}));
    const cloud = fake('cloud', 'cloud', ok('after timeout'));
    const t = tables(local.p, cloud.p);
    const r = await runPlan(
      planRoute('default', t, open),
      t,
      never,
      (c) => (c.provider.id === 'local' ? 50 : 1_000),
      (c, s) =>
        Promise.race([
          c.provider.chat({ model: c.model, messages: [] }, s),
          new Promise<never>((_, rej) => s.addEventListener('abort', () => rej(s.reason))),
        ]),
    );
    expect(r.attempts.map((a) => a.outcome)).toEqual(['timeout', 'ok']);
  });

  test('with cloud blocked and the local provider down, nothing reaches the cloud and the error is clear', async () => {
    const local = fake('local', 'on_prem', fail('connect'));
    const cloud = fake('cloud', 'cloud', ok('must not happen'));
    const t = tables(local.p, cloud.p);
    const plan = planRoute('default', t, { allowedProviders: [], cloudBlocked: "cloud_fallback is 'never'" });
    const err = await runPlan(
      plan,
      t,
      never,
      () => 1_000,
      (c, s) => c.provider.chat({ model: c.model, messages: [] }, s),
    ).catch((e) => e);
    expect(err).toBeInstanceOf(NoRouteError);
    expect((err as Error).message).toBe(
      "every provider for 'default' failed: local/llama3.2: connect; cloud/gpt-4o-mini: skipped (policy: cloud_fallback is 'never')",
    );
    expect(cloud.calls).toEqual([]);
  });

  test('the circuit opens after repeated failures and the provider is skipped until it half-opens', async () => {
    const local = fake('local', 'on_prem', fail('server'));
    const cloud = fake('cloud', 'cloud', ok('c'));
    const t = tables(local.p, cloud.p);
    let now = 0;
    const run = () =>
      runPlan(
        planRoute('default', t, open),
        t,
        never,
        () => 1_000,
        (c, s) => c.provider.chat({ model: c.model, messages: [] }, s),
        () => now,
      );
    await run();
    await run();
    expect(local.calls.length).toBe(2);
    expect((await run()).attempts[0]!.outcome).toBe('circuit_open');
    expect(local.calls.length).toBe(2);
    now = 1_500; // half-open: one probe goes
    await run();
    expect(local.calls.length).toBe(3);
  });
});

describe('circuit changes are told', () => {
  test('closed → open at the threshold, open → half_open on the probe, half_open → open on its failure, then → closed', () => {
    const changes: string[] = [];
    const b = new CircuitBreaker({
      threshold: 2,
      openMs: 1_000,
      onChange: (f, t) => changes.push(`${f}>${t}`),
    });
    b.failure(0);
    b.success();
    b.failure(0);
    expect(changes).toEqual([]);
    b.failure(1);
    expect(changes).toEqual(['closed>open']);
    expect(b.allow(500)).toBe(false);
    expect(b.allow(1_001)).toBe(true);
    b.failure(1_001);
    expect(b.allow(2_002)).toBe(true);
    b.success();
    // A success on a closed circuit tells nothing (the hot path).
    b.success();
    expect(changes).toEqual([
      'closed>open',
      'open>half_open',
      'half_open>open',
      'open>half_open',
      'half_open>closed',
    ]);
  });
});
