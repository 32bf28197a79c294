import type { Command } from 'commander';
import type { PlatformSettingsReport } from '../flows/index.ts';
import { AppError } from '../shared/errors.ts';
import { type PlatformView, parseBlueprintText } from '../tenancy/index.ts';
import { connect } from './client.ts';
import { type GlobalFlags, type Output, table } from './output.ts';

type Run = (fn: (flags: GlobalFlags, out: Output) => Promise<void>) => Promise<void>;

function describe(p: PlatformView): string {
  const rows: [string, string][] = [
    ['slug', p.slug],
    ['name', p.name],
    ['status', p.status_reason ? `${p.status} (${p.status_reason})` : p.status],
    ['template', p.template],
    ['url', p.url],
    ['domains', p.domains.join(', ') || '-'],
    ['id', p.id],
    ['database', p.db_file],
    ['created', p.created_at],
    ['updated', p.updated_at],
  ];
  return rows.map(([k, v]) => `${k.padEnd(9)} ${v}`).join('\n');
}

/** A platform's description with its settings report (what is not enforced, warnings). */
function describeSettings(text: string, p: PlatformSettingsReport): string {
  const lines = [text];
  const pending = p.settings_not_enforced ?? [];
  if (pending.length > 0) {
    lines.push(`not enforced yet (${pending.length}):`);
    for (const s of pending) lines.push(`  ${s.setting}  (${s.enforced_by})`);
  }
  for (const w of p.warnings ?? []) lines.push(`warning: ${w}`);
  return lines.join('\n');
}

/** Reads a blueprint file (JSON or YAML); a missing file is a 400 naming `/blueprint`. */
async function readBlueprintFile(path: string): Promise<unknown> {
  const f = Bun.file(path);
  if (!(await f.exists())) {
    throw new AppError('blueprint.not_found', `blueprint file ${path} does not exist`, 400, [
      { path: '/blueprint', reason: 'file not found' },
    ]);
  }
  return parseBlueprintText(await f.text(), path);
}

/** A value in one line, for the list of changed settings. */
function shown(v: unknown): string {
  if (v === undefined) return '(not set)';
  const text = JSON.stringify(v);
  return text.length > 60 ? `${text.slice(0, 57)}...` : text;
}

