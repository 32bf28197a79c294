import { afterAll, beforeAll, expect, test } from 'bun:test';
import { type AnthropicStub, startAnthropicStub } from '../../../tests/peers/anthropic-stub.ts';
import { type OpenAIStub, startOpenAIStub } from '../../../tests/peers/openai-stub.ts';
import type { Provider, ProviderConfig } from '../provider.ts';
import { createAnthropicProvider } from './anthropic.ts';
import { createLeanProvider, createOpenAIProvider } from './openai.ts';

/**
 * A provider with no key (a local server that takes none: no `api_key_env`, or one naming an
 * empty variable) sends no credential header at all, over every transport: never
 * `Authorization: Bearer none` (issue 10, item 7). With a key, the key is what is sent.
 */
let openai: OpenAIStub;
let anthropic: AnthropicStub;
beforeAll(async () => {
  openai = await startOpenAIStub();
  anthropic = await startAnthropicStub();
});
afterAll(async () => {
  await openai.stop();
  await anthropic.stop();
});

const ENV = 'SOULFRA_TEST_NO_KEY_PROVIDER_KEY';
const signal = () => new AbortController().signal;
const ask = (model: string) => ({ model, messages: [{ role: 'user' as const, content: 'hi' }] });

const targets: {
  name: string;
  make(extra: Partial<ProviderConfig>): Provider;
  model: string;
  stub(): OpenAIStub | AnthropicStub;
}[] = [
  {
    name: 'openai, lean HTTP/1.1 client',
    make: (x) => createLeanProvider({ id: 'l', kind: 'openai', url: openai.url, ...x }, 'auto'),
    model: 'gpt-4o-mini',
    stub: () => openai,
  },
  {
    name: 'openai, lean fetch',
    make: (x) => createLeanProvider({ id: 'f', kind: 'openai', url: openai.url, ...x }, 'fetch'),
    model: 'gpt-4o-mini',
    stub: () => openai,
  },
  {
    name: 'openai, official SDK',
    make: (x) => createOpenAIProvider({ id: 's', kind: 'openai', url: openai.url, location: 'cloud', ...x }),
    model: 'gpt-4o-mini',
    stub: () => openai,
  },
  {
    name: 'anthropic, official SDK',
    make: (x) => createAnthropicProvider({ id: 'a', kind: 'anthropic', url: anthropic.url, ...x }),
    model: 'claude-3-5-haiku-latest',
    stub: () => anthropic,
  },
];

for (const t of targets) {
  for (const [what, extra, env] of [
    ['no api_key_env', {}, undefined],
    ['api_key_env naming an empty variable', { api_key_env: ENV }, ''],
  ] as const) {
    test(`${t.name}, ${what}: no Authorization or X-Api-Key header is sent`, async () => {
      if (env === undefined) delete process.env[ENV];
      else process.env[ENV] = env;
      const stub = t.stub();
      stub.requests.length = 0;
      const p = t.make(extra);
      try {
        await p.chat(ask(t.model), signal());
      } finally {
        await p.close?.();
        delete process.env[ENV];
      }
      expect(stub.requests.length).toBe(1);
      const h = stub.requests[0]!.headers;
      expect(h.authorization).toBeUndefined();
      expect(h['x-api-key']).toBeUndefined();
    });
  }

  test(`${t.name}, with a key: the key is sent`, async () => {
    process.env[ENV] = 'sk-test-123';
    const stub = t.stub();
    stub.requests.length = 0;
    const p = t.make({ api_key_env: ENV });
    try {
      await p.chat(ask(t.model), signal());
    } finally {
      await p.close?.();
      delete process.env[ENV];
    }
    const h = stub.requests[0]!.headers;
    expect(h.authorization === 'Bearer sk-test-123' || h['x-api-key'] === 'sk-test-123').toBe(true);
    expect(JSON.stringify(h)).not.toContain('none');
  });
}
