import { Database } from 'bun:sqlite';
import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { existsSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { BUN, hostFetch, ROOT, runCli, spawnServe, tempDir } from './helpers.ts';

const pkg = (await Bun.file(join(ROOT, 'package.json')).json()) as { version: string };

describe('soulfra --version', () => {
  test('prints the package version', async () => {
    const r = await runCli(['--version']);
    expect(r.code).toBe(0);
    expect(r.stdout.trim()).toBe(pkg.version);
  });

  test('an unknown command or flag exits 2 with the reason on stderr', async () => {
    const a = await runCli(['frobnicate']);
    expect(a.code).toBe(2);
    expect(a.stderr).toContain("unknown command 'frobnicate'");
    const b = await runCli(['platform', 'list', '--colour']);
    expect(b.code).toBe(2);
    expect(b.stderr).toContain("unknown option '--colour'");
  });

  test('with --json an argument error is also one JSON document on stdout; the exit code stays 2', async () => {
    const cases: [string[], { code: string; message: string }][] = [
      [
        ['platform', 'list', '--colour', '--json'],
        { code: 'cli.unknown_option', message: "unknown option '--colour'" },
      ],
      [['--json', 'frobnicate'], { code: 'cli.unknown_command', message: "unknown command 'frobnicate'" }],
      [
        ['platform', 'show', '--json'],
        { code: 'cli.missing_argument', message: "missing required argument 'slug'" },
      ],
    ];
    for (const [args, error] of cases) {
      const r = await runCli(args);
      expect({ args, code: r.code, stdout: JSON.parse(r.stdout) }).toEqual({
        args,
        code: 2,
        stdout: { error },
      });
      expect(r.stderr).toContain(error.message);
    }
    // Without --json, stdout stays empty.
    expect((await runCli(['platform', 'list', '--colour'])).stdout).toBe('');
  });
});

describe('with no server running (the CLI takes the lock)', () => {
  const t = tempDir();
  const data = join(t.dir, 'data');
  const sf = (...args: string[]) => runCli([...args, '--data', data]);
  afterAll(() => t.cleanup());

  test('create, list, show, suspend, resume, archive, unarchive; global flags anywhere', async () => {
    const c = await runCli([
      '--json',
      'platform',
      'create',
      'acme',
      '--data',
      data,
      '--template',
      'creator',
      '--name',
      'Acme Labs',
    ]);
    expect(c.code).toBe(0);
    const created = JSON.parse(c.stdout) as {
      slug: string;
      url: string;
      admin: { email: string; password: string };
    };
    expect(created).toMatchObject({
      slug: 'acme',
      url: 'http://acme.localhost:8080/',
      admin: { email: 'owner@acme.localhost' },
    });

    const list = JSON.parse((await sf('platform', 'list', '--json')).stdout) as {
      platforms: { slug: string; name: string }[];
    };
    expect(list.platforms.map((p) => [p.slug, p.name])).toEqual([['acme', 'Acme Labs']]);
    const human = await sf('platform', 'list');
    expect(human.stdout).toMatch(/SLUG\s+NAME\s+STATUS/);
    expect(human.stdout).toMatch(/acme\s+Acme Labs\s+active\s+creator/);

    const show = JSON.parse((await sf('platform', 'show', 'acme', '--json')).stdout) as {
      blueprint: { monetization: { creator_revenue_share: number } };
    };
    expect(show.blueprint.monetization.creator_revenue_share).toBe(70);

    for (const [cmd, status] of [
      ['suspend', 'suspended'],
      ['resume', 'active'],
      ['archive', 'archived'],
      ['unarchive', 'active'],
    ] as const) {
      const r = await sf('platform', cmd, 'acme', '--json');
      expect({ cmd, code: r.code, status: (JSON.parse(r.stdout) as { status: string }).status }).toEqual({
        cmd,
        code: 0,
        status,
      });
    }
    const v = await sf('audit', 'verify');
    expect(v.code).toBe(0);
    expect(v.stdout).toMatch(/ok\s+control/);
    expect(v.stdout).toMatch(/ok\s+acme/);
  });

  test('a blueprint file (YAML) merged over the template', async () => {
    const file = join(t.dir, 'edu.yaml');
    writeFileSync(
      file,
      'identity:\n  name: Bright Minds\n  branding:\n    colors:\n      primary: "#0055aa"\n',
    );
    const r = await sf(
      'platform',
      'create',
      'bright',
      '--template',
      'education',
      '--blueprint',
      file,
      '--json',
    );
    expect(r.code).toBe(0);
    const show = JSON.parse((await sf('platform', 'show', 'bright', '--json')).stdout) as {
      name: string;
      blueprint: {
        identity: { branding: { colors: { primary: string } } };
        ai_settings: { safety_filters: { level: string } };
      };
    };
    expect(show.name).toBe('Bright Minds');
    expect(show.blueprint.identity.branding.colors.primary).toBe('#0055aa');
    expect(show.blueprint.ai_settings.safety_filters.level).toBe('maximum');
  });

  const invalid: { name: string; file: string; text: string; paths: string[] }[] = [
    {
      name: 'bad values (YAML)',
      file: 'bad.yaml',
      text: 'monetization:\n  marketplace_commission: 150\nfeatures:\n  agent_creaton: true\n',
      paths: ['/features/agent_creaton', '/monetization/marketplace_commission'],
    },
    {
      name: 'bad color (JSON)',
      file: 'bad.json',
      text: '{"identity":{"branding":{"colors":{"primary":"red"}}}}',
      paths: ['/identity/branding/colors/primary'],
    },
    { name: 'unparseable JSON', file: 'broken.json', text: '{"identity": {', paths: [''] },
  ];
  for (const c of invalid) {
    test(`invalid blueprint: ${c.name} → exit 2 naming the fields, nothing created`, async () => {
      const before = readdirSync(join(data, 'platforms'));
      const file = join(t.dir, c.file);
      writeFileSync(file, c.text);
      const r = await sf('platform', 'create', 'nope', '--blueprint', file, '--json');
      expect(r.code).toBe(2);
      for (const p of c.paths.filter(Boolean)) expect(r.stderr).toContain(p);
      const doc = JSON.parse(r.stdout) as { error: { details: { path: string }[] } };
      expect(doc.error.details.map((d) => d.path).sort()).toEqual(c.paths);
      expect(readdirSync(join(data, 'platforms'))).toEqual(before);
      expect((await sf('platform', 'show', 'nope')).code).toBe(1);
    });
  }

  test('bad slug → 2, reserved → 2, taken → 1, unknown platform → 1', async () => {
    expect((await sf('platform', 'create', 'Bad_Slug!')).code).toBe(2);
    expect((await sf('platform', 'create', 'admin')).code).toBe(2);
    const taken = await sf('platform', 'create', 'acme');
    expect(taken.code).toBe(1);
    expect(taken.stderr).toContain('platform.slug_taken');
    expect((await sf('platform', 'suspend', 'ghost')).code).toBe(1);
  });

  test('a tampered platform audit entry fails verify, naming the entry', async () => {
    const show = JSON.parse((await sf('platform', 'show', 'bright', '--json')).stdout) as { db_file: string };
    const db = new Database(join(data, show.db_file));
    db.exec('DROP TRIGGER audit_log_no_update');
    db.exec("UPDATE audit_log SET actor = 'mallory' WHERE seq = 1");
    db.close();
    const one = await sf('audit', 'verify', 'bright');
    expect(one.code).toBe(1);
    expect(one.stdout).toMatch(/BAD\s+bright\s+entry #1/);
    const all = await sf('audit', 'verify', '--json');
    expect(all.code).toBe(1);
    const doc = JSON.parse(all.stdout) as {
      ok: boolean;
      chains: { chain: string; ok: boolean; bad?: { seq: number } }[];
    };
    expect(doc.ok).toBe(false);
    expect(doc.chains.find((c) => c.chain === 'bright')).toMatchObject({ ok: false, bad: { seq: 1 } });
    expect(doc.chains.find((c) => c.chain === 'acme')?.ok).toBe(true);
  });

  test('operator tokens work on the files too: none listed before the first serve, none made', async () => {
    // One at a time: with no server, each command takes the data-dir lock.
    const list = await sf('operator', 'token', 'list', '--json');
    const made = await sf('operator', 'token', 'create', '--json');
    expect({ code: list.code, doc: JSON.parse(list.stdout) }).toEqual({ code: 0, doc: { tokens: [] } });
    expect(made.code).toBe(1);
    expect((JSON.parse(made.stdout) as { error: { code: string } }).error.code).toBe('operator.none');
  });

  test('platform owner-reset prints a one-time link on the platform host, audited on the control chain', async () => {
    expect((await sf('platform', 'create', 'ownr')).code).toBe(0);
    const r = await sf('platform', 'owner-reset', 'ownr', '--json');
    expect(r.code).toBe(0);
    const out = JSON.parse(r.stdout) as { slug: string; email: string; link: string };
    expect(out).toMatchObject({ slug: 'ownr', email: 'owner@ownr.localhost' });
    expect(out.link).toMatch(
      /^http:\/\/ownr\.localhost:8080\/app\/reset-password\?token=[A-Za-z0-9_-]{40,}$/,
    );
    const human = await sf('platform', 'owner-reset', 'ownr');
    expect(human.code).toBe(0);
    expect(human.stdout).toContain('/app/reset-password?token=');
    expect(human.stdout).not.toContain(out.link); // a new link each time
    const control = new Database(join(data, 'control.db'), { readonly: true });
    try {
      const n = control
        .query<{ n: number }, []>("SELECT count(*) AS n FROM audit_log WHERE action = 'platform.owner_reset'")
        .get()!.n;
      expect(n).toBe(2);
    } finally {
      control.close();
    }
    expect((await sf('platform', 'owner-reset', 'nope')).code).toBe(1);
  });

  test('the CLI refuses to work on a data dir another process has locked', async () => {
    const holder = Bun.spawn(
      [
        BUN,
        '-e',
        `const {lockDataDir}=await import(${JSON.stringify(join(ROOT, 'src/app/datadir.ts'))});lockDataDir(${JSON.stringify(data)});console.log('locked');await Bun.stdin.text()`,
      ],
      // The holder keeps the lock until its stdin closes (or it is killed).
      { stdin: 'pipe', stdout: 'pipe', stderr: 'inherit' },
    );
    const reader = holder.stdout.getReader();
    await reader.read();
    const r = await sf('platform', 'list');
    holder.stdin.end();
    expect(await holder.exited).toBe(0);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('datadir.locked');
  }, 20_000);
});

describe('with a server running (the CLI goes through the control socket)', () => {
  const t = tempDir();
  const data = join(t.dir, 'data');
  let server: Awaited<ReturnType<typeof spawnServe>>;
  beforeAll(async () => {
    server = await spawnServe(data);
  });
  afterAll(async () => {
    await server.stop('SIGKILL');
    t.cleanup();
  });

  test('first start prints the operator admin and an API token once', () => {
    expect(server.info.operator?.email).toBe('admin@localhost');
    expect(server.info.operator?.token).toStartWith('sfo_');
    expect(existsSync(join(data, 'soulfra.sock'))).toBe(true);
  });

  test('with --json the first-run secrets are printed (metrics token too) and no secrets file is written', () => {
    expect(server.info.metrics_token).toStartWith('sfm_');
    expect(server.info.operator?.password).toHaveLength(20);
    expect(existsSync(join(data, 'first-run-secrets.txt'))).toBe(false);
  });

  test('operator tokens and accounts through the socket: create, list, revoke, disable, remove', async () => {
    const sf = (...args: string[]) => runCli([...args, '--data', data]);
    const json = <T>(r: { stdout: string }) => JSON.parse(r.stdout) as T;
    const made = await sf('operator', 'token', 'create', '--name', 'ci', '--expires', '30d', '--json');
    expect(made.code).toBe(0);
    const t = json<{ id: string; token: string; expires_at: string; role: string }>(made);
    expect(Math.round((Date.parse(t.expires_at) - Date.now()) / 86_400_000)).toBe(30);
    expect(t.role).toBe('operator_admin');
    const dated = await sf('operator', 'token', 'create', '--expires', '2027-03-01', '--json');
    expect(json<{ expires_at: string }>(dated).expires_at).toBe('2027-03-01T00:00:00.000Z');

    const list = await sf('operator', 'token', 'list', '--json');
    expect(list.code).toBe(0);
    expect(list.stdout).not.toContain(t.token);
    const tokens = json<{ tokens: { id: string; name: string; status: string }[] }>(list).tokens;
    expect(tokens.find((x) => x.id === t.id)).toMatchObject({ name: 'ci', status: 'active' });
    expect((await sf('operator', 'token', 'list')).stdout).toMatch(
      new RegExp(`${t.id}\\s+ci\\s+admin@localhost\\s+operator_admin\\s+active`),
    );

    const use = () =>
      hostFetch(server.base, 'localhost', '/_operator/api/platforms', {
        headers: { authorization: `Bearer ${t.token}` },
      });
    expect((await use()).status).toBe(200);
    const revoked = await sf('operator', 'token', 'revoke', t.id, '--json');
    expect(revoked.code).toBe(0);
    expect(json<{ token: { status: string } }>(revoked).token.status).toBe('revoked');
    expect((await use()).status).toBe(401);

    // Another operator, a narrower token for them, then disabled, enabled, removed.
    expect((await sf('operator', 'create', 'ann@ops.test', '--role', 'operator_viewer')).code).toBe(0);
    const wide = await sf(
      'operator',
      'token',
      'create',
      '--operator',
      'ann@ops.test',
      '--role',
      'operator_admin',
    );
    expect(wide.code).toBe(2);
    expect(wide.stderr).toContain('operator_token.role_too_wide');
    const annTok = json<{ token: string; role: string }>(
      await sf('operator', 'token', 'create', '--operator', 'ann@ops.test', '--json'),
    );
    expect(annTok.role).toBe('operator_viewer');
    const asAnn = () =>
      hostFetch(server.base, 'localhost', '/_operator/api/platforms', {
        headers: { authorization: `Bearer ${annTok.token}` },
      });
    expect((await asAnn()).status).toBe(200);
    expect((await sf('operator', 'disable', 'ann@ops.test')).code).toBe(0);
    expect((await asAnn()).status).toBe(401);
    expect((await sf('operator', 'enable', 'ann@ops.test')).code).toBe(0);
    expect((await asAnn()).status).toBe(200);
    expect((await sf('operator', 'remove', 'ann@ops.test')).code).toBe(0);
    expect((await asAnn()).status).toBe(401);

    // Bad input exits 2; the last admin and unknown operators exit 1.
    // (The CLI processes run at once: each is a second of start-up, the server answers in turn.)
    const refusals: [string[], number, string][] = [
      [['operator', 'token', 'create', '--expires', '400d'], 2, 'operator_token.expiry_invalid'],
      [['operator', 'token', 'create', '--expires', 'tomorrow'], 2, 'operator_token.expiry_invalid'],
      [['operator', 'disable', 'admin@localhost'], 1, 'operator.last_admin'],
      [['operator', 'disable', 'ghost@ops.test'], 1, 'operator.not_found'],
    ];
    const answers = await Promise.all(refusals.map(([args]) => sf(...args, '--json')));
    expect(
      answers.map((r, i) => ({
        args: refusals[i]![0],
        code: r.code,
        error: json<{ error: { code: string } }>(r).error.code,
      })),
    ).toEqual(refusals.map(([args, code, error]) => ({ args, code, error })));
    expect(
      (
        await hostFetch(server.base, 'localhost', '/_operator/api/platforms', {
          headers: { authorization: `Bearer ${server.info.operator!.token}` },
        })
      ).status,
    ).toBe(200);
  }, 60_000);

  test('platform create makes the host answer 200 with its brand at once', async () => {
    const r = await runCli([
      'platform',
      'create',
      'acme',
      '--template',
      'creator',
      '--name',
      'Acme Live',
      '--data',
      data,
      '--json',
    ]);
    expect(r.code).toBe(0);
    const { url } = JSON.parse(r.stdout) as { url: string };
    expect(url).toBe(`http://acme.localhost:${new URL(server.base).port}/`);
    const res = await hostFetch(server.base, 'acme.localhost', '/');
    expect(res.status).toBe(200);
    expect(await res.text()).toContain('<title>Acme Live</title>');
  });

  test('every command works through the socket, including errors and audit', async () => {
    const sf = (...args: string[]) => runCli([...args, '--data', data]);
    expect((await sf('platform', 'suspend', 'acme')).code).toBe(0);
    expect((await hostFetch(server.base, 'acme.localhost', '/')).status).toBe(503);
    expect((await sf('platform', 'resume', 'acme')).code).toBe(0);
    expect((await hostFetch(server.base, 'acme.localhost', '/')).status).toBe(200);
    expect((await sf('platform', 'create', 'acme')).code).toBe(1);
    expect((await sf('platform', 'create', 'x')).code).toBe(2);
    const tok = await sf('operator', 'token', 'create', '--json');
    expect(tok.code).toBe(0);
    const token = (JSON.parse(tok.stdout) as { token: string }).token;
    const api = await hostFetch(server.base, 'localhost', '/_operator/api/platforms', {
      headers: { authorization: `Bearer ${token}` },
    });
    expect(api.status).toBe(200);
    expect((await sf('audit', 'verify')).code).toBe(0);
  });

  test('soulfra mail list|test go through the socket: with no SMTP configured, nothing is delivered, and it says why', async () => {
    const sf = (...args: string[]) => runCli([...args, '--data', data]);
    const list = await sf('mail', 'list', '--json');
    expect(list.code).toBe(0);
    const r = JSON.parse(list.stdout) as {
      delivery: { smtp: boolean; problem: string };
      messages: unknown[];
    };
    expect(r.delivery).toEqual({
      smtp: false,
      problem: 'no SMTP server is configured (mail.smtp in soulfra.yaml)',
    });
    expect(Array.isArray(r.messages)).toBe(true);
    const t = await sf('mail', 'test', '--to', 'ops@example.test', '--json');
    expect(t.code).toBe(1);
    expect(t.stdout + t.stderr).toContain('mail.not_configured');
  });

  test('a second server on the same data dir is refused', async () => {
    const r = await runCli(['serve', '--data', data, '--port', '0']);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('datadir.locked');
  });

  test('SIGTERM stops gracefully; a restart keeps everything and prints no new secrets', async () => {
    expect(await server.stop('SIGTERM')).toBe(0);
    expect(existsSync(join(data, 'soulfra.sock'))).toBe(false);
    expect(readdirSync(join(data, 'platforms')).filter((f) => f.endsWith('-wal'))).toEqual([]);
    server = await spawnServe(data);
    expect(server.info.operator).toBeNull();
    expect(server.info.metrics_token).toBeNull();
    const res = await hostFetch(server.base, 'acme.localhost', '/');
    expect(res.status).toBe(200);
    expect(await res.text()).toContain('<title>Acme Live</title>');
    const list = JSON.parse((await runCli(['platform', 'list', '--data', data, '--json'])).stdout) as {
      platforms: { slug: string; url: string }[];
    };
    expect(list.platforms.map((p) => p.slug)).toEqual(['acme']);
    expect(list.platforms[0]!.url).toBe(`http://acme.localhost:${new URL(server.base).port}/`);
    expect((await runCli(['audit', 'verify', '--data', data])).code).toBe(0);
  });
});

describe('first-run secrets when stdout is not a terminal (systemd, docker: the journal keeps stdout)', () => {
  const t = tempDir();
  const data = join(t.dir, 'data');
  afterAll(() => t.cleanup());

  test('stdout and stderr name the owner-only secrets file and hold no secret; the file holds them all', async () => {
    const proc = Bun.spawn(
      [
        BUN,
        join(ROOT, 'src', 'main.ts'),
        'serve',
        '--data',
        data,
        '--port',
        '0',
        '--host',
        '127.0.0.1',
        '--demo',
      ],
      { stdin: 'ignore', stdout: 'pipe', stderr: 'pipe' },
    );
    let err = '';
    void (async () => {
      for await (const chunk of proc.stderr) err += new TextDecoder().decode(chunk);
    })();
    let out = '';
    const reader = proc.stdout.getReader();
    try {
      // The start message ends with this line; nothing is printed after it until stop.
      while (!out.includes('Stop with Ctrl-C')) {
        const { value, done } = await reader.read();
        if (done) throw new Error(`serve exited (${await proc.exited}): ${err}`);
        out += new TextDecoder().decode(value);
      }
      const file = join(data, 'first-run-secrets.txt');
      expect(out).toContain(file);
      expect(statSync(file).mode & 0o777).toBe(0o600);
      const text = readFileSync(file, 'utf8');
      const value = (label: string) => new RegExp(`^${label}\\s+(\\S+)$`, 'm').exec(text)?.[1] ?? '';
      const secrets = {
        password: value('operator admin password'),
        token: value('operator API token'),
        metrics: value('metrics token'),
        demo: value('demo owner password'),
      };
      expect(secrets.password).toHaveLength(20);
      expect(secrets.token).toStartWith('sfo_');
      expect(secrets.metrics).toStartWith('sfm_');
      expect(secrets.demo).toHaveLength(20);
      for (const v of Object.values(secrets)) {
        expect(out).not.toContain(v);
        expect(err).not.toContain(v);
      }
      // The filed token is the real one.
      const base = /listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(out)![1]!;
      const api = await hostFetch(base, 'localhost', '/_operator/api/platforms', {
        headers: { authorization: `Bearer ${secrets.token}` },
      });
      expect(api.status).toBe(200);
    } finally {
      reader.releaseLock();
      proc.kill('SIGTERM');
      await proc.exited;
    }
  }, 30_000);
});
