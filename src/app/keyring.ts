import { Database } from 'bun:sqlite';
import {
  closeSync,
  constants,
  existsSync,
  fsyncSync,
  mkdirSync,
  openSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  writeSync,
} from 'node:fs';
import { dirname, resolve } from 'node:path';
import { tx } from '../db/index.ts';
import { aesGcmOpen, aesGcmSeal } from '../shared/crypto.ts';
import { AppError } from '../shared/errors.ts';
import { type Clock, systemClock } from '../shared/time.ts';
import {
  clearSecretsUpgrade,
  createDataKeysTable,
  type DataKeyRow,
  dataKeyRows,
  insertDataKey,
  retireDataKey,
  rewrapDataKey,
  secretsUpgradePending,
} from './keyring.repository.ts';
import type { Logger } from './logger.ts';

/**
 * Seals and opens stored secrets (OIDC client secrets, SAML SP keys, TOTP seeds, mail bodies).
 * `context` names where the value lives (`platform:<id>:user:<uid>:totp`) and is bound as
 * AES-GCM additional data, so a sealed value copied to another row or tenant does not open.
 */
export interface SecretBox {
  /** Seals `plain` under the current data key: `sf1.<data key id>.<base64url(iv|ct|tag)>`. */
  seal(plain: string, context: string): string;
  /** Opens a sealed value; throws `keys.unseal_failed` (wrong context, key or bytes). */
  unseal(sealed: string, context: string): string;
}

/** The prefix of every sealed value (format version 1). */
export const SEALED_PREFIX = 'sf1.';

/** Whether a stored value is sealed (values from before sealing are plain text). */
export function isSealed(value: string): boolean {
  return value.startsWith(SEALED_PREFIX);
}

/**
 * A place where sealed values are stored, declared by the domain that owns the table, so that
 * `keys rotate` and the upgrade of older databases can re-seal every value without knowing the
 * schema. `reseal` runs inside a transaction and rewrites each value with `rewrite`, which takes
 * a sealed (or, from older databases, plain) value and its context and returns it sealed under
 * the current data key. It returns how many values it rewrote.
 */
export interface SecretSite {
  name: string;
  /** Which databases hold it: control.db, or every platform's database. */
  scope: 'control' | 'tenant';
  /** `sealingScope` is the database's (`control`, `platform:<id>`), as `secretsOf(db).scope`. */
  reseal(db: Database, sealingScope: string, rewrite: (value: string, context: string) => string): number;
}

/** The context a value is sealed with: the database's scope and the field (`user:<id>:totp`). */
export function secretContext(scope: string, field: string): string {
  return `${scope}:${field}`;
}

/** Sealing bound to one database: contexts are `<scope>:<field>`. */
export interface DbSecrets {
  /** `control` for control.db, `platform:<id>` for a platform's database. */
  readonly scope: string;
  seal(plain: string, field: string): string;
  unseal(sealed: string, field: string): string;
}

const bound = new WeakMap<Database, DbSecrets>();

/**
 * Binds a database handle to the keyring and its scope, so that code holding only the handle
 * (repositories, `readSsoSettings(db)`) seals with the right context. `openApp` binds
 * control.db and every platform handle the pool opens.
 */
export function bindSecrets(db: Database, box: SecretBox, scope: string): void {
  bound.set(db, {
    scope,
    seal: (plain, field) => box.seal(plain, secretContext(scope, field)),
    unseal: (sealed, field) => box.unseal(sealed, secretContext(scope, field)),
  });
}

/** The sealing bound to `db` (see `bindSecrets`); throws when the handle was opened unbound. */
export function secretsOf(db: Database): DbSecrets {
  const s = bound.get(db);
  if (!s) throw new Error('this database handle has no keyring bound (open it through the App)');
  return s;
}

/** Where the master key came from: the environment, or a key file (created by us or not). */
export type MasterKeySource =
  | { kind: 'env'; variable: 'SOULFRA_MASTER_KEY' }
  | { kind: 'file'; path: string; created: boolean };

/** The environment variable that holds the master key, when a key file is not used. */
export const MASTER_KEY_ENV = 'SOULFRA_MASTER_KEY';

/**
 * The default key file: beside the data dir, never inside it, so a copy of the data dir (a
 * backup, a snapshot) does not carry the key that opens its secrets: `./data` → `./data.master.key`.
 */
export function defaultMasterKeyFile(dataDir: string): string {
  return `${resolve(dataDir)}.master.key`;
}

