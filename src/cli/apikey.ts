import type { Command } from 'commander';
import { connect } from './client.ts';
import { type GlobalFlags, type Output, table } from './output.ts';

type Run = (fn: (flags: GlobalFlags, out: Output) => Promise<unknown>) => Promise<void>;

const day = (t: string | null) => (t ? t.slice(0, 19).replace('T', ' ') : '-');

/** `soulfra apikey create|list|revoke`: a platform's API keys. */
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

  apikey
    .command('list')
    .description("list a platform's API keys (never their secrets), revoked ones included")
    .argument('<slug>')
    .action((slug: string) =>
      run(async (flags, out) => {
        const client = await connect(flags.data);
        try {
          const { api_keys: keys } = await client.listApiKeys(slug);
          out.result({ api_keys: keys }, () =>
            keys.length === 0
              ? `No API keys on ${slug}. Make one: soulfra apikey create ${slug} --name ci`
              : table(
                  ['ID', 'NAME', 'PREFIX', 'SCOPES', 'OWNER', 'CREATED', 'EXPIRES', 'STATUS'],
                  keys.map((k) => [
                    k.id,
                    k.name,
                    k.prefix,
                    k.scopes.join(','),
                    k.user_id ?? 'platform',
                    day(k.created_at),
                    day(k.expires_at),
                    k.revoked_at ? `revoked ${day(k.revoked_at)}` : 'active',
                  ]),
                ),
          );
        } finally {
          await client.close();
        }
      }),
    );
  apikey
    .command('revoke')
    .description('revoke a platform API key: refused from its next request')
    .argument('<slug>')
    .argument('<id>', 'the key id (key_...), from `soulfra apikey list`')
    .action((slug: string, id: string) =>
      run(async (flags, out) => {
        const client = await connect(flags.data);
        try {
          const r = await client.revokeApiKey(slug, id);
          out.result(r, () => `Revoked API key ${r.api_key.id} (${r.api_key.name}) on ${slug}`);
        } finally {
          await client.close();
        }
      }),
    );
}
