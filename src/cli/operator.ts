import type { Command } from 'commander';
import { connect } from './client.ts';
import { type GlobalFlags, type Output, table } from './output.ts';

type Run = (fn: (flags: GlobalFlags, out: Output) => Promise<void>) => Promise<void>;

/** `soulfra operator token create`. */
export function registerOperator(program: Command, run: Run): void {
  const operator = program.command('operator').description('operator accounts and API tokens');
  operator
    .command('create')
    .description('invite an operator; they sign in to the console through its single sign-on')
    .argument('<email>')
    .option('--role <role>', 'operator_admin | operator_viewer', 'operator_viewer')
    .action((email: string, o: { role: string }) =>
      run(async (flags, out) => {
        const client = await connect(flags.data);
        try {
          const r = await client.createOperator(email, o.role);
          out.result(r, () => `Invited ${r.operator.email} as ${r.operator.role} (${r.operator.id})`);
        } finally {
          await client.close();
        }
      }),
    );
  operator
    .command('list')
    .description('list operators')
    .action(() =>
      run(async (flags, out) => {
        const client = await connect(flags.data);
        try {
          const r = await client.listOperators();
          out.result(r, () =>
            table(
              ['EMAIL', 'ROLE', 'STATUS', 'SSO', 'CREATED'],
              r.operators.map((o) => [
                o.email,
                o.role,
                o.status,
                o.sso_linked ? 'linked' : '-',
                o.created_at.slice(0, 10),
              ]),
            ),
          );
        } finally {
          await client.close();
        }
      }),
    );
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
