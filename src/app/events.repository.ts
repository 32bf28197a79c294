import type { Database } from 'bun:sqlite';

/** One row of a database's event log (migration 0006, control and tenant alike). */
export interface EventRow {
  id: string;
  name: string;
  version: number;
  /** JSON. */
  payload: string;
  created_at: number;
}

/** The newest event id in this database, or null when the log is empty. */
export function lastEventId(db: Database): string | null {
  return db.query<{ id: string }, []>('SELECT id FROM events ORDER BY id DESC LIMIT 1').get()?.id ?? null;
}

/** Appends one row (the caller holds the transaction). */
export function insertEvent(db: Database, row: EventRow): void {
  db.query('INSERT INTO events (id, name, version, payload, created_at) VALUES (?, ?, ?, ?, ?)').run(
    row.id,
    row.name,
    row.version,
    row.payload,
    row.created_at,
  );
}

/** Whether an event is in the log (committed, when asked outside its transaction). */
export function eventExists(db: Database, id: string): boolean {
  return db.query<{ one: number }, [string]>('SELECT 1 AS one FROM events WHERE id = ?').get(id) !== null;
}

/** Up to `limit` events after `afterId`, oldest first. */
export function eventsAfter(db: Database, afterId: string, limit: number): EventRow[] {
  return db
    .query<EventRow, [string, number]>(
      'SELECT id, name, version, payload, created_at FROM events WHERE id > ? ORDER BY id LIMIT ?',
    )
    .all(afterId, limit);
}

/** Where a subscriber has got in this database ('' when it has seen nothing: before every id). */
export function cursorOf(db: Database, subscriber: string): string {
  return (
    db
      .query<{ last_id: string }, [string]>('SELECT last_id FROM event_cursors WHERE subscriber = ?')
      .get(subscriber)?.last_id ?? ''
  );
}

/** Moves a subscriber's cursor forward (never back), in one transaction. */
export function advanceCursor(db: Database, subscriber: string, lastId: string, at: number): void {
  db.transaction(() => {
    db.query(
      `INSERT INTO event_cursors (subscriber, last_id, updated_at) VALUES (?, ?, ?)
       ON CONFLICT (subscriber) DO UPDATE SET last_id = excluded.last_id, updated_at = excluded.updated_at
       WHERE excluded.last_id > event_cursors.last_id`,
    ).run(subscriber, lastId, at);
  }).immediate();
}

/**
 * Deletes events created before `before` whose id is at most `upTo` (delivered to every
 * subscriber); returns how many went.
 */
export function pruneEvents(db: Database, before: number, upTo: string): number {
  return db
    .transaction(
      () => db.query('DELETE FROM events WHERE created_at < ? AND id <= ?').run(before, upTo).changes,
    )
    .immediate();
}

/** Ids of the platforms whose database is in place (every status but archived), from control.db. */
export function livePlatformIds(control: Database): string[] {
  return control
    .query<{ id: string }, []>("SELECT id FROM platforms WHERE status != 'archived' ORDER BY id")
    .all()
    .map((r) => r.id);
}
