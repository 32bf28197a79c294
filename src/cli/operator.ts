import type { Command } from 'commander';
import { connect } from './client.ts';
import type { GlobalFlags, Output } from './output.ts';

type Run = (fn: (flags: GlobalFlags, out: Output) => Promise<void>) => Promise<void>;

/** `soulfra operator token create`. */
export function registerOperator(program: Command, run: Run): void {
  const operator = program.command('operator').description('operator accounts and API tokens');
  const token = operator.command('token').description('operator API tokens');
  token
    .command('create')
    .description('make a new operator API token (shown once)')
    .option('--name <name>', 'what the token is for', 'cli')
    .action((o: { name: string }) =>
      run(async (flags, out) => {
        const client = await connect(flags.data);
        try {
          const t = await client.createToken(o.name);
          out.result(t, () => `${t.token}\n(operator API token ${t.id}, shown once: store it now)`);
        } finally {
          await client.close();
        }
      }),
    );
}
