import type { App } from '../../app/index.ts';
import { tx } from '../../db/index.ts';
import { randomPassword, randomToken, sha256Hex } from '../../shared/crypto.ts';
import { AppError } from '../../shared/errors.ts';
import { newId } from '../../shared/ids.ts';
import { iso } from '../../shared/time.ts';
import { hashPassword } from '../accounts/passwords.ts';

/** Operator roles on the control plane. */
export type OperatorRole = 'operator_admin' | 'operator_viewer';

/** Every operator role, narrowest first. */
export const OPERATOR_ROLES: readonly OperatorRole[] = ['operator_viewer', 'operator_admin'];

/** Who an operator request acts as. `cli` is the local root over the control socket. */
export interface OperatorPrincipal {
  actor: string;
  operatorId: string | null;
  role: OperatorRole;
}

/** The principal of commands that arrive over the owner-only control socket (or run locally). */
export const LOCAL_ROOT: OperatorPrincipal = { actor: 'cli', operatorId: null, role: 'operator_admin' };

/** Operator API tokens start with this, so secret scanners and people can tell them apart. */
export const OPERATOR_TOKEN_PREFIX = 'sfo_';

/**
 * How long an operator token lives when its maker says nothing, and the longest it may live:
 * every token expires (as GitLab's personal access tokens do), so a forgotten one dies on its own.
 */
export const OPERATOR_TOKEN_TTL_MS = 365 * 86_400_000;

/** The narrower of two roles: a token never acts with more than its operator has now. */
export function narrowerRole(a: OperatorRole, b: OperatorRole): OperatorRole {
  return OPERATOR_ROLES.indexOf(a) <= OPERATOR_ROLES.indexOf(b) ? a : b;
}

/** What clients see of an operator token (never the secret, which is shown once). */
export interface OperatorTokenView {
  id: string;
  name: string;
  operator_id: string;
  operator_email: string;
  /** The role it acts with at most: its own cap, narrowed by the operator's current role. */
  role: OperatorRole;
  /** `maker_gone`: another operator made it, and that operator is disabled or removed since. */
  status: 'active' | 'expired' | 'revoked' | 'operator_disabled' | 'maker_gone';
  created_at: string;
  created_by: string | null;
  expires_at: string | null;
  last_used_at: string | null;
  revoked_at: string | null;
}

/**
 * On an empty control plane, creates the operator admin and a first API token (with the default
 * lifetime) and returns both secrets (to be shown once); on a control plane that has operators,
 * returns null.
 */
export async function bootstrapOperator(
  app: App,
  email: string,
): Promise<{ email: string; password: string; token: string } | null> {
  const has = app.control.query<{ n: number }, []>('SELECT count(*) AS n FROM operators').get();
  if ((has?.n ?? 0) > 0) return null;
  const password = randomPassword();
  const passwordHash = await hashPassword(app, password);
  const token = OPERATOR_TOKEN_PREFIX + randomToken(32);
  const now = app.clock.now();
  const id = newId('op');
  const made = tx(app.control, () => {
    // Checked again inside the write lock: two first starts cannot both create an admin.
    const again = app.control.query<{ n: number }, []>('SELECT count(*) AS n FROM operators').get();
    if ((again?.n ?? 0) > 0) return false;
    app.control
      .query(
        'INSERT INTO operators (id, email, password_hash, role, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)',
      )
      .run(id, email, passwordHash, 'operator_admin', now, now);
    const tid = insertToken(app, {
      operatorId: id,
      name: 'initial',
      token,
      now,
      expiresAt: now + OPERATOR_TOKEN_TTL_MS,
      role: null,
      createdBy: 'system',
    });
    app.audit.append(app.control, {
      actor: 'system',
      action: 'operator.created',
      target: `operator:${id}`,
      details: { email, role: 'operator_admin', reason: 'first start on an empty data dir' },
    });
    app.audit.append(app.control, {
      actor: 'system',
      action: 'operator_token.created',
      target: `operator:${id}`,
      details: { token_id: tid, name: 'initial', expires_at: iso(now + OPERATOR_TOKEN_TTL_MS) },
    });
    return true;
  });
  return made ? { email, password, token } : null;
}

/** What a new operator token may say about itself. */
export interface OperatorTokenInput {
  name?: unknown;
  /** The operator it belongs to (id or email); the caller's own operator when absent. */
  operator?: unknown;
  /** A cap narrower than (or equal to) the operator's role; absent: follows the operator's role. */
  role?: unknown;
  /** ISO-8601 date or date-time (a date means 00:00 UTC that day). */
  expires_at?: unknown;
  /** A lifetime such as `30d` or `12h`. */
  expires_in?: unknown;
}

