import type { Database } from 'bun:sqlite';

export type ListingStatus = 'in_review' | 'published' | 'rejected' | 'suspended' | 'revoked';

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
       status, created_by, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
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
  );
}

export function findListing(db: Database, id: string): ListingRow | null {
  return db.query<ListingRow, [string]>('SELECT * FROM listings WHERE id = ?').get(id);
}

export function listingOfAgent(db: Database, agentId: string): ListingRow | null {
  return db.query<ListingRow, [string]>('SELECT * FROM listings WHERE agent_id = ?').get(agentId);
}

export function setListingStatus(db: Database, id: string, status: ListingStatus, now: number): void {
  db.query('UPDATE listings SET status = ?, updated_at = ? WHERE id = ?').run(status, now, id);
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
  >,
  now: number,
): void {
  db.query(
    `UPDATE listings SET version = ?, title = ?, summary = ?, category = ?, tags = ?, price_model = ?, price_minor = ?,
       currency = ?, status = ?, updated_at = ? WHERE id = ?`,
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
    now,
    id,
  );
}

/** Published listings, best text match first when `match` (FTS5) is given, else newest. */
export function searchListings(
  db: Database,
  o: { match: string | null; category: string | null; limit: number },
): ListingRow[] {
  if (o.match)
    return db
      .query<ListingRow, [string, string | null, string | null, number]>(
        `SELECT l.* FROM listings_fts f JOIN listings l ON l.rowid = f.rowid
         WHERE listings_fts MATCH ? AND l.status = 'published' AND (? IS NULL OR l.category = ?)
         ORDER BY f.rank LIMIT ?`,
      )
      .all(o.match, o.category, o.category, o.limit);
  return db
    .query<ListingRow, [string | null, string | null, number]>(
      `SELECT * FROM listings WHERE status = 'published' AND (? IS NULL OR category = ?)
       ORDER BY updated_at DESC, id DESC LIMIT ?`,
    )
    .all(o.category, o.category, o.limit);
}

/** What moderators look at: listings in review, and any with open reports. */
export function moderationQueue(db: Database): ListingRow[] {
  return db
    .query<ListingRow, []>(
      `SELECT * FROM listings WHERE status = 'in_review'
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
