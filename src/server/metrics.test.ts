import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { join } from 'node:path';
import { hostFetch, tempDir } from '../../tests/helpers.ts';
import { DEFAULT_CONFIG, type InstanceConfig, silentLogger } from '../app/index.ts';
import { METRICS_TOKEN_PREFIX, metricsNeedToken } from './metrics.ts';
import { type RunningServer, startServer } from './start.ts';

// Issue 8 point 12: /metrics is open only while serve listens on loopback; on any other
// address it needs the metrics token (made at first run, or `metrics_token` in the config).

describe('metricsNeedToken: which listen addresses need the metrics token', () => {
  const cases: [host: string, needsToken: boolean][] = [
    ['127.0.0.1', false],
    ['127.1.2.3', false],
    ['::1', false],
    ['[::1]', false],
    ['0:0:0:0:0:0:0:1', false],
    ['::ffff:127.0.0.1', false],
    ['localhost', false],
    ['LOCALHOST', false],
    ['0.0.0.0', true],
    ['::', true],
    ['[::]', true],
    ['::0', true],
    ['10.0.0.5', true],
    ['192.168.1.10', true],
    ['::ffff:10.0.0.5', true],
    ['fe80::1%eth0', true],
    ['2001:db8::1', true],
    ['ai.example.com', true],
    ['localhost.example.com', true],
    ['127.1', true], // not dotted-quad loopback as Bun would read it everywhere: the safe answer
    ['0', true],
  ];
  for (const [host, needs] of cases) {
    test(`${host} → ${needs ? 'token required' : 'open'}`, () => {
      expect(metricsNeedToken(host)).toBe(needs);
    });
  }
});

async function serve(
  extra: Partial<InstanceConfig>,
  needToken?: boolean,
): Promise<{ s: RunningServer; base: string; cleanup(): Promise<void> }> {
  const t = tempDir();
  const config: InstanceConfig = {
    ...DEFAULT_CONFIG,
    port: 0,
    host: '127.0.0.1',
    shutdown_timeout_ms: 2_000,
    ...extra,
  };
  const s = await startServer({
    dataDir: join(t.dir, 'data'),
    config,
    log: silentLogger,
    ...(needToken === undefined ? {} : { metricsNeedToken: needToken }),
  });
  return {
    s,
    base: `http://127.0.0.1:${s.port}`,
    async cleanup() {
      await s.stop();
      t.cleanup();
    },
  };
}
const scrape = (base: string, headers: Record<string, string> = {}, path = '/metrics') =>
  hostFetch(base, 'localhost', path, { headers });

describe('/metrics on a loopback listener (config host 127.0.0.1)', () => {
  let env: Awaited<ReturnType<typeof serve>>;
  beforeAll(async () => {
    env = await serve({});
  });
  afterAll(async () => {
    await env.cleanup();
  });

  test('is open without a token; the first run made a metrics token anyway', async () => {
    const r = await scrape(env.base);
    expect(r.status).toBe(200);
    expect(await r.text()).toContain('# TYPE soulfra_http_requests_total counter');
    expect(env.s.metricsToken).toStartWith(METRICS_TOKEN_PREFIX);
  });
});

describe('attacks: /metrics on a loopback listener reached through a reverse proxy', () => {
  let env: Awaited<ReturnType<typeof serve>>;
  let proxied: Awaited<ReturnType<typeof serve>>;
  beforeAll(async () => {
    env = await serve({});
    // The proxy's own socket is trusted: every request from it came from somewhere else.
    proxied = await serve({ trusted_proxies: ['127.0.0.1/32'] });
  });
  afterAll(async () => {
    await env.cleanup();
    await proxied.cleanup();
  });

  const forwarded: { name: string; headers: Record<string, string> }[] = [
    { name: 'X-Forwarded-For', headers: { 'x-forwarded-for': '203.0.113.9' } },
    { name: 'Forwarded', headers: { forwarded: 'for=203.0.113.9;proto=https' } },
    { name: 'X-Real-IP', headers: { 'x-real-ip': '203.0.113.9' } },
  ];
  for (const f of forwarded) {
    test(`a scrape carrying ${f.name} needs the token (401), and passes with it`, async () => {
      expect((await scrape(env.base, f.headers)).status).toBe(401);
      const ok = await scrape(env.base, { ...f.headers, authorization: `Bearer ${env.s.metricsToken}` });
      expect(ok.status).toBe(200);
    });
  }

  test('from a trusted proxy, even without forwarding headers, the token is needed', async () => {
    expect((await scrape(proxied.base)).status).toBe(401);
    expect((await scrape(proxied.base, { authorization: `Bearer ${proxied.s.metricsToken}` })).status).toBe(
      200,
    );
  });

  test('a direct local scrape with no forwarding header stays open', async () => {
    expect((await scrape(env.base)).status).toBe(200);
  });
});

