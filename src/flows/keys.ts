import type { Database } from 'bun:sqlite';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { type App, bindSecrets, type MasterKeyExport, type MasterKeySource } from '../app/index.ts';
import { migrate, openDatabase, TENANT_MIGRATIONS, tx } from '../db/index.ts';
import type { OperatorPrincipal } from '../identity/index.ts';
import { AppError } from '../shared/errors.ts';
import type { Tenancy } from '../tenancy/index.ts';

/** Passes over the platforms before a rotation whose files keep moving gives up (old key kept). */
const MAX_PASSES = 100;

/** What `keys rotate` did to the data keys. */
export interface DataKeyRotation {
  kind: 'data_key';
  /** The new data key: every stored secret is sealed under it now. */
  data_key: string;
  /** The data keys retired: what they sealed no longer opens. */
  retired: string[];
  /** Secrets re-sealed: in control.db, and in the platform databases (how many platforms). */
  resealed: { control: number; platforms: number; platform_secrets: number };
}

/** What `keys rotate --master` did: the data keys re-wrapped under a new master key. */
export interface MasterKeyRotation {
  kind: 'master_key';
  source: MasterKeySource;
  /** For SOULFRA_MASTER_KEY users only, shown this once: set it before the next start. */
  new_master_key?: string;
  data_keys: number;
}

/**
 * Rotates the data key: a new data key first (from then on every new secret is sealed under
 * it), then every stored secret is re-sealed under it, database by database, each in one
 * transaction (control.db, then every platform's), and only then are the old keys retired.
 * A failure part way leaves the old keys active, so everything still opens; running it again
 * finishes the job. Audited in the control chain (`keys.rotated`).
 */
export async function rotateDataKey(
  app: App,
  tenancy: Tenancy,
  by: OperatorPrincipal,
): Promise<DataKeyRotation> {
  const ring = app.keyring;
  // 1. The new key seals from here on (in this process, which owns every database).
  const id = ring.addDataKey();
  const rewrite = (v: string, c: string) => ring.reseal(v, c);
  // 2. control.db's secrets, in one transaction.
  const control = tx(app.control, () =>
    app.secretSites
      .filter((s) => s.scope === 'control')
      .reduce((n, s) => n + s.reseal(app.control, 'control', rewrite), 0),
  );
  // 3. Each platform's secrets, one transaction per database.
  let platforms = 0;
  let platformSecrets = 0;
  const resealPlatform = (db: Database, id: string) =>
    tx(db, () =>
      app.secretSites
        .filter((s) => s.scope === 'tenant')
        .reduce((n, s) => n + s.reseal(db, `platform:${id}`, rewrite), 0),
    );
  // A platform created, archived or unarchived while this runs (each await lets requests and
  // commands in) may be missed by one pass, or have moved its file: passes go on over the
  // platforms (by id and file) not yet done, until a pass finds none. From that check to the
  // retirement below nothing awaits, so no move can slip in between.
  const done = new Set<string>();
  const resealedIds = new Set<string>();
  for (let pass = 0; ; pass++) {
    const todo = tenancy.list().filter((p) => !done.has(`${p.id} ${p.db_file}`));
    if (todo.length === 0) break;
    if (pass >= MAX_PASSES) {
      throw new AppError(
        'keys.rotate_incomplete',
        `platform files kept moving during the rotation (${todo.map((p) => p.slug).join(', ')}); the old data key stays active, run keys rotate again`,
        409,
      );
    }
    if (pass > 0) await new Promise<void>((r) => setImmediate(r));
    for (const p of todo) {
      const path = join(app.dataDir, p.db_file);
      // A file being moved right now is looked for again in the next pass.
      if (!existsSync(path)) continue;
      if (path === app.platformDbPath(p.id)) {
        platformSecrets += await app.platformDbs.use(p.id, (db) => resealPlatform(db, p.id));
      } else {
        // An archived file (platforms/archive/): the pool does not open it, so it is opened here,
        // brought to the current schema as the pool would at unarchive, re-sealed and closed.
        const db = openDatabase(path, 'tenant', { create: false });
        try {
          migrate(db, TENANT_MIGRATIONS, `archived platform database ${p.id}`);
          bindSecrets(db, ring, `platform:${p.id}`);
          platformSecrets += resealPlatform(db, p.id);
        } finally {
          db.close();
        }
      }
      done.add(`${p.id} ${p.db_file}`);
      resealedIds.add(p.id);
    }
  }
  platforms = resealedIds.size;
  // 4. Nothing is sealed under the old keys any more: retire them.
  const retired = ring.retireOthers();
  app.audit.append(app.control, {
    actor: by.actor,
    action: 'keys.rotated',
    target: `data_key:${id}`,
    details: { retired, control, platforms, platform_secrets: platformSecrets },
  });
  return {
    kind: 'data_key',
    data_key: id,
    retired,
    resealed: { control, platforms, platform_secrets: platformSecrets },
  };
}

/**
 * Re-wraps every data key under a new master key (the secrets themselves stay as they are).
 * With a key file, the new key replaces it (written aside, fsynced, renamed); with
 * SOULFRA_MASTER_KEY, the new key is returned this once. Audited (`keys.master_rotated`).
 */
export function rotateMasterKey(app: App, by: OperatorPrincipal): MasterKeyRotation {
  const next = app.keyring.rewrapMaster();
  const source = app.keyring.source;
  const dataKeys = app.keyring.dataKeys().length;
  app.audit.append(app.control, {
    actor: by.actor,
    action: 'keys.master_rotated',
    target: source.kind === 'env' ? `env:${source.variable}` : `file:${source.path}`,
    details: { data_keys: dataKeys },
  });
  return {
    kind: 'master_key',
    source,
    ...(source.kind === 'env' ? { new_master_key: next } : {}),
    data_keys: dataKeys,
  };
}

/**
 * The master key and what a restore needs with it, for escrow (`keys export`). Audited
 * (`keys.exported`): who took a copy of the key is on the record.
 */
export function exportMasterKey(app: App, by: OperatorPrincipal): MasterKeyExport & { restore: string } {
  const x = app.keyring.exportMaster();
  app.audit.append(app.control, {
    actor: by.actor,
    action: 'keys.exported',
    target: 'master_key',
    details: { data_keys: x.data_keys.length },
  });
  return {
    ...x,
    restore:
      'a restore needs control.db and this master key: put it in SOULFRA_MASTER_KEY, or in the key file (owner-only) beside the data dir (<data dir>.master.key) or at master_key_file',
  };
}
