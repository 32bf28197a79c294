/**
 * The uploaded logo: its bytes are checked to be a raster image (PNG, JPEG, GIF or WebP, by
 * their signature, never by the declared type: an SVG or HTML file could carry script) and
 * stored in the platform's database under a name made of their hash; the blueprint's
 * branding.logo then points at `/brand/<name>`. The favicon and the web manifest use it.
 */
import { createHash } from 'node:crypto';
import { AppError } from '../shared/errors.ts';

/** The largest logo taken (the request's body limit is a little above). */
export const MAX_LOGO_BYTES = 256 * 1024;

/** The local logo URLs the blueprint accepts (docs/blueprint.md). */
export const LOCAL_LOGO_RE = /^\/brand\/(logo-[0-9a-f]{16}\.(?:png|jpg|gif|webp))$/;

const KINDS: { ext: string; type: string; test: (b: Uint8Array) => boolean }[] = [
  {
    ext: 'png',
    type: 'image/png',
    test: (b) => [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a].every((x, i) => b[i] === x),
  },
  { ext: 'jpg', type: 'image/jpeg', test: (b) => b[0] === 0xff && b[1] === 0xd8 && b[2] === 0xff },
  {
    ext: 'gif',
    type: 'image/gif',
    test: (b) =>
      String.fromCharCode(...b.subarray(0, 6)) === 'GIF87a' ||
      String.fromCharCode(...b.subarray(0, 6)) === 'GIF89a',
  },
  {
    ext: 'webp',
    type: 'image/webp',
    test: (b) =>
      String.fromCharCode(...b.subarray(0, 4)) === 'RIFF' &&
      String.fromCharCode(...b.subarray(8, 12)) === 'WEBP',
  },
];

/** What an uploaded logo is, by its bytes: its extension, type and stored name. */
export function checkLogo(bytes: Uint8Array): { name: string; type: string } {
  if (bytes.byteLength === 0)
    throw new AppError('brand.logo_missing', 'the request body must be the logo image', 400, [
      { path: '/body', reason: 'empty' },
    ]);
  if (bytes.byteLength > MAX_LOGO_BYTES)
    throw new AppError(
      'brand.logo_too_large',
      `the logo is ${Math.ceil(bytes.byteLength / 1024)} KB: at most ${MAX_LOGO_BYTES / 1024} KB`,
      413,
      [{ path: '/body', reason: `at most ${MAX_LOGO_BYTES} bytes` }],
    );
  const kind = KINDS.find((k) => k.test(bytes));
  if (!kind)
    throw new AppError(
      'brand.logo_type',
      'the logo must be a PNG, JPEG, GIF or WebP image (SVG and other types are refused)',
      415,
      [{ path: '/body', reason: 'not a PNG, JPEG, GIF or WebP image' }],
    );
  const hash = createHash('sha256').update(bytes).digest('hex').slice(0, 16);
  return { name: `logo-${hash}.${kind.ext}`, type: kind.type };
}

/** The stored asset's name when `logo` is a local logo URL, else null. */
export function localLogoName(logo: string | undefined | null): string | null {
  return logo ? (LOCAL_LOGO_RE.exec(logo)?.[1] ?? null) : null;
}
