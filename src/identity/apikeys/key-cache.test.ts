import { Database } from 'bun:sqlite';
import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { instanceWithPlatform } from '../../../tests/helpers.ts';
import { stateOf } from '../../app/index.ts';
import type { Instance } from '../../flows/index.ts';
import { createUserRepository } from '../accounts/users.repository.ts';
import { keyBucketsOf } from '../authenticate.ts';
import { authenticateApiKey, createApiKey, revokeUserKeys } from './apikeys.ts';
import { forgetApiKeys, KEY_CACHE_TTL_MS } from './key-cache.ts';

let inst: Instance;
let platformId: string;
let cleanup: () => Promise<void>;
const now = Date.UTC(2026, 10, 26, 12);

beforeAll(async () => {
  ({ inst, platformId, cleanup } = await instanceWithPlatform('keycache', () => now));
});
afterAll(() => cleanup());

const withDb = <T>(fn: (db: import('bun:sqlite').Database) => T) => inst.app.platformDbs.use(platformId, fn);

describe('API keys kept in memory', () => {
  test('a known key is read once; a write behind its back shows after the TTL, a forget at once', () =>
    withDb((db) => {
      const k = createApiKey(inst.app, db, { name: 'k' }, { userId: null, role: 'owner' }, 'test');
      expect(authenticateApiKey(db, k.key, now).ok).toBe(true);
      // A raw write (no code path of the server does this) is not seen before the TTL...
      db.query('UPDATE api_keys SET revoked_at = ? WHERE id = ?').run(now, k.id);
      expect(authenticateApiKey(db, k.key, now + 1_000).ok).toBe(true);
      // ...and is seen once it has passed.
      expect(authenticateApiKey(db, k.key, now + KEY_CACHE_TTL_MS)).toEqual({ ok: false, reason: 'revoked' });
      db.query('UPDATE api_keys SET revoked_at = NULL WHERE id = ?').run(k.id);
      expect(authenticateApiKey(db, k.key, now + KEY_CACHE_TTL_MS).ok).toBe(false);
      forgetApiKeys(db);
      expect(authenticateApiKey(db, k.key, now + KEY_CACHE_TTL_MS).ok).toBe(true);
    }));

  test('the secret is checked every time, even for a cached key', () =>
    withDb((db) => {
      const k = createApiKey(inst.app, db, { name: 'k2' }, { userId: null, role: 'owner' }, 'test');
      expect(authenticateApiKey(db, k.key, now).ok).toBe(true);
      const wrong = `${k.key.slice(0, -4)}${k.key.endsWith('AAAA') ? 'BBBB' : 'AAAA'}`;
      expect(authenticateApiKey(db, wrong, now)).toEqual({ ok: false, reason: 'unknown' });
      expect(authenticateApiKey(db, k.key, now).ok).toBe(true);
    }));

  test('expiry is checked against the time of each request', () =>
    withDb((db) => {
      const k = createApiKey(
        inst.app,
        db,
        { name: 'k3', expires_at: new Date(now + 5_000).toISOString() },
        { userId: null, role: 'owner' },
        'test',
      );
      expect(authenticateApiKey(db, k.key, now).ok).toBe(true);
      expect(authenticateApiKey(db, k.key, now + 5_000)).toEqual({ ok: false, reason: 'expired' });
    }));

  test("a user's role, status and deletion, and revoking their keys, reach a cached key at once", () =>
    withDb((db) => {
      const users = createUserRepository({ db });
      const uid = 'usr_keycache';
      db.query(
        `INSERT INTO users (id, email, name, role, status, created_at, updated_at) VALUES (?, 'k@x.test', 'K', 'admin', 'active', ?, ?)`,
      ).run(uid, now, now);
      const make = (name: string) =>
        createApiKey(inst.app, db, { name, scopes: ['admin'] }, { userId: uid, role: 'admin' }, 'test');
      const k = make('u1');
      const principal = () => {
        const r = authenticateApiKey(db, k.key, now);
        return r.ok ? r.principal : r.reason;
      };
      expect(principal()).toMatchObject({ kind: 'api_key', role: 'admin', userId: uid });
      users.update(uid, { role: 'member' }, now);
      expect(principal()).toMatchObject({ role: 'member' });
      users.update(uid, { status: 'disabled' }, now);
      expect(principal()).toBe('owner_inactive');
      users.update(uid, { status: 'active' }, now);
      expect(principal()).toMatchObject({ role: 'member' });
      revokeUserKeys(db, uid, now);
      expect(principal()).toBe('revoked');
      const k2 = make('u2');
      expect(authenticateApiKey(db, k2.key, now).ok).toBe(true);
      users.delete(uid);
      expect(authenticateApiKey(db, k2.key, now)).toEqual({ ok: false, reason: 'unknown' });
    }));
});

test("two Apps in one process: handles reach their own App's state, never the other's", async () => {
  const one = await instanceWithPlatform('one', () => now);
  const two = await instanceWithPlatform('two', () => now);
  try {
    expect(stateOf(one.inst.app.control)).toBe(one.inst.app.state);
    expect(stateOf(two.inst.app.control)).toBe(two.inst.app.state);
    const db = one.inst.app.platformDbs.acquire(one.platformId);
    try {
      expect(stateOf(db.db)).toBe(one.inst.app.state);
      // The per-key request buckets of `authenticate`: one App's are not the other's.
      expect(keyBucketsOf(db.db)).not.toBe(keyBucketsOf(two.inst.app.control));
    } finally {
      db.release();
    }
    // A handle no App opened has a state of its own.
    const loose = new Database(':memory:');
    expect(stateOf(loose)).toBe(stateOf(loose));
    expect(stateOf(loose)).not.toBe(one.inst.app.state);
    loose.close();
  } finally {
    await one.cleanup();
    await two.cleanup();
  }
});
