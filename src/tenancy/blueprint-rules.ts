/**
 * Who may change what of a platform's blueprint after creation: the platform itself (an owner
 * or admin, `PATCH /api/v1/platform`), only the operator (`soulfra platform update`,
 * `PATCH /_operator/api/platforms/:slug`), or nobody through a blueprint update. The rule is
 * data (`BLUEPRINT_RULES`, `PACK_LOCKS`), read by one function (`checkBlueprintChange`), and
 * printed in docs/blueprint.md ("Changing a platform"); tests/blueprint-rules.test.ts holds
 * the table of cases.
 */
import { sha256Hex } from '../shared/crypto.ts';
import { AppError, type ErrorDetail } from '../shared/errors.ts';
import type { PlatformBlueprint } from './blueprint.models.ts';
import { isPlainObject } from './blueprint.ts';

/** Who asks for a change. */
export type BlueprintEditor = 'operator' | 'platform';

/** Who may change a setting: the platform (and the operator), only the operator, or nobody. */
export type BlueprintAuthority = 'platform' | 'operator' | 'nobody';

/** One rule: a JSON Pointer into the blueprint, who may change what is under it, and why. */
export interface BlueprintRule {
  path: string;
  who: BlueprintAuthority;
  why: string;
}

/**
 * The rules, most general first. A setting follows the longest rule path that contains it
 * (`/features/white_label` over `/features`).
 */
export const BLUEPRINT_RULES: readonly BlueprintRule[] = [
  { path: '/version', who: 'nobody', why: 'the format version, always 1' },
  { path: '/identity', who: 'platform', why: "the platform's own name and look" },
  {
    path: '/identity/domain',
    who: 'nobody',
    why: 'custom domains are mapped with `soulfra platform domain add` and `remove`',
  },
  {
    path: '/identity/email_from',
    who: 'operator',
    why: "the instance's mail relay sends as this address: the operator vouches for it",
  },
  {
    path: '/monetization',
    who: 'operator',
    why: "prices, fees and the revenue split are the instance's terms (billing)",
  },
  { path: '/features', who: 'platform', why: 'the product features the platform offers its users' },
  {
    path: '/features/white_label',
    who: 'operator',
    why: 'removing the Soulfra marks is granted by the operator',
  },
  {
    path: '/features/white_label_mobile',
    who: 'operator',
    why: 'a white-labeled mobile app is granted by the operator',
  },
  { path: '/ai_settings', who: 'platform', why: "the platform's providers, quality and safety settings" },
  {
    path: '/ai_settings/cloud_fallback',
    who: 'operator',
    why: 'whether requests may leave the instance for a cloud provider',
  },
  { path: '/governance', who: 'platform', why: "the platform's approval, moderation and retention rules" },
  {
    path: '/governance/compliance_packs',
    who: 'operator',
    why: 'compliance packs are controls the operator answers for',
  },
  {
    path: '/governance/hipaa_baa_signed',
    who: 'operator',
    why: 'the Business Associate Agreement is a contract the operator holds',
  },
];

/** The compliance pack names. */
export type CompliancePack = PlatformBlueprint['governance']['compliance_packs'][number];

/**
 * Settings a compliance pack locks while the platform is under it: only the operator may change
 * them then (the pack's controls depend on them).
 */
export const PACK_LOCKS: Readonly<Record<CompliancePack, { paths: readonly string[]; why: string }>> = {
  hipaa: {
    paths: [
      '/ai_settings/allowed_providers',
      '/ai_settings/safety_filters/redact_pii',
      '/governance/data_retention',
    ],
    why: 'which providers see PHI, its redaction and how long it is kept',
  },
  soc2: {
    paths: ['/governance/data_retention/audit_log_days'],
    why: 'the audit trail kept as SOC 2 evidence',
  },
  gdpr: {
    paths: ['/ai_settings/safety_filters/redact_pii', '/governance/data_retention/deleted_user_grace_days'],
    why: "personal data sent to providers and erased users' data",
  },
};

/** One changed setting: its path, and its value before and after (absent: not set). */
export interface BlueprintChange {
  path: string;
  from?: unknown;
  to?: unknown;
}

const RANK: Record<BlueprintAuthority, number> = { platform: 0, operator: 1, nobody: 2 };

const within = (path: string, prefix: string) => path === prefix || path.startsWith(`${prefix}/`);

/**
 * Who may change the setting at `path`: the longest rule containing it, made stricter by any
 * rule below it (a change that replaces a whole object touches everything in it).
 */
export function authorityOf(path: string): BlueprintRule {
  let best: BlueprintRule = { path: '', who: 'nobody', why: 'not a blueprint setting' };
  for (const r of BLUEPRINT_RULES) if (within(path, r.path) && r.path.length >= best.path.length) best = r;
  for (const r of BLUEPRINT_RULES)
    if (r.path.startsWith(`${path}/`) && RANK[r.who] > RANK[best.who]) best = r;
  return best;
}

