import { Database } from 'bun:sqlite';
import { afterAll, describe, expect, test } from 'bun:test';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { TEST_EVENT_FILE_ENV, TEST_EXIT_AFTER_COMMIT_ENV } from '../src/app/index.ts';
import { BUN, operatorApi, ROOT, type ServeInfo, tempDir } from './helpers.ts';
import { waitFor } from './wait.ts';

// Acceptance (issue 9, point 2): killing the process between a change's commit and its delivery
// loses no event. A real `soulfra serve` delivers a platform's creation to a subscriber that
// records ids, then dies (SIGKILL, from a test hook) right after the commit of the platform's
// suspension; restarted, it delivers that event, once.

const t = tempDir('soulfra-events-kill-');
afterAll(() => t.cleanup());
const dataDir = join(t.dir, 'data');
const file = join(t.dir, 'delivered.jsonl');

/** `soulfra serve --json` with extra environment; resolves with what it prints at start. */
async function serve(env: Record<string, string>) {
  const proc = Bun.spawn(
    [
      BUN,
      join(ROOT, 'src', 'main.ts'),
      'serve',
      '--data',
      dataDir,
      '--port',
      '0',
      '--host',
      '127.0.0.1',
      '--json',
    ],
    { stdin: 'ignore', stdout: 'pipe', stderr: 'pipe', env: { ...process.env, ...env } },
  );
  let err = '';
  void (async () => {
    for await (const chunk of proc.stderr) err += new TextDecoder().decode(chunk);
  })();
  const reader = proc.stdout.getReader();
  let out = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) throw new Error(`serve exited (${await proc.exited}): ${err}`);
    out += new TextDecoder().decode(value);
    try {
      const info = JSON.parse(out) as ServeInfo;
      reader.releaseLock();
      return { proc, info, stderr: () => err };
    } catch {}
  }
}

const delivered = (): { id: string; name: string; source: string }[] =>
  existsSync(file)
    ? readFileSync(file, 'utf8')
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l))
    : [];

/** Polls until `cond` holds (the shared `waitFor`: no fixed sleep); fails after `ms`. */
const until = (cond: () => boolean, ms = 15_000): Promise<unknown> => waitFor(cond, { timeout: ms });

describe('events survive a kill between commit and delivery', () => {
  test('platform.status_changed: committed, process killed before delivery, delivered after restart', async () => {
    const first = await serve({
      [TEST_EVENT_FILE_ENV]: file,
      [TEST_EXIT_AFTER_COMMIT_ENV]: 'platform.status_changed',
    });
    const token = first.info.operator!.token;
    const created = await operatorApi(first.info.listening, token, 'POST', '/platforms', {
      slug: 'killed',
      template: 'creator',
    });
    expect(created.status).toBe(201);
    // The subscriber is live in this process: the creation is delivered.
    await until(() => delivered().some((e) => e.name === 'platform.created'));
    const before = delivered().map((e) => e.id);
    const res = await operatorApi(first.info.listening, token, 'POST', '/platforms/killed/suspend', {
      reason: 'kill point',
    }).catch((e: unknown) => e);
    // The process died answering: no response, or a broken connection.
    expect(res instanceof Response ? res.status : 'no response').toBe('no response');
    await first.proc.exited;
    expect(first.proc.signalCode).toBe('SIGKILL');

    // Committed: the platform and its event are in control.db.
    const control = new Database(join(dataDir, 'control.db'), { readonly: true });
    const row = control
      .query<{ id: string; payload: string }, []>(
        "SELECT id, payload FROM events WHERE name = 'platform.status_changed'",
      )
      .all()
      .find((r) => (JSON.parse(r.payload) as { slug: string }).slug === 'killed');
    const platform = control.query("SELECT status FROM platforms WHERE slug = 'killed'").get();
    control.close();
    expect(platform).toEqual({ status: 'suspended' });
    expect(row).toBeDefined();
    // ... and not delivered before the kill.
    expect(delivered().map((e) => e.id)).toEqual(before);
    expect(before).not.toContain(row!.id);

    const second = await serve({ [TEST_EVENT_FILE_ENV]: file });
    try {
      await until(() => delivered().some((e) => e.id === row!.id));
      const mine = delivered().filter((e) => e.id === row!.id);
      expect(mine).toEqual([{ id: row!.id, name: 'platform.status_changed', source: 'control' }]);
      // Nothing delivered before the kill came again (its cursor was saved).
      for (const id of before) expect(delivered().filter((e) => e.id === id)).toHaveLength(1);
    } finally {
      second.proc.kill('SIGTERM');
      expect(await second.proc.exited).toBe(0);
    }
  }, 60_000);
});
