import type { Database } from 'bun:sqlite';
import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { instanceWithPlatform } from '../../tests/helpers.ts';
import { waitFor } from '../../tests/wait.ts';
import { tx } from '../db/index.ts';
import type { Instance } from '../flows/index.ts';
import { type AnyEvent, appendEvent, EventDispatcher } from './events.ts';
import { silentLogger } from './logger.ts';

let inst: Instance;
let platformId: string;
let cleanup: () => Promise<void>;
let t = Date.UTC(2026, 11, 2, 8);

beforeAll(async () => {
  ({ inst, platformId, cleanup } = await instanceWithPlatform('events', () => t));
});
afterAll(() => cleanup());

/** Polls until `cond` holds (the shared `waitFor`: no fixed sleep); fails after `ms`. */
const until = (cond: () => boolean, ms = 5_000): Promise<unknown> => waitFor(cond, { timeout: ms });

/** A dispatcher of its own on the instance's databases (fast retries), started. */
function dispatcher(
  opts: {
    retryBaseMs?: number;
    pruneEveryMs?: number;
    batch?: number;
    handlerTimeoutMs?: number;
    stopGraceMs?: number;
  } = {},
) {
  const d = new EventDispatcher({
    control: inst.app.control,
    platformDbs: inst.app.platformDbs,
    clock: inst.app.clock,
    log: silentLogger,
    retryBaseMs: opts.retryBaseMs ?? 5,
    retryMaxMs: 20,
    pruneEveryMs: opts.pruneEveryMs,
    batch: opts.batch,
    handlerTimeoutMs: opts.handlerTimeoutMs,
    stopGraceMs: opts.stopGraceMs,
    env: {},
  });
  d.usePlatforms({ list: () => [platformId], live: (id) => id === platformId });
  return d;
}

/** Appends `n` budget alerts to the platform's log, one transaction each; returns their ids. */
function appendToPlatform(n: number, tag: string): Promise<string[]> {
  return inst.app.platformDbs.use(platformId, (db: Database) => {
    const ids: string[] = [];
    for (let i = 0; i < n; i++)
      ids.push(
        tx(db, () =>
          appendEvent(
            db,
            'ai.budget_alert',
            { platformId, budgetId: `${tag}${i}`, scope: 'platform', subject: '', percent: 80 },
            t,
          ),
        ),
      );
    return ids;
  });
}

const platformEvents = (seen: AnyEvent[]) => seen.filter((e) => e.source === platformId);

