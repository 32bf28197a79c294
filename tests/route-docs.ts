import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { operatorRoutes, routePermissionsOf } from '../src/server/operator.routes.ts';
import { platformRoutes, routePermissions } from '../src/server/platform.routes.ts';
import { ROOT } from './helpers.ts';

/*
 * The route reference of the docs: every route of the platform and operator apps (method, path,
 * the host it is served on, its declared permission, its summary), each in one of three docs, in a
 * table between the markers below. `tests/route-docs.test.ts` fails when a route is missing there
 * or a row names no route; `bun tests/route-docs.ts --write` rewrites the tables from the code.
 */

/** The docs that carry the route reference. */
export const ROUTE_DOCS = ['docs/operations.md', 'docs/identity.md', 'docs/ai.md', 'docs/agents.md'] as const;
export type RouteDoc = (typeof ROUTE_DOCS)[number];

export const BEGIN =
  '<!-- routes: generated from the route tables by `bun tests/route-docs.ts --write`; checked by tests/route-docs.test.ts -->';
export const END = '<!-- /routes -->';

/** One route as the docs list it. */
export interface RouteRow {
  host: 'platform' | 'operator';
  method: string;
  path: string;
  permission: string;
  summary: string;
}

/** `host METHOD path`: what identifies a route across both apps. */
export const routeKey = (r: Pick<RouteRow, 'host' | 'method' | 'path'>) => `${r.host} ${r.method} ${r.path}`;

/** Every route of both apps, from their own route tables. */
export function appRoutes(): RouteRow[] {
  const out: RouteRow[] = [];
  const add = (
    host: RouteRow['host'],
    app: { routes: { method: string; path: string; hooks: unknown }[] },
    perms: Map<string, string>,
  ) => {
    for (const r of app.routes) {
      const detail = (r.hooks as { detail?: { summary?: string } } | undefined)?.detail;
      out.push({
        host,
        method: r.method,
        path: r.path,
        permission: perms.get(`${r.method} ${r.path}`) ?? '(none)',
        summary: detail?.summary ?? '',
      });
    }
  };
  const platform = platformRoutes({ ai: {} } as never);
  add('platform', platform, routePermissions(platform));
  const operator = operatorRoutes({} as never);
  add('operator', operator, routePermissionsOf(operator));
  return out;
}

/**
 * Which doc lists a route: agents, conversations, federation, referrals and the creator's view in agents.md; the AI router and budgets in ai.md; sign-in, users, keys, SSO, SCIM,
 * MFA, settings and audit of a platform, and the console's own sign-in, in identity.md; the rest
 * (pages, health, the operator API) in operations.md.
 */
export function docOf(r: Pick<RouteRow, 'host' | 'path'>): RouteDoc {
  if (r.host === 'platform') {
    if (r.path.startsWith('/v1/') || r.path.startsWith('/api/v1/ai/')) return 'docs/ai.md';
    if (
      [
        '/api/v1/agents',
        '/api/v1/conversations',
        '/api/v1/federation',
        '/api/v1/referrals',
        '/api/v1/creator',
      ].some((p) => r.path.startsWith(p))
    )
      return 'docs/agents.md';
    if (r.path.startsWith('/api/v1/') && !['/api/v1/openapi.json', '/api/v1/docs'].includes(r.path))
      return 'docs/identity.md';
    if (r.path.startsWith('/sso/') || r.path.startsWith('/scim/')) return 'docs/identity.md';
    return 'docs/operations.md';
  }
  if (r.path.startsWith('/sso/') || /^\/_operator\/api\/(sso\/|me$|logout$|auth\/)/.test(r.path))
    return 'docs/identity.md';
  return 'docs/operations.md';
}

const ROW_RE = /^\|\s*`([A-Z]+) (\/[^`]*)`\s*\|\s*(platform|operator)\s*\|\s*`([^`]+)`\s*\|/;

/** The rows of a doc's route tables (any table row of that shape, generated or written by hand). */
export function documentedRows(text: string): Omit<RouteRow, 'summary'>[] {
  const out: Omit<RouteRow, 'summary'>[] = [];
  for (const line of text.split('\n')) {
    const m = ROW_RE.exec(line);
    if (m) out.push({ method: m[1]!, path: m[2]!, host: m[3] as RouteRow['host'], permission: m[4]! });
  }
  return out;
}

const cell = (s: string) => s.replaceAll('|', '\\|');

/** The markdown table of `rows`, in the apps' order. */
export function routeTable(rows: readonly RouteRow[]): string {
  return [
    '| route | host | permission | what it does |',
    '| ----- | ---- | ---------- | ------------ |',
    ...rows.map(
      (r) => `| \`${r.method} ${r.path}\` | ${r.host} | \`${r.permission}\` | ${cell(r.summary)} |`,
    ),
  ].join('\n');
}

/** A doc's text with its generated table replaced by the routes it lists now. */
export function withRouteTable(text: string, rows: readonly RouteRow[], doc: string): string {
  const block = `${BEGIN}\n\n${routeTable(rows)}\n\n${END}`;
  const a = text.indexOf(BEGIN);
  const b = text.indexOf(END);
  if (a === -1 || b === -1) throw new Error(`${doc} has no route table markers (${BEGIN} … ${END})`);
  return text.slice(0, a) + block + text.slice(b + END.length);
}

if (import.meta.main) {
  const rows = appRoutes();
  for (const doc of ROUTE_DOCS) {
    const path = join(ROOT, doc);
    const text = readFileSync(path, 'utf8');
    const mine = rows.filter((r) => docOf(r) === doc);
    if (process.argv.includes('--write')) writeFileSync(path, withRouteTable(text, mine, doc));
    else {
      const listed = new Set(documentedRows(text).map((r) => `${routeKey(r)} ${r.permission}`));
      const missing = mine.filter((r) => !listed.has(`${routeKey(r)} ${r.permission}`));
      if (missing.length) console.log(`${doc}: ${missing.length} routes to add (run with --write)`);
    }
  }
  // The tables padded as the formatter keeps every markdown table.
  if (process.argv.includes('--write'))
    Bun.spawnSync([join(ROOT, 'node_modules', '.bin', 'biome'), 'format', '--write', ...ROUTE_DOCS], {
      cwd: ROOT,
      stdout: 'inherit',
      stderr: 'inherit',
    });
}
