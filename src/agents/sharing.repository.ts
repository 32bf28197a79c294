import type { Database } from 'bun:sqlite';

/*
 * The SQL of sharing (issue 12 items 1, 6 and 9; migrations/tenant/0019-sharing.sql): an
 * agent's share-link token and who opened it, an install's referrer, and the creator's figures.
 */

/** Sets (or, with nulls, clears) an agent's share token: sealed, and its hash. */
export function setShareToken(
  db: Database,
  agentId: string,
  sealed: string | null,
  hash: string | null,
  now: number,
): void {
  db.query('UPDATE agents SET share_token = ?, share_token_hash = ?, updated_at = ? WHERE id = ?').run(
    sealed,
    hash,
    now,
    agentId,
  );
}

export function shareTokenOf(db: Database, agentId: string): { sealed: string; hash: string } | null {
  const r = db
    .query<{ share_token: string | null; share_token_hash: string | null }, [string]>(
      'SELECT share_token, share_token_hash FROM agents WHERE id = ?',
    )
    .get(agentId);
  return r?.share_token && r.share_token_hash ? { sealed: r.share_token, hash: r.share_token_hash } : null;
}

/** Every sealed share token (for `keys rotate`). */
export function allShareTokens(db: Database): { id: string; share_token: string }[] {
  return db
    .query<{ id: string; share_token: string }, []>(
      'SELECT id, share_token FROM agents WHERE share_token IS NOT NULL',
    )
    .all();
}

export function rewriteShareToken(db: Database, agentId: string, sealed: string): void {
  db.query('UPDATE agents SET share_token = ? WHERE id = ?').run(sealed, agentId);
}

/** Records that `userId` opened the agent's link (the token named by `hash`). */
export function grantLinkAccess(
  db: Database,
  agentId: string,
  userId: string,
  hash: string,
  now: number,
): void {
  db.query(
    `INSERT INTO agent_link_access (agent_id, user_id, token_hash, granted_at) VALUES (?, ?, ?, ?)
     ON CONFLICT (agent_id, user_id) DO UPDATE SET token_hash = excluded.token_hash, granted_at = excluded.granted_at`,
  ).run(agentId, userId, hash, now);
}

/** Whether `userId` opened the agent's current link. */
export function hasLinkAccess(db: Database, agentId: string, userId: string): boolean {
  return (
    db
      .query<{ n: number }, [string, string]>(
        `SELECT count(*) AS n FROM agent_link_access g JOIN agents a ON a.id = g.agent_id
         WHERE g.agent_id = ? AND g.user_id = ? AND g.token_hash = a.share_token_hash`,
      )
      .get(agentId, userId)!.n > 0
  );
}

/** Forgets every grant of an agent's link (rotated or revoked). */
export function dropLinkAccess(db: Database, agentId: string): void {
  db.query('DELETE FROM agent_link_access WHERE agent_id = ?').run(agentId);
}

/** Marks a (new) install as referred by `referrerId`. */
export function setInstallReferrer(
  db: Database,
  listingId: string,
  userId: string,
  referrerId: string,
): void {
  db.query('UPDATE listing_installs SET referrer_id = ? WHERE listing_id = ? AND user_id = ?').run(
    referrerId,
    listingId,
    userId,
  );
}

/** How many installs `referrerId` brought since `since` (ms). */
export function referredInstalls(db: Database, referrerId: string, since: number): number {
  return db
    .query<{ n: number }, [string, number]>(
      'SELECT count(*) AS n FROM listing_installs WHERE referrer_id = ? AND installed_at >= ?',
    )
    .get(referrerId, since)!.n;
}

/** A row of the admins' table of referrers. */
export interface ReferrerRow {
  user_id: string;
  email: string;
  name: string;
  code: string;
  visits: number;
  signups: number;
  installs: number;
}

/**
 * The platform's referrers whose links brought anything since `since` (ms; visits from day
 * `fromDay`): most sign-ups, then installs, then visits first.
 */
export function topReferrers(db: Database, since: number, fromDay: number, limit: number): ReferrerRow[] {
  return db
    .query<ReferrerRow, [number, number, number]>(
      `SELECT * FROM (
         SELECT r.user_id, u.email, u.name, r.code,
                coalesce((SELECT sum(v.visits) FROM referral_visits v WHERE v.code = r.code AND v.day >= ?1), 0) AS visits,
                (SELECT count(*) FROM referral_signups s JOIN users n ON n.id = s.user_id
                 WHERE s.referrer_id = r.user_id AND s.created_at >= ?2 AND NOT (n.provisioned_via IS 'signup' AND n.email_verified_at IS NULL)) AS signups,
                (SELECT count(*) FROM listing_installs i WHERE i.referrer_id = r.user_id AND i.installed_at >= ?2) AS installs
         FROM referral_codes r JOIN users u ON u.id = r.user_id)
       WHERE visits > 0 OR signups > 0 OR installs > 0
       ORDER BY signups DESC, installs DESC, visits DESC, user_id LIMIT ?3`,
    )
    .all(fromDay, since, limit);
}

