/**
 * An invoice as a printable HTML page and as a PDF. Both show the platform's name, its brand
 * colour, the number, period, lines, tax, credits and total. HTML: every value escaped, inline
 * CSS only, a print stylesheet. PDF: pdf-lib (pure JavaScript, no native parts) with the standard
 * Helvetica, which needs no font file; it encodes WinAnsi only, so any character outside it is
 * replaced (an accent dropped when the base letter is in WinAnsi, else `?`).
 */
import { PDFDocument, type PDFFont, rgb, StandardFonts } from 'pdf-lib';
import { escapeHtml } from '../shared/html.ts';
import type { InvoiceView } from './invoices.service.ts';

export interface RenderInfo {
  platformName: string;
  /** The brand's primary colour, `#rrggbb` or `#rgb`. */
  color: string;
  /** Who is billed, as a reader knows them (an email, or the platform's name). */
  billedTo: string;
  /** Who issues it (the platform for a user's invoice; the operator for the platform's bill). */
  issuer: string;
}

/** Minor units as a decimal amount with the currency's code (two decimals). */
export function formatMinor(minor: number, currency: string): string {
  const neg = minor < 0;
  const a = Math.abs(minor);
  const whole = Math.floor(a / 100).toLocaleString('en-US');
  return `${neg ? '-' : ''}${whole}.${String(a % 100).padStart(2, '0')} ${currency.toUpperCase()}`;
}

const HEX = /^#(?:[0-9a-fA-F]{3}|[0-9a-fA-F]{6})$/;
const safeColor = (c: string) => (HEX.test(c) ? c : '#333333');

const title = (v: InvoiceView) => (v.status === 'void' ? 'Credit note' : 'Invoice');

