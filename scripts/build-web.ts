/**
 * Builds the browser apps (web/console, web/admin, web/portal) with Bun's bundler into
 * web/dist: minified, content-hashed names, shared chunks split out, each file precompressed
 * (brotli and gzip) beside it, and `manifest.json` saying, per app, which scripts and styles
 * its page loads first (entry plus the chunks it imports statically) and every file's sizes.
 *
 *   bun scripts/build-web.ts              build
 *   bun scripts/build-web.ts --if-stale   build only when web/ changed since the last build
 *   bun scripts/build-web.ts --json       print the manifest's sizes as JSON
 */
import { createHash } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { brotliCompressSync, constants, gzipSync } from 'node:zlib';

export const APPS = ['console', 'admin', 'portal'] as const;
export type WebApp = (typeof APPS)[number];

const ROOT = join(import.meta.dir, '..');
export const WEB_DIR = join(ROOT, 'web');
export const DIST_DIR = join(WEB_DIR, 'dist');

export interface ManifestFile {
  type: string;
  size: number;
  gzip: number;
  br: number;
  etag: string;
}

export interface WebManifest {
  /** Hash of the sources the build came from (for --if-stale). */
  source: string;
  apps: Record<WebApp, { scripts: string[]; styles: string[]; preload: string[] }>;
  files: Record<string, ManifestFile>;
}

/** Every source file under web/ (not the build), sorted, for the staleness hash. */
function sources(dir = WEB_DIR): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (p === DIST_DIR) continue;
    if (statSync(p).isDirectory()) out.push(...sources(p));
    else out.push(p);
  }
  return out.sort();
}

/** A hash of web/'s sources, this script and the bundler's version. */
export function sourceHash(): string {
  const h = createHash('sha256');
  h.update(Bun.version);
  h.update(readFileSync(import.meta.path));
  for (const f of sources()) {
    h.update(relative(WEB_DIR, f));
    h.update(readFileSync(f));
  }
  for (const pkg of ['preact', '@preact/signals', 'uplot']) {
    try {
      h.update(readFileSync(join(ROOT, 'node_modules', pkg, 'package.json')));
    } catch {
      // Not installed: the build will say so.
    }
  }
  return h.digest('hex').slice(0, 16);
}

export function readManifest(dir = DIST_DIR): WebManifest | null {
  try {
    return JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8')) as WebManifest;
  } catch {
    return null;
  }
}

const TYPES: Record<string, string> = {
  js: 'text/javascript; charset=utf-8',
  css: 'text/css; charset=utf-8',
  svg: 'image/svg+xml',
  png: 'image/png',
  woff2: 'font/woff2',
  json: 'application/json',
};

/** The static imports of a built module (`import{..}from"./chunk-x.js"`, `import"./x.js"`), not `import()`. */
function staticImports(code: string): string[] {
  const out = new Set<string>();
  const re = /(?:^|[;\s}])(?:import|export)\s*(?:[\w$*{}\s,]+?\s*from\s*)?["']\.\/([\w.-]+\.js)["']/g;
  for (const m of code.matchAll(re)) out.add(m[1]!);
  return [...out];
}

