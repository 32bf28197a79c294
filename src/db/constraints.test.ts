import { Database } from 'bun:sqlite';
import { describe, expect, test } from 'bun:test';
import { constraintViolation, isUniqueViolation } from './constraints.ts';

const db = new Database(':memory:');
db.exec(`PRAGMA foreign_keys = ON;
  CREATE TABLE p (id INTEGER PRIMARY KEY);
  CREATE TABLE t (
    a TEXT UNIQUE COLLATE NOCASE, b TEXT NOT NULL, c INT CHECK (c > 0), d INT REFERENCES p(id),
    e TEXT, f TEXT, CONSTRAINT c_small CHECK (c < 100));
  CREATE UNIQUE INDEX t_ef ON t (e, f);
  CREATE UNIQUE INDEX t_partial ON t (f) WHERE f > 'm';
  CREATE UNIQUE INDEX t_expr ON t (lower(e || b));
  INSERT INTO p VALUES (1);
  INSERT INTO t VALUES ('x', 'b', 1, 1, '1', '2');
  INSERT INTO t VALUES ('y', 'b', 1, NULL, 'n', 'z');`);

const failure = (sql: string): unknown => {
  try {
    db.run(sql);
  } catch (e) {
    return e;
  }
  throw new Error(`no failure: ${sql}`);
};

describe('constraint failures, read by code and constraint name', () => {
  test('each kind, with its table, columns or constraint', () => {
    expect(constraintViolation(failure("INSERT INTO t (a, b, c) VALUES ('X', 'b', 1)"))).toEqual({
      kind: 'unique',
      table: 't',
      columns: ['a'],
      constraint: null,
      code: 'SQLITE_CONSTRAINT_UNIQUE',
    });
    expect(
      constraintViolation(failure("INSERT INTO t (a, b, c, e, f) VALUES ('q', 'c', 1, '1', '2')")),
    ).toMatchObject({ kind: 'unique', table: 't', columns: ['e', 'f'] });
    // A partial unique index on a column names its column as a plain one does.
    expect(
      constraintViolation(failure("INSERT INTO t (a, b, c, f) VALUES ('r', 'c', 1, 'z')")),
    ).toMatchObject({
      kind: 'unique',
      table: 't',
      columns: ['f'],
    });
    // A unique index on an expression names only itself.
    expect(
      constraintViolation(failure("INSERT INTO t (a, b, c, e) VALUES ('s', 'B', 1, '1')")),
    ).toMatchObject({
      kind: 'unique',
      table: null,
      columns: [],
      constraint: 't_expr',
    });
    expect(constraintViolation(failure('INSERT INTO p VALUES (1)'))).toMatchObject({
      kind: 'unique',
      table: 'p',
      columns: ['id'],
      code: 'SQLITE_CONSTRAINT_PRIMARYKEY',
    });
    expect(constraintViolation(failure("INSERT INTO t (a, c) VALUES ('u', 1)"))).toMatchObject({
      kind: 'not_null',
      table: 't',
      columns: ['b'],
    });
    expect(constraintViolation(failure("INSERT INTO t (a, b, c) VALUES ('v', 'b', 0)"))).toMatchObject({
      kind: 'check',
      constraint: 'c > 0',
    });
    expect(constraintViolation(failure("INSERT INTO t (a, b, c) VALUES ('w', 'b', 200)"))).toMatchObject({
      kind: 'check',
      constraint: 'c_small',
    });
    expect(constraintViolation(failure("INSERT INTO t (a, b, c, d) VALUES ('w', 'b', 1, 9)"))).toEqual({
      kind: 'foreign_key',
      table: null,
      columns: [],
      constraint: null,
      code: 'SQLITE_CONSTRAINT_FOREIGNKEY',
    });
  });

  test('anything else is no violation, whatever its message says', () => {
    expect(constraintViolation(failure('SELECT * FROM nowhere'))).toBeNull();
    expect(constraintViolation(new Error('UNIQUE constraint failed: t.a'))).toBeNull();
    expect(constraintViolation('UNIQUE constraint failed: t.a')).toBeNull();
    expect(constraintViolation(undefined)).toBeNull();
  });

  test('isUniqueViolation matches the table and exactly the columns', () => {
    const e = failure("INSERT INTO t (a, b, c) VALUES ('x', 'b', 1)");
    expect(isUniqueViolation(e, 't', 'a')).toBe(true);
    expect(isUniqueViolation(e, 't', 'b')).toBe(false);
    expect(isUniqueViolation(e, 'p', 'a')).toBe(false);
    expect(isUniqueViolation(e, 't', 'a', 'b')).toBe(false);
    const ef = failure("INSERT INTO t (a, b, c, e, f) VALUES ('q', 'c', 1, '1', '2')");
    expect(isUniqueViolation(ef, 't', 'e', 'f')).toBe(true);
    expect(isUniqueViolation(ef, 't', 'e')).toBe(false);
    expect(isUniqueViolation(failure("INSERT INTO t (a, c) VALUES ('u', 1)"), 't', 'b')).toBe(false);
  });
});
