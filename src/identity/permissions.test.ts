import { describe, expect, test } from 'bun:test';
import { can, keyRole, type Principal, type Scope } from './permissions.ts';
import { FailureThrottle, TokenBuckets } from './throttle.ts';

const user = (role: 'owner' | 'admin' | 'creator' | 'member' | 'auditor'): Principal => ({
  kind: 'user',
  userId: 'u',
  role,
  sessionId: 's',
  csrfToken: 'c',
});
/** A key as authenticate builds it: the owner's role through keyRole, then its scopes. */
const key = (role: 'owner' | 'admin' | 'member', scopes: Scope[]): Principal => ({
  kind: 'api_key',
  keyId: 'k',
  userId: null,
  role: keyRole(role, scopes),
  scopes,
});

describe('can()', () => {
  const table: [string, Principal | null, Parameters<typeof can>[1], boolean][] = [
    ['anyone: public', null, 'public', true],
    ['anonymous: signed_in', null, 'signed_in', false],
    ['member: ai', user('member'), 'ai:invoke', true],
    ['member: users:write', user('member'), 'users:write', false],
    ['admin: users:write', user('admin'), 'users:write', true],
    ['admin: billing:write', user('admin'), 'billing:write', false],
    ['owner: billing:write', user('owner'), 'billing:write', true],
    ['auditor: audit', user('auditor'), 'audit:read', true],
    ['auditor: ai', user('auditor'), 'ai:invoke', false],
    ['creator: agents:write', user('creator'), 'agents:write', true],
    ['ai key: ai', key('admin', ['ai:invoke']), 'ai:invoke', true],
    ['ai key: users:read', key('admin', ['ai:invoke']), 'users:read', false],
    ['admin key: users:write', key('admin', ['admin']), 'users:write', true],
    ['admin-scoped key of a member: users:write', key('member', ['admin']), 'users:write', false],
    ['any key: scim', key('owner', ['admin']), 'scim:provision', false],
    ['owner user: scim', user('owner'), 'scim:provision', false],
    ['scim token: scim', { kind: 'scim', tokenId: 't' }, 'scim:provision', true],
    ['scim token: users:read', { kind: 'scim', tokenId: 't' }, 'users:read', false],
    ['scim token: signed_in', { kind: 'scim', tokenId: 't' }, 'signed_in', false],
    // Point 5: an owner's key never exceeds admin unless a scope says owner.
    ["owner's admin key: billing:write", key('owner', ['admin']), 'billing:write', false],
    [
      "owner's admin+billing:read key: billing:write",
      key('owner', ['admin', 'billing:read']),
      'billing:write',
      false,
    ],
    ["owner's owner key: billing:write", key('owner', ['owner']), 'billing:write', true],
    [
      "admin's owner key (never minted, still capped): billing:write",
      key('admin', ['owner']),
      'billing:write',
      false,
    ],
    // Point 12: session and account management needs a session or a scope naming it.
    ['member session: account:manage', user('member'), 'account:manage', true],
    ['auditor session: account:manage', user('auditor'), 'account:manage', true],
    ['ai key: account:manage', key('member', ['ai:invoke']), 'account:manage', false],
    ['admin key: account:manage', key('admin', ['admin']), 'account:manage', false],
    ["owner's owner key: account:manage", key('owner', ['owner']), 'account:manage', false],
    ['account key: account:manage', key('member', ['account:manage']), 'account:manage', true],
    ['ai key: signed_in (reads /me)', key('member', ['ai:invoke']), 'signed_in', true],
  ];
  for (const [name, p, need, want] of table) {
    test(`${name} → ${want}`, () => expect(can(p, need)).toBe(want));
  }
});

describe('keyRole: the role a key acts as', () => {
  const table: [Parameters<typeof keyRole>[0], Scope[], ReturnType<typeof keyRole>][] = [
    ['owner', ['admin'], 'admin'],
    ['owner', ['ai:invoke'], 'admin'],
    ['owner', ['owner'], 'owner'],
    ['owner', ['admin', 'owner'], 'owner'],
    ['admin', ['admin'], 'admin'],
    ['member', ['owner'], 'member'],
  ];
  for (const [role, scopes, want] of table) {
    test(`${role} with ${scopes.join(',')} → ${want}`, () => expect(keyRole(role, scopes)).toBe(want));
  }
});

describe('throttles', () => {
  test('five failures lock the key until the oldest leaves the window', () => {
    const t = new FailureThrottle({ limit: 5, windowMs: 60_000 });
    for (let i = 0; i < 5; i++) {
      expect(t.retryAfter('a', 1000 + i)).toBe(0);
      t.fail('a', 1000 + i);
    }
    expect(t.retryAfter('a', 2000)).toBe(59);
    expect(t.retryAfter('b', 2000)).toBe(0);
    expect(t.retryAfter('a', 61_001)).toBe(0);
    t.reset('a');
    expect(t.retryAfter('a', 2000)).toBe(0);
  });

  test('a token bucket allows the rate in a burst, then refills', () => {
    const b = new TokenBuckets();
    expect([0, 1, 2].map(() => b.take('k', 3, 0))).toEqual([0, 0, 0]);
    expect(b.take('k', 3, 0)).toBe(20);
    expect(b.take('k', 3, 20_000)).toBe(0);
  });
});
