import { expect, test } from 'bun:test';
import { join } from 'node:path';
import { hostFetch, operatorApi, startTestServer, tempDir } from '../../tests/helpers.ts';
import { signal } from '../../tests/wait.ts';

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
