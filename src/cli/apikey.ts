import type { Command } from 'commander';
import { connect } from './client.ts';
import type { GlobalFlags, Output } from './output.ts';

type Run = (fn: (flags: GlobalFlags, out: Output) => Promise<unknown>) => Promise<void>;

/** `soulfra apikey create SLUG --name NAME [--scopes a,b] [--expires ISO]`. */
export function registerApikey(program: Command, run: Run): void {
  const apikey = program.command('apikey').description("a platform's API keys");
  apikey
    .command('create')
    .description('make a platform API key (shown once); it acts as the platform admin, capped by its scopes')
    .argument('<slug>')
    .requiredOption('--name <name>', 'what the key is for')
    .option(
      '--scopes <list>',
      'comma-separated: ai:invoke, agents:read, agents:write, billing:read, audit:read, users:read, admin',
      'ai:invoke',
    )
    .option('--expires <time>', 'ISO-8601 expiry, e.g. 2027-01-01T00:00:00Z')
    .action((slug: string, o: { name: string; scopes: string; expires?: string }) =>
      run(async (flags, out) => {
        const client = await connect(flags.data);
        try {
          const scopes = o.scopes
            .split(',')
            .map((s) => s.trim())
            .filter(Boolean);
          const r = await client.createApiKey(slug, {
            name: o.name,
            scopes,
            ...(o.expires ? { expires_at: o.expires } : {}),
          });
          out.result(
            { id: r.id, key: r.key },
            () =>
              `${r.key}\n(API key ${r.id} for ${slug}, scopes ${scopes.join(', ')}; shown once: store it now)`,
          );
        } finally {
          await client.close();
        }
      }),
    );
}
