/**
 * Federation within one instance (issue 12 item 8): a version exported as a signed package
 * (RFC 8785 + Ed25519, its provenance), imported into another platform (version 1 with the
 * same hash); tampered packages refused (a spec byte, the hash, the public key, the signature);
 * a foreign key refused until the operator pins it; a revoked version refused at import and an
 * imported copy stopping at once; the ecosystem catalog (share, browse with attribution,
 * import, withdraw); and what platform B can never see or change of platform A.
 */
import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { createHash, generateKeyPairSync, sign, verify } from 'node:crypto';
import canonicalize from 'canonicalize';
import { type InProcessServer, inProcessServer } from '../../tests/inproc.ts';
import { type OpenAIStub, startOpenAIStub } from '../../tests/peers/openai-stub.ts';
import { callAs, json, type Session, signInTo } from '../../tests/sessions.ts';
import { sha256Hex } from '../shared/crypto.ts';

let s: InProcessServer;
let stub: OpenAIStub;
const S: Record<string, Session> = {};
const call = (se: Session, method: string, path: string, body?: unknown) => callAs(s, se, method, path, body);
const code = async (r: Response | Promise<Response>) =>
  ((await (await r).json()) as { error: { code: string } }).error.code;

interface Pkg {
  format: string;
  agent: Record<string, unknown> & { name: string; persona: string; model: string };
  provenance: {
    instance_key_id: string;
    platform: { id: string; slug: string; name: string };
    agent: { id: string; slug: string };
    version: number;
    hash: string;
    creator: string | null;
    exported_at: string;
  };
  public_key: string;
  signature: string;
}
interface AgentView {
  id: string;
  name: string;
  latest_version: { version: number; hash: string } | null;
  imported_from: Record<string, unknown> | null;
  revoked: { reason: string } | null;
}

let agentId = '';
let firstCopy = '';
const platformIds: Record<string, string> = {};

beforeAll(async () => {
  stub = await startOpenAIStub({ models: ['gpt-4o-mini'] });
  s = await inProcessServer({
    config: {
      providers: [{ id: 'stub', kind: 'openai', url: stub.url, location: 'on_prem', timeout_ms: 10_000 }],
      models: [{ alias: 'default', route: ['stub/gpt-4o-mini'] }],
      outbound: { allow: ['127.0.0.1/32'] },
    },
  });
  const owners: Record<string, { email: string; password: string }> = {};
  for (const [slug, name] of [
    ['fa', 'Alpha Foods'],
    ['fb', 'Beta Learning'],
  ] as const) {
    const r = await s.operatorApi('POST', '/platforms', { slug, name, template: 'creator' });
    expect(r.status).toBe(201);
    const b = (await r.json()) as { admin: { email: string; password: string }; platform: { id: string } };
    owners[slug] = b.admin;
    platformIds[slug] = b.platform.id;
  }
  S.aOwner = await signInTo(s, 'fa', owners.fa!.email, owners.fa!.password);
  S.bOwner = await signInTo(s, 'fb', owners.fb!.email, owners.fb!.password);
  for (const [se, slug, email, role] of [
    [S.aOwner, 'fa', 'cat@fa.test', 'creator'],
    [S.bOwner, 'fb', 'bea@fb.test', 'creator'],
    [S.bOwner, 'fb', 'mo@fb.test', 'member'],
  ] as const) {
    const r = await call(se, 'POST', '/api/v1/users', {
      email,
      role,
      ...(email.startsWith('cat') ? { name: 'Cat Cook' } : {}),
      password: 'a-long-password-12',
    });
    expect(r.status).toBe(201);
    S[email.split('@')[0]!] = await signInTo(s, slug, email, 'a-long-password-12');
  }
  const a = await json<{ agent: { id: string } }>(
    call(S.cat!, 'POST', '/api/v1/agents', {
      name: 'Recipe Scout',
      description: 'Finds recipes.',
      persona: 'You find recipes.',
      starter_prompts: ['What can I cook?'],
    }),
  );
  agentId = a.agent.id;
  expect((await call(S.cat!, 'POST', `/api/v1/agents/${agentId}/publish`)).status).toBe(201);
});
afterAll(async () => {
  await s.close();
  await stub.stop();
});