describe('event log', () => {
  test('appending outside a transaction is refused; ids increase in a database even when the clock stands still or steps back', async () => {
    await inst.app.platformDbs.use(platformId, (db) => {
      expect(() =>
        appendEvent(
          db,
          'ai.budget_alert',
          { platformId, budgetId: 'b', scope: 'platform', subject: '', percent: 1 },
          t,
        ),
      ).toThrow(expect.objectContaining({ code: 'events.outside_transaction' }));
      const ids = [t, t, t, t - 60_000, t].map((at) =>
        tx(db, () =>
          appendEvent(
            db,
            'ai.budget_alert',
            { platformId, budgetId: 'b', scope: 'platform', subject: '', percent: 1 },
            at,
          ),
        ),
      );
      expect(ids.every((id) => /^evt_[0-9a-hjkmnp-tv-z]{26}$/.test(id))).toBe(true);
      expect([...ids].sort()).toEqual(ids);
      expect(new Set(ids).size).toBe(ids.length);
      // Rolled back with its change.
      expect(() =>
        tx(db, () => {
          appendEvent(
            db,
            'ai.budget_alert',
            { platformId, budgetId: 'x', scope: 'platform', subject: '', percent: 1 },
            t,
          );
          throw new Error('change failed');
        }),
      ).toThrow('change failed');
      expect(db.query('SELECT count(*) AS n FROM events WHERE payload LIKE \'%"x"%\'').get()).toEqual({
        n: 0,
      });
    });
  });

  test('tenancy changes append their events in their transaction; the App dispatcher delivers them after the commit', async () => {
    const seen: AnyEvent[] = [];
    const off = inst.app.events.subscribe('test.tenancy', (e) => {
      seen.push(e);
    });
    inst.app.events.start();
    try {
      inst.tenancy.setActive('events', false, 'op:test', 'maintenance');
      inst.tenancy.setActive('events', true, 'op:test');
      await until(() => seen.filter((e) => e.name === 'platform.status_changed').length === 2);
      const changes = seen.filter((e) => e.name === 'platform.status_changed');
      expect(changes.map((e) => e.payload)).toEqual([
        { platformId, slug: 'events', from: 'active', to: 'suspended', actor: 'op:test' },
        { platformId, slug: 'events', from: 'suspended', to: 'active', actor: 'op:test' },
      ]);
      expect(changes.every((e) => e.source === 'control' && e.version === 1)).toBe(true);
      // The platform's creation (appended before anything subscribed) came first, from the start sweep.
      expect(seen[0]).toMatchObject({
        name: 'platform.created',
        source: 'control',
        payload: { slug: 'events' },
      });
      // An append through the App on a pool handle wakes its own pass, after the commit.
      await inst.app.events.idle();
      const id = await inst.app.platformDbs.use(platformId, (db) =>
        tx(db, () =>
          inst.app.events.append(db, 'ai.budget_alert', {
            platformId,
            budgetId: 'kick',
            scope: 'platform',
            subject: '',
            percent: 80,
          }),
        ),
      );
      await until(() => seen.some((e) => e.id === id));
      expect(seen.find((e) => e.id === id)).toMatchObject({ source: platformId, name: 'ai.budget_alert' });
    } finally {
      off();
    }
  });

  test('order per database; a failing subscriber is retried from the event that failed, and does not hold back the others', async () => {
    const d = dispatcher();
    const good: AnyEvent[] = [];
    const flaky: AnyEvent[] = [];
    let failures = 0;
    d.subscribe('test.good', (e) => {
      good.push(e);
    });
    d.subscribe('test.flaky', async (e) => {
      if (
        e.source === platformId &&
        e.name === 'ai.budget_alert' &&
        e.payload.budgetId === 'o3' &&
        failures < 3
      ) {
        failures++;
        throw new Error('downstream down');
      }
      flaky.push(e);
    });
    const ids = await appendToPlatform(6, 'o');
    d.start();
    try {
      await until(() => platformEvents(good).some((e) => e.id === ids[5]));
      await until(() => platformEvents(flaky).some((e) => e.id === ids[5]));
      expect(failures).toBe(3);
      const mine = (seen: AnyEvent[]) => platformEvents(seen).filter((e) => ids.includes(e.id));
      expect(mine(good).map((e) => e.id)).toEqual(ids);
      // Delivered in order, each once, the failed one again only until it went through.
      expect(mine(flaky).map((e) => e.id)).toEqual(ids);
      const all = platformEvents(good).map((e) => e.id);
      expect([...all].sort()).toEqual(all);
      expect(d.stats()).toMatchObject({ failed: 3 });
    } finally {
      await d.stop();
    }
  });

  test('at least once: a redelivered event carries its id, so an idempotent subscriber applies it once', async () => {
    const d = dispatcher();
    const applied = new Set<string>();
    let calls = 0;
    let crashOnce = true;
    const ids = await appendToPlatform(3, 'i');
    d.subscribe('test.idem', (e) => {
      if (!ids.includes(e.id)) return;
      calls++;
      applied.add(e.id); // the effect, keyed by event id
      // Its effect is done, but it fails before returning: the event comes again.
      if (e.id === ids[1] && crashOnce) {
        crashOnce = false;
        throw new Error('crashed after the effect');
      }
    });
    d.start();
    try {
      await until(() => applied.has(ids[2]!));
      expect(calls).toBe(4);
      expect([...applied]).toEqual(ids);
    } finally {
      await d.stop();
    }
  });

  test('stop() waits for the handler in flight, saves its cursor and halts; the next start delivers the rest', async () => {
    const ids = await appendToPlatform(3, 's');
    const d1 = dispatcher({ batch: 1 });
    const got1: string[] = [];
    let release!: () => void;
    const gate = new Promise<void>((r) => {
      release = r;
    });
    let entered = false;
    d1.subscribe('test.stop', async (e) => {
      if (!ids.includes(e.id)) return;
      got1.push(e.id);
      if (e.id === ids[0]) {
        entered = true;
        await gate;
      }
    });
    d1.start();
    await until(() => entered);
    let stopped = false;
    const stopping = d1.stop().then(() => {
      stopped = true;
    });
    await new Promise((r) => setImmediate(r));
    expect(stopped).toBe(false);
    release();
    await stopping;
    d1.kick(platformId);
    await d1.idle();
    expect(got1).toEqual([ids[0]!]);

    const d2 = dispatcher();
    const got2: string[] = [];
    d2.subscribe('test.stop', (e) => {
      if (ids.includes(e.id)) got2.push(e.id);
    });
    d2.start();
    try {
      await until(() => got2.length === 2);
      expect(got2).toEqual(ids.slice(1));
    } finally {
      await d2.stop();
    }
  });

  test('a subscriber waiting in a handler holds back only its own cursor: the others, registered after it, get every event meanwhile', async () => {
    const ids = await appendToPlatform(3, 'w');
    const d = dispatcher({ handlerTimeoutMs: 600_000, stopGraceMs: 10 });
    const good: string[] = [];
    let waiting = false;
    d.subscribe('test.waits', (e) => {
      if (!ids.includes(e.id)) return;
      waiting = true;
      return new Promise<void>(() => {});
    });
    d.subscribe('test.good', (e) => {
      if (e.source === platformId) good.push(e.id);
    });
    d.start();
    try {
      await until(() => waiting && ids.every((id) => good.includes(id)));
      // A later event on the same database reaches the good one too, the other still waiting.
      const [later] = await appendToPlatform(1, 'w-later');
      d.kick(platformId);
      await until(() => good.includes(later!));
      expect(good.slice(-4)).toEqual([...ids, later!]);
      expect(d.stats().inFlight).toBe(1);
    } finally {
      await d.stop();
    }
  });

  test('a handler that never settles fails at its deadline (signal aborted), is retried with backoff, and holds back neither its source nor the others', async () => {
    const ids = await appendToPlatform(3, 'h');
    const d = dispatcher({ handlerTimeoutMs: 25 });
    const good: string[] = [];
    const stuckSeen: string[] = [];
    const signals: AbortSignal[] = [];
    d.subscribe('test.stuck', (e, { signal }) => {
      if (!ids.includes(e.id)) return;
      stuckSeen.push(e.id);
      // The first two calls for the middle event never settle; the third returns.
      if (e.id === ids[1] && stuckSeen.filter((id) => id === ids[1]).length <= 2) {
        signals.push(signal);
        return new Promise<void>(() => {});
      }
    });
    d.subscribe('test.good', (e) => {
      if (ids.includes(e.id)) good.push(e.id);
    });
    d.start();
    try {
      // The good subscriber got every event although the stuck one sat on the second.
      await until(() => good.length === 3);
      expect(good).toEqual(ids);
      await until(() => stuckSeen.includes(ids[2]!));
      // Retried from the event that hung, in order; nothing after it before it went through.
      expect(stuckSeen).toEqual([ids[0]!, ids[1]!, ids[1]!, ids[1]!, ids[2]!]);
      expect(signals.map((s) => s.aborted)).toEqual([true, true]);
      expect((signals[0]!.reason as { code?: string }).code).toBe('events.handler_timeout');
      expect(d.stats()).toMatchObject({ failed: 2, timedOut: 2, inFlight: 0 });
    } finally {
      await d.stop();
    }
  });

  test('stop() abandons a handler that never settles after its grace (signal aborted, cursor before it); the next start delivers it again', async () => {
    const ids = await appendToPlatform(2, 'n');
    // The deadline is far off: what ends the wait is stop()'s grace, not the handler's deadline.
    const d1 = dispatcher({ handlerTimeoutMs: 600_000, stopGraceMs: 10 });
    const got1: string[] = [];
    let signal: AbortSignal | null = null;
    d1.subscribe('test.never', (e, ctx) => {
      if (!ids.includes(e.id)) return;
      got1.push(e.id);
      if (e.id === ids[1]) {
        signal = ctx.signal;
        return new Promise<void>(() => {});
      }
    });
    d1.start();
    await until(() => signal !== null);
    expect(d1.stats().inFlight).toBe(1);
    await d1.stop();
    expect(signal!.aborted).toBe(true);
    expect(d1.stats()).toMatchObject({ inFlight: 0, failed: 0, timedOut: 0 });
    expect(got1).toEqual(ids);

    const d2 = dispatcher();
    const got2: string[] = [];
    d2.subscribe('test.never', (e) => {
      if (ids.includes(e.id)) got2.push(e.id);
    });
    d2.start();
    try {
      await until(() => got2.length === 1);
      await d2.idle();
      // The first event's cursor was saved; the abandoned one comes again, once.
      expect(got2).toEqual([ids[1]!]);
    } finally {
      await d2.stop();
    }
  });

  test('retention: delivered events older than the retention are pruned, undelivered ones kept', async () => {
    const count = () =>
      inst.app.platformDbs.use(
        platformId,
        (db) => db.query<{ n: number }, []>('SELECT count(*) AS n FROM events').get()!.n,
      );
    const d0 = dispatcher({ pruneEveryMs: 0 });
    const seen: string[] = [];
    d0.subscribe('test.retain', (e) => {
      seen.push(e.id);
    });
    d0.start();
    await d0.idle();
    await d0.stop();
    const before = await count();
    expect(before).toBeGreaterThan(0);
    const [late] = await appendToPlatform(1, 'r');
    t += 8 * 86_400_000;
    // `test.lagging` has seen nothing: nothing it has not seen may go.
    const d1 = dispatcher({ pruneEveryMs: 0 });
    d1.subscribe('test.lagging', () => {
      throw new Error('never gets through');
    });
    d1.start();
    await d1.idle();
    await d1.stop();
    expect(await count()).toBe(before + 1);
    // Everyone through: all of it is older than 7 days, and goes.
    const d2 = dispatcher({ pruneEveryMs: 0 });
    const retained: string[] = [];
    d2.subscribe('test.retain', (e) => {
      retained.push(e.id);
    });
    d2.start();
    await d2.idle();
    await d2.stop();
    expect(retained).toEqual([late!]);
    expect(await count()).toBe(0);
  });
});
