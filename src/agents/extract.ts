/**
 * The text of an uploaded knowledge document: text and Markdown as they are (UTF-8), HTML as
 * its visible text (Bun's HTMLRewriter, lol-html: script, style and other invisible content
 * dropped, blocks as paragraphs, entities decoded), PDF as its text (unpdf, Mozilla's pdf.js;
 * loaded on first use). A scanned PDF with no text layer has none: 422.
 */
import { AppError } from '../shared/errors.ts';

export const KNOWLEDGE_TYPES = ['text/plain', 'text/markdown', 'text/html', 'application/pdf'] as const;
export type KnowledgeType = (typeof KNOWLEDGE_TYPES)[number];

export function isKnowledgeType(t: string): t is KnowledgeType {
  return (KNOWLEDGE_TYPES as readonly string[]).includes(t);
}

const ENTITIES: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'", nbsp: ' ' };

function decodeEntities(s: string): string {
  return s.replace(/&(#x[0-9a-f]+|#\d+|[a-z]+);/gi, (m, e: string) => {
    if (e[0] === '#') {
      const n =
        e[1] === 'x' || e[1] === 'X' ? Number.parseInt(e.slice(2), 16) : Number.parseInt(e.slice(1), 10);
      return n > 0 && n < 0x110000 ? String.fromCodePoint(n) : m;
    }
    return ENTITIES[e.toLowerCase()] ?? m;
  });
}

const INVISIBLE = 'script, style, noscript, template, svg, head, iframe, object';
const BLOCKS =
  'p, div, br, li, h1, h2, h3, h4, h5, h6, tr, section, article, blockquote, pre, header, footer, main, table, ul, ol, dt, dd, hr';

export async function htmlText(html: string): Promise<string> {
  let skip = 0;
  const parts: string[] = [];
  const rw = new HTMLRewriter()
    .on(INVISIBLE, {
      element(el) {
        skip++;
        el.onEndTag(() => {
          skip--;
        });
      },
    })
    .on(BLOCKS, {
      element() {
        if (!skip) parts.push('\n\n');
      },
    })
    .onDocument({
      text(t) {
        if (!skip) parts.push(t.text);
      },
    });
  await rw.transform(new Response(html)).text();
  return decodeEntities(parts.join(''))
    .replace(/[ \t\f\v\r]+/g, ' ')
    .replace(/ *\n */g, '\n')
    .replace(/\n{3,}/g, '\n\n')
    .trim();
}

/**
 * unpdf, loaded at run time by a name the bundler does not follow: pdf.js uses
 * `import.meta.resolve`, which `bun build --compile --bytecode` cannot carry, so the compiled
 * executable leaves it out and answers PDFs with 501 `knowledge.pdf_unavailable`.
 */
const UNPDF = 'unpdf';
async function loadUnpdf(): Promise<typeof import('unpdf')> {
  try {
    return (await import(UNPDF)) as typeof import('unpdf');
  } catch {
    throw new AppError(
      'knowledge.pdf_unavailable',
      'this build reads no PDF (the compiled executable leaves pdf.js out): send the text, or run from source',
      501,
    );
  }
}

async function pdfText(bytes: Uint8Array): Promise<string> {
  const { extractText, getDocumentProxy } = await loadUnpdf();
  let doc: Awaited<ReturnType<typeof getDocumentProxy>>;
  try {
    doc = await getDocumentProxy(new Uint8Array(bytes));
  } catch (e) {
    throw new AppError('knowledge.unreadable', `the PDF could not be read: ${(e as Error).message}`, 422, [
      { path: '/body', reason: 'not a readable PDF' },
    ]);
  }
  const { text } = await extractText(doc, { mergePages: true });
  return text;
}

/** The document's text (422 `knowledge.unreadable` when there is none to read). */
export async function documentText(bytes: Uint8Array, type: KnowledgeType): Promise<string> {
  let text: string;
  if (type === 'application/pdf') text = await pdfText(bytes);
  else {
    let s: string;
    try {
      s = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
    } catch {
      throw new AppError('knowledge.unreadable', 'the document is not UTF-8 text', 422, [
        { path: '/body', reason: 'not UTF-8' },
      ]);
    }
    text = type === 'text/html' ? await htmlText(s) : s;
  }
  if (!text.trim())
    throw new AppError(
      'knowledge.unreadable',
      type === 'application/pdf'
        ? 'the PDF has no text to read (a scan without a text layer?)'
        : 'the document has no text',
      422,
      [{ path: '/body', reason: 'no text' }],
    );
  return text;
}
