/**
 * The ledger (issue 13 items 3 and 4): one-step, two-phase and linked transfers, idempotency,
 * floors, immutability, balances at any time, expiry; the revenue split; and property-based
 * runs (fast-check) over thousands of random sequences of transfers, sales, refunds (partial
 * included), holds, replays and failing chains: every transfer balances, no floored account
 * passes its floor, balances equal the sum of their transfers, a failed chain leaves nothing,
 * and no split makes or loses a unit.
 */
import { Database } from 'bun:sqlite';
import { describe, expect, test } from 'bun:test';
import fc from 'fast-check';
import { migrate, TENANT_MIGRATIONS } from '../db/index.ts';
import { balancesAt, findAccount, findTransfer, listAccounts, transfersByRef } from './ledger.repository.ts';
import {
  accountId,
  expirePending,
  netCredit,
  openAccount,
  post,
  postBatch,
  reversal,
  type TransferResult,
  type TransferSpec,
} from './ledger.ts';
import { refundChain, type Sale, saleAccounts, saleChain, splitSale } from './sales.ts';

const template = (() => {
  const db = new Database(':memory:');
  migrate(db, TENANT_MIGRATIONS, 'ledger-test');
  const bytes = db.serialize();
  db.close();
  return bytes;
})();
const fresh = () => Database.deserialize(template);

const M = 1_000_000n; // micro-units per minor unit

function setup() {
  const db = fresh();
  const now = 1_000;
  const acc = {
    cash: openAccount(db, { kind: 'processor', currency: 'usd' }, now),
    alice: openAccount(db, { kind: 'credits', owner: 'usr_alice', currency: 'usd' }, now),
    bob: openAccount(db, { kind: 'credits', owner: 'usr_bob', currency: 'usd' }, now),
    creator: openAccount(db, { kind: 'creator', owner: 'usr_cat', currency: 'usd' }, now),
    platform: openAccount(db, { kind: 'platform', currency: 'usd' }, now),
    operator: openAccount(db, { kind: 'operator', currency: 'usd' }, now),
    ai: openAccount(db, { kind: 'ai_cost', currency: 'usd' }, now),
    eur: openAccount(db, { kind: 'platform', owner: 'x', currency: 'eur' }, now),
  };
  return { db, acc, now };
}

const bal = (db: Database, id: string) => {
  const a = findAccount(db, id)!;
  return { dp: a.debits_pending, d: a.debits_posted, cp: a.credits_pending, c: a.credits_posted };
};