/**
 * Makes a new operator API token, shown once. Only operator admins may; the token belongs to
 * the caller, or to `operator` (another active operator), with a role never wider than that
 * operator's, and it always expires (default and maximum: 365 days). Audited in the control chain.
 */
export function createOperatorToken(
  app: App,
  principal: OperatorPrincipal,
  input: OperatorTokenInput,
): { id: string; token: string; operator: string; role: OperatorRole; expires_at: string } {
  if (principal.role !== 'operator_admin') {
    throw new AppError('auth.forbidden', 'only an operator admin may create operator tokens', 403);
  }
  const rawName = input.name ?? 'cli';
  const cleanName = typeof rawName === 'string' ? rawName.trim() : '';
  if (cleanName.length === 0 || cleanName.length > 100) {
    throw new AppError('operator_token.name_invalid', 'token name must be 1 to 100 characters', 400, [
      { path: '/name', reason: 'must be 1 to 100 characters' },
    ]);
  }
  const now = app.clock.now();
  const expiresAt = tokenExpiry(input, now);
  if (input.role !== undefined && !OPERATOR_ROLES.includes(input.role as OperatorRole)) {
    throw new AppError(
      'operator_token.role_invalid',
      `role must be one of: ${OPERATOR_ROLES.join(', ')}`,
      400,
      [{ path: '/role', reason: `must be one of: ${OPERATOR_ROLES.join(', ')}` }],
    );
  }
  const token = OPERATOR_TOKEN_PREFIX + randomToken(32);
  return tx(app.control, () => {
    // The owner and its role are read inside the write lock, so a concurrent demotion or
    // disablement cannot slip between the check and the insert.
    const owner = tokenOwner(app, principal, input.operator);
    const role = (input.role ?? null) as OperatorRole | null;
    if (role !== null && narrowerRole(role, owner.role) !== role) {
      throw new AppError(
        'operator_token.role_too_wide',
        `a token for ${owner.email} may have at most the role ${owner.role}`,
        400,
        [{ path: '/role', reason: `wider than the operator's role (${owner.role})` }],
      );
    }
    const id = insertToken(app, {
      operatorId: owner.id,
      name: cleanName,
      token,
      now,
      expiresAt,
      role,
      createdBy: principal.actor,
    });
    app.audit.append(app.control, {
      actor: principal.actor,
      action: 'operator_token.created',
      target: `operator:${owner.id}`,
      details: { token_id: id, name: cleanName, role: role ?? owner.role, expires_at: iso(expiresAt) },
    });
    return {
      id,
      token,
      operator: owner.id,
      role: role ?? owner.role,
      expires_at: iso(expiresAt),
    };
  });
}

/**
 * Operator tokens, newest first: every operator's for an admin (or the `operator` given, by id
 * or email), only the caller's own for a viewer. Never the secrets.
 */
export function listOperatorTokens(
  app: App,
  principal: OperatorPrincipal,
  filter: { operator?: string } = {},
): OperatorTokenView[] {
  const rows = app.control
    .query<TokenRow, []>(`${TOKEN_SELECT} ORDER BY t.created_at DESC, t.id DESC`)
    .all()
    .filter((r) => principal.role === 'operator_admin' || r.operator_id === principal.operatorId)
    .filter(
      (r) =>
        filter.operator === undefined ||
        r.operator_id === filter.operator ||
        r.email.toLowerCase() === filter.operator.toLowerCase(),
    );
  const now = app.clock.now();
  return rows.map((r) => tokenView(r, now));
}

/**
 * Revokes an operator token at once (its next request is refused). An admin may revoke any
 * token; anyone may revoke their own. Revoking a revoked token changes nothing. Audited.
 */
export function revokeOperatorToken(app: App, principal: OperatorPrincipal, id: string): OperatorTokenView {
  return tx(app.control, () => {
    const row = app.control.query<TokenRow, [string]>(`${TOKEN_SELECT} WHERE t.id = ?`).get(id);
    // Someone else's token is "not found" to a viewer, so ids do not leak who holds what.
    if (!row || (principal.role !== 'operator_admin' && row.operator_id !== principal.operatorId)) {
      throw new AppError('operator_token.not_found', `there is no operator token ${id}`, 404);
    }
    const now = app.clock.now();
    if (row.revoked_at === null) {
      app.control.query('UPDATE operator_tokens SET revoked_at = ? WHERE id = ?').run(now, id);
      app.audit.append(app.control, {
        actor: principal.actor,
        action: 'operator_token.revoked',
        target: `operator:${row.operator_id}`,
        details: { token_id: id, name: row.name },
      });
      row.revoked_at = now;
    }
    return tokenView(row, now);
  });
}

