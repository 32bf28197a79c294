import { describe, expect, test } from 'bun:test';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { instanceWithPlatform } from '../../tests/helpers.ts';
import { secretsOf, silentLogger } from '../app/index.ts';
import { LOCAL_ROOT, readOidc, readOutbox } from '../identity/index.ts';
import { createPlatform } from './create-platform.ts';
import { openInstance } from './instance.ts';
import { rotateDataKey } from './keys.ts';

const PLAIN = {
  totp: 'JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP',
  oidc: 'legacy-oidc-client-secret-4e1f0a9b',
  operator: 'legacy-operator-secret-93c2d7e5a1',
  mail: 'https://legacy.localhost/reset-password?token=legacyLiveToken0123456789abcdef',
};

/** Whether any database file of the data dir holds `needle`. */
function onDisk(dataDir: string, needle: string): boolean {
  const files = [
    ...readdirSync(dataDir).map((n) => join(dataDir, n)),
    ...readdirSync(join(dataDir, 'platforms')).map((n) => join(dataDir, 'platforms', n)),
  ].filter((f) => /\.db(-wal|-shm)?$/.test(f));
  return files.some((f) => readFileSync(f).includes(Buffer.from(needle)));
}

describe('secrets an older soulfra stored in clear', () => {
  test('are sealed once, right after the upgrade (control.db at start-up, a platform at its first open), and still open', async () => {
    const now = () => 1_800_000_000_000;
    const { inst, platformId, cleanup } = await instanceWithPlatform('legacy', now);
    const dataDir = dirname(inst.app.platformDbPath(platformId)).replace(/\/platforms$/, '');
    let ownerId = '';
    try {
      // As an older version left them: plain values, and the marker the 0005 migration sets.
      await inst.app.platformDbs.use(platformId, (db) => {
        ownerId = db.query<{ id: string }, []>("SELECT id FROM users WHERE role = 'owner'").get()!.id;
        db.query('UPDATE users SET totp_secret = ? WHERE id = ?').run(PLAIN.totp, ownerId);
        db.query(
          "INSERT INTO sso_providers (kind, enabled, config, updated_at) VALUES ('oidc', 1, ?, 0)",
        ).run(
          JSON.stringify({ issuer: 'https://idp.legacy.test', client_id: 'c', client_secret: PLAIN.oidc }),
        );
        db.query(
          "INSERT INTO outbox (id, to_email, template, subject, body, created_at) VALUES ('msg_legacy', 'o@legacy.test', 'reset_password', 'Reset', ?, 0)",
        ).run(PLAIN.mail);
        db.exec('INSERT INTO secrets_upgrade (pending) VALUES (1)');
      });
      inst.control
        .query("INSERT INTO sso_providers (kind, enabled, config, updated_at) VALUES ('oidc', 1, ?, 0)")
        .run(
          JSON.stringify({
            issuer: 'https://idp.legacy.test',
            client_id: 'op',
            client_secret: PLAIN.operator,
          }),
        );
      inst.control.exec('INSERT INTO secrets_upgrade (pending) VALUES (1)');
      await inst.close();
      expect(onDisk(dataDir, PLAIN.operator)).toBe(true);

      const again = openInstance({ dataDir, log: silentLogger, clock: { now } });
      try {
        const opConfig = again.control
          .query<{ config: string }, []>('SELECT config FROM sso_providers')
          .get()!;
        expect(JSON.parse(opConfig.config).client_secret).toStartWith('sf1.');
        expect(readOidc(again.control)!.client_secret).toBe(PLAIN.operator);
        await again.app.platformDbs.use(platformId, (db) => {
          const totp = db
            .query<{ t: string }, [string]>('SELECT totp_secret AS t FROM users WHERE id = ?')
            .get(ownerId)!.t;
          expect(totp).toStartWith('sf1.');
          expect(again.app.secrets.unseal(totp, `platform:${platformId}:user:${ownerId}:totp`)).toBe(
            PLAIN.totp,
          );
          expect(readOidc(db)!.client_secret).toBe(PLAIN.oidc);
          expect(readOutbox(db).map((m) => m.body)).toEqual([PLAIN.mail]);
          expect(db.query('SELECT count(*) AS n FROM secrets_upgrade').get()).toEqual({ n: 0 });
        });
        // A rotation re-seals all of them again, in both databases.
        const r = await rotateDataKey(again.app, again.tenancy, LOCAL_ROOT);
        expect(r.resealed.platforms).toBe(1);
        expect(r.resealed.platform_secrets).toBe(3);
        expect(r.resealed.control).toBeGreaterThanOrEqual(1);
        expect(readOidc(again.control)!.client_secret).toBe(PLAIN.operator);
      } finally {
        await again.close();
      }
      // Nothing of the plain values is left on disk (old cells, WAL page images).
      for (const v of Object.values(PLAIN)) expect(onDisk(dataDir, v)).toBe(false);
    } finally {
      await cleanup();
    }
  });
});

