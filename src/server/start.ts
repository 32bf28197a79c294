import { chmodSync, rmSync } from 'node:fs';
import { endLiveStreams } from '../agents/index.ts';
import { type AiRuntime, createAiRuntime, Meter } from '../ai/index.ts';
import {
  type App,
  dataDirPaths,
  type InstanceConfig,
  Lifecycle,
  type Logger,
  lockDataDir,
  sweepTemporaryFiles,
} from '../app/index.ts';
import { type CreatePlatformResult, type Instance, openInstance } from '../flows/index.ts';
import {
  bootstrapOperator,
  LOCAL_ROOT,
  Mailer,
  type MailPlatforms,
  PASSWORD_COST,
  passwordCost,
} from '../identity/index.ts';
import { AppError } from '../shared/errors.ts';
import type { Clock } from '../shared/time.ts';
import type { Tenancy } from '../tenancy/index.ts';
import { MAX_BODY_LIMIT } from './errors.ts';
import { createHttpHandlers, type HttpHandlers } from './http.ts';
import { createMetrics, ensureMetricsToken, type Metrics, metricsNeedToken } from './metrics.ts';
import { loadWebBuild } from './web-assets.ts';

/** What `serve` needs. */
export interface ServeOptions {
  dataDir: string;
  config: InstanceConfig;
  log: Logger;
  /** Create the `demo` platform on first run. */
  demo?: boolean;
  /**
   * Whether /metrics needs the metrics token; by default, unless `config.host` is loopback.
   * Tests set it to check the public-listener behaviour without binding anything but 127.0.0.1.
   */
  metricsNeedToken?: boolean;
  /** The one clock of this process (tests pin it); the system clock by default. */
  clock?: Clock;
}

/** A running server. */
export interface RunningServer {
  app: App;
  tenancy: Tenancy;
  port: number;
  /** The operator console's URL (the bare base domain). */
  url: string;
  socketPath: string;
  /** Secrets made on first run, to print once. */
  firstRun: { email: string; password: string; token: string } | null;
  /** The metrics token, when this start made it (first run, or none stored yet), to show once. */
  metricsToken: string | null;
  demo: CreatePlatformResult | null;
  /** The AI runtime (providers, breakers) and its meter. */
  ai: { runtime: AiRuntime; meter: Meter };
  /** The mail queues' delivery. */
  mailer: Mailer;
  /** The server's components (lock, instance, AI runtime, meter, listeners), stopped in reverse by `stop()`. */
  lifecycle: Lifecycle;
  /** Graceful stop: no new connections, in-flight requests finish (bounded), databases close. */
  stop(): Promise<void>;
}

/** What `buildServerApp` needs: the data dir (locked by the caller), the config, a log and the clock. */
export interface ServerAppOptions {
  dataDir: string;
  config: InstanceConfig;
  log: Logger;
  clock?: Clock;
  /** Whether /metrics needs the metrics token (see `ServeOptions.metricsNeedToken`). */
  metricsNeedToken: boolean;
  /** Probe the AI providers every 10 s (default true; in-process tests that count calls turn it off). */
  healthLoop?: boolean;
  /** The environment the mailer reads `mail.smtp.auth.pass_env` from (process.env by default). */
  env?: Record<string, string | undefined>;
  /** Replaces the outbound guard's resolver or connector (in-process tests). */
  outbound?: Parameters<typeof openInstance>[0]['outbound'];
}

/** The server without its listeners: what `startServer` and the in-process test server share. */
export interface ServerApp extends Omit<Instance, 'close'> {
  metrics: Metrics;
  ai: { runtime: AiRuntime; meter: Meter };
  /** The mail queues' delivery (SMTP when `config.mail.smtp` names a server). */
  mailer: Mailer;
  /** The fetch handlers of the public listener and of the control socket. */
  handlers: HttpHandlers;
}

/**
 * Opens the instance and starts everything of the server but its listeners, each a component of
 * `life` (stopped in reverse with it): the instance (databases), the event dispatcher, the AI
 * runtime and its health loop, the meter; then builds the HTTP handlers on them. `startServer`
 * calls it after taking the data-dir lock and adds the listeners; `tests/inproc.ts` calls it
 * and sends requests to `handlers` directly.
 *
 * NB! A new component of the server (a mailer, a reconciler) goes here, in its place in the
 * order, so that the in-process tests run it too: `await life.add({ name, start, stop })`.
 * What the handlers need from it goes into `createHttpHandlers`' deps; what tests need, into
 * `ServerApp`.
 */
