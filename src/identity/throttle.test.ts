import type { Database } from 'bun:sqlite';
import { afterAll, afterEach, beforeAll, describe, expect, test } from 'bun:test';
import { join } from 'node:path';
import { tempDir } from '../../tests/helpers.ts';
import { silentLogger } from '../app/index.ts';
import { createPlatform, type Instance, openInstance } from '../flows/index.ts';
import { isAppError } from '../shared/errors.ts';
import { passwordSignIn, unlockUser } from './accounts/auth.service.ts';
import { createUser } from './accounts/users.service.ts';
import { AUTH_LIMITS, addressKey } from './throttle.ts';

// The sign-in throttle against the attacks of issue 8 point 3, driven in process: a clock the
// test moves, client addresses given as data (documentation ranges, never contacted), and a
// count of every password check that really ran.

const PASSWORD = 'the-right-password-1';
let clock = Date.parse('2026-06-01T12:00:00Z');
const tmp = tempDir();
const dataDir = join(tmp.dir, 'data');
let inst: Instance;
let platformId: string;
let otherId: string;

const open = () => openInstance({ dataDir, log: silentLogger, clock: { now: () => clock } });
const withDb = <T>(id: string, fn: (db: Database) => Promise<T>): Promise<T> => {
  const lease = inst.app.platformDbs.acquire(id);
  return fn(lease.db).finally(() => lease.release());
};

/** How many password checks started (the hashes the attacker got). */
let verified = 0;
const realVerify = Bun.password.verify;

/**
 * Runs attempts the way a flood arrives: waves of ten at once (a platform's share of the hashing
 * queue is ten: two running, eight waiting; the busy refusals past it are tested apart).
 */
async function waves<T>(tasks: (() => Promise<T>)[]): Promise<T[]> {
  const out: T[] = [];
  for (let i = 0; i < tasks.length; i += 10)
    out.push(...(await Promise.all(tasks.slice(i, i + 10).map((t) => t()))));
  return out;
}

/** One sign-in: 'ok', or the refusal's status and code. */
async function signIn(email: string, password: string, ip: string, id = platformId): Promise<string> {
  try {
    await withDb(id, (db) =>
      passwordSignIn(inst.app, db, id, { email, password }, { ip, userAgent: 'test' }),
    );
    return 'ok';
  } catch (e) {
    if (isAppError(e)) return `${e.status} ${e.code}`;
    throw e;
  }
}

let n = 0;
/** A fresh user with the known password (each case its own, so counts never carry over). */
async function freshUser(
  role: 'owner' | 'admin' | 'member' = 'member',
): Promise<{ id: string; email: string }> {
  const email = `u${++n}@throttle.test`;
  const u = await withDb(platformId, (db) =>
    createUser(inst.app, db, { email, password: PASSWORD, role }, { actor: 'test', role: null }),
  );
  return { id: u.id, email };
}

const tally = (xs: string[]) =>
  Object.fromEntries([...new Set(xs)].map((x) => [x, xs.filter((y) => y === x).length]));

beforeAll(async () => {
  inst = open();
  platformId = (await createPlatform(inst.app, inst.tenancy, { slug: 'throttle' }, 'test')).platform.id;
  otherId = (await createPlatform(inst.app, inst.tenancy, { slug: 'other' }, 'test')).platform.id;
  // Counted, and quick: argon2 itself is tested in passwords.test.ts; here only who gets a check.
  Bun.password.verify = ((password: string) => {
    verified++;
    return Bun.sleep(1).then(() => password === PASSWORD);
  }) as typeof realVerify;
});
afterAll(async () => {
  Bun.password.verify = realVerify;
  await inst.close();
  tmp.cleanup();
});
afterEach(() => {
  // Every case starts after the windows of the one before.
  clock += 2 * AUTH_LIMITS.account.windowMs;
});

