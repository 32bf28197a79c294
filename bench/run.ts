/**
 * The benchmark dispatcher: `bun bench/run.ts <name> [flags]` (or `npm run bench -- <name>`)
 * runs `bench/<name>.bench.ts`'s exported `main(args)`. With no name it lists the benchmarks.
 *
 * A benchmark module exports `main(args: string[]): Promise<number | undefined>` (the
 * exit code; benchmarks report, so they return 0 unless they could not run at all) and may
 * export `description`, one line shown in the list.
 */
import { readdirSync } from 'node:fs';
import { join } from 'node:path';

const SUFFIX = '.bench.ts';

/** What a benchmark module exports. */
export interface BenchModule {
  main(args: string[]): Promise<number | undefined>;
  description?: string;
}

function benchmarks(): string[] {
  return readdirSync(import.meta.dir)
    .filter((f) => f.endsWith(SUFFIX))
    .map((f) => f.slice(0, -SUFFIX.length))
    .sort();
}

async function describe(name: string): Promise<string> {
  try {
    const m = (await import(join(import.meta.dir, `${name}${SUFFIX}`))) as Partial<BenchModule>;
    return m.description ?? '';
  } catch (e) {
    return `(cannot load: ${(e as Error).message})`;
  }
}

async function list(to: (line: string) => void): Promise<void> {
  const names = benchmarks();
  to('Usage: bun bench/run.ts <benchmark> [flags]   (npm run bench -- <benchmark> [flags])');
  to('       bun bench/run.ts <benchmark> --help    for its flags');
  to('');
  to('Benchmarks:');
  if (names.length === 0) to('  (none)');
  const width = Math.max(0, ...names.map((n) => n.length));
  for (const n of names) to(`  ${n.padEnd(width)}  ${await describe(n)}`);
}

async function run(argv: string[]): Promise<number> {
  const [name, ...args] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'list') {
    await list((l) => console.log(l));
    return 0;
  }
  if (!/^[a-z0-9][a-z0-9_-]*$/.test(name) || !benchmarks().includes(name)) {
    console.error(`unknown benchmark '${name}'`);
    await list((l) => console.error(l));
    return 2;
  }
  const mod = (await import(join(import.meta.dir, `${name}${SUFFIX}`))) as Partial<BenchModule>;
  if (typeof mod.main !== 'function') {
    console.error(`bench/${name}${SUFFIX} does not export main(args)`);
    return 2;
  }
  return (await mod.main(args)) ?? 0;
}

if (import.meta.main) {
  process.exit(await run(process.argv.slice(2)));
}
