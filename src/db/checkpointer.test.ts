import type { Database } from 'bun:sqlite';
import { afterEach, beforeEach, describe, expect, test } from 'bun:test';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { waitFor } from '../../tests/wait.ts';
import { BACKSTOP_PAGES, type CheckpointResult, WalCheckpointer } from './checkpointer.ts';
import { openDatabase } from './open.ts';
import { DbPool } from './pool.ts';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'soulfra-ckpt-'));
});
afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

/** Writes about `pages` pages of 4 KiB in transactions of 50 rows of 4,000 bytes. */
function writePages(db: Database, pages: number): void {
  const q = db.query('INSERT INTO blob (b) VALUES (randomblob(4000))');
  for (let i = 0; i < pages; i += 50) {
    db.transaction(() => {
      for (let j = 0; j < 50; j++) q.run();
    }).immediate();
  }
}

function openTenant(name: string): Database {
  const db = openDatabase(join(dir, name), 'tenant');
  db.exec('CREATE TABLE blob (id INTEGER PRIMARY KEY, b BLOB)');
  return db;
}

const autocheckpoint = (db: Database) =>
  db.query<{ wal_autocheckpoint: number }, []>('PRAGMA wal_autocheckpoint').get()?.wal_autocheckpoint;

describe('WalCheckpointer', () => {
  test('the commit past 1,000 -wal pages no longer checkpoints: the worker does', async () => {
    const c = new WalCheckpointer({ everyMs: 60_000 }); // rounds only when asked
    const db = openTenant('a.db');
    try {
      expect(autocheckpoint(db)).toBe(1000);
      expect(c.watch(db)).toBe(true);
      expect(autocheckpoint(db)).toBe(BACKSTOP_PAGES);
      writePages(db, 1_500);
      const [r] = await c.checkpointNow();
      // Every frame since the start is still in the -wal (no checkpoint in a commit restarted
      // it), and the worker's checkpoint copied all of them.
      expect(r!.error).toBeUndefined();
      expect(r!.log).toBeGreaterThan(1_500);
      expect(r!.checkpointed).toBe(r!.log);
      expect(r!.busy).toBe(0);
      // The next write restarts the -wal from its start: it stays bounded.
      writePages(db, 100);
      const [r2] = await c.checkpointNow();
      expect(r2!.log).toBeLessThan(300);
      expect(r2!.checkpointed).toBe(r2!.log);
    } finally {
      await c.stop();
      db.close();
    }
  });

  test('without it the same writes are checkpointed inside a commit (the stall it removes)', () => {
    const db = openTenant('b.db');
    try {
      writePages(db, 1_500);
      // The automatic checkpoint ran and the -wal restarted: far fewer frames than written.
      const r = db.query<{ log: number }, []>('PRAGMA wal_checkpoint(PASSIVE)').get();
      expect(r!.log).toBeLessThan(1_500);
    } finally {
      db.close();
    }
  });

  test('the worker checkpoints on its own every interval', async () => {
    const c = new WalCheckpointer({ everyMs: 20, minFrames: 150 });
    const db = openTenant('c.db');
    try {
      c.watch(db);
      writePages(db, 200);
      // Poll (no fixed sleep): a timed round that copied every frame of this -wal.
      const copied = () => c.stats.last.some((r) => r.log >= 200 && r.checkpointed === r.log);
      await waitFor(copied, { timeout: 2_500 });
      expect(c.stats.rounds).toBeGreaterThan(0);
      expect(copied()).toBe(true);
    } finally {
      await c.stop();
      db.close();
    }
  });

  test('a timed round skips a -wal under minFrames; pending() reads what is left from the wal-index', async () => {
    const c = new WalCheckpointer({ everyMs: 60_000, minFrames: 10_000 });
    const db = openTenant('p.db');
    try {
      c.watch(db);
      writePages(db, 200);
      const before = (await c.pending()).get(join(dir, 'p.db'));
      expect(before).toBeGreaterThan(200);
      await c.checkpointNow();
      expect((await c.pending()).get(join(dir, 'p.db'))).toBe(0);
    } finally {
      await c.stop();
      db.close();
    }
  });

  test('forget lets go of the file, so the last close removes the -wal and the file can move', async () => {
    const c = new WalCheckpointer({ everyMs: 5 });
    const db = openTenant('d.db');
    c.watch(db);
    writePages(db, 300);
    await c.forget(join(dir, 'd.db'));
    db.close();
    expect(existsSync(join(dir, 'd.db-wal'))).toBe(false);
    await c.stop();
  });

  test('in-memory databases are not watched; a vanished file is reported once and dropped', async () => {
    const errors: CheckpointResult[] = [];
    const c = new WalCheckpointer({ everyMs: 60_000, onError: (r) => errors.push(r) });
    const mem = openDatabase(':memory:', 'tenant');
    expect(c.watch(mem)).toBe(false);
    expect(autocheckpoint(mem)).toBe(1000);
    mem.close();
    const db = openTenant('e.db');
    c.watch(db);
    db.close();
    rmSync(join(dir, 'e.db'));
    const [r] = await c.checkpointNow();
    expect(r!.error).toBeString();
    expect(await c.checkpointNow()).toEqual([]);
    await c.stop();
  });
});

describe('DbPool with the checkpointer', () => {
  test('file handles are watched; evict hands the file back with no -wal left; closeAll stops the worker', async () => {
    const p = new DbPool({ max: 4, open: (k) => openTenant(`${k}.db`), walCheckpointMs: 60_000 });
    const lease = p.acquire('x');
    expect(autocheckpoint(lease.db)).toBe(BACKSTOP_PAGES);
    writePages(lease.db, 300);
    lease.release();
    const [r] = await p.checkpointer!.checkpointNow();
    expect(r!.path).toBe(join(dir, 'x.db'));
    expect(r!.checkpointed).toBe(r!.log);
    await p.evict('x');
    expect(existsSync(join(dir, 'x.db-wal'))).toBe(false);
    p.acquire('y').release();
    await p.closeAll();
    expect(p.checkpointer).toBeNull();
    expect(existsSync(join(dir, 'y.db-wal'))).toBe(false);
  });

  test('walCheckpointMs: false keeps the automatic checkpoint', async () => {
    const p = new DbPool({ max: 4, open: (k) => openTenant(`${k}.db`), walCheckpointMs: false });
    const lease = p.acquire('z');
    expect(autocheckpoint(lease.db)).toBe(1000);
    lease.release();
    expect(p.checkpointer).toBeNull();
    await p.closeAll();
  });
});
