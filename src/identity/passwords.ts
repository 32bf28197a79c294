/**
 * Password hashing: argon2id through Bun.password with its defaults (64 MiB, t=2). Slow by
 * design (tens of milliseconds); callers that report latency measure it apart.
 *
 * NB! Each hash in flight holds 64 MiB. At most `MAX_CONCURRENT` run at once (the rest wait
 * their turn), so a burst of sign-ins or creates cannot push the server's memory past its
 * budget; on a 2-core machine more at once would not finish sooner anyway.
 */
const MAX_CONCURRENT = 2;
let running = 0;
const waiting: (() => void)[] = [];

async function limited<T>(fn: () => Promise<T>): Promise<T> {
  if (running >= MAX_CONCURRENT) await new Promise<void>((r) => waiting.push(r));
  running++;
  try {
    return await fn();
  } finally {
    running--;
    waiting.shift()?.();
  }
}

/** Hashes a password with argon2id. */
export function hashPassword(password: string): Promise<string> {
  return limited(() => Bun.password.hash(password, { algorithm: 'argon2id' }));
}

/** Checks a password against a stored argon2id hash. */
export function verifyPassword(password: string, hash: string): Promise<boolean> {
  return limited(() => Bun.password.verify(password, hash));
}
