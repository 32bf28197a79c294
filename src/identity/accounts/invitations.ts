import type { Database } from 'bun:sqlite';
import { type App, admit } from '../../app/index.ts';
import { randomToken, sha256Hex } from '../../shared/crypto.ts';
import { AppError } from '../../shared/errors.ts';
import { newId } from '../../shared/ids.ts';
import { iso } from '../../shared/time.ts';
import { queueMail } from '../mail/outbox.ts';
import { addressFailed, checkAddress } from './auth.service.ts';
import { createOnboardingRepository, type InvitationWithUser } from './onboarding.repository.ts';
import { hashPassword, LANE_QUEUE_CAP } from './passwords.ts';
import { createUserRepository, type PlatformRole } from './users.repository.ts';
import { checkPassword, claimInvitation, insertUser, type UserView, userView } from './users.service.ts';

/** How long an invitation link lives: 7 days from its (re)send. */
export const INVITATION_TTL_MS = 7 * 24 * 3_600_000;

/** An invitation as admins see it (never its token). */
export interface InvitationView {
  id: string;
  email: string;
  role: PlatformRole;
  user_id: string | null;
  status: 'pending' | 'accepted' | 'expired' | 'revoked';
  invited_by: string;
  created_at: string;
  expires_at: string;
  sent_at: string;
  sends: number;
  accepted_at: string | null;
  revoked_at: string | null;
}

function statusOf(r: InvitationWithUser, now: number): InvitationView['status'] {
  // Revoked, or its account was deleted before it was accepted.
  if (r.revoked_at !== null || (r.user_id === null && r.accepted_at === null)) return 'revoked';
  // Accepted through the link, or claimed by the invitee's first SSO sign-in.
  if (r.accepted_at !== null || !r.user_open) return 'accepted';
  return now >= r.expires_at ? 'expired' : 'pending';
}

function view(r: InvitationWithUser, now: number): InvitationView {
  return {
    id: r.id,
    email: r.email,
    role: r.role,
    user_id: r.user_id,
    status: statusOf(r, now),
    invited_by: r.invited_by,
    created_at: iso(r.created_at),
    expires_at: iso(r.expires_at),
    sent_at: iso(r.sent_at),
    sends: r.sends,
    accepted_at: r.accepted_at === null ? null : iso(r.accepted_at),
    revoked_at: r.revoked_at === null ? null : iso(r.revoked_at),
  };
}

function queueInvitation(
  db: Database,
  to: string,
  token: string,
  platformName: string,
  origin: string,
  now: number,
): void {
  const link = `${origin}/app/accept-invite?token=${token}`;
  // The body holds the live link: queued sealed, wiped on delivery (outbox.ts).
  queueMail(
    db,
    {
      to_email: to,
      template: 'invitation',
      subject: `You are invited to ${platformName}`,
      body: `You are invited to join ${platformName}. Open this link within 7 days to choose a password:\n\n${link}\n\nIf the platform signs in with single sign-on, you can sign in with it instead.\n`,
    },
    now,
  );
}

/**
 * Invites someone: a placeholder account with the role (no password: it links on the invitee's
 * first SSO sign-in by its email, as any invitation account), and a one-time link, valid 7 days,
 * mailed to them (only its hash is kept). Only an owner invites an owner; a taken email is 409
 * `user.email_taken`. Audited (`user.created`, `user.invited`).
 */
export function createInvitation(
  app: App,
  db: Database,
  platformName: string,
  input: { email?: unknown; role?: unknown; name?: unknown },
  by: { actor: string; role: PlatformRole | null },
  origin: string,
): InvitationView {
  const token = randomToken(32);
  const repo = createOnboardingRepository({ db });
  const id = newId('inv');
  db.transaction(() => {
    const user = insertUser(
      app,
      db,
      { email: input.email, role: input.role, name: input.name },
      by,
      null,
      'invite',
    );
    const now = app.clock.now();
    repo.insertInvitation({
      id,
      email: user.email,
      role: user.role,
      user_id: user.id,
      token_hash: sha256Hex(token),
      invited_by: by.actor,
      created_at: now,
      expires_at: now + INVITATION_TTL_MS,
      sent_at: now,
      sends: 1,
      accepted_at: null,
      revoked_at: null,
    });
    queueInvitation(db, user.email, token, platformName, origin, now);
    app.audit.append(db, {
      actor: by.actor,
      action: 'user.invited',
      target: `user:${user.id}`,
      details: { invitation: id, email: user.email, role: user.role },
    });
  }).immediate();
  return view(repo.invitation(id)!, app.clock.now());
}

/** Every invitation, oldest first. */
export function listInvitations(app: App, db: Database): InvitationView[] {
  const now = app.clock.now();
  return createOnboardingRepository({ db })
    .invitations()
    .map((r) => view(r, now));
}