describe('transfers', () => {
  test('a posted transfer moves the amount from the debit to the credit account', () => {
    const { db, acc, now } = setup();
    expect(
      post(
        db,
        [{ id: 't1', debit: acc.cash, credit: acc.alice, amount: 500n * M, currency: 'usd', code: 'topup' }],
        now,
      ),
    ).toEqual(['ok']);
    expect(bal(db, acc.cash)).toEqual({ dp: 0n, d: 500n * M, cp: 0n, c: 0n });
    expect(bal(db, acc.alice)).toEqual({ dp: 0n, d: 0n, cp: 0n, c: 500n * M });
    expect(netCredit(findAccount(db, acc.alice)!)).toBe(500n * M);
  });

  test('the same transfer again is `exists` and changes nothing; another under its id is refused', () => {
    const { db, acc, now } = setup();
    const t: TransferSpec = {
      id: 't1',
      debit: acc.cash,
      credit: acc.alice,
      amount: 5n,
      currency: 'usd',
      code: 'topup',
    };
    post(db, [t], now);
    expect(post(db, [t], now + 5)).toEqual(['exists']);
    expect(bal(db, acc.alice).c).toBe(5n);
    expect(() => post(db, [{ ...t, amount: 6n }], now)).toThrow(
      expect.objectContaining({ code: 'ledger.exists_different', status: 409 }),
    );
  });

  test('attack table: every bad transfer is refused with its code, and nothing is written', () => {
    const { db, acc, now } = setup();
    const base = { id: 'x', debit: acc.cash, credit: acc.platform, amount: 1n, currency: 'usd', code: 'c' };
    const cases: [Partial<TransferSpec> & Record<string, unknown>, string][] = [
      [{ id: '' }, 'ledger.id_invalid'],
      [{ id: 'y'.repeat(201) }, 'ledger.id_invalid'],
      [{ amount: -1n }, 'ledger.amount_invalid'],
      [{ amount: 1 as unknown as bigint }, 'ledger.amount_invalid'],
      [{ credit: acc.cash }, 'ledger.accounts_same'],
      [{ credit: 'platform::gbp' }, 'ledger.account_missing'],
      [{ credit: acc.eur }, 'ledger.currency_mismatch'],
      [{ currency: 'eur' }, 'ledger.currency_mismatch'],
      [{ debit: acc.alice }, 'ledger.exceeds_credits'],
      [{ flags: 'post', pendingId: 'nope' }, 'ledger.pending_missing'],
    ];
    for (const [patch, code] of cases) {
      const r = postBatch(db, [[{ ...base, ...patch } as TransferSpec]], now)[0]!;
      expect([patch, r[0]]).toEqual([patch, code as TransferResult]);
    }
    expect(db.query('SELECT count(*) AS n FROM ledger_transfers').get()).toEqual({ n: 0 });
    for (const a of listAccounts(db))
      expect([a.id, a.debits_posted, a.credits_posted]).toEqual([a.id, 0n, 0n]);
  });

  test('transfers are immutable: SQL cannot change or delete one', () => {
    const { db, acc, now } = setup();
    post(
      db,
      [{ id: 't1', debit: acc.cash, credit: acc.alice, amount: 5n, currency: 'usd', code: 'topup' }],
      now,
    );
    expect(() => db.run("UPDATE ledger_transfers SET amount = 6 WHERE id = 't1'")).toThrow(/immutable/);
    expect(() => db.run("DELETE FROM ledger_transfers WHERE id = 't1'")).toThrow(/immutable/);
    // A correction is a new transfer.
    post(db, [reversal(findTransfer(db, 't1')!, { id: 't1:undo', code: 'correction' })], now);
    expect(bal(db, acc.alice)).toEqual({ dp: 0n, d: 5n, cp: 0n, c: 5n });
  });

  test('a linked chain commits all or nothing', () => {
    const { db, acc, now } = setup();
    post(
      db,
      [{ id: 'top', debit: acc.cash, credit: acc.alice, amount: 10n, currency: 'usd', code: 'topup' }],
      now,
    );
    const chain: TransferSpec[] = [
      { id: 'a', debit: acc.alice, credit: acc.platform, amount: 8n, currency: 'usd', code: 'sale' },
      { id: 'b', debit: acc.alice, credit: acc.creator, amount: 8n, currency: 'usd', code: 'sale' },
    ];
    expect(postBatch(db, [chain], now)[0]).toEqual(['ledger.linked_failed', 'ledger.exceeds_credits']);
    expect(findTransfer(db, 'a')).toBeNull();
    expect(bal(db, acc.alice)).toEqual({ dp: 0n, d: 0n, cp: 0n, c: 10n });
    expect(bal(db, acc.platform).c).toBe(0n);
    // A batch's other chains commit.
    const r = postBatch(db, [chain, [{ ...chain[0]!, id: 'c', amount: 3n }]], now);
    expect(r).toEqual([['ledger.linked_failed', 'ledger.exceeds_credits'], ['ok']]);
    expect(bal(db, acc.alice).d).toBe(3n);
    expect(findTransfer(db, 'c')?.chain).toBeNull();
  });
});

