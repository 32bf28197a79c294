import type { Database } from 'bun:sqlite';
import { afterEach, beforeEach, describe, expect, test } from 'bun:test';
import { generateKeyPairSync, sign } from 'node:crypto';
import { join } from 'node:path';
import { tempDir } from '../../tests/helpers.ts';
import { silentLogger } from '../app/index.ts';
import { CONTROL_MIGRATIONS, migrate, openDatabase, TENANT_MIGRATIONS } from '../db/index.ts';
import { type AuditAnchoring, createAuditLog } from './chain.ts';
import { fingerprintOf } from './signing.ts';
import { verifyControlAudit, verifyPlatformAudit } from './verify.ts';

// How the port anchors: after the platform transaction that appended has returned (never
// inside it, never what rolled back), coalesced to one signed UPSERT per turn.

let now = 1_700_000_000_000;
const clock = { now: () => now++ };

let t: ReturnType<typeof tempDir>;
let control: Database;
let platform: Database;
let signatures = 0;
let anchoring: AuditAnchoring;
const pair = generateKeyPairSync('ed25519');
const key = { ok: true as const, publicKey: pair.publicKey, fingerprint: fingerprintOf(pair.publicKey) };

beforeEach(() => {
  t = tempDir();
  control = openDatabase(join(t.dir, 'control.db'), 'control');
  migrate(control, CONTROL_MIGRATIONS, 'control');
  platform = openDatabase(join(t.dir, 'plt_a.db'), 'tenant');
  migrate(platform, TENANT_MIGRATIONS, 'platform');
  signatures = 0;
  anchoring = {
    control,
    log: silentLogger,
    signer: {
      fingerprint: key.fingerprint,
      sign(payload) {
        signatures++;
        return sign(null, Buffer.from(payload), pair.privateKey).toString('base64');
      },
    },
    platformIdOf: (db) => (db.filename === platform.filename ? 'plt_a' : undefined),
  };
});
afterEach(() => {
  control.close();
  try {
    platform.close();
  } catch {
    // closed by the test
  }
  t.cleanup();
});

const anchorOf = () =>
  control
    .query<{ seq: number; hash: string }, []>(
      "SELECT seq, hash FROM audit_anchors WHERE platform_id = 'plt_a'",
    )
    .get();
const entry = (target: string) => ({ actor: 'user:u1', action: 'thing.done', target });
/** Lets queued microtasks (the port's anchoring) run; orders by the event loop, not by time. */
const turn = () => Promise.resolve();

describe('anchoring platform chains', () => {
  test('the anchor lands once the transaction has returned, never inside it', async () => {
    const audit = createAuditLog(clock, () => anchoring);
    let inside: unknown = 'unset';
    const e = platform.transaction(() => {
      const x = audit.append(platform, entry('thing:1'));
      inside = anchorOf();
      return x;
    })();
    expect(inside).toBeNull();
    expect(anchorOf()).toBeNull();
    await turn();
    expect(anchorOf()).toEqual({ seq: 1, hash: e.hash });
    expect(verifyPlatformAudit(platform, control, 'plt_a', key)).toMatchObject({
      ok: true,
      anchored: 1,
      unanchored: 0,
    });
  });

  test('a write that rolls back leaves the anchor where it was (and verify passes)', async () => {
    const audit = createAuditLog(clock, () => anchoring);
    const first = audit.append(platform, entry('thing:1'));
    await turn();
    expect(() =>
      platform.transaction(() => {
        audit.append(platform, entry('thing:2'));
        throw new Error('the change failed');
      })(),
    ).toThrow('the change failed');
    await turn();
    expect(anchorOf()).toEqual({ seq: 1, hash: first.hash });
    expect(verifyPlatformAudit(platform, control, 'plt_a', key)).toMatchObject({ ok: true, entries: 1 });
  });

  test('many writes in one turn cost one anchor signature and one UPSERT (each entry is signed with itself)', async () => {
    const audit = createAuditLog(clock, () => anchoring);
    let last = audit.append(platform, entry('thing:0'));
    for (let i = 1; i <= 5; i++)
      last = platform.transaction(() => audit.append(platform, entry(`thing:${i}`)))();
    // Six entry signatures, written with the entries, before any anchor.
    expect(signatures).toBe(6);
    expect(platform.query<{ n: number }, []>('SELECT count(*) AS n FROM audit_entry_sigs').get()!.n).toBe(6);
    await turn();
    expect(signatures).toBe(7);
    expect(anchorOf()).toEqual({ seq: 6, hash: last.hash });
    // An unchanged head costs nothing on the next flush.
    audit.flush();
    expect(signatures).toBe(7);
  });

  test('a handle closed before the anchor lands (pool eviction) is read again from its file', async () => {
    const audit = createAuditLog(clock, () => anchoring);
    const e = audit.append(platform, entry('thing:1'));
    platform.close();
    await turn();
    expect(anchorOf()).toEqual({ seq: 1, hash: e.hash });
  });

  test('a transaction still open across an await is not anchored until it commits', async () => {
    const audit = createAuditLog(clock, () => anchoring);
    platform.exec('BEGIN IMMEDIATE');
    const e = audit.append(platform, entry('thing:1'));
    await turn();
    expect(anchorOf()).toBeNull();
    platform.exec('COMMIT');
    audit.flush();
    expect(anchorOf()).toEqual({ seq: 1, hash: e.hash });
  });

  test('the anchor never moves back, and other files (a platform being built) are not anchored', async () => {
    const audit = createAuditLog(clock, () => anchoring);
    audit.append(platform, entry('thing:1'));
    const two = audit.append(platform, entry('thing:2'));
    await turn();
    audit.anchor('plt_a', { seq: 1, hash: 'x'.repeat(64) });
    expect(anchorOf()).toEqual({ seq: 2, hash: two.hash });
    const other = openDatabase(join(t.dir, '.tmp-plt_b.db'), 'tenant');
    migrate(other, TENANT_MIGRATIONS, 'other');
    audit.append(other, entry('thing:1'));
    await turn();
    other.close();
    expect(control.query('SELECT count(*) AS n FROM audit_anchors').get()).toEqual({ n: 1 });
  });
});

describe('checkpoints of the control chain', () => {
  test('each control append commits a signed checkpoint with it, or neither', () => {
    const audit = createAuditLog(clock, () => anchoring);
    audit.append(control, entry('platform:a'));
    expect(() =>
      control.transaction(() => {
        audit.append(control, entry('platform:b'));
        throw new Error('the change failed');
      })(),
    ).toThrow('the change failed');
    audit.append(control, entry('platform:c'));
    expect(control.query('SELECT seq FROM audit_checkpoints ORDER BY seq').all()).toEqual([
      { seq: 1 },
      { seq: 2 },
    ]);
    expect(verifyControlAudit(control, key)).toMatchObject({ ok: true, entries: 2, anchored: 2 });
  });

  test('without anchoring (no key) the chain is plain, and verify says entries are uncovered', () => {
    createAuditLog(clock).append(control, entry('platform:a'));
    expect(verifyControlAudit(control, key)).toMatchObject({
      ok: false,
      bad: { seq: 1, reason: expect.stringMatching(/no signed checkpoint/) },
    });
  });
});
