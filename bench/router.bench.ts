/**
 * `npm run bench -- router`: what soulfra's AI router adds on top of the upstream it calls.
 *
 * One run, four targets, the same request (`POST /v1/chat/completions`, a one-message chat), the
 * same concurrency and the same rate:
 *
 *  (a) the upstream stub directly: a minimal OpenAI-compatible `Bun.serve` answering a fixed
 *      `chat.completion` (with usage), in its own process;
 *  (b) a bare Bun pass-through proxy (`Bun.serve` + `fetch` to the stub), in its own process:
 *      the floor for any router on this runtime;
 *  (c) soulfra (`serve --config`, one platform, an API key): auth, policy, safety, routing,
 *      metering;
 *  (d) @portkey-ai/gateway under Node, pointed at the stub with its custom-host headers.
 *
 * For each target: a warm-up (wrk), then latency at a fixed rate (an open-loop generator in its
 * own Bun process: requests leave on a schedule, never waiting for earlier answers; every answer
 * is checked), then peak throughput (`wrk -t1 -c<C> -d<D>s --latency`). The stub is measured
 * again at the fixed rate at the end, as a check of the run's noise. Only the stub and the target
 * under test run during a measurement; each target is stopped after its turn.
 *
 * Child roles of this same file (`bun bench/router.bench.ts <role> ...`): `stub`, `proxy
 * <upstream origin>`, `openloop <spec file>`. With `BENCH_WRK_DEBUG=1` each wrk run also prints the
 * first answer of every status it saw (slower: wrk then hands every answer to Lua).
 *
 * The stub answers `GET /v1/models` too: soulfra's health loop asks for it every 10 s, and a
 * provider that fails it gets its circuit opened (every request then answers 503).
 *
 * Only 127.0.0.1 is ever contacted. Portkey listens on every interface (it has no option for
 * the address), so it runs only during its own turn and is stopped right after, also on error
 * and Ctrl-C like every other child.
 *
 * The report goes to stdout (tables), progress to stderr, everything to
 * bench/results/router-<timestamp>.json.
 */
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import type { Subprocess } from 'bun';
import {
  BUN,
  hostFetch,
  installInterruptHandlers,
  machine,
  progress,
  ROOT,
  type ServerProc,
  secs,
  sourceVersion,
  spawnTracked,
  startServer,
  stopAllChildren,
  stopProcess,
  summarize,
  table,
} from './lib.ts';

export const description =
  'AI router overhead: stub vs bare Bun proxy vs soulfra vs Portkey (wrk throughput, open-loop latency at a fixed rate)';

const TARGETS = {
  /** soulfra's p50 minus the stub's p50 at the fixed rate, ms. */
  addedP50Ms: 0.25,
  /** soulfra's p99 minus the stub's p99 at the fixed rate, ms. */
  addedP99Ms: 2,
  /** soulfra's peak throughput over Portkey's. */
  vsPortkey: 5,
  /** soulfra's peak throughput over the bare proxy's. */
  vsBareProxy: 0.5,
  /** With --baseline: this checkout's peak throughput over the baseline's (within the run's noise). */
  vsBaseline: 0.95,
  /** With --baseline: this checkout's p50 at the fixed rate minus the baseline's, ms. */
  baselineP50Ms: 0.1,
};

const USAGE = `Usage: bun bench/run.ts router [flags]

  --duration <s>      seconds of each measurement (wrk run, fixed-rate run; default 10)
  --connections <n>   wrk connections, the same for every target (default 32)
  --rate <n>          requests per second of the open-loop run (default 500)
  --warmup <s>        seconds of wrk warm-up per target, plus 1 s unrecorded at the rate (default 3)
  --skip-portkey      do not measure @portkey-ai/gateway
  --skip-proxy        do not measure the bare Bun proxy (quick runs while working on soulfra)
  --probe             trace soulfra's process (bench/probe.ts: event-loop lag, slow SQLite calls,
                      commits with their WAL size) and match what it saw with the slow requests
  --baseline <ref>    also measure soulfra as it was at git <ref> (a commit, a tag), side by side
                      with this checkout, in the same run: what a change costs (issue 13: the router
                      with billing on, against the commit before billing)
  --out <file>        the JSON results file (default bench/results/router-<timestamp>.json)
`;

/** A request slower than this at the fixed rate is counted (the issue's tail goal: none at 500 req/s). */
const SLOW_MS = 20;

const SELF = import.meta.path;

/** Progress on stderr, with the seconds since the run started. */
let runStart = performance.now();
const toStderr = (msg: string) =>
  progress(`${((performance.now() - runStart) / 1000).toFixed(1).padStart(6)}s  ${msg}`);
const STUB_TEXT = 'Hello from the benchmark stub.';
const STUB_COMPLETION = {
  id: 'chatcmpl-bench',
  object: 'chat.completion',
  created: 1_700_000_000,
  model: 'stub-model',
  choices: [
    { index: 0, message: { role: 'assistant', content: STUB_TEXT }, logprobs: null, finish_reason: 'stop' },
  ],
  usage: { prompt_tokens: 9, completion_tokens: 6, total_tokens: 15 },
};
const REQUEST_BODY = JSON.stringify({ model: 'default', messages: [{ role: 'user', content: 'hello' }] });
const UPSTREAM_KEY = 'sk-bench-upstream';

// ---------------------------------------------------------------------------------------------
// Child roles

/** (a) The upstream: a fixed completion for POST /v1/chat/completions. */
function stubRole(): void {
  const answer = JSON.stringify(STUB_COMPLETION);
  // GET /v1/models too: soulfra's health loop asks for it every 10 s and opens the provider's
  // circuit when it fails.
  const models = JSON.stringify({
    object: 'list',
    data: [{ id: 'stub-model', object: 'model', created: 1_700_000_000, owned_by: 'bench' }],
  });
  const json = { headers: { 'content-type': 'application/json' } };
  const server = Bun.serve({
    hostname: '127.0.0.1',
    port: 0,
    async fetch(req) {
      const path = new URL(req.url).pathname;
      if (req.method === 'POST' && path === '/v1/chat/completions') {
        await req.arrayBuffer();
        return new Response(answer, json);
      }
      if (req.method === 'GET' && path === '/v1/models') return new Response(models, json);
      return Response.json({ error: { message: 'not found', type: 'not_found_error' } }, { status: 404 });
    },
  });
  process.stdout.write(`${JSON.stringify({ port: server.port })}\n`);
}

/** (b) The floor: forward the request to the upstream with fetch, return its response. */
function proxyRole(upstream: string): void {
  const server = Bun.serve({
    hostname: '127.0.0.1',
    port: 0,
    async fetch(req) {
      const url = new URL(req.url);
      const headers = new Headers(req.headers);
      headers.delete('host');
      return fetch(`${upstream}${url.pathname}${url.search}`, {
        method: req.method,
        headers,
        body: req.method === 'GET' || req.method === 'HEAD' ? undefined : await req.arrayBuffer(),
      });
    },
  });
  process.stdout.write(`${JSON.stringify({ port: server.port })}\n`);
}

