import type { ComponentChildren, JSX } from 'preact';

/**
 * Markdown to Preact elements, never to HTML: text only ever becomes text nodes, so nothing in
 * a model's answer can run script or add attributes. The subset chat answers use: paragraphs,
 * headings, fenced code, lists, quotes, `code`, **bold**, *italic*, links (http, https and
 * mailto only, opened apart with no referrer). Raw HTML shows as text; images are not loaded.
 */

const SAFE_LINK = /^(https?:\/\/|mailto:)/i;

export function safeHref(url: string): string | null {
  const u = url.trim();
  return SAFE_LINK.test(u) && !/[\s<>"']/.test(u) ? u : null;
}

/** Inline marks: code spans first (their content is literal), then links, bold, italic. */
export function inline(text: string, key = 'i'): ComponentChildren[] {
  const out: ComponentChildren[] = [];
  const re =
    /(`+)([^`]|[^`][\s\S]*?[^`])\1(?!`)|\[([^\]\n]{1,500})\]\(([^)\s]{1,2000})\)|\*\*([^*\n][^\n]*?)\*\*|(?<![*\w])\*([^*\n]+)\*(?![*\w])|_([^_\n]+)_(?!\w)/g;
  let last = 0;
  let n = 0;
  for (const m of text.matchAll(re)) {
    if (m.index > last) out.push(text.slice(last, m.index));
    const k = `${key}-${n++}`;
    if (m[2] !== undefined) out.push(<code key={k}>{m[2]}</code>);
    else if (m[3] !== undefined) {
      const href = safeHref(m[4]!);
      out.push(
        href ? (
          <a key={k} href={href} target="_blank" rel="noopener noreferrer nofollow">
            {inline(m[3], k)}
          </a>
        ) : (
          m[0]
        ),
      );
    } else if (m[5] !== undefined) out.push(<strong key={k}>{inline(m[5], k)}</strong>);
    else if (m[6] !== undefined) out.push(<em key={k}>{m[6]}</em>);
    else if (m[7] !== undefined) out.push(<em key={k}>{m[7]}</em>);
    last = m.index + m[0].length;
  }
  if (last < text.length) out.push(text.slice(last));
  return out;
}

/** Block structure, line by line. An unclosed code fence (mid-stream) shows as code so far. */
export function Markdown({ text }: { text: string }): JSX.Element {
  const lines = text.replace(/\r\n?/g, '\n').split('\n');
  const blocks: ComponentChildren[] = [];
  let i = 0;
  let k = 0;
  const para: string[] = [];
  const flush = () => {
    if (para.length) blocks.push(<p key={`b${k++}`}>{inline(para.join('\n'), `p${k}`)}</p>);
    para.length = 0;
  };
  while (i < lines.length) {
    const line = lines[i]!;
    const fence = /^\s*(```|~~~)\s*([\w+-]*)\s*$/.exec(line);
    if (fence) {
      flush();
      const code: string[] = [];
      i++;
      while (i < lines.length && !lines[i]!.trim().startsWith(fence[1]!)) code.push(lines[i++]!);
      i++;
      blocks.push(
        <pre key={`b${k++}`}>
          <code data-lang={fence[2] || undefined}>{code.join('\n')}</code>
        </pre>,
      );
      continue;
    }
    const h = /^(#{1,6})\s+(.*)$/.exec(line);
    if (h) {
      flush();
      const level = Math.min(6, h[1]!.length + 2);
      const Tag = `h${level}` as 'h3';
      blocks.push(<Tag key={`b${k++}`}>{inline(h[2]!, `h${k}`)}</Tag>);
      i++;
      continue;
    }
    const item = /^\s*([-*+]|\d{1,9}[.)])\s+(.*)$/.exec(line);
    if (item) {
      flush();
      const ordered = /\d/.test(item[1]!);
      const items: string[] = [];
      while (i < lines.length) {
        const m = /^\s*([-*+]|\d{1,9}[.)])\s+(.*)$/.exec(lines[i]!);
        if (!m || /\d/.test(m[1]!) !== ordered) break;
        items.push(m[2]!);
        i++;
      }
      const lis = items.map((t, j) => <li key={j}>{inline(t, `l${k}-${j}`)}</li>);
      blocks.push(ordered ? <ol key={`b${k++}`}>{lis}</ol> : <ul key={`b${k++}`}>{lis}</ul>);
      continue;
    }
    if (/^\s*>\s?/.test(line)) {
      flush();
      const quote: string[] = [];
      while (i < lines.length && /^\s*>\s?/.test(lines[i]!)) quote.push(lines[i++]!.replace(/^\s*>\s?/, ''));
      blocks.push(<blockquote key={`b${k++}`}>{inline(quote.join('\n'), `q${k}`)}</blockquote>);
      continue;
    }
    if (!line.trim()) {
      flush();
      i++;
      continue;
    }
    para.push(line);
    i++;
  }
  flush();
  return <div class="md">{blocks}</div>;
}
