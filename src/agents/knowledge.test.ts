/**
 * An agent's knowledge (issue 12 item 2, in part): documents chunked, embedded through the AI
 * service by an in-process ONNX model the test generates (a hashed bag of words: texts sharing
 * words are near), indexed by FTS5 and sqlite-vec, searched by both; a chat with the agent is
 * given the relevant chunk and its answer carries the citation. Attack table and quota.
 */
import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { join } from 'node:path';
import { writeBagOfWordsModel } from '../../tests/fixtures/onnx-model.ts';
import { textPdf } from '../../tests/fixtures/pdf.ts';
import { tempDir } from '../../tests/helpers.ts';
import { type InProcessServer, inProcessServer } from '../../tests/inproc.ts';
import { type OpenAIStub, startOpenAIStub } from '../../tests/peers/openai-stub.ts';
import { callAs, json, type Session, signInTo } from '../../tests/sessions.ts';

const TRAVEL = `Travel policy

Book flights through the travel desk at least two weeks ahead. Economy class is the rule for flights under six hours.

Hotels: stay within the city rate. Keep every hotel receipt and send the receipts to expenses@example.test within thirty days of the trip.

Meals abroad are paid per day; no receipts are needed for the daily meal allowance.`;

const SECURITY = `Security policy

Passwords are at least sixteen characters and never shared. Use the password manager for every account.

Laptops are encrypted and locked when you leave them. Report a lost laptop to the security desk at once.

Connect through the VPN on public networks such as hotel or airport wifi.`;

const PDF_LINES = ['Parking policy', 'Visitors park in bay seven near the north gate.'];
const HTML_WORDS = 'Canteen hours breakfast lunch served from noon secretword';
const HTML = `<html><head><title>Canteen</title><style>body{}</style></head><body><h1>Canteen hours</h1>
<p>Breakfast from seven; lunch is served from noon.</p><script>var secretword = 1;</script></body></html>`;

const t = tempDir();
let s: InProcessServer;
let stub: OpenAIStub;
const P: Record<string, { owner: { email: string; password: string } }> = {};
const S: Record<string, Session> = {};

const signIn = (slug: string, email: string, password: string) => signInTo(s, slug, email, password);
const call = (se: Session, method: string, path: string, body?: unknown) => callAs(s, se, method, path, body);

let agentId = '';
const docs: Record<string, string> = {};

beforeAll(async () => {
  const words =
    `${TRAVEL} ${SECURITY} where do i send my hotel receipts how long must passwords be ${HTML_WORDS} ${PDF_LINES.join(' ')}`.match(
      /[\p{L}\p{N}]+/gu,
    )!;
  const modelsDir = join(t.dir, 'models');
  writeBagOfWordsModel(modelsDir, 'bow', words, 64);
  stub = await startOpenAIStub({ models: ['gpt-4o-mini'] });
  s = await inProcessServer({
    config: {
      providers: [
        { id: 'onnx', kind: 'onnx', models_dir: modelsDir },
        { id: 'stub', kind: 'openai', url: stub.url, location: 'on_prem', timeout_ms: 10_000 },
      ],
      models: [
        { alias: 'default', route: ['stub/gpt-4o-mini'] },
        { alias: 'embed', route: ['onnx/bow'] },
      ],
      knowledge: { embedding_model: 'embed', chunk_chars: 300, max_bytes_per_platform: 4000 },
      outbound: { allow: ['127.0.0.1/32'] },
    },
  });
  for (const slug of ['kn', 'kx']) {
    const r = await s.operatorApi('POST', '/platforms', { slug, template: 'creator' });
    P[slug] = { owner: ((await r.json()) as { admin: { email: string; password: string } }).admin };
  }
  S.owner = await signIn('kn', P.kn!.owner.email, P.kn!.owner.password);
  expect(
    (
      await call(S.owner, 'POST', '/api/v1/users', {
        email: 'm@kn.test',
        role: 'member',
        password: 'a-long-password-12',
      })
    ).status,
  ).toBe(201);
  S.member = await signIn('kn', 'm@kn.test', 'a-long-password-12');
  S.other = await signIn('kx', P.kx!.owner.email, P.kx!.owner.password);
  const a = await json<{ agent: { id: string } }>(
    call(S.owner, 'POST', '/api/v1/agents', {
      name: 'Handbook',
      persona: 'You answer from the handbook.',
      model: 'default',
      visibility: 'platform',
    }),
  );
  agentId = a.agent.id;
  expect((await call(S.owner, 'POST', `/api/v1/agents/${agentId}/publish`)).status).toBe(201);
}, 30_000);
afterAll(async () => {
  await s?.close();
  await stub?.stop();
  t.cleanup();
});