/** What the open-loop generator is told (through a file: it holds an API key). */
interface OpenLoopSpec {
  url: string;
  headers: Record<string, string>;
  body: string;
  rate: number;
  durationSeconds: number;
  warmupSeconds: number;
}

/** What it reports back (one JSON document on stdout). */
interface OpenLoopResult {
  scheduled: number;
  completed: number;
  /** Completion minus the moment the request was handed to fetch, ms. */
  latency_ms: number[];
  /** When each of those requests was handed to fetch, ms since the schedule's start (tails in time). */
  sent_at_ms: number[];
  /** The same from the moment it was due (includes the generator's own lateness), ms. */
  latency_from_due_ms: number[];
  /** How late each request left against its schedule, ms. */
  send_lag_ms: number[];
  statuses: Record<string, number>;
  wrong_body: number;
  network_errors: number;
  error_samples: string[];
  max_in_flight: number;
  /** First to last scheduled send of the recorded part, s. */
  span_s: number;
  /** CPU time of the generator itself over the whole run, ms. */
  generator_cpu_ms: number;
  /** The schedule's start (`sent_at_ms` 0) in wall-clock ms (`Date.now()` based), to match with the probe. */
  t0_epoch_ms: number;
}

function contentOk(text: string): boolean {
  try {
    const j = JSON.parse(text) as { choices?: { message?: { content?: unknown } }[] };
    return j.choices?.[0]?.message?.content === STUB_TEXT;
  } catch {
    return false;
  }
}

/** Requests on a schedule (rate per second), each recorded when its answer has been read. */
async function openLoopRole(specPath: string): Promise<void> {
  const spec = JSON.parse(readFileSync(specPath, 'utf8')) as OpenLoopSpec;
  const cpu0 = process.cpuUsage();
  const interval = 1000 / spec.rate;
  const warm = Math.round(spec.rate * spec.warmupSeconds);
  const total = warm + Math.round(spec.rate * spec.durationSeconds);
  const r: OpenLoopResult = {
    scheduled: total - warm,
    completed: 0,
    latency_ms: [],
    sent_at_ms: [],
    latency_from_due_ms: [],
    send_lag_ms: [],
    statuses: {},
    wrong_body: 0,
    network_errors: 0,
    error_samples: [],
    max_in_flight: 0,
    span_s: 0,
    generator_cpu_ms: 0,
    t0_epoch_ms: 0,
  };
  const init: RequestInit = { method: 'POST', headers: spec.headers, body: spec.body };
  let inFlight = 0;
  let settled = 0;
  let allDone: () => void = () => {};
  const finished = new Promise<void>((res) => {
    allDone = res;
  });
  const fire = (i: number, due: number) => {
    const recorded = i >= warm;
    inFlight++;
    if (recorded && inFlight > r.max_in_flight) r.max_in_flight = inFlight;
    const sent = performance.now();
    fetch(spec.url, init)
      .then(
        async (res) => {
          const text = await res.text();
          const end = performance.now();
          if (!recorded) return;
          r.completed++;
          r.latency_ms.push(end - sent);
          r.sent_at_ms.push(sent - t0);
          r.latency_from_due_ms.push(end - due);
          r.send_lag_ms.push(sent - due);
          r.statuses[res.status] = (r.statuses[res.status] ?? 0) + 1;
          if (res.status === 200 && !contentOk(text)) {
            r.wrong_body++;
            if (r.error_samples.length < 5) r.error_samples.push(`200 with ${text.slice(0, 200)}`);
          } else if (res.status !== 200 && r.error_samples.length < 5) {
            r.error_samples.push(`${res.status} ${text.slice(0, 200)}`);
          }
        },
        (e: unknown) => {
          if (!recorded) return;
          r.network_errors++;
          if (r.error_samples.length < 5) r.error_samples.push(String((e as Error)?.message ?? e));
        },
      )
      .finally(() => {
        inFlight--;
        if (++settled === total) allDone();
      });
  };
  const t0 = performance.now() + 20;
  r.t0_epoch_ms = Date.now() - performance.now() + t0;
  let i = 0;
  while (i < total) {
    const now = performance.now();
    while (i < total && t0 + i * interval <= now) {
      fire(i, t0 + i * interval);
      i++;
    }
    if (i < total) {
      const wait = t0 + i * interval - performance.now();
      if (wait > 0) await Bun.sleep(wait);
    }
  }
  r.span_s = ((total - 1 - warm) * interval) / 1000;
  // Answers still missing 30 s after the last send count as lost.
  let timer: ReturnType<typeof setTimeout> | undefined;
  await Promise.race([finished, new Promise<void>((res) => (timer = setTimeout(res, 30_000)))]);
  clearTimeout(timer);
  const cpu = process.cpuUsage(cpu0);
  r.generator_cpu_ms = (cpu.user + cpu.system) / 1000;
  await Bun.write(Bun.stdout, `${JSON.stringify(r)}\n`);
  process.exit(0);
}

// ---------------------------------------------------------------------------------------------
// The parent: options

interface Options {
  duration: number;
  connections: number;
  rate: number;
  warmup: number;
  skipPortkey: boolean;
  skipProxy: boolean;
  probe: boolean;
  baseline: string | undefined;
  out: string | undefined;
}

function parseOptions(args: string[]): Options | 'help' {
  const { values } = parseArgs({
    args,
    strict: true,
    allowPositionals: false,
    options: {
      duration: { type: 'string' },
      connections: { type: 'string' },
      rate: { type: 'string' },
      warmup: { type: 'string' },
      'skip-portkey': { type: 'boolean' },
      'skip-proxy': { type: 'boolean' },
      probe: { type: 'boolean' },
      baseline: { type: 'string' },
      out: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) return 'help';
  const int = (name: string, v: string | undefined, dflt: number, min: number): number => {
    if (v === undefined) return dflt;
    const n = Number(v);
    if (!Number.isInteger(n) || n < min) throw new Error(`--${name} must be an integer ≥ ${min}, got '${v}'`);
    return n;
  };
  return {
    duration: int('duration', values.duration, 10, 1),
    connections: int('connections', values.connections, 32, 1),
    rate: int('rate', values.rate, 500, 1),
    warmup: int('warmup', values.warmup, 3, 0),
    skipPortkey: Boolean(values['skip-portkey']),
    skipProxy: Boolean(values['skip-proxy']),
    probe: Boolean(values.probe),
    baseline: values.baseline,
    out: values.out,
  };
}

// ---------------------------------------------------------------------------------------------
// The parent: helpers

/** Reads the first line a child prints on stdout (a JSON document). */
async function firstLine<T>(proc: Subprocess, what: string, timeoutMs = 20_000): Promise<T> {
  const reader = (proc.stdout as ReadableStream<Uint8Array>).getReader();
  const dec = new TextDecoder();
  let text = '';
  const deadline = Date.now() + timeoutMs;
  while (!text.includes('\n')) {
    const next = await Promise.race([
      reader.read(),
      new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), Math.max(0, deadline - Date.now()))),
    ]);
    if (next === 'timeout' || next.done) {
      const err = await new Response(proc.stderr as ReadableStream).text().catch(() => '');
      throw new Error(
        `${what} did not start (${next === 'timeout' ? 'timed out' : 'exited'}): ${text}${err}`,
      );
    }
    text += dec.decode(next.value, { stream: true });
  }
  reader.releaseLock();
  return JSON.parse(text.slice(0, text.indexOf('\n'))) as T;
}

