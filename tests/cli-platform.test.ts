import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { hostFetch, runCli, spawnServe, tempDir } from './helpers.ts';

// `soulfra platform update|delete` and `soulfra apikey list|revoke` (issue 10, items 1 and 5),
// with no server (the CLI takes the lock) and through a running server's control socket.

describe('with no server running', () => {
  const t = tempDir();
  const data = join(t.dir, 'data');
  const sf = (...args: string[]) => runCli([...args, '--data', data]);
  const file = (name: string, text: string) => {
    const path = join(t.dir, name);
    writeFileSync(path, text);
    return path;
  };
  beforeAll(async () => {
    expect((await sf('platform', 'create', 'acme', '--template', 'creator', '--name', 'Acme')).code).toBe(0);
  });
  afterAll(() => t.cleanup());

  test('platform update: a partial YAML merged over the current blueprint; readable and --json', async () => {
    const patch = file(
      'rebrand.yaml',
      'identity:\n  name: Acme Studio\n  branding:\n    colors:\n      primary: "#112233"\n',
    );
    const human = await sf('platform', 'update', 'acme', '--blueprint', patch);
    expect(human.code).toBe(0);
    expect(human.stdout).toContain('Updated acme: 2 setting(s) changed');
    expect(human.stdout).toContain('/identity/name  "Acme" -> "Acme Studio"');
    const again = await sf('platform', 'update', 'acme', '--blueprint', patch, '--json');
    expect(again.code).toBe(0);
    expect((JSON.parse(again.stdout) as { changes: unknown[] }).changes).toEqual([]);
    const show = JSON.parse((await sf('platform', 'show', 'acme', '--json')).stdout) as {
      name: string;
      blueprint: { identity: { branding: { colors: { primary: string; secondary: string } } } };
    };
    expect(show.name).toBe('Acme Studio');
    expect(show.blueprint.identity.branding.colors).toMatchObject({
      primary: '#112233',
      secondary: '#ec4899',
    });
  });

  test('platform update: invalid → exit 2 with the create validator’s details; a missing file → 2', async () => {
    const bad = file('bad.json', '{"identity":{"branding":{"colors":{"primary":"red"}}},"feature":{}}');
    const r = await sf('platform', 'update', 'acme', '--blueprint', bad, '--json');
    expect(r.code).toBe(2);
    const doc = JSON.parse(r.stdout) as { error: { code: string; details: { path: string }[] } };
    expect(doc.error.code).toBe('blueprint.invalid');
    expect(doc.error.details.map((d) => d.path)).toEqual(['/feature', '/identity/branding/colors/primary']);
    expect((await sf('platform', 'update', 'acme', '--blueprint', join(t.dir, 'none.yaml'))).code).toBe(2);
    expect((await sf('platform', 'update', 'ghost', '--blueprint', bad)).code).toBe(1);
  });

  test('apikey create → list shows it (no secret) → revoke → list says revoked', async () => {
    const made = JSON.parse((await sf('apikey', 'create', 'acme', '--name', 'ci', '--json')).stdout) as {
      id: string;
      key: string;
    };
    const list = await sf('apikey', 'list', 'acme');
    expect(list.code).toBe(0);
    expect(list.stdout).toMatch(/ID\s+NAME\s+PREFIX\s+SCOPES/);
    expect(list.stdout).toMatch(new RegExp(`${made.id}\\s+ci\\s+\\w+\\s+ai:invoke\\s+platform\\s.*active`));
    expect(list.stdout).not.toContain(made.key.split('_').slice(2).join('_')); // the whole secret (it may hold '_')
    const revoked = await sf('apikey', 'revoke', 'acme', made.id, '--json');
    expect(revoked.code).toBe(0);
    expect(
      (JSON.parse(revoked.stdout) as { api_key: { revoked_at: string | null } }).api_key.revoked_at,
    ).not.toBeNull();
    const after = JSON.parse((await sf('apikey', 'list', 'acme', '--json')).stdout) as {
      api_keys: { id: string; revoked_at: string | null }[];
    };
    expect(after.api_keys.map((k) => [k.id, k.revoked_at !== null])).toEqual([[made.id, true]]);
    expect((await sf('apikey', 'revoke', 'acme', 'key_nope')).code).toBe(1);
  });

  test('platform delete: archived only, --confirm must match, slug reserved for the grace period', async () => {
    expect((await sf('platform', 'create', 'old')).code).toBe(0);
    const active = await sf('platform', 'delete', 'old', '--confirm', 'old');
    expect(active.code).toBe(1);
    expect(active.stderr).toContain('platform.not_archived');
    const show = JSON.parse((await sf('platform', 'archive', 'old', '--json')).stdout) as { db_file: string };
    expect(existsSync(join(data, show.db_file))).toBe(true);
    const wrong = await sf('platform', 'delete', 'old', '--confirm', 'acme');
    expect(wrong.code).toBe(2);
    expect(wrong.stderr).toContain('platform.confirm_mismatch');
    expect((await sf('platform', 'delete', 'old', '--confirm', 'old', '--slug-grace-days', 'x')).code).toBe(
      2,
    );
    const del = await sf('platform', 'delete', 'old', '--confirm', 'old', '--slug-grace-days', '3', '--json');
    expect(del.code).toBe(0);
    const { deleted } = JSON.parse(del.stdout) as { deleted: { slug: string; slug_free_at: string } };
    expect(deleted.slug).toBe('old');
    const days = (Date.parse(deleted.slug_free_at) - Date.now()) / 86_400_000;
    expect(days).toBeGreaterThan(2.9);
    expect(days).toBeLessThanOrEqual(3);
    expect(existsSync(join(data, show.db_file))).toBe(false);
    const reuse = await sf('platform', 'create', 'old');
    expect(reuse.code).toBe(1);
    expect(reuse.stderr).toContain('platform.slug_reserved');
    const list = JSON.parse((await sf('platform', 'list', '--json')).stdout) as {
      platforms: { slug: string }[];
    };
    expect(list.platforms.map((p) => p.slug)).toEqual(['acme']);
    expect((await sf('audit', 'verify')).code).toBe(0);
  });
});

