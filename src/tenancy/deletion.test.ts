import { afterEach, describe, expect, test } from 'bun:test';
import { existsSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { tempDir } from '../../tests/helpers.ts';
import { silentLogger } from '../app/index.ts';
import { createPlatform, type Instance, openInstance } from '../flows/index.ts';

// A platform delete is three durable steps (control 0007): a row in state 'deleting' → the file
// removed → the control row gone and the deletion row 'deleted'. A crash after any step leaves a
// state the next boot finishes (tenancy.reconcileDeletions, run by openInstance).

let t = tempDir();
let now = Date.UTC(2026, 5, 1);
const clock = { now: () => now };
const open = () => openInstance({ dataDir: join(t.dir, 'data'), log: silentLogger, clock });
let inst: Instance | null = null;
afterEach(async () => {
  await inst?.close();
  inst = null;
  t.cleanup();
  t = tempDir();
});

/** An archived platform, and what step 1 of its delete writes (as if the process died right after). */
async function crashedAfterStep1(slug: string): Promise<{ id: string; file: string }> {
  inst = open();
  const { platform } = await createPlatform(inst.app, inst.tenancy, { slug }, 'test');
  const archived = await inst.tenancy.archive(slug, 'test');
  const file = join(inst.app.dataDir, archived.db_file);
  inst.app.control
    .query(
      `INSERT INTO platform_deletions (platform_id, slug, name, state, db_file, actor, requested_at, deleted_at, slug_free_at)
       VALUES (?, ?, ?, 'deleting', ?, 'test', ?, NULL, ?)`,
    )
    .run(platform.id, slug, platform.name, archived.db_file, now, now + 86_400_000);
  await inst.close();
  inst = null;
  return { id: platform.id, file };
}

const state = (i: Instance, id: string) =>
  i.app.control
    .query<{ state: string }, [string]>('SELECT state FROM platform_deletions WHERE platform_id = ?')
    .get(id)?.state;
const controlRow = (i: Instance, id: string) =>
  i.app.control.query('SELECT id FROM platforms WHERE id = ?').get(id) !== null;
const events = (i: Instance) =>
  i.app.control
    .query<{ name: string }, []>("SELECT name FROM events WHERE name = 'platform.deleted'")
    .all()
    .map((r) => r.name);

describe('an interrupted delete is finished at the next boot', () => {
  test('after step 1 (row marked deleting, file still there): the file goes, the row is finalized', async () => {
    const { id, file } = await crashedAfterStep1('half');
    expect(existsSync(file)).toBe(true);
    inst = open();
    expect(existsSync(file)).toBe(false);
    expect(state(inst, id)).toBe('deleted');
    expect(controlRow(inst, id)).toBe(false);
    expect(inst.tenancy.list()).toEqual([]);
    expect(events(inst)).toEqual(['platform.deleted']);
    // The slug is still reserved after the restart.
    await expect(createPlatform(inst.app, inst.tenancy, { slug: 'half' }, 'test')).rejects.toMatchObject({
      code: 'platform.slug_reserved',
      status: 409,
    });
  });

  test('after step 2 (file removed, row not finalized): the row is finalized, nothing else needed', async () => {
    const { id, file } = await crashedAfterStep1('nearly');
    rmSync(file);
    inst = open();
    expect(state(inst, id)).toBe('deleted');
    expect(controlRow(inst, id)).toBe(false);
    expect(inst.tenancy.reconcileDeletions()).toEqual([]);
  });

  test('a finished delete is left alone by later boots; the slug is free after the grace period', async () => {
    inst = open();
    await createPlatform(inst.app, inst.tenancy, { slug: 'done' }, 'test');
    await inst.tenancy.archive('done', 'test');
    const r = inst.tenancy.remove('done', 'done', 'test', 2);
    expect(r.slug_free_at).toBe(new Date(now + 2 * 86_400_000).toISOString());
    await inst.close();
    inst = open();
    expect(inst.tenancy.reconcileDeletions()).toEqual([]);
    expect(events(inst)).toEqual(['platform.deleted']);
    now += 2 * 86_400_000;
    const again = await createPlatform(inst.app, inst.tenancy, { slug: 'done' }, 'test');
    expect(again.slug).toBe('done');
  });
});
