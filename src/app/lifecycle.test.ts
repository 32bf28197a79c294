import { describe, expect, test } from 'bun:test';
import { join } from 'node:path';
import { tempDir } from '../../tests/helpers.ts';
import { openApp } from './app.ts';
import type { AuditPort } from './audit-port.ts';
import { Lifecycle } from './lifecycle.ts';
import { createLogger, silentLogger } from './logger.ts';

/** A lifecycle whose components write what happens to `log`. */
function recorder() {
  const events: string[] = [];
  const part = (name: string, opts: { failStart?: boolean; failStop?: boolean } = {}) => ({
    name,
    start: () => {
      events.push(`start ${name}`);
      if (opts.failStart) throw new Error(`${name} cannot start`);
      return name.toUpperCase();
    },
    stop: (v: string) => {
      events.push(`stop ${name} (${v})`);
      if (opts.failStop) throw new Error(`${name} cannot stop`);
    },
  });
  return { events, part };
}

describe('Lifecycle', () => {
  test('components start in order and stop in reverse, each with the value its start made', async () => {
    const { events, part } = recorder();
    const life = new Lifecycle(silentLogger);
    expect(await life.add(part('lock'))).toBe('LOCK');
    await life.add(part('databases'));
    await life.add(part('listener'));
    expect(life.names).toEqual(['lock', 'databases', 'listener']);
    await life.stop();
    expect(events).toEqual([
      'start lock',
      'start databases',
      'start listener',
      'stop listener (LISTENER)',
      'stop databases (DATABASES)',
      'stop lock (LOCK)',
    ]);
    expect(life.names).toEqual([]);
  });

  test('stop runs once: concurrent and later calls get the same teardown', async () => {
    const { events, part } = recorder();
    const life = new Lifecycle(silentLogger);
    await life.add(part('a'));
    await life.add(part('b'));
    const first = life.stop();
    const second = life.stop();
    expect(second).toBe(first);
    await first;
    await life.stop();
    expect(events.filter((e) => e.startsWith('stop'))).toEqual(['stop b (B)', 'stop a (A)']);
  });

  test('a start that throws stops what started before it, in reverse, and its error comes back', async () => {
    const { events, part } = recorder();
    const life = new Lifecycle(silentLogger);
    await life.add(part('lock'));
    await life.add(part('databases'));
    await expect(life.add(part('meter', { failStart: true }))).rejects.toThrow('meter cannot start');
    expect(events).toEqual([
      'start lock',
      'start databases',
      'start meter',
      'stop databases (DATABASES)',
      'stop lock (LOCK)',
    ]);
    // Nothing starts on a lifecycle that is stopping or stopped.
    await expect(life.add(part('late'))).rejects.toMatchObject({ code: 'lifecycle.stopped' });
    expect(events).not.toContain('start late');
  });

  test('a stop that throws is logged and reported; the ones after it still run', async () => {
    const { events, part } = recorder();
    const lines: string[] = [];
    const life = new Lifecycle(createLogger({ write: (l) => lines.push(l) }));
    await life.add(part('lock'));
    await life.add(part('databases', { failStop: true }));
    await life.add(part('listener'));
    const failed = await life.stop();
    expect(events.filter((e) => e.startsWith('stop'))).toEqual([
      'stop listener (LISTENER)',
      'stop databases (DATABASES)',
      'stop lock (LOCK)',
    ]);
    expect(failed.map((f) => f.name)).toEqual(['databases']);
    expect(String(failed[0]!.error)).toContain('databases cannot stop');
    expect(lines.some((l) => l.includes('stop failed') && l.includes('component=databases'))).toBe(true);
  });

  test('a stop past its timeout is abandoned and reported; teardown goes on', async () => {
    const { events, part } = recorder();
    const life = new Lifecycle(silentLogger);
    await life.add(part('lock'));
    await life.add({ name: 'stuck', stop: () => new Promise(() => {}), stopTimeoutMs: 20 });
    const failed = await life.stop();
    expect(failed.map((f) => f.name)).toEqual(['stuck']);
    expect(failed[0]!.error).toMatchObject({ code: 'lifecycle.stop_timeout' });
    expect(events).toContain('stop lock (LOCK)');
  });

  test('a component whose start finishes after stop began is stopped at once, not left running', async () => {
    const { events } = recorder();
    const life = new Lifecycle(silentLogger);
    let release!: () => void;
    const gate = new Promise<void>((r) => {
      release = r;
    });
    const adding = life.add({
      name: 'slow',
      start: async () => {
        await gate;
        events.push('start slow');
        return 1;
      },
      stop: () => {
        events.push('stop slow');
      },
    });
    const stopped = life.stop();
    release();
    await expect(adding).rejects.toMatchObject({ code: 'lifecycle.stopped' });
    await stopped;
    expect(events).toEqual(['start slow', 'stop slow']);
  });
});

describe('the App lifecycle', () => {
  const audit = (): AuditPort => ({}) as AuditPort;

  test('components added to the App stop before its databases close; close runs once', async () => {
    const t = tempDir();
    try {
      const app = openApp({
        dataDir: join(t.dir, 'data'),
        log: silentLogger,
        audit,
        masterKey: 'ab'.repeat(32),
      });
      let sawOpenDb = false;
      await app.lifecycle.add({
        name: 'dispatcher',
        stop: () => {
          // Still open: this query would throw on a closed handle.
          sawOpenDb = app.control.query('SELECT 1 AS one').get() !== null;
        },
      });
      expect(app.lifecycle.names).toEqual(['databases', 'dispatcher']);
      await Promise.all([app.close(), app.close()]);
      expect(sawOpenDb).toBe(true);
      expect(() => app.control.query('SELECT 1').get()).toThrow();
    } finally {
      t.cleanup();
    }
  });
});
