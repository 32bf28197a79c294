import type { PlatformHead } from './platforms.repository.ts';

/**
 * The in-memory index the router consults on every request: slug → platform and custom domain
 * → platform. It holds heads only (no blueprints), ~200 bytes a platform, so 10,000 platforms
 * are ~2 MB. It is exact because one process owns the data dir and every write to the
 * platforms table goes through the tenancy service, which updates it after commit.
 */
export class PlatformRegistry {
  readonly #byId = new Map<string, PlatformHead>();
  readonly #bySlug = new Map<string, PlatformHead>();
  readonly #byDomain = new Map<string, string>();

  /** Replaces everything (at boot). */
  load(heads: PlatformHead[], domains: { host: string; platform_id: string }[]): void {
    this.#byId.clear();
    this.#bySlug.clear();
    this.#byDomain.clear();
    for (const h of heads) this.put(h);
    for (const d of domains) this.#byDomain.set(d.host, d.platform_id);
  }

  /** Adds or replaces one platform. */
  put(h: PlatformHead): void {
    const old = this.#byId.get(h.id);
    if (old && old.slug !== h.slug) this.#bySlug.delete(old.slug);
    this.#byId.set(h.id, h);
    this.#bySlug.set(h.slug, h);
  }

  /** Forgets a platform and its custom domains (deleted). */
  remove(id: string): void {
    const h = this.#byId.get(id);
    if (!h) return;
    this.#byId.delete(id);
    if (this.#bySlug.get(h.slug)?.id === id) this.#bySlug.delete(h.slug);
    for (const [host, pid] of this.#byDomain) if (pid === id) this.#byDomain.delete(host);
  }

  /** Maps a custom domain. */
  putDomain(host: string, platformId: string): void {
    this.#byDomain.set(host, platformId);
  }

  /** Unmaps a custom domain. */
  deleteDomain(host: string): void {
    this.#byDomain.delete(host);
  }

  /** By slug. */
  bySlug(slug: string): PlatformHead | undefined {
    return this.#bySlug.get(slug);
  }

  /** By id. */
  byId(id: string): PlatformHead | undefined {
    return this.#byId.get(id);
  }

  /** By custom domain. */
  byDomain(host: string): PlatformHead | undefined {
    const id = this.#byDomain.get(host);
    return id ? this.#byId.get(id) : undefined;
  }

  /** The custom domains of one platform. */
  domainsOf(platformId: string): string[] {
    const out: string[] = [];
    for (const [host, id] of this.#byDomain) if (id === platformId) out.push(host);
    return out.sort();
  }

  /** How many platforms there are. */
  get size(): number {
    return this.#byId.size;
  }
}
