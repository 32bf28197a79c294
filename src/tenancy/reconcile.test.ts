import { afterEach, beforeEach, describe, expect, test } from 'bun:test';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { tempDir } from '../../tests/helpers.ts';
import type { Logger } from '../app/index.ts';
import {
  RECONCILE_RULES,
  type ReconcileRow,
  type ReconcileRule,
  reconcilePlatformFiles,
} from './reconcile.ts';

let t: { dir: string; cleanup(): void };
let lines: string[];
const log: Logger = {
  debug() {},
  info() {},
  warn: (msg, f) => lines.push(`warn ${msg} ${JSON.stringify(f)}`),
  error: (msg, f) => lines.push(`error ${msg} ${JSON.stringify(f)}`),
};
const clock = { now: () => 1_700_000_000_000 };

beforeEach(() => {
  t = tempDir('soulfra-reconcile-');
  lines = [];
});
afterEach(() => t.cleanup());

const put = (rel: string, body = rel) => {
  mkdirSync(dirname(join(t.dir, rel)), { recursive: true });
  writeFileSync(join(t.dir, rel), body);
};
const read = (rel: string) => readFileSync(join(t.dir, rel), 'utf8');
const has = (rel: string) => existsSync(join(t.dir, rel));
const row = (id: string, status: ReconcileRow['status'], db_file: string): ReconcileRow => ({
  id,
  slug: id.replace('plt_', ''),
  status,
  db_file,
});
const run = (rows: ReconcileRow[], rules?: Record<string, ReconcileRule>) =>
  reconcilePlatformFiles(t.dir, rows, { log, clock, rules });

describe('the boot reconciler of platform files', () => {
  test('files already where their rows say are left alone; nothing is logged', () => {
    put('platforms/plt_a.db');
    put('platforms/plt_b.db');
    put('platforms/archive/plt_c.db');
    const rows = [
      row('plt_a', 'active', 'platforms/plt_a.db'),
      row('plt_b', 'suspended', 'platforms/plt_b.db'),
      row('plt_c', 'archived', 'platforms/archive/plt_c.db'),
    ];
    expect(run(rows)).toEqual({ moved: [], missing: [], finished: [], quarantined: [] });
    expect(lines).toEqual([]);
  });

  test('an archive cut short after its commit (row archived, file still live) is finished, sidecars too', () => {
    put('platforms/plt_a.db', 'pages');
    put('platforms/plt_a.db-wal', 'wal');
    const report = run([row('plt_a', 'archived', 'platforms/archive/plt_a.db')]);
    expect(report.moved).toEqual([
      { id: 'plt_a', slug: 'a', from: 'platforms/plt_a.db', to: 'platforms/archive/plt_a.db' },
    ]);
    expect(read('platforms/archive/plt_a.db')).toBe('pages');
    expect(read('platforms/archive/plt_a.db-wal')).toBe('wal');
    expect(has('platforms/plt_a.db') || has('platforms/plt_a.db-wal')).toBe(false);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toContain('moved a platform file to where its row says');
    // A second run finds nothing to do.
    expect(run([row('plt_a', 'archived', 'platforms/archive/plt_a.db')]).moved).toEqual([]);
  });

  test('an unarchive cut short after its commit (row active, file still archived) is finished', () => {
    put('platforms/archive/plt_a.db', 'pages');
    const report = run([row('plt_a', 'active', 'platforms/plt_a.db')]);
    expect(report.moved).toEqual([
      { id: 'plt_a', slug: 'a', from: 'platforms/archive/plt_a.db', to: 'platforms/plt_a.db' },
    ]);
    expect(read('platforms/plt_a.db')).toBe('pages');
  });

  test('files no row names are moved to quarantine (logged, never deleted); names that clash get a suffix', () => {
    // A create that renamed its file in and stopped before its row committed; a stray archive.
    put('platforms/plt_new.db', 'orphan');
    put('platforms/plt_new.db-wal', 'orphan wal');
    put('platforms/archive/plt_old.db', 'old');
    put('platforms/quarantine/plt_old.db', 'quarantined before');
    // Not database files of a platform: left alone (the temporary ones are the sweep's).
    put('platforms/.tmp-plt_x.db');
    put('platforms/notes.txt');
    const report = run([]);
    expect(report.quarantined).toEqual([
      { from: 'platforms/plt_new.db', to: 'platforms/quarantine/plt_new.db' },
      { from: 'platforms/archive/plt_old.db', to: 'platforms/quarantine/plt_old.1700000000000.db' },
    ]);
    expect(read('platforms/quarantine/plt_new.db')).toBe('orphan');
    expect(read('platforms/quarantine/plt_new.db-wal')).toBe('orphan wal');
    expect(read('platforms/quarantine/plt_old.db')).toBe('quarantined before');
    expect(read('platforms/quarantine/plt_old.1700000000000.db')).toBe('old');
    expect(readdirSync(join(t.dir, 'platforms')).sort()).toEqual([
      '.tmp-plt_x.db',
      'archive',
      'notes.txt',
      'quarantine',
    ]);
    expect(lines.filter((l) => l.includes('to quarantine'))).toHaveLength(2);
  });

  test('a copy left at the other place of a platform whose file is in place is quarantined, not merged', () => {
    put('platforms/plt_a.db', 'live');
    put('platforms/archive/plt_a.db', 'stale');
    const report = run([row('plt_a', 'active', 'platforms/plt_a.db')]);
    expect(report.moved).toEqual([]);
    expect(report.quarantined).toEqual([
      { from: 'platforms/archive/plt_a.db', to: 'platforms/quarantine/plt_a.db' },
    ]);
    expect(read('platforms/plt_a.db')).toBe('live');
  });

  test('a row whose file is nowhere is reported and logged as an error, and nothing else changes', () => {
    const report = run([row('plt_a', 'active', 'platforms/plt_a.db')]);
    expect(report.missing).toEqual([{ id: 'plt_a', slug: 'a', db_file: 'platforms/plt_a.db' }]);
    expect(lines).toEqual([
      'error platform database file is missing {"platform":"a","file":"platforms/plt_a.db"}',
    ]);
  });

  test('a state in progress is handed to its rule, which owns its files (how a delete plugs in)', () => {
    // What platform delete adds: row marked deleting → file removed → row finalized.
    put('platforms/archive/plt_d.db');
    const done: string[] = [];
    const rules: Record<string, ReconcileRule> = {
      ...RECONCILE_RULES,
      deleting: {
        kind: 'finish',
        run: (r, ctx) => {
          expect(has(r.db_file)).toBe(true);
          rmSync(join(ctx.dataDir, r.db_file));
          done.push(r.id);
        },
      },
    };
    const report = run(
      [row('plt_d', 'deleting' as ReconcileRow['status'], 'platforms/archive/plt_d.db')],
      rules,
    );
    expect(done).toEqual(['plt_d']);
    expect(report.finished).toEqual([
      { id: 'plt_d', slug: 'd', status: 'deleting' as ReconcileRow['status'] },
    ]);
    expect(report.quarantined).toEqual([]);
  });

  test('a state this build does not know leaves its files alone', () => {
    put('platforms/plt_z.db');
    const report = run([row('plt_z', 'purging' as ReconcileRow['status'], 'platforms/plt_z.db')]);
    expect(report).toEqual({ moved: [], missing: [], finished: [], quarantined: [] });
    expect(has('platforms/plt_z.db')).toBe(true);
    expect(lines[0]).toContain('unknown state');
  });
});
