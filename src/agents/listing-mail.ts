/**
 * What the creator of a listing is told by mail when its listing is decided on: each moderation
 * action (with the moderator's reason), an admin's edit, the community's decision, and a hold by
 * the safety checks. Queued in the platform's outbox inside the caller's transaction (the mailer
 * wraps it in the platform's brand and, white-labeled, never names Soulfra); the link is built
 * from the platform's stored public URL.
 */
import { createUserRepository, type PlatformRequestContext, queueMail } from '../identity/index.ts';
import { findAgent } from './agents.repository.ts';
import type { ListingRow } from './marketplace.repository.ts';

/** What happened, as the mail's subject and first sentence say it. */
const SAID: Record<string, { subject: string; line: string }> = {
  approve: {
    subject: 'is published',
    line: 'A moderator approved your listing; it is now in the marketplace.',
  },
  reject: {
    subject: 'was not approved',
    line: 'A moderator rejected your listing; it is not in the marketplace.',
  },
  suspend: {
    subject: 'is suspended',
    line: 'A moderator suspended your listing: it left the marketplace, and keeps working for those who installed it.',
  },
  restore: { subject: 'is back', line: 'A moderator restored your listing; it is in the marketplace again.' },
  revoke: {
    subject: 'was revoked',
    line: 'A moderator revoked your listing: it left the marketplace and stopped working for those who installed it.',
  },
  dismiss: {
    subject: 'reports were dismissed',
    line: 'A moderator looked at the reports about your listing and dismissed them.',
  },
  edit: { subject: 'was edited', line: 'A moderator edited your listing.' },
  community_approved: {
    subject: 'is published',
    line: "The platform's members approved your listing; it is now in the marketplace.",
  },
  community_rejected: {
    subject: 'is in review',
    line: "The platform's members voted against your listing; the moderators will decide on it.",
  },
  safety_hold: {
    subject: 'is in review',
    line: "The platform's safety checks held your listing; a moderator will look at it.",
  },
};

/**
 * Queues the mail to the listing agent's owner (nothing when it has no owner any more, or the
 * owner is the moderator who acted). `reason`: the moderator's, or the rule that held it.
 */
export function notifyCreator(
  c: PlatformRequestContext,
  l: Pick<ListingRow, 'id' | 'title' | 'agent_id'>,
  what: keyof typeof SAID | string,
  reason: string,
): string | null {
  const said = SAID[what];
  const ownerId = findAgent(c.db, l.agent_id)?.owner_id;
  if (!said || !ownerId) return null;
  const p = c.principal;
  // Who acted on their own listing needs no mail about it, but a hold is news to its creator.
  if (what !== 'safety_hold' && p && p.kind === 'user' && p.userId === ownerId) return null;
  const owner = createUserRepository({ db: c.db }).byId(ownerId);
  if (!owner) return null;
  const platform = c.blueprint().identity.name;
  const link = `${c.origin}/app/marketplace/${l.id}`;
  return queueMail(
    c.db,
    {
      to_email: owner.email,
      template: `listing_${what}`,
      subject: `Your listing "${l.title}" ${said.subject}`,
      body: `${said.line}\n\nListing: ${l.title} (${platform} marketplace)\nReason: ${reason}\n\n${link}\n`,
    },
    c.app.clock.now(),
  );
}