describe('through a running server: the change is in force at once', () => {
  const t = tempDir();
  const data = join(t.dir, 'data');
  const sf = (...args: string[]) => runCli([...args, '--data', data]);
  let server: Awaited<ReturnType<typeof spawnServe>>;
  beforeAll(async () => {
    server = await spawnServe(data);
    expect((await sf('platform', 'create', 'live', '--template', 'creator', '--name', 'Live')).code).toBe(0);
  });
  afterAll(async () => {
    await server.stop('SIGKILL');
    t.cleanup();
  });

  test('a rebrand over the socket shows on the home page with no restart', async () => {
    expect(await (await hostFetch(server.base, 'live.localhost', '/')).text()).toContain('<h1>Live</h1>');
    const patch = join(t.dir, 'live.json');
    writeFileSync(patch, JSON.stringify({ identity: { name: 'Live Again' } }));
    const r = await sf('platform', 'update', 'live', '--blueprint', patch, '--json');
    expect(r.code).toBe(0);
    const html = await (await hostFetch(server.base, 'live.localhost', '/')).text();
    expect(html).toContain('<h1>Live Again</h1>');
  });

  test('apikey list and revoke over the socket; the revoked key is refused on its next request', async () => {
    const made = JSON.parse((await sf('apikey', 'create', 'live', '--name', 'bot', '--json')).stdout) as {
      id: string;
      key: string;
    };
    const me = () =>
      hostFetch(server.base, 'live.localhost', '/api/v1/me', {
        headers: { authorization: `Bearer ${made.key}` },
      });
    expect((await me()).status).toBe(200);
    const list = JSON.parse((await sf('apikey', 'list', 'live', '--json')).stdout) as {
      api_keys: { id: string }[];
    };
    expect(list.api_keys.map((k) => k.id)).toEqual([made.id]);
    expect((await sf('apikey', 'revoke', 'live', made.id)).code).toBe(0);
    expect((await me()).status).toBe(401);
  });

  test('platform delete over the socket', async () => {
    expect((await sf('platform', 'archive', 'live')).code).toBe(0);
    const r = await sf('platform', 'delete', 'live', '--confirm', 'live');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('Deleted live');
    expect(
      (await hostFetch(server.base, 'live.localhost', '/', { headers: { accept: 'application/json' } }))
        .status,
    ).toBe(404);
  });
});
