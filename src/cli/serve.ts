import { closeSync, constants, fchmodSync, fsyncSync, openSync, writeSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Command } from 'commander';
import { createLogger, readConfigFile, resolveConfig } from '../app/index.ts';
import type { RunningServer } from '../server/start.ts';
import { iso, systemClock } from '../shared/time.ts';
import type { GlobalFlags, Output } from './output.ts';

/** The owner-only file in the data dir that takes first-run secrets when stdout is no terminal. */
export const SECRETS_FILE = 'first-run-secrets.txt';

type Run = (fn: (flags: GlobalFlags, out: Output) => Promise<unknown>) => Promise<void>;

interface ServeFlags {
  port?: string;
  host?: string;
  baseDomain?: string;
  publicUrl?: string;
  demo?: boolean;
}

/** `soulfra serve`: the appliance. Runs until SIGTERM or SIGINT, then stops gracefully. */
export function registerServe(program: Command, run: Run, version: string): void {
  program
    .command('serve')
    .description('serve every platform of the data dir (the first run creates the operator admin)')
    .option('--port <port>', 'TCP port (default 8080; 0 picks a free one)')
    .option('--host <addr>', 'address to listen on (default 127.0.0.1; 0.0.0.0 for all)')
    .option('--base-domain <domain>', 'platforms live at <slug>.<domain> (default localhost)')
    .option('--public-url <url>', 'how people reach the base domain, e.g. https://ai.example.com')
    .option('--demo', 'create the demo platform on first run')
    .action((o: ServeFlags) =>
      run(async (flags, out) => {
        const file = flags.config ? await readConfigFile(flags.config) : {};
        const config = resolveConfig(
          file,
          {
            port: o.port === undefined ? undefined : Number(o.port),
            host: o.host,
            base_domain: o.baseDomain,
            public_url: o.publicUrl,
          },
          flags.config ?? 'flags',
        );
        // The one clock of the process: the logger, the App and everything it runs read it.
        const clock = systemClock;
        const log = createLogger({ level: config.log_level, json: config.log_format === 'json', clock });
        // Loaded here, not at import: the other commands never need the HTTP server's modules
        // (routes, schemas, OpenAPI), and every CLI call would pay for loading them.
        const { startServer } = await import('../server/start.ts');
        const s = await startServer({ dataDir: flags.data, config, log, demo: o.demo, clock });
        const demo = s.demo ?? (o.demo ? null : undefined);
        // NB! Under systemd or docker stdout is a journal that keeps everything: secrets are
        // shown only on a terminal or with --json (the caller asked for them), else filed.
        const secrets = secretsOf(s);
        const secretsFile =
          !out.json && !process.stdout.isTTY && secrets.length
            ? writeSecretsFile(flags.data, secrets, clock.now())
            : null;
        const shown = (v: string) => (secretsFile ? `(in ${secretsFile})` : v);
        out.result(
          {
            version,
            listening: `http://${config.host}:${s.port}`,
            console: s.url,
            data: flags.data,
            operator: s.firstRun,
            metrics_token: s.metricsToken,
            master_key: s.app.keyring.source,
            demo: s.demo ? { slug: s.demo.slug, url: s.demo.url, admin: s.demo.admin } : null,
          },
          () => {
            const lines = [
              `Soulfra ${version} listening on http://${config.host}:${s.port} (data: ${flags.data})`,
              `  operator console  ${s.url}`,
            ];
            if (secretsFile) {
              lines.push(
                '',
                `This start made secrets; stdout is no terminal, so they were written to ${secretsFile}`,
                '  (owner-only), not here. Store them elsewhere, then delete the file.',
              );
            }
            if (s.firstRun) {
              lines.push(
                '',
                'First run: the operator admin was created. Shown once, store these now:',
                `  email      ${s.firstRun.email}`,
                `  password   ${shown(s.firstRun.password)}`,
                `  API token  ${shown(s.firstRun.token)}`,
              );
            }
            const mk = s.app.keyring.source;
            if (mk.kind === 'file' && mk.created) {
              lines.push(
                '',
                `Master key created: ${mk.path} (owner-only, outside the data dir). It seals every stored`,
                '  secret; a restore needs it. Escrow a copy now: soulfra keys export',
              );
            }
            if (s.metricsToken) {
              lines.push('', `Metrics token (for /metrics off loopback): ${shown(s.metricsToken)}`);
            }
            if (s.demo) {
              lines.push(
                '',
                `Demo platform created: ${s.demo.url}`,
                `  owner email     ${s.demo.admin.email}`,
                `  owner password  ${shown(s.demo.admin.password)}   (shown once)`,
              );
            } else if (demo === null) {
              const d = s.tenancy.registry.bySlug('demo');
              if (d) lines.push('', `Demo platform: ${s.tenancy.view(d).url}`);
            }
            lines.push('', 'Stop with Ctrl-C (in-flight requests finish first).');
            return lines.join('\n');
          },
        );
        await new Promise<void>((resolve) => {
          const stop = (sig: string) => {
            log.info(`received ${sig}`);
            s.stop().then(resolve, resolve);
          };
          process.once('SIGTERM', () => stop('SIGTERM'));
          process.once('SIGINT', () => stop('SIGINT'));
        });
        return 0;
      }),
    );
}

/** The secrets this start made, as (what, value) pairs. */
function secretsOf(s: RunningServer): [string, string][] {
  const r: [string, string][] = [];
  if (s.firstRun) {
    r.push(['operator admin email', s.firstRun.email]);
    r.push(['operator admin password', s.firstRun.password]);
    r.push(['operator API token', s.firstRun.token]);
  }
  if (s.metricsToken) r.push(['metrics token', s.metricsToken]);
  if (s.demo) {
    r.push(['demo owner email', s.demo.admin.email]);
    r.push(['demo owner password', s.demo.admin.password]);
  }
  return r;
}

/**
 * Appends the secrets to the owner-only secrets file in the data dir and returns its absolute
 * path. Appended, never replaced, so secrets not yet collected from an earlier start survive;
 * a symlink in its place is refused rather than followed.
 */
function writeSecretsFile(dataDir: string, secrets: [string, string][], now: number): string {
  const path = resolve(join(dataDir, SECRETS_FILE));
  const fd = openSync(
    path,
    constants.O_WRONLY | constants.O_CREAT | constants.O_APPEND | constants.O_NOFOLLOW,
    0o600,
  );
  try {
    // An older file keeps its contents, but never a wider mode than owner-only.
    fchmodSync(fd, 0o600);
    const width = Math.max(...secrets.map(([k]) => k.length));
    const body = [
      `# soulfra serve, ${iso(now)}: shown once; store these elsewhere, then delete this file`,
      ...secrets.map(([k, v]) => `${k.padEnd(width)}  ${v}`),
      '',
    ].join('\n');
    writeSync(fd, body);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  return path;
}
