import type { Database } from 'bun:sqlite';
import { type SecretSite, secretContext, secretsOf } from '../../app/index.ts';
import { newId } from '../../shared/ids.ts';

/**
 * The mail queue of one platform (table `outbox`). Bodies carry live one-time links (reset,
 * verify), so they are stored sealed (`outbox:<id>:body`) and wiped when the message is
 * delivered: nothing in the file opens an account, before or after delivery.
 */

/** A queued message as a mailer sees it: the body opened. */
export interface OutboxMessage {
  id: string;
  to_email: string;
  template: string;
  subject: string;
  /** The opened body; '' once delivered (the body is wiped then). */
  body: string;
  created_at: number;
  sent_at: number | null;
}

const bodyField = (id: string) => `outbox:${id}:body`;

/** Queues a message (the caller's transaction), its body sealed. Returns the message id. */
export function queueMail(
  db: Database,
  msg: { to_email: string; template: string; subject: string; body: string },
  now: number,
): string {
  const id = newId('msg');
  db.query(
    'INSERT INTO outbox (id, to_email, template, subject, body, created_at) VALUES (?, ?, ?, ?, ?, ?)',
  ).run(id, msg.to_email, msg.template, msg.subject, secretsOf(db).seal(msg.body, bodyField(id)), now);
  return id;
}

/**
 * Queued messages, oldest first, bodies opened: by default only those not yet delivered; with
 * `to` and `template`, only those. For the mailer (and tests: the link a user would get).
 */
export function readOutbox(
  db: Database,
  filter: { to?: string; template?: string; includeSent?: boolean } = {},
): OutboxMessage[] {
  const rows = db
    .query<OutboxMessage, [string | null, string | null, number]>(
      `SELECT id, to_email, template, subject, body, created_at, sent_at FROM outbox
       WHERE (?1 IS NULL OR to_email = ?1) AND (?2 IS NULL OR template = ?2) AND (?3 = 1 OR sent_at IS NULL)
       ORDER BY created_at, rowid`,
    )
    .all(filter.to ?? null, filter.template ?? null, filter.includeSent ? 1 : 0);
  const secrets = secretsOf(db);
  return rows.map((r) => ({ ...r, body: r.body === '' ? '' : secrets.unseal(r.body, bodyField(r.id)) }));
}

/**
 * Marks a message delivered and wipes its body (the live link goes with it; subject, recipient
 * and times stay for the record). False when there is no such undelivered message.
 */
export function markMailDelivered(db: Database, id: string, now: number): boolean {
  return (
    db.query("UPDATE outbox SET sent_at = ?, body = '' WHERE id = ? AND sent_at IS NULL").run(now, id)
      .changes === 1
  );
}

/** Where mail bodies are stored, for `keys rotate` and the sealing of older queues. */
export const OUTBOX_SECRET_SITE: SecretSite = {
  name: 'outbox.body',
  scope: 'tenant',
  reseal(db, scope, rewrite) {
    const rows = db
      .query<{ id: string; body: string }, []>("SELECT id, body FROM outbox WHERE body <> ''")
      .all();
    const update = db.query('UPDATE outbox SET body = ? WHERE id = ?');
    for (const r of rows) update.run(rewrite(r.body, secretContext(scope, bodyField(r.id))), r.id);
    return rows.length;
  },
};
