import type { Database } from 'bun:sqlite';
import {
  createHash,
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  type KeyObject,
  sign,
  verify,
} from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import canonicalize from 'canonicalize';
import type { SecretBox, SecretSite } from '../app/keyring.ts';
import type { Clock } from '../shared/time.ts';

/** The keyring context the signing key's private half is sealed under. */
export const SIGNING_KEY_CONTEXT = 'control:audit_signing_key';

/**
 * Where a copy of the public key and its fingerprint is written when the key is made: beside
 * the data dir, never inside it (as the master key file), so that whoever rewrites control.db
 * does not thereby rewrite this copy too. `./data` → `./data.audit-key.pub`.
 */
export function publicKeyCopyPath(dataDir: string): string {
  return `${resolve(dataDir)}.audit-key.pub`;
}

/**
 * What a signature covers: canonical JSON naming the kind of statement, so a checkpoint can
 * never pass for an anchor (or the reverse).
 */
export function checkpointPayload(c: { seq: number; hash: string; at: number }): string {
  return canonicalize({ t: 'soulfra.audit.checkpoint.v1', seq: c.seq, hash: c.hash, at: c.at }) ?? '';
}

/** The signed statement of a platform anchor (see `checkpointPayload`). */
export function anchorPayload(a: { platform_id: string; seq: number; hash: string; at: number }): string {
  return (
    canonicalize({
      t: 'soulfra.audit.anchor.v1',
      platform: a.platform_id,
      seq: a.seq,
      hash: a.hash,
      at: a.at,
    }) ?? ''
  );
}

/**
 * The signed statement of one platform audit entry (see `checkpointPayload`): written with the
 * entry, in its transaction, so entries that run ahead of the platform's anchor (the lag) are
 * still the instance's own. Names the platform, so a statement cannot move to another chain.
 */
export function entryPayload(e: { platform_id: string; seq: number; hash: string }): string {
  return (
    canonicalize({ t: 'soulfra.audit.entry.v1', platform: e.platform_id, seq: e.seq, hash: e.hash }) ?? ''
  );
}

/**
 * The public key's fingerprint as operators write it down: `SHA256:` and the unpadded base64
 * of SHA-256 over the SPKI DER (the style of `ssh-keygen -l`).
 */
export function fingerprintOf(publicKey: KeyObject): string {
  const der = publicKey.export({ type: 'spki', format: 'der' });
  return `SHA256:${createHash('sha256').update(der).digest('base64').replace(/=+$/, '')}`;
}

/** The instance key, unsealed, held in memory while the instance runs. */
export interface AuditSigner {
  readonly fingerprint: string;
  /** Ed25519 over `payload`, base64. */
  sign(payload: string): string;
}

interface KeyRow {
  public_key: string;
  private_key: string;
  created_at: number;
}

/** The result of loading the instance key for checking: the public key, or what is wrong. */
export type VerifyKey =
  | { ok: true; publicKey: KeyObject; fingerprint: string }
  | { ok: false; fingerprint?: string; reason: string };

/**
 * The public key to check signatures with, after checking that it is the sealed private key's
 * own: a public key swapped in by someone who cannot seal (no master key) does not pass, and
 * neither does a sealed half that does not open.
 */
export function loadVerifyKey(control: Database, secrets: SecretBox): VerifyKey {
  const row = control
    .query<KeyRow, []>('SELECT public_key, private_key, created_at FROM audit_signing_key WHERE id = 1')
    .get();
  if (!row) return { ok: false, reason: 'control.db has no audit signing key (it was removed)' };
  let publicKey: KeyObject;
  try {
    publicKey = createPublicKey({ key: Buffer.from(row.public_key, 'base64'), format: 'der', type: 'spki' });
    if (publicKey.asymmetricKeyType !== 'ed25519') throw new Error('not an Ed25519 key');
  } catch {
    return { ok: false, reason: 'the audit public key in control.db is not an Ed25519 key' };
  }
  const fingerprint = fingerprintOf(publicKey);
  let privateKey: KeyObject;
  try {
    privateKey = privateKeyOf(row, secrets);
  } catch {
    return {
      ok: false,
      fingerprint,
      reason: 'the sealed audit signing key does not open (it was replaced, or this is not its master key)',
    };
  }
  if (fingerprintOf(createPublicKey(privateKey)) !== fingerprint) {
    return {
      ok: false,
      fingerprint,
      reason:
        'the audit public key in control.db is not the sealed signing key’s own (the public key was replaced)',
    };
  }
  return { ok: true, publicKey, fingerprint };
}

