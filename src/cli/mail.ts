import type { Command } from 'commander';
import { connect } from './client.ts';
import type { GlobalFlags, Output } from './output.ts';

type Run = (fn: (flags: GlobalFlags, out: Output) => Promise<unknown>) => Promise<void>;

/** `soulfra mail list [--status S] [--platform SLUG]`, `soulfra mail test --to ADDR [--platform SLUG]`. */
export function registerMail(program: Command, run: Run): void {
  const mail = program.command('mail').description("the platforms' mail queues (the running server's)");
  mail
    .command('list')
    .description('messages by delivery state (default: everything not delivered); never their bodies')
    .option('--status <list>', 'comma-separated: queued, sending, sent, failed, bounced, undelivered')
    .option('--platform <slug>', "only this platform's mail")
    .action((o: { status?: string; platform?: string }) =>
      run(async (flags, out) => {
        const client = await connect(flags.data);
        try {
          const r = await client.listMail(o);
          out.result(r, () => {
            const head = r.delivery.smtp
              ? 'mail is delivered through SMTP'
              : `mail is NOT delivered: ${r.delivery.problem}`;
            const rows = r.messages.map(
              (m) =>
                `${m.platform}\t${m.id}\t${m.status}\t${m.attempts}\t${m.template}\t${m.to}${m.last_error ? `\t${m.last_error}` : ''}`,
            );
            return [head, ...(rows.length ? rows : ['(no messages)'])].join('\n');
          });
        } finally {
          await client.close();
        }
      }),
    );
  mail
    .command('test')
    .description('send a test message now through the SMTP settings (in a platform brand with --platform)')
    .requiredOption('--to <address>', 'where to send it')
    .option('--platform <slug>', "send it in this platform's brand, from its address")
    .action((o: { to: string; platform?: string }) =>
      run(async (flags, out) => {
        const client = await connect(flags.data);
        try {
          const r = await client.testMail(o);
          out.result(r, () => `sent to ${o.to} from ${r.from} (${r.message_id}): ${r.response}`);
        } finally {
          await client.close();
        }
      }),
    );
}
