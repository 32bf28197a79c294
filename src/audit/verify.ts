import type { Database } from 'bun:sqlite';
import type { SecretBox } from '../app/keyring.ts';
import { type ChainVerdict, verifyChain } from './chain.ts';
import {
  anchorPayload,
  checkpointPayload,
  entryPayload,
  loadVerifyKey,
  type VerifyKey,
  verifySignature,
} from './signing.ts';

/**
 * A chain's verdict checked against what is kept outside it: `anchored` is the seq that the
 * signed checkpoint or anchor covers, `unanchored` how many entries run ahead of it (the lag
 * allowed for a platform chain; always 0 for the control chain when intact).
 */
export type AnchoredVerdict =
  | { ok: true; entries: number; head: string; anchored: number; unanchored: number }
  | { ok: false; entries: number; bad: { seq: number; reason: string } };

/** The instance key as verify found it: its fingerprint, and what is wrong with it if anything. */
export interface KeyReport {
  fingerprint?: string;
  problem?: string;
}

/** Loads the key to check with (see `loadVerifyKey`), as a report and the key itself. */
export function verifyKey(control: Database, secrets: SecretBox): { key: VerifyKey; report: KeyReport } {
  const key = loadVerifyKey(control, secrets);
  return {
    key,
    report: key.ok
      ? { fingerprint: key.fingerprint }
      : { ...(key.fingerprint ? { fingerprint: key.fingerprint } : {}), problem: key.reason },
  };
}

/**
 * The control chain: intact (`verifyChain`), and every entry covered by a checkpoint signed by
 * the instance key whose (seq, hash) the chain still holds. Reports an edited, recomputed,
 * renumbered, replaced or cut chain, a forged checkpoint, and entries no checkpoint covers
 * (added by someone without the key, or whose checkpoints were removed).
 */
export function verifyControlAudit(control: Database, key: VerifyKey): AnchoredVerdict {
  const chain = verifyChain(control);
  if (!chain.ok) return chain;
  const n = chain.entries;
  const fail = (seq: number, reason: string): AnchoredVerdict => ({
    ok: false,
    entries: n,
    bad: { seq, reason },
  });
  if (!key.ok) return fail(0, key.reason);
  const checkpoints = control
    .query<{ seq: number; hash: string; at: number; sig: string; entry_hash: string | null }, []>(
      `SELECT c.seq, c.hash, c.at, c.sig, a.hash AS entry_hash
       FROM audit_checkpoints c LEFT JOIN audit_log a ON a.seq = c.seq ORDER BY c.seq`,
    )
    .all();
  let covered = 0;
  for (const c of checkpoints) {
    if (!verifySignature(key.publicKey, checkpointPayload(c), c.sig))
      return fail(c.seq, 'its signed checkpoint does not verify (forged, or signed by another key)');
    if (c.entry_hash === null)
      return fail(
        c.seq,
        `a signed checkpoint covers entry #${c.seq} but the chain ends at #${n} (entries were removed or cut)`,
      );
    if (c.entry_hash !== c.hash)
      return fail(
        c.seq,
        'it is not the entry its signed checkpoint covers (the chain was rewritten and recomputed, renumbered or replaced)',
      );
    covered = c.seq;
  }
  if (covered < n)
    return fail(
      covered + 1,
      `entries #${covered + 1}–#${n} are covered by no signed checkpoint (added without the instance key, or checkpoints removed)`,
    );
  return { ok: true, entries: n, head: chain.head, anchored: covered, unanchored: 0 };
}

/**
 * A platform chain: intact, and holding the (seq, hash) anchored for it in control.db under the
 * instance key's signature. It may run ahead of the anchor (entries written after the last
 * anchor landed: `unanchored`), never behind it or beside it.
 */
export function verifyPlatformAudit(
  db: Database,
  control: Database,
  platformId: string,
  key: VerifyKey,
): AnchoredVerdict {
  const chain: ChainVerdict = verifyChain(db);
  if (!chain.ok) return chain;
  const n = chain.entries;
  const fail = (seq: number, reason: string): AnchoredVerdict => ({
    ok: false,
    entries: n,
    bad: { seq, reason },
  });
  if (!key.ok) return fail(0, key.reason);
  const anchor = control
    .query<{ platform_id: string; seq: number; hash: string; at: number; sig: string }, [string]>(
      'SELECT platform_id, seq, hash, at, sig FROM audit_anchors WHERE platform_id = ?',
    )
    .get(platformId);
  if (!anchor) return fail(0, 'control.db holds no anchor for this chain (it was removed)');
  if (!verifySignature(key.publicKey, anchorPayload(anchor), anchor.sig))
    return fail(anchor.seq, 'its anchor in control.db does not verify (forged, or signed by another key)');
  if (anchor.seq > n)
    return fail(
      anchor.seq,
      `control.db anchored entry #${anchor.seq} but the chain ends at #${n} (entries were removed or cut)`,
    );
  const at = db.query<{ hash: string }, [number]>('SELECT hash FROM audit_log WHERE seq = ?').get(anchor.seq);
  if (at?.hash !== anchor.hash)
    return fail(
      anchor.seq,
      'it is not the entry anchored in control.db (the chain was rewritten and recomputed, renumbered or replaced)',
    );
  // The lag: entries after the anchor are taken only with their own signature, made with them.
  if (n > anchor.seq) {
    const ahead = db
      .query<{ seq: number; hash: string }, [number]>(
        'SELECT seq, hash FROM audit_log WHERE seq > ? ORDER BY seq',
      )
      .all(anchor.seq);
    const sigs = new Map<number, string>();
    try {
      for (const r of db
        .query<{ seq: number; sig: string }, [number]>('SELECT seq, sig FROM audit_entry_sigs WHERE seq > ?')
        .all(anchor.seq))
        sigs.set(r.seq, r.sig);
    } catch {
      // A file without the table (its schema predates it) has no signed entries.
    }
    for (const e of ahead) {
      const sig = sigs.get(e.seq);
      if (!sig || !verifySignature(key.publicKey, entryPayload({ platform_id: platformId, ...e }), sig))
        return fail(
          e.seq,
          `entry #${e.seq} runs ahead of the anchor and is not signed by the instance key (appended or rewritten by someone without it)`,
        );
    }
  }
  return { ok: true, entries: n, head: chain.head, anchored: anchor.seq, unanchored: n - anchor.seq };
}
