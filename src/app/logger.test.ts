import { expect, test } from 'bun:test';
import { ManualClock } from '../shared/time.ts';
import { createLogger } from './logger.ts';

test('log lines are stamped by the injected clock, text and JSON', () => {
  const clock = new ManualClock(Date.UTC(2026, 10, 26, 12));
  const lines: string[] = [];
  createLogger({ clock, write: (l) => lines.push(l) }).info('started', { port: 8080 });
  clock.advance(1_500);
  createLogger({ clock, json: true, write: (l) => lines.push(l) }).warn('slow');
  expect(lines[0]).toBe('2026-11-26T12:00:00.000Z INFO  started port=8080');
  expect(JSON.parse(lines[1]!)).toEqual({ ts: '2026-11-26T12:00:01.500Z', level: 'warn', msg: 'slow' });
});
