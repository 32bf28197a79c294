import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { brotliDecompressSync, gunzipSync } from 'node:zlib';
import { firstLoad, readManifest } from '../../scripts/build-web.ts';
import { type InProcessServer, inProcessWithPlatform } from '../../tests/inproc.ts';
import { pickEncoding } from './web-assets.ts';
import { jsonBlock, platformCsp } from './web-shell.ts';

let s: InProcessServer;
let host: string;
let owner: { email: string; password: string };

beforeAll(async () => {
  const p = await inProcessWithPlatform('webby', { template: 'creator' });
  s = p.s;
  host = p.host;
  owner = p.owner;
});
afterAll(() => s.close());

const manifest = () => {
  const m = readManifest();
  if (!m) throw new Error('no web build');
  return m;
};

describe('the browser apps are served from their build', () => {
  test('the portal page: its scripts, the brand stylesheet, boot data, a strict CSP', async () => {
    const res = await s.request(host, '/app/sign-in');
    expect(res.status).toBe(200);
    const html = await res.text();
    const m = manifest();
    for (const f of [...m.apps.portal.scripts, ...m.apps.portal.styles, ...m.apps.portal.preload])
      expect(html).toContain(`/assets/${f}`);
    expect(html).toContain('<link rel="stylesheet" href="/brand/theme.css">');
    // No admin or console code on the portal page.
    for (const f of [...m.apps.admin.scripts, ...m.apps.console.scripts]) expect(html).not.toContain(f);
    const boot = JSON.parse(/<script type="application\/json" id="boot">(.*?)<\/script>/s.exec(html)![1]!);
    expect(boot.app).toBe('portal');
    expect(boot.platform.slug).toBe('webby');
    const csp = res.headers.get('content-security-policy')!;
    expect(csp).toContain("script-src 'self'");
    expect(csp).not.toContain('unsafe-inline');
    expect(csp).not.toContain('unsafe-eval');
    expect(csp).toContain("frame-ancestors 'none'");
    // Every <script> on the page is either a same-origin module or a data block (no inline code).
    for (const tag of html.match(/<script[^>]*>/g) ?? [])
      expect(/type="module" src="\/assets\//.test(tag) || tag.includes('type="application/json"')).toBe(true);
  });

  test('the admin page carries the admin app; the console page the console app', async () => {
    const m = manifest();
    const admin = await (await s.request(host, '/admin/users')).text();
    expect(admin).toContain(m.apps.admin.scripts[0]!);
    expect(admin).not.toContain(m.apps.portal.scripts[0]!);
    const con = await s.request('localhost', '/platforms/webby');
    expect(con.status).toBe(200);
    const html = await con.text();
    expect(html).toContain(m.apps.console.scripts[0]!);
    expect(html).not.toContain('/brand/theme.css');
    // The console's pages are not on a platform's host, nor the platform's on the console's.
    expect((await s.request(host, '/platforms', { headers: { accept: 'application/json' } })).status).toBe(
      404,
    );
    expect((await s.request('localhost', '/app', { headers: { accept: 'application/json' } })).status).toBe(
      404,
    );
  });

  test('assets: brotli, gzip or plain by Accept-Encoding, one ETag each, 304, immutable; unknown names 404', async () => {
    const m = manifest();
    const name = m.apps.portal.scripts[0]!;
    const plain = await s.request(host, `/assets/${name}`, { headers: { 'accept-encoding': 'identity' } });
    expect(plain.headers.get('content-encoding')).toBeNull();
    const raw = new Uint8Array(await plain.arrayBuffer());
    expect(raw.length).toBe(m.files[name]!.size);
    const br = await s.request(host, `/assets/${name}`, {
      headers: { 'accept-encoding': 'gzip, deflate, br' },
    });
    expect(br.headers.get('content-encoding')).toBe('br');
    expect(br.headers.get('cache-control')).toBe('public, max-age=31536000, immutable');
    expect(br.headers.get('vary')).toBe('Accept-Encoding');
    expect(br.headers.get('content-type')).toStartWith('text/javascript');
    expect(brotliDecompressSync(new Uint8Array(await br.arrayBuffer()))).toEqual(Buffer.from(raw));
    const gz = await s.request(host, `/assets/${name}`, { headers: { 'accept-encoding': 'gzip' } });
    expect(gz.headers.get('content-encoding')).toBe('gzip');
    expect(gunzipSync(new Uint8Array(await gz.arrayBuffer()))).toEqual(Buffer.from(raw));
    const tags = new Set([plain, br, gz].map((r) => r.headers.get('etag')));
    expect(tags.size).toBe(3);
    const again = await s.request(host, `/assets/${name}`, {
      headers: { 'accept-encoding': 'br', 'if-none-match': br.headers.get('etag')! },
    });
    expect(again.status).toBe(304);
    expect(await again.text()).toBe('');
    // A gzip ETag does not validate the brotli representation.
    const other = await s.request(host, `/assets/${name}`, {
      headers: { 'accept-encoding': 'br', 'if-none-match': gz.headers.get('etag')! },
    });
    expect(other.status).toBe(200);
    for (const bad of [
      'nope.js',
      'manifest.json',
      '..%2Fmanifest.json',
      `${name}.br`,
      'constructor',
      '__proto__',
    ]) {
      const r = await s.request(host, `/assets/${bad}`);
      expect([r.status, bad]).toEqual([404, bad]);
    }
    // The console's host serves the same files.
    expect((await s.request('localhost', `/assets/${m.apps.console.scripts[0]}`)).status).toBe(200);
  });

  test('Accept-Encoding is read with its q-values', () => {
    expect(pickEncoding('br;q=0, gzip')).toBe('gzip');
    expect(pickEncoding('gzip;q=0, br;q=0')).toBeNull();
    expect(pickEncoding('*')).toBe('br');
    expect(pickEncoding('identity')).toBeNull();
    expect(pickEncoding(null)).toBeNull();
    expect(pickEncoding('BR')).toBe('br');
  });

  test('a brand change shows in /brand/theme.css on the next load, no rebuild', async () => {
    const before = await s.request(host, '/brand/theme.css');
    expect(before.headers.get('cache-control')).toBe('no-cache');
    const etag = before.headers.get('etag')!;
    expect((await s.request(host, '/brand/theme.css', { headers: { 'if-none-match': etag } })).status).toBe(
      304,
    );
    const r = await s.operatorApi('PATCH', '/platforms/webby', {
      blueprint: { identity: { branding: { colors: { primary: '#123456' }, custom_css: '.x{color:red}' } } },
    });
    expect(r.status).toBe(200);
    const after = await s.request(host, '/brand/theme.css', { headers: { 'if-none-match': etag } });
    expect(after.status).toBe(200);
    const css = await after.text();
    expect(css).toContain('--brand-primary:#123456');
    expect(css).toContain('--brand-on-primary:#ffffff');
    expect(css).toContain('.x{color:red}');
  });

  test('a fixed color scheme is on the page; system is the default', async () => {
    expect(await (await s.request(host, '/app')).text()).not.toContain('data-scheme=');
    const r = await s.operatorApi('PATCH', '/platforms/webby', {
      blueprint: { identity: { branding: { color_scheme: 'dark' } } },
    });
    expect(r.status).toBe(200);
    expect(await (await s.request(host, '/app')).text()).toContain('<html lang="en" data-scheme="dark">');
    const bad = await s.operatorApi('PATCH', '/platforms/webby', {
      blueprint: { identity: { branding: { color_scheme: 'purple' } } },
    });
    expect(bad.status).toBe(400);
  });

  test('names in boot data cannot end the data block', () => {
    const out = jsonBlock({ name: '</script><script>alert(1)</script><!--' });
    expect(out).not.toContain('<');
    expect(JSON.parse(out).name).toBe('</script><script>alert(1)</script><!--');
  });

  test('custom CSS reaches remote stylesheets and fonts only through origins the operator allows', () => {
    expect(platformCsp()).toContain("style-src 'self';");
    expect(platformCsp()).toContain("font-src 'self';");
    const allowed = platformCsp({ customCssOrigins: ['https://fonts.example.test'] });
    expect(allowed).toContain("style-src 'self' https://fonts.example.test;");
    expect(allowed).toContain("font-src 'self' https://fonts.example.test;");
  });

  test('the owner is signed in by the API the portal calls (sanity of the shared contract)', async () => {
    const r = await s.request(host, '/api/v1/auth/login', {
      method: 'POST',
      headers: { 'content-type': 'application/json', origin: `http://${host}:8080` },
      body: JSON.stringify({ email: owner.email, password: owner.password }),
    });
    expect(r.status).toBe(200);
  });
});

describe('first-load sizes (gzipped scripts a page loads before it is interactive)', () => {
  test('the portal at most 60 KB, the console at most 150 KB', () => {
    const m = manifest();
    const portal = firstLoad(m, 'portal');
    const console_ = firstLoad(m, 'console');
    const admin = firstLoad(m, 'admin');
    expect(portal.gzip).toBeGreaterThan(1000);
    expect(portal.gzip).toBeLessThanOrEqual(60 * 1024);
    expect(console_.gzip).toBeLessThanOrEqual(150 * 1024);
    expect(admin.gzip).toBeLessThanOrEqual(150 * 1024);
    // The portal's first load holds no admin or console module.
    for (const f of portal.files) expect(f.startsWith('admin-') || f.startsWith('console-')).toBe(false);
  });
});

describe('the sign-in options in the boot data', () => {
  const bootOf = async (path: string) => {
    const html = await (await s.request(host, path)).text();
    return JSON.parse(/<script type="application\/json" id="boot">(.*?)<\/script>/s.exec(html)![1]!) as {
      sign_in: { password: boolean; oidc: boolean; saml: boolean };
    };
  };
  test('say what sign-in offers (no SSO button without SSO), and follow the settings', async () => {
    expect((await bootOf('/app/sign-in')).sign_in).toEqual({ password: true, oidc: false, saml: false });
    const login = await s.request(host, '/api/v1/auth/login', {
      method: 'POST',
      headers: { 'content-type': 'application/json', origin: `http://${host}:8080` },
      body: JSON.stringify(owner),
    });
    const cookie = (login.headers.get('set-cookie') ?? '').split(';')[0]!;
    const csrf = ((await login.json()) as { csrf_token: string }).csrf_token;
    const patch = await s.request(host, '/api/v1/settings/identity', {
      method: 'PATCH',
      headers: { 'content-type': 'application/json', cookie, 'x-csrf-token': csrf },
      body: JSON.stringify({ password_login: false }),
    });
    expect(patch.status).toBe(200);
    expect((await bootOf('/app/sign-in')).sign_in).toEqual({ password: false, oidc: false, saml: false });
    await s.request(host, '/api/v1/settings/identity', {
      method: 'PATCH',
      headers: { 'content-type': 'application/json', cookie, 'x-csrf-token': csrf },
      body: JSON.stringify({ password_login: true }),
    });
  });
});
