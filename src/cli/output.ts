import { isAppError } from '../shared/errors.ts';

/** Global flags, accepted anywhere on the line. */
export interface GlobalFlags {
  data: string;
  config?: string;
  json: boolean;
}

/** Exit codes of the contract. */
export const EXIT = { ok: 0, failed: 1, invalid: 2 } as const;

/** A command's way to speak: human text, or exactly one JSON document with `--json`. */
export interface Output {
  readonly json: boolean;
  /** The command's result: `human` for people, `data` for `--json`. */
  result(data: unknown, human: () => string): void;
  /** A message for people (stderr, so stdout stays clean for scripts). */
  note(msg: string): void;
}

/** The output for these flags, writing through `out`/`err` (process streams by default). */
export function createOutput(
  json: boolean,
  out: (s: string) => void = (s) => process.stdout.write(s),
  err: (s: string) => void = (s) => process.stderr.write(s),
): Output {
  return {
    json,
    result(data, human) {
      out(json ? `${JSON.stringify(data, null, 2)}\n` : `${human()}\n`);
    },
    note(msg) {
      err(`${msg}\n`);
    },
  };
}

/**
 * Reports a failure and returns the exit code: 2 when the input was at fault (HTTP 400/422),
 * 1 when it could not be done. With `--json` the error document also goes to stdout.
 */
export function reportError(
  e: unknown,
  output: Output,
  err: (s: string) => void = (s) => process.stderr.write(s),
): number {
  if (isAppError(e)) {
    const lines = [`error: ${e.message} (${e.code})`];
    for (const d of e.details ?? []) lines.push(`  ${d.path || '/'}: ${d.reason}`);
    err(`${lines.join('\n')}\n`);
    if (output.json) output.result(e.toJSON(), () => '');
    return e.status === 400 || e.status === 422 ? EXIT.invalid : EXIT.failed;
  }
  const msg = e instanceof Error ? e.message : String(e);
  err(`error: ${msg}\n`);
  if (output.json) output.result({ error: { code: 'internal', message: msg } }, () => '');
  return EXIT.failed;
}

/** A plain text table: a header row, then rows, columns padded to their widest cell. */
export function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd();
  return [line(header), ...rows.map(line)].join('\n');
}
