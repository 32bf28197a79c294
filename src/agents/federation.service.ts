/**
 * Federation (issue 12 item 8): an agent version leaves its platform as a signed package
 * (RFC 8785 canonical JSON, Ed25519 under the instance's federation key, with its provenance),
 * and enters another platform of this instance (whose own key it trusts implicitly) or of
 * another instance whose key the operator pinned for that platform. A revoked version (at its
 * source: a moderator's revoke, or its editors') is on this instance's revocation list, which
 * is signed and travels to other instances; an imported copy whose version is revoked stops
 * working. The instance-wide ecosystem catalog holds what platforms chose to share, with its
 * attribution and the revenue share owed to the source.
 *
 * Everything instance-wide is in control.db and reached through `federation.repository.ts`
 * with `app.control`; no platform's code opens another platform's database.
 */
import type { Database } from 'bun:sqlite';
import { createHash, createPublicKey, generateKeyPairSync, type KeyObject, sign, verify } from 'node:crypto';
import canonicalize from 'canonicalize';
import type { AiDeps } from '../ai/index.ts';
import { type App, type SecretSite, stateKey } from '../app/index.ts';
import { tx } from '../db/index.ts';
import { actorOf, createUserRepository, type PlatformRequestContext } from '../identity/index.ts';
import { AppError } from '../shared/errors.ts';
import { newId } from '../shared/ids.ts';
import { findAgent, findVersion, listVersions } from './agents.repository.ts';
import {
  type AgentSpec,
  canonicalSpec,
  editableAgent,
  foreignSpec,
  importAgent,
  platformModels,
} from './agents.service.ts';
import {
  type CatalogRow,
  catalogEntryOf,
  countCatalogImport,
  deleteCatalogEntry,
  deleteTrustedKey,
  findCatalogEntry,
  findFederationKey,
  findLiveCatalogEntry,
  findRevocation,
  findTrustedKey,
  insertFederationKey,
  insertRevocation,
  keyTrustedAnywhere,
  listCatalog,
  listRevocations,
  listTrustedKeys,
  type RevocationRow,
  revocationStamp,
  type TrustedKeyRow,
  updateFederationPrivateKey,
  upsertCatalogEntry,
  upsertTrustedKey,
} from './federation.repository.ts';

/** The keyring context the federation key's private half is sealed under. */
export const FEDERATION_KEY_CONTEXT = 'control:federation_key';
export const PACKAGE_FORMAT = 'soulfra.agent-package/1';
export const REVOCATIONS_FORMAT = 'soulfra.revocations/1';
/** The most entries a revocation list carries (and takes in). */
export const MAX_REVOCATIONS = 10_000;

const iso = (ms: number) => new Date(ms).toISOString();

// ---------------------------------------------------------------------------------------------
// The instance federation key

/** A key's id: `ed25519:` and the first 32 hex digits of SHA-256 over its SPKI DER. */
export function keyIdOf(publicKey: KeyObject): string {
  const der = publicKey.export({ type: 'spki', format: 'der' });
  return `ed25519:${createHash('sha256').update(der).digest('hex').slice(0, 32)}`;
}

/** An Ed25519 public key from SPKI DER in base64 (or PEM), or null. */
export function publicKeyFrom(text: string): KeyObject | null {
  try {
    const k = text.includes('-----BEGIN')
      ? createPublicKey(text)
      : createPublicKey({ key: Buffer.from(text, 'base64'), format: 'der', type: 'spki' });
    return k.asymmetricKeyType === 'ed25519' ? k : null;
  } catch {
    return null;
  }
}

const spkiOf = (k: KeyObject) => k.export({ type: 'spki', format: 'der' }).toString('base64');

/** The instance's key, made on first use (its private half sealed in control.db). */
function instanceKey(app: App): { keyId: string; publicKey: string; createdAt: number; privateKey: string } {
  let row = findFederationKey(app.control);
  if (!row) {
    const pair = generateKeyPairSync('ed25519');
    const priv = pair.privateKey.export({ type: 'pkcs8', format: 'der' }).toString('base64');
    const made = {
      key_id: keyIdOf(pair.publicKey),
      public_key: spkiOf(pair.publicKey),
      private_key: app.secrets.seal(priv, FEDERATION_KEY_CONTEXT),
      created_at: app.clock.now(),
    };
    tx(app.control, () => {
      insertFederationKey(app.control, made);
      if (findFederationKey(app.control)?.key_id === made.key_id)
        app.audit.append(app.control, {
          actor: 'system',
          action: 'federation.key_created',
          target: `federation_key:${made.key_id}`,
          details: { key_id: made.key_id },
        });
    });
    row = findFederationKey(app.control)!;
  }
  return {
    keyId: row.key_id,
    publicKey: row.public_key,
    createdAt: row.created_at,
    privateKey: row.private_key,
  };
}

