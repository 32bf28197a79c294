import { describe, expect, test } from 'bun:test';
import { findBlockedTerm, foldForMatching, redactPii } from './safety.ts';

describe('safety filters', () => {
  test('blocked terms match whole words, case-insensitively', () => {
    expect(findBlockedTerm(['Tell me about Project X now'], ['project x'])).toBe('project x');
    expect(findBlockedTerm(['projection xylophone'], ['project x'])).toBeNull();
    expect(findBlockedTerm(['a', 'b SECRET c'], ['nope', 'secret'])).toBe('secret');
    expect(findBlockedTerm(['anything'], ['', '  '])).toBeNull();
  });

  test('PII is redacted: emails, phone numbers, national ids, card numbers (Luhn-checked)', () => {
    const r = redactPii(
      'Mail ann.lee@example.com or call +1 415-555-0132 or (212) 555-0188; SSN 123-45-6789, NI AB 12 34 56 C; card 4111 1111 1111 1111; order 1234 5678 9012 3456.',
    );
    expect(r.text).toBe(
      'Mail [EMAIL] or call [PHONE] or [PHONE]; SSN [NATIONAL_ID], NI [NATIONAL_ID]; card [CARD]; order 1234 5678 9012 3456.',
    );
    expect(r.counts).toEqual({ email: 1, phone: 2, national_id: 2, card: 1 });
  });

  test('text without PII is unchanged', () => {
    expect(redactPii('The meeting is at 10:30 in room 214, version 2.4.1.')).toEqual({
      text: 'The meeting is at 10:30 in room 214, version 2.4.1.',
      counts: {},
    });
  });
});

/** Zero-width space, zero-width joiner, soft hyphen, word joiner, BOM, right-to-left override. */
const ZWSP = '\u200B';
const ZWJ = '\u200D';
const SHY = '\u00AD';
const WJ = '\u2060';
const BOM = '\uFEFF';
const RLO = '\u202E';
/** Fullwidth forms of ASCII (U+FF01..U+FF5E). */
const wide = (s: string) => s.replace(/[!-~]/g, (c) => String.fromCharCode(c.charCodeAt(0) + 0xfee0));
/** Mathematical bold digits. */
const boldDigits = (s: string) => s.replace(/\d/g, (d) => String.fromCodePoint(0x1d7ce + Number(d)));
/** A combining mark after every character (U+0332 combining low line: "u̲n̲d̲e̲r̲l̲i̲n̲e̲d̲"). */
const underlined = (s: string) => [...s].map((c) => `${c}\u0332`).join('');
/** Tag characters (invisible) spelling `s`. */
const tags = (s: string) => [...s].map((c) => String.fromCodePoint(0xe0000 + c.charCodeAt(0))).join('');

