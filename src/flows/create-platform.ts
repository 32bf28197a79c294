import { closeSync, fsyncSync, openSync, renameSync, rmSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import type { App } from '../app/index.ts';
import { assignDefaultPlan, defaultPlanFor, requirePlanFeatures } from '../billing/index.ts';
import { foldWal, migrate, openDatabase, TENANT_MIGRATIONS, writeMeta } from '../db/index.ts';
import { createUserRepository, hashPassword } from '../identity/index.ts';
import { randomPassword } from '../shared/crypto.ts';
import { AppError } from '../shared/errors.ts';
import { newId } from '../shared/ids.ts';
import {
  blueprintWarnings,
  checkDomain,
  checkSlug,
  type PlatformBlueprint,
  type PlatformView,
  resolveBlueprint,
  type Tenancy,
  type UnenforcedSetting,
  unenforcedSettings,
} from '../tenancy/index.ts';

/** What a create asks for (operator API body, CLI flags). */
export interface CreatePlatformInput {
  slug: unknown;
  template?: string;
  blueprint?: unknown;
  name?: string;
  domain?: string;
  owner_email?: string;
}

/** The result: the platform, and its owner's password, shown this once. */
export interface CreatePlatformResult {
  slug: string;
  url: string;
  admin: { email: string; password: string };
  platform: PlatformView;
  /** Milliseconds spent, for Server-Timing: the argon2id hash apart from the rest. */
  timings: { argon2_ms: number; total_ms: number };
  /** Settings of the blueprint that silently do nothing on this instance (also logged). */
  warnings: string[];
}

/** What a platform's blueprint sets that is not enforced, and its warnings on this instance. */
export interface PlatformSettingsReport {
  settings_not_enforced: UnenforcedSetting[];
  warnings: string[];
}

/** The settings report of a blueprint on this App's instance (its safety classifier). */
export function settingsReport(app: Pick<App, 'config'>, bp: PlatformBlueprint): PlatformSettingsReport {
  const instance = {
    classifier: app.config.safety_classifier !== undefined,
    billing: app.config.billing !== undefined,
  };
  return {
    settings_not_enforced: unenforcedSettings(bp, instance),
    warnings: blueprintWarnings(bp, instance),
  };
}

const EMAIL_RE = /^[^\s@]+@[^\s@]+\.[^\s@]+$|^[^\s@]+@localhost$/;

/**
 * Creates a platform with its owner account. One commit point (ARCHITECTURE rule 6): the
 * platform's database is built in a temporary file, synced and renamed into place, and only
 * then is its control row committed. A failure before the commit removes the file, so nothing
 * is left behind; a slug taken meanwhile fails the commit with 409.
 */
export async function createPlatform(
  app: App,
  tenancy: Tenancy,
  input: CreatePlatformInput,
  actor: string,
): Promise<CreatePlatformResult> {
  const started = performance.now();
  // 1. Validate everything before touching the disk.
  const slug = checkSlug(input.slug);
  const domainIn = input.domain === undefined ? undefined : checkDomain(input.domain);
  const blueprint = resolveBlueprint({
    slug,
    template: input.template,
    blueprint: input.blueprint,
    name: input.name,
    domain: domainIn,
  });
  // Features the template's default plan does not include are refused before anything is made.
  const on = blueprint.features as Record<string, unknown>;
  requirePlanFeatures(
    app,
    defaultPlanFor(app, input.template ?? 'blank'),
    Object.keys(on).filter((k) => on[k] === true),
  );
  const domain = blueprint.identity.domain
    ? checkDomain(blueprint.identity.domain, '/identity/domain')
    : undefined;
  const settings = tenancy.settings();
  const email = (input.owner_email ?? `owner@${slug}.${settings.base_domain}`).toLowerCase();
  if (!EMAIL_RE.test(email) || email.length > 254) {
    throw new AppError(
      'platform.owner_email_invalid',
      `owner email '${email}' is not an email address`,
      400,
      [{ path: '/owner_email', reason: 'not an email address' }],
    );
  }
  tenancy.assertAvailable(slug, domain);

  // 2. The owner's password (argon2id: slow by design, timed apart).
  const password = randomPassword();
  const h0 = performance.now();
  const passwordHash = await hashPassword(app, password);
  const argon2Ms = performance.now() - h0;

  // 3. Build the platform's database in a temporary file.
  const id = newId('plt');
  const finalPath = app.platformDbPath(id);
  const tmpPath = join(dirname(finalPath), `.tmp-${id}.db`);
  const now = app.clock.now();
  let created: { seq: number; hash: string } | undefined;
  try {
    const db = openDatabase(tmpPath, 'tenant');
    try {
      migrate(db, TENANT_MIGRATIONS, `new platform ${slug}`);
      db.transaction(() => {
        writeMeta(db, { platform_id: id, slug, created_at: String(now) });
        createUserRepository({ db }).insert({
          id: newId('usr'),
          email,
          name: 'Owner',
          password_hash: passwordHash,
          role: 'owner',
          status: 'active',
          // The operator vouches for the owner's address (issue 10: the printed credentials work
          // on a platform that requires confirmed emails).
          email_verified_at: now,
          created_at: now,
          updated_at: now,
        });
        created = app.audit.append(db, {
          actor,
          action: 'platform.created',
          target: `platform:${slug}`,
          details: { id, template: input.template ?? 'blank', owner: email },
        });
      }).immediate();
      // Fold the WAL into the main file so that one file is all there is.
      foldWal(db);
    } finally {
      db.close();
    }
    // 4. Sync the file, rename it into place, sync the directory.
    fsyncPath(tmpPath);
    renameSync(tmpPath, finalPath);
    fsyncPath(dirname(finalPath));
  } catch (e) {
    rmSync(tmpPath, { force: true });
    rmSync(`${tmpPath}-wal`, { force: true });
    rmSync(`${tmpPath}-shm`, { force: true });
    rmSync(finalPath, { force: true });
    throw e;
  }

  // 5. The commit point: the control row, domain, audit entry and the new chain's anchor in one
  //    transaction.
  let platform: PlatformView;
  try {
    platform = tenancy.commitCreate(
      {
        id,
        slug,
        name: blueprint.identity.name,
        status: 'active',
        template: input.template ?? 'blank',
        blueprint: JSON.stringify(blueprint),
        db_file: relative(app.dataDir, finalPath),
        status_reason: null,
        created_at: now,
        updated_at: now,
      },
      domain,
      actor,
      created,
    );
  } catch (e) {
    rmSync(finalPath, { force: true });
    throw e;
  }
  // Its template's default operator plan (the operator may change it).
  assignDefaultPlan(app, id);
  const { warnings } = settingsReport(app, blueprint);
  for (const w of warnings) app.log.warn('platform blueprint warning', { platform: slug, warning: w });
  return {
    slug,
    url: platform.url,
    admin: { email, password },
    platform,
    timings: { argon2_ms: argon2Ms, total_ms: performance.now() - started },
    warnings,
  };
}

function fsyncPath(path: string): void {
  const fd = openSync(path, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}
