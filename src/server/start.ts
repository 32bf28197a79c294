import { chmodSync, rmSync } from 'node:fs';
import { type AiRuntime, createAiRuntime, Meter } from '../ai/index.ts';
import {
  type App,
  dataDirPaths,
  type InstanceConfig,
  type Logger,
  lockDataDir,
  sweepTemporaryFiles,
} from '../app/index.ts';
import { type CreatePlatformResult, openInstance } from '../flows/index.ts';
import { bootstrapOperator, LOCAL_ROOT } from '../identity/index.ts';
import { AppError } from '../shared/errors.ts';
import type { Tenancy } from '../tenancy/index.ts';
import { MAX_BODY_LIMIT } from './errors.ts';
import { createHttpHandlers } from './http.ts';
import { createMetrics, ensureMetricsToken, metricsNeedToken } from './metrics.ts';

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
  /** Graceful stop: no new connections, in-flight requests finish (bounded), databases close. */
  stop(): Promise<void>;
}

/**
 * Starts soulfra on a data dir: takes the data-dir lock, opens the databases, listens on TCP
 * and on the owner-only control socket, creates the operator admin (first run) and the demo.
 */
export async function startServer(opts: ServeOptions): Promise<RunningServer> {
  const { dataDir, config, log } = opts;
  const held = lockDataDir(dataDir);
  if ('heldBy' in held) {
    throw new AppError(
      'datadir.locked',
      `data dir ${dataDir} is in use by another soulfra process${held.heldBy ? ` (pid ${held.heldBy})` : ''}`,
      409,
    );
  }
  const lock = held.lock;
  const paths = dataDirPaths(dataDir);
  let inst: ReturnType<typeof openInstance> | undefined;
  let tcp: ReturnType<typeof Bun.serve> | undefined;
  let sock: ReturnType<typeof Bun.serve> | undefined;
  let ai: { runtime: AiRuntime; meter: Meter } | undefined;
  try {
    const swept = sweepTemporaryFiles(dataDir);
    if (swept.length)
      log.warn('removed half-built platform files from an earlier crash', { files: swept.join(',') });
    inst = openInstance({ dataDir, config, log });
    const { app, tenancy, actions } = inst;
    const metrics = createMetrics(app, tenancy, {
      needToken: opts.metricsNeedToken ?? metricsNeedToken(config.host),
    });
    const runtime = await createAiRuntime(config, log, app.clock);
    const meter = new Meter(app);
    ai = { runtime, meter };
    runtime.startHealthLoop();
    const handlers = createHttpHandlers({ app, tenancy, actions, metrics, ai });

    tcp = Bun.serve({
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
    });
    const port = tcp.port ?? config.port;
    const publicUrl =
      config.public_url?.replace(/\/$/, '') ?? `http://${config.base_domain}${port === 80 ? '' : `:${port}`}`;
    tenancy.updateSettings({ base_domain: config.base_domain, public_url: publicUrl });

    // The control socket: a stale file from a crash is ours to replace (we hold the lock).
    rmSync(paths.socket, { force: true });
    sock = Bun.serve({ unix: paths.socket, fetch: handlers.socketFetch });
    chmodSync(paths.socket, 0o600);

    const firstRun = await bootstrapOperator(app, `admin@${config.base_domain}`);
    const metricsToken = ensureMetricsToken(app);
    let demo: CreatePlatformResult | null = null;
    if (opts.demo && !tenancy.registry.bySlug('demo')) {
      demo = await actions.createPlatform(LOCAL_ROOT, {
        slug: 'demo',
        template: 'creator',
        name: 'Soulfra Demo',
      });
    }

    let stopping: Promise<void> | null = null;
    const tcpServer = tcp;
    const sockServer = sock;
    const instance = inst;
    const aiRuntime = ai;
    return {
      app,
      tenancy,
      port,
      url: `${publicUrl}/`,
      socketPath: paths.socket,
      firstRun,
      metricsToken,
      demo,
      ai: aiRuntime,
      stop() {
        stopping ??= (async () => {
          log.info('stopping: finishing in-flight requests', { timeout_ms: config.shutdown_timeout_ms });
          const graceful = Promise.all([tcpServer.stop(false), sockServer.stop(false)]).then(() => true);
          const timedOut = new Promise<boolean>((r) =>
            setTimeout(() => r(false), config.shutdown_timeout_ms).unref(),
          );
          if (!(await Promise.race([graceful, timedOut]))) {
            log.warn('in-flight requests did not finish in time; closing their connections');
            await Promise.all([tcpServer.stop(true), sockServer.stop(true)]);
          }
          // Usage still buffered is written before the databases close.
          await aiRuntime.meter.close();
          await aiRuntime.runtime.close();
          await Promise.race([instance.close(), new Promise((r) => setTimeout(r, 2_000).unref())]);
          rmSync(paths.socket, { force: true });
          lock.release();
          log.info('stopped');
        })();
        return stopping;
      },
    };
  } catch (e) {
    await tcp?.stop(true);
    await sock?.stop(true);
    await ai?.meter.close();
    await ai?.runtime.close();
    await inst?.close();
    rmSync(paths.socket, { force: true });
    lock.release();
    throw e;
  }
}