export async function buildWeb(opts: { quiet?: boolean } = {}): Promise<WebManifest> {
  const started = performance.now();
  rmSync(DIST_DIR, { recursive: true, force: true });
  mkdirSync(DIST_DIR, { recursive: true });
  const result = await Bun.build({
    entrypoints: APPS.flatMap((a) => [join(WEB_DIR, a, 'main.tsx'), join(WEB_DIR, a, 'style.css')]),
    root: WEB_DIR,
    outdir: DIST_DIR,
    target: 'browser',
    format: 'esm',
    splitting: true,
    minify: true,
    sourcemap: 'none',
    naming: { entry: '[dir]-[hash].[ext]', chunk: 'chunk-[hash].[ext]', asset: 'asset-[hash].[ext]' },
    define: { 'process.env.NODE_ENV': '"production"' },
    tsconfig: join(WEB_DIR, 'tsconfig.json'),
  } as Parameters<typeof Bun.build>[0]);
  if (!result.success) {
    for (const l of result.logs) console.error(l);
    throw new Error('web build failed');
  }
  const files: Record<string, ManifestFile> = {};
  const codeOf = new Map<string, string>();
  const apps = {} as WebManifest['apps'];
  for (const out of result.outputs) {
    const name = relative(DIST_DIR, out.path);
    const bytes = new Uint8Array(await out.arrayBuffer());
    const ext = name.split('.').pop() ?? '';
    const gz = gzipSync(bytes, { level: 9 });
    const br = brotliCompressSync(bytes, {
      params: { [constants.BROTLI_PARAM_QUALITY]: 11, [constants.BROTLI_PARAM_SIZE_HINT]: bytes.length },
    });
    writeFileSync(`${out.path}.gz`, gz);
    writeFileSync(`${out.path}.br`, br);
    files[name] = {
      type: TYPES[ext] ?? 'application/octet-stream',
      size: bytes.length,
      gzip: gz.length,
      br: br.length,
      etag: `"${createHash('sha256').update(bytes).digest('base64url').slice(0, 22)}"`,
    };
    if (ext === 'js') codeOf.set(name, new TextDecoder().decode(bytes));
    if (out.kind === 'entry-point' || (out.kind === 'asset' && ext === 'css')) {
      const app = APPS.find((a) => name.startsWith(`${a}-`));
      if (app) {
        apps[app] ??= { scripts: [], styles: [], preload: [] };
        if (ext === 'js') apps[app].scripts.push(name);
        else if (ext === 'css') apps[app].styles.push(name);
      }
    }
  }
  // Per app: the chunks its entry imports statically (recursively) are preloaded; its CSS.
  for (const app of APPS) {
    const a = apps[app];
    if (!a) throw new Error(`the build made no entry for ${app}`);
    const seen = new Set<string>();
    const walk = (f: string) => {
      for (const dep of staticImports(codeOf.get(f) ?? '')) {
        if (seen.has(dep)) continue;
        seen.add(dep);
        walk(dep);
      }
    };
    walk(a.scripts[0]!);
    a.preload = [...seen];
    if (a.scripts.length !== 1 || a.styles.length !== 1)
      throw new Error(`${app}: expected one script and one stylesheet entry, got ${a.scripts} ${a.styles}`);
  }
  const manifest: WebManifest = { source: sourceHash(), apps, files };
  writeFileSync(join(DIST_DIR, 'manifest.json'), `${JSON.stringify(manifest, null, 2)}\n`);
  if (!opts.quiet) {
    const ms = Math.round(performance.now() - started);
    console.log(
      `web build: ${Object.keys(files).length} files in ${ms} ms → ${relative(process.cwd(), DIST_DIR)}`,
    );
    for (const app of APPS) {
      const s = firstLoad(manifest, app);
      console.log(
        `  ${app.padEnd(8)} first load ${(s.gzip / 1024).toFixed(1)} KB gz (${s.files.length} scripts)`,
      );
    }
  }
  return manifest;
}

/** The gzipped bytes of every script a page loads before it is interactive. */
export function firstLoad(m: WebManifest, app: WebApp): { gzip: number; br: number; files: string[] } {
  const list = [...m.apps[app].scripts, ...m.apps[app].preload];
  return {
    files: list,
    gzip: list.reduce((n, f) => n + (m.files[f]?.gzip ?? 0), 0),
    br: list.reduce((n, f) => n + (m.files[f]?.br ?? 0), 0),
  };
}

/** Whether web/dist is missing or older than web/'s sources. */
export function isStale(): boolean {
  return readManifest()?.source !== sourceHash();
}

if (import.meta.main) {
  const args = new Set(process.argv.slice(2));
  if (args.has('--if-stale') && !isStale()) {
    if (!args.has('--quiet')) console.log('web build: up to date');
  } else {
    const m = await buildWeb({ quiet: args.has('--json') || args.has('--quiet') });
    if (args.has('--json'))
      console.log(JSON.stringify(Object.fromEntries(APPS.map((a) => [a, firstLoad(m, a)])), null, 2));
  }
}
