import { describe, expect, test } from 'bun:test';
import { formatMicro, jsonInteger, microOfMinor, minorCeilOfMicro } from './money.ts';

describe('money in micro-units', () => {
  test('minor ↔ micro: exact one way, rounded up once (an invoice line) the other', () => {
    expect(microOfMinor(4)).toBe(4_000_000n);
    expect(minorCeilOfMicro(3_600n)).toBe(1n);
    expect(minorCeilOfMicro(4_000_000n)).toBe(4n);
    expect(minorCeilOfMicro(4_000_001n)).toBe(5n);
    expect(minorCeilOfMicro(0n)).toBe(0n);
  });

  test('written for people as minor units with their exact decimals', () => {
    expect(formatMicro(3_600n)).toBe('0.0036');
    expect(formatMicro(12_000_000n)).toBe('12');
    expect(formatMicro(1_500_001n)).toBe('1.500001');
    expect(formatMicro(-250_000n)).toBe('-0.25');
  });

  test('written to JSON as an exact integer past 2^53 (a number would round it)', () => {
    const big = 2n ** 53n + 1n;
    expect(JSON.stringify({ cost_micro: jsonInteger(big) })).toBe('{"cost_micro":9007199254740993}');
    expect(JSON.stringify({ cost_micro: Number(big) })).toBe('{"cost_micro":9007199254740992}');
  });
});
