/**
 * Safety filters applied before a request leaves for a provider: blocked terms (refuse the
 * request, naming the rule) and PII redaction (emails, phone numbers, national ids, card
 * numbers) before any cloud provider.
 *
 * Both match on a folded copy of the text (`foldForMatching`), so that look-alikes do not slip
 * through: fullwidth and other compatibility forms (NFKC), zero-width and other invisible
 * characters, combining marks laid over letters and digits, dashes of every kind, and Cyrillic
 * or Greek letters mixed into a Latin word. What is sent on is the caller's own text, with only
 * the redacted spans replaced: the folded copy is never returned.
 */

/** Combining diacritical marks (the blocks used for accents, strike-through, underline, "zalgo"). */
const DIACRITICS = /[\u0300-\u036F\u1AB0-\u1AFF\u1DC0-\u1DFF\u20D0-\u20FF\uFE20-\uFE2F]/gu;
/** Format and default-ignorable characters: zero-width space/joiners, soft hyphen, bidi controls, BOM, tags, variation selectors, fillers. */
const INVISIBLE = /[\p{Cf}\p{Default_Ignorable_Code_Point}]/gu;
const DASHES = /\p{Pd}/gu;

/** One character (with the marks that follow it), folded: NFKC, no diacritics, no invisibles, one dash. */
function foldSegment(seg: string): string {
  return seg
    .normalize('NFKD')
    .replace(DIACRITICS, '')
    .replace(INVISIBLE, '')
    .normalize('NFC')
    .replace(DASHES, '-')
    .replace(DECIMAL_DIGIT, asciiDigit)
    .replace(FULL_STOPS, '.');
}

/** Decimal digits of any script (Arabic-Indic, Devanagari, Thai...): NFKC leaves them be. */
const DECIMAL_DIGIT = /(?![0-9])\p{Nd}/gu;
const IS_DIGIT = /^\p{Nd}$/u;
/** Ideographic full stops (NFKC makes the halfwidth one U+3002, but not U+3002 a dot). */
const FULL_STOPS = /[\u3002\uFF61]/g;

/**
 * A decimal digit's ASCII form. Unicode lays every script's digits out as whole runs of ten,
 * 0 to 9 (some runs directly follow another), so the value is the distance from the run's
 * start, modulo ten.
 */
function asciiDigit(d: string): string {
  const cp = d.codePointAt(0)!;
  let start = cp;
  while (start > 0 && IS_DIGIT.test(String.fromCodePoint(start - 1))) start--;
  return String((cp - start) % 10);
}

/** Cyrillic and Greek letters that look like Latin ones, and the Latin letter each passes for. */
const CONFUSABLE: Record<string, string> = Object.fromEntries(
  [
    // Cyrillic
    'аa вb еe ёe һh іi їi јj кk мm нh оo рp сc тt уy хx ѕs ԁd ԛq ԝw ӏl ɡg',
    'АA ВB ЕE ЁE ҺH ІI ЇI ЈJ КK МM НH ОO РP СC ТT УY ХX ЅS ԚQ ԜW ӀI',
    // Greek
    'αa βb εe ιi κk νv οo ρp τt υu χx γy',
    'ΑA ΒB ΕE ΖZ ΗH ΙI ΚK ΜM ΝN ΟO ΡP ΤT ΥY ΧX',
  ]
    .join(' ')
    .split(' ')
    .map((pair) => [pair.charAt(0), pair.charAt(1)]),
);
const WORD = /[\p{L}\p{M}\p{N}]+/gu;
const LATIN = /\p{Script=Latin}/u;
const CYRILLIC_OR_GREEK = /[\p{Script=Cyrillic}\p{Script=Greek}]/u;

/**
 * In each word that mixes Latin with Cyrillic or Greek letters (the mark of a spoof: "Prоject"
 * with a Cyrillic о), the Cyrillic and Greek look-alikes become the Latin letters they imitate.
 * Words wholly in one script are left alone, so Russian or Greek text does not turn into false
 * matches. One code unit for one: offsets are kept.
 */
