import { lookup } from 'node:dns/promises';
import { AppError } from './errors.ts';

/**
 * The one guard for outbound requests made on a tenant's behalf (OIDC discovery, JWKS, token and
 * userinfo calls today; webhooks, agent tools and custom model endpoints later). A tenant admin
 * chooses these URLs, so without a guard the server fetches whatever they point at: loopback
 * ports, the cloud's metadata service, the private network behind the appliance (SSRF).
 *
 * For every request, and again for every redirect hop, the guard:
 * - accepts only `http:` and `https:` URLs without userinfo;
 * - resolves the name once (an injectable resolver) and refuses when ANY answer is loopback,
 *   private (RFC 1918, CGNAT 100.64/10, ULA fc00::/7), link-local, a metadata address
 *   (169.254.169.254, fd00:ec2::254, ...), multicast, broadcast, unspecified or otherwise
 *   reserved, including the IPv4-mapped, -compatible, NAT64, 6to4 and Teredo spellings of those
 *   in IPv6, and refuses metadata host names (`metadata.google.internal`, ...) outright;
 * - connects to the address it checked (an injectable connector), keeping the name in the Host
 *   header and in TLS (SNI and certificate check), so a second DNS answer (rebinding) is never
 *   used;
 * - bounds the time (one deadline for resolution, connection, every hop and the body), the
 *   number of redirects, and the size of the body it hands back.
 * The operator opens ranges with `outbound: { allow: [CIDR, ...] }` (on-prem IdPs, tests on
 * 127.0.0.1); an allowed range wins over every refusal above except the metadata names.
 *
 * Every failure, whatever it was (refused address, unknown name, closed port, TLS error,
 * timeout, oversized answer), is one `OutboundError` with one code and one message, so a caller
 * cannot learn what is listening where; what happened goes to `onFailure` (the server log).
 */

/** The code of every outbound failure (refused, unreachable, timed out, too large). */
export const OUTBOUND_FAILED = 'outbound.failed';
/** The message of every outbound failure: it says nothing about what happened. */
export const OUTBOUND_MESSAGE = 'the remote server could not be reached, or its answer was refused';

/** Why a request failed, for the server log and tests only: never shown to a client. */
export type OutboundReason =
  | 'bad_url'
  | 'scheme'
  | 'userinfo'
  | 'forbidden_name'
  | 'forbidden_address'
  | 'dns'
  | 'connect'
  | 'timeout'
  | 'aborted'
  | 'too_large'
  | 'too_many_redirects'
  | 'bad_redirect'
  | 'not_allowed';

/**
 * An outbound request that failed or was refused. `code`, `message` and `status` (502) are the
 * same whatever happened; `reason` and `detail` say what, for the server log only.
 */
export class OutboundError extends AppError {
  readonly reason: OutboundReason;
  readonly detail: string;
  /** The URL the failure concerns, without query or userinfo (for the log). */
  readonly target: string;

  constructor(reason: OutboundReason, detail: string, target: string) {
    super(OUTBOUND_FAILED, OUTBOUND_MESSAGE, 502);
    this.reason = reason;
    this.detail = detail;
    this.target = target;
  }
}

/** Whether a value is an OutboundError. */
export function isOutboundError(e: unknown): e is OutboundError {
  return e instanceof OutboundError;
}

/** One address a name resolves to. */
export interface ResolvedAddress {
  address: string;
  family: 4 | 6;
}

/** Resolves a host name to every address it has (the system resolver unless injected). */
export type Resolver = (hostname: string) => Promise<ResolvedAddress[]>;

/** A checked destination: the URL, and the one address the connection must go to. */
export interface CheckedTarget {
  url: URL;
  /** The checked address to connect to (an IPv4-mapped IPv6 answer is given as IPv4). */
  address: string;
  family: 4 | 6;
}

/** What a connector sends: the request of one hop (redirects are the guard's business). */
export interface ConnectRequest {
  method: string;
  headers: Headers;
  body: OutboundBody;
  signal: AbortSignal;
}