/** An agent and its versions, as the creator's view lists them. */
export interface CreatorAgentRow {
  id: string;
  slug: string;
  owner_id: string | null;
  visibility: string;
  draft: string;
  latest_version: number | null;
  listing_id: string | null;
  listing_status: string | null;
}

export function agentsOfCreator(db: Database, creatorId: string): CreatorAgentRow[] {
  return db
    .query<CreatorAgentRow, [string]>(
      `SELECT a.id, a.slug, a.owner_id, a.visibility, a.draft, a.latest_version,
              l.id AS listing_id, l.status AS listing_status
       FROM agents a LEFT JOIN listings l ON l.agent_id = a.id
       WHERE a.owner_id = ? ORDER BY a.created_at, a.id`,
    )
    .all(creatorId);
}

/** One figure per (agent, version); version null: the draft (conversations testing it). */
export interface VersionFigure {
  agent_id: string;
  version: number | null;
}

/** Installs per agent and version (and how many came through a referral) of a creator's agents. */
export function installsByVersion(
  db: Database,
  creatorId: string,
): (VersionFigure & { installs: number; referred: number })[] {
  return db
    .query<VersionFigure & { installs: number; referred: number }, [string]>(
      `SELECT l.agent_id, i.version, count(*) AS installs, count(i.referrer_id) AS referred
       FROM agents a JOIN listings l ON l.agent_id = a.id JOIN listing_installs i ON i.listing_id = l.id
       WHERE a.owner_id = ? GROUP BY l.agent_id, i.version`,
    )
    .all(creatorId);
}

/** Conversations, messages and distinct users per agent and version of a creator's agents. */
export function conversationsByVersion(
  db: Database,
  creatorId: string,
): (VersionFigure & { conversations: number; messages: number; users: number })[] {
  return db
    .query<VersionFigure & { conversations: number; messages: number; users: number }, [string]>(
      `SELECT c.agent_id, c.agent_version AS version, count(*) AS conversations,
              coalesce(sum((SELECT count(*) FROM conversation_messages m WHERE m.conversation_id = c.id)), 0) AS messages,
              count(DISTINCT c.user_id) AS users
       FROM agents a JOIN conversations c ON c.agent_id = a.id
       WHERE a.owner_id = ? GROUP BY c.agent_id, c.agent_version`,
    )
    .all(creatorId);
}

/** Distinct users per agent (all versions) of a creator's agents. */
export function usersByAgent(db: Database, creatorId: string): Map<string, number> {
  const rows = db
    .query<{ agent_id: string; users: number }, [string]>(
      `SELECT c.agent_id, count(DISTINCT c.user_id) AS users
       FROM agents a JOIN conversations c ON c.agent_id = a.id WHERE a.owner_id = ? GROUP BY c.agent_id`,
    )
    .all(creatorId);
  return new Map(rows.map((r) => [r.agent_id, r.users]));
}

/** Ratings per agent and version of a creator's agents. */
export function ratingsByVersion(
  db: Database,
  creatorId: string,
): (VersionFigure & { ratings: number; rating_sum: number })[] {
  return db
    .query<VersionFigure & { ratings: number; rating_sum: number }, [string]>(
      `SELECT l.agent_id, r.version, count(*) AS ratings, sum(r.rating) AS rating_sum
       FROM agents a JOIN listings l ON l.agent_id = a.id JOIN listing_reviews r ON r.listing_id = l.id
       WHERE a.owner_id = ? GROUP BY l.agent_id, r.version`,
    )
    .all(creatorId);
}

/** AI usage attributed to a creator (the owner at call time), per agent and version. */
export function usageByVersion(
  db: Database,
  creatorId: string,
): (VersionFigure & {
  calls: number;
  tokens_in: number;
  tokens_out: number;
  cost_micro: bigint;
  markup_micro: bigint;
})[] {
  const rows = db
    .query<Record<string, string | bigint | null>, [string]>(
      `SELECT agent_id, agent_version AS version, count(*) AS calls, sum(tokens_in) AS tokens_in,
              sum(tokens_out) AS tokens_out, sum(cost_micro) AS cost_micro, sum(markup_micro) AS markup_micro
       FROM usage_events WHERE creator_id = ? GROUP BY agent_id, agent_version`,
    )
    .safeIntegers(true)
    .all(creatorId);
  return rows.map((r) => ({
    agent_id: r.agent_id as string,
    version: r.version === null ? null : Number(r.version),
    calls: Number(r.calls),
    tokens_in: Number(r.tokens_in),
    tokens_out: Number(r.tokens_out),
    cost_micro: r.cost_micro as bigint,
    markup_micro: r.markup_micro as bigint,
  }));
}