describe('two-phase transfers', () => {
  test('pending reserves; posting less releases the rest; a second resolution is refused', () => {
    const { db, acc, now } = setup();
    post(
      db,
      [{ id: 'top', debit: acc.cash, credit: acc.alice, amount: 100n, currency: 'usd', code: 'topup' }],
      now,
    );
    post(
      db,
      [
        {
          id: 'hold',
          debit: acc.alice,
          credit: acc.platform,
          amount: 80n,
          currency: 'usd',
          flags: 'pending',
          code: 'job',
        },
      ],
      now,
    );
    expect(bal(db, acc.alice)).toEqual({ dp: 80n, d: 0n, cp: 0n, c: 100n });
    // The hold counts against the floor.
    expect(() =>
      post(
        db,
        [{ id: 'more', debit: acc.alice, credit: acc.platform, amount: 30n, currency: 'usd', code: 'x' }],
        now,
      ),
    ).toThrow(expect.objectContaining({ code: 'ledger.exceeds_credits' }));
    expect(() =>
      post(db, [{ id: 'p', flags: 'post', pendingId: 'hold', amount: 81n, code: 'job' }], now),
    ).toThrow(expect.objectContaining({ code: 'ledger.exceeds_pending' }));
    post(db, [{ id: 'p', flags: 'post', pendingId: 'hold', amount: 50n, code: 'job' }], now + 1);
    expect(bal(db, acc.alice)).toEqual({ dp: 0n, d: 50n, cp: 0n, c: 100n });
    expect(bal(db, acc.platform)).toEqual({ dp: 0n, d: 0n, cp: 0n, c: 50n });
    expect(() => post(db, [{ id: 'v', flags: 'void', pendingId: 'hold', code: 'job' }], now)).toThrow(
      expect.objectContaining({ code: 'ledger.pending_resolved' }),
    );
    // Posting a posted transfer as if pending is refused.
    expect(() => post(db, [{ id: 'v2', flags: 'void', pendingId: 'top', code: 'x' }], now)).toThrow(
      expect.objectContaining({ code: 'ledger.pending_missing' }),
    );
  });

  test('a pending transfer past its timeout cannot be posted, and expiry voids it', () => {
    const { db, acc, now } = setup();
    post(
      db,
      [
        {
          id: 'h',
          debit: acc.cash,
          credit: acc.platform,
          amount: 7n,
          currency: 'usd',
          flags: 'pending',
          timeoutAt: now + 100,
          code: 'checkout',
        },
      ],
      now,
    );
    expect(expirePending(db, now + 99)).toBe(0);
    expect(() => post(db, [{ id: 'p', flags: 'post', pendingId: 'h', code: 'checkout' }], now + 100)).toThrow(
      expect.objectContaining({ code: 'ledger.pending_expired' }),
    );
    expect(expirePending(db, now + 100)).toBe(1);
    expect(expirePending(db, now + 200)).toBe(0);
    expect(bal(db, acc.platform)).toEqual({ dp: 0n, d: 0n, cp: 0n, c: 0n });
    expect(findTransfer(db, 'h:expired')?.flags).toBe('void');
  });

  test('balances at any time come from the transfers alone', () => {
    const { db, acc } = setup();
    post(
      db,
      [{ id: 'a', debit: acc.cash, credit: acc.platform, amount: 10n, currency: 'usd', code: 'x' }],
      100,
    );
    post(
      db,
      [
        {
          id: 'h',
          debit: acc.cash,
          credit: acc.platform,
          amount: 5n,
          currency: 'usd',
          flags: 'pending',
          code: 'x',
        },
      ],
      200,
    );
    post(db, [{ id: 'p', flags: 'post', pendingId: 'h', amount: 4n, code: 'x' }], 300);
    expect(balancesAt(db, acc.platform, 99)).toEqual({
      debits_pending: 0n,
      debits_posted: 0n,
      credits_pending: 0n,
      credits_posted: 0n,
    });
    expect(balancesAt(db, acc.platform, 150).credits_posted).toBe(10n);
    expect(balancesAt(db, acc.platform, 250)).toEqual({
      debits_pending: 0n,
      debits_posted: 0n,
      credits_pending: 5n,
      credits_posted: 10n,
    });
    expect(balancesAt(db, acc.platform, 300)).toEqual({
      debits_pending: 0n,
      debits_posted: 0n,
      credits_pending: 0n,
      credits_posted: 14n,
    });
  });

  test('amounts past 2^53 stay exact', () => {
    const { db, acc, now } = setup();
    const big = 2n ** 60n + 1n;
    post(
      db,
      [{ id: 'big', debit: acc.cash, credit: acc.platform, amount: big, currency: 'usd', code: 'x' }],
      now,
    );
    post(
      db,
      [{ id: 'one', debit: acc.cash, credit: acc.platform, amount: 1n, currency: 'usd', code: 'x' }],
      now,
    );
    expect(bal(db, acc.platform).c).toBe(big + 1n);
  });
});