/**
 * Makes one HTTP exchange with a checked target: connects to `target.address` (never resolving
 * `target.url`'s name again), sends Host and TLS SNI for the URL's name, does not follow
 * redirects. The default is `fetchConnector()`; tests inject one that records and refuses.
 */
export type Connector = (target: CheckedTarget, req: ConnectRequest) => Promise<Response>;

/** The request bodies the guard accepts: replayable, so a 307/308 redirect can resend them. */
export type OutboundBody = string | URLSearchParams | Uint8Array | ArrayBuffer | null | undefined;

/** A request through the guard (a subset of `RequestInit`). */
export interface OutboundInit {
  method?: string;
  headers?: HeadersInit;
  body?: OutboundBody;
  signal?: AbortSignal;
  /** `follow` (the default: each hop checked, at most `maxRedirects`), `manual` or `error`. */
  redirect?: 'follow' | 'manual' | 'error';
  /**
   * Called with every URL before it is resolved, the first and each redirect's: false refuses it
   * (`not_allowed`), e.g. a host the tenant's own allowlist does not name.
   */
  allowUrl?: (url: URL) => boolean;
  /** Headers dropped, besides Authorization and cookies, when a redirect leaves the origin. */
  sensitiveHeaders?: readonly string[];
  /** This request's largest body, in bytes (default: the guard's `maxBytes`). */
  maxBytes?: number;
  /** This request's deadline, redirects and body included (default: the guard's `timeoutMs`). */
  timeoutMs?: number;
}

/** What the guard is made of. */
export interface OutboundOptions {
  /** CIDRs the operator opens (`outbound.allow`): addresses in them are never refused. */
  allow?: readonly string[];
  resolve?: Resolver;
  connect?: Connector;
  /** Redirects followed at most (default 5). */
  maxRedirects?: number;
  /** Largest body handed back, in bytes (default 1 MiB). */
  maxBytes?: number;
  /** One deadline for the whole request, redirects and body included (default 10 s). */
  timeoutMs?: number;
  /** Told about every failure, with its reason and detail (the server log). */
  onFailure?: (e: OutboundError) => void;
}

/** The guard: `fetch` for whole requests, `checkTarget` to vet a URL without connecting. */
export interface OutboundGuard {
  /**
   * A `fetch` whose every hop passes the guard. The answer's body is read whole (at most
   * `maxBytes`) before it is handed back. Throws `OutboundError` on any failure.
   */
  fetch(input: string | URL, init?: OutboundInit): Promise<Response>;
  /** Checks a URL and resolves its name; throws `OutboundError` when it may not be reached. */
  checkTarget(input: string | URL, signal?: AbortSignal): Promise<CheckedTarget>;
  /** The ranges the operator opened, as given. */
  readonly allow: readonly string[];
}

// ---------------------------------------------------------------------------------------------
// Addresses and ranges. Every address is held as 16 bytes, IPv4 as IPv4-mapped IPv6
// (::ffff:a.b.c.d), so 127.0.0.1 and ::ffff:127.0.0.1 are one address to every check.

type Bytes = Uint8Array;
interface Range {
  net: Bytes;
  prefix: number;
}

const MAPPED_PREFIX = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff];

function parseIPv4(s: string): Bytes | null {
  const parts = s.split('.');
  if (parts.length !== 4) return null;
  const out = new Uint8Array(16);
  out.set(MAPPED_PREFIX);
  for (let i = 0; i < 4; i++) {
    const p = parts[i]!;
    // Decimal only, no leading zeros (0177 means 127 to some parsers and 177 to others).
    if (!/^(0|[1-9][0-9]{0,2})$/.test(p)) return null;
    const n = Number(p);
    if (n > 255) return null;
    out[12 + i] = n;
  }
  return out;
}

