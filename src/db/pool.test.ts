import { Database } from 'bun:sqlite';
import { describe, expect, test } from 'bun:test';
import { stillPending } from '../../tests/wait.ts';
import { DbPool } from './pool.ts';

function pool(max: number) {
  const opened: string[] = [];
  const p = new DbPool({
    max,
    open: (key) => {
      opened.push(key);
      const db = new Database(':memory:');
      db.exec(`CREATE TABLE k (v TEXT); INSERT INTO k VALUES ('${key}')`);
      return db;
    },
  });
  return { p, opened };
}

const valueIn = (db: Database) => db.query<{ v: string }, []>('SELECT v FROM k').get()?.v;

describe('DbPool', () => {
  test('a key being evicted is not opened again until its handle is closed (found by review: the meter reopened an archiving platform)', async () => {
    const { p, opened } = pool(4);
    const lease = p.acquire('a');
    const evicting = p.evict('a');
    // While the leased handle drains, a new lease (the meter's flush, say) is refused, not reopened.
    expect(() => p.acquire('a')).toThrow(
      expect.objectContaining({ code: 'platform.unavailable', status: 503 }),
    );
    expect(opened).toEqual(['a']);
    lease.release();
    await evicting;
    expect(p.has('a')).toBe(false);
    // Once closed, the key opens again as usual.
    p.acquire('a').release();
    expect(opened).toEqual(['a', 'a']);
  });

  test('onClose hooks see each handle once, still open, after its last lease (LRU, evict, closeAll); a throwing hook does not stop the close', async () => {
    const { p } = pool(1);
    const seen: string[] = [];
    p.onClose(() => {
      throw new Error('hook failed');
    });
    const off = p.onClose((key, db) => seen.push(`${key}=${valueIn(db)}`));
    p.acquire('a').release();
    p.acquire('b').release(); // LRU: a closes
    expect(seen).toEqual(['a=a']);
    const lease = p.acquire('b');
    const evicting = p.evict('b');
    await Promise.resolve();
    expect(seen).toEqual(['a=a']); // b is leased: not yet
    lease.release();
    await evicting;
    expect(seen).toEqual(['a=a', 'b=b']);
    p.acquire('c').release();
    await p.closeAll();
    expect(seen).toEqual(['a=a', 'b=b', 'c=c']);
    off();
    p.acquire('d').release();
    await p.closeAll();
    expect(seen).toHaveLength(3);
  });

  test('keeps at most max idle handles, evicting the least recently used', () => {
    const { p, opened } = pool(2);
    for (const k of ['a', 'b']) p.acquire(k).release();
    p.acquire('a').release(); // a is now the most recent
    p.acquire('c').release(); // evicts b
    expect(p.has('a')).toBe(true);
    expect(p.has('b')).toBe(false);
    expect(p.has('c')).toBe(true);
    p.acquire('b').release();
    expect(opened).toEqual(['a', 'b', 'c', 'b']);
    expect(p.stats()).toMatchObject({ open: 2, opened: 4, closed: 2 });
  });

  test('a handle evicted while leased stays usable until released, then closes', async () => {
    const { p } = pool(1);
    const lease = p.acquire('a');
    let closed = false;
    const done = p.evict('a').then(() => {
      closed = true;
    });
    expect(await stillPending(done, 5)).toBe(true);
    expect(closed).toBe(false);
    expect(valueIn(lease.db)).toBe('a');
    lease.release();
    await done;
    expect(closed).toBe(true);
    expect(() => valueIn(lease.db)).toThrow();
  });

  test('LRU overflow never closes a leased handle; the pool shrinks back once released', () => {
    const { p } = pool(1);
    const a = p.acquire('a');
    const b = p.acquire('b');
    expect(p.stats().open).toBe(2);
    expect(valueIn(a.db)).toBe('a');
    expect(valueIn(b.db)).toBe('b');
    a.release();
    expect(p.has('a')).toBe(false);
    b.release();
    expect(p.stats().open).toBe(1);
  });

  test('use() releases on throw and on rejection', async () => {
    const { p } = pool(4);
    await expect(p.use('a', () => Promise.reject(new Error('boom')))).rejects.toThrow('boom');
    expect(p.stats().leased).toBe(0);
    expect(await p.use('a', (db) => valueIn(db))).toBe('a');
  });

  test('release is idempotent and closeAll closes everything', async () => {
    const { p } = pool(4);
    const l = p.acquire('a');
    l.release();
    l.release();
    p.acquire('b').release();
    await p.closeAll();
    expect(p.stats()).toMatchObject({ open: 0, closed: 2 });
  });
});
