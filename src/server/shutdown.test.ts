import { expect, test } from 'bun:test';
import { join } from 'node:path';
import { hostFetch, operatorApi, startTestServer, tempDir } from '../../tests/helpers.ts';

test('stop() lets an in-flight create finish, then refuses new connections; a restart serves it', async () => {
  const t = tempDir();
  const dataDir = join(t.dir, 'data');
  try {
    const s = await startTestServer({ dataDir });
    const token = s.firstRun!.token;
    // The create spends tens of milliseconds in argon2id: stop() arrives while it runs.
    const inflight = operatorApi(s.base, token, 'POST', '/platforms', { slug: 'late', template: 'creator' });
    await Bun.sleep(15);
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
