import { describe, expect, test } from 'bun:test';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Glob } from 'bun';
import { ROOT } from './helpers.ts';

// The dependency rule of ARCHITECTURE.md "Repositories own the SQL": only `*.repository.ts`,
// `src/db/` and `src/audit/` run statements on a Database. Services and routes call
// repository functions (a Database and typed arguments in, typed rows out); `db.transaction`
// stays with the service that owns the multi-step write. A text scan, like the one-clock scan
// in src/shared/time.test.ts: it names file and line.

/** Where SQL may run: repositories, the database layer, the audit chain. */
const OWNERS = [/\.repository\.ts$/, /^src\/db\//, /^src\/audit\//];

/**
 * The rest that stays, each with its reason. An entry that matches nothing fails the test, so
 * the list only shrinks.
 */
const ALLOWED: { path: string; why: string }[] = [
  // Empty: every statement outside the owners has moved. onnxruntime's `session.run` and a
  // reconcile rule's `rule.run` are no SQL and the scan does not take them for it.
];

/**
 * A call that runs SQL: `.query(`/`.query<` and `.prepare(` (every Statement comes from one of
 * them, so its `.run`/`.get`/`.all` is caught there), and a Database's own `.exec(`/`.run(`
 * when handed SQL text or called on a database handle (`RegExp.exec(s)`, onnxruntime's
 * `session.run(feeds)` or a rule's `rule.run(row)` are not).
 */
const SQL_CALL =
  /\.(?:query|prepare)\s*[<(]|\.(?:exec|run)\s*\(\s*['"`]|\b(?:db|database|control|tenant|conn|this\.#control|this\.#db)\s*\.(?:exec|run)\s*\(/g;

/** Code only: `//` comments and block-comment lines become blanks (line numbers kept). */
function code(text: string): string {
  return text
    .split('\n')
    .map((l) => (/^\s*(\*|\/\*)/.test(l) ? '' : l.replace(/(^|[^:'"`\\])\/\/.*$/, '$1')))
    .join('\n');
}

/** `line: call` for each SQL call in a source text. */
export function sqlCalls(text: string): { line: number; call: string }[] {
  const src = code(text);
  const out: { line: number; call: string }[] = [];
  for (const m of src.matchAll(SQL_CALL)) {
    const line = src.slice(0, m.index).split('\n').length;
    out.push({ line, call: m[0].replace(/\s+/g, '') });
  }
  return out;
}

const owned = (path: string) => OWNERS.some((re) => re.test(path));

/** Every SQL call in src/ outside its owners, as `file:line: call`. */
function strayQueries(): { path: string; line: number; call: string }[] {
  const found: { path: string; line: number; call: string }[] = [];
  for (const path of new Glob('src/**/*.{ts,tsx}').scanSync({ cwd: ROOT })) {
    const p = path.split('\\').join('/');
    if (p.endsWith('.test.ts') || owned(p)) continue;
    for (const c of sqlCalls(readFileSync(join(ROOT, p), 'utf8'))) found.push({ path: p, ...c });
  }
  return found;
}

describe('repositories own the SQL', () => {
  test('the scan catches the forms SQL takes in this code, and leaves regular expressions alone', () => {
    // Lines as they stood in src/identity/sessions.ts, src/app/keyring.ts and
    // src/server/metrics.ts before the SQL moved into repositories.
    const before = [
      "  const session = db.query<SessionRow, [string]>('SELECT * FROM sessions WHERE id_hash = ?').get(idHash);",
      "    db.query('DELETE FROM sessions WHERE id_hash = ?').run(idHash);",
      '    control.exec(',
      "      'CREATE TABLE IF NOT EXISTS data_keys (id TEXT PRIMARY KEY)',",
      '    );',
      '  const update = db.prepare(`UPDATE outbox SET body = ? WHERE id = ?`);',
      '  return db',
      "    .query('INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT(key) DO NOTHING')",
      '    .run(STORED_KEY, sha256Hex(token)).changes;',
      "  db.exec('PRAGMA wal_checkpoint(TRUNCATE)');",
      "  db.run('DELETE FROM secrets_upgrade');",
    ].join('\n');
    expect(sqlCalls(before)).toEqual([
      { line: 1, call: '.query<' },
      { line: 2, call: '.query(' },
      { line: 3, call: 'control.exec(' },
      { line: 6, call: '.prepare(' },
      { line: 8, call: '.query(' },
      { line: 10, call: 'db.exec(' },
      { line: 11, call: 'db.run(' },
    ]);
    const notSql = [
      'const m = /^Bearer\\s+(\\S+)$/i.exec(auth);',
      'const n = NUMBER.exec(s);',
      'const limit = ctx.query.limit;',
      '// db.query("SELECT 1") in a comment',
      ' * db.query(...) in a doc comment',
      "const url = 'http://x/run(';",
      'return { out: await m.session.run(feeds), seq };',
      '      rule.run(row, ctx);',
      '  const m = DATA_URI.exec(url);',
    ].join('\n');
    expect(sqlCalls(notSql)).toEqual([]);
  });

  test('the old code fails the rule: a service with SQL is named with file and line', () => {
    const path = 'src/identity/sessions/sessions.ts';
    const old =
      "export function destroySession(db: Database, token: string): void {\n  db.query('DELETE FROM sessions WHERE id_hash = ?').run(sha256Hex(token));\n}";
    expect(owned(path)).toBe(false);
    expect(sqlCalls(old).map((c) => `${path}:${c.line}: ${c.call}`)).toEqual([`${path}:2: .query(`]);
  });

  test('only *.repository.ts, src/db/ and src/audit/ run SQL (and the commented allow-list)', () => {
    const found = strayQueries();
    const allowed = (p: string) => ALLOWED.some((a) => a.path === p);
    const stray = found.filter((f) => !allowed(f.path)).map((f) => `${f.path}:${f.line}: ${f.call}`);
    expect(stray).toEqual([]);
    // Each entry still matches something (keep the list true).
    const stale = ALLOWED.filter((a) => !found.some((f) => f.path === a.path)).map((a) => a.path);
    expect(stale).toEqual([]);
  });

  test('the scan sees the owners at all', () => {
    const owners: string[] = [];
    for (const path of new Glob('src/**/*.ts').scanSync({ cwd: ROOT }))
      if (
        !path.endsWith('.test.ts') &&
        owned(path) &&
        sqlCalls(readFileSync(join(ROOT, path), 'utf8')).length
      )
        owners.push(path);
    expect(owners.length).toBeGreaterThan(5);
  });
});
