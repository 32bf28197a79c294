import { Database } from 'bun:sqlite';
import { describe, expect, test } from 'bun:test';
import { AppState, bindSecrets, Keyring } from '../../app/index.ts';
import { isAppError } from '../../shared/errors.ts';
import {
  addressKey,
  firstReplayOf,
  openPending,
  pendingCookieName,
  pendingUsed,
  recordPendingUsed,
  SSO_STARTS_PER_MIN,
  safeReturnTo,
  sealPending,
  takeSsoStart,
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
    const app = { state: new AppState() };
    for (let i = 0; i < SSO_STARTS_PER_MIN; i++) takeSsoStart(app, scope, '203.0.113.9', now);
    let refused: unknown = null;
    try {
      takeSsoStart(app, scope, '203.0.113.9', now);
    } catch (e) {
      refused = e;
    }
    expect(isAppError(refused) && [refused.code, refused.status]).toEqual(['sso.rate_limited', 429]);
    expect(isAppError(refused) && refused.retryAfter).toBeGreaterThan(0);
    // Rotating within one IPv6 /64 does not help.
    for (let i = 0; i < SSO_STARTS_PER_MIN; i++)
      takeSsoStart(app, scope, `2001:db8:7:7::${i.toString(16)}`, now);
    expect(() => takeSsoStart(app, scope, '2001:db8:7:7::ffff', now)).toThrow(/too many sign-ins/);
    expect(() => takeSsoStart(app, scope, '198.51.100.7', now)).not.toThrow();
    expect(() => takeSsoStart(app, `${scope}-other`, '203.0.113.9', now)).not.toThrow();
    // The budget comes back with time.
    expect(() => takeSsoStart(app, scope, '203.0.113.9', now + 60_000)).not.toThrow();
    // Another App in this process keeps its own budget: the same address and scope go ahead.
    expect(() => takeSsoStart({ state: new AppState() }, scope, '203.0.113.9', now)).not.toThrow();
  });
});

describe('sign-ins in flight are sealed into the browser, not kept on the server (issue 8, point 9)', () => {
  const ring = Keyring.ephemeral();
  const dbOf = (scope: string) => {
    const db = new Database(':memory:');
    db.exec(
      'CREATE TABLE sso_used (kind TEXT NOT NULL, id_hash TEXT NOT NULL, expires_at INTEGER NOT NULL, replay_audited INTEGER, PRIMARY KEY (kind, id_hash))',
    );
    bindSecrets(db, ring, scope);
    return db;
  };
  const a = dbOf('platform:plt_a');
  const b = dbOf('platform:plt_b');
  const control = dbOf('control');
  const sealed = sealPending(a, 'oidc', { state: 's1', exp: 1 });
  const flip = (v: string) => `${v.slice(0, -3)}${v.at(-3) === 'A' ? 'B' : 'A'}${v.slice(-2)}`;

  test('the cookie opens where it was sealed, for its kind', () => {
    expect(openPending(a, 'oidc', sealed)).toEqual({ state: 's1', exp: 1 });
    expect(sealed).toMatch(/^sf1\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/);
  });

  const attacks: { name: string; open: () => unknown }[] = [
    { name: "platform A's cookie on platform B", open: () => openPending(b, 'oidc', sealed) },
    { name: "a platform's cookie on the operator console", open: () => openPending(control, 'oidc', sealed) },
    { name: 'an OIDC cookie offered as a SAML one', open: () => openPending(a, 'saml', sealed) },
    { name: 'a tampered cookie (one character changed)', open: () => openPending(a, 'oidc', flip(sealed)) },
    { name: 'a cookie not sealed at all', open: () => openPending(a, 'oidc', '{"state":"s1","exp":1}') },
    { name: 'no cookie', open: () => openPending(a, 'oidc', null) },
    { name: 'an oversized cookie', open: () => openPending(a, 'oidc', `sf1.x.${'A'.repeat(5000)}`) },
  ];
  for (const c of attacks) test(`refused (does not open): ${c.name}`, () => expect(c.open()).toBeNull());

  test('one cookie per sign-in: the name is derived from its state, so two tabs do not collide', () => {
    expect(pendingCookieName('sf_oidc', 'one')).toMatch(/^sf_oidc_[0-9a-f]{16}$/);
    expect(pendingCookieName('sf_oidc', 'one')).not.toBe(pendingCookieName('sf_oidc', 'two'));
  });

  test('a used state is recorded once (its hash only), a second use is a replay audited once', () => {
    const db = dbOf('platform:plt_u');
    expect(pendingUsed(db, 'oidc', 'st')).toBe(false);
    expect(recordPendingUsed(db, 'oidc', 'st', 2_000, 1_000)).toBe(true);
    expect(recordPendingUsed(db, 'oidc', 'st', 2_000, 1_000)).toBe(false);
    expect(pendingUsed(db, 'oidc', 'st')).toBe(true);
    expect(pendingUsed(db, 'saml', 'st')).toBe(false);
    expect(db.query<{ id_hash: string }, []>('SELECT id_hash FROM sso_used').all()).not.toContainEqual({
      id_hash: 'st',
    });
    expect([firstReplayOf(db, 'oidc', 'st'), firstReplayOf(db, 'oidc', 'st')]).toEqual([true, false]);
    // Purged by expiry when the next one is recorded.
    expect(recordPendingUsed(db, 'oidc', 'other', 9_000, 2_000)).toBe(true);
    expect(pendingUsed(db, 'oidc', 'st')).toBe(false);
  });
});