describe('attacks on the sign-in throttle: each is refused before any hashing', () => {
  const A = '203.0.113.10';
  const B = '198.51.100.20';
  const cases: {
    name: string;
    /** The burst, all at once: [email, password, address] per attempt. */
    burst: (email: string) => [string, string, string][];
    /** Password checks that may run for the whole burst. */
    hashes: number;
    /** Then the right password from this address... */
    from: string;
    /** ...is refused (or 'ok' where the policy lets the holder in). */
    expected: string;
  }[] = [
    {
      name: '40 concurrent wrong passwords (waves of ten) from one address, then the right one from it',
      burst: (e) => Array.from({ length: 40 }, (_, i) => [e, `wrong-${i}-password`, A]),
      hashes: AUTH_LIMITS.accountAddress.limit,
      from: A,
      expected: '429 auth.throttled',
    },
    {
      name: '40 wrong passwords and the right one last, all in one burst from one address',
      burst: (e) => [
        ...Array.from({ length: 40 }, (_, i): [string, string, string] => [e, `wrong-${i}-password`, A]),
        [e, PASSWORD, A],
      ],
      hashes: AUTH_LIMITS.accountAddress.limit,
      from: A,
      expected: '429 auth.throttled',
    },
    {
      name: '40 concurrent wrong passwords from 40 addresses (a botnet): the account locks for everyone',
      burst: (e) => Array.from({ length: 40 }, (_, i) => [e, `wrong-${i}-password`, `192.0.2.${i + 1}`]),
      hashes: AUTH_LIMITS.account.limit,
      from: B,
      expected: '429 auth.throttled',
    },
    {
      name: 'IPv6 rotation inside one /64 counts as one address',
      burst: (e) =>
        Array.from({ length: 12 }, (_, i) => [e, `wrong-${i}-password`, `2001:db8:1:2::${i + 1}`]),
      hashes: AUTH_LIMITS.accountAddress.limit,
      from: '2001:db8:1:2:ffff::99',
      expected: '429 auth.throttled',
    },
    {
      name: "one address's failures do not lock the holder out from another address",
      burst: (e) => Array.from({ length: 40 }, (_, i) => [e, `wrong-${i}-password`, A]),
      hashes: AUTH_LIMITS.accountAddress.limit,
      from: B,
      expected: 'ok',
    },
  ];
  for (const c of cases) {
    test(c.name, async () => {
      const u = await freshUser();
      const before = verified;
      const results = await waves(
        c.burst(u.email).map(
          ([e, p, ip]) =>
            () =>
              signIn(e, p, ip),
        ),
      );
      expect(verified - before).toBe(c.hashes);
      expect(tally(results)).toEqual({
        '401 auth.invalid_credentials': c.hashes,
        '429 auth.throttled': results.length - c.hashes,
      });
      expect(await signIn(u.email, PASSWORD, c.from)).toBe(c.expected);
    });
  }

  test('password spraying: 30 failures over 30 accounts lock the address, not the accounts', async () => {
    const victim = await freshUser();
    const before = verified;
    const results = await waves(
      Array.from({ length: 45 }, (_, i) => () => signIn(`spray-${i}@throttle.test`, 'wrong-password-x', A)),
    );
    expect(verified - before).toBe(AUTH_LIMITS.address.limit);
    expect(tally(results)['429 auth.throttled']).toBe(45 - AUTH_LIMITS.address.limit);
    expect(await signIn(victim.email, PASSWORD, A)).toBe('429 auth.throttled');
    expect(await signIn(victim.email, PASSWORD, B)).toBe('ok');
  });

  test('unknown emails are limited exactly like known ones (the answer says nothing)', async () => {
    const known = await freshUser();
    const a = await Promise.all(Array.from({ length: 7 }, () => signIn(known.email, 'wrong-password-x', A)));
    const b = await Promise.all(
      Array.from({ length: 7 }, () => signIn('ghost@throttle.test', 'wrong-password-x', A)),
    );
    expect(a).toEqual(b);
    expect(tally(a)).toEqual({ '401 auth.invalid_credentials': 5, '429 auth.throttled': 2 });
  });

  test('the lock lapses after its window; a success forgives the count', async () => {
    const u = await freshUser();
    await Promise.all(Array.from({ length: 6 }, () => signIn(u.email, 'wrong-password-x', A)));
    expect(await signIn(u.email, PASSWORD, A)).toBe('429 auth.throttled');
    clock += AUTH_LIMITS.accountAddress.lockMs - 1000;
    expect(await signIn(u.email, PASSWORD, A)).toBe('429 auth.throttled');
    clock += 1000;
    expect(await signIn(u.email, PASSWORD, A)).toBe('ok');
    // Forgiven: four more failures and the right password still gets in.
    for (let i = 0; i < 4; i++)
      expect(await signIn(u.email, 'wrong-password-x', A)).toBe('401 auth.invalid_credentials');
    expect(await signIn(u.email, PASSWORD, A)).toBe('ok');
  });

  test('honest sign-ins from one address (a shared NAT) never add up to a lock', async () => {
    const u = await freshUser();
    for (let i = 0; i < AUTH_LIMITS.address.limit + 5; i++)
      expect(await signIn(u.email, PASSWORD, A)).toBe('ok');
  });
});

