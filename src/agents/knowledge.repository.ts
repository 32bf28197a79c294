import type { Database } from 'bun:sqlite';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';

/** A knowledge document's row. */
export interface KnowledgeDocRow {
  id: string;
  agent_id: string;
  name: string;
  content_type: string;
  bytes: number;
  chunks: number;
  embedding_model: string;
  created_by: string;
  created_at: number;
}

/** A chunk found by a search, with what to cite. */
export interface ChunkHit {
  id: number;
  doc_id: string;
  doc_name: string;
  seq: number;
  text: string;
}

const loaded = new WeakSet<Database>();

/**
 * sqlite-vec's loadable library: beside the executable (`npm run build` puts `vec0.so` in
 * dist/), else the npm package's (`sqlite-vec-<os>-<arch>`). Resolved here rather than through
 * the `sqlite-vec` module, whose `import.meta.resolve` does not survive `bun build --compile`.
 */
function vecLibrary(): string {
  const ext = process.platform === 'darwin' ? 'dylib' : process.platform === 'win32' ? 'dll' : 'so';
  const beside = join(dirname(process.execPath), `vec0.${ext}`);
  if (existsSync(beside)) return beside;
  const os = process.platform === 'win32' ? 'windows' : process.platform;
  return Bun.resolveSync(`sqlite-vec-${os}-${process.arch}/vec0.${ext}`, import.meta.dir);
}

/** Loads sqlite-vec into this connection (once). */
export function vec(db: Database): Database {
  if (!loaded.has(db)) {
    db.loadExtension(vecLibrary());
    loaded.add(db);
  }
  return db;
}

/** The vector index's model and dimension, or null before the first document. */
export function vectorIndex(db: Database): { model: string; dims: number } | null {
  return db
    .query<{ model: string; dims: number }, []>('SELECT model, dims FROM knowledge_index WHERE id = 1')
    .get();
}

/**
 * Makes the vector index for `model` with `dims` dimensions (cosine distance, partitioned by
 * agent). An index of another model or dimension is dropped with every vector in it: the
 * caller re-embeds (its documents' `embedding_model` says which are stale).
 */
export function ensureVectorIndex(db: Database, model: string, dims: number): void {
  const now = vectorIndex(db);
  if (now && now.model === model && now.dims === dims) return;
  vec(db).exec('DROP TABLE IF EXISTS knowledge_vec');
  db.exec(
    `CREATE VIRTUAL TABLE knowledge_vec USING vec0(agent_id text partition key, embedding float[${Math.trunc(dims)}] distance_metric=cosine)`,
  );
  db.query(
    'INSERT INTO knowledge_index (id, model, dims) VALUES (1, ?, ?) ON CONFLICT (id) DO UPDATE SET model = excluded.model, dims = excluded.dims',
  ).run(model, dims);
}

