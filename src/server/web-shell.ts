import { createHash } from 'node:crypto';
import { escapeHtml } from '../shared/html.ts';
import type { PlatformBlueprint } from '../tenancy/index.ts';
import { contrastText, DARK_BG, htmlResponse, plainPage, readableOn } from './pages.ts';
import type { WebAppName, WebBuild } from './web-assets.ts';

/**
 * The HTML page each browser app starts from: its stylesheet, the platform's brand stylesheet
 * (`/brand/theme.css`, applied at run time: a brand change shows on the next load, no
 * rebuild), its script and the chunks it imports, and the boot data the server already knows
 * (a `<script type="application/json">` data block: never executed, so the CSP needs no
 * inline script). A white-labeled platform's shell never says Soulfra.
 */

/** Origins the operator lets custom CSS load stylesheets and fonts from (config `web.custom_css_origins`). */
export interface ShellOptions {
  customCssOrigins?: readonly string[];
  /** What the sign-in screen offers (password, OIDC, SAML); in the boot data. */
  signIn?: { password: boolean; oidc: boolean; saml: boolean };
}

/**
 * A platform page's Content-Security-Policy: scripts, styles, fonts and API calls from its own
 * origin only; images also from https: (a logo URL) and data:; no frames, plugins or base
 * rewrites. Custom CSS can reach remote stylesheets and fonts only through origins the
 * operator allows.
 */
export function platformCsp(o: ShellOptions = {}): string {
  const extra = (o.customCssOrigins ?? []).map((x) => ` ${x}`).join('');
  return [
    "default-src 'self'",
    "script-src 'self'",
    `style-src 'self'${extra}`,
    `font-src 'self'${extra}`,
    "img-src 'self' https: data: blob:",
    "connect-src 'self'",
    "manifest-src 'self'",
    "object-src 'none'",
    "base-uri 'none'",
    "form-action 'self'",
    "frame-ancestors 'none'",
  ].join('; ');
}

/** The console's CSP: its own origin only (images also data:). */
export const CONSOLE_CSP = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data: https:",
  "connect-src 'self'",
  "object-src 'none'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join('; ');

/** JSON safe inside a `<script type="application/json">` block (no `</script>`, no `<!--`). */
export function jsonBlock(value: unknown): string {
  return JSON.stringify(value).replace(/</g, '\\u003c').replace(/>/g, '\\u003e').replace(/&/g, '\\u0026');
}

