import { Database } from 'bun:sqlite';
import { afterAll, describe, expect, test } from 'bun:test';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CONTROL_MIGRATIONS, migrate } from '../db/index.ts';
import { isAppError } from '../shared/errors.ts';
import { defaultMasterKeyFile, Keyring, newMasterKey, parseMasterKey } from './keyring.ts';
import { createLogger, silentLogger } from './logger.ts';

const clock = { now: () => 1_800_000_000_000 };
const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/** A fresh data dir path (not created) and a migrated control.db in memory. */
function fresh() {
  const root = mkdtempSync(join(tmpdir(), 'soulfra-keyring-'));
  dirs.push(root);
  const control = new Database(':memory:', { strict: true });
  migrate(control, CONTROL_MIGRATIONS, 'control.db');
  return { dataDir: join(root, 'data'), control };
}

/** The error code a call throws ('ok' when it does not throw). */
function codeOf(f: () => unknown): string {
  try {
    f();
    return 'ok';
  } catch (e) {
    return isAppError(e) ? e.code : `not an AppError: ${String(e)}`;
  }
}

describe('the keyring: seal and unseal', () => {
  const ring = Keyring.ephemeral(clock);
  const CTX = 'platform:plt_a:user:usr_1:totp';
  const sealed = ring.seal('JBSWY3DPEHPK3PXP', CTX);

  test('sealed text is self-describing (sf1.<data key id>.<base64url>) and opens under its context', () => {
    expect(sealed).toMatch(new RegExp(`^sf1\\.${ring.currentKeyId}\\.[A-Za-z0-9_-]+$`));
    expect(sealed).not.toContain('JBSWY3DPEHPK3PXP');
    expect(ring.unseal(sealed, CTX)).toBe('JBSWY3DPEHPK3PXP');
    // A fresh IV each time: the same secret never seals to the same text.
    expect(ring.seal('JBSWY3DPEHPK3PXP', CTX)).not.toBe(sealed);
  });

  const [, kid, body] = sealed.split('.') as [string, string, string];
  const bytes = Buffer.from(body, 'base64url');
  const flip = (i: number) => {
    const b = Buffer.from(bytes);
    b[i] = b[i]! ^ 1;
    return `sf1.${kid}.${b.toString('base64url')}`;
  };
  const other = Keyring.ephemeral(clock);
  const attacks: { name: string; value: string; context: string }[] = [
    { name: 'copied to another user', value: sealed, context: 'platform:plt_a:user:usr_2:totp' },
    { name: 'copied to another tenant', value: sealed, context: 'platform:plt_b:user:usr_1:totp' },
    { name: 'copied to another field', value: sealed, context: 'platform:plt_a:user:usr_1:totp_pending' },
    { name: 'a context that only starts the same', value: sealed, context: 'platform:plt_a:user:usr_1:tot' },
    { name: 'a flipped IV bit', value: flip(0), context: CTX },
    { name: 'a flipped ciphertext bit', value: flip(14), context: CTX },
    { name: 'a flipped tag bit', value: flip(bytes.length - 1), context: CTX },
    { name: 'truncated', value: `sf1.${kid}.${bytes.subarray(0, 20).toString('base64url')}`, context: CTX },
    { name: 'another data key id', value: `sf1.dk_0000000000000000.${body}`, context: CTX },
    { name: 'sealed by another instance', value: other.seal('JBSWY3DPEHPK3PXP', CTX), context: CTX },
    { name: 'plain text (not sealed)', value: 'JBSWY3DPEHPK3PXP', context: CTX },
    { name: 'another format version', value: `sf2.${kid}.${body}`, context: CTX },
    { name: 'empty', value: '', context: CTX },
  ];
  for (const a of attacks) {
    test(`refused: ${a.name}`, () => {
      expect(codeOf(() => ring.unseal(a.value, a.context))).toBe('keys.unseal_failed');
    });
  }

  test('after a new data key and retirement, what the old key sealed no longer opens; resealed values do', () => {
    const r = Keyring.ephemeral(clock);
    const old = r.seal('s3cret', 'control:x');
    const oldId = r.currentKeyId;
    const newId = r.addDataKey();
    expect(r.unseal(old, 'control:x')).toBe('s3cret');
    const again = r.reseal(old, 'control:x');
    expect(again.startsWith(`sf1.${newId}.`)).toBe(true);
    expect(r.retireOthers()).toEqual([oldId]);
    expect(codeOf(() => r.unseal(old, 'control:x'))).toBe('keys.unseal_failed');
    expect(r.unseal(again, 'control:x')).toBe('s3cret');
    // A value under the retired key (a file restored from an older backup) comes back only
    // through the next rotation's re-seal, never through a plain read.
    const rescued = r.reseal(old, 'control:x');
    expect(rescued.startsWith(`sf1.${newId}.`)).toBe(true);
    expect(r.unseal(rescued, 'control:x')).toBe('s3cret');
    expect(codeOf(() => r.reseal(old, 'control:y'))).toBe('keys.unseal_failed');
  });
});

