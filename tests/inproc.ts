import { join } from 'node:path';
import {
  DEFAULT_CONFIG,
  type InstanceConfig,
  Lifecycle,
  type Logger,
  silentLogger,
} from '../src/app/index.ts';
import type { Instance } from '../src/flows/index.ts';
import { bootstrapOperator } from '../src/identity/index.ts';
import type { HttpHandlers } from '../src/server/http.ts';
import { buildServerApp, type ServerApp } from '../src/server/start.ts';
import { tempDir } from './helpers.ts';

/** A clock tests can pin and move. */
export interface TestClock {
  now(): number;
  /** Pins the time (epoch ms). */
  set(ms: number): void;
  /** Moves the time forward by `ms`. */
  advance(ms: number): void;
}

/** A settable clock starting at `start` (epoch ms). */
export function testClock(start = Date.UTC(2026, 0, 15, 12, 0, 0)): TestClock {
  let t = start;
  return {
    now: () => t,
    set: (ms) => {
      t = ms;
    },
    advance: (ms) => {
      t += ms;
    },
  };
}

/** The server in this process, with no socket: requests go straight to its fetch handler. */
export interface InProcessServer extends Instance {
  handlers: HttpHandlers;
  clock: TestClock;
  dataDir: string;
  /** The operator admin and API token made at first run. */
  operator: { email: string; password: string; token: string };
  /** The client address every request appears to come from (the socket peer's). */
  peer: string;
  ai: ServerApp['ai'];
  /** The components `buildServerApp` started (stopped in reverse by `close()`). */
  lifecycle: Lifecycle;
  /** The mail queues' delivery (SMTP when `config.mail.smtp` names a server). */
  mailer: ServerApp['mailer'];
  /** Sends a request to the public listener's handler (as Bun.serve would, peer = `peer`). */
  fetch(request: Request): Promise<Response>;
  /**
   * A request to `host` (the Host header; any port) at `path`. The URL is built on the host, as
   * a client's would be; `init.headers` may override the Host header.
   */
  request(host: string, path: string, init?: RequestInit): Promise<Response>;
  /** Operator API call (`/_operator/api<path>`) on the operator host with the admin's token. */
  operatorApi(method: string, path: string, body?: unknown, token?: string): Promise<Response>;
  close(): Promise<void>;
}

/**
 * The server of `serve` over a fresh temporary data dir, with a pinned clock and a fixed client
 * address, and no listener: `buildServerApp`, the wiring `startServer` uses (instance, event
 * dispatcher, AI runtime, meter, handlers), minus the data-dir lock, Bun.serve, the control
 * socket and the AI health loop (tests that need a socket, the Host header as sent, or HTTP
 * framing use `startTestServer`).
 */
export async function inProcessServer(
  opts: {
    config?: Partial<InstanceConfig>;
    clock?: TestClock;
    peer?: string;
    metricsNeedToken?: boolean;
    /** The logger of the App and the AI runtime (silent by default). */
    log?: Logger;
    /** The environment the mailer reads `mail.smtp.auth.pass_env` from (process.env by default). */
    env?: Record<string, string | undefined>;
    /** The outbound guard's resolver and connector (tests that must open no socket to a non-loopback address). */
    outbound?: Parameters<typeof buildServerApp>[1]['outbound'];
  } = {},
): Promise<InProcessServer> {
  const tmp = tempDir('soulfra-inproc-');
  const dataDir = join(tmp.dir, 'data');
  const config: InstanceConfig = { ...DEFAULT_CONFIG, host: '127.0.0.1', port: 0, ...opts.config };
  const clock = opts.clock ?? testClock();
  const life = new Lifecycle(silentLogger);
  let built: ServerApp;
  let operator: InProcessServer['operator'];
  try {
    built = await buildServerApp(life, {
      dataDir,
      config,
      log: opts.log ?? silentLogger,
      clock,
      metricsNeedToken: opts.metricsNeedToken ?? false,
      healthLoop: false,
      env: opts.env,
      outbound: opts.outbound,
    });
    // As serve does once it listens: the stored public URL that every link is built from.
    built.tenancy.updateSettings({
      base_domain: config.base_domain,
      public_url: config.public_url?.replace(/\/$/, '') ?? `http://${config.base_domain}:8080`,
    });
    operator = (await bootstrapOperator(built.app, `admin@${config.base_domain}`))!;
  } catch (e) {
    await life.stop();
    tmp.cleanup();
    throw e;
  }
  const { handlers, ai, mailer } = built;
  const peer = opts.peer ?? '127.0.0.1';
  const socket = { requestIP: () => ({ address: peer }) };
  const fetch = (request: Request) => handlers.fetch(request, socket);
  const request = (host: string, path: string, init: RequestInit = {}) => {
    const headers = new Headers(init.headers);
    if (!headers.has('host')) headers.set('host', host);
    // The URL is built on the Host when it is one a URL can hold; the handler routes by the header.
    const h = headers.get('host')!;
    const authority = /^[A-Za-z0-9.-]+(?::\d+)?$|^\[[0-9A-Fa-f:.]+\](?::\d+)?$/.test(h) ? h : 'localhost';
    return fetch(new Request(`http://${authority}${path}`, { ...init, headers }));
  };
  let closed: Promise<void> | null = null;
  return {
    app: built.app,
    tenancy: built.tenancy,
    actions: built.actions,
    control: built.control,
    handlers,
    lifecycle: life,
    clock,
    dataDir,
    operator,
    peer,
    ai,
    mailer,
    fetch,
    request,
    operatorApi: (method, path, body, token = operator.token) =>
      request('localhost', `/_operator/api${path}`, {
        method,
        headers: {
          authorization: `Bearer ${token}`,
          ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        },
        body: body === undefined ? undefined : JSON.stringify(body),
      }),
    close() {
      closed ??= (async () => {
        await life.stop();
        tmp.cleanup();
      })();
      return closed;
    },
  };
}

/**
 * An in-process server with one platform made through the operator API, and its owner's
 * credentials (the in-process twin of `serverWithPlatform` in tests/platform-client.ts).
 */
export async function inProcessWithPlatform(
  slug = 'acme',
  body: Record<string, unknown> = {},
  opts: Parameters<typeof inProcessServer>[0] = {},
) {
  const s = await inProcessServer(opts);
  const res = await s.operatorApi('POST', '/platforms', { slug, ...body });
  if (res.status !== 201) throw new Error(`create ${slug}: ${res.status} ${await res.text()}`);
  const created = (await res.json()) as {
    admin: { email: string; password: string };
    platform: { id: string };
  };
  return { s, host: `${slug}.localhost`, owner: created.admin, platformId: created.platform.id };
}
