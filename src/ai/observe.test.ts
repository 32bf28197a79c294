import { describe, expect, test } from 'bun:test';
import { Registry } from 'prom-client';
import { createAiMetrics } from './observe.ts';

describe("the router's series", () => {
  test('counters add per label set; the histogram renders cumulative buckets, +Inf, sum and count', async () => {
    const registry = new Registry();
    const m = createAiMetrics(registry);
    for (let i = 0; i < 3; i++)
      m.call({ platform: 'p', provider: 'x', model: 'm', outcome: 'ok', fallback: false });
    m.call({ platform: 'p', provider: 'none', model: 'none', outcome: 'refused', fallback: false });
    m.tokens('p', 'x', 'm', 12, 0);
    m.tokens('p', 'x', 'm', 3, 4);
    m.firstByte('x', 'm', 0.02);
    m.firstByte('x', 'm', 0.3);
    m.firstByte('x', 'm', 60);
    const text = await registry.metrics();
    expect(text).toContain('# TYPE soulfra_ai_calls_total counter');
    expect(text).toContain(
      'soulfra_ai_calls_total{platform="p",provider="x",model="m",outcome="ok",fallback="false"} 3',
    );
    expect(text).toContain(
      'soulfra_ai_calls_total{platform="p",provider="none",model="none",outcome="refused",fallback="false"} 1',
    );
    expect(text).toContain('soulfra_ai_tokens_total{platform="p",provider="x",model="m",direction="in"} 15');
    expect(text).toContain('soulfra_ai_tokens_total{platform="p",provider="x",model="m",direction="out"} 4');
    expect(text).toContain('# TYPE soulfra_ai_time_to_first_byte_seconds histogram');
    for (const [le, n] of [
      ['0.01', 0],
      ['0.025', 1],
      ['0.25', 1],
      ['0.5', 2],
      ['30', 2],
      ['+Inf', 3],
    ] as const) {
      expect(text).toContain(
        `soulfra_ai_time_to_first_byte_seconds_bucket{provider="x",model="m",le="${le}"} ${n}\n`,
      );
    }
    expect(text).toContain('soulfra_ai_time_to_first_byte_seconds_sum{provider="x",model="m"} 60.32');
    expect(text).toContain('soulfra_ai_time_to_first_byte_seconds_count{provider="x",model="m"} 3');
  });
});