function foldMixedScript(text: string): string {
  return text.replace(WORD, (w) =>
    LATIN.test(w) && CYRILLIC_OR_GREEK.test(w) ? w.replace(/./gu, (ch) => CONFUSABLE[ch] ?? ch) : w,
  );
}

/** Text folded, with where each folded code unit came from (`[start, end)` in the original). */
interface Folded {
  text: string;
  /** null: the folding changed nothing, offsets are the original's. */
  start: Int32Array | null;
  end: Int32Array | null;
}

/** Maximal ASCII runs (not followed by a combining mark), or one character with its marks. */
const SEGMENT = /[\x00-\x7F]+(?!\p{M})|[\s\S]\p{M}*/gu;
const ASCII_ONLY = /^[\x00-\x7F]*$/;

/** Single characters already folded (alphabets repeat: most of a long text hits this). */
const FOLDED_CHARS = new Map<string, string>();

function foldMapped(text: string): Folded {
  if (ASCII_ONLY.test(text)) return { text, start: null, end: null };
  const parts: string[] = [];
  const start: number[] = [];
  const end: number[] = [];
  for (const m of text.matchAll(SEGMENT)) {
    const seg = m[0];
    const at = m.index;
    if (ASCII_ONLY.test(seg)) {
      parts.push(seg);
      for (let i = 0; i < seg.length; i++) {
        start.push(at + i);
        end.push(at + i + 1);
      }
      continue;
    }
    let f = seg.length <= 2 ? FOLDED_CHARS.get(seg) : undefined;
    if (f === undefined) {
      f = foldSegment(seg);
      if (seg.length <= 2 && FOLDED_CHARS.size < 50_000) FOLDED_CHARS.set(seg, f);
    }
    parts.push(f);
    for (let i = 0; i < f.length; i++) {
      start.push(at);
      end.push(at + seg.length);
    }
  }
  return { text: foldMixedScript(parts.join('')), start: Int32Array.from(start), end: Int32Array.from(end) };
}

/**
 * The copy of a text the safety filters match on: NFKC (fullwidth, mathematical, circled and
 * other compatibility forms become plain letters and digits), combining diacritics and format
 * or default-ignorable characters (zero-width space, joiners, soft hyphen, bidi controls, BOM,
 * tag characters) removed, every dash a hyphen-minus, and Cyrillic or Greek look-alikes in a
 * mixed-script word made Latin. For matching only; never sent or shown.
 */
export function foldForMatching(text: string): string {
  if (ASCII_ONLY.test(text)) return text;
  return foldMixedScript(foldSegment(text));
}

/**
 * The first blocked term found in any of the texts, or null: whole words, case-insensitive,
 * matched on the folded text (`foldForMatching`) against the folded term, any run of spaces in
 * the term matching any run of white space.
 */
export function findBlockedTerm(texts: readonly string[], terms: readonly string[]): string | null {
  const c = compiled(terms);
  if (c.length === 0) return null;
  const folded = texts.map(foldForMatching);
  for (const [term, re] of c) {
    if (folded.some((x) => re.test(x))) return term;
  }
  return null;
}

// Hot path: a platform's term list (from its cached blueprint) is compiled once.
const compiledTerms = new WeakMap<readonly string[], [string, RegExp][]>();

function compiled(terms: readonly string[]): [string, RegExp][] {
  let c = compiledTerms.get(terms);
  if (!c) {
    c = terms
      .map((t) => t.trim())
      .filter(Boolean)
      .map((t) => {
        const body = foldForMatching(t).trim().split(/\s+/).map(escapeRe).join('\\s+');
        return [t, new RegExp(`(^|[^\\p{L}\\p{N}])${body}($|[^\\p{L}\\p{N}])`, 'iu')] as [string, RegExp];
      })
      .filter(([, re]) => !re.test(''));
    compiledTerms.set(terms, c);
  }
  return c;
}

