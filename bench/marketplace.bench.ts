/**
 * `npm run bench -- marketplace`: the marketplace's search, on this machine, in process.
 * - keyword: FTS5 search of N listings (default 100,000) through the route's repository query
 *   (`searchListings`: published only, BM25 order, 50 results), one or two words a query;
 * - semantic: sqlite-vec KNN (k = 10, cosine) over N 384-dimension vectors in a `vec0` table
 *   as the knowledge index keeps them (the engine a semantic listing search will use; listings
 *   are not embedded yet).
 * - agent overhead: time to the first streamed token of a portal chat turn with an agent that
 *   has knowledge (persona, retrieval: one embedding of the question through the in-process
 *   ONNX provider, FTS5 + vec0 search, sources in the prompt) against the same turn with no
 *   agent, through the in-process server and the OpenAI stub on loopback.
 * Flags: --listings N (default 100000), --queries N (default 500), --turns N (default 100), --seed S.
 */
import { Database } from 'bun:sqlite';
import { join } from 'node:path';
import { getLoadablePath } from 'sqlite-vec';
import { insertListing, searchListings } from '../src/agents/marketplace.repository.ts';
import { migrate, TENANT_MIGRATIONS } from '../src/db/index.ts';
import { writeBagOfWordsModel } from '../tests/fixtures/onnx-model.ts';
import { tempDir } from '../tests/helpers.ts';
import { inProcessServer } from '../tests/inproc.ts';
import { startOpenAIStub } from '../tests/peers/openai-stub.ts';
import { ms, prng, summarize } from './lib.ts';

export const description =
  'marketplace search: FTS5 over 100k listings, sqlite-vec KNN over 100k 384-d vectors';

const WORDS =
  'recipe travel tax code write legal health fitness study math history music garden budget invoice email resume interview translate summarize poem story chess coach plan diet sleep yoga python sql design logo brand market sales support contract policy news science space'.split(
    ' ',
  );

export async function main(args: string[]): Promise<number> {
  const flag = (name: string, d: number) => {
    const i = args.indexOf(name);
    return i >= 0 ? Number(args[i + 1]) || d : d;
  };
  const n = flag('--listings', 100_000);
  const queries = flag('--queries', 500);
  const rand = prng(flag('--seed', 42));
  const pick = () => WORDS[Math.floor(rand() * WORDS.length)]!;

  const db = new Database(':memory:');
  migrate(db, TENANT_MIGRATIONS, 'bench');
  let t0 = performance.now();
  db.transaction(() => {
    for (let i = 0; i < n; i++) {
      const words = [pick(), pick(), pick()];
      insertListing(db, {
        id: `lst_${i}`,
        agent_id: `agt_${i}`,
        version: 1,
        title: `${words[0]} ${words[1]} helper ${i}`,
        summary: `An agent for ${words.join(', ')} and more.`,
        category: words[2]!,
        tags: JSON.stringify([words[0], words[2]]),
        price_model: 'free',
        price_minor: 0,
        currency: 'usd',
        status: i % 10 === 0 ? 'in_review' : 'published',
        created_by: 'bench',
        created_at: i,
        updated_at: i,
      });
    }
  })();
  const loadMs = performance.now() - t0;
  const kw: number[] = [];
  let hits = 0;
  for (let i = 0; i < queries; i++) {
    const q = rand() < 0.5 ? `"${pick()}"*` : `"${pick()}"* AND "${pick()}"*`;
    t0 = performance.now();
    hits += searchListings(db, { match: q, category: null, limit: 50 }).length;
    kw.push(performance.now() - t0);
  }

  db.loadExtension(getLoadablePath());
  const dims = 384;
  db.exec(`CREATE VIRTUAL TABLE v USING vec0(embedding float[${dims}] distance_metric=cosine)`);
  const vec = () => {
    const v = new Float32Array(dims);
    for (let j = 0; j < dims; j++) v[j] = rand() - 0.5;
    return v;
  };
  t0 = performance.now();
  const ins = db.query('INSERT INTO v (rowid, embedding) VALUES (?, ?)');
  db.transaction(() => {
    for (let i = 1; i <= n; i++) ins.run(i, vec());
  })();
  const vecLoadMs = performance.now() - t0;
  const knn = db.query('SELECT rowid, distance FROM v WHERE embedding MATCH ? AND k = 10 ORDER BY distance');
  const sem: number[] = [];
  for (let i = 0; i < Math.min(queries, 200); i++) {
    const q = vec();
    t0 = performance.now();
    knn.all(q);
    sem.push(performance.now() - t0);
  }
  const k = summarize(kw);
  const s = summarize(sem);
  console.log(
    `marketplace search, in process (${n.toLocaleString()} listings; load ${(loadMs / 1000).toFixed(1)} s)`,
  );
  console.log(
    `  keyword (FTS5, 50 results)     p50 ${ms(k.p50)} ms  p90 ${ms(k.p90)} ms  max ${ms(k.max)} ms  (${queries} queries, ${(hits / queries).toFixed(0)} hits avg; goal p50 ≤ 2 ms)`,
  );
  console.log(
    `  semantic (vec0 KNN, k=10, 384d) p50 ${ms(s.p50)} ms  p90 ${ms(s.p90)} ms  max ${ms(s.max)} ms  (${sem.length} queries; vectors loaded in ${(vecLoadMs / 1000).toFixed(1)} s; goal p50 ≤ 10 ms)`,
  );
  db.close();
  const o = await agentOverhead(flag('--turns', 100));
  console.log(`  time to first token, plain turn  p50 ${ms(o.plain.p50)} ms  p90 ${ms(o.plain.p90)} ms`);
  console.log(
    `  time to first token, agent + knowledge  p50 ${ms(o.agent.p50)} ms  p90 ${ms(o.agent.p90)} ms  (adds ${ms(o.agent.p50 - o.plain.p50)} ms at p50; goal ≤ 5 ms)`,
  );
  return 0;
}

