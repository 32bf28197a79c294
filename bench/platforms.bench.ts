/**
 * `npm run bench -- platforms`: what a platform costs.
 *
 *  1. process start overhead (`bun src/main.ts --version`);
 *  2. a fresh server (child process, temp data dir, port picked by the OS, 127.0.0.1 only);
 *  3. N platforms created through the operator API one after the other, each followed by
 *     GET / on its host until 200: create-to-first-200, the same minus the owner's argon2id
 *     hash (Server-Timing), argon2 alone; then a pass with concurrency 4;
 *  4. M platforms created through the CLI (control socket), each followed by the same polling;
 *  5. disk per idle platform, while running and after a graceful stop (no -wal files left);
 *  6. server RSS after start and after touching the platforms; the data dir grown to
 *     `--total` platforms, the server restarted, a random sample touched: RSS and open handles.
 *
 * The report goes to stdout (tables), progress to stderr, everything to
 * bench/results/platforms-<timestamp>.json.
 */
import { mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import {
  BUN,
  bytes,
  hostFetch,
  installInterruptHandlers,
  MAIN,
  machine,
  ms,
  pollUntil200,
  pool,
  prng,
  procMemory,
  progress,
  ROOT,
  type ServerProc,
  SUMMARY_HEADERS,
  type Summary,
  sample,
  scrapeMetrics,
  secs,
  sourceVersion,
  spawnTracked,
  startServer,
  stopAllChildren,
  stopProcess,
  summarize,
  summaryRow,
  table,
  wasInterrupted,
} from './lib.ts';

export const description =
  'create platforms via API and CLI (create-to-first-200), disk per idle platform, RSS with 10,000 platforms';

const TARGETS = {
  /** p50 of create-to-first-200 minus the owner's argon2id hash, ms. */
  createMinusArgon2P50Ms: 50,
  /** Disk per idle platform (its one .db file), bytes. */
  idleDiskBytes: 200 * 1024,
  /** Server RSS with `--total` platforms existing, after touching a sample, bytes. */
  rssBytes: 250 * 1024 * 1024,
};

const USAGE = `Usage: bun bench/run.ts platforms [flags]

  --count <n>             platforms created through the operator API, one at a time (default 1000)
  --concurrent-count <n>  then this many more through the API with --concurrency in flight (default 200; 0 skips)
  --concurrency <n>       requests in flight for the concurrent pass and --fill api (default 4)
  --idle-count <n>        then this many through the API one at a time, each after --idle-gap-ms of idle
                          (argon2 on a server that was idle; default 50; 0 skips)
  --idle-gap-ms <n>       the idle time before each of those (default 250, about a CLI process start)
  --cli-count <n>         platforms created through the CLI against the running server (default 100; 0 skips)
  --startup-runs <n>      runs of \`bun src/main.ts --version\` for the process start overhead (default 10)
  --total <n>             grow the data dir to this many platforms, restart, measure RSS (default 10000)
  --fill <direct|api>     how the extra platforms are made (default direct: in-process createPlatform with
                          the server stopped and argon2 replaced by one precomputed hash; api: operator API)
  --sample <n>            platforms touched (GET /) at random after the restart (default 1000)
  --skip-touch-all        do not also touch every platform after the sample
  --seed <n>              seed of the random sample (default 1)
  --tmp <dir>             where the temporary data dir goes (default the OS temp dir)
  --keep                  keep the data dir (its path is printed)
  --out <file>            the JSON results file (default bench/results/platforms-<timestamp>.json)
`;

interface Options {
  count: number;
  concurrentCount: number;
  concurrency: number;
  idleCount: number;
  idleGapMs: number;
  cliCount: number;
  startupRuns: number;
  total: number;
  fill: 'direct' | 'api';
  sample: number;
  touchAll: boolean;
  seed: number;
  tmp: string;
  keep: boolean;
  out: string | undefined;
}

function parseOptions(args: string[]): Options | 'help' {
  const { values } = parseArgs({
    args,
    strict: true,
    allowPositionals: false,
    options: {
      count: { type: 'string' },
      'concurrent-count': { type: 'string' },
      concurrency: { type: 'string' },
      'idle-count': { type: 'string' },
      'idle-gap-ms': { type: 'string' },
      'cli-count': { type: 'string' },
      'startup-runs': { type: 'string' },
      total: { type: 'string' },
      fill: { type: 'string' },
      sample: { type: 'string' },
      'skip-touch-all': { type: 'boolean' },
      seed: { type: 'string' },
      tmp: { type: 'string' },
      keep: { type: 'boolean' },
      out: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) return 'help';
  const int = (name: string, v: string | undefined, dflt: number, min = 0): number => {
    if (v === undefined) return dflt;
    const n = Number(v);
    if (!Number.isInteger(n) || n < min) throw new Error(`--${name} must be an integer ≥ ${min}, got '${v}'`);
    return n;
  };
  const fill = values.fill ?? 'direct';
  if (fill !== 'direct' && fill !== 'api') throw new Error(`--fill must be direct or api, got '${fill}'`);
  return {
    count: int('count', values.count, 1000, 1),
    concurrentCount: int('concurrent-count', values['concurrent-count'], 200),
    concurrency: int('concurrency', values.concurrency, 4, 1),
    idleCount: int('idle-count', values['idle-count'], 50),
    idleGapMs: int('idle-gap-ms', values['idle-gap-ms'], 250),
    cliCount: int('cli-count', values['cli-count'], 100),
    startupRuns: int('startup-runs', values['startup-runs'], 10),
    total: int('total', values.total, 10_000),
    fill,
    sample: int('sample', values.sample, 1000),
    touchAll: !values['skip-touch-all'],
    seed: int('seed', values.seed, 1),
    tmp: values.tmp ?? tmpdir(),
    keep: Boolean(values.keep),
    out: values.out,
  };
}

// ---------------------------------------------------------------------------------------------

/** One platform created and reached. */
interface CreateSample {
  slug: string;
  /** Request sent → first 200 on its host (body read). */
  wall_ms: number;
  /** The create request's round trip (or the CLI process's spawn to exit). */
  create_rtt_ms: number;
  /** First GET / sent → 200. */
  poll_ms: number;
  polls: number;
  /** Server-Timing argon2 and create (API only). */
  argon2_ms: number | null;
  server_create_ms: number | null;
}

interface PhaseResult {
  label: string;
  concurrency: number;
  requested: number;
  samples: CreateSample[];
  errors: string[];
  elapsed_ms: number;
}

const pad = (i: number, width: number) => String(i).padStart(width, '0');
const slugs = (prefix: string, n: number, from = 1): string[] => {
  const width = Math.max(4, String(from + n - 1).length);
  return Array.from({ length: n }, (_, i) => `${prefix}${pad(from + i, width)}`);
};

function parseServerTiming(h: string | null): { argon2: number | null; create: number | null } {
  const get = (name: string) => {
    const m = new RegExp(`(?:^|,)\\s*${name};dur=([0-9.]+)`).exec(h ?? '');
    return m ? Number(m[1]) : null;
  };
  return { argon2: get('argon2'), create: get('create') };
}

function assertAlive(server: ServerProc): void {
  if (wasInterrupted()) throw new Error('interrupted');
  if (server.proc.exitCode !== null || server.proc.signalCode !== null) {
    throw new Error(
      `the server exited (${server.proc.exitCode ?? server.proc.signalCode}):\n${server.stderrTail()}`,
    );
  }
}

async function apiCreate(server: ServerProc, token: string, slug: string): Promise<CreateSample> {
  const t0 = performance.now();
  const res = await hostFetch(server.base, 'localhost', '/_operator/api/platforms', {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: JSON.stringify({ slug, template: 'creator' }),
  });
  const text = await res.text();
  const t1 = performance.now();
  if (res.status !== 201) throw new Error(`create ${slug}: HTTP ${res.status} ${text.slice(0, 200)}`);
  const st = parseServerTiming(res.headers.get('server-timing'));
  const poll = await pollUntil200(server.base, slug);
  const t2 = performance.now();
  if (!poll.ok) throw new Error(`create ${slug}: GET / never answered 200 (${poll.tries} tries)`);
  return {
    slug,
    wall_ms: t2 - t0,
    create_rtt_ms: t1 - t0,
    poll_ms: t2 - t1,
    polls: poll.tries,
    argon2_ms: st.argon2,
    server_create_ms: st.create,
  };
}

async function cliCreate(server: ServerProc, dataDir: string, slug: string): Promise<CreateSample> {
  const t0 = performance.now();
  const proc = spawnTracked([
    BUN,
    MAIN,
    'platform',
    'create',
    slug,
    '--template',
    'creator',
    '--data',
    dataDir,
    '--json',
  ]);
  const [stdout, stderr, code] = await Promise.all([
    new Response(proc.stdout as ReadableStream).text(),
    new Response(proc.stderr as ReadableStream).text(),
    proc.exited,
  ]);
  const t1 = performance.now();
  if (code !== 0) throw new Error(`cli create ${slug}: exit ${code} ${(stdout + stderr).slice(0, 300)}`);
  const out = JSON.parse(stdout) as { slug?: string; id?: string };
  if (out.slug !== slug || !out.id)
    throw new Error(`cli create ${slug}: unexpected output ${stdout.slice(0, 200)}`);
  const poll = await pollUntil200(server.base, slug);
  const t2 = performance.now();
  if (!poll.ok) throw new Error(`cli create ${slug}: GET / never answered 200`);
  return {
    slug,
    wall_ms: t2 - t0,
    create_rtt_ms: t1 - t0,
    poll_ms: t2 - t1,
    polls: poll.tries,
    argon2_ms: null,
    server_create_ms: null,
  };
}

async function runPhase(
  label: string,
  server: ServerProc,
  names: string[],
  concurrency: number,
  create: (slug: string) => Promise<CreateSample>,
  every = 100,
): Promise<PhaseResult> {
  const samples: CreateSample[] = [];
  const errors: string[] = [];
  const t0 = performance.now();
  let done = 0;
  await pool(names, concurrency, async (slug) => {
    assertAlive(server);
    try {
      samples.push(await create(slug));
    } catch (e) {
      assertAlive(server);
      errors.push((e as Error).message);
      if (errors.length <= 5) progress(`  [${label}] ${(e as Error).message}`);
    }
    done++;
    if (done % every === 0 || done === names.length) {
      const last = Math.min(every, samples.length);
      const recent = summarize(samples.slice(-last).map((s) => s.wall_ms));
      const minus = summarize(samples.slice(-last).map((s) => s.wall_ms - (s.argon2_ms ?? 0)));
      const extra = samples.at(-1)?.argon2_ms == null ? '' : `, minus argon2 ${ms(minus.p50)} ms`;
      progress(
        `  [${label}] ${done}/${names.length}  last ${last}: p50 ${ms(recent.p50)} ms${extra}  (${secs(performance.now() - t0)} elapsed, ${errors.length} errors)`,
      );
    }
  });
  return { label, concurrency, requested: names.length, samples, errors, elapsed_ms: performance.now() - t0 };
}

/** GET / on each platform host, one at a time; latency of each. */
async function touch(
  server: ServerProc,
  names: string[],
  label: string,
): Promise<{ latency: Summary; errors: number; elapsed_ms: number }> {
  const lat: number[] = [];
  let errors = 0;
  const t0 = performance.now();
  for (const [i, slug] of names.entries()) {
    assertAlive(server);
    const s = performance.now();
    const res = await hostFetch(server.base, `${slug}.localhost`, '/');
    await res.arrayBuffer();
    lat.push(performance.now() - s);
    if (res.status !== 200) errors++;
    if ((i + 1) % 2000 === 0) progress(`  [${label}] ${i + 1}/${names.length}`);
  }
  return { latency: summarize(lat), errors, elapsed_ms: performance.now() - t0 };
}

/** RSS (from /proc) and the gauges of /metrics, after letting the server settle a moment. */
async function memory(server: ServerProc, label: string) {
  await Bun.sleep(500);
  const { rss, hwm } = procMemory(server.pid);
  const m = await scrapeMetrics(server.base);
  const r = {
    label,
    rss_bytes: rss,
    peak_rss_bytes: hwm,
    metrics_rss_bytes: m.soulfra_process_resident_memory_bytes ?? Number.NaN,
    open_handles: m.soulfra_platform_db_open_handles ?? Number.NaN,
    platforms_active: m['soulfra_platforms{status="active"}'] ?? Number.NaN,
  };
  progress(
    `  [rss] ${label}: ${bytes(rss)} (peak ${bytes(hwm)}), open platform db handles ${r.open_handles}`,
  );
  return r;
}

/** Sizes of the platform files and what else lies in the data dir. */
function disk(dataDir: string, label: string) {
  const dir = join(dataDir, 'platforms');
  const names = readdirSync(dir);
  const sizes: number[] = [];
  const alloc: number[] = [];
  let walFiles = 0;
  let walBytes = 0;
  let shmFiles = 0;
  for (const n of names) {
    const st = statSync(join(dir, n));
    if (!st.isFile()) continue;
    if (n.endsWith('.db')) {
      sizes.push(st.size);
      alloc.push(st.blocks * 512);
    } else if (n.endsWith('.db-wal')) {
      walFiles++;
      walBytes += st.size;
    } else if (n.endsWith('.db-shm')) shmFiles++;
  }
  const size = (p: string) => {
    try {
      return statSync(join(dataDir, p)).size;
    } catch {
      return 0;
    }
  };
  const s = summarize(sizes);
  const r = {
    label,
    platform_files: sizes.length,
    db_bytes: { mean: s.mean, min: s.min, max: s.max, total: sizes.reduce((a, b) => a + b, 0) },
    allocated_bytes_mean: summarize(alloc).mean,
    wal_files: walFiles,
    wal_bytes: walBytes,
    shm_files: shmFiles,
    control_db_bytes: size('control.db'),
    control_wal_bytes: size('control.db-wal'),
  };
  progress(
    `  [disk] ${label}: ${r.platform_files} platform files, mean ${bytes(s.mean)} (min ${bytes(s.min)}, max ${bytes(s.max)}), ${walFiles} -wal, ${shmFiles} -shm; control.db ${bytes(r.control_db_bytes)} + wal ${bytes(r.control_wal_bytes)}`,
  );
  return r;
}

/** `bun src/main.ts --version`, spawn to exit (one warm-up run not counted). */
async function startupOverhead(runs: number): Promise<Summary> {
  const once = async () => {
    const t0 = performance.now();
    const p = spawnTracked([BUN, MAIN, '--version'], { stdout: 'ignore', stderr: 'ignore' });
    const code = await p.exited;
    if (code !== 0) throw new Error(`bun src/main.ts --version exited ${code}`);
    return performance.now() - t0;
  };
  if (runs > 0) await once();
  const xs: number[] = [];
  for (let i = 0; i < runs; i++) xs.push(await once());
  return summarize(xs);
}

/**
 * The fast path for the extra platforms: with the server stopped, this process takes the data
 * dir's lock and calls the same createPlatform flow as `soulfra platform create` without a
 * server. The owner's argon2id hash is computed once and reused (Bun.password.hash replaced
 * for the duration): a real hash string of the same length, so the files are the same size.
 */
async function fillDirect(
  dataDir: string,
  names: string[],
): Promise<{ elapsed_ms: number; per_platform: Summary }> {
  const { DEFAULT_CONFIG, lockDataDir, silentLogger, sweepTemporaryFiles } = await import(
    '../src/app/index.ts'
  );
  const { openInstance } = await import('../src/flows/index.ts');
  const { LOCAL_ROOT } = await import('../src/identity/index.ts');
  const held = lockDataDir(dataDir);
  if (!('lock' in held)) throw new Error(`data dir ${dataDir} is locked by pid ${held.heldBy}`);
  const password = Bun.password as { hash: typeof Bun.password.hash };
  const realHash = password.hash;
  const fixed = await Bun.password.hash('bench filler owner password', { algorithm: 'argon2id' });
  const lat: number[] = [];
  const t0 = performance.now();
  try {
    sweepTemporaryFiles(dataDir);
    const inst = openInstance({
      dataDir,
      config: { ...DEFAULT_CONFIG, host: '127.0.0.1', port: 0, base_domain: 'localhost' },
      log: silentLogger,
    });
    password.hash = async () => fixed;
    try {
      for (const [i, slug] of names.entries()) {
        const s = performance.now();
        await inst.actions.createPlatform(LOCAL_ROOT, { slug, template: 'creator' });
        lat.push(performance.now() - s);
        if ((i + 1) % 1000 === 0 || i + 1 === names.length) {
          progress(`  [fill direct] ${i + 1}/${names.length}  (${secs(performance.now() - t0)} elapsed)`);
        }
      }
    } finally {
      password.hash = realHash;
      await inst.close();
    }
  } finally {
    held.lock.release();
  }
  return { elapsed_ms: performance.now() - t0, per_platform: summarize(lat) };
}

function phaseStats(p: PhaseResult) {
  const wall = summarize(p.samples.map((s) => s.wall_ms));
  const withArgon = p.samples.filter((s) => s.argon2_ms !== null);
  return {
    label: p.label,
    concurrency: p.concurrency,
    requested: p.requested,
    created: p.samples.length,
    errors: p.errors.length,
    elapsed_ms: p.elapsed_ms,
    throughput_per_s: p.samples.length / (p.elapsed_ms / 1000),
    wall,
    wall_minus_argon2: withArgon.length ? summarize(withArgon.map((s) => s.wall_ms - s.argon2_ms!)) : null,
    argon2: withArgon.length ? summarize(withArgon.map((s) => s.argon2_ms!)) : null,
    server_create: withArgon.length
      ? summarize(withArgon.map((s) => s.server_create_ms ?? Number.NaN))
      : null,
    server_create_minus_argon2: withArgon.length
      ? summarize(withArgon.map((s) => (s.server_create_ms ?? Number.NaN) - s.argon2_ms!))
      : null,
    create_rtt: summarize(p.samples.map((s) => s.create_rtt_ms)),
    poll: summarize(p.samples.map((s) => s.poll_ms)),
    polls_max: Math.max(0, ...p.samples.map((s) => s.polls)),
  };
}

// ---------------------------------------------------------------------------------------------

export async function main(args: string[]): Promise<number> {
  let opts: Options;
  try {
    const o = parseOptions(args);
    if (o === 'help') {
      process.stdout.write(USAGE);
      return 0;
    }
    opts = o;
  } catch (e) {
    process.stderr.write(`${(e as Error).message}\n\n${USAGE}`);
    return 2;
  }

  const startedAt = new Date();
  const runT0 = performance.now();
  const work = mkdtempSync(join(opts.tmp, 'soulfra-bench-'));
  const dataDir = join(work, 'data');
  let cleaned = false;
  const cleanup = () => {
    if (cleaned) return;
    cleaned = true;
    if (opts.keep) process.stderr.write(`data dir kept: ${dataDir}\n`);
    else rmSync(work, { recursive: true, force: true });
  };
  const uninstall = installInterruptHandlers(cleanup);

  const results: Record<string, unknown> = {
    benchmark: 'platforms',
    started_at: startedAt.toISOString(),
    options: { ...opts, tmp: undefined },
    machine: machine(),
    source: sourceVersion(),
    targets: TARGETS,
  };
  const report: string[] = [];
  const section = (title: string, body: string) => report.push(`\n## ${title}\n\n${body}`);
  let exitCode = 0;
  let server: ServerProc | undefined;

  try {
    const m = results.machine as ReturnType<typeof machine>;
    progress(`soulfra platforms benchmark: ${m.nproc} cores (${m.cpu}), Bun ${m.bun}; data dir ${dataDir}`);

    // 1. Process start overhead.
    progress(`[startup] bun src/main.ts --version × ${opts.startupRuns}`);
    const startup = await startupOverhead(opts.startupRuns);

    // 2. A fresh server.
    progress('[server] starting a fresh server');
    try {
      server = await startServer(dataDir);
    } catch (e) {
      progress(`the server could not start: ${(e as Error).message}`);
      exitCode = 1;
      throw e;
    }
    const token = server.banner.operator?.token;
    if (!token) throw new Error('a fresh data dir printed no operator token');
    progress(`  listening on ${server.base} (pid ${server.pid}, started in ${ms(server.startMs)} ms)`);
    const mem: ReturnType<typeof memory> extends Promise<infer T> ? T[] : never = [];
    mem.push(await memory(server, 'fresh server, right after start'));
    const srv = server;

    // 3. API, sequential, then concurrent.
    progress(`[api] creating ${opts.count} platforms one at a time`);
    const seqNames = slugs('s', opts.count);
    const seq = await runPhase('api seq', srv, seqNames, 1, (slug) => apiCreate(srv, token, slug));
    const created: string[] = seq.samples.map((s) => s.slug);

    progress(`[touch] GET / on the ${seq.samples.length} platforms`);
    const touch1 = await touch(
      srv,
      seq.samples.map((s) => s.slug),
      'touch',
    );
    mem.push(await memory(srv, `after creating and touching ${seq.samples.length}`));

    let conc: PhaseResult | undefined;
    if (opts.concurrentCount > 0) {
      progress(`[api] creating ${opts.concurrentCount} platforms, ${opts.concurrency} in flight`);
      conc = await runPhase(
        `api c${opts.concurrency}`,
        srv,
        slugs('c', opts.concurrentCount),
        opts.concurrency,
        (slug) => apiCreate(srv, token, slug),
      );
      created.push(...conc.samples.map((s) => s.slug));
    }

    let idle: PhaseResult | undefined;
    if (opts.idleCount > 0) {
      progress(
        `[api] creating ${opts.idleCount} platforms one at a time, each after ${opts.idleGapMs} ms idle`,
      );
      idle = await runPhase(
        `api idle ${opts.idleGapMs}ms`,
        srv,
        slugs('i', opts.idleCount),
        1,
        async (slug) => {
          await Bun.sleep(opts.idleGapMs);
          return apiCreate(srv, token, slug);
        },
        25,
      );
      created.push(...idle.samples.map((s) => s.slug));
    }

    // 4. CLI through the control socket.
    let cli: PhaseResult | undefined;
    if (opts.cliCount > 0) {
      progress(`[cli] creating ${opts.cliCount} platforms with \`bun src/main.ts platform create\``);
      cli = await runPhase(
        'cli',
        srv,
        slugs('k', opts.cliCount),
        1,
        (slug) => cliCreate(srv, dataDir, slug),
        20,
      );
      created.push(...cli.samples.map((s) => s.slug));
    }
    // Once more, next to the CLI pass: the first measurement can catch a busy machine.
    progress(`[startup] bun src/main.ts --version × ${opts.startupRuns}, again`);
    const startup2 = await startupOverhead(opts.startupRuns);
    mem.push(await memory(srv, `after all creates (${created.length} platforms)`));

    // 5. Disk, running and stopped.
    const diskRunning = disk(dataDir, `running, ${created.length} platforms`);
    progress('[server] SIGTERM');
    const s0 = performance.now();
    const stopA = await stopProcess(srv.proc);
    const stopAMs = performance.now() - s0;
    server = undefined;
    const diskStopped = disk(dataDir, `stopped, ${created.length} platforms`);

    // 6. Grow to --total, restart, touch a sample.
    const extra = Math.max(0, opts.total - created.length);
    const fillNames = slugs('f', extra);
    let fill: Record<string, unknown> = { method: opts.fill, count: 0, elapsed_ms: 0 };
    if (extra > 0 && opts.fill === 'direct') {
      progress(`[fill] ${extra} more platforms in-process (server stopped, argon2 precomputed)`);
      const r = await fillDirect(dataDir, fillNames);
      created.push(...fillNames);
      fill = {
        method: 'direct',
        count: extra,
        elapsed_ms: r.elapsed_ms,
        per_platform_ms: r.per_platform,
        rate_per_s: extra / (r.elapsed_ms / 1000),
      };
    }
    progress(
      `[server] restarting on the data dir (${opts.fill === 'direct' ? created.length : `${created.length} + ${extra}`} platforms)`,
    );
    server = await startServer(dataDir);
    const srvB = server;
    progress(`  listening on ${srvB.base} (pid ${srvB.pid}, started in ${ms(srvB.startMs)} ms)`);
    if (extra > 0 && opts.fill === 'api') {
      progress(`[fill] ${extra} more platforms through the API, ${opts.concurrency} in flight`);
      // The restarted server prints no token; make one over the control socket with the CLI.
      const t = spawnTracked([
        BUN,
        MAIN,
        'operator',
        'token',
        'create',
        '--name',
        'bench',
        '--data',
        dataDir,
        '--json',
      ]);
      const out = await new Response(t.stdout as ReadableStream).text();
      await t.exited;
      const tokenB = (JSON.parse(out) as { token?: string }).token ?? token;
      const r = await runPhase(
        'fill api',
        srvB,
        fillNames,
        opts.concurrency,
        (slug) => apiCreate(srvB, tokenB, slug),
        1000,
      );
      created.push(...r.samples.map((x) => x.slug));
      fill = {
        method: 'api',
        count: r.samples.length,
        errors: r.errors.length,
        elapsed_ms: r.elapsed_ms,
        rate_per_s: r.samples.length / (r.elapsed_ms / 1000),
      };
    }
    mem.push(await memory(srvB, `restarted with ${created.length} platforms, nothing touched`));
    const picked = sample(created, opts.sample, prng(opts.seed));
    progress(`[touch] GET / on ${picked.length} random platforms`);
    const touch2 = await touch(srvB, picked, 'touch sample');
    const rssTotal = await memory(srvB, `${created.length} platforms, ${picked.length} random touched`);
    mem.push(rssTotal);
    let touch3: Awaited<ReturnType<typeof touch>> | undefined;
    if (opts.touchAll) {
      progress(`[touch] GET / on all ${created.length} platforms`);
      touch3 = await touch(srvB, created, 'touch all');
      mem.push(await memory(srvB, `${created.length} platforms, all touched`));
    }
    progress('[server] SIGTERM');
    const s1 = performance.now();
    const stopB = await stopProcess(srvB.proc);
    const stopBMs = performance.now() - s1;
    server = undefined;
    const diskFinal = disk(dataDir, `stopped, ${created.length} platforms`);

    // ----------------------------------------------------------------------------------------
    // The report.
    const seqS = phaseStats(seq);
    const concS = conc ? phaseStats(conc) : null;
    const idleS = idle ? phaseStats(idle) : null;
    const cliS = cli ? phaseStats(cli) : null;
    Object.assign(results, {
      server_start_ms: { fresh: srv.startMs, [`with_${created.length}`]: srvB.startMs },
      server_stop: { first: { ...stopA, ms: stopAMs }, second: { ...stopB, ms: stopBMs } },
      api_sequential: seqS,
      api_concurrent: concS,
      api_after_idle: idleS,
      cli: cliS,
      process_start: { at_start: startup, after_cli: startup2 },
      touch: { after_create: touch1, sample_after_restart: touch2, all_after_restart: touch3 ?? null },
      fill,
      memory: mem,
      disk: { running: diskRunning, stopped: diskStopped, final: diskFinal },
      errors: [...seq.errors, ...(conc?.errors ?? []), ...(cli?.errors ?? [])],
      samples: {
        api_sequential: seq.samples,
        api_concurrent: conc?.samples ?? [],
        api_after_idle: idle?.samples ?? [],
        cli: cli?.samples ?? [],
      },
    });

    const lat: string[][] = [];
    const addPhase = (name: string, s: ReturnType<typeof phaseStats>) => {
      lat.push(summaryRow(`${name}: create → first 200`, s.wall));
      if (s.wall_minus_argon2)
        lat.push(summaryRow(`${name}: create → first 200 minus argon2`, s.wall_minus_argon2));
      if (s.argon2) lat.push(summaryRow(`${name}: argon2 (Server-Timing)`, s.argon2));
      if (s.server_create_minus_argon2)
        lat.push(summaryRow(`${name}: server create minus argon2`, s.server_create_minus_argon2));
      lat.push(summaryRow(`${name}: first GET / → 200`, s.poll));
    };
    addPhase('API seq', seqS);
    if (concS) addPhase(`API c=${concS.concurrency}`, concS);
    if (idleS) addPhase(`API after ${opts.idleGapMs} ms idle`, idleS);
    if (cliS) {
      lat.push(summaryRow('CLI: create → first 200', cliS.wall));
      lat.push(summaryRow('CLI: process spawn → exit', cliS.create_rtt));
    }
    lat.push(summaryRow('process start: bun src/main.ts --version', startup));
    lat.push(summaryRow('  the same, after the CLI pass', startup2));
    section('Create → first 200 (ms)', table(SUMMARY_HEADERS, lat));

    const thr = [seqS, concS, idleS, cliS]
      .filter((s): s is ReturnType<typeof phaseStats> => s !== null)
      .map((s) => [
        s.label,
        String(s.concurrency),
        `${s.created}/${s.requested}`,
        String(s.errors),
        secs(s.elapsed_ms),
        s.throughput_per_s.toFixed(2),
      ]);
    if (fill.count) {
      thr.push([
        `fill ${fill.method}`,
        opts.fill === 'api' ? String(opts.concurrency) : '1',
        `${fill.count}/${extra}`,
        String(fill.errors ?? 0),
        secs(fill.elapsed_ms as number),
        (fill.rate_per_s as number).toFixed(2),
      ]);
    }
    let thrNote = '';
    if (opts.fill === 'direct' && concS && extra > 0) {
      thrNote = `\n\nThe ${extra} extra platforms were created in-process (fast path, argon2 precomputed); through the API at c=${concS.concurrency} (${concS.throughput_per_s.toFixed(2)}/s) they would take ~${secs((extra / concS.throughput_per_s) * 1000)}.`;
    }
    section(
      'Throughput',
      table(['pass', 'concurrency', 'created', 'errors', 'total', 'platforms/s'], thr) + thrNote,
    );

    const diskRows = [diskRunning, diskStopped, diskFinal].map((d) => [
      d.label,
      String(d.platform_files),
      bytes(d.db_bytes.mean),
      bytes(d.db_bytes.min),
      bytes(d.db_bytes.max),
      bytes(d.allocated_bytes_mean),
      String(d.wal_files),
      String(d.shm_files),
      `${bytes(d.control_db_bytes)} + ${bytes(d.control_wal_bytes)}`,
      bytes((d.db_bytes.total + d.control_db_bytes + d.control_wal_bytes) / d.platform_files),
    ]);
    section(
      'Disk per platform (platforms/<id>.db)',
      table(
        [
          'when',
          'files',
          'mean',
          'min',
          'max',
          'allocated',
          '-wal',
          '-shm',
          'control.db + wal',
          'all / platform',
        ],
        diskRows,
      ) +
        '\n\n"all / platform": every platform file plus control.db (blueprint, registry row, audit) over the count.',
    );

    section(
      'Server memory',
      table(
        ['when', 'VmRSS', 'peak (VmHWM)', '/metrics rss', 'open db handles'],
        mem.map((x) => [
          x.label,
          bytes(x.rss_bytes),
          bytes(x.peak_rss_bytes),
          bytes(x.metrics_rss_bytes),
          String(x.open_handles),
        ]),
      ) +
        `\n\nServer start: fresh ${ms(srv.startMs)} ms, with ${created.length} platforms ${ms(srvB.startMs)} ms. ` +
        `Graceful stop (SIGTERM): ${ms(stopAMs)} ms and ${ms(stopBMs)} ms${stopA.forced || stopB.forced ? ' (FORCED with SIGKILL)' : ''}.\n` +
        table(SUMMARY_HEADERS, [
          summaryRow(`GET / after create (${touch1.latency.n})`, touch1.latency),
          summaryRow(`GET / random after restart (${touch2.latency.n})`, touch2.latency),
          ...(touch3 ? [summaryRow(`GET / all after restart (${touch3.latency.n})`, touch3.latency)] : []),
        ]),
    );

    const summaryRows: string[][] = [];
    const verdict = (ok: boolean) => (ok ? 'PASS' : 'MISS');
    const p50 = seqS.wall_minus_argon2?.p50 ?? Number.NaN;
    summaryRows.push([
      'API create → first 200 minus argon2, p50',
      `≤ ${TARGETS.createMinusArgon2P50Ms} ms`,
      `${ms(p50)} ms`,
      (p50 / TARGETS.createMinusArgon2P50Ms).toFixed(2),
      verdict(p50 <= TARGETS.createMinusArgon2P50Ms),
    ]);
    summaryRows.push([
      'disk per idle platform (max .db, stopped)',
      `≤ ${bytes(TARGETS.idleDiskBytes)}`,
      bytes(diskStopped.db_bytes.max),
      (diskStopped.db_bytes.max / TARGETS.idleDiskBytes).toFixed(2),
      verdict(diskStopped.db_bytes.max <= TARGETS.idleDiskBytes),
    ]);
    summaryRows.push([
      '-wal files of idle platforms after SIGTERM',
      '0',
      String(diskStopped.wal_files + diskFinal.wal_files),
      '-',
      verdict(diskStopped.wal_files + diskFinal.wal_files === 0),
    ]);
    summaryRows.push([
      `server RSS, ${created.length} platforms, ${picked.length} touched`,
      `≤ ${bytes(TARGETS.rssBytes)}`,
      bytes(rssTotal.rss_bytes),
      (rssTotal.rss_bytes / TARGETS.rssBytes).toFixed(2),
      verdict(rssTotal.rss_bytes <= TARGETS.rssBytes),
    ]);
    results.summary = summaryRows.map(([metric, target, measured, ratio, v]) => ({
      metric,
      target,
      measured,
      ratio,
      verdict: v,
    }));
    section('Summary', table(['target', 'goal', 'measured', 'ratio', 'verdict'], summaryRows));
  } catch (e) {
    if (wasInterrupted()) return new Promise<number>(() => {}); // the signal handler exits
    progress(`benchmark aborted: ${(e as Error).stack ?? e}`);
    results.aborted = (e as Error).message;
    exitCode = 1;
  } finally {
    if (server) await stopProcess(server.proc);
    await stopAllChildren();
  }

  results.finished_at = new Date().toISOString();
  results.duration_ms = performance.now() - runT0;
  const m = results.machine as ReturnType<typeof machine>;
  const head = [
    '# soulfra platforms benchmark',
    '',
    `${results.started_at}, ${secs(results.duration_ms as number)}; ${m.nproc} × ${m.cpu}, ${bytes(m.memory_bytes)} RAM, Bun ${m.bun}, Linux ${m.kernel}`,
    `flags: --count ${opts.count} --concurrent-count ${opts.concurrentCount} --concurrency ${opts.concurrency} --cli-count ${opts.cliCount} --total ${opts.total} --fill ${opts.fill} --sample ${opts.sample}`,
  ];
  const src = results.source as ReturnType<typeof sourceVersion>;
  head.push(
    src
      ? `source: ${src.commit.slice(0, 10)}${src.dirty.length ? ` + ${src.dirty.length} uncommitted source files (${src.dirty.slice(0, 5).join(', ')}${src.dirty.length > 5 ? ', ...' : ''})` : ' (clean)'}`
      : 'source: not a git checkout',
  );
  if (results.aborted) head.push('', `ABORTED: ${results.aborted}`);
  process.stdout.write(`${[...head, ...report].join('\n')}\n`);

  const outFile =
    opts.out ??
    join(ROOT, 'bench', 'results', `platforms-${startedAt.toISOString().replace(/[:.]/g, '-')}.json`);
  mkdirSync(join(outFile, '..'), { recursive: true });
  writeFileSync(outFile, `${JSON.stringify(results, null, 2)}\n`);
  progress(`results: ${outFile}`);
  cleanup();
  uninstall();
  return exitCode;
}
