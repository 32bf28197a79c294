import { Database } from 'bun:sqlite';
import { describe, expect, spyOn, test } from 'bun:test';
import { copyFileSync, existsSync, renameSync } from 'node:fs';
import { join } from 'node:path';
import { hostFetch, operatorApi, startTestServer, tempDir } from '../../tests/helpers.ts';

// The order of `serve`'s start: what must exist before the TCP listener takes its first request.
describe('start order', () => {
  test('the demo platform and the operator admin exist before the TCP listener starts', async () => {
    const t = tempDir();
    const dataDir = join(t.dir, 'data');
    const serve = Bun.serve;
    // What control.db holds at the moment the public listener is made (the control socket,
    // `unix:`, comes after it).
    let atListen = null as { platforms: string[]; operators: number } | null;
    const spy = spyOn(Bun, 'serve').mockImplementation(((o: Parameters<typeof Bun.serve>[0]) => {
      if (!('unix' in o && o.unix)) {
        const db = new Database(join(dataDir, 'control.db'), { readonly: true });
        try {
          atListen = {
            platforms: db
              .query<{ slug: string }, []>('SELECT slug FROM platforms')
              .all()
              .map((r) => r.slug),
            operators: db.query<{ n: number }, []>('SELECT count(*) AS n FROM operators').get()!.n,
          };
        } finally {
          db.close();
        }
      }
      return serve.call(Bun, o);
    }) as typeof Bun.serve);
    try {
      const s = await startTestServer({ dataDir, demo: true });
      spy.mockRestore();
      try {
        expect(atListen).toEqual({ platforms: ['demo'], operators: 1 });
        // The demo's URL carries the port the listener bound (port 0 in the config).
        expect(s.demo?.url).toBe(`http://demo.localhost:${s.port}/`);
        expect((await hostFetch(s.base, 'demo.localhost', '/')).status).toBe(200);
      } finally {
        await s.stop();
      }
    } finally {
      spy.mockRestore();
      t.cleanup();
    }
  });
});

describe('platform files: the row commits first, the file follows, and boot reconciles', () => {
  test('archive and unarchive commit their row while the file is still where it was', async () => {
    const s = await startTestServer();
    try {
      const token = s.firstRun!.token;
      expect((await operatorApi(s.base, token, 'POST', '/platforms', { slug: 'order' })).status).toBe(201);
      const { id } = s.tenancy.get('order');
      const live = join(s.dataDir, 'platforms', `${id}.db`);
      const archived = join(s.dataDir, 'platforms', 'archive', `${id}.db`);
      const seen: Record<string, { live: boolean; archived: boolean }> = {};
      const append = s.app.audit.append.bind(s.app.audit);
      s.app.audit.append = (db, input) => {
        if (input.action === 'platform.archived' || input.action === 'platform.unarchived')
          seen[input.action] = { live: existsSync(live), archived: existsSync(archived) };
        return append(db, input);
      };
      expect((await operatorApi(s.base, token, 'POST', '/platforms/order/archive', {})).status).toBe(200);
      expect(existsSync(archived) && !existsSync(live)).toBe(true);
      expect((await operatorApi(s.base, token, 'POST', '/platforms/order/unarchive', {})).status).toBe(200);
      expect(existsSync(live) && !existsSync(archived)).toBe(true);
      expect(seen).toEqual({
        'platform.archived': { live: true, archived: false },
        'platform.unarchived': { live: false, archived: true },
      });
    } finally {
      await s.cleanup();
    }
  });

  test('unarchive of a platform that is not archived is a no-op (200, nothing audited), like the other verbs', async () => {
    const s = await startTestServer();
    try {
      const token = s.firstRun!.token;
      expect((await operatorApi(s.base, token, 'POST', '/platforms', { slug: 'awake' })).status).toBe(201);
      const audits = () =>
        s.app.control.query<{ n: number }, []>('SELECT count(*) AS n FROM audit_log').get()!.n;
      const before = audits();
      for (let i = 0; i < 2; i++) {
        const r = await operatorApi(s.base, token, 'POST', '/platforms/awake/unarchive', {});
        expect(r.status).toBe(200);
        expect(((await r.json()) as { status: string }).status).toBe('active');
      }
      expect(audits()).toBe(before);
      // Archived, then unarchived twice: one unarchive audited.
      await operatorApi(s.base, token, 'POST', '/platforms/awake/archive', {});
      for (let i = 0; i < 2; i++)
        expect((await operatorApi(s.base, token, 'POST', '/platforms/awake/unarchive', {})).status).toBe(200);
      const actions = s.app.control
        .query<{ action: string }, []>(
          "SELECT action FROM audit_log WHERE target = 'platform:awake' ORDER BY seq",
        )
        .all()
        .map((r) => r.action);
      expect(actions).toEqual(['platform.created', 'platform.archived', 'platform.unarchived']);
      expect((await hostFetch(s.base, 'awake.localhost', '/')).status).toBe(200);
    } finally {
      await s.cleanup();
    }
  });

  test('a restart finishes a move a stop cut short and quarantines a file no row names', async () => {
    const t = tempDir();
    const dataDir = join(t.dir, 'data');
    try {
      const s = await startTestServer({ dataDir });
      const token = s.firstRun!.token;
      for (const slug of ['shelf', 'kept'])
        expect((await operatorApi(s.base, token, 'POST', '/platforms', { slug })).status).toBe(201);
      expect((await operatorApi(s.base, token, 'POST', '/platforms/shelf/archive', {})).status).toBe(200);
      const shelf = s.tenancy.get('shelf');
      const kept = s.tenancy.get('kept');
      await s.stop();
      const platforms = join(dataDir, 'platforms');
      // As if the archive's row had committed and the process died before the file moved.
      renameSync(join(platforms, 'archive', `${shelf.id}.db`), join(platforms, `${shelf.id}.db`));
      // As if a create had renamed its file in and died before its row committed.
      copyFileSync(join(platforms, `${kept.id}.db`), join(platforms, 'plt_orphan.db'));

      const again = await startTestServer({ dataDir });
      try {
        expect(existsSync(join(platforms, 'archive', `${shelf.id}.db`))).toBe(true);
        expect(existsSync(join(platforms, `${shelf.id}.db`))).toBe(false);
        expect(existsSync(join(platforms, 'quarantine', 'plt_orphan.db'))).toBe(true);
        expect(existsSync(join(platforms, 'plt_orphan.db'))).toBe(false);
        expect((await hostFetch(again.base, 'shelf.localhost', '/')).status).toBe(410);
        expect((await hostFetch(again.base, 'kept.localhost', '/')).status).toBe(200);
        const un = await operatorApi(
          again.base,
          again.firstRun?.token ?? token,
          'POST',
          '/platforms/shelf/unarchive',
          {},
        );
        expect(un.status).toBe(200);
        expect((await hostFetch(again.base, 'shelf.localhost', '/')).status).toBe(200);
      } finally {
        await again.stop();
      }
    } finally {
      t.cleanup();
    }
  });
});
