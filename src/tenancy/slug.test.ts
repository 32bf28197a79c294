import { describe, expect, test } from 'bun:test';
import { isAppError } from '../shared/errors.ts';
import { checkDomain } from './slug.ts';

/** The code and details a refused domain gets, or 'ok'. */
function verdict(host: unknown, path?: string): string | { code: string; details: unknown } {
  try {
    checkDomain(host, path);
    return 'ok';
  } catch (e) {
    if (!isAppError(e)) throw e;
    return { code: e.code, details: e.details };
  }
}

const ipReason = 'is an IP address; a custom domain must be a DNS name such as ai.example.com';

describe('checkDomain', () => {
  // An IP address can never route as a custom domain: a Host header carrying one is the operator's.
  const addresses = [
    '10.0.0.1',
    '192.168.1.20',
    '127.1',
    '10.0x1',
    '::1',
    '2001:db8::1',
    '[::1]',
    '[2001:db8::1]',
    '[10.0.0.1]',
    '::ffff:10.0.0.1',
  ];
  for (const host of addresses) {
    test(`${host} is refused as an IP address, naming the field`, () => {
      expect(verdict(host, '/host')).toEqual({
        code: 'platform.domain_ip_address',
        details: [{ path: '/host', reason: ipReason }],
      });
    });
  }

  test('DNS names pass, digits inside labels included; other malformed names stay domain_invalid', () => {
    for (const host of ['ai.example.com', '1password.example', 'a1.b2.example', 'x.y-9.example'])
      expect({ host, v: verdict(host) }).toEqual({ host, v: 'ok' });
    for (const host of ['https://x.example.com/', 'Example.COM', 'localhost', 'x.example.com:443', 7])
      expect({ host, code: (verdict(host) as { code: string }).code }).toEqual({
        host,
        code: 'platform.domain_invalid',
      });
  });
});
