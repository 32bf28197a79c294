import type { Command } from 'commander';
import { connect, type OperatorClient } from './client.ts';
import type { GlobalFlags, Output } from './output.ts';

type Run = (fn: (flags: GlobalFlags, out: Output) => Promise<unknown>) => Promise<void>;

const withClient =
  (run: Run) =>
  (fn: (client: OperatorClient, out: Output) => Promise<void>): Promise<void> =>
    run(async (flags, out) => {
      const client = await connect(flags.data);
      try {
        await fn(client, out);
      } finally {
        await client.close();
      }
    });

/**
 * `soulfra federation key` (the instance's federation key, for other operators to pin) and
 * `soulfra platform trust add|list|remove` (the keys a platform accepts agent packages from).
 */
export function registerFederation(program: Command, run: Run): void {
  const client = withClient(run);
  const federation = program
    .command('federation')
    .description('agent federation between platforms and instances (signed packages, trust, revocation)');
  federation
    .command('key')
    .description(
      "this instance's federation key (Ed25519; made on first use): give its id and public key to the operators who pin it",
    )
    .action(() =>
      client(async (c, out) => {
        const r = await c.federationKey();
        out.result(
          r,
          () =>
            `key id      ${r.key.key_id}\npublic key  ${r.key.public_key}\ncreated     ${r.key.created_at}`,
        );
      }),
    );

  const platform = program.commands.find((x) => x.name() === 'platform') ?? program.command('platform');
  const trust = platform
    .command('trust')
    .description("the other instances' federation keys a platform accepts agent packages from");
  trust
    .command('add')
    .description("pin another instance's federation key for a platform")
    .argument('<slug>', 'the platform')
    .argument('<public-key>', 'the key (SPKI DER in base64, as `soulfra federation key` prints it)')
    .option('--key-id <id>', 'the key id its operator read to you (checked against the key)')
    .option('--label <text>', 'whose key this is')
    .action((slug: string, publicKey: string, o: { keyId?: string; label?: string }) =>
      client(async (c, out) => {
        const r = await c.trustKey(slug, {
          public_key: publicKey,
          ...(o.keyId ? { key_id: o.keyId } : {}),
          ...(o.label ? { label: o.label } : {}),
        });
        out.result(
          r,
          () =>
            `${slug} now trusts ${r.trusted_key.key_id}${r.trusted_key.label ? ` (${r.trusted_key.label})` : ''}`,
        );
      }),
    );
  trust
    .command('list')
    .description('the keys a platform trusts (its own instance is always trusted)')
    .argument('<slug>', 'the platform')
    .action((slug: string) =>
      client(async (c, out) => {
        const r = await c.listTrustedKeys(slug);
        out.result(r, () =>
          r.trusted_keys.length
            ? r.trusted_keys
                .map((k) => `${k.key_id}\t${k.label || '-'}\t${k.added_at}\t${k.added_by}`)
                .join('\n')
            : '(no keys: only this instance is trusted)',
        );
      }),
    );
  trust
    .command('remove')
    .description('stop trusting a key for a platform (agents imported with it stay)')
    .argument('<slug>', 'the platform')
    .argument('<key-id>', 'the key id')
    .action((slug: string, keyId: string) =>
      client(async (c, out) => {
        const r = await c.untrustKey(slug, keyId);
        out.result(r, () => `${slug} no longer trusts ${r.removed.key_id}`);
      }),
    );
}