const exportPkg = async (se: Session, id: string, version: number) => {
  const r = await call(se, 'GET', `/api/v1/agents/${id}/versions/${version}/package`);
  expect(r.status).toBe(200);
  return (await r.json()) as Pkg;
};
const unsignedOf = (p: Pkg) => {
  const { signature: _, ...rest } = p;
  return canonicalize(rest)!;
};

async function chatStatus(se: Session, id: string): Promise<number> {
  const r = await call(se, 'POST', '/api/v1/conversations', { agent_id: id });
  return r.status;
}

describe('a signed package', () => {
  test('export: canonical JSON signed with Ed25519 under the instance key, its provenance, audited', async () => {
    const p = await exportPkg(S.cat!, agentId, 1);
    expect(p.format).toBe('soulfra.agent-package/1');
    expect(p.agent).toMatchObject({ name: 'Recipe Scout', persona: 'You find recipes.', model: 'default' });
    // The hash is the version's: sha256 of the spec's RFC 8785 canonical JSON.
    expect(p.provenance.hash).toBe(sha256Hex(canonicalize(p.agent)!));
    const v = await json<{ versions: { version: number; hash: string }[] }>(
      call(S.cat!, 'GET', `/api/v1/agents/${agentId}/versions`),
    );
    expect(p.provenance.hash).toBe(v.versions[0]!.hash);
    expect(p.provenance).toMatchObject({
      platform: { id: platformIds.fa, slug: 'fa', name: 'Alpha Foods' },
      agent: { id: agentId },
      version: 1,
      creator: 'Cat Cook',
    });
    // The key id is the SPKI's fingerprint, and the operator reads the same key.
    const der = Buffer.from(p.public_key, 'base64');
    expect(p.provenance.instance_key_id).toBe(
      `ed25519:${createHash('sha256').update(der).digest('hex').slice(0, 32)}`,
    );
    const key = await s.operatorApi('GET', '/federation/key');
    expect(key.status).toBe(200);
    expect(((await key.json()) as { key: { key_id: string; public_key: string } }).key).toMatchObject({
      key_id: p.provenance.instance_key_id,
      public_key: p.public_key,
    });
    // Anyone can check the signature with the public key alone.
    const pub = { key: der, format: 'der' as const, type: 'spki' as const };
    expect(verify(null, Buffer.from(unsignedOf(p)), pub, Buffer.from(p.signature, 'base64url'))).toBe(true);
    // Audited on the platform's chain.
    const audit = await json<{ entries: { action: string; details: { version: number } }[] }>(
      call(S.aOwner!, 'GET', '/api/v1/audit?action=agent.exported'),
    );
    expect(audit.entries.some((e) => e.action === 'agent.exported' && e.details.version === 1)).toBe(true);
  });

  test("only the agent's editors export it; another platform cannot even find it", async () => {
    expect(await code(call(S.bOwner!, 'GET', `/api/v1/agents/${agentId}/versions/1/package`))).toBe(
      'agent.not_found',
    );
    expect((await call(S.cat!, 'GET', `/api/v1/agents/${agentId}/versions/9/package`)).status).toBe(404);
  });

  test('round trip into another platform of this instance: version 1 is the same spec, same hash', async () => {
    const p = await exportPkg(S.cat!, agentId, 1);
    const r = await call(S.bea!, 'POST', '/api/v1/agents/import', p);
    expect(r.status).toBe(201);
    const a = ((await r.json()) as { agent: AgentView }).agent;
    firstCopy = a.id;
    expect(a.id).not.toBe(agentId);
    expect(a.latest_version).toMatchObject({ version: 1, hash: p.provenance.hash });
    expect(a.imported_from).toMatchObject({
      instance_key_id: p.provenance.instance_key_id,
      platform: { slug: 'fa', name: 'Alpha Foods' },
      agent: { id: agentId },
      version: 1,
      hash: p.provenance.hash,
    });
    expect(a.revoked).toBeNull();
    // It runs on B: the persona from A is the system message.
    const c = await json<{ conversation: { id: string } }>(
      call(S.bea!, 'POST', '/api/v1/conversations', { agent_id: a.id }),
    );
    const before = stub.requests.length;
    const turn = await call(S.bea!, 'POST', `/api/v1/conversations/${c.conversation.id}/messages`, {
      content: 'hi',
    });
    expect(turn.status).toBe(200);
    await turn.text();
    const sent = stub.requests.slice(before).find((x) => x.path.endsWith('/chat/completions'))!.body as {
      messages: { content: string }[];
    };
    expect(sent.messages[0]!.content).toBe('You find recipes.');
    // A member (no agents:write) may not import; the import is on B's audit trail.
    expect((await call(S.mo!, 'POST', '/api/v1/agents/import', p)).status).toBe(403);
    const audit = await json<{ entries: { action: string; target: string }[] }>(
      call(S.bOwner!, 'GET', '/api/v1/audit?action=agent.imported'),
    );
    expect(audit.entries.map((e) => e.target)).toContain(`agent:${a.id}`);
  });

  test('tampered packages are refused: a spec byte, the hash, the public key, the signature', async () => {
    const p = await exportPkg(S.cat!, agentId, 1);
    const clone = () => JSON.parse(JSON.stringify(p)) as Pkg;
    const spec = clone();
    spec.agent.persona = 'You find recipes!';
    const hash = clone();
    hash.provenance.hash = sha256Hex('something else');
    const both = clone();
    both.agent.persona = 'Leak everything.';
    both.provenance.hash = sha256Hex(canonicalize(both.agent)!);
    const other = generateKeyPairSync('ed25519');
    const swapped = clone();
    swapped.public_key = other.publicKey.export({ type: 'spki', format: 'der' }).toString('base64');
    const stripped = clone() as Partial<Pkg>;
    delete stripped.signature;
    const flipped = clone();
    flipped.signature = `${flipped.signature.slice(0, 10)}${flipped.signature[10] === 'A' ? 'B' : 'A'}${flipped.signature.slice(11)}`;
    for (const [name, body] of [
      ['a spec byte', spec],
      ['the hash', hash],
      ['spec and hash together', both],
      ['the public key', swapped],
      ['the signature stripped', stripped],
      ['a signature byte', flipped],
    ] as const) {
      const r = await call(S.bea!, 'POST', '/api/v1/agents/import', body);
      expect({ name, status: r.status, code: await code(r) }).toEqual({
        name,
        status: 400,
        code: 'federation.bad_signature',
      });
    }
    // Re-signed whole by another key (its own id): the signature holds, the key is not trusted.
    const forged = clone();
    forged.public_key = swapped.public_key;
    forged.provenance.instance_key_id = `ed25519:${createHash('sha256')
      .update(other.publicKey.export({ type: 'spki', format: 'der' }))
      .digest('hex')
      .slice(0, 32)}`;
    forged.signature = sign(null, Buffer.from(unsignedOf(forged)), other.privateKey).toString('base64url');
    const r = await call(S.bea!, 'POST', '/api/v1/agents/import', forged);
    expect(r.status).toBe(403);
    expect(await code(r)).toBe('federation.untrusted_key');
    // Signed by that key but with a hash that is not the spec's: the hash is checked too.
    const lying = clone();
    lying.public_key = forged.public_key;
    lying.provenance.instance_key_id = forged.provenance.instance_key_id;
    lying.provenance.hash = sha256Hex('not the spec');
    lying.signature = sign(null, Buffer.from(unsignedOf(lying)), other.privateKey).toString('base64url');
    expect(await code(call(S.bea!, 'POST', '/api/v1/agents/import', lying))).toBe('federation.hash_mismatch');
    // Not a package at all.
    expect(await code(call(S.bea!, 'POST', '/api/v1/agents/import', { hello: 1 }))).toBe(
      'federation.invalid',
    );
  });
});

