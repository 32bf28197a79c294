import { expect, test } from 'bun:test';
import { hashPassword, verifyPassword } from './passwords.ts';

test('argon2id hashes verify, and a burst never runs more than two at once', async () => {
  const real = Bun.password.hash;
  let now = 0;
  let peak = 0;
  Bun.password.hash = (async (...args: Parameters<typeof real>) => {
    now++;
    peak = Math.max(peak, now);
    try {
      return await real(...args);
    } finally {
      now--;
    }
  }) as typeof real;
  try {
    const hashes = await Promise.all(
      Array.from({ length: 6 }, (_, i) => hashPassword(`password-${i}-long-enough`)),
    );
    expect(peak).toBe(2);
    expect(hashes[0]).toStartWith('$argon2id$');
    expect(await verifyPassword('password-3-long-enough', hashes[3]!)).toBe(true);
    expect(await verifyPassword('password-3-long-enough', hashes[2]!)).toBe(false);
  } finally {
    Bun.password.hash = real;
  }
});
