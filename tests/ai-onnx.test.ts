import { afterAll, beforeAll, expect, test } from 'bun:test';
import { join } from 'node:path';
import OpenAI from 'openai';
import { writeTestModels } from './fixtures/onnx-model.ts';
import { operatorApi, startTestServer, tempDir } from './helpers.ts';
import { type OllamaStub, startOllamaStub } from './peers/ollama-stub.ts';

// In-process ONNX through the router: embeddings from a tiny model the test generates, and the
// ONNX safety classifier refusing a request before any provider sees it.
const t = tempDir();
let s: Awaited<ReturnType<typeof startTestServer>>;
let local: OllamaStub;
let client: OpenAI;

beforeAll(async () => {
  const { modelsDir, classifierDir } = writeTestModels(join(t.dir, 'models'));
  local = await startOllamaStub();
  s = await startTestServer({
    config: {
      providers: [
        { id: 'onnx', kind: 'onnx', models_dir: modelsDir },
        { id: 'local', kind: 'ollama', url: local.url },
      ],
      models: [
        { alias: 'embed', route: ['onnx/tiny'] },
        { alias: 'default', route: ['local/llama3.2'] },
      ],
      safety_classifier: {
        model_dir: classifierDir,
        labels: ['safe', 'toxic'],
        block: ['toxic'],
        min_score: 0.6,
      },
    },
  });
  await operatorApi(s.base, s.firstRun!.token, 'POST', '/platforms', { slug: 'onx', template: 'creator' });
  const k = await operatorApi(s.base, s.firstRun!.token, 'POST', '/platforms/onx/api-keys', {
    name: 'sdk',
    scopes: ['ai:invoke'],
  });
  const key = ((await k.json()) as { key: string }).key;
  client = new OpenAI({
    baseURL: `${s.base}/v1`,
    apiKey: key,
    maxRetries: 0,
    fetch: (url, init) => {
      const headers = new Headers(init?.headers);
      headers.set('host', 'onx.localhost');
      return fetch(url, { ...init, headers });
    },
  });
}, 30_000);
afterAll(async () => {
  await s?.cleanup();
  await local?.stop();
  t.cleanup();
});

test('embeddings computed in process by onnxruntime from a generated model', async () => {
  const { data, response } = await client.embeddings
    .create({ model: 'embed', input: ['hello', 'hello world'] })
    .withResponse();
  expect(response.headers.get('x-ai-provider')).toBe('onnx');
  expect(data.data[0]!.embedding).toEqual([1, 0, 0, 0]);
  const v = data.data[1]!.embedding;
  expect(v.map((x) => Number(x.toFixed(6)))).toEqual([
    Number(Math.SQRT1_2.toFixed(6)),
    Number(Math.SQRT1_2.toFixed(6)),
    0,
    0,
  ]);
  expect(data.usage.prompt_tokens).toBe(3);
});

test('the ONNX classifier refuses a toxic request before any provider sees it', async () => {
  const seen = local.requests.length;
  const err = (await client.chat.completions
    .create({ model: 'default', messages: [{ role: 'user', content: 'hate hate hate' }] })
    .catch((e) => e)) as InstanceType<typeof OpenAI.APIError>;
  expect(err.status).toBe(400);
  expect(err.code).toBe('ai.blocked_by_policy');
  expect(err.message).toContain("classifier 'toxic'");
  expect(local.requests.length).toBe(seen);
  const ok = await client.chat.completions.create({
    model: 'default',
    messages: [{ role: 'user', content: 'hello world' }],
  });
  expect(ok.choices[0]!.message.content).toBe('You said: hello world');
});
