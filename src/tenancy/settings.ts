import type { Database } from 'bun:sqlite';
import { settingRows, upsertSettings } from './settings.repository.ts';

/** Instance-wide settings kept in control.db, so every command prints the same URLs. */
export interface InstanceSettings {
  base_domain: string;
  /** Scheme, host and port people use, e.g. `http://localhost:8080` or `https://ai.example.com`. */
  public_url: string;
}

/** Reads the stored settings (defaults when `serve` never ran). */
export function readSettings(db: Database): InstanceSettings {
  const rows = settingRows(db);
  const m = new Map(rows.map((r) => [r.key, r.value]));
  const base = m.get('base_domain') ?? 'localhost';
  return { base_domain: base, public_url: m.get('public_url') ?? `http://${base}:8080` };
}

/** Stores the settings (upsert). */
export function writeSettings(db: Database, s: InstanceSettings): void {
  upsertSettings(db, { base_domain: s.base_domain, public_url: s.public_url });
}

/** The public URL of a platform: the instance's scheme and port, the host `<slug>.<base>`. */
export function platformUrl(s: InstanceSettings, slug: string): string {
  const u = new URL(s.public_url);
  u.hostname = `${slug}.${s.base_domain}`;
  return u.toString();
}

/** The public URL behind a custom domain (same scheme and port as the instance). */
export function domainUrl(s: InstanceSettings, host: string): string {
  const u = new URL(s.public_url);
  u.hostname = host;
  return u.toString();
}
