import { describe, expect, test } from 'bun:test';
import { clearCookie, readCookie, setCookie } from './cookies.ts';
import { AppError } from './errors.ts';

describe('cookies', () => {
  test('one shape: Path, HttpOnly, SameSite, Max-Age, then Secure under https', () => {
    expect(setCookie('sf_session', 'abc', { path: '/', sameSite: 'Lax', maxAgeSec: 60, secure: false })).toBe(
      'sf_session=abc; Path=/; HttpOnly; SameSite=Lax; Max-Age=60',
    );
    expect(setCookie('sf_session', 'abc', { path: '/', sameSite: 'Lax', maxAgeSec: 60, secure: true })).toBe(
      'sf_session=abc; Path=/; HttpOnly; SameSite=Lax; Max-Age=60; Secure',
    );
    expect(
      setCookie('x', 'sf1.a-b_c', {
        path: '/sso/saml',
        sameSite: 'None',
        maxAgeSec: 600,
        secure: true,
        httpOnly: false,
      }),
    ).toBe('x=sf1.a-b_c; Path=/sso/saml; SameSite=None; Max-Age=600; Secure');
    expect(clearCookie('x', { path: '/sso/oidc', sameSite: 'Lax', secure: true })).toBe(
      'x=; Path=/sso/oidc; HttpOnly; SameSite=Lax; Max-Age=0; Secure',
    );
  });

  test('a name, value or path that would break the header is refused, and None needs Secure', () => {
    const o = { path: '/', sameSite: 'Lax' as const, maxAgeSec: 1, secure: false };
    for (const [name, value, path] of [
      ['a b', 'v', '/'],
      ['a', 'v; Domain=evil.test', '/'],
      ['a', 'v\r\nSet-Cookie: b=1', '/'],
      ['a', 'v', '/; Domain=evil.test'],
      ['a=b', 'v', '/'],
    ] as const) {
      expect(() => setCookie(name, value, { ...o, path })).toThrow(AppError);
    }
    expect(() => setCookie('a', 'v', { ...o, maxAgeSec: 1.5 })).toThrow(AppError);
    expect(() => setCookie('a', 'v', { ...o, sameSite: 'None' })).toThrow('SameSite=None needs Secure');
  });

  test('readCookie finds a value by name', () => {
    expect(readCookie('a=1; sf_session=xyz; b=2', 'sf_session')).toBe('xyz');
    expect(readCookie('a=1', 'sf_session')).toBeNull();
    expect(readCookie(null, 'a')).toBeNull();
  });
});
