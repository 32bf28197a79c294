/**
 * Shared pieces of the benchmarks: statistics, text tables, child processes that are always
 * stopped (also on error and Ctrl-C), a soulfra server started as a child, RSS and /metrics.
 */
import { readFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { join } from 'node:path';
import type { Subprocess } from 'bun';

/** The repository root. */
export const ROOT = join(import.meta.dir, '..');
/** The CLI entry point. */
export const MAIN = join(ROOT, 'src', 'main.ts');
/** The Bun running the benchmark (the one from node_modules under `npm run bench`). */
export const BUN = process.execPath;

// ---------------------------------------------------------------------------------------------
// Statistics

/** Summary of a sample of numbers (nearest-rank percentiles). */
export interface Summary {
  n: number;
  min: number;
  mean: number;
  p50: number;
  p90: number;
  p99: number;
  /** The 99.9th percentile (nearest rank): with 5,000 samples, the 5th largest. */
  p999: number;
  max: number;
}

/** Nearest-rank percentile of an ascending array. */
export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const rank = Math.max(1, Math.ceil((p / 100) * sorted.length));
  return sorted[Math.min(sorted.length, rank) - 1]!;
}

/** min/mean/p50/p90/p99/max of `xs`. */
export function summarize(xs: number[]): Summary {
  const s = [...xs].sort((a, b) => a - b);
  const n = s.length;
  return {
    n,
    min: n ? s[0]! : Number.NaN,
    mean: n ? s.reduce((a, b) => a + b, 0) / n : Number.NaN,
    p50: percentile(s, 50),
    p90: percentile(s, 90),
    p99: percentile(s, 99),
    p999: percentile(s, 99.9),
    max: n ? s[n - 1]! : Number.NaN,
  };
}

/** A small deterministic PRNG (mulberry32), so a sample can be repeated with `--seed`. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** `k` distinct items of `xs` picked at random. */
export function sample<T>(xs: readonly T[], k: number, rand: () => number): T[] {
  const a = [...xs];
  const n = Math.min(k, a.length);
  for (let i = 0; i < n; i++) {
    const j = i + Math.floor(rand() * (a.length - i));
    [a[i], a[j]] = [a[j]!, a[i]!];
  }
  return a.slice(0, n);
}

// ---------------------------------------------------------------------------------------------
// Formatting

