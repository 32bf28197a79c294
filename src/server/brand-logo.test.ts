/**
 * The uploaded logo (issue 11 item 2): stored in the platform's database, branding.logo points
 * at it by a platform-local URL, served immutable; the favicon and manifest come from it, and a
 * white-labeled platform's never name Soulfra. Attack table: script-carrying files, oversize
 * bodies, no session, a member, and another platform's host.
 */
import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { type InProcessServer, inProcessServer } from '../../tests/inproc.ts';

let s: InProcessServer;
const owners: Record<string, { email: string; password: string }> = {};
const PNG = Uint8Array.from(
  atob('iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=='),
  (c) => c.charCodeAt(0),
);
const GIF = new TextEncoder().encode('GIF89a\x01\x00\x01\x00\x00\x00\x00;');

interface Session {
  host: string;
  cookie: string;
  csrf: string;
}
const sessions: Record<string, Session> = {};

async function signIn(slug: string, email: string, password: string): Promise<Session> {
  const host = `${slug}.localhost`;
  const r = await s.request(host, '/api/v1/auth/login', {
    method: 'POST',
    headers: { 'content-type': 'application/json', origin: `http://${host}:8080` },
    body: JSON.stringify({ email, password }),
  });
  expect(r.status).toBe(200);
  return {
    host,
    cookie: (r.headers.get('set-cookie') ?? '').split(';')[0]!,
    csrf: ((await r.json()) as { csrf_token: string }).csrf_token,
  };
}

const upload = (
  se: Session | null,
  bytes: Uint8Array,
  type = 'image/png',
  host = se?.host ?? 'lg.localhost',
) =>
  s.request(host, '/api/v1/platform/logo', {
    method: 'POST',
    headers: { 'content-type': type, ...(se ? { cookie: se.cookie, 'x-csrf-token': se.csrf } : {}) },
    body: bytes as Uint8Array<ArrayBuffer>,
  });

beforeAll(async () => {
  s = await inProcessServer();
  for (const [slug, blueprint] of [
    ['lg', undefined],
    ['wl', { features: { white_label: true } }],
  ] as const) {
    const r = await s.operatorApi('POST', '/platforms', {
      slug,
      // White-label needs a plan that includes it (Business: the business template's).
      template: blueprint ? 'business' : 'creator',
      name: slug === 'wl' ? 'Acme Private' : 'Logo Co',
      ...(blueprint ? { blueprint } : {}),
    });
    expect(r.status).toBe(201);
    owners[slug] = ((await r.json()) as { admin: { email: string; password: string } }).admin;
    sessions[slug] = await signIn(slug, owners[slug]!.email, owners[slug]!.password);
  }
});
afterAll(async () => {
  await s.close();
});