export async function buildServerApp(life: Lifecycle, opts: ServerAppOptions): Promise<ServerApp> {
  const { dataDir, config, log } = opts;
  if (passwordCost() !== PASSWORD_COST)
    log.warn('test hook: passwords are hashed at the test cost (SOULFRA_TEST_FAST_HASH=1, NODE_ENV=test)');
  // The App's own components (audit anchors' flush, then the databases) stop inside this one;
  // a leased platform handle may hold it up to 2 s.
  const inst = await life.add({
    name: 'instance',
    start: () => openInstance({ dataDir, config, log, clock: opts.clock, outbound: opts.outbound }),
    stop: (i) => i.close(),
    stopTimeoutMs: 2_000,
  });
  const { app, tenancy, actions } = inst;
  // Platform files where their rows say, orphans quarantined: before anything opens a
  // platform database (the dispatcher, the meter, a request).
  await life.add({
    name: 'platform files reconciler',
    start: () => {
      tenancy.reconcileFiles();
    },
  });
  // The durable-event dispatcher: after the databases, before anything that writes events, so
  // it stops after the meter's last flush and before the databases close. A subscriber that
  // never settles is abandoned after the dispatcher's grace (2 s); the timeout is the backstop.
  await life.add({
    name: 'events dispatcher',
    start: () => app.events.start(),
    stop: () => app.events.stop(),
    stopTimeoutMs: EVENTS_STOP_TIMEOUT_MS,
  });
  const metrics = createMetrics(app, tenancy, { needToken: opts.metricsNeedToken });
  const runtime = await life.add({
    name: 'AI runtime',
    start: () => createAiRuntime(config, log, app.clock, metrics.ai),
    stop: (r) => r.close(),
  });
  if (opts.healthLoop !== false)
    await life.add({ name: 'AI health loop', start: () => runtime.startHealthLoop() });
  // Usage still buffered is written before the databases close (stopped before them).
  const meter = await life.add({ name: 'meter', start: () => new Meter(app), stop: (m) => m.close() });
  const ai = { runtime, meter };
  // Delivers the platforms' mail queues (or says at start that nothing is delivered); stopped
  // before the meter and the databases, after the listeners.
  const mailer = await life.add({
    name: 'mailer',
    start: () => {
      const m = new Mailer(app, mailPlatformsOf(tenancy), { env: opts.env });
      m.start();
      return m;
    },
    stop: (m) => m.stop(),
  });
  // The browser apps' build: embedded in the executable, or web/dist of a checkout.
  const web = await loadWebBuild();
  if (!web)
    log.warn('the web build is missing: the console, admin and portal answer 503 (run `npm run build:web`)');
  const handlers = createHttpHandlers({ app, tenancy, actions, metrics, ai, mailer, web });
  return { app, tenancy, actions, control: inst.control, metrics, ai, mailer, handlers };
}

/** How long stopping the event dispatcher may take before teardown goes on without it. */
export const EVENTS_STOP_TIMEOUT_MS = 5_000;

/**
 * Starts soulfra on a data dir: takes the data-dir lock, opens the databases, listens on TCP
 * and on the owner-only control socket, creates the operator admin (first run) and the demo.
 *
 * Every resource is a component of one `Lifecycle`, started in the order below and stopped in
 * reverse from that one place, by `stop()` and by a start that fails half-way alike.
 */
