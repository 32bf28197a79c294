/*
 * Money. Amounts are integer minor units of a currency (cents), except AI usage costs, which
 * are integer micro-units (millionths of a minor unit) until an invoice line rounds them once.
 * Sums of micro-units are BigInt (or SQL integers): a float is exact only up to 2^53.
 */

/** Micro-units in one minor unit. */
export const MICRO_PER_MINOR = 1_000_000n;

/** Minor units (a budget's limit) as micro-units. */
export function microOfMinor(minor: number): bigint {
  return BigInt(minor) * MICRO_PER_MINOR;
}

/**
 * Micro-units rounded up to whole minor units. (Invoice lines are rounded once per line, half
 * away from zero: src/billing/invoices.service.ts.)
 */
export function minorCeilOfMicro(micro: bigint): bigint {
  return micro <= 0n ? 0n : (micro + MICRO_PER_MINOR - 1n) / MICRO_PER_MINOR;
}

/** Micro-units written as minor units with their exact decimals, for messages: 3600n → "0.0036". */
export function formatMicro(micro: bigint): string {
  const neg = micro < 0n;
  const a = neg ? -micro : micro;
  const whole = a / MICRO_PER_MINOR;
  const frac = (a % MICRO_PER_MINOR).toString().padStart(6, '0').replace(/0+$/, '');
  return `${neg ? '-' : ''}${whole}${frac ? `.${frac}` : ''}`;
}

/**
 * An exact integer for a JSON body: a JSON number with every digit (JSON.rawJSON), however
 * large; `JSON.stringify` and `Response.json` write it as is.
 */
export function jsonInteger(n: bigint): number {
  return (JSON as unknown as { rawJSON(text: string): number }).rawJSON(n.toString());
}