describe('keys rotate and archived platforms', () => {
  test("an archived platform's file is re-sealed too: after unarchive its secrets still open", async () => {
    const now = () => 1_800_000_000_000;
    const { inst, platformId, cleanup } = await instanceWithPlatform('shelved', now);
    try {
      let field = '';
      await inst.app.platformDbs.use(platformId, (db) => {
        const id = db.query<{ id: string }, []>("SELECT id FROM users WHERE role = 'owner'").get()!.id;
        field = `user:${id}:totp`;
        db.query('UPDATE users SET totp_secret = ? WHERE id = ?').run(
          secretsOf(db).seal(PLAIN.totp, field),
          id,
        );
      });
      await inst.tenancy.archive('shelved', 'test');
      const r = await rotateDataKey(inst.app, inst.tenancy, LOCAL_ROOT);
      expect([r.resealed.platforms, r.resealed.platform_secrets]).toEqual([1, 1]);
      inst.tenancy.unarchive('shelved', 'test');
      await inst.app.platformDbs.use(platformId, (db) => {
        const v = db
          .query<{ t: string }, []>("SELECT totp_secret AS t FROM users WHERE role = 'owner'")
          .get()!.t;
        expect(v.startsWith(`sf1.${r.data_key}.`)).toBe(true);
        expect(secretsOf(db).unseal(v, field)).toBe(PLAIN.totp);
      });
    } finally {
      await cleanup();
    }
  });
});

describe('keys rotate while platforms move', () => {
  test('a platform archived in the middle of the rotation is re-sealed at its new place (nothing left under the retired key)', async () => {
    const now = () => 1_800_000_000_000;
    const { inst, platformId, cleanup } = await instanceWithPlatform('first', now);
    try {
      const second = (await createPlatform(inst.app, inst.tenancy, { slug: 'second' }, 'test')).platform.id;
      const fields = new Map<string, string>();
      for (const id of [platformId, second]) {
        await inst.app.platformDbs.use(id, (db) => {
          const uid = db.query<{ id: string }, []>("SELECT id FROM users WHERE role = 'owner'").get()!.id;
          fields.set(id, `user:${uid}:totp`);
          db.query('UPDATE users SET totp_secret = ? WHERE id = ?').run(
            secretsOf(db).seal(PLAIN.totp, fields.get(id)!),
            uid,
          );
        });
      }
      // The rotation's first platform re-seal is where `second` gets archived: the snapshot the
      // rotation started from still names its old file.
      const use = inst.app.platformDbs.use.bind(inst.app.platformDbs);
      let archived: Promise<unknown> | null = null;
      inst.app.platformDbs.use = (async (id: string, fn: (db: never) => unknown) => {
        const out = await use(id, fn as never);
        archived ??= inst.tenancy.archive('second', 'test');
        await archived;
        return out;
      }) as typeof inst.app.platformDbs.use;
      const r = await rotateDataKey(inst.app, inst.tenancy, LOCAL_ROOT);
      inst.app.platformDbs.use = use;
      expect(archived).not.toBeNull();
      expect(r.resealed.platforms).toBe(2);
      inst.tenancy.unarchive('second', 'test');
      for (const id of [platformId, second]) {
        await inst.app.platformDbs.use(id, (db) => {
          const v = db
            .query<{ t: string }, []>("SELECT totp_secret AS t FROM users WHERE role = 'owner'")
            .get()!.t;
          expect(v.startsWith(`sf1.${r.data_key}.`)).toBe(true);
          expect(secretsOf(db).unseal(v, fields.get(id)!)).toBe(PLAIN.totp);
        });
      }
    } finally {
      await cleanup();
    }
  });
});
