import type { Command } from 'commander';
import { readConfigFile, resolveConfig } from '../app/index.ts';
import { connect, type OperatorClient } from './client.ts';
import type { GlobalFlags, Output } from './output.ts';

type Run = (fn: (flags: GlobalFlags, out: Output) => Promise<void>) => Promise<void>;

/**
 * `soulfra keys rotate [--master]` and `soulfra keys export`: the keys that seal stored secrets.
 * Through the control socket while a server runs (only there: the master key is never served
 * to a token), else on the files with the lock held.
 */
export function registerKeys(program: Command, run: Run): void {
  const withClient = (fn: (client: OperatorClient, out: Output) => Promise<void>) =>
    run(async (flags, out) => {
      // The key file may be set in the configuration (master_key_file).
      const file = flags.config ? await readConfigFile(flags.config) : {};
      const config = resolveConfig(file, {}, flags.config ?? 'configuration');
      const client = await connect(flags.data, { config });
      try {
        await fn(client, out);
      } finally {
        await client.close();
      }
    });
  const keys = program
    .command('keys')
    .description('the keys that seal stored secrets (data keys, master key)');
  keys
    .command('rotate')
    .description(
      're-seal every stored secret under a new data key and retire the old one; with --master, re-wrap the data keys under a new master key instead',
    )
    .option(
      '--master',
      'replace the master key (the key file, or print a new SOULFRA_MASTER_KEY once)',
      false,
    )
    .action((o: { master: boolean }) =>
      withClient(async (client, out) => {
        const r = await client.rotateKeys({ master: o.master });
        out.result(r, () => {
          if (r.kind === 'data_key') {
            return `New data key ${r.data_key}: ${r.resealed.control} secrets re-sealed in control.db, ${r.resealed.platform_secrets} in ${r.resealed.platforms} platform databases; retired ${r.retired.join(', ') || 'none'}`;
          }
          if (r.source.kind === 'file')
            return `New master key written to ${r.source.path} (${r.data_keys} data keys re-wrapped); take a new escrow copy: soulfra keys export`;
          return `${r.new_master_key}\n(the new master key, shown once: set SOULFRA_MASTER_KEY to it before the next start, and escrow it; ${r.data_keys} data keys re-wrapped)`;
        });
      }),
    );
  keys
    .command('export')
    .description('print the master key for escrow: a restore on another machine needs it')
    .action(() =>
      withClient(async (client, out) => {
        const r = await client.exportKeys();
        out.result(r, () =>
          [
            r.master_key,
            `(the master key, base64, from ${r.source.kind === 'env' ? r.source.variable : r.source.path})`,
            `data keys in control.db: ${r.data_keys.map((k) => `${k.id}${k.retired_at ? ' (retired)' : ''}`).join(', ')}`,
            `Keep it apart from the backups: ${r.restore}. Without it the sealed secrets are lost.`,
          ].join('\n'),
        );
      }),
    );
}
