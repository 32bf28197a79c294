/**
 * Knowledge is embedded again when the operator changes the embedding model: a server indexes
 * documents with one model (64 dimensions), stops; the next start embeds with another (32): the
 * first search re-embeds every chunk through the AI service, rebuilds the vector index in one
 * step, audits it, and answers as before.
 */
import { afterAll, expect, test } from 'bun:test';
import { join } from 'node:path';
import { writeBagOfWordsModel } from './fixtures/onnx-model.ts';
import { hostFetch, operatorApi, startTestServer, tempDir } from './helpers.ts';

const t = tempDir();
afterAll(() => t.cleanup());

const DOC = `Returns

Bring the item back within thirty days with its receipt for a full refund.

Gift cards are never refunded; they can be moved to another account.`;
const QUESTION = 'how many days do i have to bring an item back';

test('a new embedding model re-embeds every chunk on first use; search answers as before', async () => {
  const models = join(t.dir, 'models');
  const words = `${DOC} ${QUESTION}`.match(/[\p{L}\p{N}]+/gu)!;
  writeBagOfWordsModel(models, 'bow64', words, 64);
  writeBagOfWordsModel(models, 'bow32', words, 32);
  const dataDir = join(t.dir, 'data');
  const config = (alias: string) => ({
    providers: [{ id: 'onnx', kind: 'onnx' as const, models_dir: models }],
    models: [
      { alias: 'old', route: ['onnx/bow64'] },
      { alias: 'new', route: ['onnx/bow32'] },
    ],
    knowledge: { embedding_model: alias },
  });
  const hostOf = (base: string) => `rx.localhost:${new URL(base).port}`;
  const login = async (base: string, owner: { email: string; password: string }) => {
    const r = await hostFetch(base, hostOf(base), '/api/v1/auth/login', {
      method: 'POST',
      headers: { 'content-type': 'application/json', origin: `http://${hostOf(base)}` },
      body: JSON.stringify(owner),
    });
    expect(r.status).toBe(200);
    return {
      cookie: (r.headers.get('set-cookie') ?? '').split(';')[0]!,
      csrf: ((await r.json()) as { csrf_token: string }).csrf_token,
    };
  };
  const api = (
    base: string,
    se: { cookie: string; csrf: string },
    method: string,
    path: string,
    body?: unknown,
  ) =>
    hostFetch(base, hostOf(base), path, {
      method,
      headers: {
        cookie: se.cookie,
        'x-csrf-token': se.csrf,
        ...(body ? { 'content-type': 'application/json' } : {}),
      },
      body: body === undefined ? undefined : JSON.stringify(body),
    });

  // First run: the old model.
  const a = await startTestServer({ dataDir, config: config('old') });
  const token = a.firstRun!.token;
  const made = await operatorApi(a.base, token, 'POST', '/platforms', { slug: 'rx', template: 'creator' });
  const owner = ((await made.json()) as { admin: { email: string; password: string } }).admin;
  let se = await login(a.base, owner);
  const agent = (
    (await (await api(a.base, se, 'POST', '/api/v1/agents', { name: 'Shop' })).json()) as {
      agent: { id: string };
    }
  ).agent;
  const add = await api(a.base, se, 'POST', `/api/v1/agents/${agent.id}/knowledge`, {
    name: 'Returns',
    text: DOC,
  });
  expect(add.status).toBe(201);
  const search = async (base: string) =>
    (await (
      await api(
        base,
        se,
        'GET',
        `/api/v1/agents/${agent.id}/knowledge/search?q=${encodeURIComponent(QUESTION)}`,
      )
    ).json()) as {
      results: { text: string }[];
    };
  const before = await search(a.base);
  expect(before.results[0]!.text).toContain('thirty days');
  await a.stop();

  // Next run: the operator changed the model.
  const b = await startTestServer({ dataDir, config: config('new') });
  try {
    se = await login(b.base, owner);
    const after = await search(b.base);
    expect(after.results[0]!.text).toContain('thirty days');
    const docs = (await (await api(b.base, se, 'GET', `/api/v1/agents/${agent.id}/knowledge`)).json()) as {
      documents: { embedding_model: string }[];
    };
    expect(docs.documents.map((d) => d.embedding_model)).toEqual(['new']);
    const audit = (await (
      await api(b.base, se, 'GET', '/api/v1/audit?action=knowledge.reembedded')
    ).json()) as {
      entries: { details: { from: string; to: string; dims: number; chunks: number } }[];
    };
    expect(audit.entries).toHaveLength(1);
    expect(audit.entries[0]!.details).toMatchObject({ from: 'old', to: 'new', dims: 32 });
    expect(audit.entries[0]!.details.chunks).toBeGreaterThanOrEqual(1);
    // Once only: a second search does not re-embed again.
    await search(b.base);
    const again = (await (
      await api(b.base, se, 'GET', '/api/v1/audit?action=knowledge.reembedded')
    ).json()) as { entries: unknown[] };
    expect(again.entries).toHaveLength(1);
    // New documents go into the new index.
    const more = await api(b.base, se, 'POST', `/api/v1/agents/${agent.id}/knowledge`, {
      name: 'More',
      text: 'Gift cards move.',
    });
    expect(more.status).toBe(201);
  } finally {
    await b.stop();
  }
}, 60_000);
