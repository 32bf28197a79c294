import type { Database } from 'bun:sqlite';

/** A stored message (table `outbox`); `body` sealed, or '' once delivered (or given up). */
export interface OutboxRow {
  id: string;
  to_email: string;
  template: string;
  subject: string;
  body: string;
  created_at: number;
  sent_at: number | null;
}

/** A message's delivery state as stored (`outbox.status`). */
export type OutboxStatus = 'queued' | 'sending' | 'sent' | 'failed' | 'bounced';

/** A message's delivery record (never its body). */
export interface OutboxStateRow {
  id: string;
  to_email: string;
  template: string;
  subject: string;
  status: OutboxStatus;
  attempts: number;
  last_error: string | null;
  created_at: number;
  last_attempt_at: number | null;
  next_attempt_at: number;
  sent_at: number | null;
}

/** Inserts a queued message (its body already sealed), due at `created_at`. */
export function insertOutbox(db: Database, m: Omit<OutboxRow, 'sent_at'>): void {
  db.query(
    'INSERT INTO outbox (id, to_email, template, subject, body, created_at, next_attempt_at) VALUES (?, ?, ?, ?, ?, ?, ?)',
  ).run(m.id, m.to_email, m.template, m.subject, m.body, m.created_at, m.created_at);
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

/** One message (body sealed), or null. */
export function outboxRowById(db: Database, id: string): OutboxRow | null {
  return db
    .query<OutboxRow, [string]>(
      'SELECT id, to_email, template, subject, body, created_at, sent_at FROM outbox WHERE id = ?',
    )
    .get(id);
}

/** Delivery records in these states, oldest first, at most `limit`. */
export function outboxStateRows(
  db: Database,
  statuses: readonly OutboxStatus[],
  limit: number,
): OutboxStateRow[] {
  return db
    .query<OutboxStateRow, [string, number]>(
      `SELECT id, to_email, template, subject, status, attempts, last_error, created_at, last_attempt_at,
              next_attempt_at, sent_at
       FROM outbox WHERE status IN (SELECT value FROM json_each(?)) ORDER BY created_at, rowid LIMIT ?`,
    )
    .all(JSON.stringify(statuses), limit);
}

/**
 * Claims the next queued message due at `now` for one attempt (`sending`, its attempt counted),
 * in one immediate transaction. Its id, or null when none is due.
 */
export function claimDueOutbox(db: Database, now: number): string | null {
  return db
    .transaction(() => {
      const r = db
        .query<{ id: string }, [number]>(
          "SELECT id FROM outbox WHERE status = 'queued' AND next_attempt_at <= ? ORDER BY next_attempt_at, rowid LIMIT 1",
        )
        .get(now);
      if (!r) return null;
      db.query(
        "UPDATE outbox SET status = 'sending', attempts = attempts + 1, last_attempt_at = ? WHERE id = ?",
      ).run(now, r.id);
      return r.id;
    })
    .immediate();
}

/** How many attempts a message has had (0 when there is no such message). */
export function outboxAttempts(db: Database, id: string): number {
  return (
    db.query<{ attempts: number }, [string]>('SELECT attempts FROM outbox WHERE id = ?').get(id)?.attempts ??
    0
  );
}

/** A message being sent goes back to the queue for `retryAt`, with its error. */
export function requeueOutbox(db: Database, id: string, error: string, retryAt: number): void {
  db.query(
    "UPDATE outbox SET status = 'queued', last_error = ?, next_attempt_at = ? WHERE id = ? AND status = 'sending'",
  ).run(error, retryAt, id);
}

/** A message being sent is given up (`failed` or `bounced`), its body wiped. */
export function giveUpOutbox(db: Database, id: string, status: 'failed' | 'bounced', error: string): void {
  db.query("UPDATE outbox SET status = ?, last_error = ?, body = '' WHERE id = ? AND status = 'sending'").run(
    status,
    error,
    id,
  );
}

/** Messages left `sending` go back to the queue, due at `now`; how many. */
export function requeueSendingOutbox(db: Database, now: number): number {
  return db
    .query(
      "UPDATE outbox SET status = 'queued', next_attempt_at = ?, last_error = coalesce(last_error, 'interrupted') WHERE status = 'sending'",
    )
    .run(now).changes;
}

/** Marks an undelivered message sent and wipes its body; false when there is no such message. */
export function markOutboxSent(db: Database, id: string, now: number): boolean {
  return (
    db
      .query(
        "UPDATE outbox SET sent_at = ?, body = '', status = 'sent', last_error = NULL WHERE id = ? AND sent_at IS NULL",
      )
      .run(now, id).changes === 1
  );
}

/** When the next queued message is due, or null when none is queued. */
export function nextOutboxDue(db: Database): number | null {
  return (
    db
      .query<{ at: number | null }, []>(
        "SELECT min(next_attempt_at) AS at FROM outbox WHERE status = 'queued'",
      )
      .get()?.at ?? null
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
