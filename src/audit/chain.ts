import type { Database } from 'bun:sqlite';
import canonicalize from 'canonicalize';
import type { AuditEntry, AuditInput, AuditPort } from '../app/audit-port.ts';
import { sha256Hex } from '../shared/crypto.ts';
import type { Clock } from '../shared/time.ts';

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
 * The audit port over SQLite: appends to the `audit_log` table of the database it is given.
 * Call it inside the transaction of the change it records; outside one it opens its own.
 */
export function createAuditLog(clock: Clock): AuditPort {
  return {
    append(db: Database, input: AuditInput): AuditEntry {
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
        return entry;
      };
      return db.inTransaction ? write() : db.transaction(write).immediate();
    },
  };
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