describe("an agent's knowledge", () => {
  test('documents are chunked, embedded and listed', async () => {
    for (const [name, text] of [
      ['Travel policy', TRAVEL],
      ['Security policy', SECURITY],
    ] as const) {
      const r = await call(S.owner!, 'POST', `/api/v1/agents/${agentId}/knowledge`, {
        name,
        content_type: 'text/plain',
        text,
      });
      expect(r.status).toBe(201);
      const d = (
        (await r.json()) as {
          document: { id: string; chunks: number; bytes: number; embedding_model: string };
        }
      ).document;
      expect(d.chunks).toBeGreaterThanOrEqual(2);
      expect(d.bytes).toBe(Buffer.byteLength(text));
      expect(d.embedding_model).toBe('embed');
      docs[name] = d.id;
    }
    const list = await json<{ documents: { name: string }[] }>(
      call(S.member!, 'GET', `/api/v1/agents/${agentId}/knowledge`),
    );
    expect(list.documents.map((d) => d.name)).toEqual(['Travel policy', 'Security policy']);
  });

  test('HTML is read as its visible text, and a PDF sent as the body as its text layer', async () => {
    const h = await call(S.owner!, 'POST', `/api/v1/agents/${agentId}/knowledge`, {
      name: 'Canteen',
      content_type: 'text/html',
      text: HTML,
    });
    expect(h.status).toBe(201);
    const pdf = await s.request(
      'kn.localhost',
      `/api/v1/agents/${agentId}/knowledge?name=${encodeURIComponent('Parking.pdf')}`,
      {
        method: 'POST',
        headers: {
          cookie: S.owner!.cookie,
          'x-csrf-token': S.owner!.csrf,
          'content-type': 'application/pdf',
        },
        body: textPdf(PDF_LINES) as Uint8Array<ArrayBuffer>,
      },
    );
    expect(pdf.status).toBe(201);
    const p = await json<{ results: { document: { name: string }; text: string }[] }>(
      call(
        S.member!,
        'GET',
        `/api/v1/agents/${agentId}/knowledge/search?q=${encodeURIComponent('where do visitors park')}`,
      ),
    );
    expect(p.results[0]!.document.name).toBe('Parking.pdf');
    expect(p.results[0]!.text).toContain('bay seven');
    const c = await json<{ results: { document: { name: string }; text: string }[] }>(
      call(S.member!, 'GET', `/api/v1/agents/${agentId}/knowledge/search?q=lunch`),
    );
    expect(c.results[0]!.document.name).toBe('Canteen');
    expect(c.results[0]!.text).toContain('lunch is served from noon');
    // What a page does not show is not knowledge.
    const hidden = await json<{ results: { text: string }[] }>(
      call(S.member!, 'GET', `/api/v1/agents/${agentId}/knowledge/search?q=secretword`),
    );
    expect(hidden.results.some((r) => r.text.includes('secretword'))).toBe(false);
    // Not a PDF, though it says so: refused, nothing written.
    const fake = await s.request('kn.localhost', `/api/v1/agents/${agentId}/knowledge?name=fake.pdf`, {
      method: 'POST',
      headers: { cookie: S.owner!.cookie, 'x-csrf-token': S.owner!.csrf, 'content-type': 'application/pdf' },
      body: 'just text',
    });
    expect(fake.status).toBe(422);
    expect(((await fake.json()) as { error: { code: string } }).error.code).toBe('knowledge.unreadable');
    for (const name of ['Canteen', 'Parking.pdf']) {
      const list = await json<{ documents: { id: string; name: string }[] }>(
        call(S.owner!, 'GET', `/api/v1/agents/${agentId}/knowledge`),
      );
      const id = list.documents.find((d) => d.name === name)!.id;
      expect((await call(S.owner!, 'DELETE', `/api/v1/agents/${agentId}/knowledge/${id}`)).status).toBe(204);
    }
  });

  test('a question finds the chunk that answers it, from the right document', async () => {
    const r = await json<{ results: { document: { name: string }; text: string; score: number }[] }>(
      call(
        S.member!,
        'GET',
        `/api/v1/agents/${agentId}/knowledge/search?q=${encodeURIComponent('where do I send my hotel receipts')}`,
      ),
    );
    expect(r.results[0]!.document.name).toBe('Travel policy');
    expect(r.results[0]!.text).toContain('send the receipts to expenses@example.test');
    const p = await json<{ results: { document: { name: string }; text: string }[] }>(
      call(
        S.member!,
        'GET',
        `/api/v1/agents/${agentId}/knowledge/search?q=${encodeURIComponent('how long must passwords be')}`,
      ),
    );
    expect(p.results[0]!.document.name).toBe('Security policy');
    expect(p.results[0]!.text).toContain('sixteen characters');
  });

  test('a chat with the agent is given the chunk as a numbered source and cites it', async () => {
    const c = await json<{ conversation: { id: string } }>(
      call(S.member!, 'POST', '/api/v1/conversations', { agent_id: agentId }),
    );
    const before = stub.requests.length;
    const r = await call(S.member!, 'POST', `/api/v1/conversations/${c.conversation.id}/messages`, {
      content: 'Where do I send my hotel receipts?',
    });
    const text = await r.text();
    const done = JSON.parse(/event: done\ndata: (.*)\n/.exec(text)![1]!) as {
      message: { citations: { n: number; document: { name: string }; text: string }[] };
    };
    expect(done.message.citations[0]).toMatchObject({ n: 1, document: { name: 'Travel policy' } });
    expect(done.message.citations[0]!.text).toContain('expenses@example.test');
    const sent = stub.requests.slice(before).find((x) => x.path.endsWith('/chat/completions'))!.body as {
      messages: { role: string; content: string }[];
    };
    expect(sent.messages[0]).toEqual({ role: 'system', content: 'You answer from the handbook.' });
    expect(sent.messages[1]!.role).toBe('system');
    expect(sent.messages[1]!.content).toContain('[1] (Travel policy');
    expect(sent.messages[1]!.content).toContain('expenses@example.test');
    // Stored with the answer.
    const after = await json<{ messages: { role: string; citations?: { document: { name: string } }[] }[] }>(
      call(S.member!, 'GET', `/api/v1/conversations/${c.conversation.id}`),
    );
    expect(after.messages.at(-1)!.citations![0]!.document.name).toBe('Travel policy');
    // The embeddings were metered as the agent's usage.
    await s.ai.meter.flush();
    const kn = (await json<{ id: string }>(s.operatorApi('GET', '/platforms/kn'))).id;
    const rows = await s.app.platformDbs.use(kn, (db) =>
      db
        .query<{ n: number }, [string]>(
          "SELECT count(*) AS n FROM usage_events WHERE kind = 'embeddings' AND agent_id = ?",
        )
        .get(agentId),
    );
    expect(rows!.n).toBeGreaterThanOrEqual(3);
  });

  test('attack table: who may add, what is read, the quota, and other platforms', async () => {
    const cases: [string, Session, string, string, unknown, number, string][] = [
      [
        'a member adds a document',
        S.member!,
        'POST',
        `/api/v1/agents/${agentId}/knowledge`,
        { name: 'x', text: 'y' },
        403,
        'auth.forbidden',
      ],
      [
        'a Word document',
        S.owner!,
        'POST',
        `/api/v1/agents/${agentId}/knowledge`,
        { name: 'x', content_type: 'application/msword', text: 'y' },
        415,
        'knowledge.type_unsupported',
      ],
      [
        'a PDF as JSON text',
        S.owner!,
        'POST',
        `/api/v1/agents/${agentId}/knowledge`,
        { name: 'x', content_type: 'application/pdf', text: '%PDF' },
        400,
        'knowledge.invalid',
      ],
      [
        'HTML with no visible text',
        S.owner!,
        'POST',
        `/api/v1/agents/${agentId}/knowledge`,
        { name: 'x', content_type: 'text/html', text: '<script>alert(1)</script>' },
        422,
        'knowledge.unreadable',
      ],
      [
        'no text',
        S.owner!,
        'POST',
        `/api/v1/agents/${agentId}/knowledge`,
        { name: 'x', text: '  ' },
        400,
        'knowledge.invalid',
      ],
      [
        'past the quota',
        S.owner!,
        'POST',
        `/api/v1/agents/${agentId}/knowledge`,
        { name: 'big', text: 'word '.repeat(800) },
        409,
        'knowledge.quota_exceeded',
      ],
      [
        'another platform lists it',
        S.other!,
        'GET',
        `/api/v1/agents/${agentId}/knowledge`,
        undefined,
        404,
        'agent.not_found',
      ],
      [
        'another platform searches it',
        S.other!,
        'GET',
        `/api/v1/agents/${agentId}/knowledge/search?q=receipts`,
        undefined,
        404,
        'agent.not_found',
      ],
      [
        'another platform adds to it',
        S.other!,
        'POST',
        `/api/v1/agents/${agentId}/knowledge`,
        { name: 'x', text: 'y' },
        404,
        'agent.not_found',
      ],
      [
        'a member removes a document',
        S.member!,
        'DELETE',
        `/api/v1/agents/${agentId}/knowledge/${docs['Travel policy']}`,
        undefined,
        403,
        'auth.forbidden',
      ],
      [
        'an empty search',
        S.member!,
        'GET',
        `/api/v1/agents/${agentId}/knowledge/search?q=`,
        undefined,
        400,
        'knowledge.invalid',
      ],
    ];
    for (const [what, se, method, path, body, status, code] of cases) {
      const r = await call(se, method, path, body);
      const e = ((await r.json()) as { error?: { code: string } }).error;
      expect({ what, status: r.status, code: e?.code }).toEqual({ what, status, code });
    }
    // Nothing was written by a refused upload.
    const list = await json<{ documents: unknown[] }>(
      call(S.owner!, 'GET', `/api/v1/agents/${agentId}/knowledge`),
    );
    expect(list.documents).toHaveLength(2);
  });

  test('removing a document removes its chunks from both indexes', async () => {
    expect(
      (await call(S.owner!, 'DELETE', `/api/v1/agents/${agentId}/knowledge/${docs['Travel policy']}`)).status,
    ).toBe(204);
    const r = await json<{ results: { document: { name: string } }[] }>(
      call(
        S.member!,
        'GET',
        `/api/v1/agents/${agentId}/knowledge/search?q=${encodeURIComponent('hotel receipts')}`,
      ),
    );
    expect(r.results.every((x) => x.document.name === 'Security policy')).toBe(true);
    const audit = await json<{ entries: { action: string }[] }>(
      call(S.owner!, 'GET', '/api/v1/audit?action=agent.knowledge_&limit=50'),
    );
    expect(audit.entries).toEqual([]);
    const all = await json<{ entries: { action: string }[] }>(
      call(S.owner!, 'GET', '/api/v1/audit?action=agent.&limit=50'),
    );
    expect(all.entries.map((e) => e.action).filter((a) => a.startsWith('agent.knowledge'))).toEqual([
      'agent.knowledge_added',
      'agent.knowledge_added',
      'agent.knowledge_added',
      'agent.knowledge_added',
      'agent.knowledge_removed',
      'agent.knowledge_removed',
      'agent.knowledge_removed',
    ]);
  });
});