/**
 * Resolves a bearer token to its operator, or null: unknown, malformed, revoked, expired, or its
 * operator disabled or removed. Read on every request (nothing cached), so a revocation, a
 * disablement or a demotion holds from the next request on; the role is the token's cap
 * narrowed by the operator's role now.
 */
export function authenticateOperatorToken(app: App, token: string): OperatorPrincipal | null {
  if (!token.startsWith(OPERATOR_TOKEN_PREFIX) || token.length > 200) return null;
  const row = app.control
    .query<
      {
        tid: string;
        last_used_at: number | null;
        expires_at: number | null;
        token_role: OperatorRole | null;
        id: string;
        role: OperatorRole;
        status: string;
        created_by: string | null;
        maker_role: OperatorRole | null;
        maker_status: string | null;
      },
      [string]
    >(
      `SELECT t.id AS tid, t.last_used_at, t.expires_at, t.role AS token_role, o.id, o.role, o.status,
              t.created_by, m.role AS maker_role, m.status AS maker_status
       FROM operator_tokens t JOIN operators o ON o.id = t.operator_id
       ${MAKER_JOIN}
       WHERE t.token_hash = ? AND t.revoked_at IS NULL`,
    )
    .get(sha256Hex(token));
  if (row?.status !== 'active') return null;
  const now = app.clock.now();
  if (row.expires_at !== null && now >= row.expires_at) return null;
  const maker = makerCap(row.created_by, row.id, row.maker_role, row.maker_status);
  if (maker === 'refused') return null;
  // Last use is recorded at most once a minute, so reads do not turn into writes.
  if (row.last_used_at === null || now - row.last_used_at > 60_000) {
    app.control.query('UPDATE operator_tokens SET last_used_at = ? WHERE id = ?').run(now, row.tid);
  }
  return {
    actor: `operator:${row.id}`,
    operatorId: row.id,
    role: narrowerRole(narrowerRole(row.token_role ?? row.role, row.role), maker ?? row.role),
  };
}

/**
 * Joins a token's maker (`m`) when another operator made it (`created_by` = `operator:<id>`):
 * that maker saw the secret, so the token never acts with more than the maker has now.
 */
const MAKER_JOIN = `LEFT JOIN operators m ON t.created_by LIKE 'operator:%' AND m.id = substr(t.created_by, 10)`;

/**
 * What a token's maker allows it: null when the token's own operator, the local root (`cli`)
 * or the system made it (no cap); the maker's role when another operator did and is active;
 * 'refused' when that maker is disabled or removed. An admin who made a token for someone else
 * holds its secret, so demoting, disabling or removing that admin must reach the token too.
 */
function makerCap(
  createdBy: string | null,
  operatorId: string,
  makerRole: OperatorRole | null,
  makerStatus: string | null,
): OperatorRole | null | 'refused' {
  if (!createdBy?.startsWith('operator:') || createdBy === `operator:${operatorId}`) return null;
  if (makerRole === null || makerStatus !== 'active') return 'refused';
  return makerRole;
}

interface TokenRow {
  id: string;
  name: string;
  operator_id: string;
  email: string;
  operator_role: OperatorRole;
  operator_status: string;
  role: OperatorRole | null;
  created_at: number;
  created_by: string | null;
  expires_at: number | null;
  last_used_at: number | null;
  revoked_at: number | null;
  maker_role: OperatorRole | null;
  maker_status: string | null;
}

const TOKEN_SELECT = `SELECT t.id, t.name, t.operator_id, o.email, o.role AS operator_role, o.status AS operator_status,
  t.role, t.created_at, t.created_by, t.expires_at, t.last_used_at, t.revoked_at,
  m.role AS maker_role, m.status AS maker_status
  FROM operator_tokens t JOIN operators o ON o.id = t.operator_id ${MAKER_JOIN}`;

function tokenView(r: TokenRow, now: number): OperatorTokenView {
  const maker = makerCap(r.created_by, r.operator_id, r.maker_role, r.maker_status);
  const status: OperatorTokenView['status'] =
    r.revoked_at !== null
      ? 'revoked'
      : r.expires_at !== null && now >= r.expires_at
        ? 'expired'
        : r.operator_status !== 'active'
          ? 'operator_disabled'
          : maker === 'refused'
            ? 'maker_gone'
            : 'active';
  return {
    id: r.id,
    name: r.name,
    operator_id: r.operator_id,
    operator_email: r.email,
    role: narrowerRole(
      narrowerRole(r.role ?? r.operator_role, r.operator_role),
      maker === null || maker === 'refused' ? r.operator_role : maker,
    ),
    status,
    created_at: iso(r.created_at),
    created_by: r.created_by,
    expires_at: r.expires_at === null ? null : iso(r.expires_at),
    last_used_at: r.last_used_at === null ? null : iso(r.last_used_at),
    revoked_at: r.revoked_at === null ? null : iso(r.revoked_at),
  };
}