describe('master keys', () => {
  const key = newMasterKey();
  const accepted: [string, string][] = [
    ['64 hex digits', key.toString('hex')],
    ['64 HEX DIGITS', key.toString('hex').toUpperCase()],
    ['base64', key.toString('base64')],
    ['base64url', key.toString('base64url')],
    ['base64 with a newline (a key file)', `${key.toString('base64')}\n`],
  ];
  for (const [name, text] of accepted) {
    test(`accepted: ${name}`, () => {
      expect(parseMasterKey(text, 'SOULFRA_MASTER_KEY').equals(key)).toBe(true);
    });
  }
  const refused: [string, string][] = [
    ['empty', ''],
    ['31 bytes', key.subarray(0, 31).toString('base64')],
    ['33 bytes', Buffer.concat([key, Buffer.from([1])]).toString('base64')],
    ['63 hex digits', key.toString('hex').slice(1)],
    ['a passphrase', 'correct horse battery staple'],
  ];
  for (const [name, text] of refused) {
    test(`refused with keys.master_invalid: ${name}`, () => {
      let err: unknown;
      try {
        parseMasterKey(text, 'SOULFRA_MASTER_KEY');
      } catch (e) {
        err = e;
      }
      expect(isAppError(err) && err.code).toBe('keys.master_invalid');
      expect((err as Error).message).toContain('SOULFRA_MASTER_KEY');
    });
  }
});

