import { Database } from 'bun:sqlite';
import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import {
  acceptRevocationList,
  federationKeyView,
  fetchRevocationList,
  revocationList,
  trustedKeys,
  trustKey,
  untrustKey,
} from '../agents/index.ts';
import { usageTotalsSince } from '../ai/index.ts';
import { type App, type AuditFilter, type AuditPage, searchAudit } from '../app/index.ts';
import {
  type AnchoredVerdict,
  type KeyReport,
  publicKeyCopyPath,
  readPublicKeyCopy,
  type VerifyKey,
  verifyControlAudit,
  verifyKey,
  verifyPlatformAudit,
} from '../audit/index.ts';
import { schemaVersion, TENANT_MIGRATIONS } from '../db/index.ts';
import {
  type ApiKeyView,
  createApiKey,
  createOperator,
  createOperatorToken,
  createUserRepository,
  disableOperator,
  enableOperator,
  issueOwnerResetLink,
  listApiKeys,
  listOperators,
  listOperatorTokens,
  type OperatorPrincipal,
  type OperatorRole,
  type OperatorTokenView,
  type OperatorView,
  removeOperator,
  revokeApiKey,
  revokeOperatorToken,
  setOperatorRole,
} from '../identity/index.ts';
import { AppError } from '../shared/errors.ts';
import { iso } from '../shared/time.ts';
import type { BlueprintUpdate, PlatformDeleted, PlatformView, Tenancy } from '../tenancy/index.ts';
import {
  type CreatePlatformInput,
  type CreatePlatformResult,
  createPlatform,
  type PlatformSettingsReport,
  settingsReport,
} from './create-platform.ts';

/** One platform database's state, for the console's health screen. */
export interface DatabaseHealth {
  slug: string;
  status: string;
  file: string;
  bytes: number;
  schema: number | null;
  latest: number;
  ok: boolean;
  problem: string | null;
}

/** A platform's figures for the console's list. */
export interface PlatformStats {
  users: number;
  calls_30d: number;
  tokens_30d: number;
  /** Cost plus markup, micro-units of the currency's minor unit (a JSON number while exact). */
  cost_micro_30d: number | string;
  /** The currency most of its usage is priced in; null before any priced call. */
  currency: string | null;
}

function platformStats(db: Database, since: number): PlatformStats {
  const users = createUserRepository({ db }).countActive();
  const rows = usageTotalsSince(db, since);
  const main = rows[0];
  const cost = main?.cost_micro ?? 0n;
  return {
    users,
    calls_30d: rows.reduce((a, r) => a + r.calls, 0),
    tokens_30d: rows.reduce((a, r) => a + r.tokens, 0),
    cost_micro_30d: cost <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(cost) : cost.toString(),
    currency: main ? main.currency : null,
  };
}

/** One chain's verdict, as the API and CLI report it. */
export interface ChainReport {
  chain: string;
  ok: boolean;
  entries: number;
  head?: string;
  /** The last entry covered by a signed checkpoint (control) or anchor (platform). */
  anchored?: number;
  /** Entries after it: a platform chain's allowed lag (written after its last anchor landed). */
  unanchored?: number;
  bad?: { seq: number; reason: string };
}

/** What `audit verify` answers: every chain's verdict and the instance signing key. */
export interface AuditVerifyReport {
  ok: boolean;
  chains: ChainReport[];
  /** The key's fingerprint (`SHA256:...`), and what is wrong with the key if anything. */
  signing_key: KeyReport;
}

/**
 * The operator's use cases, shared by the operator HTTP API (server/) and the CLI when no
 * server runs (cli/), so both paths do and answer exactly the same.
 */