function parseIPv6(s: string): Bytes | null {
  if (!/^[0-9a-fA-F:.]+$/.test(s)) return null;
  let text = s;
  let tail: Bytes | null = null;
  if (text.includes('.')) {
    const at = text.lastIndexOf(':');
    tail = parseIPv4(text.slice(at + 1));
    if (!tail) return null;
    text = `${text.slice(0, at + 1)}0:0`;
  }
  const halves = text.split('::');
  if (halves.length > 2) return null;
  const groups = (h: string) => (h === '' ? [] : h.split(':'));
  const left = groups(halves[0]!);
  const right = halves.length === 2 ? groups(halves[1]!) : [];
  const count = left.length + right.length;
  if (halves.length === 2 ? count > 7 : count !== 8) return null;
  const all = [...left, ...Array<string>(8 - count).fill('0'), ...right];
  const out = new Uint8Array(16);
  for (let i = 0; i < 8; i++) {
    const g = all[i]!;
    if (!/^[0-9a-fA-F]{1,4}$/.test(g)) return null;
    const n = Number.parseInt(g, 16);
    out[i * 2] = n >> 8;
    out[i * 2 + 1] = n & 0xff;
  }
  if (tail) out.set(tail.subarray(12), 12);
  return out;
}

/** An IP address (IPv4 dotted decimal, or IPv6 with or without brackets) as 16 bytes, or null. */
function parseIp(s: string): { bytes: Bytes; family: 4 | 6 } | null {
  const v4 = parseIPv4(s);
  if (v4) return { bytes: v4, family: 4 };
  const bare = s.startsWith('[') && s.endsWith(']') ? s.slice(1, -1) : s;
  const v6 = parseIPv6(bare);
  return v6 ? { bytes: v6, family: 6 } : null;
}

/** Whether `s` is an IP address literal (IPv4 dotted decimal or IPv6, brackets allowed). */
export function isIpAddress(s: string): boolean {
  return parseIp(s) !== null;
}

function inRange(a: Bytes, r: Range): boolean {
  const whole = r.prefix >> 3;
  for (let i = 0; i < whole; i++) if (a[i] !== r.net[i]) return false;
  const rest = r.prefix & 7;
  if (rest === 0) return true;
  const mask = (0xff << (8 - rest)) & 0xff;
  return (a[whole]! & mask) === (r.net[whole]! & mask);
}

/**
 * Parses a CIDR (`10.0.0.0/8`, `127.0.0.1/32`, `fd00::/8`): the prefix is required and the
 * address must have no bits set past it (`10.1.0.0/8` is refused: which was meant?). Returns
 * the range, or a reason it is not one (for config validation).
 */
export function parseCidr(s: string): { ok: true; range: Range } | { ok: false; reason: string } {
  const slash = s.indexOf('/');
  if (slash < 0) return { ok: false, reason: 'must be a CIDR with a prefix length, e.g. 10.0.0.0/8' };
  const ip = parseIp(s.slice(0, slash));
  const bits = s.slice(slash + 1);
  if (!ip) return { ok: false, reason: 'not an IPv4 or IPv6 address before the /' };
  const max = ip.family === 4 ? 32 : 128;
  if (!/^(0|[1-9][0-9]{0,2})$/.test(bits) || Number(bits) > max)
    return { ok: false, reason: `the prefix length must be 0 to ${max}` };
  const prefix = Number(bits) + (ip.family === 4 ? 96 : 0);
  const range = { net: ip.bytes, prefix };
  for (let i = prefix; i < 128; i++) {
    if ((ip.bytes[i >> 3]! >> (7 - (i & 7))) & 1)
      return { ok: false, reason: 'the address has bits set past the prefix length' };
  }
  return { ok: true, range };
}

/** What kind of non-public address an address is. */
export type AddressClass =
  | 'loopback'
  | 'private'
  | 'link_local'
  | 'metadata'
  | 'multicast'
  | 'broadcast'
  | 'unspecified'
  | 'reserved';

function range(cidr: string): Range {
  const r = parseCidr(cidr);
  if (!r.ok) throw new Error(`outbound: bad built-in range ${cidr}: ${r.reason}`);
  return r.range;
}

