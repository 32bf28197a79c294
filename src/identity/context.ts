import type { Database } from 'bun:sqlite';
import type { App } from '../app/index.ts';
import type { PlatformBlueprint } from '../tenancy/index.ts';
import type { Principal } from './permissions.ts';

/** The platform a request is for, as the host router resolved it. */
export interface PlatformRef {
  id: string;
  slug: string;
  name: string;
}

/**
 * What every platform route handler gets: its platform, that platform's database (leased for
 * the request), who is asking (null when anonymous), and the client's address. Set by the
 * server before any handler runs; a handler can reach no other platform's data.
 */
export interface PlatformRequestContext {
  app: App;
  platform: PlatformRef;
  db: Database;
  principal: Principal | null;
  /** A signed-in session that still owes its second factor (only MFA routes accept it). */
  pendingMfa: { sessionIdHash: string; userId: string; csrfToken: string } | null;
  ip: string | null;
  /** The platform's blueprint (AI policy, safety, monetization), read when first needed. */
  blueprint(): PlatformBlueprint;
  /** The public origin of this platform (scheme://host[:port]) for redirects and metadata. */
  origin: string;
}
