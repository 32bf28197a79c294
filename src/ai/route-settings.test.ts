import { describe, expect, test } from 'bun:test';
import type { Provider } from './provider.ts';
import { cheapestFirst, outputTokens } from './route-settings.ts';
import type { RoutePlan } from './router.ts';

const plan = (...keys: string[]): RoutePlan => ({
  alias: 'a',
  candidates: keys.map((key) => ({ key, provider: { id: key.split('/')[0] } as Provider, model: 'm' })),
  skipped: [],
});
const order = (p: RoutePlan) => p.candidates.map((c) => c.key);
const usd = (input: number, output: number) => ({ input, output, currency: 'usd' });

describe('max_output_tokens', () => {
  test('caps what is asked, fills in the default under the cap, passes through without one', () => {
    expect(outputTokens(5_000, 1_024, 100)).toBe(100);
    expect(outputTokens(40, 1_024, 100)).toBe(40);
    expect(outputTokens(undefined, 1_024, 100)).toBe(100);
    expect(outputTokens(undefined, 64, 100)).toBe(64);
    expect(outputTokens(5_000, 1_024, null)).toBe(5_000);
    expect(outputTokens(undefined, 1_024, null)).toBe(1_024);
  });
});

describe('cost_optimization', () => {
  test('cheapest first by input + output price; unpriced counts 0; ties keep the route order', () => {
    const prices = { 'a/m': usd(100, 300), 'b/m': usd(10, 30), 'c/m': usd(30, 10) };
    expect(order(cheapestFirst(plan('a/m', 'b/m', 'c/m'), prices))).toEqual(['b/m', 'c/m', 'a/m']);
    expect(order(cheapestFirst(plan('a/m', 'free/m', 'b/m'), prices))).toEqual(['free/m', 'b/m', 'a/m']);
    expect(order(cheapestFirst(plan('x/m', 'y/m'), {}))).toEqual(['x/m', 'y/m']);
  });

  test('prices in different currencies are not compared: the route order is kept', () => {
    const prices = { 'a/m': usd(100, 300), 'b/m': { input: 1, output: 1, currency: 'eur' } };
    expect(order(cheapestFirst(plan('a/m', 'b/m'), prices))).toEqual(['a/m', 'b/m']);
  });
});