describe('revenue share', () => {
  const terms = { creatorShare: 70, commission: 30, operatorFee: 15 };
  test("70/30 with a 15% operator fee: the fee comes from the platform's side", () => {
    expect(splitSale(1000n * M, 'usd', terms)).toEqual({
      creator: 700n * M,
      platform: 150n * M,
      operator: 150n * M,
    });
    // The fee may pass the commission: the platform's side goes negative, never the creator's.
    expect(splitSale(100n, 'usd', { creatorShare: 90, commission: 10, operatorFee: 25 })).toEqual({
      creator: 90n,
      platform: -15n,
      operator: 25n,
    });
    expect(() => splitSale(1n, 'usd', { creatorShare: 70, commission: 20, operatorFee: 0 })).toThrow(
      expect.objectContaining({ code: 'billing.terms_invalid' }),
    );
    expect(() => splitSale(1n, 'usd', { creatorShare: 70, commission: 30, operatorFee: 101 })).toThrow(
      expect.objectContaining({ code: 'billing.terms_invalid' }),
    );
  });

  test('the remainder of an uneven split goes to the largest share first', () => {
    // 7 units at 70/30: 4.9 and 2.1 → 4 and 2, the remaining unit to the creator.
    expect(splitSale(7n, 'usd', { creatorShare: 70, commission: 30, operatorFee: 0 })).toEqual({
      creator: 5n,
      platform: 2n,
      operator: 0n,
    });
  });

  test('no split makes or loses a unit (property)', () => {
    fc.assert(
      fc.property(
        fc.bigInt({ min: 0n, max: 10n ** 15n }),
        fc.integer({ min: 0, max: 10_000 }),
        fc.integer({ min: 0, max: 10_000 }),
        (amount, shareBp, feeBp) => {
          const s = splitSale(amount, 'usd', {
            creatorShare: shareBp / 100,
            commission: (10_000 - shareBp) / 100,
            operatorFee: feeBp / 100,
          });
          expect(s.creator + s.platform + s.operator).toBe(amount);
          expect(s.creator >= 0n && s.operator >= 0n).toBe(true);
          // Each part is within one unit of its exact share.
          const exactCreator = (amount * BigInt(shareBp)) / 10_000n;
          expect(s.creator - exactCreator <= 1n && s.creator >= exactCreator).toBe(true);
        },
      ),
      { numRuns: 2000 },
    );
  });

  test('a sale posts creator, platform and operator legs in one chain; a refund reverses its share', () => {
    const { db, now } = setup();
    const sale: Sale = {
      id: 'sale_1',
      amount: 999n * M,
      currency: 'usd',
      creatorId: 'usr_cat',
      source: { kind: 'processor' },
      terms,
      ref: 'lst_1',
    };
    for (const a of saleAccounts(sale)) openAccount(db, a, now);
    expect(post(db, saleChain(sale), now)).toEqual(['ok', 'ok', 'ok']);
    expect(post(db, saleChain(sale), now)).toEqual(['exists', 'exists', 'exists']);
    const c = accountId('creator', 'usr_cat', 'usd');
    const p = accountId('platform', '', 'usd');
    const o = accountId('operator', '', 'usd');
    expect(netCredit(findAccount(db, c)!)).toBe(6993n * 100_000n);
    expect(netCredit(findAccount(db, o)!)).toBe(14985n * 10_000n);
    expect(
      netCredit(findAccount(db, c)!) + netCredit(findAccount(db, p)!) + netCredit(findAccount(db, o)!),
    ).toBe(999n * M);
    expect(new Set(transfersByRef(db, 'lst_1').map((t) => t.chain))).toEqual(new Set(['sale_1:creator']));
    post(db, refundChain(sale, 're_1', 333n * M), now + 1);
    post(db, refundChain(sale, 're_2', 666n * M), now + 2);
    for (const id of [c, p, o]) expect([id, netCredit(findAccount(db, id)!)]).toEqual([id, 0n]);
  });
});

