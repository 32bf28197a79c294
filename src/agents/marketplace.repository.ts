import type { Database } from 'bun:sqlite';
import { vec } from './knowledge.repository.ts';

/**
 * `submitted`: waiting for the community's votes (community approval); `in_review`: in the
 * moderators' queue (manual approval, or held by the safety checks or the community).
 */
export type ListingStatus = 'submitted' | 'in_review' | 'published' | 'rejected' | 'suspended' | 'revoked';

export interface ListingRow {
  id: string;
  agent_id: string;
  version: number;
  title: string;
  summary: string;
  category: string;
  tags: string;
  price_model: 'free' | 'one_time' | 'subscription';
  price_minor: number;
  currency: string;
  status: ListingStatus;
  created_by: string;
  created_at: number;
  updated_at: number;
  /** Why it waits in review (a safety rule, the community's rejections), or null. */
  review_note?: string | null;
}

export interface ListingStats {
  installs: number;
  reviews: number;
  rating: number | null;
  open_reports: number;
}

export function insertListing(db: Database, l: ListingRow): void {
  db.query(
    `INSERT INTO listings (id, agent_id, version, title, summary, category, tags, price_model, price_minor, currency,
       status, created_by, created_at, updated_at, review_note) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
  ).run(
    l.id,
    l.agent_id,
    l.version,
    l.title,
    l.summary,
    l.category,
    l.tags,
    l.price_model,
    l.price_minor,
    l.currency,
    l.status,
    l.created_by,
    l.created_at,
    l.updated_at,
    l.review_note ?? null,
  );
}

export function findListing(db: Database, id: string): ListingRow | null {
  return db.query<ListingRow, [string]>('SELECT * FROM listings WHERE id = ?').get(id);
}

export function listingOfAgent(db: Database, agentId: string): ListingRow | null {
  return db.query<ListingRow, [string]>('SELECT * FROM listings WHERE agent_id = ?').get(agentId);
}

/** A new status (and why it waits in review, if it does); the vector index follows. */
export function setListingStatus(
  db: Database,
  id: string,
  status: ListingStatus,
  now: number,
  note: string | null = null,
): void {
  db.query('UPDATE listings SET status = ?, review_note = ?, updated_at = ? WHERE id = ?').run(
    status,
    note,
    now,
    id,
  );
  syncListingVector(db, id);
}

/** A moderator's edit of what a listing says. */
export function editListing(
  db: Database,
  id: string,
  e: Pick<ListingRow, 'title' | 'summary' | 'category' | 'tags'>,
  now: number,
): void {
  db.query(
    'UPDATE listings SET title = ?, summary = ?, category = ?, tags = ?, updated_at = ? WHERE id = ?',
  ).run(e.title, e.summary, e.category, e.tags, now, id);
}

export function updateListingOffer(
  db: Database,
  id: string,
  u: Pick<
    ListingRow,
    | 'version'
    | 'title'
    | 'summary'
    | 'category'
    | 'tags'
    | 'price_model'
    | 'price_minor'
    | 'currency'
    | 'status'
  > & { review_note?: string | null },
  now: number,
): void {
  db.query(
    `UPDATE listings SET version = ?, title = ?, summary = ?, category = ?, tags = ?, price_model = ?, price_minor = ?,
       currency = ?, status = ?, review_note = ?, updated_at = ? WHERE id = ?`,
  ).run(
    u.version,
    u.title,
    u.summary,
    u.category,
    u.tags,
    u.price_model,
    u.price_minor,
    u.currency,
    u.status,
    u.review_note ?? null,
    now,
    id,
  );
  syncListingVector(db, id);
}

/**
 * Published listings for a full-text query (`match`: FTS5 expressions over title, summary and
 * tags, best first: e.g. the words as typed, then with the last one as a prefix), or the newest
 * ones without one. Ranked in tiers: listings whose title matches each expression in turn, then
 * those matching each elsewhere, a tier read only while fewer than `limit` are found; within a
 * tier, the `pool` most recently listed matches, best BM25 first (title 10, summary 3, tags 5:
 * the index's rank). A query's work is bounded by the pool, not by how many listings match, and
 * a prefix (which FTS5 must expand in full) is read only when the words as typed match too few
 * (docs/performance.md, "The marketplace and agents").
 */
export function searchListings(
  db: Database,
  o: { match: string | readonly string[] | null; category: string | null; limit: number; pool?: number },
): ListingRow[] {
  const exprs = typeof o.match === 'string' ? [o.match] : (o.match ?? []);
  if (exprs.length === 0)
    return db
      .query<ListingRow, [string | null, string | null, number]>(
        `SELECT * FROM listings WHERE status = 'published' AND (? IS NULL OR category = ?)
         ORDER BY updated_at DESC, id DESC LIMIT ?`,
      )
      .all(o.category, o.category, o.limit);
  const pool = Math.max(o.pool ?? o.limit * 2, o.limit);
  const seen = new Set<number>();
  const order: number[] = [];
  for (const expr of [...exprs.map((m) => `title : (${m})`), ...exprs]) {
    const hits = o.category
      ? db
          .query<{ rowid: number; rank: number }, [string, string, number]>(
            `SELECT f.rowid, f.rank FROM listings_fts f JOIN listings l ON l.rowid = f.rowid
             WHERE listings_fts MATCH ? AND l.category = ? ORDER BY f.rowid DESC LIMIT ?`,
          )
          .all(expr, o.category, pool)
      : db
          .query<{ rowid: number; rank: number }, [string, number]>(
            'SELECT rowid, rank FROM listings_fts WHERE listings_fts MATCH ? ORDER BY rowid DESC LIMIT ?',
          )
          .all(expr, pool);
    hits.sort((a, b) => a.rank - b.rank);
    for (const h of hits)
      if (!seen.has(h.rowid)) {
        seen.add(h.rowid);
        order.push(h.rowid);
      }
    if (order.length >= o.limit) break;
  }
  return listingsByRowids(db, order.slice(0, o.limit));
}

/** Listings by rowid, in the order given (missing ones left out). */
export function listingsByRowids(db: Database, rowids: number[]): ListingRow[] {
  if (rowids.length === 0) return [];
  const rows = db
    .query<ListingRow & { rid: number }, number[]>(
      `SELECT rowid AS rid, * FROM listings WHERE rowid IN (${rowids.map(() => '?').join(',')})`,
    )
    .all(...rowids);
  const by = new Map(rows.map(({ rid, ...r }) => [rid, r as ListingRow]));
  return rowids.map((r) => by.get(r)).filter((x): x is ListingRow => !!x);
}

/**
 * What moderators look at: listings in review or waiting for votes, suspended ones (to restore
 * or revoke), and any with open reports.
 */
export function moderationQueue(db: Database): ListingRow[] {
  return db
    .query<ListingRow, []>(
      `SELECT * FROM listings WHERE status IN ('in_review', 'submitted', 'suspended')
          OR id IN (SELECT listing_id FROM listing_reports WHERE resolved_at IS NULL)
       ORDER BY updated_at, id`,
    )
    .all();
}

export function listingStats(db: Database, id: string): ListingStats {
  const q = <T>(sql: string) => db.query<T, [string]>(sql).get(id)!;
  const installs = q<{ n: number }>('SELECT count(*) AS n FROM listing_installs WHERE listing_id = ?').n;
  const r = q<{ n: number; avg: number | null }>(
    'SELECT count(*) AS n, avg(rating) AS avg FROM listing_reviews WHERE listing_id = ?',
  );
  const reports = q<{ n: number }>(
    'SELECT count(*) AS n FROM listing_reports WHERE listing_id = ? AND resolved_at IS NULL',
  ).n;
  return {
    installs,
    reviews: r.n,
    rating: r.avg === null ? null : Math.round(r.avg * 10) / 10,
    open_reports: reports,
  };
}

export function installOf(db: Database, listingId: string, userId: string): { version: number } | null {
  return db
    .query<{ version: number }, [string, string]>(
      'SELECT version FROM listing_installs WHERE listing_id = ? AND user_id = ?',
    )
    .get(listingId, userId);
}

export function upsertInstall(
  db: Database,
  listingId: string,
  userId: string,
  version: number,
  now: number,
): void {
  db.query(
    `INSERT INTO listing_installs (listing_id, user_id, version, installed_at) VALUES (?, ?, ?, ?)
     ON CONFLICT (listing_id, user_id) DO UPDATE SET version = excluded.version, installed_at = excluded.installed_at`,
  ).run(listingId, userId, version, now);
}

export function upsertReview(
  db: Database,
  r: { listingId: string; userId: string; version: number; rating: number; text: string; now: number },
): void {
  db.query(
    `INSERT INTO listing_reviews (listing_id, user_id, version, rating, text, created_at) VALUES (?, ?, ?, ?, ?, ?)
     ON CONFLICT (listing_id, user_id) DO UPDATE SET version = excluded.version, rating = excluded.rating,
       text = excluded.text, created_at = excluded.created_at`,
  ).run(r.listingId, r.userId, r.version, r.rating, r.text, r.now);
}

export function listReviews(
  db: Database,
  listingId: string,
): {
  user_id: string;
  name: string | null;
  version: number;
  rating: number;
  text: string;
  created_at: number;
}[] {
  return db
    .query<
      {
        user_id: string;
        name: string | null;
        version: number;
        rating: number;
        text: string;
        created_at: number;
      },
      [string]
    >(
      `SELECT r.user_id, u.name, r.version, r.rating, r.text, r.created_at FROM listing_reviews r
       LEFT JOIN users u ON u.id = r.user_id WHERE r.listing_id = ? ORDER BY r.created_at DESC`,
    )
    .all(listingId);
}

export function insertReport(
  db: Database,
  listingId: string,
  userId: string,
  reason: string,
  now: number,
): number {
  return db
    .query<{ id: number }, [string, string, string, number]>(
      'INSERT INTO listing_reports (listing_id, user_id, reason, created_at) VALUES (?, ?, ?, ?) RETURNING id',
    )
    .get(listingId, userId, reason, now)!.id;
}

export function openReports(
  db: Database,
  listingId: string,
): { id: number; reason: string; created_at: number }[] {
  return db
    .query<{ id: number; reason: string; created_at: number }, [string]>(
      'SELECT id, reason, created_at FROM listing_reports WHERE listing_id = ? AND resolved_at IS NULL ORDER BY id',
    )
    .all(listingId);
}

export function resolveReports(db: Database, listingId: string, now: number): void {
  db.query('UPDATE listing_reports SET resolved_at = ? WHERE listing_id = ? AND resolved_at IS NULL').run(
    now,
    listingId,
  );
}

// Community votes ------------------------------------------------------------------------------

/** Listings waiting for the community's votes, oldest first. */
export function submittedListings(db: Database): ListingRow[] {
  return db
    .query<ListingRow, []>("SELECT * FROM listings WHERE status = 'submitted' ORDER BY updated_at, id")
    .all();
}

export interface VoteRow {
  user_id: string;
  vote: 'approve' | 'reject';
  reason: string;
  version: number;
  updated_at: number;
}

/** A member's vote on a listing's version (replacing their earlier one). */
export function upsertVote(
  db: Database,
  v: {
    listingId: string;
    userId: string;
    version: number;
    vote: 'approve' | 'reject';
    reason: string;
    now: number;
  },
): void {
  db.query(
    `INSERT INTO listing_votes (listing_id, user_id, version, vote, reason, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)
     ON CONFLICT (listing_id, user_id) DO UPDATE SET version = excluded.version, vote = excluded.vote,
       reason = excluded.reason, updated_at = excluded.updated_at`,
  ).run(v.listingId, v.userId, v.version, v.vote, v.reason, v.now, v.now);
}

/** The votes on a listing's version. */
export function votesOn(db: Database, listingId: string, version: number): VoteRow[] {
  return db
    .query<VoteRow, [string, number]>(
      'SELECT user_id, vote, reason, version, updated_at FROM listing_votes WHERE listing_id = ? AND version = ? ORDER BY created_at',
    )
    .all(listingId, version);
}

/** Clears a listing's votes (a new version is a new round). */
export function clearVotes(db: Database, listingId: string): void {
  db.query('DELETE FROM listing_votes WHERE listing_id = ?').run(listingId);
}

// Semantic search -------------------------------------------------------------------------------

/**
 * How many candidates the binary-quantized index proposes for exact (float cosine) rescoring:
 * recall@10 against exact KNN is measured by `npm run bench -- marketplace`.
 */
export const RESCORE_CANDIDATES = 128;
/**
 * The bit index is split into this many partitions (by rowid), each asked for its share of the
 * candidates: sqlite-vec's brute-force top-k costs about (rows scanned × k), so 16 scans of a
 * sixteenth for k = 8 cost what one scan for k = 8 does, yet propose 128 candidates.
 */
export const VECTOR_PARTITIONS = 16;

/** The listing vector index's model and dimension, or null before the first listing is embedded. */
export function listingVectorIndex(db: Database): { model: string; dims: number } | null {
  return db
    .query<{ model: string; dims: number }, []>('SELECT model, dims FROM listing_vector_index WHERE id = 1')
    .get();
}

/**
 * Makes the vector index for `model` and `dims`: a sqlite-vec `vec0` table of sign-quantized
 * (bit) vectors of the published listings, beside the float vectors in listing_vectors. A
 * change of model or dimension drops every vector (they are made again as listings are read).
 */
export function ensureListingVectorIndex(db: Database, model: string, dims: number): void {
  const now = listingVectorIndex(db);
  if (now && now.model === model && now.dims === dims) return;
  vec(db).exec('DROP TABLE IF EXISTS listings_vec');
  db.exec(
    `CREATE VIRTUAL TABLE listings_vec USING vec0(part integer partition key, embedding bit[${Math.trunc(dims)}])`,
  );
  db.query('DELETE FROM listing_vectors').run();
  db.query(
    'INSERT INTO listing_vector_index (id, model, dims) VALUES (1, ?, ?) ON CONFLICT (id) DO UPDATE SET model = excluded.model, dims = excluded.dims',
  ).run(model, dims);
}

/** Stores a listing's vector (of the index's model) and indexes it if the listing is published. */
export function setListingVector(
  db: Database,
  id: string,
  v: { model: string; textHash: string; vector: Float32Array },
): void {
  const rowid = db.query<{ r: number }, [string]>('SELECT rowid AS r FROM listings WHERE id = ?').get(id)?.r;
  if (rowid === undefined) return;
  db.query(
    `INSERT INTO listing_vectors (listing_rowid, model, text_hash, vector) VALUES (?, ?, ?, ?)
     ON CONFLICT (listing_rowid) DO UPDATE SET model = excluded.model, text_hash = excluded.text_hash, vector = excluded.vector`,
  ).run(
    rowid,
    v.model,
    v.textHash,
    new Uint8Array(v.vector.buffer, v.vector.byteOffset, v.vector.byteLength),
  );
  syncListingVector(db, id);
}

/** Puts a listing into the vector index if it is published and has a vector, else takes it out. */
export function syncListingVector(db: Database, id: string): void {
  const idx = listingVectorIndex(db);
  if (!idx) return;
  const r = db
    .query<{ rowid: number; status: string; vector: Uint8Array | null; model: string | null }, [string]>(
      `SELECT l.rowid AS rowid, l.status, v.vector, v.model FROM listings l
       LEFT JOIN listing_vectors v ON v.listing_rowid = l.rowid WHERE l.id = ?`,
    )
    .get(id);
  if (!r) return;
  vec(db).query('DELETE FROM listings_vec WHERE rowid = ?').run(r.rowid);
  if (r.status === 'published' && r.vector && r.model === idx.model)
    db.query('INSERT INTO listings_vec (rowid, part, embedding) VALUES (?, ?, vec_quantize_binary(?))').run(
      r.rowid,
      r.rowid % VECTOR_PARTITIONS,
      r.vector,
    );
}

/** A listing's stored text hash for `model` (null: none, or of another model). */
export function listingVectorHash(db: Database, id: string, model: string): string | null {
  return (
    db
      .query<{ h: string }, [string, string]>(
        `SELECT v.text_hash AS h FROM listings l JOIN listing_vectors v ON v.listing_rowid = l.rowid
         WHERE l.id = ? AND v.model = ?`,
      )
      .get(id, model)?.h ?? null
  );
}

/** Published listings with no vector of `model` yet (to embed before a semantic search). */
export function unembeddedListings(db: Database, model: string, limit: number): ListingRow[] {
  return db
    .query<ListingRow, [string, number]>(
      `SELECT l.* FROM listings l LEFT JOIN listing_vectors v ON v.listing_rowid = l.rowid AND v.model = ?
       WHERE l.status = 'published' AND v.listing_rowid IS NULL ORDER BY l.updated_at DESC LIMIT ?`,
    )
    .all(model, limit);
}

/**
 * The published listings nearest to `vector`: the bit index proposes `candidates` (the nearest
 * by Hamming distance, an equal share from each partition), rescored by exact cosine distance
 * over their float vectors, best first. With a category, when fewer than `limit` candidates are
 * of it, the category's listings are searched exactly instead.
 */
export function semanticListings(
  db: Database,
  vector: Float32Array,
  o: { category: string | null; limit: number; candidates?: number },
): ListingRow[] {
  if (!listingVectorIndex(db)) return [];
  const per = Math.ceil(Math.max(o.candidates ?? RESCORE_CANDIDATES, o.limit) / VECTOR_PARTITIONS);
  const knn = vec(db).query<{ rowid: number }, [Float32Array, number, number]>(
    'SELECT rowid FROM listings_vec WHERE embedding MATCH vec_quantize_binary(?) AND k = ? AND part = ?',
  );
  const rowids: number[] = [];
  for (let p = 0; p < VECTOR_PARTITIONS; p++) for (const r of knn.all(vector, per, p)) rowids.push(r.rowid);
  if (rowids.length === 0) return [];
  // Rescoring looks each candidate up by its rowid: a `json_each` subquery here let SQLite scan
  // every vector instead (about 12 ms of the 18.8 ms first measured at 100,000 listings).
  const scored = db
    .query<{ r: number; d: number }, (Float32Array | number)[]>(
      `SELECT listing_rowid AS r, vec_distance_cosine(vector, ?) AS d FROM listing_vectors
       WHERE listing_rowid IN (${rowids.map(() => '?').join(',')}) ORDER BY d`,
    )
    .all(vector, ...rowids);
  // Without a category only the best `limit` are read (the index holds published listings only).
  const found = listingsByRowids(
    db,
    (o.category === null ? scored.slice(0, o.limit) : scored).map((x) => x.r),
  )
    .filter((l) => l.status === 'published' && (o.category === null || l.category === o.category))
    .slice(0, o.limit);
  if (o.category === null || found.length >= o.limit) return found;
  // Too few of the category among the candidates: the category (a small part of a marketplace)
  // is searched whole, exactly.
  return listingsByRowids(
    db,
    db
      .query<{ r: number }, [Float32Array, string, number]>(
        `SELECT v.listing_rowid AS r, vec_distance_cosine(v.vector, ?) AS d FROM listings l
         JOIN listing_vectors v ON v.listing_rowid = l.rowid
         JOIN listing_vector_index i ON i.id = 1 AND i.model = v.model
         WHERE l.category = ? AND l.status = 'published' ORDER BY d LIMIT ?`,
      )
      .all(vector, o.category, o.limit)
      .map((x) => x.r),
  );
}