export function createOperatorActions(app: App, tenancy: Tenancy) {
  const requireAdmin = (p: OperatorPrincipal) => {
    if (p.role !== 'operator_admin')
      throw new AppError('auth.forbidden', 'this needs the operator admin role', 403);
  };
  const reasonOf = (body: unknown): string | undefined => {
    const r = (body as { reason?: unknown } | null)?.reason;
    if (r === undefined) return undefined;
    if (typeof r !== 'string' || r.length > 500) {
      throw new AppError('request.invalid', 'reason must be text of at most 500 characters', 400, [
        { path: '/reason', reason: 'must be text of at most 500 characters' },
      ]);
    }
    return r;
  };

  /** A platform whose database is in place (not archived: 409 `platform.archived`). */
  const livePlatform = (slug: string): PlatformView => {
    const v = tenancy.get(slug);
    if (v.status === 'archived')
      throw new AppError('platform.archived', `platform '${slug}' is archived`, 409);
    return v;
  };

  return {
    /** Creates a platform with its owner (see flows/create-platform). */
    createPlatform(p: OperatorPrincipal, input: CreatePlatformInput): Promise<CreatePlatformResult> {
      requireAdmin(p);
      return createPlatform(app, tenancy, input, p.actor);
    },
    /** Every platform. */
    listPlatforms(): PlatformView[] {
      return tenancy.list();
    },
    /**
     * Every platform with its figures: active users, and AI calls, tokens and cost (with the
     * markup) over the last 30 days in its main currency. Archived platforms have none (null).
     */
    async listPlatformsWithStats(): Promise<(PlatformView & { stats: PlatformStats | null })[]> {
      const since = app.clock.now() - 30 * 86_400_000;
      const out: (PlatformView & { stats: PlatformStats | null })[] = [];
      for (const v of tenancy.list()) {
        if (v.status === 'archived') {
          out.push({ ...v, stats: null });
          continue;
        }
        const stats = await app.platformDbs.use(v.id, (db) => platformStats(db, since));
        out.push({ ...v, stats });
      }
      return out;
    },
    /**
     * Each platform's database: its file and size (with its write-ahead log), its schema
     * version against this build's, and whether it opens. Archived files are only looked at.
     */
    async databaseHealth(): Promise<DatabaseHealth[]> {
      const want = TENANT_MIGRATIONS.at(-1)!.version;
      const out: DatabaseHealth[] = [];
      for (const v of tenancy.list()) {
        const path = join(app.dataDir, v.db_file);
        const size = (f: string) => (existsSync(f) ? statSync(f).size : 0);
        const base = {
          slug: v.slug,
          status: v.status,
          file: v.db_file,
          bytes: size(path) + size(`${path}-wal`),
        };
        if (!existsSync(path)) {
          out.push({ ...base, schema: null, latest: want, ok: false, problem: 'the file is missing' });
          continue;
        }
        if (v.status === 'archived') {
          out.push({ ...base, schema: null, latest: want, ok: true, problem: null });
          continue;
        }
        try {
          const schema = await app.platformDbs.use(v.id, (db) => schemaVersion(db));
          out.push({
            ...base,
            schema,
            latest: want,
            ok: schema === want,
            problem: schema === want ? null : `schema ${schema}, this build's is ${want}`,
          });
        } catch (e) {
          out.push({ ...base, schema: null, latest: want, ok: false, problem: (e as Error).message });
        }
      }
      return out;
    },
    /** The control plane's audit trail, or a platform's (`slug`), filtered (app/audit-search). */
    async listAudit(slug: string | undefined, f: AuditFilter): Promise<AuditPage & { chain: string }> {
      app.audit.flush();
      if (!slug) return { chain: 'control', ...searchAudit(app.control, f) };
      const v = livePlatform(slug);
      return { chain: v.slug, ...(await app.platformDbs.use(v.id, (db) => searchAudit(db, f))) };
    },
    /**
     * One platform, with its blueprint, the settings it sets that nothing enforces yet, and what
     * its blueprint silently lacks on this instance (docs/blueprint.md, "What each setting does today").
     */
    showPlatform(slug: string): PlatformView & PlatformSettingsReport & { blueprint: unknown } {
      const v = tenancy.get(slug);
      const blueprint = tenancy.blueprintOf(v.id);
      return { ...v, blueprint, ...settingsReport(app, blueprint) };
    },
    suspend(p: OperatorPrincipal, slug: string, body?: unknown): PlatformView {
      requireAdmin(p);
      return tenancy.setActive(slug, false, p.actor, reasonOf(body));
    },
    resume(p: OperatorPrincipal, slug: string): PlatformView {
      requireAdmin(p);
      return tenancy.setActive(slug, true, p.actor);
    },
    archive(p: OperatorPrincipal, slug: string, body?: unknown): Promise<PlatformView> {
      requireAdmin(p);
      return tenancy.archive(slug, p.actor, reasonOf(body));
    },
    unarchive(p: OperatorPrincipal, slug: string): PlatformView {
      requireAdmin(p);
      return tenancy.unarchive(slug, p.actor);
    },
    /**
     * Changes a platform's blueprint: `{ blueprint }` is a partial blueprint merged over the
     * current one (tenancy.updateBlueprint; the operator may change what the rules allow it).
     */
    updatePlatform(
      p: OperatorPrincipal,
      slug: string,
      body: unknown,
    ): BlueprintUpdate & PlatformSettingsReport {
      requireAdmin(p);
      const b = body as { blueprint?: unknown } | null;
      if (b?.blueprint === undefined) {
        throw new AppError('request.invalid', 'blueprint is required: the settings to change', 400, [
          { path: '/blueprint', reason: 'required' },
        ]);
      }
      const u = tenancy.updateBlueprint(slug, b.blueprint, { kind: 'operator', actor: p.actor });
      // What the new blueprint sets that nothing enforces, and its warnings, as at create.
      return { ...u, ...settingsReport(app, u.blueprint) };
    },
    /** Deletes an archived platform (`confirm` repeats the slug); its slug stays reserved a while. */
    deletePlatform(
      p: OperatorPrincipal,
      slug: string,
      opts: { confirm?: unknown; slug_grace_days?: unknown },
    ): { deleted: PlatformDeleted } {
      requireAdmin(p);
      return { deleted: tenancy.remove(slug, opts.confirm, p.actor, opts.slug_grace_days) };
    },
    /** A platform's API keys (no secrets), revoked ones included. */
    listApiKeys(slug: string): Promise<{ api_keys: ApiKeyView[] }> {
      const v = livePlatform(slug);
      return app.platformDbs.use(v.id, (db) => ({ api_keys: listApiKeys(db, null) }));
    },
    /**
     * Revokes a platform API key: refused from the very next request (the platform's key cache
     * is dropped in the revoking transaction). Audited on the platform's chain; revoking twice
     * answers the same.
     */
    revokeApiKey(p: OperatorPrincipal, slug: string, id: string): Promise<{ api_key: ApiKeyView }> {
      requireAdmin(p);
      const v = livePlatform(slug);
      return app.platformDbs.use(v.id, (db) => ({ api_key: revokeApiKey(app, db, id, null, p.actor) }));
    },
    /** The instance's federation key (made on first use): its id and public key, for peers to pin. */
    federationKey() {
      return { key: federationKeyView(app) };
    },
    /** The keys of other instances a platform accepts agent packages from. */
    trustedKeys(slug: string) {
      return trustedKeys(app, tenancy.get(slug).id);
    },
    /** Pins another instance's federation key for a platform (audited in the control chain). */
    trustKey(p: OperatorPrincipal, slug: string, body: unknown) {
      requireAdmin(p);
      return trustKey(app, p.actor, tenancy.get(slug).id, (body ?? {}) as Record<string, unknown>);
    },
    untrustKey(p: OperatorPrincipal, slug: string, keyId: string) {
      requireAdmin(p);
      return untrustKey(app, p.actor, tenancy.get(slug).id, keyId);
    },
    /** Takes in a trusted peer's signed revocation list: what it revoked stops working here. */
    acceptRevocations(p: OperatorPrincipal, body: unknown) {
      requireAdmin(p);
      return acceptRevocationList(app, p.actor, body);
    },
    /** Fetches a trusted peer's signed revocation list (through the outbound guard) and takes it in. */
    fetchRevocations(p: OperatorPrincipal, body: unknown) {
      requireAdmin(p);
      return fetchRevocationList(app, p.actor, (body as { url?: unknown } | null)?.url);
    },
    /** This instance's own signed revocation list. */
    revocationList() {
      return revocationList(app);
    },
    /** Maps a custom domain to a platform. */
    addDomain(p: OperatorPrincipal, slug: string, body: unknown): PlatformView {
      requireAdmin(p);
      return tenancy.addDomain(slug, hostOf(body), p.actor);
    },
    /** Unmaps a custom domain. */
    removeDomain(p: OperatorPrincipal, slug: string, host: string): PlatformView {
      requireAdmin(p);
      return tenancy.removeDomain(slug, host, p.actor);
    },
    /**
     * A platform API key made by the operator (no owning user: it acts as the platform's admin,
     * capped by its scopes). Audited in the platform's chain.
     */
    async createApiKey(
      p: OperatorPrincipal,
      slug: string,
      body: unknown,
    ): Promise<{ id: string; key: string; api_key: ApiKeyView }> {
      requireAdmin(p);
      const v = livePlatform(slug);
      return app.platformDbs.use(v.id, (db) => {
        const r = createApiKey(
          app,
          db,
          (body ?? {}) as Record<string, unknown>,
          { userId: null, role: 'admin' },
          p.actor,
        );
        return { id: r.id, key: r.key, api_key: r.view };
      });
    },
    /**
     * A one-time link that lets a platform's owner set a new password (the oldest active owner,
     * or `email`), for the operator to hand over: printed, not mailed. Valid 24 hours, on the
     * platform's `/reset-password` page at its stored public URL. Audited on both chains: the
     * platform's (`user.owner_reset_issued`) and the control plane's (`platform.owner_reset`).
     */
    async ownerReset(
      p: OperatorPrincipal,
      slug: string,
      body?: unknown,
    ): Promise<{ slug: string; email: string; link: string; expires_at: string }> {
      requireAdmin(p);
      const email = (body as { email?: unknown } | null)?.email;
      if (email !== undefined && (typeof email !== 'string' || email.length > 320))
        throw new AppError('request.invalid', 'email must be text', 400, [
          { path: '/email', reason: 'must be text' },
        ]);
      const v = tenancy.get(slug);
      if (v.status === 'archived')
        throw new AppError('platform.archived', `platform '${slug}' is archived`, 409);
      const r = await app.platformDbs.use(v.id, (db) =>
        issueOwnerResetLink(app, db, new URL(v.url).origin, { email, actor: p.actor }),
      );
      app.control
        .transaction(() =>
          app.audit.append(app.control, {
            actor: p.actor,
            action: 'platform.owner_reset',
            target: `platform:${v.slug}`,
            details: { user: r.user.id, email: r.user.email, expires_at: iso(r.expiresAt) },
          }),
        )
        .immediate();
      return { slug: v.slug, email: r.user.email, link: r.link, expires_at: iso(r.expiresAt) };
    },
    /** Invites an operator (they sign in through the console's SSO). */
    createOperator(p: OperatorPrincipal, body: unknown): OperatorView {
      return createOperator(app, p, (body ?? {}) as Record<string, unknown>);
    },
    /** Every operator. */
    listOperators(): OperatorView[] {
      return listOperators(app);
    },
    /**
     * A new operator API token, shown once: for the caller or another operator (`operator`),
     * optionally with a narrower `role`, expiring at `expires_at` or after `expires_in`
     * (default 365 days).
     */
    createToken(
      p: OperatorPrincipal,
      body: unknown,
    ): { id: string; token: string; operator: string; role: OperatorRole; expires_at: string } {
      const b = (body ?? {}) as Record<string, unknown>;
      if (b.name !== undefined && typeof b.name !== 'string') {
        throw new AppError('request.invalid', 'name must be text', 400, [
          { path: '/name', reason: 'must be text' },
        ]);
      }
      return createOperatorToken(app, p, {
        name: b.name,
        operator: b.operator,
        role: b.role,
        expires_at: b.expires_at,
        expires_in: b.expires_in,
      });
    },
    /** Operator tokens (no secrets): all for an admin, one's own for a viewer. */
    listTokens(p: OperatorPrincipal, operator?: string): { tokens: OperatorTokenView[] } {
      return { tokens: listOperatorTokens(app, p, operator === undefined ? {} : { operator }) };
    },
    /** Revokes an operator token at once. */
    revokeToken(p: OperatorPrincipal, id: string): { token: OperatorTokenView } {
      return { token: revokeOperatorToken(app, p, id) };
    },
    /** Disables an operator (by id or email): their tokens and sessions stop working at once. */
    disableOperator(p: OperatorPrincipal, ref: string): { operator: OperatorView } {
      return { operator: disableOperator(app, p, ref) };
    },
    /** Enables a disabled operator again. */
    enableOperator(p: OperatorPrincipal, ref: string): { operator: OperatorView } {
      return { operator: enableOperator(app, p, ref) };
    },
    /** Changes an operator's role (the last active admin cannot be demoted). */
    setOperatorRole(p: OperatorPrincipal, ref: string, body: unknown): { operator: OperatorView } {
      return { operator: setOperatorRole(app, p, ref, (body as { role?: unknown } | null)?.role) };
    },
    /** Removes an operator with their tokens and sessions (the last active admin cannot be removed). */
    removeOperator(p: OperatorPrincipal, ref: string): { removed: { id: string; email: string } } {
      return { removed: removeOperator(app, p, ref) };
    },
    /**
     * Verifies hash chains: one platform's (by slug), or the control plane's and every
     * platform's (archived ones too, read from their archive file), each against what is kept
     * outside it: the control chain against its signed checkpoints, a platform chain against
     * its signed anchor in control.db (docs/audit.md). Also reports the signing key's
     * fingerprint, for comparison with a record kept off the machine.
     */
    async verifyAudit(slug?: string): Promise<AuditVerifyReport> {
      app.audit.flush();
      const { key, report: signingKey } = verifyKey(app.control, app.secrets);
      const copy = readPublicKeyCopy(app.dataDir);
      const checked: VerifyKey =
        key.ok && copy !== undefined && copy !== key.fingerprint
          ? {
              ok: false,
              fingerprint: key.fingerprint,
              reason: `the audit public key is not the one recorded beside the data dir (${publicKeyCopyPath(app.dataDir)}: ${copy})`,
            }
          : key;
      if (!checked.ok) signingKey.problem = checked.reason;
      const chains: ChainReport[] = [];
      const targets = slug ? [tenancy.get(slug)] : tenancy.list();
      if (!slug) chains.push(report('control', verifyControlAudit(app.control, checked)));
      for (const v of targets) {
        if (v.status === 'archived') {
          const path = join(app.dataDir, v.db_file);
          if (!existsSync(path)) {
            chains.push({
              chain: v.slug,
              ok: false,
              entries: 0,
              bad: { seq: 0, reason: `archive file ${v.db_file} is missing` },
            });
            continue;
          }
          const db = new Database(path, { readonly: true });
          try {
            chains.push(report(v.slug, verifyPlatformAudit(db, app.control, v.id, checked)));
          } finally {
            db.close();
          }
          continue;
        }
        chains.push(
          report(
            v.slug,
            await app.platformDbs.use(v.id, (db) => verifyPlatformAudit(db, app.control, v.id, checked)),
          ),
        );
      }
      return { ok: checked.ok && chains.every((c) => c.ok), chains, signing_key: signingKey };
    },
  };
}

/** The operator actions' type. */
export type OperatorActions = ReturnType<typeof createOperatorActions>;

function hostOf(body: unknown): string {
  const h = (body as { host?: unknown } | null)?.host;
  if (typeof h !== 'string') {
    throw new AppError('request.invalid', 'host is required: the custom domain to map', 400, [
      { path: '/host', reason: 'required' },
    ]);
  }
  return h;
}

function report(chain: string, v: AnchoredVerdict): ChainReport {
  return v.ok
    ? { chain, ok: true, entries: v.entries, head: v.head, anchored: v.anchored, unanchored: v.unanchored }
    : { chain, ok: false, entries: v.entries, bad: v.bad };
}