export async function startServer(opts: ServeOptions): Promise<RunningServer> {
  const { dataDir, config, log } = opts;
  const paths = dataDirPaths(dataDir);
  const life = new Lifecycle(log);
  try {
    // Released last: nothing of this process touches the data dir after it.
    await life.add({
      name: 'data-dir lock',
      start: () => {
        const held = lockDataDir(dataDir);
        if ('heldBy' in held) {
          throw new AppError(
            'datadir.locked',
            `data dir ${dataDir} is in use by another soulfra process${held.heldBy ? ` (pid ${held.heldBy})` : ''}`,
            409,
          );
        }
        return held.lock;
      },
      stop: (lock) => lock.release(),
    });
    const swept = sweepTemporaryFiles(dataDir);
    if (swept.length)
      log.warn('removed half-built platform files from an earlier crash', { files: swept.join(',') });
    const { app, tenancy, actions, ai, mailer, handlers } = await buildServerApp(life, {
      dataDir,
      config,
      log,
      clock: opts.clock,
      metricsNeedToken: opts.metricsNeedToken ?? metricsNeedToken(config.host),
    });

    // The links every page and mail carries come from the stored public URL: the configured
    // port until the listener says which one it bound (port 0), then that one.
    const publicUrlFor = (port: number) =>
      config.public_url?.replace(/\/$/, '') ?? `http://${config.base_domain}${port === 80 ? '' : `:${port}`}`;
    tenancy.updateSettings({ base_domain: config.base_domain, public_url: publicUrlFor(config.port) });
    // The operator admin, the metrics token and the demo exist before the listener serves a
    // request: no 404 for the demo's host, no console without its admin, even for a moment.
    const {
      firstRun,
      metricsToken,
      demo: demoMade,
    } = await life.add({
      name: 'first-run setup',
      start: async () => {
        const firstRun = await bootstrapOperator(app, `admin@${config.base_domain}`);
        const metricsToken = ensureMetricsToken(app);
        const demo =
          opts.demo && !tenancy.registry.bySlug('demo')
            ? await actions.createPlatform(LOCAL_ROOT, {
                slug: 'demo',
                template: 'creator',
                name: 'Soulfra Demo',
              })
            : null;
        return { firstRun, metricsToken, demo };
      },
    });

    const tcp = await life.add({
      name: 'TCP listener',
      start: () =>
        Bun.serve({
          hostname: config.host,
          port: config.port,
          // Bun refuses bodies past the largest any route takes; each route's own cap is checked
          // before routing (server/errors.ts `bodyLimitFor`).
          maxRequestBodySize: MAX_BODY_LIMIT,
          fetch: handlers.fetch,
          error: (e) => {
            log.error('request failed', { err: e.message });
            return Response.json({ error: { code: 'internal', message: 'internal error' } }, { status: 500 });
          },
        }),
      stop: (server) => server.stop(true),
    });
    const port = tcp.port ?? config.port;
    const publicUrl = publicUrlFor(port);
    if (port !== config.port)
      tenancy.updateSettings({ base_domain: config.base_domain, public_url: publicUrl });
    // The demo's URL as it is now (the bound port).
    const demo: CreatePlatformResult | null = demoMade
      ? { ...demoMade, url: tenancy.get('demo').url, platform: tenancy.get('demo') }
      : null;

    const sock = await life.add({
      name: 'control socket',
      start: () => {
        // A stale file from a crash is ours to replace (we hold the lock).
        rmSync(paths.socket, { force: true });
        const server = Bun.serve({ unix: paths.socket, fetch: handlers.socketFetch });
        chmodSync(paths.socket, 0o600);
        return server;
      },
      stop: async (server) => {
        await server.stop(true);
        rmSync(paths.socket, { force: true });
      },
    });
    // Stopped first: no new connections, in-flight requests finish (bounded), then the rest.
    await life.add({
      name: 'drain',
      stop: () => {
        // Open conversation event streams never finish on their own: they end first.
        endLiveStreams(app.state);
        return drain([tcp, sock], config.shutdown_timeout_ms, log);
      },
    });

    let stopping: Promise<void> | null = null;
    return {
      app,
      tenancy,
      port,
      url: `${publicUrl}/`,
      socketPath: paths.socket,
      firstRun,
      metricsToken,
      demo,
      ai,
      mailer,
      lifecycle: life,
      stop() {
        stopping ??= (async () => {
          log.info('stopping: finishing in-flight requests', { timeout_ms: config.shutdown_timeout_ms });
          await life.stop();
          log.info('stopped');
        })();
        return stopping;
      },
    };
  } catch (e) {
    await life.stop();
    throw e;
  }
}

/** The platforms whose mail the mailer delivers: every one not archived. */
export function mailPlatformsOf(tenancy: Tenancy): MailPlatforms {
  return {
    ids: () =>
      tenancy
        .list()
        .filter((p) => p.status !== 'archived')
        .map((p) => p.id),
    live: (id) => {
      const h = tenancy.registry.byId(id);
      return h !== undefined && h.status !== 'archived';
    },
    blueprintOf: (id) => tenancy.blueprintOf(id),
  };
}

/** Graceful stop of the listeners, bounded by `timeoutMs`; then their connections are closed. */
async function drain(servers: ReturnType<typeof Bun.serve>[], timeoutMs: number, log: Logger): Promise<void> {
  const graceful = Promise.all(servers.map((s) => s.stop(false))).then(() => true);
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timedOut = new Promise<boolean>((r) => {
    timer = setTimeout(() => r(false), timeoutMs).unref();
  });
  const finished = await Promise.race([graceful, timedOut]).finally(() => clearTimeout(timer));
  if (!finished) {
    log.warn('in-flight requests did not finish in time; closing their connections');
    await Promise.all(servers.map((s) => s.stop(true)));
  }
}
