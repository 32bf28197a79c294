import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

/**
 * The browser apps' build (web/dist, made by scripts/build-web.ts): its manifest and files,
 * read once into memory, served from `/assets/<name>` precompressed (brotli or gzip by the
 * client's Accept-Encoding), with a strong ETag per encoding and `Cache-Control: immutable`
 * (every name carries its content hash). Inside the compiled executable the files are
 * embedded (packaging/entry.ts hands them over); from a checkout they come from web/dist.
 */

export type WebAppName = 'console' | 'admin' | 'portal';

export interface WebManifest {
  source: string;
  apps: Record<WebAppName, { scripts: string[]; styles: string[]; preload: string[] }>;
  files: Record<string, { type: string; size: number; gzip: number; br: number; etag: string }>;
}

interface Asset {
  type: string;
  etag: string;
  raw: Uint8Array;
  gzip: Uint8Array;
  br: Uint8Array;
}

export interface WebBuild {
  manifest: WebManifest;
  /** Where it came from (a folder, or `embedded`). */
  from: string;
  asset(name: string): Asset | undefined;
}

/** The checkout's build folder. */
export const WEB_DIST = join(import.meta.dir, '..', '..', 'web', 'dist');

function fromReader(
  manifest: WebManifest,
  from: string,
  read: (name: string) => Uint8Array | null,
): WebBuild {
  const cache = new Map<string, Asset>();
  return {
    manifest,
    from,
    asset(name) {
      const hit = cache.get(name);
      if (hit) return hit;
      const meta = Object.hasOwn(manifest.files, name) ? manifest.files[name] : undefined;
      if (!meta) return undefined;
      const raw = read(name);
      const gzip = read(`${name}.gz`);
      const br = read(`${name}.br`);
      if (!raw || !gzip || !br) return undefined;
      const a = { type: meta.type, etag: meta.etag, raw, gzip, br };
      cache.set(name, a);
      return a;
    },
  };
}

/** The web build's files embedded in the executable (name → embedded path), set by packaging/entry.ts. */
let embedded: Record<string, string> | null = null;

/** Called by the executable's entry point with the embedded files of the web build. */
export function useEmbeddedWeb(files: Record<string, string>): void {
  embedded = files;
}

function embeddedBuild(): WebBuild | null {
  const files = embedded;
  if (!files?.['manifest.json']) return null;
  const read = (n: string) => {
    const p = Object.hasOwn(files, n) ? files[n] : undefined;
    return p ? new Uint8Array(readFileSync(p)) : null;
  };
  const manifest = JSON.parse(new TextDecoder().decode(read('manifest.json')!)) as WebManifest;
  return fromReader(manifest, 'embedded', read);
}

/** Reads the build from a folder; null when there is none. */
export function folderBuild(dir: string): WebBuild | null {
  const mf = join(dir, 'manifest.json');
  if (!existsSync(mf)) return null;
  const manifest = JSON.parse(readFileSync(mf, 'utf8')) as WebManifest;
  return fromReader(manifest, dir, (n) => {
    try {
      return new Uint8Array(readFileSync(join(dir, n)));
    } catch {
      return null;
    }
  });
}

/** The build this process serves: embedded, else the checkout's web/dist; null if neither. */
export async function loadWebBuild(dir = WEB_DIST): Promise<WebBuild | null> {
  return embeddedBuild() ?? folderBuild(dir);
}

/** Which encoding to send: brotli, gzip or none, by the client's Accept-Encoding (q=0 refuses). */
export function pickEncoding(acceptEncoding: string | null): 'br' | 'gzip' | null {
  const offered = new Map<string, number>();
  for (const part of (acceptEncoding ?? '').split(',')) {
    const [token, ...params] = part.trim().toLowerCase().split(';');
    if (!token) continue;
    const q = params.map((p) => p.trim()).find((p) => p.startsWith('q='));
    offered.set(token, q ? Number(q.slice(2)) || 0 : 1);
  }
  const ok = (e: string) => (offered.get(e) ?? offered.get('*') ?? 0) > 0;
  if (ok('br')) return 'br';
  if (ok('gzip')) return 'gzip';
  return null;
}

/** `GET /assets/<name>`: the file in the best encoding the client takes; 304 when unchanged. */
export function assetResponse(build: WebBuild | null, name: string, request: Request): Response {
  const a = build?.asset(name);
  if (!a) {
    return Response.json(
      { error: { code: 'asset.not_found', message: `no asset named ${name}` } },
      { status: 404, headers: { 'cache-control': 'no-store', 'x-content-type-options': 'nosniff' } },
    );
  }
  const enc = pickEncoding(request.headers.get('accept-encoding'));
  const body = enc === 'br' ? a.br : enc === 'gzip' ? a.gzip : a.raw;
  // One strong validator per representation (RFC 9110 §8.8.3): the encodings differ in bytes.
  const etag = enc ? `${a.etag.slice(0, -1)}-${enc}"` : a.etag;
  const headers: Record<string, string> = {
    'content-type': a.type,
    'cache-control': 'public, max-age=31536000, immutable',
    etag,
    vary: 'Accept-Encoding',
    'x-content-type-options': 'nosniff',
    'cross-origin-resource-policy': 'same-origin',
  };
  if (enc) headers['content-encoding'] = enc;
  const inm = request.headers.get('if-none-match');
  if (inm?.split(',').some((t) => t.trim() === etag || t.trim() === `W/${etag}`))
    return new Response(null, { status: 304, headers });
  return new Response(request.method === 'HEAD' ? null : (body as Uint8Array<ArrayBuffer>), { headers });
}