describe('unlock: an owner or admin lifts a lock-out; only an owner unlocks an owner', () => {
  const cases: { name: string; target: 'owner' | 'member'; by: 'owner' | 'admin'; expected: string }[] = [
    { name: 'an admin unlocks a member', target: 'member', by: 'admin', expected: 'ok' },
    { name: 'an owner unlocks a member', target: 'member', by: 'owner', expected: 'ok' },
    { name: 'an owner unlocks an owner', target: 'owner', by: 'owner', expected: 'ok' },
    { name: 'an admin cannot unlock an owner', target: 'owner', by: 'admin', expected: '403 auth.forbidden' },
  ];
  for (const c of cases) {
    test(c.name, async () => {
      const u = await freshUser(c.target);
      await waves(
        Array.from({ length: 20 }, (_, i) => () => signIn(u.email, `wrong-${i}-password`, `192.0.2.${i}`)),
      );
      expect(await signIn(u.email, PASSWORD, '198.51.100.1')).toBe('429 auth.throttled');
      const r = await withDb(platformId, async (db) => {
        try {
          const out = unlockUser(inst.app, db, u.id, { actor: 'test', role: c.by });
          return `ok ${out.locksLifted}`;
        } catch (e) {
          if (isAppError(e)) return `${e.status} ${e.code}`;
          throw e;
        }
      });
      expect(r).toBe(c.expected === 'ok' ? 'ok 1' : c.expected);
      expect(await signIn(u.email, PASSWORD, '198.51.100.1')).toBe(
        c.expected === 'ok' ? 'ok' : '429 auth.throttled',
      );
    });
  }
});

describe('fair hashing: a flood on one platform', () => {
  test('is refused early past its queue and delays another platform by at most the hashes running', async () => {
    const victim = await freshUser();
    const other = await withDb(otherId, (db) =>
      createUser(inst.app, db, { email: 'b@other.test', password: PASSWORD }, { actor: 'test', role: null }),
    );
    // Gate every check: the test decides when each finishes, and records the order they start.
    const counting = Bun.password.verify;
    const gates: (() => void)[] = [];
    const started: string[] = [];
    const startWaiters: (() => void)[] = [];
    Bun.password.verify = ((pw: string, hash: string) => {
      started.push(pw.startsWith('flood') ? 'A' : 'B');
      startWaiters.shift()?.();
      return new Promise<void>((r) => gates.push(r)).then(() => counting(pw, hash));
    }) as typeof realVerify;
    const nextStart = () => new Promise<void>((r) => startWaiters.push(r));
    try {
      // Distinct accounts and addresses, so only the hashing capacity holds them back.
      const flood = Array.from({ length: 40 }, (_, i) =>
        signIn(`flood${i}@throttle.test`, `flood-${i}-password`, `192.0.2.${i + 1}`),
      );
      const b = signIn(other.email, PASSWORD, '198.51.100.50', otherId);
      // Two run, eight wait; the other thirty were refused at once, without a hash.
      const refused = (await Promise.all(flood.slice(10))).filter((r) => r === '429 auth.busy').length;
      expect(refused).toBe(30);
      expect(started).toEqual(['A', 'A']);
      // One hash ends: the freed slot goes to the other platform's turn, not the ninth of A's.
      const s = nextStart();
      gates.shift()!();
      await s;
      expect(started).toEqual(['A', 'A', 'B']);
      while (gates.length || started.length < 11) {
        const more = started.length < 11 ? nextStart() : null;
        gates.shift()?.();
        await more;
      }
      expect(await b).toBe('ok');
      expect(tally(await Promise.all(flood.slice(0, 10)))).toEqual({ '401 auth.invalid_credentials': 10 });
      expect(started.filter((x) => x === 'A').length).toBe(10);
      expect(victim.email).toContain('@');
    } finally {
      Bun.password.verify = counting;
    }
  });
});

test('address keys: IPv4-mapped IPv6 is IPv4, IPv6 is its /64', () => {
  expect(addressKey('::ffff:203.0.113.9')).toBe('203.0.113.9');
  expect(addressKey('2001:db8:1:2:3:4:5:6')).toBe('2001:db8:1:2::/64');
  expect(addressKey('2001:db8::1')).toBe('2001:db8:0:0::/64');
  expect(addressKey('::1')).toBe('0:0:0:0::/64');
  expect(addressKey(null)).toBe('-');
});
