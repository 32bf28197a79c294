import { afterAll, beforeAll, expect, test } from 'bun:test';
import { copyFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { BUN, hostFetch, ROOT, spawnServe, tempDir } from './helpers.ts';

// `npm run build` makes dist/soulfra; it must run from any folder with nothing beside it.
const t = tempDir('soulfra-build-');
const exe = join(t.dir, 'soulfra');
const run = async (args: string[]) => {
  const p = Bun.spawn([exe, ...args], { cwd: t.dir, stdout: 'pipe', stderr: 'pipe' });
  const [stdout, stderr, code] = await Promise.all([
    new Response(p.stdout).text(),
    new Response(p.stderr).text(),
    p.exited,
  ]);
  return { stdout, stderr, code };
};

beforeAll(async () => {
  const build = Bun.spawn([BUN, 'run', 'build'], { cwd: ROOT, stdout: 'pipe', stderr: 'pipe' });
  const code = await build.exited;
  if (code !== 0) throw new Error(`npm run build failed: ${await new Response(build.stderr).text()}`);
  copyFileSync(join(ROOT, 'dist', 'soulfra'), exe);
}, 120_000);
afterAll(() => t.cleanup());

test('dist/soulfra --version, alone in a folder', async () => {
  expect(readdirSync(t.dir)).toEqual(['soulfra']);
  const r = await run(['--version']);
  expect(r.code).toBe(0);
  expect(r.stdout.trim()).toBe(
    ((await Bun.file(join(ROOT, 'package.json')).json()) as { version: string }).version,
  );
});

test('with dist/soulfra serve running, dist/soulfra platform create makes the host answer at once', async () => {
  const data = join(t.dir, 'data');
  const server = await spawnServe(data, [], [exe]);
  try {
    const r = await run(['platform', 'create', 'acme', '--template', 'creator', '--data', data, '--json']);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ slug: 'acme', admin: { email: 'owner@acme.localhost' } });
    const res = await hostFetch(server.base, 'acme.localhost', '/');
    expect(res.status).toBe(200);
    expect(await res.text()).toContain('<title>Acme</title>');
    expect((await run(['audit', 'verify', '--data', data])).code).toBe(0);
    // The web build is embedded: the console and the portal pages and their assets, precompressed.
    const page = await (await hostFetch(server.base, 'localhost', '/')).text();
    const script = /src="\/assets\/(console-[a-z0-9]+\.js)"/.exec(page)?.[1];
    expect(script).toBeDefined();
    const js = await hostFetch(server.base, 'localhost', `/assets/${script}`, {
      headers: { 'accept-encoding': 'br' },
    });
    expect(js.status).toBe(200);
    expect(js.headers.get('content-encoding')).toBe('br');
    expect(js.headers.get('cache-control')).toContain('immutable');
    const portal = await hostFetch(server.base, 'acme.localhost', '/app');
    expect(portal.status).toBe(200);
    expect(await portal.text()).toMatch(/src="\/assets\/portal-[a-z0-9]+\.js"/);
  } finally {
    await server.stop();
  }
}, 30_000);

test("npm run build puts sqlite-vec's library beside the executable, and it loads", async () => {
  const { Database } = await import('bun:sqlite');
  const db = new Database(':memory:');
  try {
    db.loadExtension(join(ROOT, 'dist', 'vec0.so'));
    expect(db.query<{ v: string }, []>('SELECT vec_version() AS v').get()!.v).toMatch(/^v0\.1\./);
  } finally {
    db.close();
  }
});