/**
 * Parses a master key: 32 bytes written as 64 hex digits or as base64/base64url. Anything else
 * is refused with `keys.master_invalid`, naming the source and what was wrong.
 */
export function parseMasterKey(text: string, source: string): Buffer {
  const s = text.trim();
  if (/^[0-9a-fA-F]{64}$/.test(s)) return Buffer.from(s, 'hex');
  if (/^[A-Za-z0-9+/_-]+={0,2}$/.test(s)) {
    const bytes = Buffer.from(s.replace(/-/g, '+').replace(/_/g, '/'), 'base64');
    if (bytes.length === 32) return bytes;
    throw new AppError(
      'keys.master_invalid',
      `${source} must be a 32-byte key (64 hex digits or base64); it decodes to ${bytes.length} bytes`,
      400,
    );
  }
  throw new AppError(
    'keys.master_invalid',
    `${source} must be a 32-byte key written as 64 hex digits or base64 (it is neither)`,
    400,
  );
}

/** A new random master key, as written to key files and printed by `keys export`: base64. */
export function newMasterKey(): Buffer {
  return Buffer.from(crypto.getRandomValues(new Uint8Array(32)));
}

/** What `keys export` hands over for escrow. */
export interface MasterKeyExport {
  /** The master key, base64 (what SOULFRA_MASTER_KEY or the key file holds). */
  master_key: string;
  source: MasterKeySource;
  /** Data keys (wrapped in control.db): a restore needs control.db and this master key. */
  data_keys: { id: string; created_at: number; retired_at: number | null }[];
}

const wrapAad = (id: string) => `soulfra:data_key:${id}`;

/**
 * The instance's keyring: the master key (from SOULFRA_MASTER_KEY or the key file) and the
 * data keys it unwraps from control.db. Implements `SecretBox` for the App, plus what
 * `keys rotate` and `keys export` need.
 *
 * NB! A master key that does not unwrap the stored data keys stops start-up
 * (`keys.master_mismatch`); a new key is created only for a control.db that has none.
 */
export class Keyring implements SecretBox {
  readonly #control: Database;
  readonly #clock: Clock;
  #master: Buffer;
  #source: MasterKeySource;
  /** Usable data keys, newest last; the last one seals. */
  readonly #active = new Map<string, Buffer>();
  /** Retired data keys: `unseal` refuses them; only `reseal` (rotation) still opens with them. */
  readonly #retired = new Map<string, Buffer>();

  private constructor(control: Database, clock: Clock, master: Buffer, source: MasterKeySource) {
    this.#control = control;
    this.#clock = clock;
    this.#master = master;
    this.#source = source;
  }