describe('the uploaded logo', () => {
  test('is stored, pointed at by branding.logo, served immutable, and is the favicon and manifest icon', async () => {
    const before = await s.request('lg.localhost', '/favicon.ico');
    expect(before.headers.get('content-type')).toBe('image/svg+xml');
    expect(await before.text()).toContain('>L</text>');
    const r = await upload(sessions.lg!, PNG);
    expect(r.status).toBe(201);
    const body = (await r.json()) as { logo: string; content_type: string };
    expect(body.logo).toMatch(/^\/brand\/logo-[0-9a-f]{16}\.png$/);
    expect(body.content_type).toBe('image/png');
    const p = (await (await s.operatorApi('GET', '/platforms/lg')).json()) as {
      blueprint: { identity: { branding: { logo: string } } };
    };
    expect(p.blueprint.identity.branding.logo).toBe(body.logo);
    const got = await s.request('lg.localhost', body.logo);
    expect(got.status).toBe(200);
    expect(got.headers.get('content-type')).toBe('image/png');
    expect(got.headers.get('cache-control')).toContain('immutable');
    expect(got.headers.get('x-content-type-options')).toBe('nosniff');
    expect(new Uint8Array(await got.arrayBuffer())).toEqual(PNG);
    const icon = await s.request('lg.localhost', '/favicon.ico');
    expect(icon.headers.get('content-type')).toBe('image/png');
    expect(new Uint8Array(await icon.arrayBuffer())).toEqual(PNG);
    const m = (await (await s.request('lg.localhost', '/manifest.webmanifest')).json()) as {
      name: string;
      icons: { src: string }[];
      start_url: string;
    };
    expect(m).toMatchObject({ name: 'Logo Co', start_url: '/app', icons: [{ src: body.logo }] });
    // A new logo replaces the old: the old file is gone from the platform.
    const r2 = await upload(sessions.lg!, GIF, 'image/gif');
    expect(r2.status).toBe(201);
    const second = ((await r2.json()) as { logo: string }).logo;
    expect(second).toMatch(/\.gif$/);
    expect((await s.request('lg.localhost', body.logo)).status).toBe(404);
    expect((await s.request('lg.localhost', second)).status).toBe(200);
    // The change is on the platform's audit trail.
    const audit = (await (
      await s.request('lg.localhost', '/api/v1/audit?order=desc&limit=5', {
        headers: { cookie: sessions.lg!.cookie },
      })
    ).json()) as { entries: { action: string }[] };
    expect(audit.entries.some((e) => e.action.startsWith('platform.'))).toBe(true);
  });

  test("a white-labeled platform's icon, manifest and pages never name Soulfra", async () => {
    for (const path of ['/favicon.ico', '/manifest.webmanifest', '/app', '/admin', '/']) {
      const r = await s.request('wl.localhost', path, { headers: { accept: 'text/html' } });
      expect(r.status).toBe(200);
      expect((await r.text()).toLowerCase()).not.toContain('soulfra');
      for (const [k, v] of r.headers) expect(`${k}: ${v}`.toLowerCase()).not.toContain('soulfra');
    }
    const m = (await (await s.request('wl.localhost', '/manifest.webmanifest')).json()) as { name: string };
    expect(m.name).toBe('Acme Private');
  });

  test('attack table: script-carrying files, oversize, no session, a member, another platform', async () => {
    const svg = new TextEncoder().encode(
      '<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>',
    );
    const html = new TextEncoder().encode('<!doctype html><script>alert(1)</script>');
    const cases: [string, Response, number, string][] = [
      ['an SVG declared as PNG', await upload(sessions.lg!, svg), 415, 'brand.logo_type'],
      ['an SVG as SVG', await upload(sessions.lg!, svg, 'image/svg+xml'), 415, 'brand.logo_type'],
      ['HTML declared as GIF', await upload(sessions.lg!, html, 'image/gif'), 415, 'brand.logo_type'],
      ['an empty body', await upload(sessions.lg!, new Uint8Array(0)), 400, 'brand.logo_missing'],
      ['no session', await upload(null, PNG), 401, 'auth.required'],
      [
        "lg's cookie on wl",
        await upload(sessions.lg!, PNG, 'image/png', 'wl.localhost'),
        401,
        'auth.required',
      ],
    ];
    // Over 256 KB: refused, by the logo check or by the body limit before it.
    const big = new Uint8Array(300 * 1024);
    big.set(PNG.subarray(0, 8));
    const tooBig = await upload(sessions.lg!, big);
    expect(tooBig.status).toBe(413);
    for (const [what, r, status, code] of cases) {
      expect({ what, status: r.status }).toEqual({ what, status });
      expect({ what, code: ((await r.json()) as { error: { code: string } }).error.code }).toEqual({
        what,
        code,
      });
    }
    // A member of the platform may not change its logo.
    const inv = await s.request('lg.localhost', '/api/v1/users', {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        cookie: sessions.lg!.cookie,
        'x-csrf-token': sessions.lg!.csrf,
      },
      body: JSON.stringify({ email: 'member@lg.test', role: 'member', password: 'a-long-member-password' }),
    });
    expect(inv.status).toBe(201);
    const member = await signIn('lg', 'member@lg.test', 'a-long-member-password');
    const denied = await upload(member, PNG);
    expect(denied.status).toBe(403);
    expect(((await denied.json()) as { error: { code: string } }).error.code).toBe('auth.forbidden');
    // wl's platform has no file of lg's: names are looked up in the host's own database.
    const lgLogo = (
      (await (await s.operatorApi('GET', '/platforms/lg')).json()) as {
        blueprint: { identity: { branding: { logo: string } } };
      }
    ).blueprint.identity.branding.logo;
    expect((await s.request('wl.localhost', lgLogo)).status).toBe(404);
    // Names that are not a stored logo's never reach the database as paths.
    for (const bad of ['/brand/..%2Fcontrol.db', '/brand/logo-zz.png', '/brand/theme.css.bak'])
      expect((await s.request('lg.localhost', bad)).status).toBe(404);
    // The blueprint refuses a local URL that is not an uploaded logo's shape.
    const patch = await s.request('lg.localhost', '/api/v1/platform', {
      method: 'PATCH',
      headers: {
        'content-type': 'application/json',
        cookie: sessions.lg!.cookie,
        'x-csrf-token': sessions.lg!.csrf,
      },
      body: JSON.stringify({ blueprint: { identity: { branding: { logo: '/app/evil.svg' } } } }),
    });
    expect(patch.status).toBe(400);
  });
});
