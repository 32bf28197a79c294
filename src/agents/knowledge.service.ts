/**
 * An agent's knowledge (issue 12 item 2): text, Markdown, HTML and PDF documents cut into chunks,
 * embedded through the AI service (the platform's policy, allowed providers, budgets and
 * metering apply; usage is the agent's), kept in the platform's database in a full-text index
 * (FTS5) and a vector index (sqlite-vec), and searched by both, merged by reciprocal rank. A
 * chat with the agent is given the best chunks as numbered sources, and its answer carries them
 * as citations.
 */
import { type AiDeps, embed, platformAiPolicy } from '../ai/index.ts';
import { actorOf, type PlatformRequestContext } from '../identity/index.ts';
import { AppError } from '../shared/errors.ts';
import { newId } from '../shared/ids.ts';
import { editableAgent, readableAgent } from './agents.service.ts';
import { documentText, isKnowledgeType, KNOWLEDGE_TYPES } from './extract.ts';
import {
  allChunks,
  type ChunkHit,
  chunksByIds,
  deleteDoc,
  ensureVectorIndex,
  findDoc,
  insertChunks,
  insertDoc,
  type KnowledgeDocRow,
  keywordSearch,
  knowledgeBytes,
  listDocs,
  replaceVectorIndex,
  vectorIndex,
  vectorSearch,
} from './knowledge.repository.ts';

export const DEFAULT_CHUNK_CHARS = 1200;
export const DEFAULT_KNOWLEDGE_BYTES = 50 * 1024 * 1024;
/** The most one document may hold (its text, in bytes). */
export const MAX_DOC_BYTES = 2 * 1024 * 1024;
/** How many sources a chat turn is given. */
export const SOURCES_PER_TURN = 4;

const bad = (path: string, reason: string, code = 'knowledge.invalid', status = 400) =>
  new AppError(code, `${path.slice(1)}: ${reason}`, status, [{ path, reason }]);

function settings(c: PlatformRequestContext) {
  const k = c.app.config.knowledge;
  if (!k)
    throw new AppError(
      'knowledge.not_configured',
      'this instance has no embedding model for knowledge (knowledge.embedding_model in soulfra.yaml)',
      409,
    );
  return {
    model: k.embedding_model,
    chunkChars: k.chunk_chars ?? DEFAULT_CHUNK_CHARS,
    maxBytes: k.max_bytes_per_platform ?? DEFAULT_KNOWLEDGE_BYTES,
  };
}

/**
 * Cuts text into chunks of about `size` characters: whole paragraphs while they fit, a long
 * paragraph at sentence ends, a sentence longer than `size` at a space (or hard, without one).
 */
export function chunkText(text: string, size: number): string[] {
  const out: string[] = [];
  let cur = '';
  const push = (piece: string) => {
    if (!piece.trim()) return;
    if (cur && cur.length + piece.length + 2 > size) {
      out.push(cur.trim());
      cur = '';
    }
    if (piece.length <= size) {
      cur = cur ? `${cur}\n\n${piece}` : piece;
      return;
    }
    // Too long alone: by sentences, then by words.
    const sentences = piece.match(/[^.!?]+[.!?]+(\s+|$)|[^.!?]+$/g) ?? [piece];
    for (const s of sentences) {
      let rest = s;
      while (rest.length > size) {
        const cut = rest.lastIndexOf(' ', size);
        const at = cut > size / 2 ? cut : size;
        if (cur) {
          out.push(cur.trim());
          cur = '';
        }
        out.push(rest.slice(0, at).trim());
        rest = rest.slice(at);
      }
      if (cur && cur.length + rest.length > size) {
        out.push(cur.trim());
        cur = '';
      }
      cur += rest;
    }
  };
  for (const p of text.replace(/\r\n?/g, '\n').split(/\n\s*\n/)) push(p.trim());
  if (cur.trim()) out.push(cur.trim());
  return out;
}

function docView(d: KnowledgeDocRow) {
  return {
    id: d.id,
    name: d.name,
    content_type: d.content_type,
    bytes: d.bytes,
    chunks: d.chunks,
    embedding_model: d.embedding_model,
    created_at: new Date(d.created_at).toISOString(),
  };
}

function callerOf(c: PlatformRequestContext, agentId: string) {
  const p = c.principal;
  return {
    platform: c.platform,
    db: c.db,
    userId: p && (p.kind === 'user' || p.kind === 'api_key') ? p.userId : null,
    keyId: p?.kind === 'api_key' ? p.keyId : null,
    agentId,
  };
}

