import type { Command } from 'commander';
import type { ChainReport } from '../flows/index.ts';
import { connect } from './client.ts';
import { EXIT, type GlobalFlags, type Output } from './output.ts';

type Run = (fn: (flags: GlobalFlags, out: Output) => Promise<number | undefined>) => Promise<void>;

/** The environment variable that holds the audit key fingerprint recorded off the machine. */
export const AUDIT_KEY_FINGERPRINT_ENV = 'SOULFRA_AUDIT_KEY_FINGERPRINT';

/**
 * `soulfra audit verify [SLUG] [--key-fingerprint SHA256:...]`: exit 0 when every chain is
 * intact and holds what its signed checkpoints and anchors say, 1 naming the first bad entry.
 * Prints the instance signing key's fingerprint; given the one recorded off the machine (flag
 * or SOULFRA_AUDIT_KEY_FINGERPRINT), a different key fails too: that is what shows a key
 * replaced by someone holding the master key and both files.
 */
export function registerAudit(program: Command, run: Run): void {
  const audit = program.command('audit').description('the tamper-evident audit log');
  audit
    .command('verify')
    .description(
      "check the hash chains against their signed checkpoints and anchors: one platform's, or with no slug the control plane's and every platform's",
    )
    .argument('[slug]')
    .option(
      '--key-fingerprint <fp>',
      `the signing key fingerprint recorded off this machine (or ${AUDIT_KEY_FINGERPRINT_ENV})`,
    )
    .action((slug: string | undefined, o: { keyFingerprint?: string }) =>
      run(async (flags, out) => {
        const expected = o.keyFingerprint ?? process.env[AUDIT_KEY_FINGERPRINT_ENV] ?? undefined;
        const client = await connect(flags.data);
        try {
          const r = await client.verifyAudit(slug);
          const key = r.signing_key;
          if (expected && key.fingerprint !== expected && !key.problem) {
            key.problem = `the signing key is ${key.fingerprint ?? 'missing'}, not the recorded ${expected} (the key was replaced)`;
          }
          const ok = r.ok && !key.problem;
          out.result({ ...r, ok }, () =>
            [
              key.problem
                ? `BAD   ${'signing key'.padEnd(20)} ${key.problem}`
                : `ok    ${'signing key'.padEnd(20)} ${key.fingerprint}`,
              ...r.chains.map(line),
            ].join('\n'),
          );
          if (!ok) {
            const bad = r.chains.find((c) => !c.ok);
            out.note(
              bad
                ? `audit chain ${bad.chain} is broken at entry #${bad.bad?.seq}: ${bad.bad?.reason}`
                : `audit signing key: ${key.problem}`,
            );
            return EXIT.failed;
          }
          return EXIT.ok;
        } finally {
          await client.close();
        }
      }),
    );
}

function line(c: ChainReport): string {
  if (!c.ok) return `BAD   ${c.chain.padEnd(20)} entry #${c.bad?.seq}: ${c.bad?.reason}`;
  const lag = c.unanchored ? `, ${c.unanchored} after the last anchor` : '';
  return `ok    ${c.chain.padEnd(20)} ${c.entries} ${c.entries === 1 ? 'entry' : 'entries'}, head ${c.head?.slice(0, 16)}…, anchored #${c.anchored ?? 0}${lag}`;
}
