import { Database } from 'bun:sqlite';
import { describe, expect, test } from 'bun:test';
import { join } from 'node:path';
import { tempDir } from '../../tests/helpers.ts';
import { isAppError } from '../shared/errors.ts';
import { migrate, schemaVersion } from './migrate.ts';
import { CONTROL_MIGRATIONS, TENANT_MIGRATIONS } from './migrations.ts';
import { openDatabase } from './open.ts';

const steps = [
  { version: 1, name: 'a', sql: 'CREATE TABLE a (x INTEGER)' },
  { version: 2, name: 'b', sql: 'CREATE TABLE b (y INTEGER)' },
];

describe('migrate', () => {
  test('a new database gets every step and records the version', () => {
    const db = new Database(':memory:');
    expect(migrate(db, steps, 'test')).toEqual({ from: 0, to: 2, applied: ['0001-a', '0002-b'] });
    expect(schemaVersion(db)).toBe(2);
    expect(migrate(db, steps, 'test').applied).toEqual([]);
  });

  test('an older platform database is brought up to date and keeps its rows', () => {
    const t = tempDir();
    try {
      const path = join(t.dir, 'old.db');
      const old = openDatabase(path, 'tenant');
      migrate(old, TENANT_MIGRATIONS.slice(0, 1), 'old');
      old.query("INSERT INTO meta (key, value) VALUES ('slug', 'kept')").run();
      old.close();

      const db = openDatabase(path, 'tenant', { create: false });
      const r = migrate(db, TENANT_MIGRATIONS, 'platform');
      expect(r.from).toBe(1);
      expect(r.applied).toEqual([
        '0002-users',
        '0003-identity',
        '0004-ai',
        '0005-security',
        '0006-events',
        '0007-mail',
        '0008-onboarding',
        '0009-usage-micro',
        '0010-conversations',
        '0011-brand-assets',
        '0012-agents',
        '0013-knowledge',
        '0014-marketplace',
        '0015-agent-forks',
        '0016-agent-tools',
        '0017-collaboration',
        '0018-federation',
        '0019-sharing',
        '0020-message-tool-steps',
        '0021-marketplace-community',
        '0022-ledger',
        '0023-purchases',
        '0024-subscriptions',
        '0025-invoices',
        '0026-payouts',
        '0027-credit-settings',
      ]);
      expect(db.query<{ value: string }, []>("SELECT value FROM meta WHERE key = 'slug'").get()?.value).toBe(
        'kept',
      );
      expect(db.query('SELECT count(*) AS n FROM users').get()).toEqual({ n: 0 });
      db.close();
    } finally {
      t.cleanup();
    }
  });

  test('an older control database is brought up to date', () => {
    const db = new Database(':memory:');
    migrate(db, CONTROL_MIGRATIONS.slice(0, 2), 'control');
    db.query("INSERT INTO settings (key, value) VALUES ('base_domain', 'example.com')").run();
    expect(migrate(db, CONTROL_MIGRATIONS, 'control').applied).toEqual([
      '0003-domains',
      '0004-operator-sso',
      '0005-security',
      '0006-events',
      '0007-platform-deletions',
      '0008-operator-password',
      '0009-federation',
      '0010-stripe-objects',
      '0011-operator-plans',
    ]);
    expect(db.query('SELECT value FROM settings').get()).toEqual({ value: 'example.com' });
  });

  test('a database newer than this binary is refused and left untouched', () => {
    const db = new Database(':memory:');
    db.exec('CREATE TABLE future (z INTEGER); PRAGMA user_version = 7');
    let err: unknown;
    try {
      migrate(db, steps, 'control.db');
    } catch (e) {
      err = e;
    }
    expect(isAppError(err) && err.code).toBe('db.schema_too_new');
    expect(String((err as Error).message)).toContain('schema version 7');
    expect(schemaVersion(db)).toBe(7);
    expect(db.query("SELECT name FROM sqlite_master WHERE name IN ('a', 'b')").all()).toEqual([]);
  });

  test('a failing step rolls back whole and leaves the version at the last good step', () => {
    const db = new Database(':memory:');
    const bad = [
      ...steps,
      { version: 3, name: 'bad', sql: 'CREATE TABLE c (q INTEGER); INSERT INTO nope VALUES (1)' },
    ];
    expect(() => migrate(db, bad, 'test')).toThrow();
    expect(schemaVersion(db)).toBe(2);
    expect(db.query("SELECT name FROM sqlite_master WHERE name = 'c'").all()).toEqual([]);
  });

  test('a step marked foreign_keys=off runs with them off, is checked before it commits, and turns them on again', () => {
    const db = new Database(':memory:');
    db.exec('PRAGMA foreign_keys = ON');
    const base = [
      {
        version: 1,
        name: 'p',
        sql: "CREATE TABLE p (id TEXT PRIMARY KEY, n INTEGER CHECK (n < 5)); CREATE TABLE c (p TEXT REFERENCES p(id) ON DELETE CASCADE); INSERT INTO p VALUES ('a', 1); INSERT INTO c VALUES ('a')",
      },
    ];
    migrate(db, base, 'test');
    // A rebuild that loses the parent row is refused whole.
    const losing = {
      version: 2,
      name: 'lose',
      sql: '-- migrate: foreign_keys=off\nCREATE TABLE p2 (id TEXT PRIMARY KEY, n INTEGER CHECK (n < 9)); DROP TABLE p; ALTER TABLE p2 RENAME TO p;',
    };
    expect(() => migrate(db, [...base, losing], 'test')).toThrow(/broken foreign keys/);
    expect(schemaVersion(db)).toBe(1);
    expect(db.query('PRAGMA foreign_keys').get()).toEqual({ foreign_keys: 1 });
    expect(db.query('SELECT count(*) AS n FROM c').get()).toEqual({ n: 1 });
    // One that keeps it: the children stay (no cascade ran), the keys are on again.
    const keeping = {
      ...losing,
      sql: '-- migrate: foreign_keys=off\nCREATE TABLE p2 (id TEXT PRIMARY KEY, n INTEGER CHECK (n < 9)); INSERT INTO p2 SELECT * FROM p; DROP TABLE p; ALTER TABLE p2 RENAME TO p;',
    };
    migrate(db, [...base, keeping], 'test');
    expect(schemaVersion(db)).toBe(2);
    expect(db.query('SELECT count(*) AS n FROM c').get()).toEqual({ n: 1 });
    expect(db.query('PRAGMA foreign_keys').get()).toEqual({ foreign_keys: 1 });
    expect(() => db.exec("INSERT INTO c VALUES ('zz')")).toThrow(/FOREIGN KEY/);
  });

  test('steps must be numbered 1..N', () => {
    const db = new Database(':memory:');
    expect(() => migrate(db, [{ version: 2, name: 'x', sql: '' }], 'test')).toThrow(/numbered 1..N/);
  });
});

describe('openDatabase pragmas', () => {
  test('WAL, foreign keys, busy timeout, and durability by role', () => {
    const t = tempDir();
    try {
      const control = openDatabase(join(t.dir, 'c.db'), 'control');
      const tenant = openDatabase(join(t.dir, 't.db'), 'tenant');
      const get = (db: Database, p: string) => Object.values(db.query(`PRAGMA ${p}`).get() as object)[0];
      for (const db of [control, tenant]) {
        expect(get(db, 'journal_mode')).toBe('wal');
        expect(get(db, 'foreign_keys')).toBe(1);
        expect(get(db, 'busy_timeout')).toBe(5000);
        expect(get(db, 'page_size')).toBe(4096);
      }
      expect(get(control, 'synchronous')).toBe(2); // FULL
      expect(get(tenant, 'synchronous')).toBe(1); // NORMAL
      control.close();
      tenant.close();
    } finally {
      t.cleanup();
    }
  });
});