async function agentOverhead(turns: number) {
  const t = tempDir();
  const stub = await startOpenAIStub({ models: ['gpt-4o-mini'] });
  const doc = Array.from(
    { length: 40 },
    (_, i) => `Section ${i}: ${WORDS.slice(i % 20, (i % 20) + 12).join(' ')}.`,
  ).join('\n\n');
  writeBagOfWordsModel(
    join(t.dir, 'models'),
    'bow',
    `${doc} ${WORDS.join(' ')}`.match(/[\p{L}\p{N}]+/gu)!,
    384,
  );
  const s = await inProcessServer({
    config: {
      providers: [
        { id: 'stub', kind: 'openai', url: stub.url, location: 'on_prem', timeout_ms: 10_000 },
        { id: 'onnx', kind: 'onnx', models_dir: join(t.dir, 'models') },
      ],
      models: [
        { alias: 'default', route: ['stub/gpt-4o-mini'] },
        { alias: 'embed', route: ['onnx/bow'] },
      ],
      knowledge: { embedding_model: 'embed', chunk_chars: 400 },
      outbound: { allow: ['127.0.0.1/32'] },
    },
  });
  try {
    const made = await s.operatorApi('POST', '/platforms', { slug: 'bench', template: 'creator' });
    const owner = ((await made.json()) as { admin: { email: string; password: string } }).admin;
    const host = 'bench.localhost';
    const login = await s.request(host, '/api/v1/auth/login', {
      method: 'POST',
      headers: { 'content-type': 'application/json', origin: `http://${host}:8080` },
      body: JSON.stringify(owner),
    });
    const cookie = (login.headers.get('set-cookie') ?? '').split(';')[0]!;
    const csrf = ((await login.json()) as { csrf_token: string }).csrf_token;
    const call = (method: string, path: string, body?: unknown) =>
      s.request(host, path, {
        method,
        headers: { cookie, 'x-csrf-token': csrf, 'content-type': 'application/json' },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
    const agent = (
      (await (await call('POST', '/api/v1/agents', { name: 'Bench', persona: 'You help.' })).json()) as {
        agent: { id: string };
      }
    ).agent;
    await call('POST', `/api/v1/agents/${agent.id}/publish`);
    await call('POST', `/api/v1/agents/${agent.id}/knowledge`, { name: 'doc', text: doc });
    const conv = async (agentId?: string) =>
      (
        (await (
          await call('POST', '/api/v1/conversations', agentId ? { agent_id: agentId } : {})
        ).json()) as { conversation: { id: string } }
      ).conversation.id;
    const firstToken = async (id: string, content: string) => {
      const t0 = performance.now();
      const r = await call('POST', `/api/v1/conversations/${id}/messages`, { content });
      const reader = r.body!.getReader();
      const dec = new TextDecoder();
      let buf = '';
      let at = Number.NaN;
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buf += dec.decode(value);
        if (Number.isNaN(at) && buf.includes('event: delta')) at = performance.now() - t0;
      }
      return at;
    };
    const plainId = await conv();
    const agentId = await conv(agent.id);
    const plain: number[] = [];
    const withAgent: number[] = [];
    for (let i = 0; i < turns + 5; i++) {
      const q = `${WORDS[i % WORDS.length]} ${WORDS[(i * 7) % WORDS.length]} question`;
      // Alternated, so drift and warm-up fall on both alike; the first five are warm-up.
      const a = await firstToken(plainId, q);
      const b = await firstToken(agentId, q);
      if (i >= 5) {
        plain.push(a);
        withAgent.push(b);
      }
    }
    return { plain: summarize(plain), agent: summarize(withAgent) };
  } finally {
    await s.close();
    await stub.stop();
    t.cleanup();
  }
}
