import { describe, expect, test } from 'bun:test';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { ROOT } from './helpers.ts';
import { appRoutes, documentedRows, ROUTE_DOCS, routeKey, routeTable } from './route-docs.ts';

// Docs that match the code: every route of the platform and operator apps (their own route
// tables, the same walk as tests/openapi.test.ts) is listed, with its declared permission, in
// docs/operations.md, docs/identity.md or docs/ai.md, and every listed route exists.
// `bun tests/route-docs.ts --write` regenerates the tables.
const documented = ROUTE_DOCS.flatMap((doc) =>
  documentedRows(readFileSync(join(ROOT, doc), 'utf8')).map((r) => ({ ...r, doc })),
);
const routes = appRoutes();

describe('the route reference in the docs', () => {
  test('walks both apps: more than 100 routes, each with a permission', () => {
    expect(routes.length).toBeGreaterThan(100);
    expect(routes.filter((r) => r.permission === '(none)')).toEqual([]);
  });

  test('every route (host, method, path) is documented with its permission', () => {
    const byKey = new Map(documented.map((r) => [routeKey(r), r]));
    const missing = routes.filter((r) => !byKey.has(routeKey(r)));
    // The rows to add (or run `bun tests/route-docs.ts --write`).
    expect(routeTable(missing).split('\n').slice(2)).toEqual([]);
    const wrong = routes
      .filter((r) => byKey.has(routeKey(r)) && byKey.get(routeKey(r))!.permission !== r.permission)
      .map(
        (r) => `${routeKey(r)}: documented ${byKey.get(routeKey(r))!.permission}, declared ${r.permission}`,
      );
    expect(wrong).toEqual([]);
  });

  test('every documented route exists, once', () => {
    const keys = new Set(routes.map(routeKey));
    expect(documented.filter((r) => !keys.has(routeKey(r))).map((r) => `${r.doc}: ${routeKey(r)}`)).toEqual(
      [],
    );
    const seen = new Map<string, number>();
    for (const r of documented) seen.set(routeKey(r), (seen.get(routeKey(r)) ?? 0) + 1);
    expect([...seen].filter(([, n]) => n > 1).map(([k]) => k)).toEqual([]);
  });

  test('a table row is read as a route only in the documented shape', () => {
    const text = [
      '| `POST /api/v1/users` | platform | `users:write` | Create a user |',
      '| `GET /api/v1/users` | `users:read` | no host column |',
      '`DELETE /api/v1/api-keys/:id` in prose',
    ].join('\n');
    expect(documentedRows(text)).toEqual([
      { method: 'POST', path: '/api/v1/users', host: 'platform', permission: 'users:write' },
    ]);
  });
});

// The docs' own links: every relative link in README, CONTRIBUTING, ARCHITECTURE and docs/ names
// a file (or folder) of this repository, and an anchor names a heading of that file.
describe('links between the docs', () => {
  const files = [
    'README.md',
    'CONTRIBUTING.md',
    'ARCHITECTURE.md',
    ...readdirSync(join(ROOT, 'docs')).map((f) => `docs/${f}`),
  ].filter((f) => f.endsWith('.md'));
  /** GitHub's anchor of a heading: lowercase, punctuation dropped, spaces to hyphens. */
  const slug = (heading: string) =>
    heading
      .toLowerCase()
      .replace(/[^a-z0-9 _-]/g, '')
      .replace(/ /g, '-');
  const anchorsOf = (file: string) =>
    readFileSync(file, 'utf8')
      .split('\n')
      .filter((l) => /^#{1,6} /.test(l))
      .map((l) => slug(l.replace(/^#+ /, '')));

  test('every relative link resolves inside the repository', () => {
    const broken: string[] = [];
    for (const f of files) {
      const text = readFileSync(join(ROOT, f), 'utf8');
      for (const m of text.matchAll(/\]\(([^)\s]+)\)/g)) {
        const target = m[1]!;
        if (/^[a-z]+:/.test(target)) continue;
        const [path, anchor] = target.split('#') as [string, string | undefined];
        const abs = path ? join(ROOT, dirname(f), path) : join(ROOT, f);
        if (relative(ROOT, abs).startsWith('..') || !existsSync(abs)) broken.push(`${f}: ${target}`);
        else if (anchor && abs.endsWith('.md') && !anchorsOf(abs).includes(anchor))
          broken.push(`${f}: ${target} (no such heading)`);
      }
    }
    expect(broken).toEqual([]);
  });

  test('the anchor rule matches GitHub on the headings linked to', () => {
    expect(slug('Reaching `*.localhost` platforms from Node')).toBe('reaching-localhost-platforms-from-node');
    expect(slug('Where the code departs from the shared design, and why')).toBe(
      'where-the-code-departs-from-the-shared-design-and-why',
    );
  });
});