describe('attacks: /metrics when serve listens on a public address (decision injected)', () => {
  let env: Awaited<ReturnType<typeof serve>>;
  let token: string;
  let operatorToken: string;
  beforeAll(async () => {
    env = await serve({}, true);
    token = env.s.metricsToken!;
    operatorToken = env.s.firstRun!.token;
  });
  afterAll(async () => {
    await env.cleanup();
  });

  const cases: { name: string; headers: () => Record<string, string>; path?: () => string }[] = [
    { name: 'no Authorization', headers: () => ({}) },
    { name: 'an empty bearer', headers: () => ({ authorization: 'Bearer ' }) },
    { name: 'a wrong token', headers: () => ({ authorization: `Bearer ${METRICS_TOKEN_PREFIX}guess` }) },
    { name: 'the token with a byte added', headers: () => ({ authorization: `Bearer ${token}x` }) },
    { name: 'the token cut short', headers: () => ({ authorization: `Bearer ${token.slice(0, -1)}` }) },
    { name: 'the operator API token instead', headers: () => ({ authorization: `Bearer ${operatorToken}` }) },
    {
      name: 'the token as Basic credentials',
      headers: () => ({ authorization: `Basic ${btoa(`x:${token}`)}` }),
    },
    { name: 'the token bare, without a scheme', headers: () => ({ authorization: token }) },
    { name: 'the token in the query string', headers: () => ({}), path: () => `/metrics?token=${token}` },
    { name: 'the token as a cookie', headers: () => ({ cookie: `metrics_token=${token}` }) },
  ];
  for (const c of cases) {
    test(`${c.name} → 401 auth.required, no metrics`, async () => {
      const r = await scrape(env.base, c.headers(), c.path?.());
      const text = await r.text();
      expect(r.status).toBe(401);
      expect((JSON.parse(text) as { error: { code: string } }).error.code).toBe('auth.required');
      expect(text).not.toContain('soulfra_');
    });
  }

  test('the metrics token → 200 (scheme case-insensitive)', async () => {
    for (const scheme of ['Bearer', 'bearer']) {
      const r = await scrape(env.base, { authorization: `${scheme} ${token}` });
      expect({ scheme, status: r.status }).toEqual({ scheme, status: 200 });
      expect(await r.text()).toContain('soulfra_platforms');
    }
  });

  test('only its hash is stored', () => {
    const rows = env.s.app.control.query<{ value: string }, []>('SELECT value FROM settings').all();
    expect(rows.some((r) => r.value.includes(token))).toBe(false);
  });
});

describe('/metrics with metrics_token set in the config', () => {
  let env: Awaited<ReturnType<typeof serve>>;
  const configured = 'configured-metrics-token-0123456789';
  beforeAll(async () => {
    env = await serve({ metrics_token: configured }, true);
  });
  afterAll(async () => {
    await env.cleanup();
  });

  test('the configured token opens it; none is made at first run', async () => {
    expect(env.s.metricsToken).toBeNull();
    expect((await scrape(env.base)).status).toBe(401);
    expect((await scrape(env.base, { authorization: `Bearer ${configured}x` })).status).toBe(401);
    expect((await scrape(env.base, { authorization: `Bearer ${configured}` })).status).toBe(200);
  });
});
