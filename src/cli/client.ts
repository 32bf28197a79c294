import { existsSync } from 'node:fs';
import {
  DEFAULT_CONFIG,
  dataDirPaths,
  type InstanceConfig,
  lockDataDir,
  type MasterKeyExport,
  silentLogger,
  sweepTemporaryFiles,
} from '../app/index.ts';
import {
  type AuditVerifyReport,
  type CreatePlatformInput,
  type DataKeyRotation,
  exportMasterKey,
  type MasterKeyRotation,
  openInstance,
  type PlatformSettingsReport,
  rotateDataKey,
  rotateMasterKey,
} from '../flows/index.ts';
import {
  type ApiKeyView,
  LOCAL_ROOT,
  type OperatorRole,
  type OperatorTokenView,
  type OperatorView,
} from '../identity/index.ts';
import { AppError } from '../shared/errors.ts';
import { type Clock, systemClock } from '../shared/time.ts';
import type { BlueprintUpdate, PlatformDeleted, PlatformView } from '../tenancy/index.ts';

/** The instance's federation key as `soulfra federation key` prints it. */
export interface FederationKeyView {
  key_id: string;
  public_key: string;
  algorithm: string;
  created_at: string;
}

/** A key a platform trusts. */
export interface TrustedKeyView {
  key_id: string;
  public_key: string;
  label: string;
  added_by: string;
  added_at: string;
}

/** A created platform as the contract prints it. */
export interface Created {
  slug: string;
  url: string;
  admin: { email: string; password: string };
  platform: PlatformView;
  /** Settings that silently do nothing on this instance (docs/blueprint.md). */
  warnings: string[];
}

/**
 * The operator's commands, the same whether a server owns the data dir (requests over its
 * control socket, so one process writes each database) or none does (this process takes the
 * lock and does the work itself).
 */
export interface OperatorClient {
  readonly mode: 'server' | 'local';
  createPlatform(input: CreatePlatformInput): Promise<Created>;
  listPlatforms(): Promise<PlatformView[]>;
  showPlatform(slug: string): Promise<PlatformView & PlatformSettingsReport & { blueprint: unknown }>;
  suspend(slug: string, reason?: string): Promise<PlatformView>;
  resume(slug: string): Promise<PlatformView>;
  archive(slug: string, reason?: string): Promise<PlatformView>;
  unarchive(slug: string): Promise<PlatformView>;
  /** A partial blueprint merged over the platform's current one. */
  updatePlatform(slug: string, blueprint: unknown): Promise<BlueprintUpdate>;
  /** Deletes an archived platform (`confirm` repeats the slug). */
  deletePlatform(
    slug: string,
    opts: { confirm: string; slugGraceDays?: number },
  ): Promise<{ deleted: PlatformDeleted }>;
  addDomain(slug: string, host: string): Promise<PlatformView>;
  removeDomain(slug: string, host: string): Promise<PlatformView>;
  createToken(input: {
    name: string;
    operator?: string;
    role?: string;
    expires_at?: string;
    expires_in?: string;
  }): Promise<{ id: string; token: string; operator: string; role: OperatorRole; expires_at: string }>;
  listTokens(operator?: string): Promise<{ tokens: OperatorTokenView[] }>;
  revokeToken(id: string): Promise<{ token: OperatorTokenView }>;
  createOperator(email: string, role: string): Promise<{ operator: OperatorView }>;
  listOperators(): Promise<{ operators: OperatorView[] }>;
  disableOperator(ref: string): Promise<{ operator: OperatorView }>;
  enableOperator(ref: string): Promise<{ operator: OperatorView }>;
  setOperatorRole(ref: string, role: string): Promise<{ operator: OperatorView }>;
  removeOperator(ref: string): Promise<{ removed: { id: string; email: string } }>;
  createApiKey(
    slug: string,
    input: { name: string; scopes: string[]; expires_at?: string },
  ): Promise<{ id: string; key: string }>;
  listApiKeys(slug: string): Promise<{ api_keys: ApiKeyView[] }>;
  revokeApiKey(slug: string, id: string): Promise<{ api_key: ApiKeyView }>;
  /** A one-time link for a platform owner to set a new password (audited on both chains). */
  ownerReset(
    slug: string,
    email?: string,
  ): Promise<{ slug: string; email: string; link: string; expires_at: string }>;
  verifyAudit(slug?: string): Promise<AuditVerifyReport>;
  /** The platforms' mail by state (default: undelivered); needs the running server. */
  listMail(q: { status?: string; platform?: string }): Promise<MailReport>;
  /** Sends a test message through the server's SMTP settings; needs the running server. */
  testMail(input: {
    to: string;
    platform?: string;
  }): Promise<{ message_id: string; response: string; from: string }>;
  /** A new data key with every secret re-sealed (or, with `master`, a new master key). */
  rotateKeys(opts: { master: boolean }): Promise<DataKeyRotation | MasterKeyRotation>;
  /** The master key for escrow. */
  exportKeys(): Promise<MasterKeyExport & { restore: string }>;
  /** The instance's federation key (made on first use). */
  federationKey(): Promise<{ key: FederationKeyView }>;
  /** The other instances' keys a platform trusts. */
  listTrustedKeys(slug: string): Promise<{ trusted_keys: TrustedKeyView[] }>;
  trustKey(
    slug: string,
    input: { public_key: string; key_id?: string; label?: string },
  ): Promise<{ trusted_key: TrustedKeyView }>;
  untrustKey(slug: string, keyId: string): Promise<{ removed: { key_id: string } }>;
  close(): Promise<void>;
}

