import { existsSync, mkdirSync, renameSync, rmSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { type App, admitFeatures } from '../app/index.ts';
import { isUniqueViolation, tx } from '../db/index.ts';
import { AppError } from '../shared/errors.ts';
import { isIpHostname, parseHostHeader } from '../shared/host.ts';
import { iso } from '../shared/time.ts';
import type { PlatformBlueprint } from './blueprint.models.ts';
import { mergeBlueprintUpdate } from './blueprint.ts';
import {
  auditedChanges,
  type BlueprintChange,
  type BlueprintEditor,
  checkBlueprintChange,
} from './blueprint-rules.ts';
import {
  createDeletionRepository,
  createPlatformRepository,
  type PlatformHead,
  type PlatformRow,
  type PlatformStatus,
} from './platforms.repository.ts';
import { PLATFORM_DIRS, type ReconcileReport, reconcilePlatformFiles } from './reconcile.ts';
import { PlatformRegistry } from './registry.ts';
import { domainUrl, type InstanceSettings, platformUrl, readSettings, writeSettings } from './settings.ts';
import { checkDomain } from './slug.ts';

/** What clients see of a platform (operator API, CLI). Times are ISO-8601 UTC. */
export interface PlatformView {
  id: string;
  slug: string;
  name: string;
  status: PlatformStatus;
  status_reason: string | null;
  template: string;
  url: string;
  domains: string[];
  db_file: string;
  created_at: string;
  updated_at: string;
}

/** Where a request's Host header leads. */
export type HostTarget =
  | { kind: 'invalid' }
  | { kind: 'operator' }
  /** `host` is the stored name that matched (`<slug>.<base>` or a mapped domain), never the header. */
  | { kind: 'platform'; platform: PlatformHead; host: string }
  | { kind: 'unknown'; host: string };

const BLUEPRINT_CACHE = 512;

/** How long a deleted platform's slug stays reserved when neither the config nor the call says. */
export const DEFAULT_SLUG_GRACE_DAYS = 30;
const DAY_MS = 86_400_000;

/** What a blueprint change answers: the platform, its blueprint now, and the settings changed. */
export interface BlueprintUpdate {
  platform: PlatformView;
  blueprint: PlatformBlueprint;
  changes: BlueprintChange[];
}

/** What a delete answers. */
export interface PlatformDeleted {
  id: string;
  slug: string;
  name: string;
  /** When the slug may be used again (ISO-8601 UTC). */
  slug_free_at: string;
}

/**
 * The tenancy service: the platform registry and every change to a platform's life
 * (create commit, suspend, resume, archive, unarchive, blueprint update, delete). Each change
 * writes its control row and a control-plane audit entry in one transaction, then updates the
 * in-memory registry (and, for a blueprint, the cached blueprint). Each runs synchronously from
 * the read of the current state to its commit, so two changes in this process never interleave.
 */
export function createTenancy(app: App) {
  const repo = createPlatformRepository({ db: app.control });
  const deletions = createDeletionRepository({ db: app.control });
  const registry = new PlatformRegistry();
  registry.load(repo.allHeads(), repo.allDomains());
  let settings = readSettings(app.control);
  const blueprints = new Map<string, PlatformBlueprint>();
  const archiveDir = join(app.dataDir, PLATFORM_DIRS.archive);
  // The event dispatcher covers the platforms whose file is in place, and stops opening one as
  // soon as its archive begins (the registry says 'archived' before the handle is evicted).
  app.events.usePlatforms({
    list: () =>
      repo
        .allHeads()
        .filter((h) => registry.byId(h.id)?.status !== 'archived')
        .map((h) => h.id),
    live: (id) => {
      const h = registry.byId(id);
      return h !== undefined && h.status !== 'archived';
    },
  });

  const notFound = (slug: string) =>
    new AppError('platform.not_found', `no platform with slug '${slug}'`, 404, [
      { path: '/slug', reason: 'not found' },
    ]);

  const headOf = (slug: string): PlatformHead => {
    const h = registry.bySlug(slug);
    if (!h) throw notFound(slug);
    return h;
  };

  const view = (h: PlatformHead): PlatformView => ({
    id: h.id,
    slug: h.slug,
    name: h.name,
    status: h.status,
    status_reason: h.status_reason,
    template: h.template,
    url: platformUrl(settings, h.slug),
    domains: registry.domainsOf(h.id),
    db_file: h.db_file,
    created_at: iso(h.created_at),
    updated_at: iso(h.updated_at),
  });

  const reload = (id: string): PlatformHead => {
    const row = repo.byId(id);
    if (!row) throw new Error(`platform ${id} vanished from control.db`);
    const { blueprint: _b, ...head } = row;
    registry.put(head);
    return head;
  };

  /** A platform's blueprint (cached; blueprints change only through this service). */
  const blueprintOf = (id: string): PlatformBlueprint => {
    const hit = blueprints.get(id);
    if (hit) {
      blueprints.delete(id);
      blueprints.set(id, hit);
      return hit;
    }
    const row = repo.byId(id);
    if (!row) throw new AppError('platform.not_found', `no platform with id '${id}'`, 404);
    const bp = JSON.parse(row.blueprint) as PlatformBlueprint;
    blueprints.set(id, bp);
    if (blueprints.size > BLUEPRINT_CACHE) blueprints.delete(blueprints.keys().next().value as string);
    return bp;
  };

  return {
    registry,

    /** The instance settings in force (base domain, public URL). */
    settings(): InstanceSettings {
      return settings;
    },

    /** Stores new instance settings (by `serve` at start). */
    updateSettings(s: InstanceSettings): void {
      writeSettings(app.control, s);
      settings = s;
    },

    /** Where a Host header (port allowed) leads: operator host, a platform, or nowhere. */
    resolveHost(hostHeader: string | null): HostTarget {
      const parsed = parseHostHeader(hostHeader);
      if (!parsed) return { kind: 'invalid' };
      const host = parsed.hostname;
      const base = settings.base_domain;
      if (host === base || isIpHostname(host)) return { kind: 'operator' };
      if (host.endsWith(`.${base}`)) {
        const label = host.slice(0, -base.length - 1);
        const p = label.includes('.') ? undefined : registry.bySlug(label);
        return p ? { kind: 'platform', platform: p, host: `${p.slug}.${base}` } : { kind: 'unknown', host };
      }
      const p = registry.byDomain(host);
      // The registry's key is the stored domain itself: `host` equals a stored value here.
      return p ? { kind: 'platform', platform: p, host } : { kind: 'unknown', host };
    },

    /** Every platform, oldest first. */
    list(): PlatformView[] {
      return repo.allHeads().map((h) => view(registry.byId(h.id) ?? h));
    },

    /** One platform by slug (404 `platform.not_found`). */
    get(slug: string): PlatformView {
      return view(headOf(slug));
    },

    /** The client view of a head. */
    view,

    /** A platform's blueprint (cached; blueprints change only through this service). */
    blueprintOf,

    /** Refuses a create early (409) when the slug or the domain is taken. */
    assertAvailable(slug: string, domain: string | undefined): void {
      if (registry.bySlug(slug) || repo.bySlug(slug)) {
        throw new AppError('platform.slug_taken', `slug '${slug}' is taken`, 409, [
          { path: '/slug', reason: 'taken' },
        ]);
      }
      assertSlugNotReserved(slug);
      if (domain) assertDomainFree(domain);
    },

    /**
     * Commits a platform whose database file is already in place: its control row, its custom
     * domain, the control audit entry and (given `auditHead`) the signed anchor of the platform
     * chain's head, in one transaction. A slug or domain taken
     * meanwhile fails the transaction (409) and nothing is written.
     */
    commitCreate(
      row: PlatformRow,
      domain: string | undefined,
      actor: string,
      auditHead?: { seq: number; hash: string },
    ): PlatformView {
      try {
        tx(app.control, () => {
          assertSlugNotReserved(row.slug);
          repo.insert(row);
          if (domain) repo.insertDomain(domain, row.id, row.created_at);
          // The new platform chain's first anchor commits with its control row.
          if (auditHead) app.audit.anchor(row.id, auditHead);
          app.audit.append(app.control, {
            actor,
            action: 'platform.created',
            target: `platform:${row.slug}`,
            details: { id: row.id, template: row.template, name: row.name, ...(domain ? { domain } : {}) },
          });
          app.events.append(app.control, 'platform.created', {
            platformId: row.id,
            slug: row.slug,
            template: row.template,
            actor,
          });
        });
      } catch (e) {
        if (isUniqueViolation(e, 'platforms', 'slug')) {
          throw new AppError('platform.slug_taken', `slug '${row.slug}' is taken`, 409, [
            { path: '/slug', reason: 'taken' },
          ]);
        }
        if (isUniqueViolation(e, 'domains', 'host')) {
          throw new AppError(
            'platform.domain_taken',
            `domain '${domain}' is mapped to another platform`,
            409,
            [{ path: '/domain', reason: 'taken' }],
          );
        }
        throw e;
      }
      const { blueprint: _b, ...head } = row;
      registry.put(head);
      if (domain) registry.putDomain(domain, row.id);
      return view(head);
    },

    /** Suspends (the host answers 503) or resumes a platform; the same state twice is a no-op. */
    setActive(slug: string, active: boolean, actor: string, reason?: string): PlatformView {
      const h = headOf(slug);
      if (h.status === 'archived') {
        throw new AppError('platform.archived', `platform '${slug}' is archived; unarchive it first`, 409);
      }
      const to: PlatformStatus = active ? 'active' : 'suspended';
      if (h.status === to) return view(h);
      tx(app.control, () => {
        repo.setStatus(h.id, to, active ? null : (reason ?? null), h.db_file, app.clock.now());
        app.audit.append(app.control, {
          actor,
          action: active ? 'platform.resumed' : 'platform.suspended',
          target: `platform:${slug}`,
          details: { id: h.id, from: h.status, ...(reason ? { reason } : {}) },
        });
        app.events.append(app.control, 'platform.status_changed', {
          platformId: h.id,
          slug,
          from: h.status,
          to,
          actor,
        });
      });
      const next = reload(h.id);
      return view(next);
    },

    /**
     * Archives a platform: its host answers 410 at once, its database handle is closed once
     * in-flight requests finish, the new status commits (with its audit entry and event), and
     * then the file moves to platforms/archive/. Nothing is deleted; the slug stays taken. The
     * row is the truth: a stop between the commit and the move is finished at the next boot
     * (`reconcileFiles`).
     */
    async archive(slug: string, actor: string, reason?: string): Promise<PlatformView> {
      const h = headOf(slug);
      if (h.status === 'archived') return view(h);
      // 1. Stop new requests: the registry answers 410 from now on.
      registry.put({ ...h, status: 'archived' });
      const from = join(app.dataDir, h.db_file);
      const to = join(archiveDir, `${h.id}.db`);
      const file = relative(app.dataDir, to);
      try {
        // 2. Close the handle when its last in-flight request is done.
        await app.platformDbs.evict(h.id);
        if (existsSync(to)) throw new Error(`${to} already exists`);
        // 3. Commit the new status with its audit entry.
        tx(app.control, () => {
          repo.setStatus(h.id, 'archived', reason ?? null, file, app.clock.now());
          app.audit.append(app.control, {
            actor,
            action: 'platform.archived',
            target: `platform:${slug}`,
            details: { id: h.id, from: h.status, file, ...(reason ? { reason } : {}) },
          });
          app.events.append(app.control, 'platform.archived', { platformId: h.id, slug, file, actor });
        });
      } catch (e) {
        registry.put(h);
        throw e;
      }
      // 4. Move the file aside (rename is atomic on one filesystem).
      moveAfterCommit(slug, from, to);
      return view(reload(h.id));
    },

    /**
     * Brings an archived platform back (active): the status commits first, then its file moves
     * back into place, and only then does its host answer. Unarchiving a platform that is not
     * archived is a no-op, like the other lifecycle verbs.
     */
    unarchive(slug: string, actor: string): PlatformView {
      const h = headOf(slug);
      if (h.status !== 'archived') return view(h);
      const from = join(app.dataDir, h.db_file);
      const to = app.platformDbPath(h.id);
      if (existsSync(to)) throw new Error(`cannot unarchive ${slug}: ${to} already exists`);
      if (!existsSync(from)) throw new Error(`cannot unarchive ${slug}: ${from} is missing`);
      tx(app.control, () => {
        repo.setStatus(h.id, 'active', null, relative(app.dataDir, to), app.clock.now());
        app.audit.append(app.control, {
          actor,
          action: 'platform.unarchived',
          target: `platform:${slug}`,
          details: { id: h.id },
        });
        app.events.append(app.control, 'platform.unarchived', { platformId: h.id, slug, actor });
      });
      if (!moveAfterCommit(slug, from, to)) {
        // The row says active; the host keeps answering 410 until the file is in place.
        throw new AppError(
          'platform.file_move_failed',
          `platform '${slug}' is unarchived but its file could not be moved back; restart soulfra to finish`,
          500,
        );
      }
      const next = reload(h.id);
      // Its database is in place again: deliver what it still holds.
      app.events.kick(h.id);
      return view(next);
    },

    /**
     * Puts every platform file where its row says and moves the files no row names to
     * platforms/quarantine/ (see reconcile.ts); then reloads the registry from the rows. At
     * boot, before anything opens a platform database.
     */
    reconcileFiles(): ReconcileReport {
      const report = reconcilePlatformFiles(app.dataDir, repo.allHeads(), { log: app.log, clock: app.clock });
      registry.load(repo.allHeads(), repo.allDomains());
      return report;
    },

    /** Maps another custom domain to a platform (409 when another platform has it). */
    addDomain(slug: string, host: string, actor: string): PlatformView {
      const h = headOf(slug);
      const domain = checkDomain(host, '/host');
      if (registry.byDomain(domain)?.id === h.id) return view(h);
      assertDomainFree(domain);
      tx(app.control, () => {
        repo.insertDomain(domain, h.id, app.clock.now());
        app.audit.append(app.control, {
          actor,
          action: 'platform.domain_added',
          target: `platform:${slug}`,
          details: { id: h.id, domain },
        });
      });
      registry.putDomain(domain, h.id);
      return view(h);
    },

    /** Unmaps a custom domain from a platform (404 when it is not mapped there). */
    removeDomain(slug: string, host: string, actor: string): PlatformView {
      const h = headOf(slug);
      if (registry.byDomain(host)?.id !== h.id) {
        throw new AppError(
          'platform.domain_not_found',
          `domain '${host}' is not mapped to platform '${slug}'`,
          404,
          [{ path: '/host', reason: 'not mapped to this platform' }],
        );
      }
      tx(app.control, () => {
        repo.deleteDomain(host);
        app.audit.append(app.control, {
          actor,
          action: 'platform.domain_removed',
          target: `platform:${slug}`,
          details: { id: h.id, domain: host },
        });
      });
      registry.deleteDomain(host);
      return view(h);
    },

    /**
     * Changes a platform's blueprint: `partial` deep-merged over the current one and validated as
     * at create (`mergeBlueprintUpdate`), then checked against who may change what
     * (`checkBlueprintChange`: 403 `blueprint.operator_only`, 400 `blueprint.not_changeable`).
     * No change: nothing is written. Otherwise one platform transaction holds the platform
     * chain's entry (with the diff), and inside it one control transaction writes the blueprint,
     * the control chain's entry (when the operator did it) and the `platform.updated` event; the
     * control commit is the commit point (a failure there rolls the platform entry back). The
     * cached blueprint is replaced after commit, so the next request (pages, AI policy, safety
     * terms: all keyed by the blueprint object) uses the new one.
     */
    updateBlueprint(
      slug: string,
      partial: unknown,
      by: { kind: BlueprintEditor; actor: string },
    ): BlueprintUpdate {
      const h = headOf(slug);
      if (h.status === 'archived') {
        throw new AppError('platform.archived', `platform '${slug}' is archived; unarchive it first`, 409);
      }
      const current = blueprintOf(h.id);
      const next = mergeBlueprintUpdate(current, partial);
      const changes = checkBlueprintChange(current, next, by.kind);
      if (changes.length === 0) return { platform: view(h), blueprint: current, changes };
      // Features turned on must be in the platform's operator plan (billing's check).
      const features = next.features as Record<string, unknown>;
      const was = current.features as Record<string, unknown>;
      admitFeatures(
        app,
        h.id,
        Object.keys(features).filter((k) => features[k] === true && was[k] !== true),
      );
      const diff = auditedChanges(changes);
      const paths = changes.map((c) => c.path);
      const details = { id: h.id, by: by.kind, changes: diff };
      const lease = app.platformDbs.acquire(h.id);
      try {
        tx(lease.db, () => {
          app.audit.append(lease.db, {
            actor: by.actor,
            action: 'platform.updated',
            target: `platform:${slug}`,
            details,
          });
          tx(app.control, () => {
            repo.setBlueprint(h.id, JSON.stringify(next), next.identity.name, app.clock.now());
            if (by.kind === 'operator') {
              app.audit.append(app.control, {
                actor: by.actor,
                action: 'platform.updated',
                target: `platform:${slug}`,
                details,
              });
            }
            app.events.append(app.control, 'platform.updated', {
              platformId: h.id,
              slug,
              by: by.kind,
              actor: by.actor,
              paths,
            });
          });
        });
      } finally {
        lease.release();
      }
      blueprints.delete(h.id);
      blueprints.set(h.id, next);
      return { platform: view(reload(h.id)), blueprint: next, changes };
    },

    /**
     * Deletes an archived platform for good (`confirm` must repeat the slug). Three explicit
     * steps, each durable, so a crash leaves a state `reconcileDeletions` finishes at boot:
     * 1. a `platform_deletions` row in state 'deleting' commits with the control audit entry;
     * 2. the archive file is removed;
     * 3. one transaction removes the platform's control row and domains, marks the row 'deleted'
     *    and appends `platform.deleted`. The slug stays reserved for `graceDays` (the call's, else
     *    the config's `deleted_slug_grace_days`, else 30): a create with it answers 409
     *    `platform.slug_reserved` until then.
     */
    remove(slug: string, confirm: unknown, actor: string, graceDays?: unknown): PlatformDeleted {
      const h = headOf(slug);
      if (confirm !== slug) {
        throw new AppError(
          'platform.confirm_mismatch',
          `to delete platform '${slug}', confirm with its slug (--confirm ${slug})`,
          400,
          [{ path: '/confirm', reason: `must equal the slug '${slug}'` }],
        );
      }
      const grace = graceDays ?? app.config.deleted_slug_grace_days ?? DEFAULT_SLUG_GRACE_DAYS;
      if (typeof grace !== 'number' || !Number.isInteger(grace) || grace < 0 || grace > 3650) {
        throw new AppError('platform.grace_invalid', 'the slug grace period must be 0 to 3650 days', 400, [
          { path: '/slug_grace_days', reason: 'must be an integer from 0 to 3650' },
        ]);
      }
      if (h.status !== 'archived') {
        throw new AppError(
          'platform.not_archived',
          `platform '${slug}' is ${h.status}; only an archived platform can be deleted (archive it first)`,
          409,
        );
      }
      const now = app.clock.now();
      const slugFreeAt = now + grace * DAY_MS;
      if (!deletions.byId(h.id)) {
        tx(app.control, () => {
          deletions.insert({
            platform_id: h.id,
            slug,
            name: h.name,
            state: 'deleting',
            db_file: h.db_file,
            actor,
            requested_at: now,
            deleted_at: null,
            slug_free_at: slugFreeAt,
          });
          app.audit.append(app.control, {
            actor,
            action: 'platform.deleted',
            target: `platform:${slug}`,
            details: { id: h.id, file: h.db_file, slug_free_at: iso(slugFreeAt), grace_days: grace },
          });
        });
      }
      const done = finishDeletion(h.id);
      return {
        id: h.id,
        slug,
        name: h.name,
        slug_free_at: iso(done?.slug_free_at ?? slugFreeAt),
      };
    },

    /**
     * Finishes every delete a crash interrupted (state 'deleting': the file removed if it is still
     * there, then step 3). Idempotent; run at boot before the listener. Returns the slugs finished.
     */
    reconcileDeletions(): string[] {
      return deletions.inState('deleting').map((d) => {
        finishDeletion(d.platform_id);
        app.log.warn('finished an interrupted platform delete', { slug: d.slug, id: d.platform_id });
        return d.slug;
      });
    },

    /** Counts by status (metrics). */
    countByStatus: () => repo.countByStatus(),

    /** The URL of a custom domain. */
    domainUrl: (host: string) => domainUrl(settings, host),
  };

  /**
   * The file move that follows a committed status change. The row already says where the file
   * belongs; a move that fails here is logged and finished by the next boot's reconcile.
   */
  function moveAfterCommit(slug: string, from: string, to: string): boolean {
    try {
      mkdirSync(dirname(to), { recursive: true, mode: 0o700 });
      renameSync(from, to);
      return true;
    } catch (e) {
      app.log.error('platform file not moved after its status committed; the next start moves it', {
        platform: slug,
        from: relative(app.dataDir, from),
        to: relative(app.dataDir, to),
        err: e instanceof Error ? e.message : String(e),
      });
      return false;
    }
  }

  function assertSlugNotReserved(slug: string): void {
    const until = deletions.reservedUntil(slug, app.clock.now());
    if (until !== null) {
      throw new AppError(
        'platform.slug_reserved',
        `slug '${slug}' belonged to a deleted platform and is reserved until ${iso(until)}`,
        409,
        [{ path: '/slug', reason: `reserved until ${iso(until)}` }],
      );
    }
  }

  /** Steps 2 and 3 of a delete (see `remove`); a no-op once it is finished. */
  function finishDeletion(platformId: string) {
    const d = deletions.byId(platformId);
    if (!d || d.state === 'deleted') return d;
    // 2. The archive file (and any WAL beside it); a file already gone is step 2 done.
    const file = join(app.dataDir, d.db_file);
    for (const f of [file, `${file}-wal`, `${file}-shm`]) rmSync(f, { force: true });
    // 3. The control row and domains go; the deletion row becomes the slug's tombstone.
    tx(app.control, () => {
      deletions.finalize(platformId, app.clock.now());
      app.events.append(app.control, 'platform.deleted', {
        platformId,
        slug: d.slug,
        actor: d.actor,
        slugFreeAt: d.slug_free_at,
      });
    });
    registry.remove(platformId);
    blueprints.delete(platformId);
    return { ...d, state: 'deleted' as const };
  }

  function assertDomainFree(domain: string): void {
    const base = settings.base_domain;
    if (domain === base || domain.endsWith(`.${base}`)) {
      throw new AppError(
        'platform.domain_invalid',
        `domain '${domain}' is under the instance's base domain '${base}'; platforms get <slug>.${base} already`,
        400,
        [{ path: '/domain', reason: 'under the base domain' }],
      );
    }
    if (repo.domainOwner(domain)) {
      throw new AppError('platform.domain_taken', `domain '${domain}' is mapped to another platform`, 409, [
        { path: '/domain', reason: 'taken' },
      ]);
    }
  }
}

/** The tenancy service's type. */
export type Tenancy = ReturnType<typeof createTenancy>;
