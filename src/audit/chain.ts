import { Database } from 'bun:sqlite';
import canonicalize from 'canonicalize';
import type { AuditEntry, AuditInput, AuditPort } from '../app/audit-port.ts';
import type { Logger } from '../app/logger.ts';
import { sha256Hex } from '../shared/crypto.ts';
import type { Clock } from '../shared/time.ts';
import { type AuditSigner, anchorPayload, checkpointPayload, entryPayload } from './signing.ts';

/** The `prev_hash` of a chain's first entry. */
export const GENESIS_HASH = '0'.repeat(64);

/**
 * The hash of an entry: SHA-256 over the RFC 8785 canonical JSON of every field but `hash`
 * (details are hashed as the exact text stored, so changing any byte of it shows).
 */
export function entryHash(e: Omit<AuditEntry, 'hash'>): string {
  const canonical = canonicalize({
    seq: e.seq,
    ts: e.ts,
    actor: e.actor,
    action: e.action,
    target: e.target,
    details: e.details,
    prev_hash: e.prev_hash,
  });
  return sha256Hex(canonical ?? '');
}

/**
 * What anchors chains outside their own file: the control database (its appends get a signed
 * checkpoint in the same transaction), the instance signer, and which platform a database
 * handle belongs to (`undefined` for any other file, such as a platform still being built).
 */
export interface AuditAnchoring {
  control: Database;
  signer: AuditSigner;
  platformIdOf(db: Database): string | undefined;
  log: Logger;
}

/**
 * The audit port over SQLite: appends to the `audit_log` table of the database it is given.
 * Call it inside the transaction of the change it records; outside one it opens its own.
 *
 * With anchoring (`anchoring()` returns one once the instance key is open): a control append
 * writes a signed checkpoint of the new head in the same transaction; a platform append marks
 * that database, and once the transaction that holds the append has returned (a microtask
 * later: bun:sqlite transactions are synchronous, so by then it has committed or rolled back)
 * the committed head is read and upserted, signed, into control.db: one UPSERT per platform per
 * turn of the event loop, however many entries that turn appended. `flush()` does it at once
 * (before closing). A crash between a platform commit and its anchor leaves the chain ahead of
 * its anchor by that write's entries: the lag `audit verify` allows (docs/audit.md).
 */
export function createAuditLog(
  clock: Clock,
  anchoring: () => AuditAnchoring | undefined = () => undefined,
): AuditPort {
  /** Platform databases with appends not yet anchored. */
  const pending = new Map<Database, string>();
  /** The seq last anchored per platform by this process, so an unchanged head costs nothing. */
  const anchored = new Map<string, number>();
  let scheduled = false;

  const upsertAnchor = (a: AuditAnchoring, platformId: string, head: { seq: number; hash: string }) => {
    if ((anchored.get(platformId) ?? 0) >= head.seq) return;
    const at = clock.now();
    const sig = a.signer.sign(anchorPayload({ platform_id: platformId, seq: head.seq, hash: head.hash, at }));
    a.control
      .query(
        `INSERT INTO audit_anchors (platform_id, seq, hash, at, sig) VALUES (?, ?, ?, ?, ?)
         ON CONFLICT (platform_id) DO UPDATE SET seq = excluded.seq, hash = excluded.hash, at = excluded.at, sig = excluded.sig
         WHERE excluded.seq > audit_anchors.seq`,
      )
      .run(platformId, head.seq, head.hash, at, sig);
  };
  const remember = (heads: { platformId: string; head: { seq: number } }[]) => {
    for (const h of heads) anchored.set(h.platformId, Math.max(anchored.get(h.platformId) ?? 0, h.head.seq));
  };

  const flush = (): void => {
    scheduled = false;
    const a = anchoring();
    if (!a || pending.size === 0) return;
    const heads: { platformId: string; head: { seq: number; hash: string } }[] = [];
    for (const [db, platformId] of [...pending]) {
      let head: ReturnType<typeof committedHead>;
      try {
        head = committedHead(db);
      } catch (e) {
        // Closed and moved meanwhile (archived): it stays behind its anchor, within the lag.
        pending.delete(db);
        a.log.warn('could not read a platform audit head to anchor it', {
          platform: platformId,
          error: String(e),
        });
        continue;
      }
      if (head === 'busy') continue; // a transaction still open (spanning an await): next turn
      pending.delete(db);
      if (head) heads.push({ platformId, head });
    }
    try {
      if (heads.length) {
        withoutFsync(a.control, () =>
          a.control.transaction(() => {
            for (const h of heads) upsertAnchor(a, h.platformId, h.head);
          })(),
        );
        remember(heads);
      }
    } catch (e) {
      a.log.error('could not anchor platform audit chains in control.db', {
        platforms: heads.map((h) => h.platformId),
        error: String(e),
      });
    }
    if (pending.size && !scheduled) {
      scheduled = true;
      setTimeout(flush, 1).unref();
    }
  };

  return {
    append(db: Database, input: AuditInput): AuditEntry {
      const a = anchoring();
      const platformId = a && db !== a.control ? a.platformIdOf(db) : undefined;
      const write = (): AuditEntry => {
        const last = db
          .query<{ seq: number; hash: string }, []>(
            'SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1',
          )
          .get();
        const partial = {
          seq: (last?.seq ?? 0) + 1,
          ts: clock.now(),
          actor: input.actor,
          action: input.action,
          target: input.target,
          details: canonicalize(input.details ?? {}) ?? '{}',
          prev_hash: last?.hash ?? GENESIS_HASH,
        };
        const entry: AuditEntry = { ...partial, hash: entryHash(partial) };
        db.query(
          'INSERT INTO audit_log (seq, ts, actor, action, target, details, prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?)',
        ).run(
          entry.seq,
          entry.ts,
          entry.actor,
          entry.action,
          entry.target,
          entry.details,
          entry.prev_hash,
          entry.hash,
        );
        if (a && db === a.control) {
          // The control chain's checkpoint commits with the entry it covers, or not at all.
          const at = clock.now();
          db.query('INSERT INTO audit_checkpoints (seq, hash, at, sig) VALUES (?, ?, ?, ?)').run(
            entry.seq,
            entry.hash,
            at,
            a.signer.sign(checkpointPayload({ seq: entry.seq, hash: entry.hash, at })),
          );
        } else if (a && platformId) {
          // A platform entry is signed in its own transaction: until the anchor lands (the
          // lag) this signature is what shows the entry is the instance's, not appended by
          // whoever can write the file.
          db.query('INSERT INTO audit_entry_sigs (seq, sig) VALUES (?, ?)').run(
            entry.seq,
            a.signer.sign(entryPayload({ platform_id: platformId, seq: entry.seq, hash: entry.hash })),
          );
        }
        return entry;
      };
      const entry = db.inTransaction ? write() : db.transaction(write).immediate();
      if (platformId) {
        pending.set(db, platformId);
        if (!scheduled) {
          scheduled = true;
          queueMicrotask(flush);
        }
      }
      return entry;
    },
    anchor(platformId: string, head: { seq: number; hash: string }): void {
      const a = anchoring();
      if (a) upsertAnchor(a, platformId, head);
    },
    flush,
    entries(db: Database, after: number, limit: number): AuditEntry[] {
      return db
        .query<AuditEntry, [number, number]>('SELECT * FROM audit_log WHERE seq > ? ORDER BY seq LIMIT ?')
        .all(after, limit);
    },
  };
}

