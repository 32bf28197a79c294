import { isIP } from 'node:net';
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import { createAiMetrics } from '../ai/index.ts';
import type { App } from '../app/index.ts';
import { randomToken, safeEqual, sha256Hex } from '../shared/crypto.ts';
import { insertSettingOnce, settingValue, type Tenancy } from '../tenancy/index.ts';

/** Metrics tokens start with this, so secret scanners and people can tell them apart. */
export const METRICS_TOKEN_PREFIX = 'sfm_';
const STORED_KEY = 'metrics_token_sha256';

/**
 * Whether /metrics needs the metrics token when serve listens on `host`: no only for loopback
 * (127.0.0.0/8, ::1, IPv4-mapped loopback, `localhost`), where only this machine reaches it;
 * yes for everything else, including the wildcard addresses and any other name.
 */
export function metricsNeedToken(host: string): boolean {
  const h = host
    .trim()
    .toLowerCase()
    .replace(/^\[(.*)\]$/, '$1');
  if (h === 'localhost') return false;
  if (isIP(h) === 4) return !h.startsWith('127.');
  if (isIP(h) === 6) {
    // The URL parser writes IPv6 in canonical form: ::1, and ::ffff:7fxx:xxxx for 127.x.y.z.
    let canonical = '';
    try {
      canonical = new URL(`http://[${h}]/`).hostname;
    } catch {
      return true; // with a zone id (fe80::1%eth0): a link, not loopback
    }
    return !(canonical === '[::1]' || canonical.startsWith('[::ffff:7f'));
  }
  return true;
}

/**
 * Makes and stores the instance's metrics token when there is none (first run, or the first
 * start of a version that has them) and returns it, to be shown once; null when one is stored
 * already or `metrics_token` is set in the config. Only its SHA-256 is kept.
 */
export function ensureMetricsToken(app: App): string | null {
  if (app.config.metrics_token) return null;
  const token = METRICS_TOKEN_PREFIX + randomToken(32);
  if (!insertSettingOnce(app.control, STORED_KEY, sha256Hex(token))) return null;
  app.audit.append(app.control, {
    actor: 'system',
    action: 'metrics_token.created',
    target: 'instance',
    details: {},
  });
  return token;
}

/**
 * The instance's Prometheus metrics (prom-client renders the text format). `needToken` says
 * whether scrapes must present the metrics token (see `metricsNeedToken`); a `metrics_token`
 * set in the config is always required.
 */
export function createMetrics(app: App, tenancy: Tenancy, opts: { needToken: boolean }) {
  const registry = new Registry();
  const requests = new Counter({
    name: 'soulfra_http_requests_total',
    help: 'HTTP requests by host kind, route pattern and status',
    labelNames: ['host_kind', 'route', 'status'] as const,
    registers: [registry],
  });
  const latency = new Histogram({
    name: 'soulfra_http_request_duration_seconds',
    help: 'Time to produce the response head, by host kind and route pattern',
    labelNames: ['host_kind', 'route'] as const,
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    registers: [registry],
  });
  new Gauge({
    name: 'soulfra_platforms',
    help: 'Platforms by status',
    labelNames: ['status'] as const,
    registers: [registry],
    collect() {
      for (const [status, n] of Object.entries(tenancy.countByStatus())) this.set({ status }, n);
    },
  });
  new Gauge({
    name: 'soulfra_platform_db_open_handles',
    help: 'Platform databases open in the pool (including ones closing after their last request)',
    registers: [registry],
    collect() {
      this.set(app.platformDbs.stats().open);
    },
  });
  new Gauge({
    name: 'soulfra_platform_db_pool_capacity',
    help: 'Platform databases the pool keeps open at most while idle',
    registers: [registry],
    collect() {
      this.set(app.platformDbs.max);
    },
  });
  new Gauge({
    name: 'soulfra_process_resident_memory_bytes',
    help: 'Resident set size of this process',
    registers: [registry],
    collect() {
      this.set(process.memoryUsage().rss);
    },
  });
  // The router's series (AI calls, time to first byte, tokens), counted by the AI runtime.
  const ai = createAiMetrics(registry);
  return {
    ai,
    /**
     * Whether a scrape with this Authorization header may read the metrics; `proxied`: it came
     * through a proxy, so a loopback listener does not make it local.
     */
    admits(authorization: string | null, proxied = false): boolean {
      const configured = app.config.metrics_token;
      if (!configured && !opts.needToken && !proxied) return true;
      const m = authorization ? /^Bearer\s+(\S{1,200})$/i.exec(authorization) : null;
      if (!m) return false;
      if (configured) return safeEqual(m[1]!, configured);
      const stored = settingValue(app.control, STORED_KEY);
      return stored !== null && safeEqual(sha256Hex(m[1]!), stored);
    },
    /** Records one request. */
    observe(hostKind: string, route: string, status: number, seconds: number): void {
      requests.inc({ host_kind: hostKind, route, status: String(status) });
      latency.observe({ host_kind: hostKind, route }, seconds);
    },
    /** The Prometheus text exposition. */
    render: () => registry.metrics(),
    contentType: registry.contentType,
  };
}

/** The metrics' type. */
export type Metrics = ReturnType<typeof createMetrics>;
