import { escapeHtml } from '../shared/html.ts';
import type { PlatformBlueprint } from '../tenancy/index.ts';

/** Security headers on every HTML page. A platform's pages never name Soulfra. */
const PAGE_HEADERS = {
  'content-type': 'text/html; charset=utf-8',
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'strict-origin-when-cross-origin',
  'x-frame-options': 'SAMEORIGIN',
  'content-security-policy':
    "default-src 'self'; img-src 'self' https: http: data:; style-src 'self' 'unsafe-inline'; font-src 'self' https: data:; frame-ancestors 'self'",
} as const;

/** An HTML response with the page security headers. */
export function htmlResponse(body: string, status = 200, extra: Record<string, string> = {}): Response {
  return new Response(body, { status, headers: { ...PAGE_HEADERS, ...extra } });
}

function fontStack(name: string | undefined): string {
  const clean = (name ?? '').replace(/["\\;{}<>]/g, '').trim();
  return clean ? `"${clean}", system-ui, sans-serif` : 'system-ui, sans-serif';
}

/** Black or white, whichever reads better on `hex` (WCAG relative luminance). */
export function contrastText(hex: string): '#000000' | '#ffffff' {
  const h = hex.length === 4 ? [...hex.slice(1)].map((c) => c + c).join('') : hex.slice(1);
  const [r, g, b] = [0, 2, 4].map((i) => {
    const c = Number.parseInt(h.slice(i, i + 2), 16) / 255;
    return c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4;
  }) as [number, number, number];
  const l = 0.2126 * r + 0.7152 * g + 0.0722 * b;
  // Contrast with white is 1.05 / (l + 0.05); with black (l + 0.05) / 0.05: pick the larger.
  return 1.05 / (l + 0.05) >= (l + 0.05) / 0.05 ? '#ffffff' : '#000000';
}

const rgbOf = (hex: string): [number, number, number] => {
  const h = hex.length === 4 ? [...hex.slice(1)].map((c) => c + c).join('') : hex.slice(1);
  return [0, 2, 4].map((i) => Number.parseInt(h.slice(i, i + 2), 16)) as [number, number, number];
};
const luminance = ([r, g, b]: [number, number, number]) => {
  const lin = (v: number) => {
    const c = v / 255;
    return c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4;
  };
  return 0.2126 * lin(r) + 0.7152 * lin(g) + 0.0722 * lin(b);
};
const ratio = (a: number, b: number) => (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);

/**
 * `fg` moved toward black or white (away from `bg`) just far enough to reach a contrast of
 * `min` on `bg` (WCAG AA: 4.5), so brand-colored links stay readable on any brand background.
 */
export function readableOn(fg: string, bg: string, min = 4.5): string {
  const f = rgbOf(fg);
  const lb = luminance(rgbOf(bg));
  const target = lb > 0.18 ? 0 : 255;
  for (let t = 0; t <= 1.0001; t += 0.05) {
    const c = f.map((v) => Math.round(v + (target - v) * t)) as [number, number, number];
    if (ratio(luminance(c), lb) >= min) return `#${c.map((v) => v.toString(16).padStart(2, '0')).join('')}`;
  }
  return target === 0 ? '#000000' : '#ffffff';
}

/** The background of dark pages when the brand sets none (web/shared/base.css). */
export const DARK_BG = '#14161a';

/** The brand's CSS: colors and fonts as custom properties, then the platform's own CSS. */
function brandStyle(bp: PlatformBlueprint): string {
  const c = bp.identity.branding.colors;
  const f = bp.identity.branding.fonts;
  // Colors are validated as #rgb/#rrggbb; `<` can never appear inside the style element.
  const css = (bp.identity.branding.custom_css ?? '').replace(/</g, '\\3C ');
  return `<style>
:root{--brand-primary:${c.primary};--brand-on-primary:${contrastText(c.primary)};--brand-secondary:${c.secondary};--brand-on-secondary:${contrastText(c.secondary)};--brand-bg:${c.background};--brand-text:${c.text};--brand-font-heading:${fontStack(f.heading)};--brand-font-body:${fontStack(f.body)}}
*{box-sizing:border-box}body{margin:0;background:var(--brand-bg);color:var(--brand-text);font-family:var(--brand-font-body);line-height:1.5}
header{display:flex;align-items:center;gap:1rem;padding:1.25rem 2rem;background:var(--brand-primary);color:var(--brand-on-primary)}
header img{height:48px;width:auto}h1,h2{font-family:var(--brand-font-heading);margin:0}
main{max-width:56rem;margin:2rem auto;padding:0 2rem}.tag{display:inline-block;padding:.15rem .6rem;border-radius:999px;background:var(--brand-secondary);color:var(--brand-on-secondary);font-size:.85rem;margin:.15rem}
a.button{display:inline-block;padding:.5rem 1rem;margin-right:.5rem;border-radius:8px;background:var(--brand-primary);color:var(--brand-on-primary);text-decoration:none}
footer{max-width:56rem;margin:3rem auto;padding:0 2rem;opacity:.7;font-size:.85rem}
</style>${css ? `\n<style>${css}</style>` : ''}`;
}

function page(bp: PlatformBlueprint, title: string, body: string, footer: string): string {
  const name = escapeHtml(bp.identity.name);
  const logo = bp.identity.branding.logo;
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>${escapeHtml(title)}</title>
<meta name="theme-color" content="${bp.identity.branding.colors.primary}">
${brandStyle(bp)}
</head><body>
<header>${logo ? `<img src="${escapeHtml(logo)}" alt="${name} logo">` : ''}<h1>${name}</h1></header>
<main>${body}</main>
<footer>${footer}</footer>
</body></html>`;
}

const FEATURE_LABELS: Record<string, string> = {
  agent_creation: 'Build your own AI agents',
  agent_marketplace: 'Agent marketplace',
  viral_sharing: 'Share agents with anyone',
  collaborative_agents: 'Collaborative agents',
  analytics_dashboard: 'Analytics',
  revenue_reporting: 'Revenue reports',
  api_access: 'API access',
  sso_integration: 'Single sign-on',
  compliance_reporting: 'Compliance reporting',
  progress_tracking: 'Progress tracking',
};

/** A platform's home page: its name, logo, colors, fonts and what it offers. */
export function platformHomePage(bp: PlatformBlueprint): string {
  const features = Object.entries(bp.features)
    .filter(([k, on]) => on && FEATURE_LABELS[k])
    .map(([k]) => `<span class="tag">${escapeHtml(FEATURE_LABELS[k]!)}</span>`)
    .join('');
  const tiers = bp.monetization.subscription_tiers
    .map((t) => {
      const price =
        t.price.amount === 0
          ? 'Free'
          : `${(t.price.amount / 100).toFixed(2)} ${t.price.currency.toUpperCase()} / ${t.interval}`;
      return `<li><strong>${escapeHtml(t.name)}</strong>: ${escapeHtml(price)}</li>`;
    })
    .join('');
  const body = `<h2>Welcome to ${escapeHtml(bp.identity.name)}</h2>
<p>${features || 'Your AI platform is ready.'}</p>
<p class="cta"><a class="button" href="/app/sign-in">Sign in</a> <a class="button" href="/app/sign-up">Create an account</a></p>
${tiers ? `<h2>Plans</h2><ul>${tiers}</ul>` : ''}`;
  return page(bp, bp.identity.name, body, footerOf(bp));
}

/** A platform-branded status page (503 suspended, 404 no such page). */
export function platformStatusPage(bp: PlatformBlueprint, heading: string, text: string): string {
  return page(
    bp,
    `${heading} · ${bp.identity.name}`,
    `<h2>${escapeHtml(heading)}</h2><p>${escapeHtml(text)}</p>`,
    footerOf(bp),
  );
}

/** A platform-branded page around `bodyHtml` (already escaped), for the account pages. */
export function platformPage(bp: PlatformBlueprint, title: string, bodyHtml: string): string {
  return page(bp, `${title} · ${bp.identity.name}`, bodyHtml, footerOf(bp));
}

function footerOf(bp: PlatformBlueprint): string {
  const name = escapeHtml(bp.identity.name);
  // White-labeled platforms never say Soulfra, in the page or in headers.
  return bp.features.white_label ? `© ${name}` : `© ${name} · Powered by Soulfra`;
}

/** A plain page with no brand at all (unknown hosts, archived platforms). */
export function plainPage(title: string, text: string): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>${escapeHtml(title)}</title>
<style>body{font-family:system-ui,sans-serif;max-width:40rem;margin:4rem auto;padding:0 1.5rem;color:#222}</style>
</head><body><h1>${escapeHtml(title)}</h1><p>${escapeHtml(text)}</p></body></html>`;
}
