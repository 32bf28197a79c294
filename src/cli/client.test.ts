import { expect, test } from 'bun:test';
import { join } from 'node:path';
import { tempDir } from '../../tests/helpers.ts';
import { lockDataDir } from '../app/index.ts';
import { ManualClock } from '../shared/time.ts';
import { connect } from './client.ts';

test('connect gives up on a locked data dir whose socket never answers once its clock passes 5 s', async () => {
  const t = tempDir();
  const data = join(t.dir, 'data');
  const held = lockDataDir(data);
  if (!('lock' in held)) throw new Error('the test could not take the lock');
  try {
    // The clock jumps past the deadline at its second reading: no waiting out 5 s of wall time.
    const clock = new ManualClock(0);
    const reads: number[] = [];
    const jumping = {
      now: () => {
        reads.push(clock.now());
        clock.advance(5_001);
        return reads.at(-1)!;
      },
    };
    await expect(connect(data, { clock: jumping })).rejects.toMatchObject({
      code: 'datadir.locked',
      status: 409,
    });
    expect(reads).toEqual([0, 5_001]);
  } finally {
    held.lock.release();
    t.cleanup();
  }
});