function fontStack(name: string | undefined): string {
  const clean = (name ?? '').replace(/["\\;{}<>]/g, '').trim();
  return clean ? `"${clean}", system-ui, sans-serif` : 'system-ui, sans-serif';
}

/** The brand as CSS custom properties, then the platform's own CSS. */
export function brandCss(bp: PlatformBlueprint): string {
  const b = bp.identity.branding;
  const c = b.colors;
  const vars = [
    `--brand-primary:${c.primary}`,
    `--brand-on-primary:${contrastText(c.primary)}`,
    `--brand-secondary:${c.secondary}`,
    `--brand-on-secondary:${contrastText(c.secondary)}`,
    `--brand-bg:${c.background}`,
    `--brand-text:${c.text}`,
    // Links in the brand color, made readable on the page (light and dark).
    `--brand-link:${readableOn(c.primary, c.background)}`,
    `--brand-link-dark:${readableOn(c.primary, DARK_BG)}`,
    `--brand-font-heading:${fontStack(b.fonts.heading)}`,
    `--brand-font-body:${fontStack(b.fonts.body)}`,
  ];
  const custom = b.custom_css ? `\n/* the platform's custom CSS */\n${b.custom_css}\n` : '';
  return `:root{${vars.join(';')}}${custom}`;
}

/** `GET /brand/theme.css`: revalidated on every load (ETag), so a brand change shows at once. */
export function brandCssResponse(bp: PlatformBlueprint, request: Request): Response {
  const css = brandCss(bp);
  const etag = `"${createHash('sha256').update(css).digest('base64url').slice(0, 22)}"`;
  const headers = {
    'content-type': 'text/css; charset=utf-8',
    'cache-control': 'no-cache',
    etag,
    'x-content-type-options': 'nosniff',
  };
  if (request.headers.get('if-none-match') === etag) return new Response(null, { status: 304, headers });
  return new Response(css, { headers });
}

function missingBuild(): Response {
  return htmlResponse(
    plainPage(
      'Not built yet',
      'The web build is missing: run `npm run build:web` (npm start does it) and reload.',
    ),
    503,
    { 'cache-control': 'no-store', 'retry-after': '5' },
  );
}

function shellHtml(
  build: WebBuild,
  app: WebAppName,
  o: { title: string; boot: unknown; scheme?: string; themeColor?: string; brand: boolean; icon?: boolean },
): string {
  const a = build.manifest.apps[app];
  const links = [
    ...a.styles.map((s) => `<link rel="stylesheet" href="/assets/${s}">`),
    o.brand ? '<link rel="stylesheet" href="/brand/theme.css">' : '',
    ...a.preload.map((s) => `<link rel="modulepreload" href="/assets/${s}">`),
    ...a.scripts.map((s) => `<script type="module" src="/assets/${s}"></script>`),
  ]
    .filter(Boolean)
    .join('\n');
  const scheme = o.scheme && o.scheme !== 'system' ? ` data-scheme="${escapeHtml(o.scheme)}"` : '';
  return `<!doctype html>
<html lang="en"${scheme}><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>${escapeHtml(o.title)}</title>
${o.themeColor ? `<meta name="theme-color" content="${escapeHtml(o.themeColor)}">` : ''}
${o.icon ? '<link rel="icon" href="/favicon.ico"><link rel="manifest" href="/manifest.webmanifest">' : '<link rel="icon" href="/favicon.ico" type="image/svg+xml">'}
${links}
</head><body><div id="root"><noscript>This page needs JavaScript.</noscript></div>
<script type="application/json" id="boot">${jsonBlock(o.boot)}</script>
</body></html>`;
}

/** What the portal and the admin know of their platform before any API call. */
export function platformBoot(
  app: 'admin' | 'portal',
  p: { slug: string },
  bp: PlatformBlueprint,
  signIn: ShellOptions['signIn'] = { password: true, oidc: false, saml: false },
) {
  return {
    app,
    sign_in: signIn,
    platform: {
      name: bp.identity.name,
      slug: p.slug,
      logo: bp.identity.branding.logo ?? null,
      white_label: bp.features.white_label,
      features: bp.features,
      // The pricing page's link: the platform offers plans.
      plans: bp.monetization.subscription_tiers.length > 0,
    },
  };
}

/** A platform's `/app` or `/admin` page. */
export function platformShell(
  build: WebBuild | null,
  app: 'admin' | 'portal',
  p: { slug: string },
  bp: PlatformBlueprint,
  o: ShellOptions = {},
): Response {
  if (!build) return missingBuild();
  const name = bp.identity.name;
  const html = shellHtml(build, app, {
    title: app === 'admin' ? `Admin · ${name}` : name,
    boot: platformBoot(app, p, bp, o.signIn),
    scheme: bp.identity.branding.color_scheme,
    themeColor: bp.identity.branding.colors.primary,
    brand: true,
    icon: true,
  });
  // Links with a token land on portal pages (/app/reset-password?token=…): never sent on as a Referer.
  return htmlResponse(html, 200, {
    'content-security-policy': platformCsp(o),
    'cache-control': 'no-cache',
    'referrer-policy': 'no-referrer',
  });
}

/** The operator console's page on the base domain. */
export function consoleShell(build: WebBuild | null, boot: Record<string, unknown>): Response {
  if (!build) return missingBuild();
  const html = shellHtml(build, 'console', {
    title: 'Soulfra console',
    boot: { app: 'console', ...boot },
    brand: false,
    icon: false,
  });
  return htmlResponse(html, 200, {
    'content-security-policy': CONSOLE_CSP,
    'cache-control': 'no-cache',
    'referrer-policy': 'no-referrer',
  });
}

/** The console's screens (the page is served for each; the API stays under /_operator/api). */
export const CONSOLE_PAGES = [
  '/',
  '/sign-in',
  '/platforms',
  '/platforms/*',
  '/new',
  '/plans',
  '/operators',
  '/tokens',
  '/health',
  '/billing',
  '/audit',
  '/account',
] as const;

/** The console's icon: an "S" on its indigo (an SVG we write: no script, served with default-src 'none'). */
export function consoleFavicon(): Response {
  const svg =
    '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 64 64"><rect width="64" height="64" rx="12" fill="#312e81"/>' +
    '<text x="32" y="44" font-family="system-ui,sans-serif" font-size="36" font-weight="700" fill="#fff" text-anchor="middle">S</text></svg>';
  return new Response(svg, {
    headers: {
      'content-type': 'image/svg+xml',
      'cache-control': 'public, max-age=86400',
      'content-security-policy': "default-src 'none'",
      'x-content-type-options': 'nosniff',
    },
  });
}

/** A stored brand file (the uploaded logo): its bytes, never sniffed, never a document. */
export function brandAssetResponse(
  a: { name: string; content_type: string; bytes: Uint8Array },
  cache = 'public, max-age=31536000, immutable',
): Response {
  return new Response(a.bytes as Uint8Array<ArrayBuffer>, {
    headers: {
      'content-type': a.content_type,
      'cache-control': cache,
      'x-content-type-options': 'nosniff',
      'content-security-policy': "default-src 'none'; sandbox",
      'content-disposition': `inline; filename="${a.name}"`,
    },
  });
}

/** A platform's icon when it has no uploaded logo: its initial on its primary color (SVG). */
export function monogramIcon(bp: PlatformBlueprint): Response {
  const c = bp.identity.branding.colors.primary;
  const letter = escapeHtml([...bp.identity.name.trim()][0]?.toUpperCase() ?? '·');
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 64 64"><rect width="64" height="64" rx="14" fill="${c}"/><text x="32" y="44" font-family="system-ui,sans-serif" font-size="36" font-weight="700" text-anchor="middle" fill="${contrastText(c)}">${letter}</text></svg>`;
  return new Response(svg, {
    headers: {
      'content-type': 'image/svg+xml',
      'cache-control': 'public, max-age=300',
      'x-content-type-options': 'nosniff',
      'content-security-policy': "default-src 'none'; style-src 'unsafe-inline'; sandbox",
    },
  });
}

/** The platform's web app manifest: its own name, colors and icon (install as an app). */
export function webManifest(bp: PlatformBlueprint): Response {
  const b = bp.identity.branding;
  const local = b.logo?.startsWith('/brand/') ? b.logo : null;
  const type = local
    ? ({ png: 'image/png', jpg: 'image/jpeg', gif: 'image/gif', webp: 'image/webp' } as const)[
        local.split('.').pop() as 'png'
      ]
    : 'image/svg+xml';
  const manifest = {
    name: bp.identity.name,
    short_name: bp.identity.name.slice(0, 30),
    start_url: '/app',
    scope: '/',
    display: 'standalone',
    background_color: b.colors.background,
    theme_color: b.colors.primary,
    icons: [{ src: local ?? '/favicon.ico', sizes: 'any', type }],
  };
  return new Response(JSON.stringify(manifest), {
    headers: {
      'content-type': 'application/manifest+json; charset=utf-8',
      'cache-control': 'no-cache',
      'x-content-type-options': 'nosniff',
    },
  });
}
