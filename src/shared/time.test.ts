import { describe, expect, test } from 'bun:test';
import { readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { Glob } from 'bun';
import { iso, ManualClock } from './time.ts';

const ROOT = join(import.meta.dir, '..', '..');

/** Reads of the wall clock that bypass the injected `Clock`. */
const WALL_CLOCK: { name: string; re: RegExp }[] = [
  { name: 'Date.now', re: /\bDate\.now\b/ },
  // `new Date()` / `new Date;` with no argument is "now"; `new Date(ms)` is a conversion.
  { name: 'new Date()', re: /\bnew Date\s*(\(\s*\)|(?![\s(]))/ },
  { name: 'performance.now', re: /\bperformance\.now\b/ },
];

/**
 * The uses of the wall clock that stay, each with its reason. A path ending in `/` covers a
 * folder. An entry that matches nothing any more fails the test, so the list only shrinks.
 */
const ALLOWED: { path: string; what: string; why: string }[] = [
  {
    path: 'src/server/http.ts',
    what: 'performance.now',
    why: 'request latency for /metrics: a monotonic duration, not a time of day',
  },
  {
    path: 'src/flows/create-platform.ts',
    what: 'performance.now',
    why: "the create's timings (argon2_ms, total_ms) it reports: monotonic durations",
  },
  {
    path: 'src/ai/service.ts',
    what: 'performance.now',
    why: "a model call's latency in its usage record: a monotonic duration, not a time of day",
  },
  {
    path: 'src/agents/tools.service.ts',
    what: 'performance.now',
    why: "a tool call's duration in its audit entry and result: a monotonic duration, not a time of day",
  },
  {
    path: 'src/db/checkpointer.ts',
    what: 'performance.now',
    why: "a checkpoint's duration, measured in its worker thread (no App there): monotonic",
  },
];

/** Code lines only: comment lines (`//`, ` * `, `/*`) are prose. */
const isComment = (line: string) => /^\s*(\/\/|\*|\/\*)/.test(line);

/** Every wall-clock read in `src/**.ts` outside tests and src/shared/time.ts, as `file:line: what`. */
function wallClockReads(): { path: string; line: number; what: string }[] {
  const found: { path: string; line: number; what: string }[] = [];
  for (const file of new Glob('src/**/*.ts').scanSync({ cwd: ROOT })) {
    const path = relative(ROOT, join(ROOT, file)).split('\\').join('/');
    if (path.endsWith('.test.ts') || path === 'src/shared/time.ts') continue;
    readFileSync(join(ROOT, path), 'utf8')
      .split('\n')
      .forEach((text, i) => {
        if (isComment(text)) return;
        for (const w of WALL_CLOCK) if (w.re.test(text)) found.push({ path, line: i + 1, what: w.name });
      });
  }
  return found;
}

const allows = (a: (typeof ALLOWED)[number], r: { path: string; what: string }) =>
  a.what === r.what && (a.path.endsWith('/') ? r.path.startsWith(a.path) : r.path === a.path);

describe('one clock', () => {
  test('the patterns catch what they should and nothing else', () => {
    const hits = (s: string) => WALL_CLOCK.filter((w) => w.re.test(s)).map((w) => w.name);
    expect(hits('const t = Date.now();')).toEqual(['Date.now']);
    expect(hits('setInterval(Date.now, 5)')).toEqual(['Date.now']);
    expect(hits('const d = new Date();')).toEqual(['new Date()']);
    expect(hits('const d = new Date;')).toEqual(['new Date()']);
    expect(hits('const t0 = performance.now();')).toEqual(['performance.now']);
    expect(hits('new Date(app.clock.now()).toISOString()')).toEqual([]);
    expect(hits('new Date(ms)')).toEqual([]);
    expect(hits('app.clock.now()')).toEqual([]);
  });

  test('no code that has a clock reads the wall clock (Date.now, new Date(), performance.now)', () => {
    const reads = wallClockReads();
    const offending = reads.filter((r) => !ALLOWED.some((a) => allows(a, r)));
    expect(offending.map((r) => `${r.path}:${r.line}: ${r.what} (use the App's clock)`)).toEqual([]);
    const stale = ALLOWED.filter((a) => !reads.some((r) => allows(a, r)));
    expect(stale.map((a) => `allow-list entry matches nothing, remove it: ${a.path} ${a.what}`)).toEqual([]);
  });
});

test('ManualClock moves only when told to', () => {
  const c = new ManualClock(Date.UTC(2026, 10, 26, 12));
  expect(iso(c.now())).toBe('2026-11-26T12:00:00.000Z');
  c.advance(30_000);
  expect(iso(c.now())).toBe('2026-11-26T12:00:30.000Z');
  c.set(0);
  expect(c.now()).toBe(0);
});
