import type { Database } from 'bun:sqlite';

/** A brand file (the uploaded logo) as stored in the platform's database. */
export interface BrandAsset {
  name: string;
  content_type: string;
  bytes: Uint8Array;
  created_at: number;
}

/** Stores an asset; the name is its content's hash, so storing it twice changes nothing. */
export function putBrandAsset(db: Database, a: BrandAsset): void {
  db.query(
    'INSERT INTO brand_assets (name, content_type, bytes, created_at) VALUES (?, ?, ?, ?) ON CONFLICT (name) DO NOTHING',
  ).run(a.name, a.content_type, a.bytes, a.created_at);
}

export function getBrandAsset(db: Database, name: string): BrandAsset | null {
  const r = db
    .query<{ name: string; content_type: string; bytes: Uint8Array; created_at: number }, [string]>(
      'SELECT name, content_type, bytes, created_at FROM brand_assets WHERE name = ?',
    )
    .get(name);
  return r ? { ...r, bytes: new Uint8Array(r.bytes) } : null;
}

/** Deletes every asset but `keep` (the logo the blueprint points at now); how many went. */
export function deleteBrandAssetsExcept(db: Database, keep: string | null): number {
  return db.query('DELETE FROM brand_assets WHERE name IS NOT ?').run(keep).changes;
}
