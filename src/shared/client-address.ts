import { parseCidr } from './outbound.ts';

/** A CIDR range as the outbound guard parses it (IPv4 kept as IPv4-mapped IPv6). */
export type AddressRange = Extract<ReturnType<typeof parseCidr>, { ok: true }>['range'];

/**
 * Parses the operator's `trusted_proxies` CIDRs (validated when the config loads; anything
 * unparsable is skipped here rather than trusted).
 */
export function trustedRanges(cidrs: readonly string[]): AddressRange[] {
  return cidrs.flatMap((c) => {
    const r = parseCidr(c);
    return r.ok ? [r.range] : [];
  });
}

/** An address literal as 16 bytes (IPv4 as IPv4-mapped), or null when it is not one. */
function bytesOf(ip: string): Uint8Array | null {
  const r = parseCidr(ip.includes(':') ? `${ip}/128` : `${ip}/32`);
  return r.ok ? r.range.net : null;
}

function inRange(a: Uint8Array, r: AddressRange): boolean {
  const whole = r.prefix >> 3;
  for (let i = 0; i < whole; i++) if (a[i] !== r.net[i]) return false;
  const rest = r.prefix & 7;
  if (rest === 0) return true;
  const mask = (0xff << (8 - rest)) & 0xff;
  return (a[whole]! & mask) === (r.net[whole]! & mask);
}

/** Whether an address (the socket peer) is one of the trusted proxies. */
export function isTrustedPeer(peer: string | null, trusted: readonly AddressRange[]): boolean {
  const b = peer === null ? null : bytesOf(peer);
  return b !== null && trusted.some((r) => inRange(b, r));
}

/**
 * Whether a request came through a proxy: it carries a forwarding header (`Forwarded`,
 * `X-Forwarded-For`, `X-Real-IP`), or its peer is a trusted proxy. Behind a proxy a loopback
 * listener is reachable from anywhere, so what is open on loopback (`/metrics`) must not be.
 */
export function viaProxy(peer: string | null, headers: Headers, trusted: readonly AddressRange[]): boolean {
  return (
    headers.has('forwarded') ||
    headers.has('x-forwarded-for') ||
    headers.has('x-real-ip') ||
    isTrustedPeer(peer, trusted)
  );
}

/** One X-Forwarded-For entry as a bare address (`1.2.3.4:5678` and `[v6]:port` lose the port), or null. */
function hopAddress(raw: string): string | null {
  const s = raw.trim();
  const v4port = /^(\d{1,3}(?:\.\d{1,3}){3}):\d{1,5}$/.exec(s);
  const v6 = /^\[([0-9A-Fa-f:.]+)\](?::\d{1,5})?$/.exec(s);
  const ip = v4port?.[1] ?? v6?.[1] ?? s;
  return bytesOf(ip) ? ip : null;
}

/**
 * The address a request comes from, for limits and audit entries. The socket peer's address,
 * unless the peer is one of the operator's trusted proxies (`trusted_proxies`; none by
 * default): then X-Forwarded-For is read from the right, skipping hops that are trusted
 * proxies too, and the first one that is not is the client. A hop that is not an address
 * (`unknown`, junk) stops the walk at the last trusted hop, so a client can never choose its
 * own address: whatever it writes into the header sits left of what the proxy appended.
 * Without trusted proxies the header is ignored entirely.
 */
export function clientAddress(
  peer: string | null,
  forwardedFor: string | null,
  trusted: readonly AddressRange[],
): string | null {
  if (peer === null || trusted.length === 0 || forwardedFor === null) return peer;
  const isTrusted = (ip: string) => isTrustedPeer(ip, trusted);
  if (!isTrusted(peer)) return peer;
  const hops = forwardedFor.split(',');
  let client = peer;
  for (let i = hops.length - 1; i >= 0; i--) {
    const hop = hopAddress(hops[i]!);
    if (hop === null) break;
    client = hop;
    if (!isTrusted(hop)) break;
  }
  return client;
}