/** Milliseconds with one decimal. */
export const ms = (x: number): string => (Number.isFinite(x) ? x.toFixed(1) : '-');
/** Bytes as KiB/MiB. */
export function bytes(n: number): string {
  if (!Number.isFinite(n)) return '-';
  if (n >= 1024 * 1024) return `${(n / 1024 / 1024).toFixed(1)} MiB`;
  if (n >= 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${n} B`;
}
/** Seconds with one decimal. */
export const secs = (msValue: number): string => `${(msValue / 1000).toFixed(1)} s`;

/** A plain-text table: the first column left-aligned, the others right-aligned. */
export function table(headers: string[], rows: string[][]): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!)))
      .join('  ')
      .trimEnd();
  return [line(headers), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n');
}

/** A table row for a latency summary. */
export function summaryRow(label: string, s: Summary): string[] {
  return [label, String(s.n), ms(s.p50), ms(s.p90), ms(s.p99), ms(s.max), ms(s.mean)];
}
/** The headers matching `summaryRow`. */
export const SUMMARY_HEADERS = ['ms', 'n', 'p50', 'p90', 'p99', 'max', 'mean'];

/** Progress and notes go to stderr; the report goes to stdout. */
export function progress(msg: string): void {
  process.stderr.write(`${msg}\n`);
}

// ---------------------------------------------------------------------------------------------
// Child processes: every one is tracked and stopped at the end, on error and on Ctrl-C.

const children = new Set<Subprocess>();

/** Spawns a tracked child process. */
export function spawnTracked(
  cmd: string[],
  opts: { cwd?: string; stdout?: 'pipe' | 'ignore'; stderr?: 'pipe' | 'ignore' } = {},
) {
  const proc = Bun.spawn(cmd, {
    cwd: opts.cwd ?? ROOT,
    stdin: 'ignore',
    stdout: opts.stdout ?? 'pipe',
    stderr: opts.stderr ?? 'pipe',
    env: { ...process.env, NO_COLOR: '1' },
  });
  children.add(proc);
  void proc.exited.then(() => children.delete(proc));
  return proc;
}

/** SIGTERM, then SIGKILL after `graceMs`; resolves when the process is gone. */
export async function stopProcess(
  proc: Subprocess,
  graceMs = 15_000,
): Promise<{ code: number | null; forced: boolean }> {
  if (proc.exitCode !== null || proc.signalCode !== null) return { code: proc.exitCode, forced: false };
  proc.kill('SIGTERM');
  const timer = new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), graceMs));
  const r = await Promise.race([proc.exited, timer]);
  if (r === 'timeout') {
    proc.kill('SIGKILL');
    await proc.exited;
    return { code: proc.exitCode, forced: true };
  }
  return { code: r, forced: false };
}

/** Stops every tracked child still running. */
export async function stopAllChildren(): Promise<void> {
  await Promise.all([...children].map((c) => stopProcess(c, 5_000)));
}

/** Kills every tracked child at once (for `exit` handlers, which cannot wait). */
export function killAllChildrenNow(): void {
  for (const c of children) {
    try {
      c.kill('SIGKILL');
    } catch {}
  }
}

let interrupted = false;

/** Whether Ctrl-C (or SIGTERM) arrived: errors after it are the children being stopped. */
export function wasInterrupted(): boolean {
  return interrupted;
}

/**
 * Installs Ctrl-C / SIGTERM / exit handlers that stop the children and run `cleanup`.
 * Returns a function that removes them.
 */
export function installInterruptHandlers(cleanup: () => void): () => void {
  const onSignal = (sig: NodeJS.Signals) => {
    if (interrupted) return;
    interrupted = true;
    progress(`\n${sig}: stopping child processes and cleaning up`);
    void stopAllChildren().finally(() => {
      cleanup();
      process.exit(130);
    });
  };
  const onExit = () => {
    killAllChildrenNow();
    cleanup();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  process.on('exit', onExit);
  return () => {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    process.off('exit', onExit);
  };
}

/** Drains a stream, keeping its last `keep` characters. */
function drain(stream: ReadableStream<Uint8Array>, keep = 16_384): { text(): string } {
  let tail = '';
  const dec = new TextDecoder();
  void (async () => {
    try {
      for await (const chunk of stream) {
        tail = (tail + dec.decode(chunk, { stream: true })).slice(-keep);
      }
    } catch {}
  })();
  return { text: () => tail };
}

// ---------------------------------------------------------------------------------------------
// The server under test

/** What `serve --json` prints at start. */
export interface ServeBanner {
  version: string;
  listening: string;
  console: string;
  data: string;
  operator: { email: string; password: string; token: string } | null;
  demo: unknown;
}

/** A soulfra server running as a child process. */
export interface ServerProc {
  proc: Subprocess<'ignore', 'pipe', 'pipe'>;
  pid: number;
  banner: ServeBanner;
  base: string;
  /** Spawn to banner, ms. */
  startMs: number;
  stderrTail(): string;
}

/**
 * Starts `soulfra serve` on `dataDir`, 127.0.0.1 and a port picked by the OS. `extraArgs` are
 * appended to the command line (for example `['--config', file]`), `bunArgs` go to Bun before the
 * entry point (for example `['--preload', probe]`), `wrap` before Bun itself (for example
 * `strace ... --`), `main` another checkout's entry point (the router bench's `--baseline`).
 */
export async function startServer(
  dataDir: string,
  timeoutMs = 60_000,
  extraArgs: readonly string[] = [],
  bunArgs: readonly string[] = [],
  wrap: readonly string[] = [],
  main: string = MAIN,
): Promise<ServerProc> {
  const t0 = performance.now();
  const proc = spawnTracked([
    ...wrap,
    BUN,
    ...bunArgs,
    main,
    'serve',
    '--data',
    dataDir,
    '--port',
    '0',
    '--host',
    '127.0.0.1',
    '--base-domain',
    'localhost',
    '--json',
    ...extraArgs,
  ]) as Subprocess<'ignore', 'pipe', 'pipe'>;
  const err = drain(proc.stderr);
  const reader = proc.stdout.getReader();
  const dec = new TextDecoder();
  let text = '';
  let banner: ServeBanner | undefined;
  const deadline = Date.now() + timeoutMs;
  while (!banner) {
    const left = deadline - Date.now();
    const next = await Promise.race([
      reader.read(),
      new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), Math.max(0, left))),
    ]);
    if (next === 'timeout' || next.done) {
      await stopProcess(proc, 2_000);
      throw new Error(
        `the server did not print its banner (${next === 'timeout' ? 'timed out' : `exited ${proc.exitCode}`}):\n${text}\n${err.text()}`,
      );
    }
    text += dec.decode(next.value, { stream: true });
    try {
      banner = JSON.parse(text) as ServeBanner;
    } catch {
      // Not the whole document yet.
    }
  }
  const startMs = performance.now() - t0;
  // Keep draining stdout so that the child never blocks on a full pipe.
  void (async () => {
    try {
      for (;;) if ((await reader.read()).done) break;
    } catch {}
  })();
  const base = banner.listening.replace(/\/$/, '');
  if (!/^http:\/\/127\.0\.0\.1:\d+$/.test(base)) {
    await stopProcess(proc, 2_000);
    throw new Error(`the server listens on ${banner.listening}, not on 127.0.0.1`);
  }
  return { proc, pid: proc.pid, banner, base, startMs, stderrTail: err.text };
}

/** A request with a Host header (the operator host `localhost` or `<slug>.localhost`). */
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

/** GET / on a platform host until it answers 200 (body read); returns the tries. */
export async function pollUntil200(
  base: string,
  slug: string,
  timeoutMs = 10_000,
): Promise<{ ok: boolean; tries: number }> {
  const deadline = performance.now() + timeoutMs;
  let tries = 0;
  for (;;) {
    tries++;
    const res = await hostFetch(base, `${slug}.localhost`, '/');
    await res.arrayBuffer();
    if (res.status === 200) return { ok: true, tries };
    if (performance.now() > deadline) return { ok: false, tries };
    await Bun.sleep(1);
  }
}

/** VmRSS and VmHWM (peak) of a process, in bytes, from /proc. */
export function procMemory(pid: number): { rss: number; hwm: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (key: string) =>
    Number(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? Number.NaN) * 1024;
  return { rss: kb('VmRSS'), hwm: kb('VmHWM') };
}

/** Selected gauges of GET /metrics (operator host). */
export async function scrapeMetrics(base: string): Promise<Record<string, number>> {
  const res = await hostFetch(base, 'localhost', '/metrics');
  const text = await res.text();
  const out: Record<string, number> = {};
  for (const line of text.split('\n')) {
    const m = /^(soulfra_[a-z_]+(?:\{[^}]*\})?) (\S+)$/.exec(line);
    if (m && !m[1]!.includes('_bucket')) out[m[1]!] = Number(m[2]);
  }
  return out;
}

/** Runs `fn` over `items` with at most `concurrency` in flight. */
export async function pool<T>(
  items: readonly T[],
  concurrency: number,
  fn: (item: T, index: number) => Promise<void>,
) {
  let next = 0;
  const worker = async () => {
    for (;;) {
      const i = next++;
      if (i >= items.length) return;
      await fn(items[i]!, i);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(concurrency, items.length)) }, worker));
}

/** The commit under test and the source files changed from it (null outside a git checkout). */
export function sourceVersion(): { commit: string; dirty: string[] } | null {
  const git = (args: string[]) =>
    Bun.spawnSync(['git', ...args], { cwd: ROOT, stdout: 'pipe', stderr: 'ignore' });
  try {
    const head = git(['rev-parse', 'HEAD']);
    if (head.exitCode !== 0) return null;
    const status = git(['status', '--porcelain', '--', 'src', 'migrations', 'package.json']);
    const dirty = status.stdout
      .toString()
      .split('\n')
      .filter(Boolean)
      .map((l) => l.slice(3));
    return { commit: head.stdout.toString().trim(), dirty };
  } catch {
    return null;
  }
}

/** The machine, for the report. */
export function machine(): { nproc: number; cpu: string; memory_bytes: number; bun: string; kernel: string } {
  let cpu = cpus()[0]?.model ?? 'unknown';
  try {
    cpu = /^model name\s*:\s*(.+)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1] ?? cpu;
  } catch {}
  let kernel: string = process.platform;
  try {
    kernel = readFileSync('/proc/sys/kernel/osrelease', 'utf8').trim();
  } catch {}
  return { nproc: navigator.hardwareConcurrency, cpu, memory_bytes: totalmem(), bun: Bun.version, kernel };
}
