/**
 * Agents (issue 12 item 1): a user's assistant on a platform — a persona (system prompt), a
 * model alias, its settings and starter prompts. The owner edits a draft; publishing freezes the
 * draft as an immutable version named by the SHA-256 of its RFC 8785 canonical JSON; people
 * chat with the latest version (the owner may also test the draft). Visibility: `private` (its
 * owner and the platform's admins), `link` (once published, also who opened its share link:
 * sharing.service.ts) or `platform` (everyone signed in on it, once published).
 * The platform's owners and admins may read, edit, publish and delete any agent: the platform
 * always keeps the right to remove. Its owner may invite members (collaboration.service.ts):
 * editors edit the draft and its knowledge and publish; viewers read and chat with it, private
 * or not. Only its owner and the admins delete it, change who sees it, list it or manage members.
 */
import canonicalize from 'canonicalize';
import { type AiDeps, listModels, platformAiPolicy } from '../ai/index.ts';
import { admit } from '../app/index.ts';
import { requireAgentAllowance } from '../billing/index.ts';
import {
  actorOf,
  type PlatformRequestContext,
  type PlatformRole,
  type Principal,
  roleOf,
} from '../identity/index.ts';
import { sha256Hex } from '../shared/crypto.ts';
import { AppError } from '../shared/errors.ts';
import { newId } from '../shared/ids.ts';
import {
  type AgentRow,
  type AgentVersionRow,
  deleteAgent,
  findAgent,
  findVersion,
  insertAgent,
  insertVersion,
  listAgents,
  listVersions,
  slugTaken,
  updateAgent,
} from './agents.repository.ts';
import { type MemberRole, memberRole } from './collaboration.repository.ts';
import { findFederationKey, findRevocation, type RevocationRow } from './federation.repository.ts';
import { deleteAgentVectors } from './knowledge.repository.ts';
import { installOf, listingOfAgent } from './marketplace.repository.ts';
import { hasLinkAccess } from './sharing.repository.ts';
import { toolHosts, toolSecretHeaders } from './tools.repository.ts';
import { type AgentTool, checkTools, hostAllowed } from './tools.ts';

/** What an agent is: the part a version freezes. */
export interface AgentSpec {
  name: string;
  description: string;
  avatar: string | null;
  persona: string;
  model: string;
  temperature: number | null;
  max_tokens: number | null;
  starter_prompts: string[];
  /**
   * HTTP actions the model may call (tools.ts). Absent when there are none, so the canonical
   * JSON, and the hash, of a spec without tools is what it was before tools existed.
   */
  tools?: AgentTool[];
}

export type Visibility = AgentRow['visibility'];
export const VISIBILITIES: readonly Visibility[] = ['private', 'link', 'platform'];

const notFound = () => new AppError('agent.not_found', 'no such agent', 404);
const iso = (ms: number) => new Date(ms).toISOString();

/** The user a request acts for (null: a platform API key, acting as admin). */
function who(c: PlatformRequestContext): { userId: string | null; admin: boolean } {
  const p = c.principal;
  const role = roleOf(p);
  const admin = role === 'owner' || role === 'admin';
  const userId = p && (p.kind === 'user' || p.kind === 'api_key') ? p.userId : null;
  return { userId, admin };
}

/** `c`'s member role on an agent (null: none; owners and admins need none). */
const memberOf = (c: PlatformRequestContext, a: AgentRow): MemberRole | null => {
  const { userId } = who(c);
  return userId === null ? null : memberRole(c.db, a.id, userId);
};

/** Whether `c` owns the agent or administers the platform: delete, visibility, listing, members. */
export const canManage = (c: PlatformRequestContext, a: AgentRow) => {
  const w = who(c);
  return w.admin || (w.userId !== null && a.owner_id === w.userId);
};

/** Whether `c` may change the agent's draft and knowledge and publish it: managers and editors. */
export const canEdit = (c: PlatformRequestContext, a: AgentRow) =>
  canManage(c, a) || memberOf(c, a) === 'editor';

/** `c`'s part in an agent, as the API shows it. */
export function roleOn(c: PlatformRequestContext, a: AgentRow): 'owner' | 'admin' | MemberRole | null {
  const w = who(c);
  if (w.userId !== null && a.owner_id === w.userId) return 'owner';
  return memberOf(c, a) ?? (w.admin ? 'admin' : null);
}
/**
 * Whether `c` may use the agent: its editors always; others when it is shared on the platform
 * and published, or offered in the marketplace (published; suspended: to who installed it), and
 * never once its listing is revoked.
 */