async function vectors(
  deps: AiDeps,
  c: PlatformRequestContext,
  agentId: string,
  model: string,
  texts: string[],
) {
  const out: number[][] = [];
  // In batches: a provider takes a bounded input list.
  for (let i = 0; i < texts.length; i += 64) {
    const r = await embed(
      deps,
      callerOf(c, agentId),
      platformAiPolicy(c.blueprint()),
      { model, input: texts.slice(i, i + 64) },
      AbortSignal.timeout(60_000),
    );
    out.push(...r.vectors);
  }
  return out;
}

/**
 * Adds a document: `text` (a JSON upload) or `bytes` (a raw one: the body is the file) of one of
 * the types extract.ts reads, named `name`.
 */
export async function addKnowledge(
  deps: AiDeps,
  c: PlatformRequestContext,
  agentId: string,
  input: { name: unknown; content_type: unknown; text?: unknown; bytes?: Uint8Array },
) {
  const a = editableAgent(c, agentId);
  const s = settings(c);
  const name = typeof input.name === 'string' ? input.name.trim() : '';
  if (!name || name.length > 200) throw bad('/name', 'must be 1 to 200 characters');
  const type = input.content_type ?? 'text/plain';
  if (typeof type !== 'string' || !isKnowledgeType(type))
    throw bad(
      '/content_type',
      `must be one of: ${KNOWLEDGE_TYPES.join(', ')}`,
      'knowledge.type_unsupported',
      415,
    );
  let raw: Uint8Array;
  if (input.bytes) raw = input.bytes;
  else {
    if (typeof input.text !== 'string' || !input.text.trim()) throw bad('/text', 'must be the document text');
    if (type === 'application/pdf')
      throw bad('/text', 'a PDF is sent as the request body itself, not as JSON text');
    raw = new TextEncoder().encode(input.text);
  }
  if (raw.byteLength > MAX_DOC_BYTES)
    throw bad('/body', `is ${raw.byteLength} bytes: at most ${MAX_DOC_BYTES}`, 'knowledge.too_large', 413);
  const text = await documentText(raw, type);
  const bytes = Buffer.byteLength(text);
  const used = knowledgeBytes(c.db);
  if (used + bytes > s.maxBytes)
    throw new AppError(
      'knowledge.quota_exceeded',
      `this platform's knowledge would pass its quota (${used} + ${bytes} > ${s.maxBytes} bytes)`,
      409,
    );
  const chunks = chunkText(text, s.chunkChars);
  // Embedded before anything is written: a refusal (policy, budget, provider) leaves nothing.
  const vecs = await vectors(deps, c, a.id, s.model, chunks);
  const dims = vecs[0]?.length ?? 0;
  if (!dims || vecs.some((v) => v.length !== dims))
    throw new AppError(
      'knowledge.bad_embeddings',
      'the embedding model answered vectors of no single dimension',
      502,
    );
  await reembedIfStale(deps, c);
  const idx = vectorIndex(c.db);
  if (idx && idx.dims !== dims)
    throw new AppError(
      'knowledge.dimension_changed',
      `the model ${s.model} now answers ${dims}-dimension vectors; the index holds ${idx.dims}: give the changed model a new alias`,
      409,
    );
  const id = newId('kdc');
  c.db.transaction(() => {
    ensureVectorIndex(c.db, s.model, dims);
    insertDoc(c.db, {
      id,
      agent_id: a.id,
      name,
      content_type: type,
      bytes,
      chunks: chunks.length,
      embedding_model: s.model,
      created_by: actorOf(c.principal),
      created_at: c.app.clock.now(),
    });
    insertChunks(
      c.db,
      id,
      a.id,
      chunks.map((t, i) => ({ text: t, vector: Float32Array.from(vecs[i]!) })),
    );
    c.app.audit.append(c.db, {
      actor: actorOf(c.principal),
      action: 'agent.knowledge_added',
      target: `agent:${a.id}`,
      details: { doc: id, name, bytes, chunks: chunks.length },
    });
  })();
  return { document: docView(findDoc(c.db, a.id, id)!) };
}

export function knowledgeDocs(c: PlatformRequestContext, agentId: string) {
  const a = readableAgent(c, agentId);
  return { documents: listDocs(c.db, a.id).map(docView) };
}

export function removeKnowledge(c: PlatformRequestContext, agentId: string, docId: string): void {
  const a = editableAgent(c, agentId);
  c.db.transaction(() => {
    if (!deleteDoc(c.db, a.id, docId)) throw new AppError('knowledge.not_found', 'no such document', 404);
    c.app.audit.append(c.db, {
      actor: actorOf(c.principal),
      action: 'agent.knowledge_removed',
      target: `agent:${a.id}`,
      details: { doc: docId },
    });
  })();
}