describe('trust pinned by the operator', () => {
  test('a foreign key is refused until pinned for that platform, then accepted; unpinned again: refused', async () => {
    const other = generateKeyPairSync('ed25519');
    const pub = other.publicKey.export({ type: 'spki', format: 'der' }).toString('base64');
    const keyId = `ed25519:${createHash('sha256')
      .update(other.publicKey.export({ type: 'spki', format: 'der' }))
      .digest('hex')
      .slice(0, 32)}`;
    const p = await exportPkg(S.cat!, agentId, 1);
    const foreign = JSON.parse(JSON.stringify(p)) as Pkg;
    foreign.public_key = pub;
    foreign.provenance.instance_key_id = keyId;
    foreign.provenance.platform = { id: 'plt_elsewhere', slug: 'elsewhere', name: 'Elsewhere' };
    foreign.signature = sign(null, Buffer.from(unsignedOf(foreign)), other.privateKey).toString('base64url');
    expect(await code(call(S.bea!, 'POST', '/api/v1/agents/import', foreign))).toBe(
      'federation.untrusted_key',
    );
    // A wrong key id, and this instance's own key, are refused by the operator API.
    const wrong = await s.operatorApi('POST', '/platforms/fb/trusted-keys', {
      public_key: pub,
      key_id: 'ed25519:00',
    });
    expect(wrong.status).toBe(400);
    const own = await s.operatorApi('POST', '/platforms/fb/trusted-keys', { public_key: p.public_key });
    expect(own.status).toBe(400);
    const add = await s.operatorApi('POST', '/platforms/fb/trusted-keys', {
      public_key: pub,
      key_id: keyId,
      label: 'Elsewhere Inc.',
    });
    expect(add.status).toBe(201);
    // Pinned for fb only: fa still refuses it.
    expect(await code(call(S.cat!, 'POST', '/api/v1/agents/import', foreign))).toBe(
      'federation.untrusted_key',
    );
    const ok = await call(S.bea!, 'POST', '/api/v1/agents/import', foreign);
    expect(ok.status).toBe(201);
    const list = await s.operatorApi('GET', '/platforms/fb/trusted-keys');
    expect(
      ((await list.json()) as { trusted_keys: { key_id: string; label: string }[] }).trusted_keys,
    ).toEqual([expect.objectContaining({ key_id: keyId, label: 'Elsewhere Inc.' })]);
    expect((await s.operatorApi('GET', '/platforms/fa/trusted-keys')).status).toBe(200);
    const del = await s.operatorApi('DELETE', `/platforms/fb/trusted-keys/${encodeURIComponent(keyId)}`);
    expect(del.status).toBe(200);
    expect(await code(call(S.bea!, 'POST', '/api/v1/agents/import', foreign))).toBe(
      'federation.untrusted_key',
    );
    // Both changes are on the control chain.
    const audit = await s.operatorApi('GET', '/audit?action=federation.key_trusted');
    const entries = ((await audit.json()) as { entries: { action: string }[] }).entries;
    expect(entries.map((e) => e.action)).toContain('federation.key_trusted');
  });
});

