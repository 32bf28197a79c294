import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DEFAULT_CONFIG, type InstanceConfig, silentLogger } from '../src/app/index.ts';
import { createPlatform, type Instance, openInstance } from '../src/flows/index.ts';
import { type RunningServer, startServer } from '../src/server/start.ts';
import type { Clock } from '../src/shared/time.ts';

/** The repository root. */
export const ROOT = join(import.meta.dir, '..');
/** The Bun runtime installed from npm. */
export const BUN = join(ROOT, 'node_modules', '.bin', 'bun');

/** A fresh temporary directory, removed by `cleanup()`. */
export function tempDir(prefix = 'soulfra-test-'): { dir: string; cleanup(): void } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/** An instance in this process (no server) on a fresh data dir, with one platform and a fixed clock. */
export async function instanceWithPlatform(
  slug: string,
  now: () => number,
): Promise<{ inst: Instance; platformId: string; cleanup(): Promise<void> }> {
  const t = tempDir();
  const inst = openInstance({ dataDir: join(t.dir, 'data'), log: silentLogger, clock: { now } });
  const platformId = (await createPlatform(inst.app, inst.tenancy, { slug }, 'test')).platform.id;
  return {
    inst,
    platformId,
    async cleanup() {
      await inst.close();
      t.cleanup();
    },
  };
}

/** Starts a server in this process on 127.0.0.1 and a free port, on a fresh data dir. */
export async function startTestServer(
  opts: { config?: Partial<InstanceConfig>; demo?: boolean; dataDir?: string; clock?: Clock } = {},
): Promise<RunningServer & { dataDir: string; base: string; cleanup(): Promise<void> }> {
  const tmp = opts.dataDir ? null : tempDir();
  const dataDir = opts.dataDir ?? join(tmp!.dir, 'data');
  const config: InstanceConfig = {
    ...DEFAULT_CONFIG,
    port: 0,
    host: '127.0.0.1',
    shutdown_timeout_ms: 2_000,
    ...opts.config,
  };
  const s = await startServer({ dataDir, config, log: silentLogger, demo: opts.demo, clock: opts.clock });
  return {
    ...s,
    dataDir,
    base: `http://127.0.0.1:${s.port}`,
    async cleanup() {
      await s.stop();
      tmp?.cleanup();
    },
  };
}

/** A request to the server with a Host header (the platform or operator host). */
export function hostFetch(
  base: string,
  host: string,
  path: string,
  init: RequestInit = {},
): Promise<Response> {
  const headers = new Headers(init.headers);
  headers.set('host', host);
  return fetch(`${base}${path}`, { ...init, headers, redirect: 'manual' });
}

/** Runs the CLI (`bun src/main.ts ...`) as a child process and collects its output. */
export async function runCli(
  args: string[],
  opts: { env?: Record<string, string>; cwd?: string; stdin?: string } = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  const proc = Bun.spawn([BUN, join(ROOT, 'src', 'main.ts'), ...args], {
    cwd: opts.cwd ?? ROOT,
    env: { ...process.env, ...opts.env },
    stdout: 'pipe',
    stderr: 'pipe',
    stdin: opts.stdin === undefined ? 'ignore' : new TextEncoder().encode(opts.stdin),
  });
  const [stdout, stderr, code] = await Promise.all([
    new Response(proc.stdout).text(),
    new Response(proc.stderr).text(),
    proc.exited,
  ]);
  return { code, stdout, stderr };
}

/** Operator API call with a bearer token. */
export function operatorApi(
  base: string,
  token: string,
  method: string,
  path: string,
  body?: unknown,
): Promise<Response> {
  return hostFetch(base, 'localhost', `/_operator/api${path}`, {
    method,
    headers: {
      authorization: `Bearer ${token}`,
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
}

/** What `serve --json` prints at start. */
export interface ServeInfo {
  version: string;
  listening: string;
  console: string;
  operator: { email: string; password: string; token: string } | null;
  /** The metrics token, when this start made it. */
  metrics_token: string | null;
  demo: { slug: string; url: string; admin: { email: string; password: string } } | null;
}

/**
 * Spawns `soulfra serve --json` (as `bun src/main.ts`, or `exe`) on 127.0.0.1 and a free port,
 * and waits for the JSON document it prints at start.
 */
export async function spawnServe(
  dataDir: string,
  extra: string[] = [],
  exe: string[] = [BUN, join(ROOT, 'src', 'main.ts')],
): Promise<{
  proc: Bun.Subprocess<'ignore', 'pipe', 'pipe'>;
  info: ServeInfo;
  base: string;
  stderr(): string;
  stop(signal?: NodeJS.Signals): Promise<number>;
}> {
  const proc = Bun.spawn(
    [...exe, 'serve', '--data', dataDir, '--port', '0', '--host', '127.0.0.1', '--json', ...extra],
    {
      stdin: 'ignore',
      stdout: 'pipe',
      stderr: 'pipe',
    },
  );
  let err = '';
  void (async () => {
    for await (const chunk of proc.stderr) err += new TextDecoder().decode(chunk);
  })();
  let out = '';
  const reader = proc.stdout.getReader();
  const deadline = Date.now() + 15_000;
  let info: ServeInfo | undefined;
  while (!info) {
    if (Date.now() > deadline) {
      proc.kill('SIGKILL');
      throw new Error(`serve did not start: ${err}`);
    }
    const { value, done } = await reader.read();
    if (done) throw new Error(`serve exited (${await proc.exited}): ${err}`);
    out += new TextDecoder().decode(value);
    try {
      info = JSON.parse(out) as ServeInfo;
    } catch {}
  }
  reader.releaseLock();
  return {
    proc,
    info,
    base: info.listening,
    stderr: () => err,
    async stop(signal: NodeJS.Signals = 'SIGTERM') {
      proc.kill(signal);
      return proc.exited;
    },
  };
}
