/**
 * Prints the table of blueprint settings and their enforcement (src/tenancy/enforcement.ts), or
 * with `--write` puts it into docs/blueprint.md between its markers, or with `--check` exits 1
 * when the docs' table is not what this prints.
 *
 *   bun run scripts/blueprint-settings.ts [--write | --check]
 */
import { join } from 'node:path';
import { renderEnforcementTable, withEnforcementTable } from '../src/tenancy/enforcement.ts';

const DOC = join(import.meta.dir, '..', 'docs', 'blueprint.md');
const mode = process.argv[2];

if (mode === '--write' || mode === '--check') {
  const doc = await Bun.file(DOC).text();
  const next = withEnforcementTable(doc);
  if (mode === '--write') {
    if (next !== doc) await Bun.write(DOC, next);
    console.log(next === doc ? 'docs/blueprint.md is up to date' : 'docs/blueprint.md updated');
  } else if (next !== doc) {
    console.error(
      'docs/blueprint.md: the settings table is stale; run bun run scripts/blueprint-settings.ts --write',
    );
    process.exit(1);
  }
} else if (mode === undefined) {
  console.log(renderEnforcementTable());
} else {
  console.error('usage: bun run scripts/blueprint-settings.ts [--write | --check]');
  process.exit(2);
}