/** The operator a new token is for: `ref` (id or email), else the caller, else the first active admin. */
function tokenOwner(
  app: App,
  principal: OperatorPrincipal,
  ref: unknown,
): { id: string; email: string; role: OperatorRole } {
  type Row = { id: string; email: string; role: OperatorRole; status: string };
  let row: Row | null;
  if (ref !== undefined) {
    if (typeof ref !== 'string' || ref.length === 0 || ref.length > 254) {
      throw new AppError('request.invalid', 'operator must be an operator id or email', 400, [
        { path: '/operator', reason: 'must be an operator id or email' },
      ]);
    }
    row = app.control
      .query<Row, [string, string]>('SELECT id, email, role, status FROM operators WHERE id = ? OR email = ?')
      .get(ref, ref);
    if (!row) throw new AppError('operator.not_found', `there is no operator ${ref}`, 404);
  } else if (principal.operatorId !== null) {
    row = app.control
      .query<Row, [string]>('SELECT id, email, role, status FROM operators WHERE id = ?')
      .get(principal.operatorId);
    if (!row) throw new AppError('operator.not_found', 'the calling operator no longer exists', 404);
  } else {
    row = app.control
      .query<Row, []>(
        "SELECT id, email, role, status FROM operators WHERE role = 'operator_admin' AND status = 'active' ORDER BY created_at LIMIT 1",
      )
      .get();
    if (!row) {
      throw new AppError(
        'operator.none',
        'there is no active operator admin yet; run `soulfra serve` once first',
        409,
      );
    }
  }
  if (row.status !== 'active') {
    throw new AppError('operator.disabled', `operator ${row.email} is disabled; enable it first`, 409);
  }
  return row;
}

/** The expiry of a new token (epoch ms): from `expires_at` or `expires_in`, default 365 days. */
function tokenExpiry(input: OperatorTokenInput, now: number): number {
  const max = now + OPERATOR_TOKEN_TTL_MS;
  if (input.expires_at !== undefined && input.expires_in !== undefined) {
    throw new AppError('operator_token.expiry_invalid', 'give expires_at or expires_in, not both', 400, [
      { path: '/expires_in', reason: 'not with expires_at' },
    ]);
  }
  const refuse = (path: string, reason: string): never => {
    throw new AppError('operator_token.expiry_invalid', `${path.slice(1)} ${reason}`, 400, [
      { path, reason },
    ]);
  };
  let at: number;
  if (input.expires_in !== undefined) {
    const m = typeof input.expires_in === 'string' ? /^([1-9]\d{0,4})([dh])$/.exec(input.expires_in) : null;
    if (!m) return refuse('/expires_in', 'must be a lifetime such as 30d or 12h');
    at = now + Number(m[1]) * (m[2] === 'd' ? 86_400_000 : 3_600_000);
  } else if (input.expires_at !== undefined) {
    const s = input.expires_at;
    const ok =
      typeof s === 'string' &&
      /^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d{1,3})?)?(Z|[+-]\d{2}:\d{2}))?$/.test(s);
    at = ok ? Date.parse(s as string) : Number.NaN;
    if (!Number.isFinite(at))
      return refuse('/expires_at', 'must be an ISO-8601 date or date-time with a zone');
    if (at <= now) return refuse('/expires_at', 'must be in the future');
  } else {
    return max;
  }
  if (at > max)
    return refuse(
      input.expires_in !== undefined ? '/expires_in' : '/expires_at',
      'must be at most 365 days ahead',
    );
  return at;
}

function insertToken(
  app: App,
  t: {
    operatorId: string;
    name: string;
    token: string;
    now: number;
    expiresAt: number;
    role: OperatorRole | null;
    createdBy: string;
  },
): string {
  const id = newId('opt');
  app.control
    .query(
      `INSERT INTO operator_tokens (id, operator_id, name, token_hash, created_at, expires_at, role, created_by)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
    )
    .run(id, t.operatorId, t.name, sha256Hex(t.token), t.now, t.expiresAt, t.role, t.createdBy);
  return id;
}
