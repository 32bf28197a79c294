import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { App } from '../app/index.ts';
import type { Tenancy } from '../tenancy/index.ts';

/** The instance's Prometheus metrics (prom-client renders the text format). */
export function createMetrics(app: App, tenancy: Tenancy) {
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
  return {
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
