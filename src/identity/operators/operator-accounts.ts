import type { App } from '../../app/index.ts';
import { tx } from '../../db/index.ts';
import { AppError } from '../../shared/errors.ts';
import { listOperators, type OperatorView } from './operator-sso.ts';
import { OPERATOR_ROLES, type OperatorPrincipal, type OperatorRole } from './operators.ts';

interface Row {
  id: string;
  email: string;
  role: OperatorRole;
  status: string;
}

/**
 * Runs one change to an operator account in a write transaction: only operator admins may, the
 * operator is found by id or email, and the change is refused (409 operator.last_admin) when it
 * would leave no active operator admin, so the instance can always be run from its console.
 */
function change(
  app: App,
  by: OperatorPrincipal,
  ref: string,
  losesAdmin: (op: Row) => boolean,
  apply: (op: Row, now: number) => void,
): Row {
  if (by.role !== 'operator_admin') {
    throw new AppError('auth.forbidden', 'only an operator admin may change operators', 403);
  }
  return tx(app.control, () => {
    const op = app.control
      .query<Row, [string, string]>('SELECT id, email, role, status FROM operators WHERE id = ? OR email = ?')
      .get(ref, ref);
    if (!op) throw new AppError('operator.not_found', `there is no operator ${ref}`, 404);
    if (op.role === 'operator_admin' && op.status === 'active' && losesAdmin(op)) {
      const others = app.control
        .query<{ n: number }, [string]>(
          "SELECT count(*) AS n FROM operators WHERE role = 'operator_admin' AND status = 'active' AND id <> ?",
        )
        .get(op.id)!.n;
      if (others === 0) {
        throw new AppError(
          'operator.last_admin',
          `${op.email} is the last active operator admin; make another operator admin first`,
          409,
        );
      }
    }
    apply(op, app.clock.now());
    return op;
  });
}

const viewOf = (app: App, id: string): OperatorView | undefined =>
  listOperators(app).find((o) => o.id === id);

/**
 * Disables an operator: their API tokens and console sessions stop working at once (sessions
 * are ended; tokens are kept, refused while disabled, and work again if the operator is
 * enabled). The last active operator admin cannot be disabled. Audited in the control chain.
 */
export function disableOperator(app: App, by: OperatorPrincipal, ref: string): OperatorView {
  const op = change(
    app,
    by,
    ref,
    () => true,
    (o, now) => {
      if (o.status === 'disabled') return;
      app.control
        .query("UPDATE operators SET status = 'disabled', updated_at = ? WHERE id = ?")
        .run(now, o.id);
      const ended = app.control
        .query('DELETE FROM operator_sessions WHERE operator_id = ?')
        .run(o.id).changes;
      app.audit.append(app.control, {
        actor: by.actor,
        action: 'operator.disabled',
        target: `operator:${o.id}`,
        details: { email: o.email, sessions_ended: ended },
      });
    },
  );
  return viewOf(app, op.id)!;
}

/** Enables a disabled operator again (their unexpired, unrevoked tokens work again). Audited. */
export function enableOperator(app: App, by: OperatorPrincipal, ref: string): OperatorView {
  const op = change(
    app,
    by,
    ref,
    () => false,
    (o, now) => {
      if (o.status === 'active') return;
      app.control.query("UPDATE operators SET status = 'active', updated_at = ? WHERE id = ?").run(now, o.id);
      app.audit.append(app.control, {
        actor: by.actor,
        action: 'operator.enabled',
        target: `operator:${o.id}`,
        details: { email: o.email },
      });
    },
  );
  return viewOf(app, op.id)!;
}

/**
 * Changes an operator's role. Every token of theirs is capped by the new role from its next
 * request on. The last active operator admin cannot be demoted. Audited.
 */
export function setOperatorRole(app: App, by: OperatorPrincipal, ref: string, role: unknown): OperatorView {
  if (!OPERATOR_ROLES.includes(role as OperatorRole)) {
    throw new AppError('operator.invalid', `role must be one of: ${OPERATOR_ROLES.join(', ')}`, 400, [
      { path: '/role', reason: `must be one of: ${OPERATOR_ROLES.join(', ')}` },
    ]);
  }
  const op = change(
    app,
    by,
    ref,
    () => role !== 'operator_admin',
    (o, now) => {
      if (o.role === role) return;
      app.control
        .query('UPDATE operators SET role = ?, updated_at = ? WHERE id = ?')
        .run(role as string, now, o.id);
      app.audit.append(app.control, {
        actor: by.actor,
        action: 'operator.role_changed',
        target: `operator:${o.id}`,
        details: { email: o.email, from: o.role, to: role },
      });
    },
  );
  return viewOf(app, op.id)!;
}

/**
 * Removes an operator: their console sessions and API tokens are deleted with the account, so
 * nothing of theirs works any more (the control chain keeps the record). The last active
 * operator admin cannot be removed. Audited.
 */
export function removeOperator(app: App, by: OperatorPrincipal, ref: string): { id: string; email: string } {
  const op = change(
    app,
    by,
    ref,
    () => true,
    (o) => {
      app.control.query('DELETE FROM operator_sessions WHERE operator_id = ?').run(o.id);
      const tokens = app.control.query('DELETE FROM operator_tokens WHERE operator_id = ?').run(o.id).changes;
      app.control.query('DELETE FROM operators WHERE id = ?').run(o.id);
      app.audit.append(app.control, {
        actor: by.actor,
        action: 'operator.removed',
        target: `operator:${o.id}`,
        details: { email: o.email, role: o.role, tokens_deleted: tokens },
      });
    },
  );
  return { id: op.id, email: op.email };
}
