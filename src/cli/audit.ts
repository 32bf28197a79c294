import type { Command } from 'commander';
import { connect } from './client.ts';
import { EXIT, type GlobalFlags, type Output } from './output.ts';

type Run = (fn: (flags: GlobalFlags, out: Output) => Promise<number | undefined>) => Promise<void>;

/** `soulfra audit verify [SLUG]`: exit 0 when every chain is intact, 1 naming the first bad entry. */
export function registerAudit(program: Command, run: Run): void {
  const audit = program.command('audit').description('the tamper-evident audit log');
  audit
    .command('verify')
    .description(
      "check the hash chains: one platform's, or with no slug the control plane's and every platform's",
    )
    .argument('[slug]')
    .action((slug: string | undefined) =>
      run(async (flags, out) => {
        const client = await connect(flags.data);
        try {
          const r = await client.verifyAudit(slug);
          out.result(r, () =>
            r.chains
              .map((c) =>
                c.ok
                  ? `ok    ${c.chain.padEnd(20)} ${c.entries} ${c.entries === 1 ? 'entry' : 'entries'}, head ${c.head?.slice(0, 16)}…`
                  : `BAD   ${c.chain.padEnd(20)} entry #${c.bad?.seq}: ${c.bad?.reason}`,
              )
              .join('\n'),
          );
          if (!r.ok) {
            const bad = r.chains.find((c) => !c.ok)!;
            out.note(`audit chain ${bad.chain} is broken at entry #${bad.bad?.seq}`);
            return EXIT.failed;
          }
          return EXIT.ok;
        } finally {
          await client.close();
        }
      }),
    );
}