describe('ai_settings.quality_gates.require_citations', () => {
  /** One turn with the agent; the stub answers `You said: <content>`, so the content decides what the answer cites. */
  async function turn(content: string) {
    const c = await json<{ conversation: { id: string } }>(
      call(S.member!, 'POST', '/api/v1/conversations', { agent_id: agentId }),
    );
    const r = await call(S.member!, 'POST', `/api/v1/conversations/${c.conversation.id}/messages`, {
      content,
    });
    expect(r.status).toBe(200);
    const text = await r.text();
    const event = (name: string) => {
      const m = new RegExp(`event: ${name}\ndata: (.*)\n`).exec(text);
      return m ? (JSON.parse(m[1]!) as Record<string, unknown>) : null;
    };
    const stored = await json<{
      messages: {
        role: string;
        status: string;
        error?: string;
        citations?: { n: number; cited?: boolean }[];
      }[];
    }>(call(S.member!, 'GET', `/api/v1/conversations/${c.conversation.id}`));
    return { done: event('done'), error: event('error'), last: stored.messages.at(-1)! };
  }
  const gate = async (on: boolean) =>
    expect(
      (
        await s.operatorApi('PATCH', '/platforms/kn', {
          blueprint: { ai_settings: { quality_gates: { require_citations: on } } },
        })
      ).status,
    ).toBe(200);

  test('on: an answer that cites none of its sources is refused and stored as an error', async () => {
    await gate(true);
    for (const content of [
      'Where do I send my hotel receipts?',
      // Brackets that are not a source: out of range, not a number, a range.
      'Where do I send my hotel receipts? [9] [a] [1-2]',
    ]) {
      const t = await turn(content);
      expect(t.done).toBeNull();
      expect(t.error).toMatchObject({ code: 'quality.citations_missing' });
      expect(t.last).toMatchObject({ role: 'assistant', status: 'error' });
      expect(t.last.error).toContain('require_citations');
    }
  });

  test('on: an answer that cites a source completes, the cited source marked', async () => {
    const t = await turn('Where do I send my hotel receipts? See [1].');
    expect(t.error).toBeNull();
    expect(t.done).not.toBeNull();
    expect(t.last.status).toBe('complete');
    expect(t.last.citations![0]).toMatchObject({ n: 1, cited: true });
    expect(t.last.citations!.slice(1).every((x) => x.cited === false)).toBe(true);
  });

  test('off: the same uncited answer completes, its sources marked uncited', async () => {
    await gate(false);
    const t = await turn('Where do I send my hotel receipts?');
    expect(t.error).toBeNull();
    expect(t.last.status).toBe('complete');
    expect(t.last.citations!.length).toBeGreaterThan(0);
    expect(t.last.citations!.every((x) => x.cited === false)).toBe(true);
  });

  test('citedSources reads [n], [n, m] and [n][m] within range only', async () => {
    const { citedSources } = await import('./conversations.service.ts');
    expect([...citedSources('a [1] b [2, 3] c [3][4]', 3)].sort()).toEqual([1, 2, 3]);
    expect([...citedSources('[0] [4] [x] [1-2] [ 2 ]', 3)]).toEqual([]);
    expect([...citedSources('no brackets', 3)]).toEqual([]);
  });
});

describe('chunking', () => {
  test('whole paragraphs while they fit; a long one at sentence ends; a long sentence at a space', async () => {
    const { chunkText } = await import('./knowledge.service.ts');
    expect(chunkText('one.\n\ntwo.\n\nthree.', 100)).toEqual(['one.\n\ntwo.\n\nthree.']);
    expect(chunkText('aaaa aaaa.\n\nbbbb bbbb.', 12)).toEqual(['aaaa aaaa.', 'bbbb bbbb.']);
    const long = 'First sentence here. Second sentence here. Third one.';
    const parts = chunkText(long, 25);
    expect(parts.every((p) => p.length <= 25)).toBe(true);
    expect(parts.join(' ').replace(/\s+/g, ' ')).toBe(long);
    const word = 'x'.repeat(70);
    expect(chunkText(word, 30)).toEqual(['x'.repeat(30), 'x'.repeat(30), 'x'.repeat(10)]);
    expect(chunkText('  \n\n  ', 30)).toEqual([]);
  });
});