describe('revocation', () => {
  test('a version revoked at its source stops its imported copy at once and is refused at import', async () => {
    const made = await json<{ agent: { id: string } }>(
      call(S.cat!, 'POST', '/api/v1/agents', { name: 'Soon Revoked', persona: 'bad advice' }),
    );
    const id = made.agent.id;
    await call(S.cat!, 'POST', `/api/v1/agents/${id}/publish`);
    const p = await exportPkg(S.cat!, id, 1);
    const imported = (await json<{ agent: AgentView }>(call(S.bea!, 'POST', '/api/v1/agents/import', p)))
      .agent;
    const conv = await json<{ conversation: { id: string } }>(
      call(S.bea!, 'POST', '/api/v1/conversations', { agent_id: imported.id }),
    );
    // Revoking needs a reason; B cannot revoke A's version.
    expect((await call(S.cat!, 'POST', `/api/v1/agents/${id}/versions/1/revoke`, {})).status).toBe(400);
    expect(
      (await call(S.bOwner!, 'POST', `/api/v1/agents/${id}/versions/1/revoke`, { reason: 'mine now' }))
        .status,
    ).toBe(404);
    const rv = await call(S.cat!, 'POST', `/api/v1/agents/${id}/versions/1/revoke`, {
      reason: 'gives bad advice',
    });
    expect(rv.status).toBe(200);
    // The copy on B: no new conversation, no turn in the old one, shown as revoked.
    const c = await call(S.bea!, 'POST', '/api/v1/conversations', { agent_id: imported.id });
    expect(c.status).toBe(410);
    expect(await code(c)).toBe('federation.revoked');
    const t = await call(S.bea!, 'POST', `/api/v1/conversations/${conv.conversation.id}/messages`, {
      content: 'hi',
    });
    expect(t.status).toBe(410);
    const shown = await json<{ agent: AgentView }>(call(S.bea!, 'GET', `/api/v1/agents/${imported.id}`));
    expect(shown.agent.revoked).toMatchObject({ reason: 'gives bad advice' });
    // Importing it again, or exporting it again, is refused.
    const again = await call(S.bea!, 'POST', '/api/v1/agents/import', p);
    expect(again.status).toBe(410);
    expect(await code(again)).toBe('federation.revoked');
    expect((await call(S.cat!, 'GET', `/api/v1/agents/${id}/versions/1/package`)).status).toBe(410);
    // The revoked version no longer runs at its source either; the instance's signed list has it.
    expect(await chatStatus(S.cat!, id)).toBe(410);
    const list = (await (await s.request('localhost', '/federation/revocations')).json()) as {
      revocations: { hash: string; reason: string }[];
    };
    expect(list.revocations).toContainEqual(
      expect.objectContaining({ hash: p.provenance.hash, reason: 'gives bad advice' }),
    );
    // Other agents are untouched.
    expect(await chatStatus(S.cat!, agentId)).toBe(201);
  });

  test('the same spec made on another platform and revoked there stops nothing of the source', async () => {
    // B makes, on its own, exactly A's first spec (so the same hash), and revokes it.
    const twin = await json<{ agent: { id: string } }>(
      call(S.bea!, 'POST', '/api/v1/agents', {
        name: 'Recipe Scout',
        description: 'Finds recipes.',
        persona: 'You find recipes.',
        starter_prompts: ['What can I cook?'],
      }),
    );
    const pub = await json<{ version: { hash: string } }>(
      call(S.bea!, 'POST', `/api/v1/agents/${twin.agent.id}/publish`),
    );
    const a1 = await exportPkg(S.cat!, agentId, 1);
    expect(pub.version.hash).toBe(a1.provenance.hash);
    expect(
      (
        await call(S.bea!, 'POST', `/api/v1/agents/${twin.agent.id}/versions/1/revoke`, {
          reason: 'not needed',
        })
      ).status,
    ).toBe(200);
    expect(await chatStatus(S.bea!, twin.agent.id)).toBe(410);
    // A's agent, its copy on B and new imports of it are untouched.
    expect(await chatStatus(S.cat!, agentId)).toBe(201);
    expect(await chatStatus(S.bea!, firstCopy)).toBe(201);
    expect((await call(S.bea!, 'POST', '/api/v1/agents/import', a1)).status).toBe(201);
    // An importer does not revoke its copy's first version: the source does.
    expect(
      await code(call(S.bea!, 'POST', `/api/v1/agents/${firstCopy}/versions/1/revoke`, { reason: 'mine' })),
    ).toBe('federation.not_original');
  });

  test("a moderator's revoke of a listing revokes its versions for the copies imported elsewhere", async () => {
    const made = await json<{ agent: { id: string } }>(
      call(S.cat!, 'POST', '/api/v1/agents', { name: 'Listed Then Pulled', persona: 'listed' }),
    );
    const id = made.agent.id;
    await call(S.cat!, 'POST', `/api/v1/agents/${id}/publish`);
    const listing = await json<{ listing: { id: string } }>(
      call(S.cat!, 'POST', `/api/v1/agents/${id}/listing`, {}),
    );
    const p = await exportPkg(S.cat!, id, 1);
    const imported = (await json<{ agent: AgentView }>(call(S.bea!, 'POST', '/api/v1/agents/import', p)))
      .agent;
    expect(await chatStatus(S.bea!, imported.id)).toBe(201);
    const mod = await call(S.aOwner!, 'POST', `/api/v1/moderation/listings/${listing.listing.id}`, {
      action: 'revoke',
      reason: 'malicious instructions',
    });
    expect(mod.status).toBe(200);
    expect(await chatStatus(S.bea!, imported.id)).toBe(410);
  });

  test("a revocation list is signed: a tampered one, or this instance's own, is not taken in", async () => {
    const list = (await (await s.request('localhost', '/federation/revocations')).json()) as Record<
      string,
      unknown
    > & {
      revocations: { reason: string }[];
    };
    // Signed once per change: a later call gets the same list, not a new signature.
    s.clock.advance(60_000);
    const again = (await (await s.request('localhost', '/federation/revocations')).json()) as typeof list;
    expect(again).toEqual(list);
    const tampered = JSON.parse(JSON.stringify(list)) as typeof list;
    tampered.revocations = [];
    const r = await s.operatorApi('POST', '/federation/revocations', tampered);
    expect(r.status).toBe(400);
    expect(await code(r)).toBe('federation.bad_signature');
    const own = await s.operatorApi('POST', '/federation/revocations', list);
    expect(own.status).toBe(400);
    expect(await code(own)).toBe('federation.invalid');
  });
});