export function insertDoc(db: Database, d: KnowledgeDocRow): void {
  db.query(
    `INSERT INTO knowledge_docs (id, agent_id, name, content_type, bytes, chunks, embedding_model, created_by, created_at)
     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
  ).run(
    d.id,
    d.agent_id,
    d.name,
    d.content_type,
    d.bytes,
    d.chunks,
    d.embedding_model,
    d.created_by,
    d.created_at,
  );
}

/** Stores a document's chunks: text (and through triggers the full-text index) and vectors. */
export function insertChunks(
  db: Database,
  docId: string,
  agentId: string,
  chunks: { text: string; vector: Float32Array }[],
): void {
  const text = db.query<{ id: number }, [string, string, number, string]>(
    'INSERT INTO knowledge_chunks (doc_id, agent_id, seq, text) VALUES (?, ?, ?, ?) RETURNING id',
  );
  const v = vec(db).query('INSERT INTO knowledge_vec (rowid, agent_id, embedding) VALUES (?, ?, ?)');
  chunks.forEach((c, i) => {
    const { id } = text.get(docId, agentId, i, c.text)!;
    v.run(id, agentId, c.vector);
  });
}

export function listDocs(db: Database, agentId: string): KnowledgeDocRow[] {
  return db
    .query<KnowledgeDocRow, [string]>(
      'SELECT * FROM knowledge_docs WHERE agent_id = ? ORDER BY created_at, id',
    )
    .all(agentId);
}

export function findDoc(db: Database, agentId: string, id: string): KnowledgeDocRow | null {
  return db
    .query<KnowledgeDocRow, [string, string]>('SELECT * FROM knowledge_docs WHERE agent_id = ? AND id = ?')
    .get(agentId, id);
}

/** Deletes a document with its chunks, their full-text rows (trigger) and their vectors. */
export function deleteDoc(db: Database, agentId: string, id: string): boolean {
  const ids = db.query<{ id: number }, [string]>('SELECT id FROM knowledge_chunks WHERE doc_id = ?').all(id);
  if (vectorIndex(db)) {
    const del = vec(db).query('DELETE FROM knowledge_vec WHERE rowid = ?');
    for (const r of ids) del.run(r.id);
  }
  db.query('DELETE FROM knowledge_chunks WHERE doc_id = ?').run(id);
  return db.query('DELETE FROM knowledge_docs WHERE agent_id = ? AND id = ?').run(agentId, id).changes > 0;
}

/** Deletes every vector of an agent (before the agent itself goes). */
export function deleteAgentVectors(db: Database, agentId: string): void {
  if (!vectorIndex(db)) return;
  const ids = db
    .query<{ id: number }, [string]>('SELECT id FROM knowledge_chunks WHERE agent_id = ?')
    .all(agentId);
  const del = vec(db).query('DELETE FROM knowledge_vec WHERE rowid = ?');
  for (const r of ids) del.run(r.id);
}

/** Whether the platform holds any document (of any agent). */
export function hasAnyDoc(db: Database): boolean {
  return db.query('SELECT 1 FROM knowledge_docs LIMIT 1').get() !== null;
}

/** The platform's bytes of knowledge (its quota). */
export function knowledgeBytes(db: Database): number {
  return db.query<{ n: number | null }, []>('SELECT sum(bytes) AS n FROM knowledge_docs').get()?.n ?? 0;
}

/** Full-text search (FTS5, BM25 ranked) over one agent's chunks: chunk ids, best first. */
export function keywordSearch(db: Database, agentId: string, match: string, k: number): number[] {
  return db
    .query<{ id: number }, [string, string, number]>(
      `SELECT c.id FROM knowledge_fts f JOIN knowledge_chunks c ON c.id = f.rowid
       WHERE knowledge_fts MATCH ? AND c.agent_id = ? ORDER BY bm25(knowledge_fts) LIMIT ?`,
    )
    .all(match, agentId, k)
    .map((r) => r.id);
}

/** Nearest chunks of one agent to `vector` (cosine), best first. */
export function vectorSearch(db: Database, agentId: string, vector: Float32Array, k: number): number[] {
  if (!vectorIndex(db)) return [];
  return vec(db)
    .query<{ rowid: number }, [Float32Array, number, string]>(
      'SELECT rowid FROM knowledge_vec WHERE embedding MATCH ? AND k = ? AND agent_id = ? ORDER BY distance',
    )
    .all(vector, k, agentId)
    .map((r) => r.rowid);
}

export function chunksByIds(db: Database, ids: number[]): ChunkHit[] {
  if (ids.length === 0) return [];
  const rows = db
    .query<ChunkHit, number[]>(
      `SELECT c.id, c.doc_id, d.name AS doc_name, c.seq, c.text FROM knowledge_chunks c
       JOIN knowledge_docs d ON d.id = c.doc_id WHERE c.id IN (${ids.map(() => '?').join(',')})`,
    )
    .all(...ids);
  const by = new Map(rows.map((r) => [r.id, r]));
  return ids.map((id) => by.get(id)).filter((x): x is ChunkHit => !!x);
}

/** Every chunk of the platform (re-embedding), by agent. */
export function allChunks(db: Database): { id: number; agent_id: string; text: string }[] {
  return db
    .query<{ id: number; agent_id: string; text: string }, []>(
      'SELECT id, agent_id, text FROM knowledge_chunks ORDER BY agent_id, id',
    )
    .all();
}

/**
 * Replaces the vector index with one of `model` holding `vectors` (by chunk id), and records
 * that every document is embedded with it. Inside the caller's transaction.
 */
export function replaceVectorIndex(
  db: Database,
  model: string,
  dims: number,
  vectors: { id: number; agent_id: string; vector: Float32Array }[],
): void {
  vec(db).exec('DROP TABLE IF EXISTS knowledge_vec');
  db.query('DELETE FROM knowledge_index').run();
  ensureVectorIndex(db, model, dims);
  const ins = db.query('INSERT INTO knowledge_vec (rowid, agent_id, embedding) VALUES (?, ?, ?)');
  for (const v of vectors) ins.run(v.id, v.agent_id, v.vector);
  db.query('UPDATE knowledge_docs SET embedding_model = ?').run(model);
}