/** A child of this file listening on 127.0.0.1 (stub or proxy). */
async function startRole(role: string, args: string[] = []): Promise<{ proc: Subprocess; port: number }> {
  const proc = spawnTracked([BUN, SELF, role, ...args]);
  const { port } = await firstLine<{ port: number }>(proc, role);
  return { proc, port };
}

/** A free TCP port on 127.0.0.1 (for Portkey, which takes a port number, not 0). */
function freePort(): number {
  const l = Bun.listen({ hostname: '127.0.0.1', port: 0, socket: { data() {} } });
  const port = l.port;
  l.stop(true);
  return port;
}

/** user + system CPU time of a process so far, ms (from /proc/<pid>/stat). */
const CLK_TCK = (() => {
  try {
    const r = Bun.spawnSync(['getconf', 'CLK_TCK'], { stdout: 'pipe', stderr: 'ignore' });
    return Number(r.stdout.toString().trim()) || 100;
  } catch {
    return 100;
  }
})();
function cpuMs(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // fields[0] is field 3 (state): utime is field 14, stime 15.
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / CLK_TCK;
  } catch {
    return Number.NaN;
  }
}

/** The Node that runs Portkey. */
function nodeVersion(): string {
  try {
    return Bun.spawnSync(['node', '--version'], { stdout: 'pipe', stderr: 'ignore' })
      .stdout.toString()
      .trim();
  } catch {
    return 'unknown';
  }
}

/** The load averages (1, 5, 15 min) and what else is busy, for the record. */
function loadNow(): { loadavg: number[]; at: string } {
  return { loadavg: loadavg().map((x) => Math.round(x * 100) / 100), at: new Date().toISOString() };
}

/** A target under test. */
interface Target {
  id: 'stub' | 'proxy' | 'soulfra' | 'baseline' | 'portkey';
  label: string;
  url: string;
  headers: Record<string, string>;
  /** The target's process (CPU accounting); the stub's is counted separately. */
  pid: number;
}

/** A wrk run, parsed. */
interface WrkResult {
  requests_per_s: number;
  requests: number;
  duration_s: number;
  latency_ms: {
    mean: number;
    p50: number;
    p75: number;
    p90: number;
    p99: number;
    p999: number;
    max: number;
  };
  non_2xx: number;
  socket_errors: { connect: number; read: number; write: number; timeout: number };
  target_cpu_us_per_req: number;
  stub_cpu_us_per_req: number;
  raw: string;
}

const luaString = (s: string) => `[==[${s}]==]`;

function wrkScript(t: Target): string {
  const lines = [
    'wrk.method = "POST"',
    `wrk.body = ${luaString(REQUEST_BODY)}`,
    // wrk adds its own Host unless the script sets `Host` (with that spelling).
    ...Object.entries(t.headers).map(
      ([k, v]) => `wrk.headers[ ${luaString(k.toLowerCase() === 'host' ? 'Host' : k)} ] = ${luaString(v)}`,
    ),
    ...(process.env.BENCH_WRK_DEBUG
      ? [
          'local seen = {}',
          'response = function(status, headers, body)',
          '  if not seen[status] then seen[status] = true; io.write("STATUS ", status, " ", body:sub(1, 300), "\\n") end',
          'end',
        ]
      : []),
    'done = function(summary, latency, requests)',
    '  local e = summary.errors',
    '  io.write(string.format(\'WRKJSON {"requests":%d,"duration_us":%d,"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d,"mean_us":%.1f,"max_us":%d,"p50_us":%d,"p75_us":%d,"p90_us":%d,"p99_us":%d,"p999_us":%d}\\n\',',
    '    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,',
    '    latency.mean, latency.max, latency:percentile(50), latency:percentile(75),',
    '    latency:percentile(90), latency:percentile(99), latency:percentile(99.9)))',
    'end',
  ];
  return `${lines.join('\n')}\n`;
}

/** `wrk -t1 -c<C> -d<D>s --latency -s <script> <url>`, parsed. */
async function runWrk(
  t: Target,
  work: string,
  connections: number,
  seconds: number,
  stubPid: number,
): Promise<WrkResult> {
  const script = join(work, `${t.id}.lua`);
  writeFileSync(script, wrkScript(t));
  const cpuT0 = cpuMs(t.pid);
  const cpuS0 = cpuMs(stubPid);
  const proc = spawnTracked([
    'wrk',
    '-t1',
    `-c${connections}`,
    `-d${seconds}s`,
    '--timeout',
    '5s',
    '--latency',
    '-s',
    script,
    t.url,
  ]);
  const [out, err, code] = await Promise.all([
    new Response(proc.stdout as ReadableStream).text(),
    new Response(proc.stderr as ReadableStream).text(),
    proc.exited,
  ]);
  const cpuT = cpuMs(t.pid) - cpuT0;
  const cpuS = cpuMs(stubPid) - cpuS0;
  if (code !== 0) throw new Error(`wrk exited ${code}: ${out}${err}`);
  if (process.env.BENCH_WRK_DEBUG)
    toStderr(
      out
        .split('\n')
        .filter((l) => l.startsWith('STATUS'))
        .join('\n'),
    );
  const m = /^WRKJSON (\{.*\})$/m.exec(out);
  if (!m) throw new Error(`wrk printed no summary: ${out}${err}`);
  const j = JSON.parse(m[1]!) as Record<string, number>;
  const rps = Number(/Requests\/sec:\s+([0-9.]+)/.exec(out)?.[1] ?? Number.NaN);
  const n = j.requests!;
  return {
    requests_per_s: Number.isFinite(rps) ? rps : n / (j.duration_us! / 1e6),
    requests: n,
    duration_s: j.duration_us! / 1e6,
    latency_ms: {
      mean: j.mean_us! / 1000,
      p50: j.p50_us! / 1000,
      p75: j.p75_us! / 1000,
      p90: j.p90_us! / 1000,
      p99: j.p99_us! / 1000,
      p999: j.p999_us! / 1000,
      max: j.max_us! / 1000,
    },
    non_2xx: j.status!,
    socket_errors: { connect: j.connect!, read: j.read!, write: j.write!, timeout: j.timeout! },
    target_cpu_us_per_req: t.id === 'stub' ? (cpuS * 1000) / n : (cpuT * 1000) / n,
    stub_cpu_us_per_req: (cpuS * 1000) / n,
    raw: out,
  };
}

