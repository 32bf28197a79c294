import { type Clock, systemClock } from '../shared/time.ts';

/** Log levels, least to most severe. */
export type LogLevel = 'debug' | 'info' | 'warn' | 'error';

/** A small structured logger: one line per event on stderr, `key=value` fields after the message. */
export interface Logger {
  debug(msg: string, fields?: Record<string, unknown>): void;
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
}

const ORDER: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

/** A logger writing to `write` (stderr by default) at `level` and above; `json` writes one JSON object a line. */
export function createLogger(
  opts: { level?: LogLevel; json?: boolean; write?: (line: string) => void; clock?: Clock } = {},
): Logger {
  const clock = opts.clock ?? systemClock;
  const min = ORDER[opts.level ?? 'info'];
  const write = opts.write ?? ((line: string) => process.stderr.write(`${line}\n`));
  const emit = (level: LogLevel, msg: string, fields?: Record<string, unknown>) => {
    if (ORDER[level] < min) return;
    const ts = new Date(clock.now()).toISOString();
    if (opts.json) {
      write(JSON.stringify({ ts, level, msg, ...fields }));
      return;
    }
    const kv = fields
      ? Object.entries(fields)
          .map(([k, v]) => `${k}=${typeof v === 'string' && !/\s/.test(v) ? v : JSON.stringify(v)}`)
          .join(' ')
      : '';
    write(`${ts} ${level.toUpperCase().padEnd(5)} ${msg}${kv ? ` ${kv}` : ''}`);
  };
  return {
    debug: (m, f) => emit('debug', m, f),
    info: (m, f) => emit('info', m, f),
    warn: (m, f) => emit('warn', m, f),
    error: (m, f) => emit('error', m, f),
  };
}

/** A logger that drops everything (tests, `--json` runs that must keep stderr quiet). */
export const silentLogger: Logger = { debug() {}, info() {}, warn() {}, error() {} };
