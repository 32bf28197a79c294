import type { Command } from 'commander';
import { connect, type OperatorClient } from './client.ts';
import { type GlobalFlags, type Output, table } from './output.ts';

type Run = (fn: (flags: GlobalFlags, out: Output) => Promise<void>) => Promise<void>;

/**
 * `soulfra operator create|list|disable|enable|role|remove` and `soulfra operator token
 * create|list|revoke`: operator accounts and their API tokens, through the control socket while
 * a server runs (acting as the local root), else on the files.
 */
export function registerOperator(program: Command, run: Run): void {
  const withClient = (fn: (client: OperatorClient, out: Output) => Promise<void>) =>
    run(async (flags, out) => {
      const client = await connect(flags.data);
      try {
        await fn(client, out);
      } finally {
        await client.close();
      }
    });
  const operator = program.command('operator').description('operator accounts and API tokens');
  operator
    .command('create')
    .description('invite an operator; they sign in to the console through its single sign-on')
    .argument('<email>')
    .option('--role <role>', 'operator_admin | operator_viewer', 'operator_viewer')
    .action((email: string, o: { role: string }) =>
      withClient(async (client, out) => {
        const r = await client.createOperator(email, o.role);
        out.result(r, () => `Invited ${r.operator.email} as ${r.operator.role} (${r.operator.id})`);
      }),
    );
  operator
    .command('list')
    .description('list operators')
    .action(() =>
      withClient(async (client, out) => {
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
      }),
    );
  operator
    .command('disable')
    .description('disable an operator: their tokens and console sessions stop working at once')
    .argument('<email>', 'the operator (email or id)')
    .action((ref: string) =>
      withClient(async (client, out) => {
        const r = await client.disableOperator(ref);
        out.result(r, () => `Disabled ${r.operator.email}`);
      }),
    );
  operator
    .command('enable')
    .description('enable a disabled operator again')
    .argument('<email>', 'the operator (email or id)')
    .action((ref: string) =>
      withClient(async (client, out) => {
        const r = await client.enableOperator(ref);
        out.result(r, () => `Enabled ${r.operator.email}`);
      }),
    );
  operator
    .command('role')
    .description("change an operator's role (the last active operator admin keeps theirs)")
    .argument('<email>', 'the operator (email or id)')
    .argument('<role>', 'operator_admin | operator_viewer')
    .action((ref: string, role: string) =>
      withClient(async (client, out) => {
        const r = await client.setOperatorRole(ref, role);
        out.result(r, () => `${r.operator.email} is now ${r.operator.role}`);
      }),
    );
  operator
    .command('remove')
    .description('remove an operator with their tokens and sessions')
    .argument('<email>', 'the operator (email or id)')
    .action((ref: string) =>
      withClient(async (client, out) => {
        const r = await client.removeOperator(ref);
        out.result(r, () => `Removed ${r.removed.email} (${r.removed.id})`);
      }),
    );

  const token = operator.command('token').description('operator API tokens');
  token
    .command('create')
    .description('make a new operator API token (shown once)')
    .option('--name <name>', 'what the token is for', 'cli')
    .option('--expires <when>', 'a lifetime (30d, 12h) or an ISO-8601 date; default and at most 365 days')
    .option('--operator <email>', 'make it for another operator (default: the first operator admin)')
    .option('--role <role>', "cap it at a role no wider than the operator's (operator_viewer)")
    .action((o: { name: string; expires?: string; operator?: string; role?: string }) =>
      withClient(async (client, out) => {
        const lifetime = o.expires !== undefined && /^\d+[dh]$/.test(o.expires);
        const t = await client.createToken({
          name: o.name,
          ...(o.operator === undefined ? {} : { operator: o.operator }),
          ...(o.role === undefined ? {} : { role: o.role }),
          ...(o.expires === undefined
            ? {}
            : lifetime
              ? { expires_in: o.expires }
              : { expires_at: o.expires }),
        });
        out.result(
          t,
          () =>
            `${t.token}\n(operator API token ${t.id}, ${t.role}, expires ${t.expires_at}; shown once: store it now)`,
        );
      }),
    );
  token
    .command('list')
    .description('list operator API tokens (never their secrets)')
    .option('--operator <email>', "only this operator's tokens")
    .action((o: { operator?: string }) =>
      withClient(async (client, out) => {
        const r = await client.listTokens(o.operator);
        out.result(r, () =>
          table(
            ['ID', 'NAME', 'OPERATOR', 'ROLE', 'STATUS', 'EXPIRES', 'LAST USED'],
            r.tokens.map((t) => [
              t.id,
              t.name,
              t.operator_email,
              t.role,
              t.status,
              t.expires_at?.slice(0, 10) ?? 'never',
              t.last_used_at?.slice(0, 16).replace('T', ' ') ?? '-',
            ]),
          ),
        );
      }),
    );
  token
    .command('revoke')
    .description('revoke an operator API token at once')
    .argument('<id>', 'the token id (opt_...), as `operator token list` shows it')
    .action((id: string) =>
      withClient(async (client, out) => {
        const r = await client.revokeToken(id);
        out.result(r, () => `Revoked ${r.token.id} (${r.token.name}, ${r.token.operator_email})`);
      }),
    );
}