/** The open-loop generator (own process) against one target, with the CPU of target and stub. */
async function runOpenLoop(
  t: Target,
  work: string,
  rate: number,
  seconds: number,
  warmupSeconds: number,
  stubPid: number,
) {
  const specFile = join(work, `openloop-${t.id}.json`);
  const spec: OpenLoopSpec = {
    url: t.url,
    headers: { ...t.headers, 'content-type': 'application/json', 'accept-encoding': 'identity' },
    body: REQUEST_BODY,
    rate,
    durationSeconds: seconds,
    warmupSeconds,
  };
  writeFileSync(specFile, JSON.stringify(spec), { mode: 0o600 });
  const cpuT0 = cpuMs(t.pid);
  const cpuS0 = cpuMs(stubPid);
  const proc = spawnTracked([BUN, SELF, 'openloop', specFile]);
  const [out, err, code] = await Promise.all([
    new Response(proc.stdout as ReadableStream).text(),
    new Response(proc.stderr as ReadableStream).text(),
    proc.exited,
  ]);
  const cpuT = cpuMs(t.pid) - cpuT0;
  const cpuS = cpuMs(stubPid) - cpuS0;
  rmSync(specFile, { force: true });
  if (code !== 0) throw new Error(`the open-loop generator exited ${code}: ${out.slice(0, 500)}${err}`);
  const r = JSON.parse(out) as OpenLoopResult;
  const ok = r.statuses['200'] ?? 0;
  const slow = slowWindows(r);
  const requests = r.scheduled + Math.round(rate * warmupSeconds);
  return {
    rate,
    duration_s: seconds,
    scheduled: r.scheduled,
    completed: r.completed,
    achieved_rate: r.scheduled / Math.max(r.span_s, 1e-9),
    latency: summarize(r.latency_ms),
    latency_from_due: summarize(r.latency_from_due_ms),
    send_lag: summarize(r.send_lag_ms),
    statuses: r.statuses,
    errors: r.scheduled - ok + r.wrong_body,
    wrong_body: r.wrong_body,
    network_errors: r.network_errors,
    lost: r.scheduled - r.completed - r.network_errors,
    error_samples: r.error_samples,
    max_in_flight: r.max_in_flight,
    over_20ms: slow.reduce((a, w) => a + w.n, 0),
    slow_windows: slow,
    t0_epoch_ms: r.t0_epoch_ms,
    generator_cpu_ms: r.generator_cpu_ms,
    target_cpu_us_per_req: ((t.id === 'stub' ? cpuS : cpuT) * 1000) / requests,
    stub_cpu_us_per_req: (cpuS * 1000) / requests,
    samples_ms: r.latency_ms.map((x) => Math.round(x * 1000) / 1000),
  };
}
type OpenLoopStats = Awaited<ReturnType<typeof runOpenLoop>>;

/** Requests over SLOW_MS that left within 100 ms of one another: one stall each. */
interface SlowWindow {
  /** When the first of them was sent, s since the recorded schedule's start, and in wall-clock ms. */
  from_s: number;
  to_s: number;
  from_epoch_ms: number;
  /** The latest answer among them, in wall-clock ms (the stall ended by then). */
  until_epoch_ms: number;
  n: number;
  max_ms: number;
}

function slowWindows(r: OpenLoopResult): SlowWindow[] {
  const slow: { sent: number; lat: number }[] = [];
  for (let i = 0; i < r.latency_ms.length; i++) {
    if (r.latency_ms[i]! > SLOW_MS) slow.push({ sent: r.sent_at_ms[i]!, lat: r.latency_ms[i]! });
  }
  slow.sort((a, b) => a.sent - b.sent);
  const out: SlowWindow[] = [];
  for (const x of slow) {
    const w = out.at(-1);
    if (w && x.sent / 1000 - w.to_s <= 0.1) {
      w.to_s = x.sent / 1000;
      w.n++;
      w.max_ms = Math.max(w.max_ms, x.lat);
      w.until_epoch_ms = Math.max(w.until_epoch_ms, r.t0_epoch_ms + x.sent + x.lat);
    } else {
      out.push({
        from_s: x.sent / 1000,
        to_s: x.sent / 1000,
        from_epoch_ms: r.t0_epoch_ms + x.sent,
        until_epoch_ms: r.t0_epoch_ms + x.sent + x.lat,
        n: 1,
        max_ms: x.lat,
      });
    }
  }
  return out;
}

/** One request, checked: 200 and the stub's content. */
async function checkOnce(t: Target): Promise<void> {
  const headers = new Headers(t.headers);
  headers.set('content-type', 'application/json');
  const r = await fetch(t.url, { method: 'POST', headers, body: REQUEST_BODY });
  const text = await r.text();
  if (r.status !== 200 || !contentOk(text)) {
    throw new Error(
      `${t.label}: expected 200 with the stub's content, got ${r.status} ${text.slice(0, 300)}`,
    );
  }
}

// ---------------------------------------------------------------------------------------------
// Soulfra and Portkey

/**
 * soulfra's source as it was at git `ref`, unpacked under `work` (git archive: no worktree to
 * clean up), with this checkout's node_modules and web build beside it. Answers its entry point.
 */
function checkoutAt(ref: string, work: string): { main: string; commit: string } {
  const commit = Bun.spawnSync(['git', 'rev-parse', '--verify', `${ref}^{commit}`], { cwd: ROOT });
  if (commit.exitCode !== 0) throw new Error(`--baseline: '${ref}' is not a commit of this repository`);
  const dir = join(work, 'baseline-src');
  mkdirSync(dir, { recursive: true });
  const tar = Bun.spawnSync(['sh', '-c', `git archive "$1" | tar -x -C "$2"`, 'sh', ref, dir], { cwd: ROOT });
  if (tar.exitCode !== 0) throw new Error(`--baseline: git archive ${ref} failed: ${tar.stderr.toString()}`);
  symlinkSync(join(ROOT, 'node_modules'), join(dir, 'node_modules'));
  if (!existsSync(join(dir, 'web', 'dist'))) symlinkSync(join(ROOT, 'web', 'dist'), join(dir, 'web', 'dist'));
  return { main: join(dir, 'src', 'main.ts'), commit: commit.stdout.toString().trim() };
}

