import { Database } from 'bun:sqlite';
import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { generateKeyPairSync, type KeyObject, sign } from 'node:crypto';
import { cpSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import canonicalize from 'canonicalize';
import { Keyring, silentLogger } from '../src/app/index.ts';
import {
  createAuditLog,
  entryHash,
  GENESIS_HASH,
  publicKeyCopyPath,
  SIGNING_KEY_CONTEXT,
} from '../src/audit/index.ts';
import {
  anchorPayload,
  checkpointPayload,
  entryPayload,
  fingerprintOf,
  openAuditSigner,
} from '../src/audit/signing.ts';
import { createPlatform, openInstance } from '../src/flows/index.ts';
import { runCli, tempDir } from './helpers.ts';

// One honest data dir (control chain of 5 entries, platform `alpha` chain of 5), copied afresh
// for each attack; the attack edits the files as someone with write access to them would, and
// `soulfra audit verify` (the CLI, no server running) must exit 1 naming what is wrong.

interface Row {
  seq: number;
  ts: number;
  actor: string;
  action: string;
  target: string;
  details: string;
  prev_hash: string;
  hash: string;
}
type Body = Omit<Row, 'seq' | 'prev_hash' | 'hash'>;

const t = tempDir('soulfra-audit-tamper-');
const honest = join(t.dir, 'honest');
let alphaId = '';
let originalFingerprint = '';
let n = 0;

beforeAll(async () => {
  let now = 1_800_000_000_000;
  const inst = openInstance({
    dataDir: join(honest, 'data'),
    log: silentLogger,
    clock: { now: () => now++ },
  });
  try {
    alphaId = (await createPlatform(inst.app, inst.tenancy, { slug: 'alpha' }, 'test')).platform.id;
    await createPlatform(inst.app, inst.tenancy, { slug: 'beta' }, 'test');
    inst.tenancy.setActive('beta', false, 'test', 'one');
    inst.tenancy.setActive('beta', true, 'test');
    inst.tenancy.setActive('beta', false, 'test', 'two');
    for (let i = 2; i <= 5; i++) {
      await inst.app.platformDbs.use(alphaId, (db) =>
        db.transaction(() =>
          inst.app.audit.append(db, { actor: 'user:u1', action: 'thing.done', target: `thing:${i}` }),
        )(),
      );
    }
  } finally {
    await inst.close();
  }
  const v = JSON.parse((await runCli(['audit', 'verify', '--json', '--data', join(honest, 'data')])).stdout);
  originalFingerprint = v.signing_key.fingerprint;
});
afterAll(() => t.cleanup());

/** A fresh copy of the honest data dir (with its master key and public key copy beside it). */
function copy(): string {
  const root = join(t.dir, `case-${++n}`);
  cpSync(honest, root, { recursive: true });
  return join(root, 'data');
}

function open(path: string): Database {
  const db = new Database(path);
  db.exec('PRAGMA journal_mode = WAL');
  return db;
}
const controlOf = (data: string) => open(join(data, 'control.db'));
const alphaOf = (data: string) => open(join(data, 'platforms', `${alphaId}.db`));

function rows(db: Database): Row[] {
  return db.query<Row, []>('SELECT * FROM audit_log ORDER BY seq').all();
}

/**
 * Replaces a chain with `bodies`, numbered from 1 and hashed into a valid plain chain, with
 * the triggers out of the way: what anyone who can write the file can do. Returns the hashes.
 */
function rewrite(db: Database, bodies: Body[]): string[] {
  db.exec('DROP TRIGGER IF EXISTS audit_log_no_update; DROP TRIGGER IF EXISTS audit_log_no_delete');
  db.exec('DELETE FROM audit_log');
  let prev = GENESIS_HASH;
  const hashes: string[] = [];
  bodies.forEach((b, i) => {
    const partial = { ...b, seq: i + 1, prev_hash: prev };
    const hash = entryHash(partial);
    db.query(
      'INSERT INTO audit_log (seq, ts, actor, action, target, details, prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?)',
    ).run(partial.seq, b.ts, b.actor, b.action, b.target, b.details, prev, hash);
    hashes.push(hash);
    prev = hash;
  });
  return hashes;
}
/**
 * Appends one entry after the head, hash-chained as the port would, with the triggers in place
 * (appending is allowed), and an entry signature made by `sig` (none when null).
 */
function appendForged(db: Database, b: Body, sig: ((payload: string) => string) | null): void {
  const head = rows(db).at(-1)!;
  const partial = { ...b, seq: head.seq + 1, prev_hash: head.hash };
  const hash = entryHash(partial);
  db.query(
    'INSERT INTO audit_log (seq, ts, actor, action, target, details, prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?)',
  ).run(partial.seq, b.ts, b.actor, b.action, b.target, b.details, head.hash, hash);
  if (sig)
    db.query('INSERT INTO audit_entry_sigs (seq, sig) VALUES (?, ?)').run(
      partial.seq,
      sig(entryPayload({ platform_id: alphaId, seq: partial.seq, hash })),
    );
}
const bodiesOf = (db: Database): Body[] =>
  rows(db).map(({ ts, actor, action, target, details }) => ({ ts, actor, action, target, details }));
const forged = (target: string): Body => ({
  ts: 1_800_000_000_500,
  actor: 'user:mallory',
  action: 'thing.done',
  target,
  details: '{}',
});

/** Rewrites every control checkpoint to the chain's current hashes, signed by `sig`. */
function resignCheckpoints(control: Database, sig: (payload: string) => string): void {
  control.exec('DROP TRIGGER audit_checkpoints_no_update; DROP TRIGGER audit_checkpoints_no_delete');
  control.exec('DELETE FROM audit_checkpoints');
  for (const r of rows(control)) {
    const at = r.ts;
    control
      .query('INSERT INTO audit_checkpoints (seq, hash, at, sig) VALUES (?, ?, ?, ?)')
      .run(r.seq, r.hash, at, sig(checkpointPayload({ seq: r.seq, hash: r.hash, at })));
  }
}
/** Rewrites alpha's anchor to its chain's current head, signed by `sig`. */
function resignAnchor(control: Database, alpha: Database, sig: (payload: string) => string): void {
  const head = rows(alpha).at(-1)!;
  const at = head.ts;
  control
    .query('UPDATE audit_anchors SET seq = ?, hash = ?, at = ?, sig = ? WHERE platform_id = ?')
    .run(
      head.seq,
      head.hash,
      at,
      sig(anchorPayload({ platform_id: alphaId, seq: head.seq, hash: head.hash, at })),
      alphaId,
    );
}
/** Re-signs every platform's anchor at its chain's current head (a full forgery). */
function resignAllAnchors(data: string, control: Database, sig: (payload: string) => string): void {
  for (const { platform_id } of control
    .query<{ platform_id: string }, []>('SELECT platform_id FROM audit_anchors')
    .all()) {
    const db = open(join(data, 'platforms', `${platform_id}.db`));
    const head = rows(db).at(-1)!;
    db.close();
    control
      .query('UPDATE audit_anchors SET seq = ?, hash = ?, at = ?, sig = ? WHERE platform_id = ?')
      .run(
        head.seq,
        head.hash,
        head.ts,
        sig(anchorPayload({ platform_id, seq: head.seq, hash: head.hash, at: head.ts })),
        platform_id,
      );
  }
}
const keyPair = () => generateKeyPairSync('ed25519');
const signer = (k: KeyObject) => (payload: string) => sign(null, Buffer.from(payload), k).toString('base64');
const randomSig = () => Buffer.from(crypto.getRandomValues(new Uint8Array(64))).toString('base64');
const spki = (k: KeyObject) => k.export({ type: 'spki', format: 'der' }).toString('base64');

/** The attacker's own key put in as the instance key (public half; sealed half if `seal`). */
function replaceKey(data: string, control: Database, opts: { seal: boolean }): KeyObject {
  const pair = keyPair();
  let sealed = 'sf1.dk_0000000000000000.AAAA';
  if (opts.seal) {
    // Only a holder of the master key (the key file beside the data dir) can do this.
    const ring = Keyring.open({ control, dataDir: data, clock: { now: () => 0 }, log: silentLogger });
    sealed = ring.seal(
      pair.privateKey.export({ type: 'pkcs8', format: 'der' }).toString('base64'),
      SIGNING_KEY_CONTEXT,
    );
  }
  control
    .query('UPDATE audit_signing_key SET public_key = ?, private_key = ? WHERE id = 1')
    .run(spki(pair.publicKey), sealed);
  return pair.privateKey;
}

interface Attack {
  name: string;
  tamper(data: string): void;
  /** Start the instance once before verifying: the start must not bless the change. */
  restart?: boolean;
  /** Extra verify arguments (`--key-fingerprint ...`). */
  args?: () => string[];
  /** The refusal: which chain (or the signing key), at which entry, and why. */
  expected: { chain: string; seq: number; reason: RegExp } | { key: RegExp };
}

const platformAttacks: Attack[] = [
  {
    name: 'edit an entry and recompute every later hash (triggers dropped)',
    tamper(data) {
      const db = alphaOf(data);
      const b = bodiesOf(db);
      b[2] = { ...b[2]!, actor: 'user:mallory' };
      rewrite(db, b);
      db.close();
    },
    expected: { chain: 'alpha', seq: 5, reason: /not the entry anchored in control\.db/ },
  },
  {
    name: 'delete an entry and renumber the rest',
    tamper(data) {
      const db = alphaOf(data);
      const b = bodiesOf(db);
      b.splice(1, 1);
      rewrite(db, b);
      db.close();
    },
    expected: { chain: 'alpha', seq: 5, reason: /chain ends at #4 \(entries were removed or cut\)/ },
  },
  {
    name: 'cut the newest entries',
    tamper(data) {
      const db = alphaOf(data);
      db.exec('DROP TRIGGER audit_log_no_delete; DELETE FROM audit_log WHERE seq > 3');
      db.close();
    },
    expected: { chain: 'alpha', seq: 5, reason: /chain ends at #3/ },
  },
  {
    name: 'insert an entry in the middle (renumbered, recomputed)',
    tamper(data) {
      const db = alphaOf(data);
      const b = bodiesOf(db);
      b.splice(2, 0, forged('thing:forged'));
      rewrite(db, b);
      db.close();
    },
    expected: { chain: 'alpha', seq: 5, reason: /not the entry anchored/ },
  },
  {
    name: 'replace the whole audit table with a fresh valid chain',
    tamper(data) {
      const db = alphaOf(data);
      rewrite(
        db,
        [1, 2, 3, 4, 5].map((i) => forged(`thing:${i}`)),
      );
      db.close();
    },
    expected: { chain: 'alpha', seq: 5, reason: /not the entry anchored/ },
  },
  {
    name: 'recompute the chain and move the anchor to it, with a made-up signature',
    tamper(data) {
      const db = alphaOf(data);
      const b = bodiesOf(db);
      b[0] = { ...b[0]!, details: '{"owner":"mallory@evil.test"}' };
      rewrite(db, b);
      const control = controlOf(data);
      resignAnchor(control, db, randomSig);
      db.close();
      control.close();
    },
    expected: { chain: 'alpha', seq: 5, reason: /anchor in control\.db does not verify/ },
  },
  {
    name: 'recompute the chain and sign its anchor with another key',
    tamper(data) {
      const db = alphaOf(data);
      const b = bodiesOf(db);
      b.pop();
      rewrite(db, b);
      const control = controlOf(data);
      resignAnchor(control, db, signer(keyPair().privateKey));
      db.close();
      control.close();
    },
    expected: { chain: 'alpha', seq: 4, reason: /does not verify/ },
  },
  {
    name: 'remove the anchor, then cut the chain',
    restart: true,
    tamper(data) {
      const control = controlOf(data);
      control.query('DELETE FROM audit_anchors WHERE platform_id = ?').run(alphaId);
      control.close();
      const db = alphaOf(data);
      db.exec('DROP TRIGGER audit_log_no_delete; DELETE FROM audit_log WHERE seq > 1');
      db.close();
    },
    expected: { chain: 'alpha', seq: 0, reason: /no anchor for this chain/ },
  },
  // Red-team variants: entries after the anchor (the lag) were taken on trust, so anyone who
  // could write the file appended forged entries and verify said "ok, N after the last anchor".
  {
    name: 'append a forged entry after the anchor, hash-chained (no instance key)',
    tamper(data) {
      const db = alphaOf(data);
      appendForged(db, forged('thing:planted'), null);
      db.close();
    },
    expected: { chain: 'alpha', seq: 6, reason: /not signed by the instance key/ },
  },
  {
    name: 'append a forged entry after the anchor with a made-up entry signature',
    tamper(data) {
      const db = alphaOf(data);
      appendForged(db, forged('thing:planted'), randomSig);
      db.close();
    },
    expected: { chain: 'alpha', seq: 6, reason: /not signed by the instance key/ },
  },
  {
    name: 'append a forged entry after the anchor signed with another key',
    tamper(data) {
      const db = alphaOf(data);
      appendForged(db, forged('thing:planted'), signer(keyPair().privateKey));
      db.close();
    },
    expected: { chain: 'alpha', seq: 6, reason: /not signed by the instance key/ },
  },
  {
    name: "append after the anchor an entry signed for another platform (beta's statement)",
    tamper(data) {
      const db = alphaOf(data);
      // A genuine instance signature, but over another platform's (seq, hash).
      const head = rows(db).at(-1)!;
      const body = forged('thing:planted');
      const hash = entryHash({ ...body, seq: head.seq + 1, prev_hash: head.hash });
      const control = controlOf(data);
      const ring = Keyring.open({ control, dataDir: data, clock: { now: () => 0 }, log: silentLogger });
      const o = openAuditSigner({ control, secrets: ring, clock: { now: () => 0 }, dataDir: data });
      control.close();
      if (!o.ok) throw new Error(o.reason);
      const betaSig = o.signer.sign(entryPayload({ platform_id: 'plt_beta', seq: head.seq + 1, hash }));
      appendForged(db, body, () => betaSig);
      db.close();
    },
    expected: { chain: 'alpha', seq: 6, reason: /not signed by the instance key/ },
  },
  {
    name: 'roll the anchor back to an older head signed by another key, then cut',
    tamper(data) {
      const db = alphaOf(data);
      db.exec('DROP TRIGGER audit_log_no_delete; DELETE FROM audit_log WHERE seq > 2');
      const control = controlOf(data);
      resignAnchor(control, db, signer(keyPair().privateKey));
      db.close();
      control.close();
    },
    expected: { chain: 'alpha', seq: 2, reason: /does not verify/ },
  },
];

const controlAttacks: Attack[] = [
  {
    name: 'edit an entry and recompute every later hash (triggers dropped)',
    tamper(data) {
      const db = controlOf(data);
      const b = bodiesOf(db);
      b[2] = { ...b[2]!, actor: 'operator:mallory' };
      rewrite(db, b);
      db.close();
    },
    expected: { chain: 'control', seq: 3, reason: /not the entry its signed checkpoint covers/ },
  },
  {
    name: 'delete an entry and renumber the rest',
    tamper(data) {
      const db = controlOf(data);
      const b = bodiesOf(db);
      b.splice(1, 1);
      rewrite(db, b);
      db.close();
    },
    expected: { chain: 'control', seq: 2, reason: /not the entry its signed checkpoint covers/ },
  },
  {
    name: 'cut the newest entries',
    tamper(data) {
      const db = controlOf(data);
      db.exec('DROP TRIGGER audit_log_no_delete; DELETE FROM audit_log WHERE seq > 3');
      db.close();
    },
    expected: { chain: 'control', seq: 4, reason: /covers entry #4 but the chain ends at #3/ },
  },
  {
    name: 'insert an entry in the middle (renumbered, recomputed)',
    tamper(data) {
      const db = controlOf(data);
      const b = bodiesOf(db);
      b.splice(2, 0, forged('platform:beta'));
      rewrite(db, b);
      db.close();
    },
    expected: { chain: 'control', seq: 3, reason: /not the entry its signed checkpoint covers/ },
  },
  {
    name: 'append an entry at the end (no checkpoint can be made for it)',
    restart: true,
    tamper(data) {
      const db = controlOf(data);
      rewrite(db, [...bodiesOf(db), forged('platform:beta')]);
      db.close();
    },
    expected: { chain: 'control', seq: 6, reason: /entries #6–#6 are covered by no signed checkpoint/ },
  },
  {
    name: 'replace the whole audit table with a fresh valid chain',
    tamper(data) {
      const db = controlOf(data);
      rewrite(
        db,
        [1, 2, 3, 4, 5].map((i) => forged(`platform:p${i}`)),
      );
      db.close();
    },
    expected: { chain: 'control', seq: 1, reason: /not the entry its signed checkpoint covers/ },
  },
  {
    name: 'cut the newest entries and the checkpoints that cover them, then append one',
    tamper(data) {
      const db = controlOf(data);
      db.exec('DROP TRIGGER audit_log_no_delete; DROP TRIGGER audit_checkpoints_no_delete');
      db.exec('DELETE FROM audit_log WHERE seq > 3; DELETE FROM audit_checkpoints WHERE seq > 3');
      rewrite(db, [...bodiesOf(db), forged('platform:beta')]);
      db.close();
    },
    expected: { chain: 'control', seq: 4, reason: /covered by no signed checkpoint/ },
  },
  {
    name: 'forge checkpoint signatures for a recomputed chain',
    tamper(data) {
      const db = controlOf(data);
      const b = bodiesOf(db);
      b[0] = { ...b[0]!, actor: 'operator:mallory' };
      rewrite(db, b);
      resignCheckpoints(db, randomSig);
      db.close();
    },
    expected: { chain: 'control', seq: 1, reason: /signed checkpoint does not verify/ },
  },
  {
    name: 'sign checkpoints of a recomputed chain with another key',
    tamper(data) {
      const db = controlOf(data);
      const b = bodiesOf(db);
      b.splice(3, 1);
      rewrite(db, b);
      resignCheckpoints(db, signer(keyPair().privateKey));
      db.close();
    },
    expected: { chain: 'control', seq: 1, reason: /signed checkpoint does not verify/ },
  },
];

const keyAttacks: Attack[] = [
  {
    name: 'replace the public key with one’s own and re-sign everything (no master key)',
    tamper(data) {
      const control = controlOf(data);
      const priv = replaceKey(data, control, { seal: false });
      const b = bodiesOf(control);
      b[1] = { ...b[1]!, actor: 'operator:mallory' };
      rewrite(control, b);
      resignCheckpoints(control, signer(priv));
      resignAllAnchors(data, control, signer(priv));
      control.close();
    },
    expected: { key: /sealed audit signing key does not open/ },
  },
  {
    name: 'replace only the public half (the sealed private half stays)',
    restart: true,
    tamper(data) {
      const control = controlOf(data);
      control
        .query('UPDATE audit_signing_key SET public_key = ? WHERE id = 1')
        .run(spki(keyPair().publicKey));
      control.close();
    },
    expected: { key: /not the sealed signing key’s own \(the public key was replaced\)/ },
  },
  {
    name: 'with the master key: seal one’s own key, re-sign everything; the copy beside the data dir differs',
    tamper(data) {
      const control = controlOf(data);
      const priv = replaceKey(data, control, { seal: true });
      rewrite(control, bodiesOf(control).slice(0, 2));
      resignCheckpoints(control, signer(priv));
      resignAllAnchors(data, control, signer(priv));
      control.close();
    },
    expected: { key: /not the one recorded beside the data dir/ },
  },
  {
    name: 'with the master key and the copy removed: only the fingerprint kept off the machine shows it',
    tamper(data) {
      const control = controlOf(data);
      const priv = replaceKey(data, control, { seal: true });
      resignCheckpoints(control, signer(priv));
      resignAllAnchors(data, control, signer(priv));
      control.close();
      rmSync(publicKeyCopyPath(data));
    },
    args: () => ['--key-fingerprint', originalFingerprint],
    expected: { key: /not the recorded SHA256:.* \(the key was replaced\)/ },
  },
  {
    name: 'remove the signing key (and no new key is made on the next start)',
    restart: true,
    tamper(data) {
      const control = controlOf(data);
      control.exec('DELETE FROM audit_signing_key');
      control.close();
    },
    expected: { key: /no audit signing key \(it was removed\)/ },
  },
];

interface Verdict {
  ok: boolean;
  chains: {
    chain: string;
    ok: boolean;
    entries: number;
    anchored?: number;
    unanchored?: number;
    bad?: { seq: number; reason: string };
  }[];
  signing_key: { fingerprint?: string; problem?: string };
}

async function verify(
  data: string,
  args: string[] = [],
): Promise<{ code: number; v: Verdict; stderr: string }> {
  const r = await runCli(['audit', 'verify', '--json', '--data', data, ...args]);
  return { code: r.code, v: JSON.parse(r.stdout) as Verdict, stderr: r.stderr };
}

describe('audit verify against someone who can write the files', () => {
  test('the honest data dir verifies, every chain anchored to its head', async () => {
    const { code, v } = await verify(copy());
    expect(code).toBe(0);
    expect(v.signing_key.fingerprint).toMatch(/^SHA256:[A-Za-z0-9+/]{43}$/);
    expect(v.signing_key.problem).toBeUndefined();
    expect(v.chains.map((c) => [c.chain, c.ok, c.entries, c.anchored, c.unanchored])).toEqual([
      ['control', true, 5, 5, 0],
      ['alpha', true, 5, 5, 0],
      ['beta', true, 1, 1, 0],
    ]);
  });

  const tables: [string, Attack[]][] = [
    ['platform chain', platformAttacks],
    ['control chain', controlAttacks],
    ['signing key', keyAttacks],
  ];
  for (const [what, attacks] of tables) {
    for (const a of attacks) {
      test(`${what}: ${a.name} → verify exits 1 naming it`, async () => {
        const data = copy();
        a.tamper(data);
        // A start in between must not bless the change (no new key, no checkpoint of what is there).
        if (a.restart) await openInstance({ dataDir: data, log: silentLogger }).close();
        const { code, v, stderr } = await verify(data, a.args?.() ?? []);
        expect(code).toBe(1);
        expect(v.ok).toBe(false);
        const e = a.expected;
        if ('key' in e) {
          expect(v.signing_key.problem).toMatch(e.key);
        } else {
          const bad = v.chains.find((c) => !c.ok);
          expect(bad?.chain).toBe(e.chain);
          expect(bad?.bad?.seq).toBe(e.seq);
          expect(bad?.bad?.reason).toMatch(e.reason);
          expect(stderr).toContain(`audit chain ${e.chain} is broken at entry #${e.seq}`);
        }
      });
    }
  }

  test('signing key: with the master key and the copy removed, verify cannot tell without the recorded fingerprint', async () => {
    const data = copy();
    keyAttacks[3]!.tamper(data);
    const { code, v } = await verify(data);
    expect(v).toMatchObject({ ok: true, signing_key: {} });
    expect(code).toBe(0);
    expect(v.signing_key.fingerprint).not.toBe(originalFingerprint);
  });

  test('the human output names the key fingerprint and the bad entry', async () => {
    const data = copy();
    controlAttacks[2]!.tamper(data);
    const r = await runCli(['audit', 'verify', '--data', data]);
    expect(r.code).toBe(1);
    expect(r.stdout).toContain(`ok    signing key          ${originalFingerprint}`);
    expect(r.stdout).toMatch(
      /BAD {3}control {14}entry #4: a signed checkpoint covers entry #4 but the chain ends at #3/,
    );
    expect(r.stdout).toMatch(/ok {4}alpha {16}5 entries, head [0-9a-f]{16}…, anchored #5/);
  });
});

describe('the lag between a platform commit and its anchor', () => {
  test('a platform chain ahead of its anchor by one unfinished write verifies, and says so', async () => {
    const data = copy();
    // The write commits in the platform file (its entries signed in the same transaction, as
    // the running server does); the process dies before its anchor lands in control.db (here:
    // the anchor goes to a scratch database that is thrown away).
    const db = alphaOf(data);
    const control = controlOf(data);
    const ring = Keyring.open({ control, dataDir: data, clock: { now: () => 0 }, log: silentLogger });
    const o = openAuditSigner({ control, secrets: ring, clock: { now: () => 0 }, dataDir: data });
    control.close();
    if (!o.ok) throw new Error(o.reason);
    const lost = new Database(':memory:');
    lost.exec(
      'CREATE TABLE audit_anchors (platform_id TEXT PRIMARY KEY, seq INTEGER, hash TEXT, at INTEGER, sig TEXT)',
    );
    const dying = createAuditLog({ now: () => 1_800_000_001_000 }, () => ({
      control: lost,
      signer: o.signer,
      log: silentLogger,
      platformIdOf: (d) => (d === db ? alphaId : undefined),
    }));
    db.transaction(() => {
      dying.append(db, { actor: 'user:u1', action: 'thing.done', target: 'thing:6' });
      dying.append(db, { actor: 'user:u1', action: 'thing.done', target: 'thing:7' });
    })();
    db.close();
    lost.close();
    const { code, v } = await verify(data);
    expect(code).toBe(0);
    expect(v.chains.find((c) => c.chain === 'alpha')).toMatchObject({
      ok: true,
      entries: 7,
      anchored: 5,
      unanchored: 2,
    });
    const human = await runCli(['audit', 'verify', 'alpha', '--data', data]);
    expect(human.stdout).toContain('7 entries');
    expect(human.stdout).toContain('anchored #5, 2 after the last anchor');
  });

  test('the next write anchors the whole chain again', async () => {
    const data = copy();
    const db = alphaOf(data);
    createAuditLog({ now: () => 1_800_000_001_000 }).append(db, {
      actor: 'user:u1',
      action: 'x',
      target: 'y',
    });
    db.close();
    const inst = openInstance({ dataDir: data, log: silentLogger });
    try {
      await inst.app.platformDbs.use(alphaId, (pdb) =>
        inst.app.audit.append(pdb, { actor: 'user:u1', action: 'x', target: 'z' }),
      );
    } finally {
      await inst.close();
    }
    const { code, v } = await verify(data);
    expect(code).toBe(0);
    expect(v.chains.find((c) => c.chain === 'alpha')).toMatchObject({
      entries: 7,
      anchored: 7,
      unanchored: 0,
    });
  });
});

// Keep the payload format pinned: a signature over anything else must not pass for these.
test('checkpoint and anchor statements are distinct canonical JSON', () => {
  expect(checkpointPayload({ seq: 1, hash: 'h', at: 2 })).toBe(
    canonicalize({ t: 'soulfra.audit.checkpoint.v1', seq: 1, hash: 'h', at: 2 }) as string,
  );
  expect(anchorPayload({ platform_id: 'p', seq: 1, hash: 'h', at: 2 })).toContain(
    '"t":"soulfra.audit.anchor.v1"',
  );
  expect(fingerprintOf(keyPair().publicKey)).toMatch(/^SHA256:/);
});