/**
 * When the instance's embedding model is not the one the platform's vector index holds (the
 * operator changed `knowledge.embedding_model`), every chunk is embedded again with the new
 * one (through the AI service, each agent's chunks as that agent's usage) and the index is
 * rebuilt in one transaction: until it commits, the old index answers; if embedding fails,
 * nothing changes and the error is the caller's.
 */
export async function reembedIfStale(deps: AiDeps, c: PlatformRequestContext): Promise<boolean> {
  const s = settings(c);
  const current = vectorIndex(c.db);
  if (!current || current.model === s.model) return false;
  const chunks = allChunks(c.db);
  const out: { id: number; agent_id: string; vector: Float32Array }[] = [];
  let dims = 0;
  const byAgent = new Map<string, typeof chunks>();
  for (const ch of chunks) byAgent.set(ch.agent_id, [...(byAgent.get(ch.agent_id) ?? []), ch]);
  for (const [agentId, list] of byAgent) {
    const vecs = await vectors(
      deps,
      c,
      agentId,
      s.model,
      list.map((x) => x.text),
    );
    list.forEach((ch, i) => {
      const v = vecs[i]!;
      dims ||= v.length;
      if (v.length !== dims)
        throw new AppError(
          'knowledge.bad_embeddings',
          'the embedding model answered vectors of no single dimension',
          502,
        );
      out.push({ id: ch.id, agent_id: ch.agent_id, vector: Float32Array.from(v) });
    });
  }
  c.db.transaction(() => {
    replaceVectorIndex(c.db, s.model, dims || current.dims, out);
    c.app.audit.append(c.db, {
      actor: actorOf(c.principal),
      action: 'knowledge.reembedded',
      target: `platform:${c.platform.id}`,
      details: { from: current.model, to: s.model, chunks: out.length, dims: dims || current.dims },
    });
  })();
  return true;
}

/** The words of a query as an FTS5 expression: each quoted, any of them. */
function ftsQuery(q: string): string | null {
  const words = (q.toLowerCase().match(/[\p{L}\p{N}]{2,}/gu) ?? []).slice(0, 32);
  return words.length ? words.map((w) => `"${w}"`).join(' OR ') : null;
}

/**
 * The chunks of an agent's knowledge that best answer `q`: full-text (BM25) and vector
 * (cosine) results merged by reciprocal rank fusion (score Σ 1/(60 + rank)).
 */
export async function searchAgentKnowledge(
  deps: AiDeps,
  c: PlatformRequestContext,
  agentId: string,
  q: string,
  k = SOURCES_PER_TURN,
): Promise<(ChunkHit & { score: number })[]> {
  if (!c.app.config.knowledge || listDocs(c.db, agentId).length === 0) return [];
  const s = settings(c);
  await reembedIfStale(deps, c);
  const fts = ftsQuery(q);
  const keyword = fts ? keywordSearch(c.db, agentId, fts, k * 4) : [];
  const [qv] = await vectors(deps, c, agentId, s.model, [q]);
  const semantic = qv ? vectorSearch(c.db, agentId, Float32Array.from(qv), k * 4) : [];
  const score = new Map<number, number>();
  for (const list of [keyword, semantic])
    for (const [rank, id] of list.entries()) score.set(id, (score.get(id) ?? 0) + 1 / (60 + rank + 1));
  const best = [...score.entries()].sort((a, b) => b[1] - a[1]).slice(0, k);
  const hits = chunksByIds(
    c.db,
    best.map(([id]) => id),
  );
  return hits.map((h, i) => ({ ...h, score: best[i]![1] }));
}

export async function searchKnowledge(
  deps: AiDeps,
  c: PlatformRequestContext,
  agentId: string,
  q: string | undefined,
) {
  const a = readableAgent(c, agentId);
  if (!q?.trim()) throw bad('/q', 'must be the question to search for');
  const hits = await searchAgentKnowledge(deps, c, a.id, q.trim().slice(0, 2000));
  return {
    results: hits.map((h) => ({
      chunk: h.id,
      document: { id: h.doc_id, name: h.doc_name },
      seq: h.seq,
      text: h.text,
      score: h.score,
    })),
  };
}

/** The system message that hands a turn its sources, numbered as the answer cites them. */
export function sourcesMessage(hits: ChunkHit[], requireCitations: boolean): string {
  const lines = hits.map((h, i) => `[${i + 1}] (${h.doc_name}, part ${h.seq + 1})\n${h.text}`);
  return [
    'Answer from these sources where they help. Cite each source you use by its number in brackets, like [1].',
    requireCitations
      ? 'Every answer must cite at least one source; say so when the sources do not answer.'
      : '',
    '',
    lines.join('\n\n'),
  ]
    .filter((x, i) => x || i === 2)
    .join('\n');
}
