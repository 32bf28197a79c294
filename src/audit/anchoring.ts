import { Database } from 'bun:sqlite';
import { existsSync } from 'node:fs';
import { basename, dirname } from 'node:path';
import type { App } from '../app/index.ts';
import type { AuditAnchoring } from './chain.ts';
import { anchorPayload, checkpointPayload, openAuditSigner } from './signing.ts';

/** A platform's chain file, for the one-time anchoring of chains made before signing existed. */
export interface PlatformChainFile {
  id: string;
  /** Absolute path of its database file (the archive file for an archived platform). */
  path: string;
}

/**
 * Opens the instance key (making it on first use) and returns what the audit port anchors
 * with, or why it cannot (logged: signing stops, and `audit verify` reports it).
 *
 * When the key is new, what exists is trusted once, as on first use: the control chain's head
 * gets a signed checkpoint and every platform chain's head an anchor, in one control
 * transaction. Never again: a key that later goes missing is not made afresh (`openAuditSigner`).
 */
export function openAuditAnchoring(
  app: App,
  platforms: () => PlatformChainFile[],
): { ok: true; anchoring: AuditAnchoring } | { ok: false; reason: string } {
  const { control, clock, log } = app;
  const opened = control
    .transaction(() => {
      const o = openAuditSigner({ control, secrets: app.secrets, clock, dataDir: app.dataDir });
      if (!o.ok || !o.created) return o;
      const head = control
        .query<{ seq: number; hash: string }, []>('SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1')
        .get();
      if (head) {
        const at = clock.now();
        control
          .query('INSERT INTO audit_checkpoints (seq, hash, at, sig) VALUES (?, ?, ?, ?)')
          .run(head.seq, head.hash, at, o.signer.sign(checkpointPayload({ ...head, at })));
      }
      for (const p of platforms()) {
        const h = headOfFile(p.path);
        if (!h) continue;
        const at = clock.now();
        control
          .query('INSERT INTO audit_anchors (platform_id, seq, hash, at, sig) VALUES (?, ?, ?, ?, ?)')
          .run(p.id, h.seq, h.hash, at, o.signer.sign(anchorPayload({ platform_id: p.id, ...h, at })));
      }
      return o;
    })
    .immediate();
  if (!opened.ok) {
    log.error('audit signing is off: checkpoints and anchors are not written', { reason: opened.reason });
    return opened;
  }
  if (opened.created)
    log.info('made the audit signing key; keep its fingerprint outside this machine', {
      fingerprint: opened.signer.fingerprint,
    });
  const platformsDir = dirname(app.platformDbPath('x'));
  return {
    ok: true,
    anchoring: {
      control,
      signer: opened.signer,
      log,
      // A platform handle is known by its path: <data>/platforms/<id>.db (never a temp file).
      platformIdOf(db) {
        const f = db.filename;
        if (dirname(f) !== platformsDir) return undefined;
        const name = basename(f);
        return name.endsWith('.db') && !name.startsWith('.') ? name.slice(0, -3) : undefined;
      },
    },
  };
}

function headOfFile(path: string): { seq: number; hash: string } | null {
  if (!existsSync(path)) return null;
  const db = new Database(path, { readonly: true });
  try {
    return db
      .query<{ seq: number; hash: string }, []>('SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1')
      .get();
  } finally {
    db.close();
  }
}
