import { existsSync, mkdirSync, readdirSync, renameSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { Logger } from '../app/index.ts';
import type { Clock } from '../shared/time.ts';
import type { PlatformHead, PlatformStatus } from './platforms.repository.ts';

/*
 * The boot reconciler of platform files. A platform's control row is the truth; its database
 * file follows. Every change of a platform's life commits its row first and moves the file
 * after (create is the one exception: the new file is renamed in before its row commits, so a
 * crash between the two leaves a file no row names). A crash between the commit and the move
 * leaves the file where the old state kept it; at boot, before anything opens a platform
 * database, this puts each file where its row says, and moves files no row names aside to
 * platforms/quarantine/ (logged, never deleted).
 */

/** The folders of platform files, relative to the data dir. */
export const PLATFORM_DIRS = {
  live: 'platforms',
  archive: join('platforms', 'archive'),
  quarantine: join('platforms', 'quarantine'),
} as const;

/** Every place a platform's database file may be, relative to the data dir (live first). */
export function platformFilePlaces(id: string): string[] {
  return [join(PLATFORM_DIRS.live, `${id}.db`), join(PLATFORM_DIRS.archive, `${id}.db`)];
}

/** A row as the reconciler reads it. */
export type ReconcileRow = Pick<PlatformHead, 'id' | 'slug' | 'status' | 'db_file'>;

/** What a state's `finish` may use. */
export interface ReconcileContext {
  dataDir: string;
  log: Logger;
  clock: Clock;
  /** Moves a database file with its `-wal`/`-shm`/`-journal` (paths relative to the data dir). */
  move(from: string, to: string): void;
}

/**
 * What the reconciler does with a row in each state. `at_db_file`: the file belongs at the row's
 * `db_file`; when it is not there but at another of its places (a move cut short by a crash),
 * it is moved there. `finish`: the state is a step in progress (e.g. a delete: row marked
 * deleting → file removed → row finalized) whose remaining steps `run` does; the files at the
 * platform's places are left to it (never quarantined). A new state is a new key of
 * `PlatformStatus`, so the typecheck asks for its rule here.
 */
export type ReconcileRule =
  | { kind: 'at_db_file' }
  | { kind: 'finish'; run(row: ReconcileRow, ctx: ReconcileContext): void };

const AT_DB_FILE: ReconcileRule = { kind: 'at_db_file' };

/** The rule of each state. */
export const RECONCILE_RULES: Record<PlatformStatus, ReconcileRule> = {
  active: AT_DB_FILE,
  suspended: AT_DB_FILE,
  archived: AT_DB_FILE,
};

/** What a reconcile did (also logged, one line each). */
export interface ReconcileReport {
  /** Files moved to where their row says (a move a crash cut short, now finished). */
  moved: { id: string; slug: string; from: string; to: string }[];
  /** Rows whose file is nowhere: left as they are, logged as errors. */
  missing: { id: string; slug: string; db_file: string }[];
  /** Rows in a `finish` state handed to their rule. */
  finished: { id: string; slug: string; status: PlatformStatus }[];
  /** Files no row names, moved into platforms/quarantine/. */
  quarantined: { from: string; to: string }[];
}

const SIDECARS = ['', '-wal', '-shm', '-journal'];

/**
 * Puts every platform file where its row says and quarantines the files no row names. Call with
 * the data-dir lock held and before any platform database is opened.
 */
export function reconcilePlatformFiles(
  dataDir: string,
  rows: readonly ReconcileRow[],
  opts: { log: Logger; clock: Clock; rules?: Record<string, ReconcileRule> },
): ReconcileReport {
  const { log, clock } = opts;
  const rules: Record<string, ReconcileRule> = opts.rules ?? RECONCILE_RULES;
  const abs = (p: string) => join(dataDir, p);
  const move = (from: string, to: string) => {
    mkdirSync(dirname(abs(to)), { recursive: true, mode: 0o700 });
    if (existsSync(abs(to))) throw new Error(`cannot move ${from} to ${to}: ${to} exists`);
    // The database first: a sidecar without it is harmless, the reverse would lose its pages.
    for (const ext of SIDECARS) if (existsSync(abs(from + ext))) renameSync(abs(from + ext), abs(to + ext));
  };
  const ctx: ReconcileContext = { dataDir, log, clock, move };
  const report: ReconcileReport = { moved: [], missing: [], finished: [], quarantined: [] };
  const claimed = new Set<string>();

  for (const row of rows) {
    const rule = rules[row.status];
    if (!rule) {
      // A state this build does not know (a newer build wrote it): touch none of its files.
      log.error('platform row in an unknown state; its files are left alone', {
        platform: row.slug,
        status: row.status,
      });
      for (const p of [row.db_file, ...platformFilePlaces(row.id)]) claimed.add(p);
      continue;
    }
    if (rule.kind === 'finish') {
      for (const p of [row.db_file, ...platformFilePlaces(row.id)]) claimed.add(p);
      rule.run(row, ctx);
      report.finished.push({ id: row.id, slug: row.slug, status: row.status });
      log.warn('finished a platform change an earlier stop cut short', {
        platform: row.slug,
        status: row.status,
      });
      continue;
    }
    claimed.add(row.db_file);
    if (existsSync(abs(row.db_file))) continue;
    const elsewhere = platformFilePlaces(row.id).find((p) => p !== row.db_file && existsSync(abs(p)));
    if (elsewhere) {
      move(elsewhere, row.db_file);
      report.moved.push({ id: row.id, slug: row.slug, from: elsewhere, to: row.db_file });
      log.warn('moved a platform file to where its row says (a move an earlier stop cut short)', {
        platform: row.slug,
        status: row.status,
        from: elsewhere,
        to: row.db_file,
      });
    } else {
      report.missing.push({ id: row.id, slug: row.slug, db_file: row.db_file });
      log.error('platform database file is missing', { platform: row.slug, file: row.db_file });
    }
  }

  for (const dir of [PLATFORM_DIRS.live, PLATFORM_DIRS.archive]) {
    let names: string[];
    try {
      names = readdirSync(abs(dir), { withFileTypes: true })
        .filter((e) => e.isFile() && e.name.endsWith('.db') && !e.name.startsWith('.'))
        .map((e) => e.name);
    } catch {
      continue;
    }
    for (const name of names) {
      const from = join(dir, name);
      if (claimed.has(from)) continue;
      let to = join(PLATFORM_DIRS.quarantine, name);
      if (existsSync(abs(to))) to = join(PLATFORM_DIRS.quarantine, `${name.slice(0, -3)}.${clock.now()}.db`);
      move(from, to);
      report.quarantined.push({ from, to });
      log.warn('moved a platform file no control row names to quarantine (kept, not deleted)', { from, to });
    }
  }
  return report;
}