/** The invoice as a self-contained, printable HTML page. */
export function invoiceHtml(v: InvoiceView, info: RenderInfo): string {
  const e = escapeHtml;
  const m = (n: number) => e(formatMinor(n, v.currency));
  const color = safeColor(info.color);
  const rows = v.lines
    .map(
      (l) =>
        `<tr><td>${e(l.description)}</td><td class="n">${e(String(l.quantity))}</td><td class="n">${m(l.unit_amount_minor)}</td><td class="n">${m(l.amount_minor)}</td></tr>`,
    )
    .join('');
  const taxes = v.tax_lines
    .map(
      (t) =>
        `<tr><td colspan="3">${e(t.name)} ${e(String(t.percent))}%${v.tax_behavior === 'inclusive' ? ' (included)' : ''}</td><td class="n">${m(t.amount_minor)}</td></tr>`,
    )
    .join('');
  const credits = v.credit_lines
    .map((c) => `<tr><td colspan="3">${e(c.description)}</td><td class="n">${m(-c.amount_minor)}</td></tr>`)
    .join('');
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${e(title(v))} ${e(v.number)} · ${e(info.platformName)}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body{font:14px/1.5 system-ui,sans-serif;color:#111;max-width:48rem;margin:2rem auto;padding:0 1rem}
header{border-bottom:4px solid ${color};padding-bottom:.5rem;margin-bottom:1rem;display:flex;justify-content:space-between;align-items:baseline}
h1{margin:0;color:${color};font-size:1.5rem}
table{width:100%;border-collapse:collapse;margin:1rem 0}
th,td{padding:.35rem .5rem;border-bottom:1px solid #ddd;text-align:left;vertical-align:top}
.n{text-align:right;white-space:nowrap}
tfoot td{border:0}
tr.total td{font-weight:700;border-top:2px solid ${color}}
dl{display:grid;grid-template-columns:max-content 1fr;gap:.1rem 1rem;margin:0}
dt{color:#555}
@media print{body{margin:0;max-width:none}a{color:inherit}}
</style></head>
<body>
<header><h1>${e(info.platformName)}</h1><strong>${e(title(v))} ${e(v.number)}</strong></header>
<dl>
<dt>Number</dt><dd>${e(v.number)}</dd>
<dt>Issued by</dt><dd>${e(info.issuer)}</dd>
<dt>Billed to</dt><dd>${e(info.billedTo)}</dd>
<dt>Period</dt><dd>${e(v.period.month)} (UTC)</dd>
<dt>Issued</dt><dd>${e(v.issued_at.slice(0, 10))}</dd>
${v.voids ? `<dt>Voids</dt><dd>${e(v.voids)}</dd>` : ''}
</dl>
<table>
<thead><tr><th>Description</th><th class="n">Qty</th><th class="n">Unit</th><th class="n">Amount</th></tr></thead>
<tbody>${rows || '<tr><td colspan="4">No charges</td></tr>'}</tbody>
<tfoot>
<tr><td colspan="3">Subtotal</td><td class="n">${m(v.subtotal_minor)}</td></tr>
${taxes}${credits}
<tr class="total"><td colspan="3">Total</td><td class="n">${m(v.total_minor)}</td></tr>
</tfoot>
</table>
</body></html>
`;
}

/** Replaces what the font cannot encode (WinAnsi): a letter's accent dropped if that helps, else `?`. */
function encodable(font: PDFFont, s: string): string {
  const set = new Set(font.getCharacterSet());
  let out = '';
  for (const ch of s) {
    const cp = ch.codePointAt(0)!;
    if (set.has(cp)) out += ch;
    else {
      const base = ch.normalize('NFKD').replace(/\p{M}/gu, '');
      out += base && [...base].every((b) => set.has(b.codePointAt(0)!)) ? base : '?';
    }
  }
  return out.replace(/[\r\n\t]/g, ' ');
}

function rgbOf(hex: string) {
  let h = safeColor(hex).slice(1);
  if (h.length === 3) h = [...h].map((c) => c + c).join('');
  const n = Number.parseInt(h, 16);
  return rgb(((n >> 16) & 255) / 255, ((n >> 8) & 255) / 255, (n & 255) / 255);
}

/** The invoice as a PDF (A4; more pages as the lines need). */
export async function invoicePdf(v: InvoiceView, info: RenderInfo): Promise<Uint8Array> {
  const doc = await PDFDocument.create();
  doc.setTitle(`${title(v)} ${v.number}`);
  doc.setProducer('Soulfra');
  doc.setCreationDate(new Date(v.issued_at));
  doc.setModificationDate(new Date(v.issued_at));
  const font = await doc.embedFont(StandardFonts.Helvetica);
  const bold = await doc.embedFont(StandardFonts.HelveticaBold);
  const brand = rgbOf(info.color);
  const [W, H] = [595.28, 841.89];
  const M = 50;
  let page = doc.addPage([W, H]);
  let y = H - M;
  const text = (
    s: string,
    x: number,
    o: { size?: number; f?: PDFFont; right?: boolean; color?: ReturnType<typeof rgb> } = {},
  ) => {
    const f = o.f ?? font;
    const size = o.size ?? 10;
    let t = encodable(f, s);
    const max = o.right ? W - M - M : W - M - x - 150;
    if (f.widthOfTextAtSize(t, size) > max) {
      while (t.length > 1 && f.widthOfTextAtSize(`${t}...`, size) > max) t = t.slice(0, -1);
      t = `${t}...`;
    }
    const at = o.right ? x - f.widthOfTextAtSize(t, size) : x;
    page.drawText(t, { x: at, y, size, font: f, color: o.color ?? rgb(0.07, 0.07, 0.07) });
  };
  const line = (thick = 0.5, color = rgb(0.8, 0.8, 0.8)) =>
    page.drawLine({ start: { x: M, y: y - 4 }, end: { x: W - M, y: y - 4 }, thickness: thick, color });
  const next = (dy = 16) => {
    y -= dy;
    if (y < M + 40) {
      page = doc.addPage([W, H]);
      y = H - M;
    }
  };
  const m = (n: number) => formatMinor(n, v.currency);
  text(info.platformName, M, { size: 18, f: bold, color: brand });
  text(`${title(v)} ${v.number}`, W - M, { size: 12, f: bold, right: true });
  next(10);
  page.drawRectangle({ x: M, y: y - 2, width: W - 2 * M, height: 3, color: brand });
  next(22);
  for (const [k, val] of [
    ['Number', v.number],
    ['Issued by', info.issuer],
    ['Billed to', info.billedTo],
    ['Period', `${v.period.month} (UTC)`],
    ['Issued', v.issued_at.slice(0, 10)],
    ...(v.voids ? [['Voids', v.voids]] : []),
  ] as [string, string][]) {
    text(k, M, { color: rgb(0.35, 0.35, 0.35) });
    text(val, M + 90);
    next(14);
  }
  next(12);
  text('Description', M, { f: bold });
  text('Qty', W - M - 170, { f: bold, right: true });
  text('Amount', W - M, { f: bold, right: true });
  line();
  next(18);
  for (const l of v.lines) {
    text(l.description, M);
    text(String(l.quantity), W - M - 170, { right: true });
    text(m(l.amount_minor), W - M, { right: true });
    next();
  }
  line(1, brand);
  next(18);
  const sum = (label: string, n: number, f = font) => {
    text(label, M, { f });
    text(m(n), W - M, { right: true, f });
    next();
  };
  sum('Subtotal', v.subtotal_minor);
  for (const t of v.tax_lines)
    sum(`${t.name} ${t.percent}%${v.tax_behavior === 'inclusive' ? ' (included)' : ''}`, t.amount_minor);
  for (const c of v.credit_lines) sum(c.description, -c.amount_minor);
  sum('Total', v.total_minor, bold);
  return doc.save();
}
