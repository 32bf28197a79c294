import type { Database } from 'bun:sqlite';

/** A stored message (table `outbox`); `body` sealed, or '' once delivered. */
export interface OutboxRow {
  id: string;
  to_email: string;
  template: string;
  subject: string;
  body: string;
  created_at: number;
  sent_at: number | null;
}

/** Inserts a queued message (its body already sealed). */
export function insertOutbox(db: Database, m: Omit<OutboxRow, 'sent_at'>): void {
  db.query(
    'INSERT INTO outbox (id, to_email, template, subject, body, created_at) VALUES (?, ?, ?, ?, ?, ?)',
  ).run(m.id, m.to_email, m.template, m.subject, m.body, m.created_at);
}

/** Messages oldest first: only undelivered ones unless `includeSent`; narrowed by `to` and `template`. */
export function outboxRows(
  db: Database,
  filter: { to?: string; template?: string; includeSent?: boolean },
): OutboxRow[] {
  return db
    .query<OutboxRow, [string | null, string | null, number]>(
      `SELECT id, to_email, template, subject, body, created_at, sent_at FROM outbox
       WHERE (?1 IS NULL OR to_email = ?1) AND (?2 IS NULL OR template = ?2) AND (?3 = 1 OR sent_at IS NULL)
       ORDER BY created_at, rowid`,
    )
    .all(filter.to ?? null, filter.template ?? null, filter.includeSent ? 1 : 0);
}

/** Marks an undelivered message sent and wipes its body; false when there is no such message. */
export function markOutboxSent(db: Database, id: string, now: number): boolean {
  return (
    db.query("UPDATE outbox SET sent_at = ?, body = '' WHERE id = ? AND sent_at IS NULL").run(now, id)
      .changes === 1
  );
}

/** The sealed bodies of messages not yet delivered. */
export function sealedOutboxBodies(db: Database): { id: string; body: string }[] {
  return db.query<{ id: string; body: string }, []>("SELECT id, body FROM outbox WHERE body <> ''").all();
}

/** Rewrites a message's sealed body (re-sealing). */
export function updateOutboxBody(db: Database, id: string, body: string): void {
  db.query('UPDATE outbox SET body = ? WHERE id = ?').run(body, id);
}