// First match wins: the specific ranges come before the ranges that hold them.
const V4_CLASSES: [Range, AddressClass][] = (
  [
    ['169.254.169.254/32', 'metadata'], // AWS, GCP, Azure, OpenStack, Oracle, DigitalOcean
    ['169.254.170.2/32', 'metadata'], // AWS ECS task metadata
    ['100.100.100.200/32', 'metadata'], // Alibaba Cloud
    ['0.0.0.0/8', 'unspecified'],
    ['10.0.0.0/8', 'private'],
    ['100.64.0.0/10', 'private'], // shared address space (carrier-grade NAT)
    ['127.0.0.0/8', 'loopback'],
    ['169.254.0.0/16', 'link_local'],
    ['172.16.0.0/12', 'private'],
    ['192.0.0.0/24', 'reserved'], // IETF protocol assignments
    ['192.0.2.0/24', 'reserved'], // documentation
    ['192.88.99.0/24', 'reserved'], // 6to4 relay anycast
    ['192.168.0.0/16', 'private'],
    ['198.18.0.0/15', 'reserved'], // benchmarking
    ['198.51.100.0/24', 'reserved'], // documentation
    ['203.0.113.0/24', 'reserved'], // documentation
    ['224.0.0.0/4', 'multicast'],
    ['255.255.255.255/32', 'broadcast'],
    ['240.0.0.0/4', 'reserved'],
  ] as const
).map(([c, k]) => [range(c), k]);

const V6_CLASSES: [Range, AddressClass][] = (
  [
    ['::/128', 'unspecified'],
    ['::1/128', 'loopback'],
    ['fd00:ec2::254/128', 'metadata'], // AWS over IPv6
    ['::/96', 'reserved'], // IPv4-compatible (deprecated)
    ['::ffff:0:0:0/96', 'reserved'], // IPv4-translated (SIIT)
    ['64:ff9b:1::/48', 'private'], // local-use NAT64
    ['100::/64', 'reserved'], // discard-only
    ['2001:db8::/32', 'reserved'], // documentation
    ['2001:10::/28', 'reserved'], // ORCHID
    ['2001:20::/28', 'reserved'], // ORCHIDv2
    ['3fff::/20', 'reserved'], // documentation
    ['fc00::/7', 'private'], // unique local
    ['fe80::/10', 'link_local'],
    ['fec0::/10', 'private'], // site-local (deprecated)
    ['ff00::/8', 'multicast'],
  ] as const
).map(([c, k]) => [range(c), k]);

const MAPPED = range('::ffff:0:0/96');
const NAT64 = range('64:ff9b::/96');
const SIX_TO_FOUR = range('2002::/16');
const TEREDO = range('2001::/32');
const GLOBAL_UNICAST = range('2000::/3');

/** The IPv4 address inside 16 bytes at `offset` (XORed with `xor`), as IPv4-mapped bytes. */
function embedded(a: Bytes, offset: number, xor = 0): Bytes {
  const out = new Uint8Array(16);
  out.set(MAPPED_PREFIX);
  for (let i = 0; i < 4; i++) out[12 + i] = a[offset + i]! ^ xor;
  return out;
}

function classifyBytes(a: Bytes): AddressClass | null {
  if (inRange(a, MAPPED)) {
    for (const [r, k] of V4_CLASSES) if (inRange(a, r)) return k;
    return null;
  }
  for (const [r, k] of V6_CLASSES) if (inRange(a, r)) return k;
  // Forms that carry an IPv4 address: refused when that address would be.
  if (inRange(a, NAT64)) return classifyBytes(embedded(a, 12));
  if (inRange(a, SIX_TO_FOUR)) return classifyBytes(embedded(a, 2));
  if (inRange(a, TEREDO)) return classifyBytes(embedded(a, 12, 0xff));
  // Outside 2000::/3 nothing is global unicast today.
  if (!inRange(a, GLOBAL_UNICAST)) return 'reserved';
  return null;
}

/**
 * The class of a non-public address (`loopback`, `private`, `metadata`, ...), or null for a
 * public one. Throws on a string that is not an IP address.
 */