function escapeRe(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** Luhn checksum: separates card numbers from other long digit runs. */
function luhn(digits: string): boolean {
  let sum = 0;
  for (let i = 0; i < digits.length; i++) {
    let d = digits.charCodeAt(digits.length - 1 - i) - 48;
    if (i % 2 === 1) {
      d *= 2;
      if (d > 9) d -= 9;
    }
    sum += d;
  }
  return sum % 10 === 0;
}

const PATTERNS: {
  kind: 'email' | 'card' | 'national_id' | 'phone';
  re: RegExp;
  check?: (m: string) => boolean;
}[] = [
  { kind: 'email', re: /[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}/g },
  { kind: 'card', re: /\b(?:\d[ -]?){12,18}\d\b/g, check: (m) => luhn(m.replace(/[ -]/g, '')) },
  // US SSN, UK National Insurance number.
  { kind: 'national_id', re: /\b\d{3}-\d{2}-\d{4}\b|\b[A-CEGHJ-PR-TW-Z]{2} ?\d{2} ?\d{2} ?\d{2} ?[A-D]\b/g },
  // International (+CC ...) or North American (555) 555-0100 / 555-555-0100 forms.
  {
    kind: 'phone',
    re: /\+\d{1,3}(?:[ .-]?\(?\d{1,4}\)?){1,2}(?:[ .-]?\d{2,4}){2,3}\b|(?<![\d-])(?:\(\d{3}\) ?|\b\d{3}[ .-])\d{3}[ .-]\d{4}\b/g,
    check: (m) => {
      const n = m.replace(/\D/g, '').length;
      return n >= 9 && n <= 15;
    },
  },
];

/** Whether any PII pattern matches (with its check) somewhere in a folded text. */
function mayHoldPii(folded: string): boolean {
  return PATTERNS.some((p) => [...folded.matchAll(p.re)].some((m) => !p.check || p.check(m[0])));
}

/**
 * Text with PII replaced by `[EMAIL]`, `[CARD]`, `[NATIONAL_ID]`, `[PHONE]`, and how many of each.
 * Matching runs on the folded text (`foldForMatching`), so `ａｎｎ＠ｅｘａｍｐｌｅ．ｃｏｍ` or a card
 * number split by zero-width spaces is found; each match replaces its span of the caller's own
 * text, and everything else is returned exactly as given (a text with no PII comes back unchanged).
 */
export function redactPii(text: string): { text: string; counts: Record<string, number> } {
  const counts: Record<string, number> = {};
  // Most text holds no PII: a look at the (cheap, unmapped) folded copy settles that first.
  if (!ASCII_ONLY.test(text) && !mayHoldPii(foldForMatching(text))) return { text, counts };
  const f = foldMapped(text);
  // Each pattern's matches are masked (same length, so offsets hold) before the next one runs,
  // as replacing them in turn would; '#' is matched by no pattern and is no word character.
  let masked = f.text;
  const spans: { s: number; e: number; kind: string }[] = [];
  for (const p of PATTERNS) {
    // NB! The patterns have no capturing groups, so the callback's second argument is the offset.
    masked = masked.replace(p.re, (m: string, offset: number) => {
      if (p.check && !p.check(m)) return m;
      counts[p.kind] = (counts[p.kind] ?? 0) + 1;
      spans.push({ s: offset, e: offset + m.length, kind: p.kind });
      return '#'.repeat(m.length);
    });
  }
  if (spans.length === 0) return { text, counts };
  spans.sort((a, b) => a.s - b.s);
  let out = '';
  let cursor = 0;
  for (const sp of spans) {
    const os = Math.max(cursor, f.start ? f.start[sp.s]! : sp.s);
    const oe = f.end ? f.end[sp.e - 1]! : sp.e;
    out += `${text.slice(cursor, os)}[${sp.kind.toUpperCase()}]`;
    cursor = Math.max(cursor, oe);
  }
  return { text: out + text.slice(cursor), counts };
}

/**
 * A classifier hook (e.g. a toxicity model run in process through ONNX): a label and a score
 * for a text, or null when it has no opinion. A request whose label is in the blocked set is
 * refused with the rule `classifier:<label>`.
 */
export type SafetyClassifier = (
  text: string,
  signal: AbortSignal,
) => Promise<{ label: string; score: number } | null>;
