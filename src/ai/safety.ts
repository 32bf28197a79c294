/**
 * Safety filters applied before a request leaves for a provider: blocked terms (refuse the
 * request, naming the rule) and PII redaction (emails, phone numbers, national ids, card
 * numbers) before any cloud provider.
 */

/** The first blocked term found in any of the texts (case-insensitive, whole words), or null. */
export function findBlockedTerm(texts: readonly string[], terms: readonly string[]): string | null {
  for (const [term, re] of compiled(terms)) {
    if (texts.some((x) => re.test(x))) return term;
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
      .map(
        (t) =>
          [t, new RegExp(`(^|[^\\p{L}\\p{N}])${escapeRe(t)}($|[^\\p{L}\\p{N}])`, 'iu')] as [string, RegExp],
      );
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

/** Text with PII replaced by `[EMAIL]`, `[CARD]`, `[NATIONAL_ID]`, `[PHONE]`, and how many of each. */
export function redactPii(text: string): { text: string; counts: Record<string, number> } {
  const counts: Record<string, number> = {};
  let out = text;
  for (const p of PATTERNS) {
    out = out.replace(p.re, (m) => {
      if (p.check && !p.check(m)) return m;
      counts[p.kind] = (counts[p.kind] ?? 0) + 1;
      return `[${p.kind.toUpperCase()}]`;
    });
  }
  return { text: out, counts };
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