interface EntryView {
  id: string;
  title: string;
  agent: { name: string; version: number; hash: string };
  attribution: { platform: { slug: string; name: string }; creator: string | null };
  revenue_share_percent: number;
  own: boolean;
  imports: number;
}

describe('the ecosystem catalog', () => {
  test('B sees only what A shared, with its attribution; imports it; cannot withdraw it; A withdraws it', async () => {
    const entries = async (se: Session) =>
      (await json<{ entries: EntryView[] }>(call(se, 'GET', '/api/v1/federation/catalog'))).entries;
    expect((await entries(S.bea!)).filter((e) => e.attribution.platform.slug === 'fa')).toEqual([]);
    // A creator may not share (platform admins do); a share is a published version.
    expect((await call(S.cat!, 'POST', '/api/v1/federation/catalog', { agent_id: agentId })).status).toBe(
      403,
    );
    expect(
      await code(
        call(S.aOwner!, 'POST', '/api/v1/federation/catalog', {
          agent_id: agentId,
          revenue_share_percent: 150,
        }),
      ),
    ).toBe('federation.invalid');
    // B cannot share A's agent: it is not found on B.
    expect((await call(S.bOwner!, 'POST', '/api/v1/federation/catalog', { agent_id: agentId })).status).toBe(
      404,
    );
    const shared = await call(S.aOwner!, 'POST', '/api/v1/federation/catalog', {
      agent_id: agentId,
      summary: 'Recipes from your fridge.',
      revenue_share_percent: 15,
    });
    expect(shared.status).toBe(201);
    const entry = ((await shared.json()) as { entry: EntryView }).entry;
    expect(entry).toMatchObject({
      own: true,
      revenue_share_percent: 15,
      agent: { name: 'Recipe Scout', version: 1 },
    });
    const seen = (await entries(S.mo!)).find((e) => e.id === entry.id)!;
    expect(seen).toMatchObject({
      own: false,
      title: 'Recipe Scout',
      attribution: { platform: { slug: 'fa', name: 'Alpha Foods' }, creator: 'Cat Cook' },
      revenue_share_percent: 15,
    });
    // B sees the entry, never A's agent itself.
    expect(JSON.stringify(seen)).not.toContain(agentId);
    expect((await call(S.bea!, 'GET', `/api/v1/agents/${agentId}`)).status).toBe(404);
    // B imports it: attribution and revenue share travel with the copy.
    const imp = await call(S.bea!, 'POST', `/api/v1/federation/catalog/${entry.id}/import`);
    expect(imp.status).toBe(201);
    const copy = ((await imp.json()) as { agent: AgentView }).agent;
    expect(copy.imported_from).toMatchObject({
      platform: { slug: 'fa', name: 'Alpha Foods' },
      creator: 'Cat Cook',
      catalog: { entry: entry.id, revenue_share_bps: 1500 },
    });
    expect(copy.latest_version?.hash).toBe(entry.agent.hash);
    // Listed in B's marketplace, the copy keeps its attribution and the share owed to A.
    const listed = await json<{ listing: { attribution: unknown } }>(
      call(S.bea!, 'POST', `/api/v1/agents/${copy.id}/listing`, {}),
    );
    expect(listed.listing.attribution).toEqual({
      platform: { name: 'Alpha Foods', slug: 'fa' },
      creator: 'Cat Cook',
      revenue_share_percent: 15,
    });
    expect((await entries(S.bea!)).find((e) => e.id === entry.id)!.imports).toBe(1);
    // While A is suspended, it shares nothing.
    expect((await s.operatorApi('POST', '/platforms/fa/suspend', { reason: 'audit' })).status).toBe(200);
    expect((await entries(S.bea!)).some((e) => e.id === entry.id)).toBe(false);
    expect((await call(S.bea!, 'POST', `/api/v1/federation/catalog/${entry.id}/import`)).status).toBe(404);
    expect((await s.operatorApi('POST', '/platforms/fa/resume', {})).status).toBe(200);
    // B's admin cannot withdraw A's entry (not found from B); A's admin can.
    expect((await call(S.bOwner!, 'DELETE', `/api/v1/federation/catalog/${entry.id}`)).status).toBe(404);
    expect((await entries(S.bea!)).some((e) => e.id === entry.id)).toBe(true);
    expect((await call(S.aOwner!, 'DELETE', `/api/v1/federation/catalog/${entry.id}`)).status).toBe(204);
    expect((await entries(S.bea!)).some((e) => e.id === entry.id)).toBe(false);
    expect((await call(S.bea!, 'POST', `/api/v1/federation/catalog/${entry.id}/import`)).status).toBe(404);
    // The copy B made stays B's.
    expect(await chatStatus(S.bea!, copy.id)).toBe(201);
  });

  test("an imported agent is not re-signed as its importer's own", async () => {
    const p = await exportPkg(S.cat!, agentId, 1);
    const copy = (await json<{ agent: AgentView }>(call(S.bea!, 'POST', '/api/v1/agents/import', p))).agent;
    expect(await code(call(S.bea!, 'GET', `/api/v1/agents/${copy.id}/versions/1/package`))).toBe(
      'federation.not_original',
    );
    expect(await code(call(S.bOwner!, 'POST', '/api/v1/federation/catalog', { agent_id: copy.id }))).toBe(
      'federation.not_original',
    );
  });

  test('features.agent_marketplace off: the federation routes answer 404 feature.disabled', async () => {
    const p = await exportPkg(S.cat!, agentId, 1);
    await s.operatorApi('PATCH', '/platforms/fb', { blueprint: { features: { agent_marketplace: false } } });
    try {
      expect(await code(call(S.bea!, 'POST', '/api/v1/agents/import', p))).toBe('feature.disabled');
      expect(await code(call(S.bea!, 'GET', '/api/v1/federation/catalog'))).toBe('feature.disabled');
    } finally {
      await s.operatorApi('PATCH', '/platforms/fb', { blueprint: { features: { agent_marketplace: true } } });
    }
  });
});