// Property runs --------------------------------------------------------------------------------

type Op =
  | { t: 'topup'; who: 0 | 1; amount: bigint }
  | { t: 'spend'; who: 0 | 1; amount: bigint }
  | { t: 'hold'; who: 0 | 1; amount: bigint; timeout: boolean }
  | { t: 'settle'; pick: number; fraction: number }
  | { t: 'release'; pick: number }
  | { t: 'sale'; who: 0 | 1 | 2; amount: bigint; share: number; fee: number }
  | { t: 'refund'; pick: number; fraction: number }
  | { t: 'replay'; pick: number }
  | { t: 'bad_chain'; who: 0 | 1; amount: bigint }
  | { t: 'expire'; advance: number };

const amount = fc.bigInt({ min: 0n, max: 5_000n * M });
const who = fc.constantFrom<0 | 1>(0, 1);
const op: fc.Arbitrary<Op> = fc.oneof(
  fc.record({ t: fc.constant('topup' as const), who, amount }),
  fc.record({ t: fc.constant('spend' as const), who, amount }),
  fc.record({ t: fc.constant('hold' as const), who, amount, timeout: fc.boolean() }),
  fc.record({
    t: fc.constant('settle' as const),
    pick: fc.nat(),
    fraction: fc.double({ min: 0, max: 1.2, noNaN: true }),
  }),
  fc.record({ t: fc.constant('release' as const), pick: fc.nat() }),
  fc.record({
    t: fc.constant('sale' as const),
    who: fc.constantFrom<0 | 1 | 2>(0, 1, 2),
    amount,
    share: fc.integer({ min: 0, max: 100 }),
    fee: fc.integer({ min: 0, max: 100 }),
  }),
  fc.record({
    t: fc.constant('refund' as const),
    pick: fc.nat(),
    fraction: fc.double({ min: 0, max: 1.2, noNaN: true }),
  }),
  fc.record({ t: fc.constant('replay' as const), pick: fc.nat() }),
  fc.record({ t: fc.constant('bad_chain' as const), who, amount }),
  fc.record({ t: fc.constant('expire' as const), advance: fc.integer({ min: 0, max: 500 }) }),
);