/**
 * Connects to a data dir: through the control socket when a server answers there, else by
 * taking the lock. If the lock is held but the socket is not answering yet (a server starting),
 * it retries for a few seconds. A missing data dir is created only when `create` is set.
 */
export async function connect(
  dataDir: string,
  opts: { create?: boolean; config?: InstanceConfig; clock?: Clock } = {},
): Promise<OperatorClient> {
  const config = opts.config ?? DEFAULT_CONFIG;
  const clock = opts.clock ?? systemClock;
  const { socket } = dataDirPaths(dataDir);
  const deadline = clock.now() + 5_000;
  for (;;) {
    if (existsSync(socket) && (await socketAnswers(socket))) return remoteClient(socket);
    if (!opts.create && !existsSync(dataDir)) {
      throw new AppError(
        'datadir.not_found',
        `data dir ${dataDir} does not exist; run \`soulfra serve --data ${dataDir}\` first`,
        404,
      );
    }
    const held = lockDataDir(dataDir);
    if ('lock' in held) {
      try {
        sweepTemporaryFiles(dataDir);
        const inst = openInstance({ dataDir, config, log: silentLogger, clock });
        return localClient(inst, () => held.lock.release());
      } catch (e) {
        held.lock.release();
        throw e;
      }
    }
    if (clock.now() > deadline) {
      throw new AppError(
        'datadir.locked',
        `data dir ${dataDir} is locked by another process${held.heldBy ? ` (pid ${held.heldBy})` : ''} whose control socket does not answer`,
        409,
      );
    }
    await Bun.sleep(100);
  }
}

async function socketAnswers(socket: string): Promise<boolean> {
  try {
    const res = await fetch('http://soulfra/readyz', {
      unix: socket,
      signal: AbortSignal.timeout(2_000),
    } as RequestInit);
    await res.arrayBuffer();
    return res.status === 200 || res.status === 503;
  } catch {
    return false;
  }
}