  /**
   * Opens the keyring of a data dir whose control.db is migrated: reads the master key
   * (`envKey` wins over the key file), unwraps every data key, and on a new control.db makes
   * the first data key (and the key file, owner-only, when neither exists). Throws
   * `keys.master_invalid`, `keys.master_missing` or `keys.master_mismatch`.
   */
  static open(opts: {
    control: Database;
    dataDir: string;
    clock: Clock;
    log: Logger;
    keyFile?: string | undefined;
    envKey?: string | undefined;
  }): Keyring {
    const rows = dataKeyRows(opts.control);
    const path = opts.keyFile ? resolve(opts.keyFile) : defaultMasterKeyFile(opts.dataDir);
    let master: Buffer;
    let source: MasterKeySource;
    if (opts.envKey !== undefined && opts.envKey !== '') {
      master = parseMasterKey(opts.envKey, MASTER_KEY_ENV);
      source = { kind: 'env', variable: MASTER_KEY_ENV };
    } else if (existsSync(path)) {
      master = readKeyFile(path, opts.log);
      source = { kind: 'file', path, created: false };
      // A master-key change that stopped between its steps left the new key aside.
      const pending = `${path}.new`;
      if (existsSync(pending)) {
        const next = readKeyFile(pending, opts.log);
        if (rows.length > 0 && !unwrapsAll(master, rows) && unwrapsAll(next, rows)) {
          renameSync(pending, path);
          fsyncDir(dirname(path));
          master = next;
        } else if (rows.length === 0 || unwrapsAll(master, rows)) {
          rmSync(pending, { force: true });
        }
      }
    } else if (rows.length > 0) {
      throw new AppError(
        'keys.master_missing',
        `control.db holds secrets sealed under a master key, but there is no key file at ${path} and ${MASTER_KEY_ENV} is not set; restore the key from escrow (soulfra keys export) to that path or into ${MASTER_KEY_ENV}`,
        500,
      );
    } else {
      master = newMasterKey();
      writeKeyFile(path, master);
      source = { kind: 'file', path, created: true };
      opts.log.warn(
        'created a master key; keep a copy (soulfra keys export): without it the sealed secrets are lost',
        {
          path,
        },
      );
    }
    const ring = new Keyring(opts.control, opts.clock, master, source);
    for (const r of rows) {
      const key = aesGcmOpen(master, Buffer.from(r.wrapped, 'base64url'), wrapAad(r.id));
      if (key?.length !== 32) {
        throw new AppError(
          'keys.master_mismatch',
          `the master key from ${describe(source)} does not open data key ${r.id} in control.db: it is not the key this data dir was sealed with (no new key was made; set the right ${MASTER_KEY_ENV} or key file)`,
          500,
        );
      }
      if (r.retired_at === null) ring.#active.set(r.id, key);
      else ring.#retired.set(r.id, key);
    }
    if (ring.#active.size === 0) ring.addDataKey();
    return ring;
  }

  /**
   * A keyring held in memory only (random master and data key), for tests and tools that
   * never store what they seal.
   */
  static ephemeral(clock: Clock = systemClock): Keyring {
    const control = new Database(':memory:', { strict: true });
    createDataKeysTable(control);
    const ring = new Keyring(control, clock, newMasterKey(), { kind: 'env', variable: MASTER_KEY_ENV });
    ring.addDataKey();
    return ring;
  }

  /** Where the master key came from (printed by `serve` on first run and by `keys export`). */
  get source(): MasterKeySource {
    return this.#source;
  }

  /** The id of the data key that seals new values. */
  get currentKeyId(): string {
    const id = [...this.#active.keys()].at(-1);
    if (!id) throw new Error('keyring has no active data key');
    return id;
  }

  seal(plain: string, context: string): string {
    const id = this.currentKeyId;
    const box = aesGcmSeal(this.#active.get(id)!, Buffer.from(plain, 'utf8'), context);
    return `${SEALED_PREFIX}${id}.${box.toString('base64url')}`;
  }

  unseal(sealed: string, context: string): string {
    return this.#open(sealed, context, false);
  }

  #open(sealed: string, context: string, retiredToo: boolean): string {
    const m = /^sf1\.([A-Za-z0-9_-]+)\.([A-Za-z0-9_-]+)$/.exec(sealed);
    if (!m) throw new AppError('keys.unseal_failed', `a stored secret (${context}) is not sealed`, 500);
    const key = this.#active.get(m[1]!) ?? (retiredToo ? this.#retired.get(m[1]!) : undefined);
    if (!key) {
      const why = this.#retired.has(m[1]!)
        ? 'was sealed under a retired data key'
        : 'names an unknown data key';
      throw new AppError('keys.unseal_failed', `a stored secret (${context}) ${why}`, 500);
    }
    const plain = aesGcmOpen(key, Buffer.from(m[2]!, 'base64url'), context);
    if (!plain)
      throw new AppError('keys.unseal_failed', `a stored secret (${context}) does not open here`, 500);
    return plain.toString('utf8');
  }

  /**
   * A stored value sealed under the current data key, for `keys rotate`: a sealed value is
   * opened and sealed again; a plain value (written by an older soulfra) is sealed. Unlike
   * `unseal`, it also opens values under retired keys (a platform file restored from a backup
   * older than the last rotation), so a rotation after a restore brings them back.
   */
  reseal(value: string, context: string): string {
    const plain = isSealed(value) ? this.#open(value, context, true) : value;
    return this.seal(plain, context);
  }

  /** Makes a new data key, stored wrapped in control.db; it seals from now on. */
  addDataKey(): string {
    const id = `dk_${Buffer.from(crypto.getRandomValues(new Uint8Array(8))).toString('hex')}`;
    const key = Buffer.from(crypto.getRandomValues(new Uint8Array(32)));
    const wrapped = aesGcmSeal(this.#master, key, wrapAad(id)).toString('base64url');
    insertDataKey(this.#control, id, wrapped, this.#clock.now());
    this.#active.set(id, key);
    return id;
  }

  /** Retires every data key but the current one: values sealed under them no longer open. */
  retireOthers(): string[] {
    const keep = this.currentKeyId;
    const gone = [...this.#active.keys()].filter((id) => id !== keep);
    const now = this.#clock.now();
    tx(this.#control, () => {
      for (const id of gone) retireDataKey(this.#control, id, now);
    });
    for (const id of gone) {
      this.#retired.set(id, this.#active.get(id)!);
      this.#active.delete(id);
    }
    return gone;
  }

  /** The data keys in control.db, oldest first. */
  dataKeys(): { id: string; created_at: number; retired_at: number | null }[] {
    return dataKeyRows(this.#control).map((r) => ({
      id: r.id,
      created_at: r.created_at,
      retired_at: r.retired_at,
    }));
  }

  /** The master key and what a restore needs with it (for escrow). */
  exportMaster(): MasterKeyExport {
    return { master_key: this.#master.toString('base64'), source: this.#source, data_keys: this.dataKeys() };
  }

  /**
   * Re-wraps every data key under a new master key. With a key file: the new key is written
   * aside (`<file>.new`, fsynced), control.db is updated in one transaction, then the file is
   * renamed over the old one; a crash between the steps is finished at the next start. With
   * SOULFRA_MASTER_KEY the new key is returned once and must replace the variable before the
   * next start. Returns the new key (base64).
   */
  rewrapMaster(): string {
    const next = newMasterKey();
    const rows = dataKeyRows(this.#control);
    const src = this.#source;
    const pending = src.kind === 'file' ? `${src.path}.new` : null;
    // 1. The new key reaches the disk before anything depends on it.
    if (pending) writeKeyFile(pending, next);
    // 2. Every data key re-wrapped, in one transaction: the old master or the new one opens all.
    tx(this.#control, () => {
      for (const r of rows) {
        const key = aesGcmOpen(this.#master, Buffer.from(r.wrapped, 'base64url'), wrapAad(r.id));
        if (!key)
          throw new AppError(
            'keys.master_mismatch',
            `data key ${r.id} does not open under the master key`,
            500,
          );
        const wrapped = aesGcmSeal(next, key, wrapAad(r.id)).toString('base64url');
        rewrapDataKey(this.#control, r.id, wrapped);
      }
    });
    // 3. The new key file replaces the old one.
    if (pending && src.kind === 'file') {
      renameSync(pending, src.path);
      fsyncDir(dirname(src.path));
    }
    this.#master = next;
    return next.toString('base64');
  }

  /**
   * Seals what an older soulfra left in clear, once per database: runs when the migration's
   * `secrets_upgrade` marker is present and removes it in the same transaction.
   */
  upgradeLegacy(
    db: Database,
    kind: 'control' | 'tenant',
    scope: string,
    sites: readonly SecretSite[],
  ): number {
    if (!secretsUpgradePending(db)) return 0;
    return tx(db, () => {
      let n = 0;
      for (const s of sites)
        if (s.scope === kind) n += s.reseal(db, scope, (v, c) => (isSealed(v) ? v : this.seal(v, c)));
      clearSecretsUpgrade(db);
      return n;
    });
  }
}

function describe(source: MasterKeySource): string {
  return source.kind === 'env' ? source.variable : `the key file ${source.path}`;
}

function unwrapsAll(master: Buffer, rows: DataKeyRow[]): boolean {
  return rows.every((r) => aesGcmOpen(master, Buffer.from(r.wrapped, 'base64url'), wrapAad(r.id)) !== null);
}

function readKeyFile(path: string, log: Logger): Buffer {
  let text: string;
  try {
    const st = statSync(path);
    if ((st.mode & 0o077) !== 0)
      log.warn('the master key file can be read by others than its owner; chmod 600 it', { path });
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new AppError(
      'keys.master_unreadable',
      `cannot read the master key file ${path}: ${(e as Error).message}`,
      500,
    );
  }
  return parseMasterKey(text, `the master key file ${path}`);
}

/** Writes a key file owner-only (its folder too, when we make it) and fsyncs it and its folder. */
function writeKeyFile(path: string, key: Buffer): void {
  const dir = dirname(path);
  try {
    if (!existsSync(dir)) mkdirSync(dir, { recursive: true, mode: 0o700 });
    const tmp = `${path}.tmp-${process.pid}`;
    // NB! Never through a link planted in its place (the folder beside the data dir may be
    // shared): a leftover is removed, then the file is created exclusively, not followed.
    rmSync(tmp, { force: true });
    const fd = openSync(
      tmp,
      constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW,
      0o600,
    );
    try {
      writeSync(fd, `${key.toString('base64')}\n`);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, path);
    fsyncDir(dir);
  } catch (e) {
    throw new AppError(
      'keys.master_unwritable',
      `cannot write the master key file ${path}: ${(e as Error).message}`,
      500,
    );
  }
}

function fsyncDir(dir: string): void {
  const fd = openSync(dir, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}
