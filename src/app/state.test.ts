import { expect, test } from 'bun:test';
import { AppState, stateKey } from './state.ts';

test('a state key is made once per App, on first use', () => {
  let made = 0;
  const key = stateKey('test.counter', () => ({ n: ++made }));
  const a = new AppState();
  const b = new AppState();
  expect(a.get(key)).toBe(a.get(key));
  expect(made).toBe(1);
  expect(b.get(key)).not.toBe(a.get(key));
  expect(made).toBe(2);
  a.clear();
  expect(a.get(key).n).toBe(3);
});