export function classifyAddress(ip: string): AddressClass | null {
  const p = parseIp(ip);
  if (!p) throw new Error(`not an IP address: ${ip}`);
  return classifyBytes(p.bytes);
}

/** Host names of cloud metadata services, refused whatever they resolve to. */
const METADATA_NAMES = new Set([
  'metadata',
  'metadata.google.internal',
  'metadata.goog',
  'metadata.internal',
  'metadata.azure.internal',
  'instance-data',
  'instance-data.ec2.internal',
  'metadata.tencentyun.com',
  'metadata.platformequinix.com',
]);

/** Whether a host name (lowercase, without a trailing dot) names a metadata service. */
export function isMetadataName(name: string): boolean {
  return METADATA_NAMES.has(name) || name.endsWith('.metadata.google.internal');
}

// ---------------------------------------------------------------------------------------------
// The defaults: the system resolver and Bun's fetch pinned to the checked address.

/** The system resolver (getaddrinfo, so /etc/hosts counts): every address of a name. */
export const systemResolver: Resolver = async (hostname) => {
  const answers = await lookup(hostname, { all: true, verbatim: true });
  return answers.map((a) => ({ address: a.address, family: a.family === 6 ? 6 : 4 }));
};

/**
 * The connector used in production: Bun's `fetch` to the checked IP (never the name, so no
 * second lookup), with `Host: <name>` and, for https, TLS `serverName: <name>` so SNI and the
 * certificate check are those of the name. No redirects, no proxy (the proxy would resolve the
 * name itself). Bun keys its pooled connections by server name as well, so a connection verified
 * for one name is not reused for another on the same address. `ca` adds trusted roots (tests).
 */
export function fetchConnector(opts: { ca?: string | string[] } = {}): Connector {
  return (target, req) => {
    const u = target.url;
    const ip = target.family === 6 ? `[${target.address}]` : target.address;
    const pinned = `${u.protocol}//${ip}${u.port ? `:${u.port}` : ''}${u.pathname}${u.search}`;
    const headers = new Headers(req.headers);
    headers.set('host', u.host);
    const name = u.hostname.startsWith('[') ? null : isIpAddress(u.hostname) ? null : u.hostname;
    const tls =
      u.protocol === 'https:'
        ? { ...(name ? { serverName: name } : {}), ...(opts.ca ? { ca: opts.ca } : {}) }
        : undefined;
    return fetch(pinned, {
      method: req.method,
      headers,
      body: req.body ?? null,
      redirect: 'manual',
      signal: req.signal,
      proxy: false,
      ...(tls ? { tls } : {}),
    } as RequestInit);
  };
}

// ---------------------------------------------------------------------------------------------
// The guard.

const REDIRECTS = new Set([301, 302, 303, 307, 308]);
/** Headers that must not follow a redirect to another origin (fetch drops them too). */
const CREDENTIAL_HEADERS = ['authorization', 'cookie', 'proxy-authorization'];

/** The URL without userinfo or query, for the log. */
function logTarget(target: URL | string): string {
  let u: URL;
  try {
    u = typeof target === 'string' ? new URL(target) : target;
  } catch {
    return String(target).slice(0, 200);
  }
  return `${u.protocol}//${u.host}${u.pathname}`.slice(0, 300);
}

function errText(e: unknown): string {
  if (!(e instanceof Error)) return String(e).slice(0, 300);
  const code = (e as { code?: unknown }).code;
  return `${e.name}${typeof code === 'string' ? ` ${code}` : ''}: ${e.message}`.slice(0, 300);
}

/** Waits for `p`, or rejects as soon as `signal` aborts. */
function raced<T>(p: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    p.then(
      (v) => {
        signal.removeEventListener('abort', onAbort);
        resolve(v);
      },
      (e) => {
        signal.removeEventListener('abort', onAbort);
        reject(e);
      },
    );
  });
}

