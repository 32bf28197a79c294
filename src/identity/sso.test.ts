import { Database } from 'bun:sqlite';
import { describe, expect, test } from 'bun:test';
import { isAppError } from '../shared/errors.ts';
import {
  addressKey,
  SSO_MAX_PENDING,
  SSO_STARTS_PER_MIN,
  safeReturnTo,
  takeSsoStart,
  trimSsoRequests,
} from './sso.ts';

describe('safeReturnTo: what is returned never leaves the origin (issue 8, point 4)', () => {
  // Each input, and what must come back. The checks are made on the normalised result too:
  // `new URL('/.//evil.example', base).pathname` is '//evil.example', a protocol-relative URL.
  const cases: { name: string; input: unknown; expected: string }[] = [
    { name: 'dot segment before a double slash', input: '/.//evil.example', expected: '/' },
    { name: 'dot-dot segment before a double slash', input: '/..//evil.example', expected: '/' },
    { name: 'several dot segments', input: '/./.././/evil.example/x', expected: '/' },
    { name: 'a dot segment and a backslash', input: '/./\\evil.example', expected: '/' },
    { name: 'dot segments after a real segment', input: '/a/..//evil.example', expected: '/' },
    { name: 'percent-encoded dot segment', input: '/%2e//evil.example', expected: '/' },
    { name: 'percent-encoded dot-dot segment', input: '/%2e%2e//evil.example', expected: '/' },
    { name: 'encoded slash right after the first', input: '/%2F/evil.example', expected: '/' },
    { name: 'encoded slash, lower case', input: '/%2f%2fevil.example', expected: '/' },
    { name: 'encoded backslash right after the first', input: '/%5Cevil.example', expected: '/' },
    { name: 'protocol-relative', input: '//evil.example', expected: '/' },
    { name: 'slash backslash', input: '/\\evil.example', expected: '/' },
    { name: 'a tab inside the double slash', input: '/\t/evil.example', expected: '/' },
    { name: 'a newline inside the double slash', input: '/\n/evil.example', expected: '/' },
    { name: 'a carriage return (header splitting)', input: '/ok\r\nSet-Cookie: x=y', expected: '/' },
    { name: 'a NUL', input: '/ok\u0000', expected: '/' },
    { name: 'absolute https URL', input: 'https://evil.example/', expected: '/' },
    { name: 'scheme-less relative', input: 'evil.example', expected: '/' },
    { name: 'javascript: URL', input: 'javascript:alert(1)', expected: '/' },
    { name: 'not a string', input: { path: '/' }, expected: '/' },
    { name: 'too long', input: `/${'a'.repeat(2000)}`, expected: '/' },
    // Honest paths come back as they were (or in their normal form).
    { name: 'a plain path with query and fragment', input: '/a/b?c=d#e', expected: '/a/b?c=d#e' },
    { name: 'a path with a harmless dot segment', input: '/a/./b', expected: '/a/b' },
    { name: 'a path whose dot-dot stays inside', input: '/a/../b', expected: '/b' },
    { name: 'a double slash later in the path', input: '/a//b', expected: '/a//b' },
    { name: 'the root', input: '/', expected: '/' },
  ];
  for (const c of cases) {
    test(`${c.name}: ${JSON.stringify(c.input).slice(0, 40)} → ${c.expected}`, () => {
      const out = safeReturnTo(c.input);
      expect(out).toBe(c.expected);
      // Whatever comes back, a browser resolving it stays on the page's origin.
      expect(new URL(out, 'https://platform.example/x/y').origin).toBe('https://platform.example');
    });
  }
});

describe('SSO start limits (issue 8, point 9)', () => {
  test('addressKey: IPv4 as is, IPv6 by its /64, IPv4-mapped as IPv4', () => {
    expect(addressKey('203.0.113.9')).toBe('203.0.113.9');
    expect(addressKey('2001:db8:1:2:3:4:5:6')).toBe('2001:db8:1:2::/64');
    expect(addressKey('2001:db8:1:2::99')).toBe('2001:db8:1:2::/64');
    expect(addressKey('2001:DB8:1:2:ffff::1')).toBe('2001:db8:1:2::/64');
    expect(addressKey('2001:db8::1')).toBe('2001:db8:0:0::/64');
    expect(addressKey('::ffff:198.51.100.7')).toBe('198.51.100.7');
    expect(addressKey(null)).toBe('unknown');
  });

  test('one address is refused past its budget; another address and another platform are not', () => {
    const now = 1_000_000;
    const scope = `plt_${crypto.randomUUID()}`;
    for (let i = 0; i < SSO_STARTS_PER_MIN; i++) takeSsoStart(scope, '203.0.113.9', now);
    let refused: unknown = null;
    try {
      takeSsoStart(scope, '203.0.113.9', now);
    } catch (e) {
      refused = e;
    }
    expect(isAppError(refused) && [refused.code, refused.status]).toEqual(['sso.rate_limited', 429]);
    expect(isAppError(refused) && refused.retryAfter).toBeGreaterThan(0);
    // Rotating within one IPv6 /64 does not help.
    for (let i = 0; i < SSO_STARTS_PER_MIN; i++) takeSsoStart(scope, `2001:db8:7:7::${i.toString(16)}`, now);
    expect(() => takeSsoStart(scope, '2001:db8:7:7::ffff', now)).toThrow(/too many sign-ins/);
    expect(() => takeSsoStart(scope, '198.51.100.7', now)).not.toThrow();
    expect(() => takeSsoStart(`${scope}-other`, '203.0.113.9', now)).not.toThrow();
    // The budget comes back with time.
    expect(() => takeSsoStart(scope, '203.0.113.9', now + 60_000)).not.toThrow();
  });

  test('a full table of sign-ins in flight drops the oldest; it never refuses the new one', () => {
    const db = new Database(':memory:');
    db.exec(
      'CREATE TABLE sso_requests (id TEXT PRIMARY KEY, kind TEXT NOT NULL, data TEXT NOT NULL, expires_at INTEGER NOT NULL)',
    );
    const now = 5_000_000;
    const insert = db.query("INSERT INTO sso_requests (id, kind, data, expires_at) VALUES (?, ?, '{}', ?)");
    db.transaction(() => {
      for (let i = 0; i < SSO_MAX_PENDING; i++) insert.run(`r${i}`, 'saml', now + 1 + i);
      insert.run('expired', 'saml', now - 1);
      insert.run('oidc-one', 'oidc', now + 1);
    })();
    trimSsoRequests(db, 'saml', now);
    insert.run('new', 'saml', now + 600_000);
    const ids = db.query<{ id: string }, []>("SELECT id FROM sso_requests WHERE kind = 'saml'").all();
    expect(ids.length).toBe(SSO_MAX_PENDING);
    expect(ids.some((r) => r.id === 'new')).toBe(true);
    expect(ids.some((r) => r.id === 'r0' || r.id === 'expired')).toBe(false);
    expect(db.query("SELECT id FROM sso_requests WHERE kind = 'oidc'").all()).toEqual([{ id: 'oidc-one' }]);
  });
});
