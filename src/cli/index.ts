import { Command, CommanderError } from 'commander';
import pkg from '../../package.json' with { type: 'json' };
import { registerApikey } from './apikey.ts';
import { registerAudit } from './audit.ts';
import { registerFederation } from './federation.ts';
import { registerKeys } from './keys.ts';
import { registerMail } from './mail.ts';
import { registerOperator } from './operator.ts';
import { createOutput, EXIT, type GlobalFlags, type Output, reportError } from './output.ts';
import { registerPlatform } from './platform.ts';
import { registerServe } from './serve.ts';

/** The version printed by `soulfra --version`. */
export const VERSION: string = pkg.version;

/**
 * Runs the CLI on `argv` (without the runtime and script) and returns the exit code:
 * 0 done, 1 could not be done, 2 invalid command or input.
 */
export async function runCli(argv: string[]): Promise<number> {
  let code: number = EXIT.ok;
  const program = new Command('soulfra')
    .description('Soulfra: many white-labeled AI platforms from one executable')
    .version(VERSION, '-v, --version', 'print the version')
    .option('--data <dir>', 'data directory (env SOULFRA_DATA)', process.env.SOULFRA_DATA ?? './data')
    .option(
      '--config <file>',
      'instance configuration, YAML (env SOULFRA_CONFIG)',
      process.env.SOULFRA_CONFIG,
    )
    .option('--json', 'print exactly one JSON document on stdout', false)
    .showHelpAfterError('(run with --help for usage)')
    .exitOverride();

  // Every command body runs through here: flags resolved, errors turned into exit codes.
  const run = async (fn: (flags: GlobalFlags, out: Output) => Promise<unknown>) => {
    const flags = program.opts<GlobalFlags>();
    const out = createOutput(Boolean(flags.json));
    try {
      const r = await fn(flags, out);
      code = typeof r === 'number' ? r : EXIT.ok;
    } catch (e) {
      code = reportError(e, out);
    }
  };

  registerServe(program, run, VERSION);
  registerPlatform(program, run);
  registerOperator(program, run);
  registerApikey(program, run);
  registerAudit(program, run);
  registerKeys(program, run);
  registerMail(program, run);
  registerFederation(program, run);

  try {
    await program.parseAsync(argv, { from: 'user' });
  } catch (e) {
    if (e instanceof CommanderError) {
      if (
        e.code === 'commander.helpDisplayed' ||
        e.code === 'commander.version' ||
        e.code === 'commander.help'
      ) {
        return EXIT.ok;
      }
      // With --json, an argument error is a JSON document on stdout too (the contract: stdout
      // holds exactly one); commander has already written the reason to stderr.
      if (wantsJson(argv)) {
        createOutput(true).result(
          { error: { code: cliErrorCode(e.code), message: e.message.replace(/^error: /, '') } },
          () => '',
        );
      }
      if (e.code === 'commander.executeSubCommandAsync') return EXIT.failed;
      return EXIT.invalid;
    }
    throw e;
  }
  return code;
}

/** Whether `--json` is on the line (before a `--`, past which words are arguments). */
function wantsJson(argv: readonly string[]): boolean {
  const end = argv.indexOf('--');
  return (end === -1 ? argv : argv.slice(0, end)).includes('--json');
}

/** Commander's error code as ours: `commander.unknownOption` → `cli.unknown_option`. */
export function cliErrorCode(commanderCode: string): string {
  const name = commanderCode.replace(/^commander\./, '');
  return `cli.${name.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`)}`;
}