/**
 * Builds the guard. The allow list is checked here: a bad CIDR throws (config validation
 * reports it earlier, with its path).
 */
export function createOutboundGuard(opts: OutboundOptions = {}): OutboundGuard {
  const allow = opts.allow ?? [];
  const allowed: Range[] = allow.map((c) => {
    const r = parseCidr(c);
    if (!r.ok) throw new Error(`outbound.allow: ${c}: ${r.reason}`);
    return r.range;
  });
  const resolve = opts.resolve ?? systemResolver;
  const connect = opts.connect ?? fetchConnector();
  const maxRedirects = opts.maxRedirects ?? 5;
  const maxBytes = opts.maxBytes ?? 1024 * 1024;
  const timeoutMs = opts.timeoutMs ?? 10_000;

  const fail = (reason: OutboundReason, detail: string, target: URL | string): OutboundError => {
    const e = new OutboundError(reason, detail, logTarget(target));
    try {
      opts.onFailure?.(e);
    } catch {}
    return e;
  };

  /** Whether the deadline or the caller ended it: the failure to report. */
  const stopped = (signal: AbortSignal, deadline: AbortSignal, target: URL | string, ms = timeoutMs) =>
    deadline.aborted
      ? fail('timeout', `no complete answer within ${ms} ms`, target)
      : signal.aborted
        ? fail('aborted', `the caller aborted: ${errText(signal.reason)}`, target)
        : null;

  /** One address, vetted: its bytes, and why it is refused (null: it may be reached). */
  const vet = (address: string): { ok: boolean; why: string; ip: string; family: 4 | 6 } | null => {
    const p = parseIp(address);
    if (!p) return null;
    const mapped = inRange(p.bytes, MAPPED);
    // An IPv4-mapped answer is the IPv4 address to the kernel: connect to that.
    const ip = mapped
      ? Array.from(p.bytes.subarray(12)).join('.')
      : address.replace(/^\[|\]$/g, '').toLowerCase();
    const family = mapped ? 4 : 6;
    if (allowed.some((r) => inRange(p.bytes, r))) return { ok: true, why: '', ip, family };
    const k = classifyBytes(p.bytes);
    return { ok: k === null, why: k ?? '', ip, family };
  };

  const check = async (
    input: string | URL,
    signal: AbortSignal,
    deadline: AbortSignal,
  ): Promise<CheckedTarget> => {
    let url: URL;
    try {
      url = new URL(String(input));
    } catch {
      throw fail('bad_url', 'not an absolute URL', String(input));
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:')
      throw fail('scheme', `scheme ${url.protocol} is not http or https`, url);
    if (url.username || url.password) throw fail('userinfo', 'the URL carries userinfo', url);
    const host = url.hostname;
    const literal = parseIp(host);
    let answers: ResolvedAddress[];
    if (literal) answers = [{ address: host, family: literal.family }];
    else {
      const name = host.toLowerCase().replace(/\.$/, '');
      if (!name) throw fail('bad_url', 'no host', url);
      if (isMetadataName(name)) throw fail('forbidden_name', `${name} names a metadata service`, url);
      try {
        answers = await raced(resolve(name), signal);
      } catch (e) {
        throw stopped(signal, deadline, url) ?? fail('dns', `${name} did not resolve: ${errText(e)}`, url);
      }
      if (!answers.length) throw fail('dns', `${name} has no address`, url);
    }
    // Every answer must pass: the system may pick any of them, and a mixed answer is a trick.
    let chosen: { ip: string; family: 4 | 6 } | null = null;
    for (const a of answers) {
      const v = vet(a.address);
      if (!v)
        throw fail('dns', `the resolver answered ${String(a.address).slice(0, 60)}, not an address`, url);
      if (!v.ok) throw fail('forbidden_address', `${host} is ${a.address} (${v.why})`, url);
      chosen ??= v;
    }
    return { url, address: chosen!.ip, family: chosen!.family };
  };

  /** Reads the body whole, at most `maxBytes`, and hands back an equivalent Response. */
  const buffered = async (res: Response, url: URL, maxBytes: number): Promise<Response> => {
    const declared = Number(res.headers.get('content-length') ?? '0');
    if (declared > maxBytes) {
      await res.body?.cancel().catch(() => {});
      throw fail('too_large', `content-length ${declared} is over ${maxBytes} bytes`, url);
    }
    const parts: Uint8Array[] = [];
    let size = 0;
    if (res.body) {
      const reader = res.body.getReader();
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        size += value.byteLength;
        if (size > maxBytes) {
          await reader.cancel().catch(() => {});
          throw fail('too_large', `the body is over ${maxBytes} bytes`, url);
        }
        parts.push(value);
      }
    }
    const body = new Uint8Array(size);
    let at = 0;
    for (const p of parts) {
      body.set(p, at);
      at += p.byteLength;
    }
    const headers = new Headers(res.headers);
    // The body is whole and decoded now: these described the wire, not this body.
    for (const h of ['content-encoding', 'content-length', 'transfer-encoding']) headers.delete(h);
    const nullBody = res.status === 204 || res.status === 205 || res.status === 304;
    return new Response(nullBody ? null : body, {
      status: res.status,
      statusText: res.statusText,
      headers,
    });
  };

  const guardedFetch = async (input: string | URL, init: OutboundInit = {}): Promise<Response> => {
    const ms = init.timeoutMs ?? timeoutMs;
    const limit = init.maxBytes ?? maxBytes;
    const deadline = AbortSignal.timeout(ms);
    const signal = init.signal ? AbortSignal.any([init.signal, deadline]) : deadline;
    const mode = init.redirect ?? 'follow';
    let method = (init.method ?? 'GET').toUpperCase();
    const headers = new Headers(init.headers);
    let body = init.body;
    let current: string | URL = input;
    const strip = [...CREDENTIAL_HEADERS, ...(init.sensitiveHeaders ?? []).map((h) => h.toLowerCase())];
    for (let hop = 0; ; hop++) {
      if (init.allowUrl) {
        let u: URL | null = null;
        try {
          u = new URL(String(current));
        } catch {}
        if (u && !init.allowUrl(u)) throw fail('not_allowed', `${u.host} is not allowed by the caller`, u);
      }
      const target = await check(current, signal, deadline);
      const url = target.url;
      try {
        const res = await raced(connect(target, { method, headers, body, signal }), signal);
        if (!REDIRECTS.has(res.status) || mode === 'manual' || !res.headers.has('location'))
          return await raced(buffered(res, url, limit), signal);
        await res.body?.cancel().catch(() => {});
        if (mode === 'error')
          throw fail('bad_redirect', `redirected (${res.status}) where none was allowed`, url);
        if (hop >= maxRedirects) throw fail('too_many_redirects', `more than ${maxRedirects} redirects`, url);
        let next: URL;
        try {
          next = new URL(res.headers.get('location')!, url);
        } catch {
          throw fail('bad_redirect', 'the Location header is not a URL', url);
        }
        if (url.protocol === 'https:' && next.protocol === 'http:')
          throw fail('bad_redirect', 'redirected from https to http', url);
        // As fetch does: 303, and 301/302 after a POST, go on as a GET without a body.
        if (res.status === 303 || ((res.status === 301 || res.status === 302) && method === 'POST')) {
          if (method !== 'HEAD') method = 'GET';
          body = undefined;
          for (const h of ['content-type', 'content-length', 'content-encoding']) headers.delete(h);
        }
        if (next.origin !== url.origin) for (const h of strip) headers.delete(h);
        current = next;
      } catch (e) {
        if (e instanceof OutboundError) throw e;
        throw stopped(signal, deadline, url, ms) ?? fail('connect', errText(e), url);
      }
    }
  };

  return {
    allow,
    fetch: guardedFetch,
    async checkTarget(input, signal) {
      const deadline = AbortSignal.timeout(timeoutMs);
      return check(input, signal ? AbortSignal.any([signal, deadline]) : deadline, deadline);
    },
  };
}