function openInvitation(
  db: Database,
  id: string,
  byRole: PlatformRole | null,
  what: string,
): InvitationWithUser {
  const r = createOnboardingRepository({ db }).invitation(id);
  if (!r) throw new AppError('invitation.not_found', `no invitation ${id}`, 404);
  if (r.role === 'owner' && byRole !== null && byRole !== 'owner')
    throw new AppError('auth.forbidden', `only an owner can ${what} an owner's invitation`, 403);
  if (r.revoked_at !== null || r.user_id === null)
    throw new AppError('invitation.revoked', 'this invitation was revoked', 409);
  if (r.accepted_at !== null || !r.user_open)
    throw new AppError('invitation.accepted', 'this invitation was accepted already', 409);
  return r;
}

/**
 * Sends an invitation again with a new link (the old link stops working) valid 7 days from now.
 * Audited (`user.invitation_resent`).
 */
export function resendInvitation(
  app: App,
  db: Database,
  platformName: string,
  id: string,
  by: { actor: string; role: PlatformRole | null },
  origin: string,
): InvitationView {
  const token = randomToken(32);
  const repo = createOnboardingRepository({ db });
  db.transaction(() => {
    const r = openInvitation(db, id, by.role, 'resend');
    const now = app.clock.now();
    repo.resendInvitation(id, sha256Hex(token), now, now + INVITATION_TTL_MS);
    queueInvitation(db, r.email, token, platformName, origin, now);
    app.audit.append(db, {
      actor: by.actor,
      action: 'user.invitation_resent',
      target: `user:${r.user_id}`,
      details: { invitation: id, email: r.email },
    });
  }).immediate();
  return view(repo.invitation(id)!, app.clock.now());
}

/**
 * Revokes an invitation: its link stops working and its placeholder account (never claimed) is
 * deleted, so SSO no longer links it either. Audited (`user.invitation_revoked`).
 */
export function revokeInvitation(
  app: App,
  db: Database,
  id: string,
  by: { actor: string; role: PlatformRole | null },
): InvitationView {
  const repo = createOnboardingRepository({ db });
  db.transaction(() => {
    const r = openInvitation(db, id, by.role, 'revoke');
    const now = app.clock.now();
    repo.revokeInvitation(id, now);
    // The placeholder goes; the invitation row stays for the record (its user_id set NULL).
    if (r.user_id) createUserRepository({ db }).delete(r.user_id);
    app.audit.append(db, {
      actor: by.actor,
      action: 'user.invitation_revoked',
      target: `user:${r.user_id}`,
      details: { invitation: id, email: r.email, placeholder_deleted: r.user_id !== null },
    });
  }).immediate();
  return view(repo.invitation(id)!, app.clock.now());
}

/**
 * Accepts an invitation from its link: sets the account's password, marks its email confirmed
 * (the link proved the mailbox) and claims it. The link is checked before the (slow) hash; a
 * bad, used, expired or revoked link is 400 `auth.token_invalid` and counts against the
 * address; a locked address is refused unless the link is live. Audited (`user.invitation_accepted`).
 */
export async function acceptInvitation(
  app: App,
  db: Database,
  platformId: string,
  input: { token?: unknown; password?: unknown; name?: unknown },
  client: { ip: string | null },
): Promise<UserView> {
  const live = liveInvitation(app, db, input.token);
  if (!live) checkAddress(db, client.ip, app.clock.now());
  const pw = checkPassword(input.password);
  if (!live) {
    addressFailed(db, client.ip, app.clock.now());
    throw invalidLink();
  }
  // A platform held over its operator plan's limits takes no new accounts (402).
  admit(db, 'user');
  const hash = await hashPassword(app, pw, { lane: platformId, queueCap: LANE_QUEUE_CAP });
  const users = createUserRepository({ db });
  return db
    .transaction(() => {
      // Checked again: the link may have been used, resent or revoked while the hash ran.
      const r = liveInvitation(app, db, input.token);
      if (!r || r.id !== live.id || !r.user_id) throw invalidLink();
      const now = app.clock.now();
      users.update(
        r.user_id,
        {
          password_hash: hash,
          email_verified_at: now,
          ...(typeof input.name === 'string' && input.name.length <= 200 ? { name: input.name } : {}),
        },
        now,
      );
      claimInvitation(db, r.user_id);
      createOnboardingRepository({ db }).acceptInvitation(r.id, now);
      app.audit.append(db, {
        actor: `user:${r.user_id}`,
        action: 'user.invitation_accepted',
        target: `user:${r.user_id}`,
        details: { invitation: r.id, email: r.email, role: r.role },
      });
      return userView(users.byId(r.user_id)!);
    })
    .immediate();
}

const invalidLink = () =>
  new AppError('auth.token_invalid', 'this link is invalid or has expired; ask for a new invitation', 400, [
    { path: '/token', reason: 'invalid or expired' },
  ]);

/** The open invitation a live link token names (unexpired, unrevoked, unaccepted), or null. */
function liveInvitation(app: App, db: Database, token: unknown): InvitationWithUser | null {
  if (typeof token !== 'string' || token.length < 20 || token.length > 100) return null;
  const r = createOnboardingRepository({ db }).invitationByToken(sha256Hex(token));
  if (!r || statusOf(r, app.clock.now()) !== 'pending') return null;
  return r;
}
