import type { Database } from 'bun:sqlite';
import { type SecretSite, secretContext, secretsOf, stateKey, stateOf } from '../../app/index.ts';
import { newId } from '../../shared/ids.ts';
import {
  claimDueOutbox,
  giveUpOutbox,
  insertOutbox,
  markOutboxSent,
  type OutboxStatus,
  outboxRowById,
  outboxRows,
  outboxStateRows,
  requeueOutbox,
  requeueSendingOutbox,
  sealedOutboxBodies,
  updateOutboxBody,
} from './outbox.repository.ts';

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

/** A message's delivery state (docs/operations.md, "Mail delivery"). */
export type MailStatus = OutboxStatus;
export const MAIL_STATUSES: readonly MailStatus[] = ['queued', 'sending', 'sent', 'failed', 'bounced'];

/**
 * Who is woken when mail is queued in a database of this App: the mailer, once `serve` runs
 * one (none: messages wait for the next start with SMTP configured).
 */
export const MAIL_WAKE = stateKey('identity.mail_wake', (): { wake: ((db: Database) => void) | null } => ({
  wake: null,
}));

/**
 * Queues a message (the caller's transaction), its body sealed. Returns the message id. The
 * mailer is woken once the transaction has committed (a microtask: bun:sqlite transactions are
 * synchronous; a rolled-back queueing wakes a pass that finds nothing).
 */
export function queueMail(
  db: Database,
  msg: { to_email: string; template: string; subject: string; body: string },
  now: number,
): string {
  const id = newId('msg');
  insertOutbox(db, {
    id,
    to_email: msg.to_email,
    template: msg.template,
    subject: msg.subject,
    body: secretsOf(db).seal(msg.body, bodyField(id)),
    created_at: now,
  });
  const wake = stateOf(db).get(MAIL_WAKE).wake;
  if (wake) queueMicrotask(() => wake(db));
  return id;
}

/** A message as the operator sees it: its state, never its body. */
export interface OutboxEntry {
  id: string;
  to_email: string;
  template: string;
  subject: string;
  status: MailStatus;
  attempts: number;
  last_error: string | null;
  created_at: number;
  last_attempt_at: number | null;
  next_attempt_at: number;
  sent_at: number | null;
}

/** Messages by state, oldest first (bodies left out): for the operator's list. */
export function listOutbox(db: Database, statuses: readonly MailStatus[], limit = 500): OutboxEntry[] {
  return outboxStateRows(db, statuses, limit);
}

/**
 * Claims the next message due (queued, its retry time reached) for one attempt, in one
 * committed write: it turns `sending` and its attempt is counted before a byte goes to the
 * SMTP server, so a second pass (or a second process) never sends it alongside. Null: none due.
 */
export function claimDueMail(db: Database, now: number): OutboxMessage | null {
  const row = claimDueOutbox(db, now);
  if (row === null) return null;
  const m = outboxRowById(db, row)!;
  return { ...m, body: m.body === '' ? '' : secretsOf(db).unseal(m.body, bodyField(m.id)) };
}

/**
 * After a temporary failure: queued again for `retryAt`, or failed when no attempt is left (the
 * body is wiped then: the link it holds will never be sent).
 */
export function markMailRetry(
  db: Database,
  id: string,
  error: string,
  retryAt: number | null,
): 'queued' | 'failed' {
  if (retryAt === null) {
    giveUpOutbox(db, id, 'failed', error);
    return 'failed';
  }
  requeueOutbox(db, id, error, retryAt);
  return 'queued';
}

/** After a permanent refusal (5xx): bounced, never tried again; the body is wiped. */
export function markMailBounced(db: Database, id: string, error: string): void {
  giveUpOutbox(db, id, 'bounced', error);
}

/**
 * At start: messages left `sending` by a process that stopped mid-attempt go back to the queue
 * (their attempt stays counted). Delivery is at least once: the SMTP server may have accepted
 * one of them just before the stop; it is sent again with the same Message-ID.
 */
export function requeueInterrupted(db: Database, now: number): number {
  return requeueSendingOutbox(db, now);
}

/**
 * Queued messages, oldest first, bodies opened: by default only those not yet delivered; with
 * `to` and `template`, only those. For the mailer (and tests: the link a user would get).
 */
export function readOutbox(
  db: Database,
  filter: { to?: string; template?: string; includeSent?: boolean } = {},
): OutboxMessage[] {
  const rows = outboxRows(db, filter);
  const secrets = secretsOf(db);
  return rows.map((r) => ({ ...r, body: r.body === '' ? '' : secrets.unseal(r.body, bodyField(r.id)) }));
}

/**
 * Marks a message delivered and wipes its body (the live link goes with it; subject, recipient
 * and times stay for the record). False when there is no such undelivered message.
 */
export function markMailDelivered(db: Database, id: string, now: number): boolean {
  return markOutboxSent(db, id, now);
}

/** Where mail bodies are stored, for `keys rotate` and the sealing of older queues. */
export const OUTBOX_SECRET_SITE: SecretSite = {
  name: 'outbox.body',
  scope: 'tenant',
  reseal(db, scope, rewrite) {
    const rows = sealedOutboxBodies(db);
    for (const r of rows) updateOutboxBody(db, r.id, rewrite(r.body, secretContext(scope, bodyField(r.id))));
    return rows.length;
  },
};