describe('ledger properties', () => {
  test('random sequences keep every invariant', () => {
    fc.assert(
      fc.property(fc.array(op, { minLength: 1, maxLength: 40 }), (ops) => {
        const { db, acc } = setup();
        let now = 1_000;
        const users = [acc.alice, acc.bob];
        const holds: string[] = [];
        const sales: { sale: Sale; refunded: bigint; n: number }[] = [];
        const chains: TransferSpec[][] = [];
        let okTransfers = 0;
        let n = 0;
        const run = (chain: TransferSpec[]) => {
          const r = postBatch(db, [chain], now)[0]!;
          const ok = r.every((x) => x === 'ok' || x === 'exists');
          if (!ok) expect(r.filter((x) => x !== 'ledger.linked_failed')).toHaveLength(1);
          if (ok) {
            okTransfers += r.filter((x) => x === 'ok').length;
            chains.push(chain);
          }
          return ok;
        };
        for (const o of ops) {
          now += 10;
          const id = `op${n++}`;
          switch (o.t) {
            case 'topup':
              run([
                {
                  id,
                  debit: acc.cash,
                  credit: users[o.who]!,
                  amount: o.amount,
                  currency: 'usd',
                  code: 'topup',
                },
              ]);
              break;
            case 'spend':
              run([
                {
                  id,
                  debit: users[o.who]!,
                  credit: acc.ai,
                  amount: o.amount,
                  currency: 'usd',
                  code: 'usage',
                },
              ]);
              break;
            case 'hold':
              if (
                run([
                  {
                    id,
                    debit: users[o.who]!,
                    credit: acc.platform,
                    amount: o.amount,
                    currency: 'usd',
                    flags: 'pending',
                    code: 'hold',
                    ...(o.timeout ? { timeoutAt: now + 100 } : {}),
                  },
                ])
              )
                holds.push(id);
              break;
            case 'settle': {
              const h = holds[o.pick % Math.max(1, holds.length)];
              if (!h) break;
              const pending = findTransfer(db, h)!;
              const part = BigInt(Math.floor(Number(pending.amount) * o.fraction));
              run([{ id, flags: 'post', pendingId: h, amount: part, code: 'hold' }]);
              break;
            }
            case 'release': {
              const h = holds[o.pick % Math.max(1, holds.length)];
              if (h) run([{ id, flags: 'void', pendingId: h, code: 'hold' }]);
              break;
            }
            case 'sale': {
              const sale: Sale = {
                id,
                amount: o.amount,
                currency: 'usd',
                creatorId: 'usr_cat',
                source:
                  o.who === 2
                    ? { kind: 'processor' }
                    : { kind: 'credits', userId: o.who === 0 ? 'usr_alice' : 'usr_bob' },
                terms: { creatorShare: o.share, commission: 100 - o.share, operatorFee: o.fee },
                ref: `lst_${o.who}`,
              };
              if (run(saleChain(sale))) sales.push({ sale, refunded: 0n, n: 0 });
              break;
            }
            case 'refund': {
              const s = sales[o.pick % Math.max(1, sales.length)];
              if (!s) break;
              const left = s.sale.amount - s.refunded;
              const part = BigInt(Math.floor(Number(left) * Math.min(1, o.fraction)));
              if (run(refundChain(s.sale, `re${s.n++}`, part))) s.refunded += part;
              break;
            }
            case 'replay': {
              const c = chains[o.pick % Math.max(1, chains.length)];
              if (!c) break;
              const before = okTransfers;
              const r = postBatch(db, [c], now)[0]!;
              expect(r.every((x) => x === 'exists')).toBe(true);
              expect(okTransfers).toBe(before);
              break;
            }
            case 'bad_chain': {
              // A valid transfer linked to one that must fail: neither is written.
              const r = postBatch(
                db,
                [
                  [
                    {
                      id,
                      debit: acc.cash,
                      credit: users[o.who]!,
                      amount: o.amount,
                      currency: 'usd',
                      code: 'topup',
                    },
                    {
                      id: `${id}b`,
                      debit: acc.cash,
                      credit: acc.eur,
                      amount: 1n,
                      currency: 'usd',
                      code: 'x',
                    },
                  ],
                ],
                now,
              )[0]!;
              expect(r).toEqual(['ledger.linked_failed', 'ledger.currency_mismatch']);
              expect(findTransfer(db, id)).toBeNull();
              break;
            }
            case 'expire':
              now += o.advance;
              okTransfers += expirePending(db, now);
              break;
          }
        }
        // Invariants.
        const rows = db.query<{ n: number }, []>('SELECT count(*) AS n FROM ledger_transfers').get()!.n;
        expect(rows).toBe(okTransfers);
        const accounts = listAccounts(db);
        let dp = 0n;
        let d = 0n;
        let cp = 0n;
        let c = 0n;
        for (const a of accounts) {
          dp += a.debits_pending;
          d += a.debits_posted;
          cp += a.credits_pending;
          c += a.credits_posted;
          expect({ id: a.id, ...balancesAt(db, a.id, now) }).toEqual({
            id: a.id,
            debits_pending: a.debits_pending,
            debits_posted: a.debits_posted,
            credits_pending: a.credits_pending,
            credits_posted: a.credits_posted,
          });
          for (const v of [a.debits_pending, a.debits_posted, a.credits_pending, a.credits_posted])
            expect(v >= 0n).toBe(true);
          if (a.floor === 'debits_within_credits')
            expect(a.debits_posted + a.debits_pending <= a.credits_posted).toBe(true);
        }
        expect(d).toBe(c);
        expect(dp).toBe(cp);
        // Refunds never pass the sale: the creator's and operator's sides never go below zero.
        expect(netCredit(findAccount(db, acc.creator)!) >= 0n).toBe(true);
        expect(netCredit(findAccount(db, acc.operator)!) >= 0n).toBe(true);
        db.close();
      }),
      { numRuns: 1500 },
    );
  }, 60_000);
});