function remoteClient(socket: string): OperatorClient {
  const call = async <T>(method: string, path: string, body?: unknown): Promise<T> => {
    const res = await fetch(`http://soulfra/_operator/api${path}`, {
      method,
      unix: socket,
      headers: body === undefined ? {} : { 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    } as RequestInit);
    const text = await res.text();
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      throw new AppError(
        'server.bad_answer',
        `the server answered ${res.status} with non-JSON: ${text.slice(0, 200)}`,
        502,
      );
    }
    if (!res.ok) {
      const e = (json as { error?: { code?: string; message?: string; details?: never } }).error;
      throw new AppError(
        e?.code ?? 'server.error',
        e?.message ?? `HTTP ${res.status}`,
        res.status,
        e?.details,
      );
    }
    return json as T;
  };
  const enc = encodeURIComponent;
  return {
    mode: 'server',
    createPlatform: (input) => call('POST', '/platforms', input),
    listPlatforms: async () => (await call<{ platforms: PlatformView[] }>('GET', '/platforms')).platforms,
    showPlatform: (slug) => call('GET', `/platforms/${enc(slug)}`),
    suspend: (slug, reason) => call('POST', `/platforms/${enc(slug)}/suspend`, reason ? { reason } : {}),
    resume: (slug) => call('POST', `/platforms/${enc(slug)}/resume`, {}),
    archive: (slug, reason) => call('POST', `/platforms/${enc(slug)}/archive`, reason ? { reason } : {}),
    unarchive: (slug) => call('POST', `/platforms/${enc(slug)}/unarchive`, {}),
    updatePlatform: (slug, blueprint) => call('PATCH', `/platforms/${enc(slug)}`, { blueprint }),
    deletePlatform: (slug, o) =>
      call(
        'DELETE',
        `/platforms/${enc(slug)}?confirm=${enc(o.confirm)}${o.slugGraceDays === undefined ? '' : `&slug_grace_days=${o.slugGraceDays}`}`,
      ),
    addDomain: (slug, host) => call('POST', `/platforms/${enc(slug)}/domains`, { host }),
    removeDomain: (slug, host) => call('DELETE', `/platforms/${enc(slug)}/domains/${enc(host)}`),
    createToken: (input) => call('POST', '/tokens', input),
    listTokens: (operator) => call('GET', `/tokens${operator ? `?operator=${enc(operator)}` : ''}`),
    revokeToken: (id) => call('DELETE', `/tokens/${enc(id)}`),
    createOperator: (email, role) => call('POST', '/operators', { email, role }),
    listOperators: () => call('GET', '/operators'),
    disableOperator: (ref) => call('POST', `/operators/${enc(ref)}/disable`, {}),
    enableOperator: (ref) => call('POST', `/operators/${enc(ref)}/enable`, {}),
    setOperatorRole: (ref, role) => call('PATCH', `/operators/${enc(ref)}`, { role }),
    removeOperator: (ref) => call('DELETE', `/operators/${enc(ref)}`),
    createApiKey: (slug, input) => call('POST', `/platforms/${enc(slug)}/api-keys`, input),
    listApiKeys: (slug) => call('GET', `/platforms/${enc(slug)}/api-keys`),
    revokeApiKey: (slug, id) => call('DELETE', `/platforms/${enc(slug)}/api-keys/${enc(id)}`),
    ownerReset: (slug, email) =>
      call('POST', `/platforms/${enc(slug)}/owner-reset`, email === undefined ? {} : { email }),
    verifyAudit: (slug) => call('GET', `/audit/verify${slug ? `?platform=${enc(slug)}` : ''}`),
    listMail: (q) => {
      const qs = new URLSearchParams(Object.entries(q).filter((e): e is [string, string] => Boolean(e[1])));
      return call('GET', `/mail${qs.size ? `?${qs}` : ''}`);
    },
    testMail: (input) => call('POST', '/mail/test', input),
    rotateKeys: (opts) => call('POST', '/keys/rotate', opts),
    exportKeys: () => call('POST', '/keys/export', {}),
    federationKey: () => call('GET', '/federation/key'),
    listTrustedKeys: (slug) => call('GET', `/platforms/${enc(slug)}/trusted-keys`),
    trustKey: (slug, input) => call('POST', `/platforms/${enc(slug)}/trusted-keys`, input),
    untrustKey: (slug, keyId) => call('DELETE', `/platforms/${enc(slug)}/trusted-keys/${enc(keyId)}`),
    close: async () => {},
  };
}