/** The instance's key id, or null before it exists (nothing was signed, nothing revoked). */
export function instanceKeyId(control: Database): string | null {
  return findFederationKey(control)?.key_id ?? null;
}

/** What the operator reads: the key id and public key peers pin. */
export function federationKeyView(app: App) {
  const k = instanceKey(app);
  return { key_id: k.keyId, public_key: k.publicKey, algorithm: 'Ed25519', created_at: iso(k.createdAt) };
}

/** Ed25519 over `payload` with the instance key, base64url. */
function signWithInstanceKey(app: App, payload: string): { keyId: string; publicKey: string; sig: string } {
  const k = instanceKey(app);
  const der = Buffer.from(app.secrets.unseal(k.privateKey, FEDERATION_KEY_CONTEXT), 'base64');
  const sig = sign(null, Buffer.from(payload, 'utf8'), { key: der, format: 'der', type: 'pkcs8' });
  return { keyId: k.keyId, publicKey: k.publicKey, sig: sig.toString('base64url') };
}

function verifies(publicKey: KeyObject, payload: string, sig: string): boolean {
  if (!/^[A-Za-z0-9_-]{86}$/.test(sig)) return false;
  try {
    return verify(null, Buffer.from(payload, 'utf8'), publicKey, Buffer.from(sig, 'base64url'));
  } catch {
    return false;
  }
}

/** Declares the sealed federation key to the keyring (`keys rotate` re-seals it). */
export const FEDERATION_SECRET_SITE: SecretSite = {
  name: 'federation_key',
  scope: 'control',
  reseal(db, _scope, rewrite) {
    const row = findFederationKey(db);
    if (!row) return 0;
    return updateFederationPrivateKey(db, rewrite(row.private_key, FEDERATION_KEY_CONTEXT));
  },
};

// ---------------------------------------------------------------------------------------------
// Packages

export interface Provenance {
  instance_key_id: string;
  platform: { id: string; slug: string; name: string };
  agent: { id: string; slug: string };
  version: number;
  hash: string;
  creator: string | null;
  exported_at: string;
}

export interface AgentPackage {
  format: typeof PACKAGE_FORMAT;
  agent: AgentSpec;
  provenance: Provenance;
  /** The signer's public key, SPKI DER, base64 (its id is `provenance.instance_key_id`). */
  public_key: string;
  /** Ed25519, base64url, over the canonical JSON of everything but this field. */
  signature: string;
}

/** What an imported agent records (tenant migration 0018, `agents.imported_from`). */
export interface ImportedFrom {
  instance_key_id: string;
  platform: { id: string; slug: string; name: string };
  agent: { id: string; slug: string };
  version: number;
  hash: string;
  creator: string | null;
  /** Through the ecosystem catalog: its entry and the source's revenue share (basis points). */
  catalog?: { entry: string; revenue_share_bps: number };
  /** When the importer's platform lacked the package's model: the alias it named. */
  model_from?: string;
  imported_at: string;
}

const signedPart = (p: Omit<AgentPackage, 'signature'>) =>
  canonicalize({ format: p.format, agent: p.agent, provenance: p.provenance, public_key: p.public_key }) ??
  '';

const revokedError = (r: RevocationRow) =>
  new AppError('federation.revoked', `this agent version was revoked at its source: ${r.reason}`, 410);