async function startSoulfra(
  work: string,
  stubPort: number,
  probeFile: string | undefined,
  main?: string,
): Promise<{ server: ServerProc; key: string }> {
  work = main ? join(work, 'baseline') : work;
  mkdirSync(work, { recursive: true });
  const cfg = join(work, 'soulfra.yaml');
  writeFileSync(
    cfg,
    [
      'providers:',
      `  - { id: up, kind: openai, url: http://127.0.0.1:${stubPort}/v1, api_key_env: BENCH_UPSTREAM_KEY, location: on_prem, timeout_ms: 10000 }`,
      'models:',
      '  - { alias: default, route: [up/stub-model] }',
      'prices:',
      '  up/stub-model: { input: 15, output: 60, currency: usd }',
      '',
    ].join('\n'),
  );
  process.env.BENCH_UPSTREAM_KEY = UPSTREAM_KEY;
  if (probeFile) process.env.BENCH_PROBE = probeFile;
  const server = await startServer(
    join(work, 'data'),
    60_000,
    ['--config', cfg],
    probeFile ? ['--preload', join(ROOT, 'bench', 'probe.ts')] : [],
    // An experiment hook: a command soulfra runs under, split on spaces (for example
    // `strace -f --seccomp-bpf -e trace=fsync -e inject=fsync:delay_enter=200000 -o f --`, which
    // makes every fsync of soulfra's take 200 ms longer: docs/performance.md, the stall).
    process.env.BENCH_SOULFRA_WRAP ? process.env.BENCH_SOULFRA_WRAP.split(' ').filter(Boolean) : [],
    main,
  );
  delete process.env.BENCH_PROBE;
  const token = server.banner.operator?.token;
  if (!token) throw new Error('a fresh data dir printed no operator token');
  const op = async (path: string, body: unknown, expect: number) => {
    const res = await hostFetch(server.base, 'localhost', `/_operator/api${path}`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    const text = await res.text();
    if (res.status !== expect) throw new Error(`POST ${path}: HTTP ${res.status} ${text.slice(0, 300)}`);
    return JSON.parse(text) as Record<string, unknown>;
  };
  await op('/platforms', { slug: 'bench', template: 'creator' }, 201);
  const k = await op(
    '/platforms/bench/api-keys',
    { name: 'bench', scopes: ['ai:invoke'], rate_per_min: 1_000_000 },
    201,
  );
  if (typeof k.key !== 'string') throw new Error(`the API key answer has no key: ${JSON.stringify(k)}`);
  return { server, key: k.key };
}

const PORTKEY = join(ROOT, 'node_modules', '@portkey-ai', 'gateway', 'build', 'start-server.js');

async function startPortkey(): Promise<{ proc: Subprocess; port: number }> {
  const port = freePort();
  // It listens on every interface (it cannot be told otherwise): it runs only for its turn.
  const proc = spawnTracked(['node', PORTKEY, `--port=${port}`, '--headless'], {
    stdout: 'ignore',
    stderr: 'pipe',
  });
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (proc.exitCode !== null) {
      const err = await new Response(proc.stderr as ReadableStream).text();
      throw new Error(`Portkey exited ${proc.exitCode}: ${err.slice(-1000)}`);
    }
    try {
      const res = await fetch(`http://127.0.0.1:${port}/`);
      await res.arrayBuffer();
      return { proc, port };
    } catch {
      if (Date.now() > deadline) throw new Error('Portkey did not answer within 30 s');
      await Bun.sleep(100);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// The probe (`--probe`): what ran in soulfra's process while requests were slow

interface ProbeEvent {
  kind: 'start' | 'heap' | 'lag' | 'sql' | 'totals';
  at: number;
  ms: number;
  [k: string]: unknown;
}

interface ProbeReport {
  /** The fixed-rate run's recorded span, wall-clock ms. */
  window: { from_epoch_ms: number; to_epoch_ms: number } | null;
  /** Event-loop gaps over SLOW_MS in that span. */
  long_lags: ProbeEvent[];
  /** SQLite calls over the probe's threshold in that span. */
  slow_sql: ProbeEvent[];
  /** Per slow window of the fixed-rate run: the probe's events that overlap it. */
  windows: (SlowWindow & { events: ProbeEvent[] })[];
  /** The 20 slowest SQLite calls and event-loop gaps over soulfra's whole life (warm-up and peak too). */
  slowest_sql: ProbeEvent[];
  slowest_lags: ProbeEvent[];
  /** CLOCK_MONOTONIC minus wall-clock ms in soulfra's process (to match `perf trace -T`). */
  mono_offset_ms: number | null;
  /** soulfra's process id (to pick its system calls out of a system-wide trace). */
  pid: number | null;
  /** [ms since the fixed-rate start, JS heap bytes], once a second. */
  heap: [number, number][];
  /** Per kind of SQLite call over soulfra's whole life: count and total ms. */
  totals: Record<string, { n: number; ms: number }> | null;
}

function readProbe(file: string, open: OpenLoopStats | undefined): ProbeReport {
  let events: ProbeEvent[] = [];
  try {
    events = readFileSync(file, 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as ProbeEvent);
  } catch {
    // No file: the probe saw nothing (or did not load).
  }
  const totals = (events.find((e) => e.kind === 'totals')?.totals ?? null) as ProbeReport['totals'];
  const w = open
    ? { from_epoch_ms: open.t0_epoch_ms, to_epoch_ms: open.t0_epoch_ms + (open.duration_s + 1) * 1000 }
    : null;
  const inWin = (e: ProbeEvent) => !w || (e.at + e.ms >= w.from_epoch_ms && e.at <= w.to_epoch_ms);
  return {
    window: w,
    long_lags: events.filter((e) => e.kind === 'lag' && e.ms > SLOW_MS && inWin(e)),
    slow_sql: events.filter((e) => e.kind === 'sql' && inWin(e)),
    windows: (open?.slow_windows ?? []).map((sw) => ({
      ...sw,
      events: events.filter(
        (e) =>
          (e.kind === 'lag' || e.kind === 'sql') &&
          e.at + e.ms >= sw.from_epoch_ms - 50 &&
          e.at <= sw.until_epoch_ms,
      ),
    })),
    slowest_sql: events
      .filter((e) => e.kind === 'sql')
      .sort((a, b) => b.ms - a.ms)
      .slice(0, 20),
    slowest_lags: events
      .filter((e) => e.kind === 'lag' && !e.first)
      .sort((a, b) => b.ms - a.ms)
      .slice(0, 20),
    mono_offset_ms: (events.find((e) => e.kind === 'start')?.mono_offset_ms as number | undefined) ?? null,
    pid: (events.find((e) => e.kind === 'start')?.pid as number | undefined) ?? null,
    heap: events
      .filter((e) => e.kind === 'heap')
      .map((e) => [Math.round(e.at - (w?.from_epoch_ms ?? 0)), e.heap as number]),
    totals,
  };
}

function probeLines(p: ProbeReport): string[] {
  const t0 = p.window?.from_epoch_ms ?? 0;
  const at = (e: { at: number }) => `${((e.at - t0) / 1000).toFixed(3)} s`;
  const desc = (e: ProbeEvent) =>
    e.kind === 'lag'
      ? `event loop blocked ${e.ms.toFixed(1)} ms at ${at(e)} (heap ${e.heap_before} -> ${e.heap_after})`
      : `${e.what} ${e.ms.toFixed(1)} ms at ${at(e)}: ${e.sql}${e.wal_before !== undefined ? ` (wal ${e.wal_before} -> ${e.wal_after} bytes)` : ''}`;
  const lines = [
    `${p.long_lags.length} event-loop gaps over ${SLOW_MS} ms and ${p.slow_sql.length} slow SQLite calls in the fixed-rate run`,
  ];
  for (const e of p.long_lags.slice(0, 10)) lines.push(`  ${desc(e)}`);
  lines.push('slowest over the whole run (warm-up and peak included; times from the fixed-rate start):');
  for (const e of [...p.slowest_sql.slice(0, 5), ...p.slowest_lags.slice(0, 5)]) lines.push(`  ${desc(e)}`);
  for (const sw of p.windows.slice(0, 10)) {
    lines.push(
      `slow window ${sw.from_s.toFixed(3)}–${sw.to_s.toFixed(3)} s: ${sw.n} requests over ${SLOW_MS} ms, max ${sw.max_ms.toFixed(1)} ms; probe: ${sw.events.length ? '' : 'nothing'}`,
    );
    for (const e of sw.events.slice(0, 8)) lines.push(`  ${desc(e)}`);
  }
  return lines;
}

// ---------------------------------------------------------------------------------------------
// The parent: the run

const f2 = (x: number) => (Number.isFinite(x) ? x.toFixed(2) : '-');
const f0 = (x: number) => (Number.isFinite(x) ? Math.round(x).toLocaleString('en-US') : '-');
const signed = (x: number) => (Number.isFinite(x) ? `${x >= 0 ? '+' : ''}${x.toFixed(2)}` : '-');

interface TargetResult {
  id: Target['id'];
  label: string;
  open_loop: OpenLoopStats;
  wrk: WrkResult;
}

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
  if (Bun.spawnSync(['which', 'wrk'], { stdout: 'ignore', stderr: 'ignore' }).exitCode !== 0) {
    process.stderr.write('wrk is not installed (apt-get install wrk)\n');
    return 1;
  }

  const startedAt = new Date();
  const runT0 = performance.now();
  runStart = runT0;
  const work = mkdtempSync(join(tmpdir(), 'soulfra-bench-router-'));
  let cleaned = false;
  const cleanup = () => {
    if (cleaned) return;
    cleaned = true;
    rmSync(work, { recursive: true, force: true });
  };
  const uninstall = installInterruptHandlers(cleanup);

  const results: Record<string, unknown> = {
    benchmark: 'router',
    started_at: startedAt.toISOString(),
    options: opts,
    machine: machine(),
    source: sourceVersion(),
    targets: TARGETS,
    load_before: loadNow(),
  };
  const done: TargetResult[] = [];
  let stubAgain: OpenLoopStats | undefined;
  let exitCode = 0;

  try {
    const m = results.machine as ReturnType<typeof machine>;
    const la = (results.load_before as ReturnType<typeof loadNow>).loadavg;
    toStderr(
      `soulfra router benchmark: ${m.nproc} cores (${m.cpu}), Bun ${m.bun}; load average ${la.join(', ')}`,
    );
    if (la[0]! > 0.5) toStderr('  note: the machine is not idle (1-min load > 0.5); figures will be noisy');

    const stub = await startRole('stub');
    const stubBase = `http://127.0.0.1:${stub.port}`;
    toStderr(`[stub] listening on ${stubBase} (pid ${stub.proc.pid})`);

    const measure = async (t: Target) => {
      await checkOnce(t);
      if (opts.warmup > 0) {
        toStderr(`  warm-up: wrk ${opts.warmup} s, c=${opts.connections}`);
        await runWrk(t, work, opts.connections, opts.warmup, stub.proc.pid);
      }
      toStderr(`  fixed rate: ${opts.rate} req/s for ${opts.duration} s (+1 s unrecorded)`);
      const open = await runOpenLoop(t, work, opts.rate, opts.duration, 1, stub.proc.pid);
      toStderr(
        `    p50 ${f2(open.latency.p50)} ms, p99 ${f2(open.latency.p99)} ms, p99.9 ${f2(open.latency.p999)} ms, max ${f2(open.latency.max)} ms, ${open.over_20ms} over ${SLOW_MS} ms, ${open.errors} errors, max in flight ${open.max_in_flight}`,
      );
      toStderr(`  peak: wrk -t1 -c${opts.connections} -d${opts.duration}s`);
      const wrk = await runWrk(t, work, opts.connections, opts.duration, stub.proc.pid);
      toStderr(
        `    ${f0(wrk.requests_per_s)} req/s, p50 ${f2(wrk.latency_ms.p50)} ms, p99.9 ${f2(wrk.latency_ms.p999)} ms, max ${f2(wrk.latency_ms.max)} ms, non-2xx ${wrk.non_2xx}`,
      );
      done.push({ id: t.id, label: t.label, open_loop: open, wrk });
    };
    const path = '/v1/chat/completions';
    const baseHeaders = { authorization: `Bearer ${UPSTREAM_KEY}`, 'content-type': 'application/json' };

    // (a) The stub directly.
    toStderr('[a] the stub directly');
    await measure({
      id: 'stub',
      label: '(a) stub direct',
      url: `${stubBase}${path}`,
      headers: baseHeaders,
      pid: stub.proc.pid,
    });

    // (b) The bare Bun proxy.
    if (!opts.skipProxy) {
      const proxy = await startRole('proxy', [stubBase]);
      toStderr(`[b] bare Bun proxy on 127.0.0.1:${proxy.port} (pid ${proxy.proc.pid})`);
      await measure({
        id: 'proxy',
        label: '(b) bare Bun proxy',
        url: `http://127.0.0.1:${proxy.port}${path}`,
        headers: baseHeaders,
        pid: proxy.proc.pid,
      });
      await stopProcess(proxy.proc, 5_000);
    }

    // (c0) soulfra at the baseline commit, just before this checkout's turn.
    if (opts.baseline) {
      const at = checkoutAt(opts.baseline, work);
      results.baseline = { ref: opts.baseline, commit: at.commit };
      const b = await startSoulfra(work, stub.port, undefined, at.main);
      toStderr(`[c0] soulfra at ${opts.baseline} (${at.commit.slice(0, 10)}) on ${b.server.base}`);
      await measure({
        id: 'baseline',
        label: `(c0) soulfra @ ${opts.baseline}`,
        url: `${b.server.base}${path}`,
        headers: {
          host: 'bench.localhost',
          authorization: `Bearer ${b.key}`,
          'content-type': 'application/json',
        },
        pid: b.server.pid,
      });
      await stopProcess(b.server.proc);
    }

    // (c) soulfra.
    const probeFile = opts.probe ? join(work, 'probe.jsonl') : undefined;
    const { server, key } = await startSoulfra(work, stub.port, probeFile);
    toStderr(
      `[c] soulfra on ${server.base} (pid ${server.pid}, started in ${Math.round(server.startMs)} ms)`,
    );
    await measure({
      id: 'soulfra',
      label: '(c) soulfra',
      url: `${server.base}${path}`,
      headers: {
        host: 'bench.localhost',
        authorization: `Bearer ${key}`,
        'content-type': 'application/json',
      },
      pid: server.pid,
    });
    await Bun.sleep(1_200); // one metering flush
    results.soulfra_stop = await stopProcess(server.proc);
    if (probeFile) {
      const soulOpen = done.find((d) => d.id === 'soulfra')?.open_loop;
      results.probe = readProbe(probeFile, soulOpen);
      for (const line of probeLines(results.probe as ProbeReport)) toStderr(`  probe: ${line}`);
    }
    // What the server logged as errors (upstream failures, unhandled errors) during its turn.
    const logged = server
      .stderrTail()
      .split('\n')
      .filter((l) => / ERROR | WARN /.test(l));
    results.soulfra_log_errors = { count: logged.length, first: logged.slice(0, 5) };
    if (logged.length > 0) toStderr(`  soulfra logged ${logged.length} errors/warnings: ${logged[0]}`);

    // (d) Portkey.
    if (!opts.skipPortkey) {
      const pk = await startPortkey();
      toStderr(`[d] Portkey gateway on port ${pk.port} (pid ${pk.proc.pid}; Node ${nodeVersion()})`);
      try {
        await measure({
          id: 'portkey',
          label: '(d) Portkey gateway',
          url: `http://127.0.0.1:${pk.port}${path}`,
          headers: {
            ...baseHeaders,
            'x-portkey-provider': 'openai',
            'x-portkey-custom-host': `${stubBase}/v1`,
          },
          pid: pk.proc.pid,
        });
      } finally {
        await stopProcess(pk.proc, 5_000);
      }
    }

    // The stub again, at the fixed rate: how much the baseline moved during the run.
    toStderr('[a] the stub directly, again (fixed rate only)');
    stubAgain = await runOpenLoop(
      {
        id: 'stub',
        label: '(a) stub direct, again',
        url: `${stubBase}${path}`,
        headers: baseHeaders,
        pid: stub.proc.pid,
      },
      work,
      opts.rate,
      opts.duration,
      1,
      stub.proc.pid,
    );
    await stopProcess(stub.proc, 5_000);
  } catch (e) {
    results.aborted = (e as Error).message;
    toStderr(`aborted: ${(e as Error).message}`);
    exitCode = 1;
  } finally {
    await stopAllChildren();
  }
  results.load_after = loadNow();

  // -------------------------------------------------------------------------------------------
  // The report.
  const get = (id: Target['id']) => done.find((d) => d.id === id);
  const base = get('stub');
  const proxyR = get('proxy');
  const soul = get('soulfra');
  const pk = get('portkey');
  const baseline = get('baseline');
  const report: string[] = [];
  const section = (title: string, body: string) => report.push(`\n## ${title}\n\n${body}`);

  if (done.length > 0) {
    const rateRows = done.map((d) => {
      const o = d.open_loop;
      return [
        d.label,
        `${o.completed}/${o.scheduled}`,
        f0(o.achieved_rate),
        f2(o.latency.p50),
        f2(o.latency.p90),
        f2(o.latency.p99),
        f2(o.latency.p999),
        f2(o.latency.max),
        String(o.over_20ms),
        base && d.id !== 'stub' ? signed(o.latency.p50 - base.open_loop.latency.p50) : '',
        base && d.id !== 'stub' ? signed(o.latency.p99 - base.open_loop.latency.p99) : '',
        String(o.errors),
        String(o.max_in_flight),
        f0(o.target_cpu_us_per_req),
      ];
    });
    if (stubAgain) {
      const o = stubAgain;
      rateRows.push([
        '(a) stub direct, again at the end',
        `${o.completed}/${o.scheduled}`,
        f0(o.achieved_rate),
        f2(o.latency.p50),
        f2(o.latency.p90),
        f2(o.latency.p99),
        f2(o.latency.p999),
        f2(o.latency.max),
        String(o.over_20ms),
        base ? signed(o.latency.p50 - base.open_loop.latency.p50) : '',
        base ? signed(o.latency.p99 - base.open_loop.latency.p99) : '',
        String(o.errors),
        String(o.max_in_flight),
        f0(o.target_cpu_us_per_req),
      ]);
    }
    section(
      `Latency at a fixed ${opts.rate} req/s (open loop, ${opts.duration} s, ms)`,
      `${table(
        [
          'target',
          'ok/sent',
          'req/s',
          'p50',
          'p90',
          'p99',
          'p99.9',
          'max',
          `> ${SLOW_MS} ms`,
          'added p50',
          'added p99',
          'errors',
          'max in flight',
          'CPU µs/req',
        ],
        rateRows,
      )}\n\nLatency: from handing the request to fetch to the answer's last byte, in a separate Bun process` +
        ` sending on a schedule. Added: minus the stub's own figure. CPU µs/req: the target process alone` +
        ` (the stub's own is ${base ? f0(base.open_loop.stub_cpu_us_per_req) : '-'} µs/req).` +
        ` Generator lateness against its schedule: p50 ${base ? f2(base.open_loop.send_lag.p50) : '-'} ms,` +
        ` p99 ${base ? f2(base.open_loop.send_lag.p99) : '-'} ms (stub run).`,
    );

    const thrRows = done.map((d) => {
      const w = d.wrk;
      const sock =
        w.socket_errors.connect + w.socket_errors.read + w.socket_errors.write + w.socket_errors.timeout;
      return [
        d.label,
        f0(w.requests_per_s),
        f2(w.latency_ms.p50),
        f2(w.latency_ms.p90),
        f2(w.latency_ms.p99),
        f2(w.latency_ms.p999),
        f2(w.latency_ms.max),
        String(w.non_2xx),
        String(sock),
        base ? f2(w.requests_per_s / base.wrk.requests_per_s) : '-',
        proxyR ? f2(w.requests_per_s / proxyR.wrk.requests_per_s) : '-',
        f0(w.target_cpu_us_per_req),
      ];
    });
    section(
      `Peak throughput (wrk -t1 -c${opts.connections} -d${opts.duration}s, ms)`,
      `${table(
        [
          'target',
          'req/s',
          'p50',
          'p90',
          'p99',
          'p99.9',
          'max',
          'non-2xx',
          'socket errors',
          '× stub',
          '× bare proxy',
          'CPU µs/req',
        ],
        thrRows,
      )}\n\nwrk, the target, the stub (and for (b)–(d) the hop between them) share the machine's ${(results.machine as ReturnType<typeof machine>).nproc} cores.`,
    );
  }

  const verdicts: { target: string; goal: string; measured: string; ratio: string; verdict: string }[] = [];
  if (base && soul) {
    const a50 = soul.open_loop.latency.p50 - base.open_loop.latency.p50;
    const a99 = soul.open_loop.latency.p99 - base.open_loop.latency.p99;
    verdicts.push({
      target: `soulfra added p50 at ${opts.rate} req/s`,
      goal: `≤ ${TARGETS.addedP50Ms} ms`,
      measured: `${f2(a50)} ms`,
      ratio: f2(a50 / TARGETS.addedP50Ms),
      verdict: a50 <= TARGETS.addedP50Ms ? 'PASS' : 'MISS',
    });
    verdicts.push({
      target: `soulfra added p99 at ${opts.rate} req/s`,
      goal: `≤ ${TARGETS.addedP99Ms} ms`,
      measured: `${f2(a99)} ms`,
      ratio: f2(a99 / TARGETS.addedP99Ms),
      verdict: a99 <= TARGETS.addedP99Ms ? 'PASS' : 'MISS',
    });
  }
  if (soul && baseline) {
    const x = soul.wrk.requests_per_s / baseline.wrk.requests_per_s;
    const d50 = soul.open_loop.latency.p50 - baseline.open_loop.latency.p50;
    verdicts.push({
      target: `soulfra throughput / soulfra @ ${opts.baseline}`,
      goal: `≥ ${TARGETS.vsBaseline * 100}%`,
      measured: `${(x * 100).toFixed(0)}% (${f0(soul.wrk.requests_per_s)} / ${f0(baseline.wrk.requests_per_s)} req/s)`,
      ratio: f2(x / TARGETS.vsBaseline),
      verdict: x >= TARGETS.vsBaseline ? 'PASS' : 'MISS',
    });
    verdicts.push({
      target: `soulfra p50 − soulfra @ ${opts.baseline} p50 at ${opts.rate} req/s`,
      goal: `≤ ${TARGETS.baselineP50Ms} ms`,
      measured: `${signed(d50)} ms`,
      ratio: f2(d50 / TARGETS.baselineP50Ms),
      verdict: d50 <= TARGETS.baselineP50Ms ? 'PASS' : 'MISS',
    });
  }
  if (soul && pk) {
    const x = soul.wrk.requests_per_s / pk.wrk.requests_per_s;
    verdicts.push({
      target: 'soulfra throughput / Portkey',
      goal: `≥ ${TARGETS.vsPortkey}×`,
      measured: `${f2(x)}× (${f0(soul.wrk.requests_per_s)} / ${f0(pk.wrk.requests_per_s)} req/s)`,
      ratio: f2(x / TARGETS.vsPortkey),
      verdict: x >= TARGETS.vsPortkey ? 'PASS' : 'MISS',
    });
  }
  if (soul && proxyR) {
    const x = soul.wrk.requests_per_s / proxyR.wrk.requests_per_s;
    verdicts.push({
      target: 'soulfra throughput / bare proxy',
      goal: `≥ ${TARGETS.vsBareProxy * 100}%`,
      measured: `${(x * 100).toFixed(0)}% (${f0(soul.wrk.requests_per_s)} / ${f0(proxyR.wrk.requests_per_s)} req/s)`,
      ratio: f2(x / TARGETS.vsBareProxy),
      verdict: x >= TARGETS.vsBareProxy ? 'PASS' : 'MISS',
    });
  }
  const errorsSeen = done.reduce(
    (a, d) =>
      a +
      d.open_loop.errors +
      d.wrk.non_2xx +
      d.wrk.socket_errors.connect +
      d.wrk.socket_errors.read +
      d.wrk.socket_errors.write +
      d.wrk.socket_errors.timeout,
    0,
  );
  if (verdicts.length > 0) {
    section(
      'Targets',
      `${table(
        ['target', 'goal', 'measured', 'ratio', 'verdict'],
        verdicts.map((v) => [v.target, v.goal, v.measured, v.ratio, v.verdict]),
      )}\n\nErrors over every measurement (non-200, wrong content, socket errors): ${errorsSeen}.`,
    );
  }
  for (const d of done) {
    if (d.open_loop.error_samples.length > 0) {
      toStderr(`  ${d.label}: error samples: ${d.open_loop.error_samples.join(' | ')}`);
    }
  }

  Object.assign(results, {
    results: done,
    stub_again: stubAgain ?? null,
    verdicts,
    errors_seen: errorsSeen,
    finished_at: new Date().toISOString(),
    duration_ms: performance.now() - runT0,
  });
  const m = results.machine as ReturnType<typeof machine>;
  const lb = (results.load_before as ReturnType<typeof loadNow>).loadavg;
  const lf = (results.load_after as ReturnType<typeof loadNow>).loadavg;
  const head = [
    '# soulfra router benchmark',
    '',
    `${results.started_at}, ${secs(results.duration_ms as number)}; ${m.nproc} × ${m.cpu}, Bun ${m.bun}, Node ${nodeVersion()}, Linux ${m.kernel}`,
    `flags: --duration ${opts.duration} --connections ${opts.connections} --rate ${opts.rate} --warmup ${opts.warmup}${opts.skipPortkey ? ' --skip-portkey' : ''}${opts.skipProxy ? ' --skip-proxy' : ''}${opts.probe ? ' --probe' : ''}${opts.baseline ? ` --baseline ${opts.baseline}` : ''}`,
    `load average before: ${lb.join(', ')}; after: ${lf.join(', ')}`,
  ];
  const src = results.source as ReturnType<typeof sourceVersion>;
  head.push(
    src
      ? `source: ${src.commit.slice(0, 10)}${src.dirty.length ? ` + ${src.dirty.length} uncommitted source files` : ' (clean)'}`
      : 'source: not a git checkout',
  );
  if (results.aborted) head.push('', `ABORTED: ${results.aborted}`);
  process.stdout.write(`${[...head, ...report].join('\n')}\n`);

  const outFile =
    opts.out ??
    join(ROOT, 'bench', 'results', `router-${startedAt.toISOString().replace(/[:.]/g, '-')}.json`);
  mkdirSync(join(outFile, '..'), { recursive: true });
  writeFileSync(outFile, `${JSON.stringify(results, null, 2)}\n`);
  toStderr(`results: ${outFile}`);
  cleanup();
  uninstall();
  return exitCode;
}

// ---------------------------------------------------------------------------------------------

if (import.meta.main) {
  const [role, arg] = process.argv.slice(2);
  if (role === 'stub') stubRole();
  else if (role === 'proxy' && arg) proxyRole(arg);
  else if (role === 'openloop' && arg) await openLoopRole(arg);
  else {
    process.stderr.write('run it through the dispatcher: bun bench/run.ts router [flags]\n');
    process.exit(2);
  }
}