export const canRead = (c: PlatformRequestContext, a: AgentRow) => {
  if (canEdit(c, a)) return true;
  const l = listingOfAgent(c.db, a.id);
  if (l?.status === 'revoked') return false;
  return (
    (a.visibility === 'platform' && a.latest_version !== null) ||
    memberOf(c, a) === 'viewer' ||
    viaLink(c, a) ||
    listedVersionFor(c, a.id) !== null
  );
};

/** Whether `c`'s user opened the current share link of a published `link` agent. */
function viaLink(c: PlatformRequestContext, a: AgentRow): boolean {
  const { userId } = who(c);
  return (
    a.visibility === 'link' && a.latest_version !== null && !!userId && hasLinkAccess(c.db, a.id, userId)
  );
}

/** The version the marketplace gives `c` of an agent: what they installed, else the listed one. */
export function listedVersionFor(c: PlatformRequestContext, agentId: string): number | null {
  const l = listingOfAgent(c.db, agentId);
  if (!l) return null;
  const { userId } = who(c);
  const installed = userId ? installOf(c.db, l.id, userId) : null;
  if (l.status === 'published') return installed?.version ?? l.version;
  if (l.status === 'suspended' && installed) return installed.version;
  return null;
}

/** An agent `c` may read (others' private agents are not found, never forbidden). */
export function readableAgent(c: PlatformRequestContext, id: string): AgentRow {
  const a = findAgent(c.db, id);
  if (!a || !canRead(c, a)) throw notFound();
  return a;
}

export function editableAgent(c: PlatformRequestContext, id: string): AgentRow {
  const a = readableAgent(c, id);
  if (!canEdit(c, a))
    throw new AppError(
      'agent.forbidden',
      "only the agent's owner, its editors or an admin may change it",
      403,
    );
  return a;
}

/** An agent `c` owns or administers (its editors and viewers: 403). */
export function manageableAgent(c: PlatformRequestContext, id: string, what = 'do this'): AgentRow {
  const a = readableAgent(c, id);
  if (!canManage(c, a))
    throw new AppError('agent.forbidden', `only the agent's owner or an admin may ${what}`, 403);
  return a;
}

/**
 * `c` as another user of the same platform (their id and role), to ask what they may do with
 * an agent (who may join a shared conversation).
 */
export function asUser(c: PlatformRequestContext, user: { id: string; role: PlatformRole }) {
  const principal: Principal = {
    kind: 'user',
    userId: user.id,
    role: user.role,
    sessionId: '',
    csrfToken: '',
  };
  return Object.assign(Object.create(c) as PlatformRequestContext, { principal });
}

const bad = (path: string, reason: string) =>
  new AppError('agent.invalid', `${path.slice(1).replace(/\//g, '.')}: ${reason}`, 400, [{ path, reason }]);

/** The models an agent may use: what the platform lets its users chat with. */
function checkModel(deps: Pick<AiDeps, 'runtime'>, c: PlatformRequestContext, model: string): string {
  const allowed = listModels(deps, platformAiPolicy(c.blueprint()));
  if (!allowed.includes(model))
    throw bad('/model', `must be one of the platform's models: ${allowed.join(', ') || '(none)'}`);
  return model;
}

/** The model aliases an agent of `c`'s platform may use (the default first). */
export function platformModels(deps: Pick<AiDeps, 'runtime'>, c: PlatformRequestContext): string[] {
  return listModels(deps, platformAiPolicy(c.blueprint()));
}

/**
 * A spec from elsewhere (a federation package) read with the same rules as one made here; its
 * model alias is kept as it is (the importer decides what to do when it is not offered here).
 */
export function foreignSpec(
  deps: Pick<AiDeps, 'runtime'>,
  c: PlatformRequestContext,
  raw: unknown,
): AgentSpec {
  if (!raw || typeof raw !== 'object' || Array.isArray(raw)) throw bad('/agent', 'must be an agent spec');
  const { model, ...rest } = raw as Record<string, unknown>;
  if (typeof model !== 'string' || !model) throw bad('/agent/model', 'must be a model alias');
  const base: AgentSpec = {
    name: '',
    description: '',
    avatar: null,
    persona: '',
    model,
    temperature: null,
    max_tokens: null,
    starter_prompts: [],
  };
  const s = specOf(deps, c, base, rest);
  if (!s.name) throw bad('/agent/name', 'required');
  return s;
}

