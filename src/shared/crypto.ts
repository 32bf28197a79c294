import { createCipheriv, createDecipheriv, createHash, randomBytes, timingSafeEqual } from 'node:crypto';

/** Hex SHA-256 of a string or bytes. */
export function sha256Hex(data: string | Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

/** A random secret of `bytes` bytes, base64url (URL and shell safe, no padding). */
export function randomToken(bytes = 32): string {
  return randomBytes(bytes).toString('base64url');
}

/**
 * A password a person can copy: 20 characters from an alphabet without look-alikes
 * (no 0/O, 1/l/I), about 115 bits.
 */
export function randomPassword(length = 20): string {
  const alphabet = 'abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789';
  const bytes = randomBytes(length * 2);
  let out = '';
  for (let i = 0; i < bytes.length && out.length < length; i++) {
    const b = bytes[i]!;
    // Rejection sampling keeps every character equally likely.
    if (b < 256 - (256 % alphabet.length)) out += alphabet[b % alphabet.length];
  }
  return out.length === length ? out : randomPassword(length);
}

/** Constant-time comparison of two strings (for tokens and hashes). */
export function safeEqual(a: string, b: string): boolean {
  const ab = Buffer.from(a);
  const bb = Buffer.from(b);
  return ab.length === bb.length && timingSafeEqual(ab, bb);
}

/**
 * AES-256-GCM with a fresh random 96-bit IV: returns `iv | ciphertext | tag` (12 + n + 16 bytes).
 * `aad` is authenticated but not stored, so the same `aad` must be given to open the box; it
 * binds a sealed value to where it belongs (a row, a tenant), so a copy elsewhere does not open.
 */
export function aesGcmSeal(key: Uint8Array, plain: Uint8Array, aad: string): Buffer {
  if (key.length !== 32) throw new Error(`AES-256-GCM needs a 32-byte key, got ${key.length}`);
  const iv = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', key, iv);
  cipher.setAAD(Buffer.from(aad, 'utf8'));
  const ct = Buffer.concat([cipher.update(plain), cipher.final()]);
  return Buffer.concat([iv, ct, cipher.getAuthTag()]);
}

/**
 * Opens what `aesGcmSeal` made; null when the key, the `aad` or the bytes are wrong (the tag
 * does not verify), so callers decide which error to raise.
 */
export function aesGcmOpen(key: Uint8Array, box: Uint8Array, aad: string): Buffer | null {
  if (key.length !== 32 || box.length < 28) return null;
  try {
    const decipher = createDecipheriv('aes-256-gcm', key, box.subarray(0, 12));
    decipher.setAAD(Buffer.from(aad, 'utf8'));
    decipher.setAuthTag(box.subarray(box.length - 16));
    return Buffer.concat([decipher.update(box.subarray(12, box.length - 16)), decipher.final()]);
  } catch {
    return null;
  }
}
