import type { App } from '../app/index.ts';
import { tx } from '../db/index.ts';
import { randomPassword, randomToken, sha256Hex } from '../shared/crypto.ts';
import { AppError } from '../shared/errors.ts';
import { newId } from '../shared/ids.ts';
import { hashPassword } from './passwords.ts';

/** Operator roles on the control plane. */
export type OperatorRole = 'operator_admin' | 'operator_viewer';

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
 * On an empty control plane, creates the operator admin and a first API token and returns both
 * secrets (to be printed once); on a control plane that has operators, returns null.
 */
export async function bootstrapOperator(
  app: App,
  email: string,
): Promise<{ email: string; password: string; token: string } | null> {
  const has = app.control.query<{ n: number }, []>('SELECT count(*) AS n FROM operators').get();
  if ((has?.n ?? 0) > 0) return null;
  const password = randomPassword();
  const passwordHash = await hashPassword(password);
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
    insertToken(app, id, 'initial', token, now);
    app.audit.append(app.control, {
      actor: 'system',
      action: 'operator.created',
      target: `operator:${id}`,
      details: { email, role: 'operator_admin', reason: 'first start on an empty data dir' },
    });
    return true;
  });
  return made ? { email, password, token } : null;
}

/** Makes a new operator API token for `operatorId` (the first operator admin when null). */
export function createOperatorToken(
  app: App,
  principal: OperatorPrincipal,
  name: string,
): { id: string; token: string; operator: string } {
  if (principal.role !== 'operator_admin') {
    throw new AppError('auth.forbidden', 'only an operator admin may create operator tokens', 403);
  }
  const cleanName = name.trim();
  if (cleanName.length === 0 || cleanName.length > 100) {
    throw new AppError('operator_token.name_invalid', 'token name must be 1 to 100 characters', 400, [
      { path: '/name', reason: 'must be 1 to 100 characters' },
    ]);
  }
  const operatorId =
    principal.operatorId ??
    app.control
      .query<{ id: string }, []>(
        "SELECT id FROM operators WHERE role = 'operator_admin' ORDER BY created_at LIMIT 1",
      )
      .get()?.id;
  if (!operatorId) {
    throw new AppError(
      'operator.none',
      'there is no operator admin yet; run `soulfra serve` once first',
      409,
    );
  }
  const token = OPERATOR_TOKEN_PREFIX + randomToken(32);
  const now = app.clock.now();
  const id = tx(app.control, () => {
    const tid = insertToken(app, operatorId, cleanName, token, now);
    app.audit.append(app.control, {
      actor: principal.actor,
      action: 'operator_token.created',
      target: `operator:${operatorId}`,
      details: { token_id: tid, name: cleanName },
    });
    return tid;
  });
  return { id, token, operator: operatorId };
}

/** Resolves a bearer token to its operator, or null (unknown, revoked, malformed). */
export function authenticateOperatorToken(app: App, token: string): OperatorPrincipal | null {
  if (!token.startsWith(OPERATOR_TOKEN_PREFIX) || token.length > 200) return null;
  const row = app.control
    .query<{ tid: string; last_used_at: number | null; id: string; role: OperatorRole }, [string]>(
      `SELECT t.id AS tid, t.last_used_at, o.id, o.role FROM operator_tokens t JOIN operators o ON o.id = t.operator_id
       WHERE t.token_hash = ? AND t.revoked_at IS NULL`,
    )
    .get(sha256Hex(token));
  if (!row) return null;
  const now = app.clock.now();
  // Last use is recorded at most once a minute, so reads do not turn into writes.
  if (row.last_used_at === null || now - row.last_used_at > 60_000) {
    app.control.query('UPDATE operator_tokens SET last_used_at = ? WHERE id = ?').run(now, row.tid);
  }
  return { actor: `operator:${row.id}`, operatorId: row.id, role: row.role };
}

function insertToken(app: App, operatorId: string, name: string, token: string, now: number): string {
  const id = newId('opt');
  app.control
    .query(
      'INSERT INTO operator_tokens (id, operator_id, name, token_hash, created_at) VALUES (?, ?, ?, ?, ?)',
    )
    .run(id, operatorId, name, sha256Hex(token), now);
  return id;
}
