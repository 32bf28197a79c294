/**
 * The one place that reads a SQLite constraint failure: by the error's extended result code
 * (`SQLITE_CONSTRAINT_UNIQUE`, …, as bun:sqlite sets `error.code`), then the constraint part of
 * its message, which SQLite words as:
 *
 * - unique / primary key: `UNIQUE constraint failed: users.email` (several columns:
 *   `t.a, t.b`; a unique index on an expression: `index 'name'`);
 * - not null: `NOT NULL constraint failed: users.email`;
 * - check: `CHECK constraint failed: <name or expression>`;
 * - foreign key: `FOREIGN KEY constraint failed` (SQLite names nothing).
 *
 * Callers map a violation to their AppError by table and column (`isUniqueViolation`), never by
 * a substring of the message.
 */
export type ConstraintKind = 'unique' | 'foreign_key' | 'check' | 'not_null';

export interface ConstraintViolation {
  kind: ConstraintKind;
  /** The table, when SQLite names it (unique and not-null on columns). */
  table: string | null;
  /** The columns, in the constraint's order (empty when SQLite names none). */
  columns: string[];
  /** A named constraint or index (`index 'x'`, a named CHECK), or the CHECK's expression. */
  constraint: string | null;
  /** The SQLite extended result code, e.g. `SQLITE_CONSTRAINT_UNIQUE`. */
  code: string;
}

const KINDS: Record<string, ConstraintKind> = {
  SQLITE_CONSTRAINT_UNIQUE: 'unique',
  SQLITE_CONSTRAINT_PRIMARYKEY: 'unique',
  SQLITE_CONSTRAINT_FOREIGNKEY: 'foreign_key',
  SQLITE_CONSTRAINT_CHECK: 'check',
  SQLITE_CONSTRAINT_NOTNULL: 'not_null',
};

/** The constraint an error reports, or null when it is no constraint failure (or another kind). */
export function constraintViolation(e: unknown): ConstraintViolation | null {
  if (!(e instanceof Error)) return null;
  const code = (e as { code?: unknown }).code;
  if (typeof code !== 'string') return null;
  const kind = KINDS[code];
  if (!kind) return null;
  const colon = e.message.indexOf('constraint failed: ');
  const detail = colon < 0 ? '' : e.message.slice(colon + 'constraint failed: '.length).trim();
  const out: ConstraintViolation = { kind, table: null, columns: [], constraint: null, code };
  if (!detail) return out;
  if (kind === 'check') {
    out.constraint = detail;
    return out;
  }
  const index = /^index '(.+)'$/.exec(detail);
  if (index) {
    out.constraint = index[1]!;
    return out;
  }
  for (const part of detail.split(',')) {
    const dot = part.trim().indexOf('.');
    if (dot < 0) continue;
    out.table ??= part.trim().slice(0, dot);
    out.columns.push(part.trim().slice(dot + 1));
  }
  return out;
}

/** Whether `e` is a uniqueness failure on `table` covering exactly `columns` (one or several). */
export function isUniqueViolation(e: unknown, table: string, ...columns: string[]): boolean {
  const v = constraintViolation(e);
  return (
    v !== null &&
    v.kind === 'unique' &&
    v.table === table &&
    v.columns.length === columns.length &&
    columns.every((c, i) => v.columns[i] === c)
  );
}
