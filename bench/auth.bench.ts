/**
 * `npm run bench -- auth`: the in-process cost of authenticating a platform request (API key,
 * session cookie) and checking a permission, measured per call with performance.now().
 * Target (issue 3): API key authentication + permission check p50 ≤ 50 µs.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { silentLogger } from '../src/app/index.ts';
import { createPlatform, openInstance } from '../src/flows/index.ts';
import {
  authenticate,
  can,
  createApiKey,
  createSession,
  DEFAULT_IDENTITY_SETTINGS,
} from '../src/identity/index.ts';

export const description =
  'in-process cost of API key / session authentication + permission check (target p50 ≤ 50 µs)';

function stats(samples: number[]) {
  const s = [...samples].sort((a, b) => a - b);
  const q = (p: number) => s[Math.min(s.length - 1, Math.floor(p * s.length))]!;
  return { p50: q(0.5), p90: q(0.9), p99: q(0.99), mean: s.reduce((a, b) => a + b, 0) / s.length };
}

export async function main(args: string[]): Promise<number> {
  const n = Number(args[args.indexOf('--iterations') + 1]) || 200_000;
  const dir = mkdtempSync(join(tmpdir(), 'soulfra-bench-auth-'));
  const inst = openInstance({ dataDir: join(dir, 'data'), log: silentLogger });
  try {
    const made = await createPlatform(
      inst.app,
      inst.tenancy,
      { slug: 'bench', template: 'creator' },
      'bench',
    );
    const id = made.platform.id;
    const lease = inst.app.platformDbs.acquire(id);
    const db = lease.db;
    const key = createApiKey(
      inst.app,
      db,
      { name: 'bench', scopes: ['ai:invoke'], rate_per_min: 1_000_000 },
      { userId: null, role: 'admin' },
      'bench',
    ).key;
    const owner = db.query<{ id: string }, []>("SELECT id FROM users WHERE role = 'owner'").get()!.id;
    const session = createSession(db, Date.now(), DEFAULT_IDENTITY_SETTINGS, {
      userId: owner,
      via: 'password',
      mfaPending: false,
      ip: null,
      userAgent: null,
    });
    const keyReq = new Request('http://bench.localhost/v1/chat/completions', {
      headers: { authorization: `Bearer ${key}` },
    });
    const cookieReq = new Request('http://bench.localhost/api/v1/me', {
      headers: { cookie: `sf_session=${session.token}` },
    });

    const cases: { name: string; fn: () => boolean }[] = [
      {
        name: 'API key auth + can(ai:invoke)',
        fn: () => can(authenticate(keyReq, db, id, Date.now(), true).principal, 'ai:invoke'),
      },
      {
        name: 'session cookie auth + can(users:read)',
        fn: () => can(authenticate(cookieReq, db, id, Date.now(), true).principal, 'users:read'),
      },
      {
        name: 'can() alone',
        fn: () =>
          can(
            { kind: 'api_key', keyId: 'k', userId: null, role: 'admin', scopes: ['ai:invoke'] },
            'ai:invoke',
          ),
      },
    ];
    console.log(
      `auth benchmark: ${n} iterations per case, after ${Math.min(n, 20_000)} warm-up calls (Bun ${Bun.version})`,
    );
    const rows: Record<string, unknown>[] = [];
    for (const c of cases) {
      for (let i = 0; i < Math.min(n, 20_000); i++) if (!c.fn()) throw new Error(`${c.name} denied`);
      const samples = new Array<number>(n);
      for (let i = 0; i < n; i++) {
        const t0 = performance.now();
        c.fn();
        samples[i] = (performance.now() - t0) * 1000;
      }
      const st = stats(samples);
      rows.push({
        case: c.name,
        'p50 µs': st.p50.toFixed(2),
        'p90 µs': st.p90.toFixed(2),
        'p99 µs': st.p99.toFixed(2),
        'mean µs': st.mean.toFixed(2),
      });
    }
    console.table(rows);
    const p50 = Number(rows[0]!['p50 µs']);
    console.log(
      `target: API key auth + permission p50 ≤ 50 µs → ${p50.toFixed(2)} µs: ${p50 <= 50 ? 'PASS' : 'MISS'} (${(50 / p50).toFixed(1)}× headroom)`,
    );
    lease.release();
    return 0;
  } finally {
    await inst.close();
    rmSync(dir, { recursive: true, force: true });
  }
}