/** `soulfra platform create|list|show|update|delete|suspend|resume|archive|unarchive|domain|owner-reset`. */
export function registerPlatform(program: Command, run: Run): void {
  const platform = program.command('platform').description('create and manage platforms');

  platform
    .command('create')
    .description('create a platform with its owner account (the password is shown once)')
    .argument('<slug>', 'DNS label: a-z, 0-9 and hyphens, 2-63 characters')
    .option('--template <name>', 'creator | business | education | blank', 'blank')
    .option('--blueprint <file>', 'a JSON or YAML blueprint, merged over the template')
    .option('--name <name>', "the platform's display name")
    .option('--domain <host>', 'a custom domain mapped to the platform')
    .option('--owner-email <email>', "the owner's email (default owner@<slug>.<base-domain>)")
    .action(
      (
        slug: string,
        o: { template: string; blueprint?: string; name?: string; domain?: string; ownerEmail?: string },
      ) =>
        run(async (flags, out) => {
          const blueprint = o.blueprint ? await readBlueprintFile(o.blueprint) : undefined;
          const client = await connect(flags.data, { create: true });
          try {
            const r = await client.createPlatform({
              slug,
              template: o.template,
              blueprint,
              name: o.name,
              domain: o.domain,
              owner_email: o.ownerEmail,
            });
            // Warnings go to stderr either way: settings that silently do nothing here.
            for (const w of r.warnings ?? []) out.note(`warning: ${w}`);
            out.result(
              { slug: r.slug, url: r.url, admin: r.admin, id: r.platform.id, warnings: r.warnings ?? [] },
              () =>
                [
                  `Created platform ${r.slug} (${r.platform.template}): ${r.url}`,
                  ...r.platform.domains.map((d) => `  custom domain  ${d}`),
                  `  owner email    ${r.admin.email}`,
                  `  owner password ${r.admin.password}   (shown once: store it now)`,
                ].join('\n'),
            );
          } finally {
            await client.close();
          }
        }),
    );

  platform
    .command('list')
    .description('list every platform')
    .action(() =>
      run(async (flags, out) => {
        const client = await connect(flags.data);
        try {
          const list = await client.listPlatforms();
          out.result({ platforms: list }, () =>
            list.length === 0
              ? 'No platforms yet. Create one: soulfra platform create acme --template creator'
              : table(
                  ['SLUG', 'NAME', 'STATUS', 'TEMPLATE', 'URL', 'CREATED'],
                  list.map((p) => [
                    p.slug,
                    p.name,
                    p.status,
                    p.template,
                    p.url,
                    p.created_at.slice(0, 19).replace('T', ' '),
                  ]),
                ),
          );
        } finally {
          await client.close();
        }
      }),
    );

  platform
    .command('show')
    .description('show one platform (with --json, its whole blueprint)')
    .argument('<slug>')
    .action((slug: string) =>
      run(async (flags, out) => {
        const client = await connect(flags.data);
        try {
          const p = await client.showPlatform(slug);
          out.result(p, () => describeSettings(describe(p), p));
        } finally {
          await client.close();
        }
      }),
    );

  platform
    .command('update')
    .description("change a platform's blueprint: a partial blueprint merged over the current one")
    .argument('<slug>')
    .requiredOption('--blueprint <file>', 'a JSON or YAML partial blueprint (only the settings to change)')
    .action((slug: string, o: { blueprint: string }) =>
      run(async (flags, out) => {
        const blueprint = await readBlueprintFile(o.blueprint);
        const client = await connect(flags.data);
        try {
          const r = await client.updatePlatform(slug, blueprint);
          out.result(r, () =>
            r.changes.length === 0
              ? `${slug}: nothing to change (the blueprint already says so)`
              : [
                  `Updated ${slug}: ${r.changes.length} setting(s) changed, in force now`,
                  ...r.changes.map((c) => `  ${c.path}  ${shown(c.from)} -> ${shown(c.to)}`),
                ].join('\n'),
          );
        } finally {
          await client.close();
        }
      }),
    );

  platform
    .command('delete')
    .description('delete an archived platform for good: its file is removed, its slug reserved for a while')
    .argument('<slug>')
    .requiredOption('--confirm <slug>', 'the slug again, to confirm')
    .option(
      '--slug-grace-days <days>',
      "days before the slug may be used again (default: the config's deleted_slug_grace_days, else 30)",
    )
    .action((slug: string, o: { confirm: string; slugGraceDays?: string }) =>
      run(async (flags, out) => {
        let grace: number | undefined;
        if (o.slugGraceDays !== undefined) {
          grace = /^[0-9]{1,4}$/.test(o.slugGraceDays) ? Number(o.slugGraceDays) : Number.NaN;
          if (Number.isNaN(grace)) {
            throw new AppError(
              'platform.grace_invalid',
              'the slug grace period must be 0 to 3650 days',
              400,
              [{ path: '/slug_grace_days', reason: 'must be an integer from 0 to 3650' }],
            );
          }
        }
        const client = await connect(flags.data);
        try {
          const r = await client.deletePlatform(slug, { confirm: o.confirm, slugGraceDays: grace });
          out.result(
            r,
            () =>
              `Deleted ${r.deleted.slug} (${r.deleted.id}): its database file is removed; the slug is reserved until ${r.deleted.slug_free_at}`,
          );
        } finally {
          await client.close();
        }
      }),
    );

  const change = (
    name: 'suspend' | 'resume' | 'archive' | 'unarchive',
    description: string,
    withReason: boolean,
  ) => {
    const cmd = platform.command(name).description(description).argument('<slug>');
    if (withReason) cmd.option('--reason <text>', 'why (kept in the audit log)');
    cmd.action((slug: string, o: { reason?: string }) =>
      run(async (flags, out) => {
        const client = await connect(flags.data);
        try {
          const p =
            name === 'suspend'
              ? await client.suspend(slug, o.reason)
              : name === 'archive'
                ? await client.archive(slug, o.reason)
                : name === 'resume'
                  ? await client.resume(slug)
                  : await client.unarchive(slug);
          out.result(
            p,
            () => `${p.slug} is ${p.status}${p.status === 'archived' ? ` (file kept at ${p.db_file})` : ''}`,
          );
        } finally {
          await client.close();
        }
      }),
    );
  };
  const domain = platform.command('domain').description("a platform's custom domains");
  for (const verb of ['add', 'remove'] as const) {
    domain
      .command(verb)
      .description(verb === 'add' ? 'map a custom domain to the platform' : 'unmap a custom domain')
      .argument('<slug>')
      .argument('<host>', 'e.g. ai.example.com')
      .action((slug: string, host: string) =>
        run(async (flags, out) => {
          const client = await connect(flags.data);
          try {
            const p =
              verb === 'add' ? await client.addDomain(slug, host) : await client.removeDomain(slug, host);
            out.result(p, () => `${p.slug} domains: ${p.domains.join(', ') || '-'}`);
          } finally {
            await client.close();
          }
        }),
      );
  }

  platform
    .command('owner-reset')
    .description("print a one-time link (24 h) that lets the platform's owner set a new password")
    .argument('<slug>')
    .option('--email <email>', 'which owner (default: the oldest active owner)')
    .action((slug: string, o: { email?: string }) =>
      run(async (flags, out) => {
        const client = await connect(flags.data);
        try {
          const r = await client.ownerReset(slug, o.email);
          out.result(r, () =>
            [
              `One-time password-reset link for ${r.email} on ${r.slug} (valid until ${r.expires_at}):`,
              `  ${r.link}`,
              'Hand it to the owner over a trusted channel; it works once. Audited on both chains.',
            ].join('\n'),
          );
        } finally {
          await client.close();
        }
      }),
    );

  change('suspend', 'suspend a platform: its host answers 503 until resumed', true);
  change('resume', 'resume a suspended platform', false);
  change('archive', 'archive a platform: its host answers 410, its database is moved aside and kept', true);
  change('unarchive', 'bring an archived platform back', false);
}