/**
 * Runs a control write committed without an fsync (synchronous=NORMAL: in WAL mode a power cut
 * may undo it, never corrupt): anchors need no more, since an anchor undone only trails its
 * chain, which the lag rule allows; the next FULL commit makes it durable too. Restores the
 * connection's setting after. Outside any transaction only (SQLite ignores it inside one).
 */
function withoutFsync(control: Database, fn: () => void): void {
  if (control.inTransaction) {
    fn();
    return;
  }
  const was = control.query<{ synchronous: number }, []>('PRAGMA synchronous').get()?.synchronous ?? 2;
  control.exec('PRAGMA synchronous = NORMAL');
  try {
    fn();
  } finally {
    control.exec(`PRAGMA synchronous = ${Number(was)}`);
  }
}

/**
 * The head a platform database has committed, `'busy'` while a transaction is open on it, or
 * `null` for an empty chain. A handle closed meanwhile (evicted by the pool) is read again from
 * its file.
 */
function committedHead(db: Database): { seq: number; hash: string } | null | 'busy' {
  const q = 'SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1';
  try {
    if (db.inTransaction) return 'busy';
    return db.query<{ seq: number; hash: string }, []>(q).get();
  } catch {
    const again = new Database(db.filename, { readonly: true });
    try {
      return again.query<{ seq: number; hash: string }, []>(q).get();
    } finally {
      again.close();
    }
  }
}

/** The verdict on one chain. */
export type ChainVerdict =
  | { ok: true; entries: number; head: string }
  | { ok: false; entries: number; bad: { seq: number; reason: string } };

/**
 * Walks a chain from its first entry: every entry must follow the one before it (seq + 1,
 * prev_hash = the previous hash) and hash to its stored `hash`. Reports the first bad entry.
 * Reads column values as stored, whatever their SQLite type, so a retyped value also fails.
 */
export function verifyChain(db: Database): ChainVerdict {
  const rows = db
    .query<Record<string, unknown>, []>(
      'SELECT seq, ts, actor, action, target, details, prev_hash, hash FROM audit_log ORDER BY seq',
    )
    .all();
  let prev = GENESIS_HASH;
  let expectedSeq = 1;
  let n = 0;
  for (const r of rows) {
    const seq = Number(r.seq);
    const fail = (reason: string): ChainVerdict => ({ ok: false, entries: n, bad: { seq, reason } });
    if (seq !== expectedSeq)
      return fail(`expected entry #${expectedSeq} here, found #${seq} (an entry was removed or renumbered)`);
    for (const col of ['actor', 'action', 'target', 'details', 'prev_hash', 'hash'] as const) {
      if (typeof r[col] !== 'string') return fail(`${col} is not text`);
    }
    if (typeof r.ts !== 'number') return fail('ts is not a number');
    if (r.prev_hash !== prev)
      return fail(
        "prev_hash does not match the previous entry's hash (an entry was changed, removed or inserted)",
      );
    const recomputed = entryHash(r as unknown as AuditEntry);
    if (recomputed !== r.hash) return fail('its content does not match its hash (the entry was changed)');
    prev = r.hash as string;
    expectedSeq++;
    n++;
  }
  return { ok: true, entries: n, head: prev };
}