/** A version of an agent of `c`'s platform as a signed package (the agent's editors). */
function buildPackage(c: PlatformRequestContext, agentId: string, version: number): AgentPackage {
  const a = editableAgent(c, agentId);
  const v = findVersion(c.db, a.id, version);
  if (!v)
    throw new AppError('agent.version_not_found', `agent ${a.id} has no version ${version}`, 404, [
      { path: '/version', reason: 'no such version' },
    ]);
  if (a.imported_from) {
    const from = JSON.parse(a.imported_from) as ImportedFrom;
    if (from.hash === v.hash || canonicalSpec(JSON.parse(v.spec) as AgentSpec).hash === from.hash)
      throw new AppError(
        'federation.not_original',
        `version ${version} was imported from ${from.platform.name}: it is shared by its source, not re-signed here`,
        409,
      );
  }
  const keyId = instanceKey(c.app).keyId;
  const revoked = findRevocation(c.app.control, keyId, c.platform.id, v.hash);
  if (revoked) throw revokedError(revoked);
  const owner = a.owner_id ? createUserRepository({ db: c.db }).byId(a.owner_id) : null;
  const unsigned = {
    format: PACKAGE_FORMAT,
    agent: JSON.parse(v.spec) as AgentSpec,
    provenance: {
      instance_key_id: keyId,
      platform: { id: c.platform.id, slug: c.platform.slug, name: c.platform.name },
      agent: { id: a.id, slug: a.slug },
      version: v.version,
      hash: v.hash,
      creator: owner?.name || null,
      exported_at: iso(c.app.clock.now()),
    },
    public_key: instanceKey(c.app).publicKey,
  } as const;
  const { sig } = signWithInstanceKey(c.app, signedPart(unsigned));
  return { ...unsigned, signature: sig };
}

/** GET .../versions/:version/package: the signed package, audited. */
export function exportPackage(c: PlatformRequestContext, agentId: string, version: number): Response {
  const pkg = buildPackage(c, agentId, version);
  c.db.transaction(() => {
    c.app.audit.append(c.db, {
      actor: actorOf(c.principal),
      action: 'agent.exported',
      target: `agent:${agentId}`,
      details: { version, hash: pkg.provenance.hash, key_id: pkg.provenance.instance_key_id },
    });
  })();
  return new Response(JSON.stringify(pkg), {
    headers: {
      'content-type': 'application/json',
      'content-disposition': `attachment; filename="${pkg.provenance.agent.slug}-v${version}.agent.json"`,
      'cache-control': 'no-store',
    },
  });
}

const invalid = (path: string, reason: string) =>
  new AppError('federation.invalid', `the package is not a soulfra agent package: ${path} ${reason}`, 400, [
    { path, reason },
  ]);
