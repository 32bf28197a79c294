import { expect, test } from 'bun:test';
import { readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { Glob } from 'bun';
import { ROOT } from './helpers.ts';

// A lint over the suite: no fixed sleep orders events. Waiting goes through tests/wait.ts
// (`waitFor` polls a condition, `signal` is resolved by the code or fake awaited, `holdsFor`
// bounds a check that something does not happen). A timer anywhere else needs an entry here,
// with the number of calls in the file and why it is not ordering anything.
const TIMER = /\bBun\.sleep(?:Sync)?\(|\bsetTimeout\(|\bsetInterval\(/g;

const ALLOWED: Record<string, { count: number; reason: string }> = {
  'tests/wait.ts': { count: 2, reason: 'the waiting helpers themselves (poll interval, deadline)' },
  'src/app/http1.test.ts': {
    count: 1,
    reason:
      'the fake upstream paces its chunked body (30 ms a part) so that it streams across the client deadline under test',
  },
  'src/identity/throttle.test.ts': {
    count: 1,
    reason:
      'the fake argon2 verify stays a macrotask away, like the real one, so a burst overlaps; the tallies do not depend on its length',
  },
  'tests/secrets-at-rest.test.ts': {
    count: 1,
    reason: 'a kill guard: a server that wrongly started is killed so the test fails instead of hanging',
  },
  'tests/peers/openai-stub.ts': {
    count: 1,
    reason: "the stub's latency faults (delayHeaders, split SSE frames): the upstream timing under test",
  },
  'tests/peers/anthropic-stub.ts': {
    count: 1,
    reason: "the stub's delayHeaders fault (timeouts under test)",
  },
  'tests/peers/ollama-stub.ts': { count: 1, reason: "the stub's delayHeaders fault (timeouts under test)" },
  'src/shared/time.test.ts': {
    count: 1,
    reason: 'a string fed to the one-clock scan as sample source, not a timer',
  },
};

/** Every test file, and every helper or fake under tests/. */
function suiteFiles(): string[] {
  const out = new Set<string>();
  for (const pattern of ['src/**/*.test.ts', 'tests/**/*.ts'])
    for (const f of new Glob(pattern).scanSync({ cwd: ROOT })) out.add(f);
  out.delete(relative(ROOT, import.meta.path));
  return [...out].sort();
}

test('no test file waits on a fixed timer outside tests/wait.ts and the allow-list', () => {
  const found: Record<string, number> = {};
  for (const f of suiteFiles()) {
    const n = readFileSync(join(ROOT, f), 'utf8').match(TIMER)?.length ?? 0;
    if (n) found[f] = n;
  }
  expect(Object.keys(found).length).toBeGreaterThan(0); // the scan sees files at all
  const allowed = Object.fromEntries(Object.entries(ALLOWED).map(([f, a]) => [f, a.count]));
  // Exact: a new timer fails, and so does an entry whose timer has gone (keep the list true).
  expect(found).toEqual(allowed);
});

test('the scan recognises each form of a timer', () => {
  const forms = ['await Bun.sleep(5)', 'Bun.sleepSync(1)', 'setTimeout(r, 5)', 'setInterval(f, 1)'];
  expect(forms.map((s) => s.match(TIMER)?.length ?? 0)).toEqual([1, 1, 1, 1]);
  expect('clearTimeout(t); waitFor(() => ok)'.match(TIMER)).toBeNull();
});
