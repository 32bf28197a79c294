/**
 * Password hashing: argon2id through Bun.password with its defaults (64 MiB, t=2). Slow by
 * design (tens of milliseconds); callers that report latency measure it apart.
 */
export function hashPassword(password: string): Promise<string> {
  return Bun.password.hash(password, { algorithm: 'argon2id' });
}

/** Checks a password against a stored argon2id hash. */
export function verifyPassword(password: string, hash: string): Promise<boolean> {
  return Bun.password.verify(password, hash);
}
