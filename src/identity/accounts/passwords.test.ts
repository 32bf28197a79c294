import { describe, expect, test } from 'bun:test';
import { AppState } from '../../app/index.ts';
import { hashPassword, LANE_QUEUE_CAP, laneHasRoom, verifyPassword } from './passwords.ts';

/** A bare App (its state only): each test's limiter is its own. */
const anApp = () => ({ state: new AppState() });

test('argon2id hashes verify, and a burst never runs more than two at once', async () => {
  const real = Bun.password.hash;
  let now = 0;
  let peak = 0;
  Bun.password.hash = (async (...args: Parameters<typeof real>) => {
    now++;
    peak = Math.max(peak, now);
    try {
      return await real(...args);
    } finally {
      now--;
    }
  }) as typeof real;
  const app = anApp();
  try {
    const hashes = await Promise.all(
      Array.from({ length: 6 }, (_, i) => hashPassword(app, `password-${i}-long-enough`)),
    );
    expect(peak).toBe(2);
    expect(hashes[0]).toStartWith('$argon2id$');
    expect(await verifyPassword(app, 'password-3-long-enough', hashes[3]!)).toBe(true);
    expect(await verifyPassword(app, 'password-3-long-enough', hashes[2]!)).toBe(false);
  } finally {
    Bun.password.hash = real;
  }
});

describe('fair lanes (one per platform)', () => {
  /** Gates every verify: the test ends each one and records the order they start. */
  function gated() {
    const real = Bun.password.verify;
    const gates: (() => void)[] = [];
    const started: string[] = [];
    Bun.password.verify = ((pw: string) => {
      started.push(pw);
      return new Promise<boolean>((r) => gates.push(() => r(true)));
    }) as typeof real;
    return {
      started,
      /** Checks running now. */
      pending: () => gates.length,
      /** Ends the oldest running check; resolves once every microtask it set off has run. */
      async finishOne() {
        gates.shift()!();
        await new Promise((r) => setImmediate(r));
      },
      restore: () => {
        Bun.password.verify = real;
      },
    };
  }

  const cases: { name: string; flood: number; others: string[]; order: string[] }[] = [
    {
      name: "a flood on A: B's one check takes the first slot that frees",
      flood: 8,
      others: ['b1'],
      order: ['a0', 'a1', 'b1', 'a2'],
    },
    {
      name: 'two other platforms: each waiting lane is served in turn, A never twice in a row',
      flood: 8,
      others: ['b1', 'c1', 'b2'],
      order: ['a0', 'a1', 'b1', 'a2', 'c1', 'b2', 'a3'],
    },
  ];
  for (const c of cases) {
    test(c.name, async () => {
      const g = gated();
      const app = anApp();
      try {
        const all = [
          ...Array.from({ length: c.flood }, (_, i) =>
            verifyPassword(app, `a${i}`, 'h', { lane: 'A', queueCap: LANE_QUEUE_CAP }),
          ),
          ...c.others.map((pw) =>
            verifyPassword(app, pw, 'h', { lane: pw[0]!.toUpperCase(), queueCap: LANE_QUEUE_CAP }),
          ),
        ];
        while (g.started.length < c.order.length) await g.finishOne();
        expect(g.started.slice(0, c.order.length)).toEqual(c.order);
        while (g.pending() > 0) await g.finishOne();
        expect(await Promise.all(all)).toEqual(all.map(() => true));
      } finally {
        g.restore();
      }
    });
  }

  test('a lane past its queue cap is refused at once, before any hashing; other lanes are not', async () => {
    const g = gated();
    const app = anApp();
    try {
      const held = Array.from({ length: 2 + LANE_QUEUE_CAP }, (_, i) =>
        verifyPassword(app, `a${i}`, 'h', { lane: 'A', queueCap: LANE_QUEUE_CAP }),
      );
      let refused: unknown = null;
      try {
        await verifyPassword(app, 'a-over', 'h', { lane: 'A', queueCap: LANE_QUEUE_CAP });
      } catch (e) {
        refused = e;
      }
      expect(refused).toMatchObject({ code: 'auth.busy', status: 429, retryAfter: 1 });
      expect(g.started).toEqual(['a0', 'a1']);
      expect(laneHasRoom(app, 'B', LANE_QUEUE_CAP)).toBe(true);
      const b = verifyPassword(app, 'b', 'h', { lane: 'B', queueCap: LANE_QUEUE_CAP });
      while (g.pending() > 0) await g.finishOne();
      expect(await b).toBe(true);
      expect(await Promise.all(held)).toEqual(held.map(() => true));
      expect(g.started).not.toContain('a-over');
    } finally {
      g.restore();
    }
  });

  test('two Apps in one process queue apart: a full lane in one leaves the other free', async () => {
    const g = gated();
    const one = anApp();
    const other = anApp();
    try {
      const held = Array.from({ length: 2 + LANE_QUEUE_CAP }, (_, i) =>
        verifyPassword(one, `a${i}`, 'h', { lane: 'A', queueCap: LANE_QUEUE_CAP }),
      );
      expect(laneHasRoom(one, 'A', LANE_QUEUE_CAP)).toBe(false);
      // The same lane name in another App: its own slots, so it starts at once.
      expect(laneHasRoom(other, 'A', LANE_QUEUE_CAP)).toBe(true);
      const mine = verifyPassword(other, 'other-a', 'h', { lane: 'A', queueCap: LANE_QUEUE_CAP });
      expect(g.started).toEqual(['a0', 'a1', 'other-a']);
      while (g.pending() > 0) await g.finishOne();
      expect(await mine).toBe(true);
      expect(await Promise.all(held)).toEqual(held.map(() => true));
    } finally {
      g.restore();
    }
  });
});
