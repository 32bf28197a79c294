import type { Command } from 'commander';
import { createLogger, readConfigFile, resolveConfig } from '../app/index.ts';
import { startServer } from '../server/start.ts';
import type { GlobalFlags, Output } from './output.ts';

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
        const log = createLogger({ level: config.log_level, json: config.log_format === 'json' });
        const s = await startServer({ dataDir: flags.data, config, log, demo: o.demo });
        const demo = s.demo ?? (o.demo ? null : undefined);
        out.result(
          {
            version,
            listening: `http://${config.host}:${s.port}`,
            console: s.url,
            data: flags.data,
            operator: s.firstRun,
            demo: s.demo ? { slug: s.demo.slug, url: s.demo.url, admin: s.demo.admin } : null,
          },
          () => {
            const lines = [
              `Soulfra ${version} listening on http://${config.host}:${s.port} (data: ${flags.data})`,
              `  operator console  ${s.url}`,
            ];
            if (s.firstRun) {
              lines.push(
                '',
                'First run: the operator admin was created. Shown once, store these now:',
                `  email      ${s.firstRun.email}`,
                `  password   ${s.firstRun.password}`,
                `  API token  ${s.firstRun.token}`,
              );
            }
            if (s.demo) {
              lines.push(
                '',
                `Demo platform created: ${s.demo.url}`,
                `  owner email     ${s.demo.admin.email}`,
                `  owner password  ${s.demo.admin.password}   (shown once)`,
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
