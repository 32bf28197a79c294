import { isIP } from 'node:net';
import { AppError } from '../shared/errors.ts';

/** Slugs that name parts of the product or common infrastructure hosts, never a platform. */
export const RESERVED_SLUGS: ReadonlySet<string> = new Set(
  'www api admin app auth sso login console dashboard operator status docs help support billing mail smtp static assets cdn metrics health internal system root soulfra'.split(
    ' ',
  ),
);

const SLUG_RE = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;

/**
 * Checks a platform slug against the contract: a DNS label of 2–63 characters from a-z, 0-9
 * and hyphen, not starting or ending with a hyphen, not reserved. Refused, never rewritten.
 */
export function checkSlug(slug: unknown): string {
  const detail = (reason: string) => [{ path: '/slug', reason }];
  if (typeof slug !== 'string' || slug.length === 0) {
    throw new AppError('platform.slug_invalid', 'slug is required', 400, detail('required'));
  }
  if (slug.length < 2 || slug.length > 63) {
    const reason = `must be 2 to 63 characters long (got ${slug.length})`;
    throw new AppError('platform.slug_invalid', `slug '${slug}' ${reason}`, 400, detail(reason));
  }
  if (!SLUG_RE.test(slug)) {
    const reason = 'must use only a-z, 0-9 and hyphens, and not start or end with a hyphen';
    throw new AppError('platform.slug_invalid', `slug '${slug}' ${reason}`, 400, detail(reason));
  }
  if (slug.includes('--')) {
    // `xn--` style double hyphens are punycode markers in DNS; refusing them avoids look-alikes.
    const reason = 'must not contain two hyphens in a row';
    throw new AppError('platform.slug_invalid', `slug '${slug}' ${reason}`, 400, detail(reason));
  }
  if (RESERVED_SLUGS.has(slug)) {
    throw new AppError('platform.slug_reserved', `slug '${slug}' is reserved`, 400, detail('reserved'));
  }
  return slug;
}

const HOST_RE = /^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)+$/;

/**
 * Whether a would-be domain is an IP address: IPv4, IPv6, either in brackets, or a name whose
 * last label is a number (`127.1`, `10.0x1`), which URL parsers read as an IPv4 address.
 */
export function isIpAddressLike(host: string): boolean {
  const inner = host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host;
  if (isIP(inner) !== 0) return true;
  const last = inner.split('.').filter(Boolean).at(-1) ?? '';
  return /^(\d+|0x[0-9a-f]*)$/i.test(last);
}

/**
 * Checks a custom domain: a lowercase DNS name with at least two labels, no port, no scheme,
 * and no IP address (400 `platform.domain_ip_address`): an address is the operator's host, and
 * a Host header carrying one never reaches a platform, so the mapping could never route.
 */
export function checkDomain(host: unknown, path = '/domain'): string {
  if (typeof host === 'string' && isIpAddressLike(host)) {
    const reason = 'is an IP address; a custom domain must be a DNS name such as ai.example.com';
    throw new AppError('platform.domain_ip_address', `domain '${host}' ${reason}`, 400, [{ path, reason }]);
  }
  if (typeof host !== 'string' || !HOST_RE.test(host)) {
    const reason = 'must be a lowercase host name such as ai.example.com (no scheme, port or path)';
    throw new AppError('platform.domain_invalid', `domain '${String(host)}' ${reason}`, 400, [
      { path, reason },
    ]);
  }
  return host;
}
