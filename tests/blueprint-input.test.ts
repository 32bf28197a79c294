import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { MAX_BLUEPRINT_DEPTH } from '../src/tenancy/index.ts';
import { runCli, tempDir } from './helpers.ts';
import { type InProcessServer, inProcessServer } from './inproc.ts';
import { errorCode, scenarios } from './scenario.ts';

// Every path that accepts a blueprint refuses input nested too deep with 400 blueprint.too_deep
// (naming the path), never a 500 from a stack overflow: the operator API's JSON body, and the
// CLI's files (JSON and YAML), which are refused before anything is sent to a server.
// The API half runs in process (the server's fetch handler): the body's parsing is under test.
let s: InProcessServer;
const t = tempDir();
beforeAll(async () => {
  s = await inProcessServer();
});
afterAll(async () => {
  await s?.close();
  t.cleanup();
});

const deepJson = (n: number) => `${'{"a":'.repeat(n)}1${'}'.repeat(n)}`;
const tooDeepPath = `/identity${'/a'.repeat(MAX_BLUEPRINT_DEPTH - 1)}`;

describe('attacks: deeply nested blueprints are refused with 400, on every path', () => {
  const api: { name: string; body: string; path: string }[] = [
    {
      name: 'objects nested 20,000 deep',
      body: `{"slug":"deep-a","blueprint":{"identity":${deepJson(20_000)}}}`,
      path: tooDeepPath,
    },
    {
      name: 'arrays nested 20,000 deep',
      body: `{"slug":"deep-b","blueprint":{"features":${'['.repeat(20_000)}${']'.repeat(20_000)}}}`,
      path: `/features${'/0'.repeat(MAX_BLUEPRINT_DEPTH - 1)}`,
    },
    {
      name: 'one level past the limit',
      body: `{"slug":"deep-c","blueprint":{"identity":${deepJson(MAX_BLUEPRINT_DEPTH)}}}`,
      path: tooDeepPath,
    },
  ];
  scenarios(
    () => s,
    api.map((c) => ({
      name: `operator API: ${c.name} → 400 blueprint.too_deep at the path, nothing created`,
      method: 'POST',
      url: '/_operator/api/platforms',
      headers: (s) => ({ authorization: `Bearer ${s.operator.token}`, 'content-type': 'application/json' }),
      body: c.body,
      expectedStatus: 400,
      expectedContent: (b) => {
        expect(errorCode(b)).toBe('blueprint.too_deep');
        expect((b as { error: { details: { path: string }[] } }).error.details[0]!.path).toBe(c.path);
      },
      async after(s) {
        const slug = /"slug":"([a-z-]+)"/.exec(c.body)![1];
        expect((await s.operatorApi('GET', `/platforms/${slug}`)).status).toBe(404);
      },
    })),
  );

  const files: { name: string; file: string; text: string }[] = [
    { name: 'JSON objects nested 20,000 deep', file: 'deep.json', text: deepJson(20_000) },
    { name: 'YAML flow sequences nested 20,000 deep', file: 'deep.yaml', text: '['.repeat(20_000) },
    {
      name: 'YAML compact block sequences nested 20,000 deep',
      file: 'deep.yml',
      text: `${'- '.repeat(20_000)}x`,
    },
  ];
  for (const c of files) {
    test(`CLI file: ${c.name} → exit 2 with blueprint.too_deep`, async () => {
      const file = join(t.dir, c.file);
      writeFileSync(file, c.text);
      const r = await runCli([
        'platform',
        'create',
        'deep',
        '--blueprint',
        file,
        '--json',
        '--data',
        join(t.dir, 'data'),
      ]);
      expect(r.code).toBe(2);
      expect((JSON.parse(r.stdout) as { error: { code: string } }).error.code).toBe('blueprint.too_deep');
    });
  }
});
