import { describe, expect, test } from 'bun:test';
import { findBlockedTerm, redactPii } from './safety.ts';

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
