import { describe, expect, test } from 'bun:test';
import { clientAddress, trustedRanges } from './client-address.ts';

// Red-team (issue 8, points 3 and 9): behind the reverse proxy the docs put in front of
// Soulfra, every client has the proxy's address, so per-address limits become one limit for
// everybody (30 failed sign-ins locked the whole platform's sign-in and resets). With the
// proxy trusted, its X-Forwarded-For names the client; nobody else can choose an address.

const proxies = trustedRanges(['127.0.0.1/32', '10.0.0.0/8', 'fd00::/8']);

describe('the client address: spoofing attempts never choose the address', () => {
  const cases: {
    name: string;
    peer: string | null;
    xff: string | null;
    trusted?: typeof proxies;
    expected: string | null;
  }[] = [
    {
      name: 'no trusted proxies: the header is ignored',
      peer: '127.0.0.1',
      xff: '203.0.113.9',
      trusted: [],
      expected: '127.0.0.1',
    },
    {
      name: 'an untrusted peer sends the header: ignored',
      peer: '198.51.100.7',
      xff: '203.0.113.9',
      expected: '198.51.100.7',
    },
    {
      name: 'an untrusted peer in IPv6 sends the header: ignored',
      peer: '2001:db8::7',
      xff: '203.0.113.9',
      expected: '2001:db8::7',
    },
    {
      name: 'a trusted proxy names the client',
      peer: '127.0.0.1',
      xff: '203.0.113.9',
      expected: '203.0.113.9',
    },
    {
      name: 'an IPv4-mapped trusted peer',
      peer: '::ffff:127.0.0.1',
      xff: '203.0.113.9',
      expected: '203.0.113.9',
    },
    {
      name: 'the client prepends a forged hop: the proxy-appended one wins',
      peer: '127.0.0.1',
      xff: '1.1.1.1, 203.0.113.9',
      expected: '203.0.113.9',
    },
    {
      name: 'two headers (joined): the last one is the proxy’s',
      peer: '127.0.0.1',
      xff: '9.9.9.9, 8.8.8.8, 203.0.113.9',
      expected: '203.0.113.9',
    },
    {
      name: 'a chain of trusted proxies is skipped',
      peer: '127.0.0.1',
      xff: '203.0.113.9, 10.1.2.3, 10.9.9.9',
      expected: '203.0.113.9',
    },
    {
      name: 'a client forging a trusted address left of itself stays itself',
      peer: '127.0.0.1',
      xff: '10.0.0.1, 203.0.113.9',
      expected: '203.0.113.9',
    },
    {
      name: 'junk as the last hop: the proxy’s own address',
      peer: '127.0.0.1',
      xff: '203.0.113.9, unknown',
      expected: '127.0.0.1',
    },
    {
      name: 'junk behind a trusted hop stops at that hop',
      peer: '127.0.0.1',
      xff: 'evil, 10.1.2.3',
      expected: '10.1.2.3',
    },
    {
      name: 'leading zeros (octal to some parsers) are junk',
      peer: '127.0.0.1',
      xff: '0203.0.113.9',
      expected: '127.0.0.1',
    },
    { name: 'an empty header', peer: '127.0.0.1', xff: '', expected: '127.0.0.1' },
    {
      name: 'every hop trusted: the left-most',
      peer: '127.0.0.1',
      xff: '10.0.0.5, 10.0.0.6',
      expected: '10.0.0.5',
    },
    {
      name: 'a port on an IPv4 hop is dropped',
      peer: '127.0.0.1',
      xff: '203.0.113.9:51234',
      expected: '203.0.113.9',
    },
    {
      name: 'a bracketed IPv6 hop with a port',
      peer: '127.0.0.1',
      xff: '[2001:db8::9]:443',
      expected: '2001:db8::9',
    },
    { name: 'a trusted IPv6 proxy', peer: 'fd00::1', xff: '2001:db8::9', expected: '2001:db8::9' },
    { name: 'no header from a trusted proxy', peer: '127.0.0.1', xff: null, expected: '127.0.0.1' },
    { name: 'no peer (an in-process call)', peer: null, xff: '203.0.113.9', expected: null },
  ];
  for (const c of cases) {
    test(c.name, () => {
      expect(clientAddress(c.peer, c.xff, c.trusted ?? proxies)).toBe(c.expected);
    });
  }
});