describe('attacks: look-alike, fullwidth and invisible characters do not slip past the filters', () => {
  const pii: { name: string; text: string; redacted: string; counts: Record<string, number> }[] = [
    {
      name: 'fullwidth email',
      text: `mail ${wide('ann@example.com')} now`,
      redacted: 'mail [EMAIL] now',
      counts: { email: 1 },
    },
    {
      name: 'fullwidth @ and dot only',
      text: 'mail ann＠example．com now',
      redacted: 'mail [EMAIL] now',
      counts: { email: 1 },
    },
    {
      name: 'zero-width spaces inside an email',
      text: `mail an${ZWSP}n@exa${ZWJ}mple.com now`,
      redacted: 'mail [EMAIL] now',
      counts: { email: 1 },
    },
    {
      name: 'fullwidth card digits',
      text: `card ${wide('4111 1111 1111 1111')}.`,
      redacted: 'card [CARD].',
      counts: { card: 1 },
    },
    {
      name: 'card digits split by zero-width spaces and soft hyphens',
      text: `card 4111${ZWSP}1111${SHY}1111${WJ}1111 ok`,
      redacted: 'card [CARD] ok',
      counts: { card: 1 },
    },
    {
      name: 'mixed-width card (half ASCII, half fullwidth)',
      text: `card 4111 1111 ${wide('1111 1111')} ok`,
      redacted: 'card [CARD] ok',
      counts: { card: 1 },
    },
    {
      name: 'Arabic-Indic digits in an SSN',
      text: 'SSN ١٢٣-٤٥-٦٧٨٩!',
      redacted: 'SSN [NATIONAL_ID]!',
      counts: { national_id: 1 },
    },
    {
      name: 'Devanagari card digits',
      text: 'card ४१११ ११११ ११११ ११११.',
      redacted: 'card [CARD].',
      counts: { card: 1 },
    },
    {
      name: 'an ideographic full stop in an email',
      text: 'mail ann@example。com now',
      redacted: 'mail [EMAIL] now',
      counts: { email: 1 },
    },
    {
      name: 'mathematical bold SSN',
      text: `SSN ${boldDigits('123-45-6789')}!`,
      redacted: 'SSN [NATIONAL_ID]!',
      counts: { national_id: 1 },
    },
    {
      name: 'fullwidth SSN with fullwidth hyphens',
      text: `SSN ${wide('123-45-6789')}`,
      redacted: 'SSN [NATIONAL_ID]',
      counts: { national_id: 1 },
    },
    {
      name: 'SSN with en dashes',
      text: 'SSN 123–45–6789',
      redacted: 'SSN [NATIONAL_ID]',
      counts: { national_id: 1 },
    },
    {
      name: 'SSN with combining marks on each digit',
      text: `SSN ${underlined('123-45-6789')} x`,
      redacted: 'SSN [NATIONAL_ID] x',
      counts: { national_id: 1 },
    },
    {
      name: 'fullwidth phone',
      text: `call ${wide('+1 415-555-0132')}`,
      redacted: 'call [PHONE]',
      counts: { phone: 1 },
    },
    {
      name: 'phone with a BOM and a bidi override inside',
      text: `call (212) 555${BOM}-01${RLO}88 now`,
      redacted: 'call [PHONE] now',
      counts: { phone: 1 },
    },
    {
      name: 'circled digits are digits too',
      text: 'SSN ①②③-④⑤-⑥⑦⑧⑨',
      redacted: 'SSN [NATIONAL_ID]',
      counts: { national_id: 1 },
    },
  ];
  for (const c of pii) {
    test(`PII: ${c.name} is redacted`, () => {
      expect(redactPii(c.text)).toEqual({ text: c.redacted, counts: c.counts });
    });
  }

  const terms = ['project zeus', 'secret'];
  const blocked: { name: string; text: string; term: string | null }[] = [
    {
      name: 'zero-width space inside a word',
      text: `tell me about proj${ZWSP}ect zeus`,
      term: 'project zeus',
    },
    { name: 'zero-width joiner and word joiner', text: `se${ZWJ}cr${WJ}et plans`, term: 'secret' },
    { name: 'soft hyphens', text: `the se${SHY}cret`, term: 'secret' },
    { name: 'tag characters spelling other text', text: `sec${tags('hidden')}ret`, term: 'secret' },
    { name: 'BOM and bidi controls', text: `${BOM}sec${RLO}ret`, term: 'secret' },
    { name: 'fullwidth letters', text: `about ${wide('Project Zeus')}`, term: 'project zeus' },
    { name: 'mixed width', text: `about Pro${wide('ject')} Zeus`, term: 'project zeus' },
    { name: 'mathematical bold letters', text: 'the 𝐬𝐞𝐜𝐫𝐞𝐭', term: 'secret' },
    { name: 'a combining mark on every letter', text: `the ${underlined('secret')} file`, term: 'secret' },
    { name: 'accents added to letters', text: 'the sécrèt file', term: 'secret' },
    { name: 'a Cyrillic о in a Latin word', text: 'Prоject Zeus', term: 'project zeus' },
    { name: 'Greek and Cyrillic look-alikes mixed in', text: 'project Ζеus', term: 'project zeus' },
    { name: 'a no-break space between the words', text: 'project\u00A0zeus', term: 'project zeus' },
    { name: 'an ideographic space and two spaces', text: 'project\u3000 zeus', term: 'project zeus' },
    {
      name: 'honest text with the word inside another word',
      text: 'secretary of projected zeusite',
      term: null,
    },
    { name: 'honest Russian text (one script, not folded)', text: 'сестра секрет', term: null },
  ];
  for (const c of blocked) {
    test(`blocked term: ${c.name} → ${c.term ?? 'not blocked'}`, () => {
      expect(findBlockedTerm([c.text], terms)).toBe(c.term);
    });
  }

  test('terms written with look-alikes or accents match plain text too', () => {
    expect(findBlockedTerm(['the secret'], [wide('secret')])).toBe(wide('secret'));
    expect(findBlockedTerm(['a cafe'], ['café'])).toBe('café');
    expect(findBlockedTerm(['anything'], [ZWSP, `${SHY} `])).toBeNull();
  });

  test('honest text comes back exactly as given: unchanged where nothing matched, even around a redaction', () => {
    const honest = [
      'Ｆｕｌｌｗｉｄｔｈ ｔｅｘｔ ｉｎ ａ ｔａｂｌｅ ①②',
      'Ligatures ﬁ ﬂ, a family 👨‍👩‍👧 (joined by ZWJ) and a flag 🇫🇷',
      'Привет, мир. Καλημέρα κόσμε. こんにちは世界。 नमस्ते दुनिया',
      `soft${SHY}hyphen and e\u0301 (decomposed é), Hangul 한국어 and 가 (jamo)`,
    ];
    for (const text of honest) expect(redactPii(text)).toEqual({ text, counts: {} });
    const mixed = `Ｈｉ ﬁ 👨‍👩‍👧, mail ${wide('ann@example.com')} or call +1 415-555-0132; 한국어 e\u0301${ZWSP}!`;
    expect(redactPii(mixed)).toEqual({
      text: `Ｈｉ ﬁ 👨‍👩‍👧, mail [EMAIL] or call [PHONE]; 한국어 e\u0301${ZWSP}!`,
      counts: { email: 1, phone: 1 },
    });
    expect(foldForMatching(`${wide('Ab1')}${ZWSP}é–Prоject`)).toBe('Ab1e-Project');
  });
});