/** Whether `sig` (base64) is `publicKey`'s Ed25519 signature over `payload`. */
export function verifySignature(publicKey: KeyObject, payload: string, sig: string): boolean {
  try {
    return verify(null, Buffer.from(payload, 'utf8'), publicKey, Buffer.from(sig, 'base64'));
  } catch {
    return false;
  }
}

/** How `openAuditSigner` went: the signer, or why there is none (logged, and shown by verify). */
export type OpenedSigner =
  | { ok: true; signer: AuditSigner; created: boolean }
  | { ok: false; reason: string };

/**
 * Opens the instance's audit signing key, making it on a control.db that has none and has never
 * signed anything (a new instance, or the upgrade that brings signing). A control.db that holds
 * checkpoints or anchors but no key, or whose sealed key does not open, gets no new key: that
 * would bless whatever the chain now says. Signing then stops and `audit verify` says why.
 * A new key's public half and fingerprint are also written beside the data dir.
 */
export function openAuditSigner(opts: {
  control: Database;
  secrets: SecretBox;
  clock: Clock;
  dataDir: string;
}): OpenedSigner {
  const { control, secrets } = opts;
  const row = control
    .query<KeyRow, []>('SELECT public_key, private_key, created_at FROM audit_signing_key WHERE id = 1')
    .get();
  if (row) {
    const key = loadVerifyKey(control, secrets);
    if (!key.ok) return { ok: false, reason: key.reason };
    return { ok: true, signer: signerOf(privateKeyOf(row, secrets), key.fingerprint), created: false };
  }
  const signed = control
    .query<{ n: number }, []>(
      'SELECT (SELECT count(*) FROM audit_checkpoints) + (SELECT count(*) FROM audit_anchors) AS n',
    )
    .get()!.n;
  if (signed > 0) {
    return {
      ok: false,
      reason:
        'control.db holds signed checkpoints but no audit signing key (it was removed); no new key is made',
    };
  }
  const pair = generateKeyPairSync('ed25519');
  const pub = pair.publicKey.export({ type: 'spki', format: 'der' }).toString('base64');
  const priv = pair.privateKey.export({ type: 'pkcs8', format: 'der' }).toString('base64');
  control
    .query('INSERT INTO audit_signing_key (id, public_key, private_key, created_at) VALUES (1, ?, ?, ?)')
    .run(pub, secrets.seal(priv, SIGNING_KEY_CONTEXT), opts.clock.now());
  const fingerprint = fingerprintOf(pair.publicKey);
  writePublicKeyCopy(opts.dataDir, pair.publicKey, fingerprint);
  return { ok: true, signer: signerOf(pair.privateKey, fingerprint), created: true };
}

/**
 * The fingerprint kept beside the data dir when the key was made, if that copy is there.
 * `audit verify` compares it with the key in control.db.
 */
export function readPublicKeyCopy(dataDir: string): string | undefined {
  const path = publicKeyCopyPath(dataDir);
  if (!existsSync(path)) return undefined;
  const m = /^fingerprint: (\S+)$/m.exec(readFileSync(path, 'utf8'));
  return m?.[1] ?? 'unreadable';
}

/**
 * Declares the sealed signing key to the keyring, so `keys rotate` re-seals it under the new
 * data key like every other stored secret.
 */
export const AUDIT_SECRET_SITE: SecretSite = {
  name: 'audit_signing_key',
  scope: 'control',
  reseal(db, _platformId, rewrite) {
    const row = db
      .query<{ private_key: string }, []>('SELECT private_key FROM audit_signing_key WHERE id = 1')
      .get();
    if (!row) return 0;
    db.query('UPDATE audit_signing_key SET private_key = ? WHERE id = 1').run(
      rewrite(row.private_key, SIGNING_KEY_CONTEXT),
    );
    return 1;
  },
};

function privateKeyOf(row: KeyRow, secrets: SecretBox): KeyObject {
  const der = Buffer.from(secrets.unseal(row.private_key, SIGNING_KEY_CONTEXT), 'base64');
  return createPrivateKey({ key: der, format: 'der', type: 'pkcs8' });
}

function signerOf(privateKey: KeyObject, fingerprint: string): AuditSigner {
  return {
    fingerprint,
    sign: (payload) => sign(null, Buffer.from(payload, 'utf8'), privateKey).toString('base64'),
  };
}

function writePublicKeyCopy(dataDir: string, publicKey: KeyObject, fingerprint: string): void {
  const pem = publicKey.export({ type: 'spki', format: 'pem' }).toString();
  const text = `# soulfra audit signing key (public half); keep this fingerprint outside the machine\nfingerprint: ${fingerprint}\n${pem}`;
  try {
    writeFileSync(publicKeyCopyPath(dataDir), text, { mode: 0o644 });
  } catch {
    // Best effort: the copy is a convenience; the fingerprint printed by verify is the record.
  }
}