/** Reads and checks a spec: `base` with `patch` over it (create: base is the defaults). */
function specOf(
  deps: Pick<AiDeps, 'runtime'>,
  c: PlatformRequestContext,
  base: AgentSpec,
  patch: Record<string, unknown>,
): AgentSpec {
  const s: AgentSpec = { ...base };
  const text = (k: keyof AgentSpec, min: number, max: number) => {
    const v = patch[k];
    if (v === undefined) return;
    if (typeof v !== 'string') throw bad(`/${k}`, 'must be text');
    const t = v.trim();
    if (t.length < min || t.length > max) throw bad(`/${k}`, `must be ${min} to ${max} characters`);
    (s as unknown as Record<string, unknown>)[k] = t;
  };
  text('name', 1, 100);
  text('description', 0, 2000);
  text('persona', 0, 20_000);
  if (patch.avatar !== undefined) {
    const v = patch.avatar;
    if (v === null || v === '') s.avatar = null;
    else if (typeof v !== 'string' || !(/^https:\/\/[^\s"'<>]{1,2040}$/.test(v) || [...v].length <= 4))
      throw bad('/avatar', 'must be an emoji (up to 4 characters) or an https: URL');
    else s.avatar = v;
  }
  if (patch.model !== undefined) {
    if (typeof patch.model !== 'string') throw bad('/model', 'must be a model alias');
    s.model = checkModel(deps, c, patch.model);
  }
  if (patch.temperature !== undefined) {
    const v = patch.temperature;
    if (v !== null && (typeof v !== 'number' || !(v >= 0 && v <= 2)))
      throw bad('/temperature', 'must be a number from 0 to 2');
    s.temperature = v as number | null;
  }
  if (patch.max_tokens !== undefined) {
    const v = patch.max_tokens;
    if (v !== null && (!Number.isInteger(v) || (v as number) < 1 || (v as number) > 32_000))
      throw bad('/max_tokens', 'must be a whole number from 1 to 32,000');
    s.max_tokens = v as number | null;
  }
  if (patch.starter_prompts !== undefined) {
    const v = patch.starter_prompts;
    if (!Array.isArray(v) || v.length > 6)
      throw bad('/starter_prompts', 'must be a list of at most 6 prompts');
    s.starter_prompts = v.map((x, i) => {
      if (typeof x !== 'string' || !x.trim() || x.length > 300)
        throw bad(`/starter_prompts/${i}`, 'must be text of 1 to 300 characters');
      return x.trim();
    });
  }
  if (patch.tools !== undefined) {
    const hosts = toolHosts(c.db);
    const tools = patch.tools === null ? [] : checkTools(patch.tools, (u) => hostAllowed(hosts, u));
    if (tools.length) s.tools = tools;
    else delete s.tools;
  }
  return s;
}

/** The canonical JSON of a spec and its hash (what names a version). */
export function canonicalSpec(s: AgentSpec): { json: string; hash: string } {
  const json = canonicalize(s) ?? '{}';
  return { json, hash: sha256Hex(json) };
}

const slugOf = (name: string) =>
  name
    .normalize('NFKD')
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, 48) || 'agent';

function freeSlug(c: PlatformRequestContext, wanted: string): string {
  if (!slugTaken(c.db, wanted)) return wanted;
  for (let i = 2; i < 1000; i++) if (!slugTaken(c.db, `${wanted}-${i}`)) return `${wanted}-${i}`;
  return `${wanted}-${newId('agt').slice(-6)}`;
}

function visibilityOf(v: unknown): Visibility | undefined {
  if (v === undefined) return undefined;
  if (typeof v !== 'string' || !(VISIBILITIES as readonly string[]).includes(v))
    throw bad(
      '/visibility',
      `must be one of: ${VISIBILITIES.join(', ')} (the marketplace lists through POST /api/v1/agents/:id/listing)`,
    );
  return v as Visibility;
}

export function agentView(c: PlatformRequestContext, a: AgentRow) {
  const latest = a.latest_version === null ? null : findVersion(c.db, a.id, a.latest_version);
  const editable = canEdit(c, a);
  const draft = JSON.parse(a.draft) as AgentSpec;
  const published = latest ? (JSON.parse(latest.spec) as AgentSpec) : null;
  return {
    id: a.id,
    slug: a.slug,
    owner_id: a.owner_id,
    visibility: a.visibility,
    // What people see: the latest version's spec (the draft, to its editors, before any).
    ...(published ?? (editable ? draft : { name: draft.name, description: '', avatar: null })),
    latest_version: latest
      ? { version: latest.version, hash: latest.hash, published_at: iso(latest.published_at) }
      : null,
    draft: editable ? { ...draft, changed: !latest || canonicalSpec(draft).hash !== latest.hash } : undefined,
    // Which tools have a secret (never its value): for the editors.
    ...(editable ? { tool_secrets: toolSecretHeaders(c.db, a.id).map((t) => ({ ...t, set: true })) } : {}),
    can_edit: editable,
    can_manage: canManage(c, a),
    role: roleOn(c, a),
    forked_from: a.forked_from ? (JSON.parse(a.forked_from) as unknown) : null,
    imported_from: a.imported_from ? (JSON.parse(a.imported_from) as unknown) : null,
    revoked: (() => {
      const r = revocationOf(c, a, latest?.hash ?? null);
      return r ? { reason: r.reason, revoked_at: iso(r.revoked_at) } : null;
    })(),
    created_at: iso(a.created_at),
    updated_at: iso(a.updated_at),
  };
}

export function createAgent(
  deps: Pick<AiDeps, 'runtime'>,
  c: PlatformRequestContext,
  body: Record<string, unknown>,
) {
  const { userId } = who(c);
  // A platform held over its operator plan's limits makes no new agents (402).
  admit(c.db, 'agent');
  const models = listModels(deps, platformAiPolicy(c.blueprint()));
  if (body.name === undefined) throw bad('/name', 'required');
  // The tier's `agents` limit (402 with the upgrade path when it is used up).
  if (userId) requireAgentAllowance(c, userId);
  const defaults: AgentSpec = {
    name: '',
    description: '',
    avatar: null,
    persona: '',
    model: models[0] ?? '',
    temperature: null,
    max_tokens: null,
    starter_prompts: [],
  };
  const spec = specOf(deps, c, defaults, body);
  if (!spec.model)
    throw new AppError('agent.no_models', 'this platform has no model for an agent to use', 409);
  let slug: string;
  if (body.slug !== undefined) {
    if (typeof body.slug !== 'string' || !/^[a-z0-9](?:[a-z0-9-]{0,46}[a-z0-9])?$/.test(body.slug))
      throw bad('/slug', 'must be 1 to 48 lowercase letters, digits and dashes');
    if (slugTaken(c.db, body.slug))
      throw new AppError('agent.slug_taken', `the slug ${body.slug} is taken on this platform`, 409, [
        { path: '/slug', reason: 'is taken' },
      ]);
    slug = body.slug;
  } else slug = freeSlug(c, slugOf(spec.name));
  const now = c.app.clock.now();
  const row: AgentRow = {
    id: newId('agt'),
    slug,
    owner_id: userId,
    visibility: visibilityOf(body.visibility) ?? 'private',
    draft: canonicalSpec(spec).json,
    latest_version: null,
    created_at: now,
    updated_at: now,
  };
  c.db.transaction(() => {
    insertAgent(c.db, row);
    c.app.audit.append(c.db, {
      actor: actorOf(c.principal),
      action: 'agent.created',
      target: `agent:${row.id}`,
      details: { slug, name: spec.name, visibility: row.visibility },
    });
  })();
  return agentView(c, findAgent(c.db, row.id)!);
}

/**
 * A new private agent of `c`'s user from another's published spec (a marketplace fork): its
 * draft is that spec, its provenance recorded; audited.
 */
export function forkAgent(
  c: PlatformRequestContext,
  spec: AgentSpec,
  from: { listing: string; agent: string; version: number; hash: string },
) {
  const { userId } = who(c);
  admit(c.db, 'agent');
  const now = c.app.clock.now();
  const row: AgentRow = {
    id: newId('agt'),
    slug: freeSlug(c, slugOf(spec.name)),
    owner_id: userId,
    visibility: 'private',
    draft: canonicalSpec(spec).json,
    latest_version: null,
    created_at: now,
    updated_at: now,
    forked_from: JSON.stringify(from),
  };
  c.db.transaction(() => {
    insertAgent(c.db, row);
    c.app.audit.append(c.db, {
      actor: actorOf(c.principal),
      action: 'agent.forked',
      target: `agent:${row.id}`,
      details: from,
    });
  })();
  return agentView(c, findAgent(c.db, row.id)!);
}

/**
 * A new private agent of `c`'s user from a verified federation package: version 1 is the
 * package's spec, frozen with its hash (or, when the model was mapped, the mapped spec's), and
 * where it came from is recorded (`imported_from`); audited.
 */
export function importAgent(c: PlatformRequestContext, spec: AgentSpec, from: { hash: string } & object) {
  const { userId } = who(c);
  admit(c.db, 'agent');
  const now = c.app.clock.now();
  const { json, hash } = canonicalSpec(spec);
  const row: AgentRow = {
    id: newId('agt'),
    slug: freeSlug(c, slugOf(spec.name)),
    owner_id: userId,
    visibility: 'private',
    draft: json,
    latest_version: 1,
    created_at: now,
    updated_at: now,
    imported_from: JSON.stringify(from),
  };
  c.db
    .transaction(() => {
      insertAgent(c.db, row);
      insertVersion(c.db, {
        agent_id: row.id,
        version: 1,
        hash,
        spec: json,
        published_by: actorOf(c.principal),
        published_at: now,
      });
      c.app.audit.append(c.db, {
        actor: actorOf(c.principal),
        action: 'agent.imported',
        target: `agent:${row.id}`,
        details: { ...from, version_hash: hash },
      });
    })
    .immediate();
  return agentView(c, findAgent(c.db, row.id)!);
}

/**
 * Why an agent of `c`'s platform may not run `hash` (the version it would run), or null: it was
 * imported and its source version is revoked (under the key that signed it, for its source
 * platform), or this platform revoked that content itself (`POST .../versions/:version/revoke`,
 * a listing's revocation; by hash, so every agent of this platform with that version stops).
 */
export function revocationOf(
  c: PlatformRequestContext,
  a: AgentRow,
  hash: string | null,
): RevocationRow | null {
  if (a.imported_from) {
    const from = JSON.parse(a.imported_from) as {
      instance_key_id: string;
      platform: { id: string };
      hash: string;
    };
    const r = findRevocation(c.app.control, from.instance_key_id, from.platform.id, from.hash);
    if (r) return r;
    // Its first version is the source's: only the source revokes it (the importer deletes it).
    if (hash !== null && hash === findVersion(c.db, a.id, 1)?.hash) return null;
  }
  if (hash === null) return null;
  const own = findFederationKey(c.app.control)?.key_id;
  return own ? findRevocation(c.app.control, own, c.platform.id, hash) : null;
}

function refuseRevoked(c: PlatformRequestContext, a: AgentRow, hash: string | null): void {
  const r = revocationOf(c, a, hash);
  if (r)
    throw new AppError(
      'federation.revoked',
      `this agent's version was revoked at its source, and no longer runs: ${r.reason}`,
      410,
    );
}

export function agents(c: PlatformRequestContext, q: { mine?: string }) {
  const w = who(c);
  const rows = listAgents(c.db, w.userId, { all: w.admin, mine: q.mine === 'true' });
  return { agents: rows.filter((a) => canRead(c, a)).map((a) => agentView(c, a)) };
}

export function agent(c: PlatformRequestContext, id: string) {
  return { agent: agentView(c, readableAgent(c, id)) };
}

export function editAgent(
  deps: Pick<AiDeps, 'runtime'>,
  c: PlatformRequestContext,
  id: string,
  body: Record<string, unknown>,
) {
  const a = editableAgent(c, id);
  const { visibility, ...patch } = body;
  const v = visibilityOf(visibility);
  if (v !== undefined && v !== a.visibility && !canManage(c, a))
    throw new AppError('agent.forbidden', "only the agent's owner or an admin may change who sees it", 403, [
      { path: '/visibility', reason: "is the owner's to change" },
    ]);
  const draft = specOf(deps, c, JSON.parse(a.draft) as AgentSpec, patch);
  c.db.transaction(() => {
    updateAgent(c.db, id, { draft: canonicalSpec(draft).json, visibility: v, now: c.app.clock.now() });
    if (v && v !== a.visibility)
      c.app.audit.append(c.db, {
        actor: actorOf(c.principal),
        action: 'agent.visibility_changed',
        target: `agent:${id}`,
        details: { from: a.visibility, to: v },
      });
  })();
  return { agent: agentView(c, findAgent(c.db, id)!) };
}

/** Freezes the draft as the next version (409 `agent.unchanged` when it is the latest already). */
export function publishAgent(c: PlatformRequestContext, id: string) {
  const a = editableAgent(c, id);
  const { json, hash } = canonicalSpec(JSON.parse(a.draft) as AgentSpec);
  const latest = a.latest_version === null ? null : findVersion(c.db, id, a.latest_version);
  if (latest?.hash === hash)
    throw new AppError(
      'agent.unchanged',
      `the draft is version ${latest.version} already: change it first`,
      409,
    );
  const version = (a.latest_version ?? 0) + 1;
  const now = c.app.clock.now();
  c.db
    .transaction(() => {
      insertVersion(c.db, {
        agent_id: id,
        version,
        hash,
        spec: json,
        published_by: actorOf(c.principal),
        published_at: now,
      });
      updateAgent(c.db, id, { latest_version: version, now });
      c.app.audit.append(c.db, {
        actor: actorOf(c.principal),
        action: 'agent.published',
        target: `agent:${id}`,
        details: { version, hash },
      });
    })
    .immediate();
  return { agent: agentView(c, findAgent(c.db, id)!), version: { version, hash, published_at: iso(now) } };
}

export function agentVersions(c: PlatformRequestContext, id: string) {
  readableAgent(c, id);
  return {
    versions: listVersions(c.db, id).map((v: AgentVersionRow) => ({
      version: v.version,
      hash: v.hash,
      published_by: v.published_by,
      published_at: iso(v.published_at),
      spec: JSON.parse(v.spec) as AgentSpec,
    })),
  };
}

export function removeAgent(c: PlatformRequestContext, id: string): void {
  manageableAgent(c, id, 'delete it');
  c.db.transaction(() => {
    // Its knowledge's vectors go first (the vector index has no foreign key to cascade).
    deleteAgentVectors(c.db, id);
    deleteAgent(c.db, id);
    c.app.audit.append(c.db, {
      actor: actorOf(c.principal),
      action: 'agent.deleted',
      target: `agent:${id}`,
      details: {},
    });
  })();
}

/**
 * What a conversation with an agent runs: the latest version, or (for its editors, `draft`)
 * the draft; 404 when the agent is gone or no longer readable, 409 before its first version.
 */
export function agentSpecFor(
  c: PlatformRequestContext,
  agentId: string,
  version: number | null,
): { spec: AgentSpec; version: number | null } {
  const a = readableAgent(c, agentId);
  if (version === null) {
    if (!canEdit(c, a)) throw notFound();
    refuseRevoked(c, a, null);
    return { spec: JSON.parse(a.draft) as AgentSpec, version: null };
  }
  const v = findVersion(c.db, agentId, version);
  if (!v) throw notFound();
  refuseRevoked(c, a, v.hash);
  return { spec: JSON.parse(v.spec) as AgentSpec, version };
}

/** The version a new conversation with `agentId` runs (the latest; null = the draft, editors only). */
export function versionToRun(
  c: PlatformRequestContext,
  agentId: string,
  draft: boolean,
): { row: AgentRow; version: number | null } {
  const a = readableAgent(c, agentId);
  if (draft) {
    if (!canEdit(c, a))
      throw new AppError('agent.forbidden', "only the agent's editors may test its draft", 403);
    return { row: a, version: null };
  }
  if (a.latest_version === null)
    throw new AppError(
      'agent.unpublished',
      'this agent has no published version yet: publish it, or test its draft',
      409,
    );
  // Through the marketplace, the version installed (or listed); editors and platform sharing, the latest.
  const listed = canEdit(c, a) ? null : listedVersionFor(c, a.id);
  const shared = a.visibility === 'platform' || memberOf(c, a) === 'viewer' || viaLink(c, a);
  const version = listed !== null && !shared ? listed : a.latest_version;
  refuseRevoked(c, a, findVersion(c.db, a.id, version)?.hash ?? null);
  return { row: a, version };
}
