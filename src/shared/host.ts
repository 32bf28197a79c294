import { isIPv4, isIPv6 } from 'node:net';

/** A Host header that passed `parseHostHeader`: a lowercased name or address, and its port. */
export interface HostParts {
  /** A DNS name (no trailing dot), a dotted IPv4 address, or an IPv6 address without brackets. */
  hostname: string;
  /** The port after the colon, or null when there was none. */
  port: number | null;
}

// DNS labels joined by dots: letters, digits, hyphens inside (underscores too: container
// service names). A dotted IPv4 address is such a name as well. One regex: this is read on
// every request.
const NAME = /^[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?(?:\.[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?)*$/;
const PORT = /^[0-9]{1,5}$/;

/**
 * Reads a Host header strictly (RFC 9110 §7.2: `uri-host [ ":" port ]`), or null when it is
 * anything else: empty, userinfo or `@`, a path, a query, spaces, a port that is not 1–5 digits
 * (or above 65535), more than one colon outside brackets, a label that is not a DNS label, an
 * IPv6 zone id.
 * NB! Callers refuse a null with 400 before routing: links are never built from the header,
 * but a junk Host also makes Bun hand over a relative URL, which shifts the routed path.
 */
export function parseHostHeader(raw: string | null | undefined): HostParts | null {
  if (!raw || raw.length > 300) return null;
  const h = raw.toLowerCase();
  let hostname: string;
  let rest: string;
  if (h.startsWith('[')) {
    const end = h.indexOf(']');
    if (end < 0) return null;
    hostname = h.slice(1, end);
    // node's isIPv6 takes a zone id (`fe80::1%eth0`); a Host never carries one.
    if (hostname.includes('%') || !isIPv6(hostname)) return null;
    rest = h.slice(end + 1);
  } else {
    const colon = h.indexOf(':');
    hostname = colon < 0 ? h : h.slice(0, colon);
    rest = colon < 0 ? '' : h.slice(colon);
    if (hostname.endsWith('.')) hostname = hostname.slice(0, -1);
    if (hostname.length === 0 || hostname.length > 253) return null;
    if (!NAME.test(hostname)) return null;
  }
  if (rest === '') return { hostname, port: null };
  if (!rest.startsWith(':')) return null;
  const p = rest.slice(1);
  if (!PORT.test(p)) return null;
  const port = Number(p);
  return port <= 65535 ? { hostname, port } : null;
}

/**
 * Whether a parsed hostname is an IP address (IPv4 or IPv6) rather than a name. Cheap for the
 * common case (a name ending in a letter is no address), since it runs on every request.
 */
export function isIpHostname(hostname: string): boolean {
  if (hostname.includes(':')) return isIPv6(hostname);
  const last = hostname.charCodeAt(hostname.length - 1);
  return last >= 48 && last <= 57 && isIPv4(hostname);
}
