import { Database } from 'bun:sqlite';
import { describe, expect, test } from 'bun:test';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tempDir } from '../../tests/helpers.ts';
import type { AuditEntry } from '../app/index.ts';
import { migrate, openDatabase, TENANT_MIGRATIONS } from '../db/index.ts';
import { createAuditLog, entryHash, GENESIS_HASH, verifyChain } from './chain.ts';

let now = 1_700_000_000_000;
const clock = { now: () => now++ };

function chainDb(path = ':memory:'): Database {
  const db = path === ':memory:' ? new Database(':memory:') : openDatabase(path, 'tenant');
  migrate(db, TENANT_MIGRATIONS, 'test');
  const audit = createAuditLog(clock);
  for (let i = 1; i <= 5; i++) {
    audit.append(db, {
      actor: 'cli',
      action: 'thing.done',
      target: `thing:${i}`,
      details: { n: i, note: `entry-${i}` },
    });
  }
  return db;
}

/** Edits the chain behind the triggers' back, as an attacker with the file would. */
function tamper(db: Database, sql: string): void {
  db.exec('DROP TRIGGER audit_log_no_update; DROP TRIGGER audit_log_no_delete');
  db.exec(sql);
}

describe('audit chain', () => {
  test('entries link by prev_hash and hash over the canonical entry', () => {
    const db = chainDb();
    const rows = db.query<AuditEntry, []>('SELECT * FROM audit_log ORDER BY seq').all();
    expect(rows).toHaveLength(5);
    expect(rows[0]!.prev_hash).toBe(GENESIS_HASH);
    expect(rows[1]!.prev_hash).toBe(rows[0]!.hash);
    expect(rows[0]!.details).toBe('{"n":1,"note":"entry-1"}');
    expect(entryHash(rows[2]!)).toBe(rows[2]!.hash);
    expect(verifyChain(db)).toEqual({ ok: true, entries: 5, head: rows[4]!.hash });
  });

  test('entries(after, limit) pages the chain in order: what GET /api/v1/audit reads', () => {
    const db = chainDb();
    const audit = createAuditLog(clock);
    expect(audit.entries(db, 2, 2).map((e) => [e.seq, e.target])).toEqual([
      [3, 'thing:3'],
      [4, 'thing:4'],
    ]);
    expect(audit.entries(db, 4, 10).map((e) => e.seq)).toEqual([5]);
    expect(audit.entries(db, 5, 10)).toEqual([]);
    const all = db.query<AuditEntry, []>('SELECT * FROM audit_log ORDER BY seq').all();
    expect(audit.entries(db, 0, 500)).toEqual(all);
  });

  test('the table refuses UPDATE and DELETE', () => {
    const db = chainDb();
    expect(() => db.exec("UPDATE audit_log SET actor = 'x' WHERE seq = 1")).toThrow(/append-only/);
    expect(() => db.exec('DELETE FROM audit_log WHERE seq = 5')).toThrow(/append-only/);
  });

  const cases: { name: string; sql: string; seq: number; reason: RegExp }[] = [
    {
      name: 'a changed detail',
      sql: `UPDATE audit_log SET details = '{"n":9,"note":"entry-3"}' WHERE seq = 3`,
      seq: 3,
      reason: /does not match its hash/,
    },
    {
      name: 'a changed actor',
      sql: "UPDATE audit_log SET actor = 'clj' WHERE seq = 2",
      seq: 2,
      reason: /does not match its hash/,
    },
    {
      name: 'a changed timestamp',
      sql: 'UPDATE audit_log SET ts = ts + 1 WHERE seq = 4',
      seq: 4,
      reason: /does not match its hash/,
    },
    {
      name: 'a removed entry',
      sql: 'DELETE FROM audit_log WHERE seq = 2',
      seq: 3,
      reason: /removed or renumbered/,
    },
    {
      name: 'a rewritten hash',
      sql: "UPDATE audit_log SET hash = 'ab' || substr(hash, 3) WHERE seq = 3",
      seq: 3,
      reason: /does not match its hash/,
    },
    {
      name: 'an entry recomputed to match (the next one no longer links)',
      sql: 'SELECT 1',
      seq: 4,
      reason: /prev_hash does not match/,
    },
  ];
  for (const c of cases) {
    test(`verify fails naming the entry: ${c.name}`, () => {
      const db = chainDb();
      if (c.name.startsWith('an entry recomputed')) {
        // The attacker rewrites entry 3 and fixes its own hash; entry 4 still points at the old one.
        const row = db.query<AuditEntry, []>('SELECT * FROM audit_log WHERE seq = 3').get()!;
        const forged = { ...row, actor: 'someone-else' };
        tamper(
          db,
          `UPDATE audit_log SET actor = 'someone-else', hash = '${entryHash(forged)}' WHERE seq = 3`,
        );
      } else {
        tamper(db, c.sql);
      }
      const v = verifyChain(db);
      expect(v.ok).toBe(false);
      if (!v.ok) {
        expect(v.bad.seq).toBe(c.seq);
        expect(v.bad.reason).toMatch(c.reason);
      }
    });
  }

  test('changing one byte of an entry in the file on disk is detected', () => {
    const t = tempDir();
    try {
      const path = join(t.dir, 'p.db');
      chainDb(path).close();
      const bytes = readFileSync(path);
      const at = bytes.indexOf(Buffer.from('entry-4'));
      expect(at).toBeGreaterThan(0);
      bytes[at + 6] = '7'.charCodeAt(0); // entry-4 → entry-7, same length
      writeFileSync(path, bytes);
      const db = new Database(path, { readonly: true });
      const v = verifyChain(db);
      db.close();
      expect(v).toMatchObject({ ok: false, bad: { seq: 4 } });
    } finally {
      t.cleanup();
    }
  });

  test('append outside a transaction opens its own; inside one it rolls back with the caller', () => {
    const db = chainDb();
    const audit = createAuditLog(clock);
    expect(() =>
      db.transaction(() => {
        audit.append(db, { actor: 'cli', action: 'x', target: 'y' });
        throw new Error('the change failed');
      })(),
    ).toThrow('the change failed');
    expect(db.query('SELECT count(*) AS n FROM audit_log').get()).toEqual({ n: 5 });
    expect(audit.append(db, { actor: 'cli', action: 'x', target: 'y' }).seq).toBe(6);
    expect(verifyChain(db).ok).toBe(true);
  });
});
