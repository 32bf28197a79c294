// Builds dist/soulfra: one executable with the runtime, migrations, package.json and the web
// build (console, admin, portal: built here first) embedded.
// Run with `npm run build`. The executable runs from any folder; two native libraries go beside
// it when their features are used: sqlite-vec's `vec0.so` (agents' knowledge, copied here) and
// onnxruntime's `libonnxruntime.so.1` (ONNX providers, see docs/ai.md).
import { copyFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { getLoadablePath } from 'sqlite-vec';
import { buildWeb } from '../scripts/build-web.ts';
import { writeWebEmbed } from '../scripts/web-embed.ts';

const root = join(import.meta.dir, '..');
const outfile = join(root, 'dist', 'soulfra');
mkdirSync(join(root, 'dist'), { recursive: true });
const started = performance.now();
await buildWeb({ quiet: true });
writeWebEmbed();
const result = await Bun.build({
  entrypoints: [join(root, 'packaging', 'entry.ts')],
  compile: { outfile },
  minify: true,
  sourcemap: 'linked',
  bytecode: true,
  target: 'bun',
});
if (!result.success) {
  for (const log of result.logs) console.error(log);
  process.exit(1);
}
copyFileSync(getLoadablePath(), join(root, 'dist', 'vec0.so'));
const size = Bun.file(outfile).size;
console.log(
  `built ${outfile} (${(size / 1024 / 1024).toFixed(1)} MiB) in ${((performance.now() - started) / 1000).toFixed(1)} s`,
);
