import { afterAll, describe, expect, test } from 'bun:test';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type DbRole, openDatabase } from './open.ts';

const dir = mkdtempSync(join(tmpdir(), 'soulfra-open-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('the house pragmas', () => {
  for (const role of ['control', 'tenant'] as DbRole[]) {
    test(`${role}: secure_delete is on, so a deleted secret leaves no copy in the file's free space`, () => {
      const path = join(dir, `${role}.db`);
      const db = openDatabase(path, role);
      expect(db.query<{ secure_delete: number }, []>('PRAGMA secure_delete').get()).toEqual({
        secure_delete: 1,
      });
      db.exec('CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)');
      const secret = `deleted-secret-${role}-0123456789abcdef`;
      const insert = db.query('INSERT INTO t (v) VALUES (?)');
      for (let i = 0; i < 20; i++) insert.run(i === 10 ? secret : `filler-value-${i}-xxxxxxxxxxxxxxxx`);
      db.exec('PRAGMA wal_checkpoint(TRUNCATE)');
      expect(readFileSync(path).includes(secret)).toBe(true);
      db.query('DELETE FROM t WHERE v = ?').run(secret);
      db.close();
      expect(readFileSync(path).includes(secret)).toBe(false);
    });
  }
});