/** What `soulfra mail list` shows. */
export interface MailReport {
  delivery: { smtp: boolean; problem: string | null };
  messages: {
    platform: string;
    id: string;
    to: string;
    template: string;
    subject: string;
    status: string;
    attempts: number;
    last_error: string | null;
    created_at: string;
    next_attempt_at: string | null;
  }[];
}

// Mail is delivered by the running server (its SMTP settings, its mailer): no local mode.
const mailNeedsServer = () =>
  new AppError(
    'mail.server_required',
    'mail commands talk to the running server: start `soulfra serve` first',
    409,
  );

function localClient(inst: ReturnType<typeof openInstance>, unlock: () => void): OperatorClient {
  const a = inst.actions;
  return {
    mode: 'local',
    createPlatform: async (input) => {
      const r = await a.createPlatform(LOCAL_ROOT, input);
      return { slug: r.slug, url: r.url, admin: r.admin, platform: r.platform, warnings: r.warnings };
    },
    listPlatforms: async () => a.listPlatforms(),
    showPlatform: async (slug) => a.showPlatform(slug),
    suspend: async (slug, reason) => a.suspend(LOCAL_ROOT, slug, reason ? { reason } : {}),
    resume: async (slug) => a.resume(LOCAL_ROOT, slug),
    archive: (slug, reason) => a.archive(LOCAL_ROOT, slug, reason ? { reason } : {}),
    unarchive: async (slug) => a.unarchive(LOCAL_ROOT, slug),
    updatePlatform: async (slug, blueprint) => a.updatePlatform(LOCAL_ROOT, slug, { blueprint }),
    deletePlatform: async (slug, o) =>
      a.deletePlatform(LOCAL_ROOT, slug, { confirm: o.confirm, slug_grace_days: o.slugGraceDays }),
    addDomain: async (slug, host) => a.addDomain(LOCAL_ROOT, slug, { host }),
    removeDomain: async (slug, host) => a.removeDomain(LOCAL_ROOT, slug, host),
    createToken: async (input) => a.createToken(LOCAL_ROOT, input),
    listTokens: async (operator) => a.listTokens(LOCAL_ROOT, operator),
    revokeToken: async (id) => a.revokeToken(LOCAL_ROOT, id),
    createOperator: async (email, role) => ({ operator: a.createOperator(LOCAL_ROOT, { email, role }) }),
    listOperators: async () => ({ operators: a.listOperators() }),
    disableOperator: async (ref) => a.disableOperator(LOCAL_ROOT, ref),
    enableOperator: async (ref) => a.enableOperator(LOCAL_ROOT, ref),
    setOperatorRole: async (ref, role) => a.setOperatorRole(LOCAL_ROOT, ref, { role }),
    removeOperator: async (ref) => a.removeOperator(LOCAL_ROOT, ref),
    createApiKey: (slug, input) => a.createApiKey(LOCAL_ROOT, slug, input),
    listApiKeys: (slug) => a.listApiKeys(slug),
    revokeApiKey: (slug, id) => a.revokeApiKey(LOCAL_ROOT, slug, id),
    ownerReset: async (slug, email) => a.ownerReset(LOCAL_ROOT, slug, email === undefined ? {} : { email }),
    verifyAudit: (slug) => a.verifyAudit(slug),
    listMail: async () => {
      throw mailNeedsServer();
    },
    testMail: async () => {
      throw mailNeedsServer();
    },
    rotateKeys: async (opts) =>
      opts.master ? rotateMasterKey(inst.app, LOCAL_ROOT) : rotateDataKey(inst.app, inst.tenancy, LOCAL_ROOT),
    exportKeys: async () => exportMasterKey(inst.app, LOCAL_ROOT),
    federationKey: async () => a.federationKey(),
    listTrustedKeys: async (slug) => a.trustedKeys(slug),
    trustKey: async (slug, input) => a.trustKey(LOCAL_ROOT, slug, input),
    untrustKey: async (slug, keyId) => a.untrustKey(LOCAL_ROOT, slug, keyId),
    close: async () => {
      await inst.close();
      unlock();
    },
  };
}