describe('opening the keyring of a data dir', () => {
  test('the first open makes an owner-only key file beside the data dir, logs where, and the next open reuses it', () => {
    const { dataDir, control } = fresh();
    const lines: string[] = [];
    const log = createLogger({ level: 'info', json: true, write: (l) => lines.push(l) });
    const first = Keyring.open({ control, dataDir, clock, log });
    const path = defaultMasterKeyFile(dataDir);
    expect(path).toBe(`${dataDir}.master.key`);
    expect(first.source).toEqual({ kind: 'file', path, created: true });
    expect(statSync(path).mode & 0o777).toBe(0o600);
    expect(lines.some((l) => l.includes('created a master key') && l.includes(path))).toBe(true);
    const sealed = first.seal('hello', 'control:t');
    const second = Keyring.open({ control, dataDir, clock, log: silentLogger });
    expect(second.source).toEqual({ kind: 'file', path, created: false });
    expect(second.unseal(sealed, 'control:t')).toBe('hello');
    // The data key lives wrapped in control.db, never in clear.
    const row = control.query<{ wrapped: string }, []>('SELECT wrapped FROM data_keys').get()!;
    expect(row.wrapped.length).toBeGreaterThan(40);
  });

  test('SOULFRA_MASTER_KEY wins over the key file; no key file is made for it', () => {
    const { dataDir, control } = fresh();
    const env = newMasterKey().toString('hex');
    const ring = Keyring.open({ control, dataDir, clock, log: silentLogger, envKey: env });
    expect(ring.source).toEqual({ kind: 'env', variable: 'SOULFRA_MASTER_KEY' });
    expect(existsSync(defaultMasterKeyFile(dataDir))).toBe(false);
    expect(ring.exportMaster().master_key).toBe(Buffer.from(env, 'hex').toString('base64'));
  });

  // Each case: a data dir sealed under one master key, then opened with something else.
  const refusals: {
    name: string;
    open: (d: { dataDir: string; control: Database; keyFile: string }) => Keyring;
    code: string;
  }[] = [
    {
      name: 'a different SOULFRA_MASTER_KEY',
      open: (d) =>
        Keyring.open({ ...d, clock, log: silentLogger, envKey: newMasterKey().toString('base64') }),
      code: 'keys.master_mismatch',
    },
    {
      name: 'an invalid SOULFRA_MASTER_KEY',
      open: (d) => Keyring.open({ ...d, clock, log: silentLogger, envKey: 'not-a-key' }),
      code: 'keys.master_invalid',
    },
    {
      name: 'the key file replaced by another key',
      open: (d) => {
        writeFileSync(d.keyFile, `${newMasterKey().toString('base64')}\n`, { mode: 0o600 });
        return Keyring.open({ ...d, clock, log: silentLogger });
      },
      code: 'keys.master_mismatch',
    },
    {
      name: 'the key file gone (it must not be silently re-made)',
      open: (d) => {
        rmSync(d.keyFile);
        return Keyring.open({ ...d, clock, log: silentLogger });
      },
      code: 'keys.master_missing',
    },
    {
      name: 'a configured key file that does not exist',
      open: (d) => Keyring.open({ ...d, clock, log: silentLogger, keyFile: `${d.keyFile}.elsewhere` }),
      code: 'keys.master_missing',
    },
  ];
  for (const r of refusals) {
    test(`start-up refused: ${r.name} (${r.code}), and nothing is changed`, () => {
      const { dataDir, control } = fresh();
      const keyFile = defaultMasterKeyFile(dataDir);
      Keyring.open({ control, dataDir, clock, log: silentLogger });
      const before = control.query('SELECT id, wrapped, retired_at FROM data_keys').all();
      expect(codeOf(() => r.open({ dataDir, control, keyFile }))).toBe(r.code);
      expect(control.query('SELECT id, wrapped, retired_at FROM data_keys').all()).toEqual(before);
      expect(existsSync(`${keyFile}.elsewhere`)).toBe(false);
    });
  }

  test('a new master key re-wraps the data keys: the old key no longer opens the data dir, the new one does', () => {
    const { dataDir, control } = fresh();
    const ring = Keyring.open({ control, dataDir, clock, log: silentLogger });
    const keyFile = defaultMasterKeyFile(dataDir);
    const oldKey = readFileSync(keyFile, 'utf8');
    const sealed = ring.seal('kept', 'control:k');
    ring.rewrapMaster();
    const newKey = readFileSync(keyFile, 'utf8');
    expect(newKey).not.toBe(oldKey);
    expect(statSync(keyFile).mode & 0o777).toBe(0o600);
    expect(existsSync(`${keyFile}.new`)).toBe(false);
    expect(Keyring.open({ control, dataDir, clock, log: silentLogger }).unseal(sealed, 'control:k')).toBe(
      'kept',
    );
    expect(codeOf(() => Keyring.open({ control, dataDir, clock, log: silentLogger, envKey: oldKey }))).toBe(
      'keys.master_mismatch',
    );
  });

  test('a master-key change cut off after control.db was updated is finished at the next start', () => {
    const { dataDir, control } = fresh();
    const ring = Keyring.open({ control, dataDir, clock, log: silentLogger });
    const keyFile = defaultMasterKeyFile(dataDir);
    const oldKey = readFileSync(keyFile, 'utf8');
    const sealed = ring.seal('kept', 'control:k');
    ring.rewrapMaster();
    // As if the rename (the last step) never happened: the new key still aside.
    writeFileSync(`${keyFile}.new`, readFileSync(keyFile, 'utf8'), { mode: 0o600 });
    writeFileSync(keyFile, oldKey, { mode: 0o600 });
    const reopened = Keyring.open({ control, dataDir, clock, log: silentLogger });
    expect(reopened.unseal(sealed, 'control:k')).toBe('kept');
    expect(existsSync(`${keyFile}.new`)).toBe(false);
    expect(readFileSync(keyFile, 'utf8')).not.toBe(oldKey);
  });
});
