import type { Database } from 'bun:sqlite';

/** The three lives of a platform. */
export type PlatformStatus = 'active' | 'suspended' | 'archived';

/** A platform's control row (the blueprint stays JSON text until someone needs it). */
export interface PlatformRow {
  id: string;
  slug: string;
  name: string;
  status: PlatformStatus;
  template: string;
  blueprint: string;
  db_file: string;
  status_reason: string | null;
  created_at: number;
  updated_at: number;
}

/** A platform's row without its blueprint: what the in-memory registry keeps. */
export type PlatformHead = Omit<PlatformRow, 'blueprint'>;

const HEAD_COLS = 'id, slug, name, status, template, db_file, status_reason, created_at, updated_at';

/** SQL over the control database's platforms and domains tables. */
export function createPlatformRepository({ db }: { db: Database }) {
  return {
    /** Every platform head, oldest first. */
    allHeads(): PlatformHead[] {
      return db.query<PlatformHead, []>(`SELECT ${HEAD_COLS} FROM platforms ORDER BY created_at, id`).all();
    },
    /** One platform by id, with its blueprint. */
    byId(id: string): PlatformRow | null {
      return db.query<PlatformRow, [string]>('SELECT * FROM platforms WHERE id = ?').get(id);
    },
    /** One platform by slug, with its blueprint. */
    bySlug(slug: string): PlatformRow | null {
      return db.query<PlatformRow, [string]>('SELECT * FROM platforms WHERE slug = ?').get(slug);
    },
    /** Inserts a new platform row. Throws SQLITE_CONSTRAINT_UNIQUE when the slug is taken. */
    insert(row: PlatformRow): void {
      db.query(
        `INSERT INTO platforms (id, slug, name, status, template, blueprint, db_file, status_reason, created_at, updated_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      ).run(
        row.id,
        row.slug,
        row.name,
        row.status,
        row.template,
        row.blueprint,
        row.db_file,
        row.status_reason,
        row.created_at,
        row.updated_at,
      );
    },
    /** Sets status (and reason, db file) of a platform. */
    setStatus(id: string, status: PlatformStatus, reason: string | null, dbFile: string, now: number): void {
      db.query(
        'UPDATE platforms SET status = ?, status_reason = ?, db_file = ?, updated_at = ? WHERE id = ?',
      ).run(status, reason, dbFile, now, id);
    },
    /** Replaces a platform's blueprint (and its name, which mirrors identity.name). */
    setBlueprint(id: string, blueprint: string, name: string, now: number): void {
      db.query('UPDATE platforms SET blueprint = ?, name = ?, updated_at = ? WHERE id = ?').run(
        blueprint,
        name,
        now,
        id,
      );
    },
    /** Every custom domain with its platform id. */
    allDomains(): { host: string; platform_id: string }[] {
      return db
        .query<{ host: string; platform_id: string }, []>(
          'SELECT host, platform_id FROM domains ORDER BY host',
        )
        .all();
    },
    /** Who holds a custom domain, if anyone. */
    domainOwner(host: string): string | null {
      return (
        db
          .query<{ platform_id: string }, [string]>('SELECT platform_id FROM domains WHERE host = ?')
          .get(host)?.platform_id ?? null
      );
    },
    /** Maps a custom domain to a platform. */
    insertDomain(host: string, platformId: string, now: number): void {
      db.query('INSERT INTO domains (host, platform_id, created_at) VALUES (?, ?, ?)').run(
        host,
        platformId,
        now,
      );
    },
    /** Unmaps a custom domain. */
    deleteDomain(host: string): void {
      db.query('DELETE FROM domains WHERE host = ?').run(host);
    },
    /** Counts by status, for metrics. */
    countByStatus(): Record<PlatformStatus, number> {
      const out: Record<PlatformStatus, number> = { active: 0, suspended: 0, archived: 0 };
      for (const r of db
        .query<{ status: PlatformStatus; n: number }, []>(
          'SELECT status, count(*) AS n FROM platforms GROUP BY status',
        )
        .all())
        out[r.status] = r.n;
      return out;
    },
  };
}

/** A deleted platform's record (control 0007): a delete in progress, or the tombstone of one. */
export interface PlatformDeletionRow {
  platform_id: string;
  slug: string;
  name: string;
  state: 'deleting' | 'deleted';
  db_file: string;
  actor: string;
  requested_at: number;
  deleted_at: number | null;
  slug_free_at: number;
}

/** SQL over the control database's platform_deletions table (deletes and slug tombstones). */
export function createDeletionRepository({ db }: { db: Database }) {
  return {
    /** Step 1 of a delete: the row that says it is under way. */
    insert(row: PlatformDeletionRow): void {
      db.query(
        `INSERT INTO platform_deletions (platform_id, slug, name, state, db_file, actor, requested_at, deleted_at, slug_free_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      ).run(
        row.platform_id,
        row.slug,
        row.name,
        row.state,
        row.db_file,
        row.actor,
        row.requested_at,
        row.deleted_at,
        row.slug_free_at,
      );
    },
    /** One platform's deletion, if any. */
    byId(platformId: string): PlatformDeletionRow | null {
      return db
        .query<PlatformDeletionRow, [string]>('SELECT * FROM platform_deletions WHERE platform_id = ?')
        .get(platformId);
    },
    /** Deletes in a given state, oldest first (the boot reconciler finishes the 'deleting' ones). */
    inState(state: PlatformDeletionRow['state']): PlatformDeletionRow[] {
      return db
        .query<PlatformDeletionRow, [string]>(
          'SELECT * FROM platform_deletions WHERE state = ? ORDER BY requested_at, platform_id',
        )
        .all(state);
    },
    /** Step 3: the platform's control row and domains go; this row becomes the slug's tombstone. */
    finalize(platformId: string, now: number): void {
      db.query('DELETE FROM domains WHERE platform_id = ?').run(platformId);
      db.query('DELETE FROM platforms WHERE id = ?').run(platformId);
      db.query("UPDATE platform_deletions SET state = 'deleted', deleted_at = ? WHERE platform_id = ?").run(
        now,
        platformId,
      );
    },
    /** When a deleted platform's slug is free again, if it is still reserved at `now`. */
    reservedUntil(slug: string, now: number): number | null {
      return (
        db
          .query<{ until: number | null }, [string, number]>(
            'SELECT max(slug_free_at) AS until FROM platform_deletions WHERE slug = ? AND slug_free_at > ?',
          )
          .get(slug, now)?.until ?? null
      );
    },
  };
}

/** The repository's type. */
export type PlatformRepository = ReturnType<typeof createPlatformRepository>;