const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * A package checked, in this order: its shape; its public key against its key id and its
 * signature over its canonical content (any byte changed: 400 `federation.bad_signature`); the
 * spec's hash against the provenance (400 `federation.hash_mismatch`); its key trusted by the
 * platform `platformId` (this instance's own, or pinned: else 403 `federation.untrusted_key`);
 * the version not revoked (410 `federation.revoked`).
 */
export function verifyPackage(app: App, platformId: string, raw: unknown): AgentPackage {
  if (!isObject(raw)) throw invalid('/', 'must be a JSON object');
  if (raw.format !== PACKAGE_FORMAT) throw invalid('/format', `must be ${PACKAGE_FORMAT}`);
  if (!isObject(raw.agent)) throw invalid('/agent', 'must be an agent spec');
  const p = raw.provenance;
  if (
    !isObject(p) ||
    typeof p.instance_key_id !== 'string' ||
    typeof p.hash !== 'string' ||
    !Number.isInteger(p.version) ||
    !isObject(p.platform) ||
    typeof p.platform.id !== 'string' ||
    !isObject(p.agent)
  )
    throw invalid('/provenance', 'must name the key id, platform, agent, version and hash');
  if (typeof raw.public_key !== 'string') throw invalid('/public_key', 'is missing');
  const extra = Object.keys(raw).filter(
    (k) => !['format', 'agent', 'provenance', 'public_key', 'signature'].includes(k),
  );
  if (extra.length) throw invalid(`/${extra[0]}`, 'is not a field of a package');
  const pkg = raw as unknown as AgentPackage;
  const badSig = (why: string) =>
    new AppError('federation.bad_signature', `the package's signature does not hold: ${why}`, 400, [
      { path: '/signature', reason: why },
    ]);
  if (typeof raw.signature !== 'string' || !raw.signature) throw badSig('the package is not signed');
  const key = publicKeyFrom(pkg.public_key);
  if (!key || keyIdOf(key) !== pkg.provenance.instance_key_id)
    throw badSig('its public key is not the key its provenance names');
  if (!verifies(key, signedPart(pkg), pkg.signature))
    throw badSig('the content was changed after signing, or it was not signed by that key');
  if (canonicalSpec(pkg.agent).hash !== pkg.provenance.hash)
    throw new AppError(
      'federation.hash_mismatch',
      "the agent's content does not hash to the version hash its provenance names",
      400,
      [{ path: '/provenance/hash', reason: 'is not the hash of /agent' }],
    );
  const keyId = pkg.provenance.instance_key_id;
  const own = instanceKeyId(app.control);
  if (keyId !== own) {
    const pinned = findTrustedKey(app.control, platformId, keyId);
    if (!pinned || pinned.public_key !== spkiOf(key))
      throw new AppError(
        'federation.untrusted_key',
        `this platform does not trust the key ${keyId}: the operator pins a key for a platform first (soulfra platform trust add)`,
        403,
      );
  }
  const revoked = findRevocation(app.control, keyId, String(pkg.provenance.platform.id), pkg.provenance.hash);
  if (revoked) throw revokedError(revoked);
  return pkg;
}

/** Makes `c`'s new agent from a verified package (version 1 = its spec), mapping the model if asked. */
function importVerified(
  deps: Pick<AiDeps, 'runtime'>,
  c: PlatformRequestContext,
  pkg: AgentPackage,
  opts: { model?: string; catalog?: ImportedFrom['catalog'] },
) {
  const spec = foreignSpec(deps, c, pkg.agent);
  if (canonicalSpec(spec).hash !== pkg.provenance.hash)
    throw invalid('/agent', 'is not a valid agent spec here (a field is out of range)');
  const models = platformModels(deps, c);
  let modelFrom: string | undefined;
  if (opts.model !== undefined && opts.model !== spec.model) {
    if (!models.includes(opts.model))
      throw new AppError(
        'agent.invalid',
        `model: must be one of the platform's models: ${models.join(', ')}`,
        400,
        [{ path: '/model', reason: 'not a model of this platform' }],
      );
    modelFrom = spec.model;
    spec.model = opts.model;
  } else if (!models.includes(spec.model))
    throw new AppError(
      'federation.model_unavailable',
      `the agent uses the model ${spec.model}, which this platform does not offer; import it with ?model= one of: ${models.join(', ') || '(none)'}`,
      422,
      [{ path: '/agent/model', reason: `not offered here: ${models.join(', ') || '(none)'}` }],
    );
  const p = pkg.provenance;
  const from: ImportedFrom = {
    instance_key_id: p.instance_key_id,
    platform: { id: String(p.platform.id), slug: String(p.platform.slug), name: String(p.platform.name) },
    agent: { id: String(p.agent.id), slug: String(p.agent.slug) },
    version: p.version,
    hash: p.hash,
    creator: typeof p.creator === 'string' ? p.creator : null,
    ...(opts.catalog ? { catalog: opts.catalog } : {}),
    ...(modelFrom ? { model_from: modelFrom } : {}),
    imported_at: iso(c.app.clock.now()),
  };
  return importAgent(c, spec, from);
}

/** POST /api/v1/agents/import: a package (of this instance or a trusted one) as a new agent. */
export function importPackage(
  deps: Pick<AiDeps, 'runtime'>,
  c: PlatformRequestContext,
  raw: unknown,
  model: string | undefined,
) {
  const pkg = verifyPackage(c.app, c.platform.id, raw);
  return Response.json({ agent: importVerified(deps, c, pkg, { model }) }, { status: 201 });
}

// ---------------------------------------------------------------------------------------------
// Revocation

/**
 * Puts versions of an agent of `c`'s platform on this instance's revocation list (and audits it
 * on both chains): imported copies everywhere stop working once the list reaches them.
 */
export function revokeHashes(c: PlatformRequestContext, agentId: string, hashes: string[], reason: string) {
  const keyId = instanceKey(c.app).keyId;
  const now = c.app.clock.now();
  const added = tx(c.app.control, () => {
    const fresh = hashes.filter((hash) =>
      insertRevocation(c.app.control, {
        key_id: keyId,
        hash,
        reason,
        revoked_at: now,
        origin: 'local',
        platform_id: c.platform.id,
        recorded_at: now,
      }),
    );
    if (fresh.length)
      c.app.audit.append(c.app.control, {
        actor: `platform:${c.platform.slug}/${actorOf(c.principal)}`,
        action: 'federation.revoked',
        target: `platform:${c.platform.id}`,
        details: { agent: agentId, hashes: fresh, reason, key_id: keyId },
      });
    return fresh;
  });
  return added;
}

/** POST .../versions/:version/revoke {reason}: the agent's editors or the platform's admins. */
export function revokeVersion(c: PlatformRequestContext, agentId: string, version: number, body: unknown) {
  const a = editableAgent(c, agentId);
  const v = findVersion(c.db, a.id, version);
  if (!v)
    throw new AppError('agent.version_not_found', `agent ${a.id} has no version ${version}`, 404, [
      { path: '/version', reason: 'no such version' },
    ]);
  if (a.imported_from && version === 1)
    throw new AppError(
      'federation.not_original',
      'version 1 of an imported agent is its source’s: its source revokes it; delete your copy to stop it here',
      409,
    );
  const reason = isObject(body) && typeof body.reason === 'string' ? body.reason.trim() : '';
  if (reason.length < 3 || reason.length > 300)
    throw new AppError('federation.invalid', 'reason: must be 3 to 300 characters', 400, [
      { path: '/reason', reason: 'must be 3 to 300 characters' },
    ]);
  const added = revokeHashes(c, a.id, [v.hash], reason);
  if (added.length)
    c.db.transaction(() => {
      c.app.audit.append(c.db, {
        actor: actorOf(c.principal),
        action: 'agent.version_revoked',
        target: `agent:${a.id}`,
        details: { version, hash: v.hash, reason },
      });
    })();
  const r = findRevocation(c.app.control, instanceKey(c.app).keyId, c.platform.id, v.hash)!;
  return { revocation: { version, hash: v.hash, reason: r.reason, revoked_at: iso(r.revoked_at) } };
}

/** A moderator revoked an agent's listing: every published version of it is revoked here too. */
export function revokeAgentVersions(c: PlatformRequestContext, agentId: string, reason: string): void {
  const hashes = listVersions(c.db, agentId).map((v) => v.hash);
  if (hashes.length) revokeHashes(c, agentId, hashes, reason.slice(0, 300));
}

/** The last signed list, per App: anonymous callers do not make the server sign it again. */
const SIGNED_LIST = stateKey('agents.federation_revocation_list', () => ({
  stamp: '',
  list: null as Record<string, unknown> | null,
}));

/**
 * GET /federation/revocations: this instance's own revocations, signed (public, read-only,
 * bounded); signed again only when a revocation was recorded since.
 */
export function revocationList(app: App) {
  const k = instanceKey(app);
  const cache = app.state.get(SIGNED_LIST);
  const stamp = `${k.keyId}/${revocationStamp(app.control, k.keyId)}`;
  if (cache.stamp === stamp && cache.list) return cache.list;
  const unsigned = {
    format: REVOCATIONS_FORMAT,
    instance_key_id: k.keyId,
    public_key: k.publicKey,
    issued_at: iso(app.clock.now()),
    revocations: listRevocations(app.control, k.keyId, MAX_REVOCATIONS).map((r) => ({
      platform: r.platform_id,
      hash: r.hash,
      reason: r.reason,
      revoked_at: iso(r.revoked_at),
    })),
  };
  const { sig } = signWithInstanceKey(app, canonicalize(unsigned) ?? '');
  cache.stamp = stamp;
  cache.list = { ...unsigned, signature: sig };
  return cache.list;
}

/**
 * Takes in another instance's signed revocation list (the operator posts it): checked against
 * the keys this instance's platforms pinned; its entries revoke only what that key signed.
 */
export function acceptRevocationList(app: App, actor: string, raw: unknown) {
  const bad = (path: string, reason: string) =>
    new AppError('federation.invalid', `the revocation list is not valid: ${path} ${reason}`, 400, [
      { path, reason },
    ]);
  if (!isObject(raw)) throw bad('/', 'must be a JSON object');
  if (raw.format !== REVOCATIONS_FORMAT) throw bad('/format', `must be ${REVOCATIONS_FORMAT}`);
  const { signature, ...unsigned } = raw;
  if (typeof signature !== 'string') throw bad('/signature', 'is missing');
  if (typeof raw.instance_key_id !== 'string' || typeof raw.public_key !== 'string')
    throw bad('/instance_key_id', 'and /public_key are required');
  if (!Array.isArray(raw.revocations) || raw.revocations.length > MAX_REVOCATIONS)
    throw bad('/revocations', `must be a list of at most ${MAX_REVOCATIONS}`);
  const key = publicKeyFrom(raw.public_key);
  if (!key || keyIdOf(key) !== raw.instance_key_id || !verifies(key, canonicalize(unsigned) ?? '', signature))
    throw new AppError(
      'federation.bad_signature',
      "the revocation list's signature does not hold: it was changed after signing, or not signed by the key it names",
      400,
      [{ path: '/signature', reason: 'does not verify' }],
    );
  const keyId = raw.instance_key_id;
  if (keyId === instanceKeyId(app.control))
    throw bad('/instance_key_id', "is this instance's own key: its revocations are here already");
  if (!keyTrustedAnywhere(app.control, keyId, spkiOf(key)))
    throw new AppError(
      'federation.untrusted_key',
      `no platform of this instance trusts the key ${keyId}: its revocations have nothing to revoke here`,
      403,
    );
  const entries = raw.revocations.map((e, i) => {
    if (
      !isObject(e) ||
      typeof e.platform !== 'string' ||
      !e.platform ||
      e.platform.length > 64 ||
      typeof e.hash !== 'string' ||
      !/^[0-9a-f]{64}$/.test(e.hash) ||
      typeof e.reason !== 'string' ||
      typeof e.revoked_at !== 'string' ||
      Number.isNaN(Date.parse(e.revoked_at))
    )
      throw bad(`/revocations/${i}`, 'must be {platform, hash (sha256 hex), reason, revoked_at}');
    return {
      platform: e.platform,
      hash: e.hash,
      reason: e.reason.slice(0, 300),
      at: Date.parse(e.revoked_at),
    };
  });
  const now = app.clock.now();
  return tx(app.control, () => {
    let added = 0;
    for (const e of entries)
      if (
        insertRevocation(app.control, {
          key_id: keyId,
          platform_id: e.platform,
          hash: e.hash,
          reason: e.reason,
          revoked_at: e.at,
          origin: 'peer',
          recorded_at: now,
        })
      )
        added++;
    app.audit.append(app.control, {
      actor,
      action: 'federation.revocations_received',
      target: `federation_key:${keyId}`,
      details: { key_id: keyId, entries: entries.length, added, issued_at: raw.issued_at ?? null },
    });
    return { key_id: keyId, entries: entries.length, added };
  });
}

/**
 * Fetches a peer's signed revocation list from `url` (its `GET /federation/revocations`) through
 * the outbound guard, then takes it in as `acceptRevocationList` does.
 */
export async function fetchRevocationList(app: App, actor: string, url: unknown) {
  let u: URL;
  try {
    u = new URL(typeof url === 'string' ? url : '');
    if (u.protocol !== 'https:' && u.protocol !== 'http:') throw new Error('scheme');
  } catch {
    throw new AppError('federation.invalid', 'url: must be an http(s) URL', 400, [
      { path: '/url', reason: 'must be an http(s) URL' },
    ]);
  }
  const res = await app.outbound.fetch(u, { headers: { accept: 'application/json' } });
  let body: unknown;
  try {
    if (!res.ok) throw new Error(`HTTP ${res.status}`);
    body = await res.json();
  } catch (e) {
    throw new AppError(
      'federation.peer_unreadable',
      `the peer at ${u.origin} did not answer with a revocation list (${(e as Error).message})`,
      502,
    );
  }
  return { ...acceptRevocationList(app, actor, body), from: u.origin };
}

// ---------------------------------------------------------------------------------------------
// Trust (the operator's)

const trustedView = (t: TrustedKeyRow) => ({
  key_id: t.key_id,
  public_key: t.public_key,
  label: t.label,
  added_by: t.added_by,
  added_at: iso(t.added_at),
});

export function trustedKeys(app: App, platformId: string) {
  return { trusted_keys: listTrustedKeys(app.control, platformId).map(trustedView) };
}

/** Pins another instance's key for a platform (audited in the control chain). */
export function trustKey(
  app: App,
  actor: string,
  platformId: string,
  input: { key_id?: unknown; public_key?: unknown; label?: unknown },
) {
  const bad = (path: string, reason: string) =>
    new AppError('federation.key_invalid', `${path.slice(1)}: ${reason}`, 400, [{ path, reason }]);
  const key = typeof input.public_key === 'string' ? publicKeyFrom(input.public_key.trim()) : null;
  if (!key) throw bad('/public_key', 'must be an Ed25519 public key (SPKI DER in base64, or PEM)');
  const keyId = keyIdOf(key);
  if (input.key_id !== undefined && input.key_id !== keyId)
    throw bad('/key_id', `is not this public key's id (${keyId}): check the key with its operator`);
  if (keyId === instanceKeyId(app.control))
    throw bad('/public_key', "is this instance's own key, which every platform of it trusts already");
  const label = input.label === undefined ? '' : typeof input.label === 'string' ? input.label.trim() : null;
  if (label === null || label.length > 100) throw bad('/label', 'must be text of at most 100 characters');
  const row: TrustedKeyRow = {
    platform_id: platformId,
    key_id: keyId,
    public_key: spkiOf(key),
    label,
    added_by: actor,
    added_at: app.clock.now(),
  };
  tx(app.control, () => {
    upsertTrustedKey(app.control, row);
    app.audit.append(app.control, {
      actor,
      action: 'federation.key_trusted',
      target: `platform:${platformId}`,
      details: { key_id: keyId, label },
    });
  });
  return { trusted_key: trustedView(findTrustedKey(app.control, platformId, keyId)!) };
}

export function untrustKey(app: App, actor: string, platformId: string, keyId: string) {
  tx(app.control, () => {
    if (!deleteTrustedKey(app.control, platformId, keyId))
      throw new AppError('federation.key_not_found', `the platform does not trust ${keyId}`, 404);
    app.audit.append(app.control, {
      actor,
      action: 'federation.key_untrusted',
      target: `platform:${platformId}`,
      details: { key_id: keyId },
    });
  });
  return { removed: { key_id: keyId } };
}

// ---------------------------------------------------------------------------------------------
// The ecosystem catalog

const entryNotFound = () => new AppError('federation.entry_not_found', 'no such catalog entry', 404);

function entryView(c: PlatformRequestContext, e: CatalogRow) {
  const pkg = JSON.parse(e.package) as AgentPackage;
  return {
    id: e.id,
    title: e.title,
    summary: e.summary,
    agent: {
      name: pkg.agent.name,
      description: pkg.agent.description,
      avatar: pkg.agent.avatar,
      model: pkg.agent.model,
      starter_prompts: pkg.agent.starter_prompts,
      version: e.version,
      hash: e.hash,
    },
    attribution: {
      platform: { slug: e.platform_slug, name: e.platform_name },
      creator: e.creator_name || null,
      instance_key_id: pkg.provenance.instance_key_id,
    },
    revenue_share_percent: e.revenue_share_bps / 100,
    imports: e.imports,
    own: e.platform_id === c.platform.id,
    // The source's own agent id only to the source (others see the attribution).
    ...(e.platform_id === c.platform.id ? { source_agent_id: e.agent_id } : {}),
    shared_at: iso(e.shared_at),
  };
}

/**
 * POST /api/v1/federation/catalog {agent_id, version?, title?, summary?, revenue_share_percent?}:
 * a platform admin shares a published version with every platform of the instance.
 */
export function shareToCatalog(c: PlatformRequestContext, body: Record<string, unknown>) {
  const bad = (path: string, reason: string) =>
    new AppError('federation.invalid', `${path.slice(1)}: ${reason}`, 400, [{ path, reason }]);
  if (typeof body.agent_id !== 'string') throw bad('/agent_id', 'required');
  const a = findAgent(c.db, body.agent_id);
  if (!a) throw new AppError('agent.not_found', 'no such agent', 404);
  const version = body.version === undefined ? a.latest_version : body.version;
  if (version === null)
    throw new AppError('agent.unpublished', 'publish a version of the agent before sharing it', 409);
  if (!Number.isInteger(version) || (version as number) < 1)
    throw bad('/version', 'must be a version number');
  const text = (k: string, max: number, dflt: string) => {
    const v = body[k];
    if (v === undefined) return dflt.slice(0, max);
    if (typeof v !== 'string' || !v.trim() || v.trim().length > max)
      throw bad(`/${k}`, `must be 1 to ${max} characters`);
    return v.trim();
  };
  const share = body.revenue_share_percent ?? 0;
  if (
    typeof share !== 'number' ||
    !(share >= 0 && share <= 100) ||
    Math.abs(Math.round(share * 100) - share * 100) > 1e-6
  )
    throw bad('/revenue_share_percent', 'must be a percentage from 0 to 100 (at most two decimals)');
  const pkg = buildPackage(c, a.id, version as number);
  const existing = catalogEntryOf(c.app.control, c.platform.id, a.id);
  const entry = {
    id: existing?.id ?? newId('fed'),
    platform_id: c.platform.id,
    agent_id: a.id,
    version: version as number,
    hash: pkg.provenance.hash,
    package: JSON.stringify(pkg),
    title: text('title', 100, pkg.agent.name),
    summary: text('summary', 500, pkg.agent.description || pkg.agent.name),
    platform_slug: c.platform.slug,
    platform_name: c.platform.name,
    creator_name: pkg.provenance.creator ?? '',
    revenue_share_bps: Math.round(share * 100),
    shared_by: actorOf(c.principal),
    shared_at: c.app.clock.now(),
  };
  const details = {
    entry: entry.id,
    agent: a.id,
    version,
    hash: entry.hash,
    revenue_share_bps: entry.revenue_share_bps,
  };
  tx(c.app.control, () => {
    upsertCatalogEntry(c.app.control, entry);
    c.app.audit.append(c.app.control, {
      actor: `platform:${c.platform.slug}/${actorOf(c.principal)}`,
      action: 'federation.shared',
      target: `platform:${c.platform.id}`,
      details,
    });
  });
  c.db.transaction(() => {
    c.app.audit.append(c.db, {
      actor: actorOf(c.principal),
      action: 'federation.shared',
      target: `agent:${a.id}`,
      details,
    });
  })();
  return Response.json(
    { entry: entryView(c, findCatalogEntry(c.app.control, entry.id)!) },
    { status: existing ? 200 : 201 },
  );
}

/** DELETE /api/v1/federation/catalog/:entry: the source platform's admins withdraw it. */
export function withdrawFromCatalog(c: PlatformRequestContext, id: string): void {
  const e = findCatalogEntry(c.app.control, id);
  // Another platform's entry is not found here: nothing of it may be changed from this one.
  if (e?.platform_id !== c.platform.id) throw entryNotFound();
  tx(c.app.control, () => {
    deleteCatalogEntry(c.app.control, id);
    c.app.audit.append(c.app.control, {
      actor: `platform:${c.platform.slug}/${actorOf(c.principal)}`,
      action: 'federation.withdrawn',
      target: `platform:${c.platform.id}`,
      details: { entry: id, agent: e.agent_id },
    });
  });
  c.db.transaction(() => {
    c.app.audit.append(c.db, {
      actor: actorOf(c.principal),
      action: 'federation.withdrawn',
      target: `agent:${e.agent_id}`,
      details: { entry: id },
    });
  })();
}

/** GET /api/v1/federation/catalog: what the instance's platforms share (revoked versions left out). */
export function catalog(c: PlatformRequestContext) {
  const keyId = instanceKeyId(c.app.control) ?? '';
  return { entries: listCatalog(c.app.control, keyId, 200).map((e) => entryView(c, e)) };
}

/** POST /api/v1/federation/catalog/:entry/import: the same checks as any package, then a new agent. */
export function importFromCatalog(
  deps: Pick<AiDeps, 'runtime'>,
  c: PlatformRequestContext,
  id: string,
  model: string | undefined,
) {
  const e = findLiveCatalogEntry(c.app.control, id);
  if (!e) throw entryNotFound();
  const pkg = verifyPackage(c.app, c.platform.id, JSON.parse(e.package));
  const agent = importVerified(deps, c, pkg, {
    model,
    catalog: { entry: e.id, revenue_share_bps: e.revenue_share_bps },
  });
  countCatalogImport(c.app.control, e.id);
  return Response.json({ agent }, { status: 201 });
}
