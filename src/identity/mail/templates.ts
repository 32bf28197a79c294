import { escapeHtml } from '../../shared/html.ts';
import type { PlatformBlueprint } from '../../tenancy/index.ts';

/** What a message carries of its platform's brand (from the blueprint). */
export interface MailBrand {
  name: string;
  /** `features.white_label`: the message never names Soulfra, headers included. */
  whiteLabel: boolean;
  primary: string;
  background: string;
  text: string;
  /** An http(s) URL or a `data:image/...` URI (sent as an inline attachment). */
  logo: string | null;
}

/** The brand of a platform's mail. */
export function brandOf(bp: PlatformBlueprint): MailBrand {
  const c = bp.identity.branding.colors;
  return {
    name: bp.identity.name,
    whiteLabel: bp.features.white_label === true,
    primary: c.primary,
    background: c.background,
    text: c.text,
    logo: bp.identity.branding.logo ?? null,
  };
}

/** A rendered message: plain text and HTML alternatives, and the inline logo if any. */
export interface RenderedMail {
  subject: string;
  text: string;
  html: string;
  attachments: { filename: string; path: string; cid: string }[];
}

const LOGO_CID = 'logo@brand';

/** Black or white on `hex`, whichever reads better (as the platform pages do). */
function onColor(hex: string): string {
  const h = hex.length === 4 ? [...hex.slice(1)].map((c) => c + c).join('') : hex.slice(1);
  const [r, g, b] = [0, 2, 4].map((i) => {
    const c = Number.parseInt(h.slice(i, i + 2), 16) / 255;
    return c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4;
  }) as [number, number, number];
  const l = 0.2126 * r + 0.7152 * g + 0.0722 * b;
  return 1.05 / (l + 0.05) >= (l + 0.05) / 0.05 ? '#ffffff' : '#000000';
}

/** The body's paragraphs as HTML: escaped, http(s) links made clickable. */
function bodyHtml(body: string, linkColor: string): string {
  return body
    .trim()
    .split(/\n{2,}/)
    .map((para) => {
      const parts = para.split(/(https?:\/\/[^\s<>"]+)/g);
      const html = parts
        .map((p, i) =>
          i % 2 === 1
            ? `<a href="${escapeHtml(p)}" style="color:${linkColor};word-break:break-all">${escapeHtml(p)}</a>`
            : escapeHtml(p).replace(/\n/g, '<br>'),
        )
        .join('');
      return `<p style="margin:0 0 16px">${html}</p>`;
    })
    .join('\n');
}

/**
 * Wraps a queued message (subject and plain-text body, as written by the code that queued it)
 * in the platform's brand: its name in the header and the signature, its colours and logo in
 * the HTML part. Only a platform that is not white-labeled says "Powered by Soulfra".
 */
export function renderMail(brand: MailBrand, msg: { subject: string; body: string }): RenderedMail {
  const name = escapeHtml(brand.name);
  const footer = brand.whiteLabel ? brand.name : `${brand.name} · Powered by Soulfra`;
  const text = `${msg.body.trim()}\n\n-- \n${footer}\n`;
  const attachments: RenderedMail['attachments'] = [];
  let logo = '';
  if (brand.logo?.startsWith('data:image/')) {
    const ext = /^data:image\/([a-z0-9.+-]+)/.exec(brand.logo)?.[1]?.replace(/\+.*$/, '') ?? 'png';
    attachments.push({ filename: `logo.${ext}`, path: brand.logo, cid: LOGO_CID });
    logo = `<img src="cid:${LOGO_CID}" alt="${name}" height="40" style="height:40px;vertical-align:middle;margin-right:12px">`;
  } else if (brand.logo) {
    logo = `<img src="${escapeHtml(brand.logo)}" alt="${name}" height="40" style="height:40px;vertical-align:middle;margin-right:12px">`;
  }
  const on = onColor(brand.primary);
  const html = `<!doctype html>
<html><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1"><title>${escapeHtml(msg.subject)}</title></head>
<body style="margin:0;padding:0;background:${brand.background};color:${brand.text};font-family:system-ui,-apple-system,'Segoe UI',sans-serif;line-height:1.5">
<table role="presentation" width="100%" cellpadding="0" cellspacing="0" style="background:${brand.background}"><tr><td align="center" style="padding:24px">
<table role="presentation" width="100%" cellpadding="0" cellspacing="0" style="max-width:560px">
<tr><td style="background:${brand.primary};color:${on};padding:16px 24px;font-size:20px;font-weight:600">${logo}${name}</td></tr>
<tr><td style="padding:24px;background:#ffffff;color:#1a1a1a">
${bodyHtml(msg.body, brand.primary)}
</td></tr>
<tr><td style="padding:16px 24px;font-size:12px;opacity:.7">${escapeHtml(footer)}</td></tr>
</table></td></tr></table>
</body></html>
`;
  return { subject: msg.subject, text, html, attachments };
}
