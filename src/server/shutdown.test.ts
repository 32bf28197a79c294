import { expect, test } from 'bun:test';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { hostFetch, operatorApi, startTestServer, tempDir } from '../../tests/helpers.ts';
import { signal } from '../../tests/wait.ts';
import { dataDirPaths, lockDataDir } from '../app/index.ts';

test('stop() lets an in-flight create finish, then refuses new connections; a restart serves it', async () => {
  const t = tempDir();
  const dataDir = join(t.dir, 'data');
  try {
    const s = await startTestServer({ dataDir });
    const token = s.firstRun!.token;
    // The create spends tens of milliseconds in argon2id: stop() arrives while it runs, once the
    // create has checked the slug is free (the step just before the hash) — an explicit signal.
    const checked = signal();
    const assertAvailable = s.tenancy.assertAvailable.bind(s.tenancy);
    s.tenancy.assertAvailable = (...args: Parameters<typeof assertAvailable>) => {
      assertAvailable(...args);
      checked.resolve();
    };
    const inflight = operatorApi(s.base, token, 'POST', '/platforms', { slug: 'late', template: 'creator' });
    await checked.promise;
    const stopping = s.stop();
    const res = await inflight;
    expect(res.status).toBe(201);
    await stopping;
    expect(hostFetch(s.base, 'late.localhost', '/')).rejects.toThrow();

    const again = await startTestServer({ dataDir });
    try {
      expect(again.firstRun).toBeNull();
      const home = await hostFetch(again.base, 'late.localhost', '/');
      expect(home.status).toBe(200);
      expect(await home.text()).toContain('<title>Late</title>');
    } finally {
      await again.stop();
    }
  } finally {
    t.cleanup();
  }
});

test('a start that fails half-way (the port is taken) undoes what started: lock released, socket gone', async () => {
  const t = tempDir();
  const first = await startTestServer();
  const dataDir = join(t.dir, 'data');
  try {
    // The lock, the databases, the AI runtime and the meter start; the TCP listener cannot.
    await expect(startTestServer({ dataDir, config: { port: first.port } })).rejects.toThrow();
    expect(existsSync(dataDirPaths(dataDir).socket)).toBe(false);
    const held = lockDataDir(dataDir);
    expect('lock' in held).toBe(true);
    if ('lock' in held) held.lock.release();
    // The databases were closed and the data dir is whole: a start on a free port serves it.
    const again = await startTestServer({ dataDir });
    try {
      expect(again.lifecycle.names).toEqual([
        'data-dir lock',
        'instance',
        'events dispatcher',
        'AI runtime',
        'meter',
        'mailer',
        'TCP listener',
        'control socket',
        'drain',
      ]);
      expect((await hostFetch(again.base, 'localhost', '/readyz')).status).toBe(200);
    } finally {
      await again.stop();
    }
    expect(again.lifecycle.names).toEqual([]);
  } finally {
    await first.cleanup();
    t.cleanup();
  }
});