/** The pack that locks `path` under these packs, if any (a lock on it, inside it or above it). */
export function packLockOf(path: string, packs: readonly CompliancePack[]): CompliancePack | null {
  for (const pack of packs) {
    if (PACK_LOCKS[pack].paths.some((p) => within(path, p) || within(p, path))) return pack;
  }
  return null;
}

/**
 * Every setting that differs between two blueprints, by JSON Pointer: objects compared key by
 * key, arrays and scalars as whole values. Sorted by path.
 */
export function blueprintDiff(before: unknown, after: unknown, path = ''): BlueprintChange[] {
  if (isPlainObject(before) && isPlainObject(after)) {
    const keys = [...new Set([...Object.keys(before), ...Object.keys(after)])].sort();
    return keys.flatMap((k) =>
      blueprintDiff(before[k], after[k], `${path}/${k.replace(/~/g, '~0').replace(/\//g, '~1')}`),
    );
  }
  if (JSON.stringify(before) === JSON.stringify(after)) return [];
  const c: BlueprintChange = { path };
  if (before !== undefined) c.from = before;
  if (after !== undefined) c.to = after;
  return [c];
}

/**
 * Checks that `by` may make every change from `current` to `next`, and returns the changes.
 * A setting nobody changes through an update: 400 `blueprint.not_changeable`. A platform
 * changing an operator's setting, or one its compliance pack locks: 403
 * `blueprint.operator_only`. Every refused setting is named in the details.
 */
export function checkBlueprintChange(
  current: PlatformBlueprint,
  next: PlatformBlueprint,
  by: BlueprintEditor,
): BlueprintChange[] {
  const changes = blueprintDiff(current, next);
  const fixed: ErrorDetail[] = [];
  const operatorOnly: ErrorDetail[] = [];
  for (const c of changes) {
    const rule = authorityOf(c.path);
    if (rule.who === 'nobody') {
      fixed.push({ path: c.path, reason: `cannot be changed by a blueprint update: ${rule.why}` });
      continue;
    }
    if (by === 'operator') continue;
    if (rule.who === 'operator') {
      operatorOnly.push({ path: c.path, reason: `only the operator may change this: ${rule.why}` });
      continue;
    }
    const pack = packLockOf(c.path, current.governance.compliance_packs);
    if (pack) {
      operatorOnly.push({
        path: c.path,
        reason: `locked by the ${pack} compliance pack (${PACK_LOCKS[pack].why}); only the operator may change it`,
      });
    }
  }
  if (fixed.length) {
    throw new AppError(
      'blueprint.not_changeable',
      `these settings cannot be changed by a blueprint update: ${fixed.map((d) => d.path).join(', ')}`,
      400,
      fixed,
    );
  }
  if (operatorOnly.length) {
    throw new AppError(
      'blueprint.operator_only',
      `only the operator may change: ${operatorOnly.map((d) => d.path).join(', ')}`,
      403,
      operatorOnly,
    );
  }
  return changes;
}

/** How long a value may be in an audit diff before it is recorded by its hash and length. */
const AUDIT_VALUE_MAX = 256;

/** A change as the audit trail keeps it: long values (a data: logo, custom CSS) by hash and length. */
export function auditedChanges(changes: readonly BlueprintChange[]): BlueprintChange[] {
  const shrink = (v: unknown): unknown => {
    if (v === undefined) return undefined;
    const text = JSON.stringify(v);
    return text.length <= AUDIT_VALUE_MAX ? v : { sha256: sha256Hex(text), length: text.length };
  };
  return changes.map((c) => {
    const out: BlueprintChange = { path: c.path };
    if ('from' in c) out.from = shrink(c.from);
    if ('to' in c) out.to = shrink(c.to);
    return out;
  });
}

/** A Markdown table with its columns padded, as the formatter (biome) writes it. */
function markdownTable(header: string[], rows: string[][]): string[] {
  const widths = header.map((h, i) => Math.max(3, h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i]!)).join(' | ')} |`;
  return [line(header), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)];
}

/** The rules as Markdown tables (docs/blueprint.md; a test keeps the page in step). */
export function blueprintRulesMarkdown(): string {
  const who = {
    platform: 'the platform (owner, admin) and the operator',
    operator: 'the operator only',
    nobody: 'nobody (see why)',
  };
  const rules = BLUEPRINT_RULES.map((r) => [`\`${r.path}\``, who[r.who], r.why]);
  const packs = (Object.keys(PACK_LOCKS) as CompliancePack[]).map((p) => [
    `\`${p}\``,
    PACK_LOCKS[p].paths.map((x) => `\`${x}\``).join(', '),
    PACK_LOCKS[p].why,
  ]);
  return [
    ...markdownTable(['Setting (and everything under it)', 'Who may change it', 'Why'], rules),
    '',
    ...markdownTable(['Under the pack', 'These settings become operator-only', 'Why'], packs),
  ].join('\n');
}
