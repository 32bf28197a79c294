/**
 * Collaboration (issue 12 item 4). An agent's owner (or a platform admin) invites members of
 * the same platform: editors change the draft and its knowledge and publish; viewers read it
 * and chat with its latest version, private or not. Neither deletes it, changes who sees it,
 * lists it in the marketplace or manages members (GitLab's developer/reporter, not its
 * maintainer). A member may leave. With features.collaborative_agents, the owner of a
 * conversation with an agent shares it with participants (people who may use that agent):
 * they read it, send turns in it and follow it live (`GET …/events`); renaming, deleting and
 * sharing stay the owner's. Every change is audited; a removal takes effect at once (the
 * removed user's event streams close, their next request is 404).
 */
import {
  actorOf,
  createUserRepository,
  type PlatformRequestContext,
  queueMail,
  roleCan,
} from '../identity/index.ts';
import { AppError } from '../shared/errors.ts';
import type { AgentRow } from './agents.repository.ts';
import { agentSpecFor, asUser, canEdit, manageableAgent, readableAgent, roleOn } from './agents.service.ts';
import {
  deleteMember,
  deleteParticipant,
  findMember,
  insertParticipant,
  listMembers,
  listParticipants,
  type MemberRole,
  type MemberRow,
  upsertMember,
} from './collaboration.repository.ts';
import { conversationFor, ownConversation, userOf } from './conversations.service.ts';
import { live } from './live.ts';

/** At most this many participants share one conversation. */
export const MAX_PARTICIPANTS = 20;
/**
 * How often an open event stream gets a comment: under Bun.serve's idle timeout (10 s by
 * default), which would otherwise cut a quiet stream; every EVENTS_CHECK_EVERY-th one, the
 * listener's access is checked again (every 15 s).
 */
export const EVENTS_KEEPALIVE_MS = 5_000;
export const EVENTS_CHECK_EVERY = 3;

const iso = (ms: number) => new Date(ms).toISOString();
const ROLES: readonly MemberRole[] = ['editor', 'viewer'];

const invalid = (path: string, reason: string, code = 'agent.invalid') =>
  new AppError(code, `${path.slice(1)}: ${reason}`, 400, [{ path, reason }]);

function memberView(m: MemberRow) {
  return {
    user_id: m.user_id,
    email: m.email,
    name: m.name,
    role: m.role,
    added_by: m.added_by,
    created_at: iso(m.created_at),
    updated_at: iso(m.updated_at),
  };
}

function roleOf(v: unknown): MemberRole {
  if (typeof v !== 'string' || !(ROLES as readonly string[]).includes(v))
    throw invalid('/role', `must be one of: ${ROLES.join(', ')}`);
  return v as MemberRole;
}

/** An active user of this platform named by `email` or `user_id` (404 `user.not_found`). */
function userFrom(c: PlatformRequestContext, body: Record<string, unknown>, code = 'agent.invalid') {
  const users = createUserRepository({ db: c.db });
  const { email, user_id } = body;
  if ((email === undefined) === (user_id === undefined))
    throw new AppError(code, 'email or user_id: give exactly one', 400, [
      { path: email === undefined ? '/email' : '/user_id', reason: 'give exactly one of email and user_id' },
    ]);
  if (email !== undefined && (typeof email !== 'string' || !email.trim() || email.length > 320))
    throw invalid('/email', 'must be an email address', code);
  if (user_id !== undefined && (typeof user_id !== 'string' || !user_id || user_id.length > 64))
    throw invalid('/user_id', "must be a user's id", code);
  const u = typeof email === 'string' ? users.byEmail(email.trim()) : users.byId(user_id as string);
  if (u?.status !== 'active')
    throw new AppError(
      'user.not_found',
      `${email !== undefined ? 'email' : 'user_id'}: no active user of this platform has it (invite them to the platform first)`,
      404,
      [{ path: email !== undefined ? '/email' : '/user_id', reason: 'is no active user of this platform' }],
    );
  return u;
}

function ownerOf(c: PlatformRequestContext, a: AgentRow) {
  const u = a.owner_id ? createUserRepository({ db: c.db }).byId(a.owner_id) : null;
  return u ? { user_id: u.id, email: u.email, name: u.name } : null;
}

/** An agent's owner and members: for its owner, the admins and its editors (viewers: 403). */
export function members(c: PlatformRequestContext, agentId: string) {
  const a = readableAgent(c, agentId);
  if (!canEdit(c, a))
    throw new AppError(
      'agent.forbidden',
      "only the agent's owner, its editors or an admin may see its members",
      403,
    );
  return { owner: ownerOf(c, a), members: listMembers(c.db, a.id).map(memberView), your_role: roleOn(c, a) };
}

/**
 * Adds a member (or gives a member another role): an active user of this platform, not its
 * owner; an editor needs a platform role that may write agents (creator and up: the routes
 * that change agents ask for `agents:write`). Mails them a notice with a link to the agent.
 */
export function addMember(c: PlatformRequestContext, agentId: string, body: Record<string, unknown>) {
  const a = manageableAgent(c, agentId, 'manage its members');
  const role = roleOf(body.role);
  const u = userFrom(c, body);
  if (u.id === a.owner_id)
    throw new AppError('agent.member_is_owner', 'this user owns the agent already', 409, [
      { path: body.email !== undefined ? '/email' : '/user_id', reason: 'is the owner' },
    ]);
  if (role === 'editor' && !roleCan(u.role, 'agents:write'))
    throw new AppError(
      'agent.member_cannot_edit',
      `role: ${u.email} is a ${u.role} of this platform, who may not change agents: make them a viewer, or give them the creator role first`,
      409,
      [{ path: '/role', reason: 'needs a platform role that may change agents' }],
    );
  const before = findMember(c.db, a.id, u.id);
  const now = c.app.clock.now();
  const name = (JSON.parse(a.draft) as { name: string }).name;
  c.db.transaction(() => {
    upsertMember(c.db, { agent_id: a.id, user_id: u.id, role, added_by: actorOf(c.principal), now });
    c.app.audit.append(c.db, {
      actor: actorOf(c.principal),
      action: before ? 'agent.member_changed' : 'agent.member_added',
      target: `agent:${a.id}`,
      details: { user: u.id, role, ...(before ? { from: before.role } : {}) },
    });
    if (!before)
      queueMail(
        c.db,
        {
          to_email: u.email,
          template: 'agent_member',
          subject: `You can now ${role === 'editor' ? 'edit' : 'use'} the agent ${name}`,
          body: `You were added as ${role === 'editor' ? 'an editor' : 'a viewer'} of the agent ${name} on ${c.platform.name}.\n\n${c.origin}/app/agents${role === 'editor' ? `/${a.id}` : ''}\n`,
        },
        now,
      );
  })();
  // A role taken away ends the streams it opened (the next request reads the new role).
  if (before && before.role !== role) live(c.app.state).closeUserOnAgent(c.platform.id, a.id, u.id);
  return { status: before ? 200 : 201, member: memberView(findMember(c.db, a.id, u.id)!) };
}

export function changeMember(
  c: PlatformRequestContext,
  agentId: string,
  userId: string,
  body: Record<string, unknown>,
) {
  const a = manageableAgent(c, agentId, 'manage its members');
  if (!findMember(c.db, a.id, userId)) throw memberNotFound();
  const r = addMember(c, agentId, { user_id: userId, role: body.role });
  return { member: r.member };
}

const memberNotFound = () =>
  new AppError('agent.member_not_found', 'this user is no member of the agent', 404);

/** Removes a member (the owner and admins; a member may remove themselves). At once. */
export function removeMember(c: PlatformRequestContext, agentId: string, userId: string): void {
  const self = (() => {
    try {
      return userOf(c) === userId;
    } catch {
      return false;
    }
  })();
  const a = self ? readableAgent(c, agentId) : manageableAgent(c, agentId, 'manage its members');
  const before = findMember(c.db, a.id, userId);
  if (!before) throw memberNotFound();
  c.db.transaction(() => {
    deleteMember(c.db, a.id, userId);
    c.app.audit.append(c.db, {
      actor: actorOf(c.principal),
      action: 'agent.member_removed',
      target: `agent:${a.id}`,
      details: { user: userId, role: before.role },
    });
  })();
  live(c.app.state).closeUserOnAgent(c.platform.id, a.id, userId);
}

// Shared conversations (features.collaborative_agents gates these routes).

export function participants(c: PlatformRequestContext, id: string) {
  const { row, owner } = conversationFor(c, id);
  const users = createUserRepository({ db: c.db });
  const o = users.byId(row.user_id);
  return {
    owner: o ? { user_id: o.id, name: o.name, ...(owner ? { email: o.email } : {}) } : null,
    participants: listParticipants(c.db, id).map((p) => ({
      user_id: p.user_id,
      name: p.name,
      // Emails are for the owner, who added them.
      ...(owner ? { email: p.email } : {}),
      added_at: iso(p.created_at),
    })),
  };
}

/**
 * Shares a conversation with an agent with another user of the platform who may use that agent
 * (its version; a draft test: its editors). 409 for a conversation without an agent.
 */
export function addParticipant(c: PlatformRequestContext, id: string, body: Record<string, unknown>) {
  const row = ownConversation(c, id, 'share it');
  if (!row.agent_id)
    throw new AppError(
      'conversation.not_shareable',
      'only a conversation with an agent can be shared: start one with the agent',
      409,
    );
  const u = userFrom(c, body, 'conversation.invalid');
  const path = body.email !== undefined ? '/email' : '/user_id';
  if (u.id === row.user_id)
    throw new AppError('conversation.participant_is_owner', 'this is your own conversation', 409, [
      { path, reason: 'is the owner' },
    ]);
  try {
    agentSpecFor(asUser(c, u), row.agent_id, row.agent_version);
  } catch {
    throw new AppError(
      'conversation.participant_cannot_use_agent',
      `${path.slice(1)}: ${u.email} may not use this conversation's agent${row.agent_version === null ? ' draft (its editors only)' : ''}: invite them to the agent first`,
      409,
      [{ path, reason: 'may not use the agent' }],
    );
  }
  if (row.participant_count >= MAX_PARTICIPANTS)
    throw new AppError(
      'conversation.too_many_participants',
      `a conversation is shared with at most ${MAX_PARTICIPANTS} people`,
      409,
    );
  const added = c.db.transaction(() => {
    const fresh = insertParticipant(c.db, {
      conversation_id: id,
      user_id: u.id,
      added_by: actorOf(c.principal),
      now: c.app.clock.now(),
    });
    if (fresh)
      c.app.audit.append(c.db, {
        actor: actorOf(c.principal),
        action: 'conversation.participant_added',
        target: `conversation:${id}`,
        details: { user: u.id, agent: row.agent_id },
      });
    return fresh;
  })();
  if (added)
    live(c.app.state).publish(c.platform.id, id, {
      event: 'participant_added',
      data: { user_id: u.id, name: u.name },
    });
  return { status: added ? 201 : 200, ...participants(c, id) };
}

/** Ends a user's share of a conversation (its owner; a participant may leave). At once. */
export function removeParticipant(c: PlatformRequestContext, id: string, userId: string): void {
  const self = userOf(c) === userId;
  if (self) conversationFor(c, id);
  else ownConversation(c, id, 'change who shares it');
  const done = c.db.transaction(() => {
    const gone = deleteParticipant(c.db, id, userId);
    if (gone)
      c.app.audit.append(c.db, {
        actor: actorOf(c.principal),
        action: 'conversation.participant_removed',
        target: `conversation:${id}`,
        details: { user: userId },
      });
    return gone;
  })();
  if (!done)
    throw new AppError(
      'conversation.participant_not_found',
      'this user does not share the conversation',
      404,
    );
  const hub = live(c.app.state);
  hub.close(c.platform.id, id, (l) => l.userId === userId);
  hub.publish(c.platform.id, id, { event: 'participant_removed', data: { user_id: userId } });
}

/**
 * The conversation's events as server-sent events, for its owner and participants: `ready`
 * (how many messages it has: a client reads the conversation after it), then `message` (a
 * stored message, the user's or the answer), `delta` (a piece of the answer streaming),
 * `participant_added`, `participant_removed`; a comment every EVENTS_KEEPALIVE_MS, and every
 * EVENTS_CHECK_EVERY-th time the listener's access is checked again. The stream ends when its
 * listener loses access (removed from the conversation or the agent, disabled, the feature off)
 * and when the server stops.
 */
export function conversationEvents(c: PlatformRequestContext, id: string): Response {
  const { row } = conversationFor(c, id);
  const userId = userOf(c);
  const platformId = c.platform.id;
  const hub = live(c.app.state);
  const enc = new TextEncoder();
  let ctl: ReadableStreamDefaultController<Uint8Array> | null = null;
  let timer: ReturnType<typeof setInterval> | null = null;
  let unlisten: (() => void) | null = null;
  const end = () => {
    if (timer) clearInterval(timer);
    timer = null;
    unlisten?.();
    unlisten = null;
    try {
      ctl?.close();
    } catch {
      // Already closed or cancelled.
    }
  };
  const write = (chunk: string) => {
    try {
      ctl?.enqueue(enc.encode(chunk));
    } catch {
      end();
    }
  };
  // Still allowed? Read with a lease of its own (the request's ends when this handler returns).
  const stillAllowed = () => {
    const lease = c.app.platformDbs.acquire(platformId);
    try {
      if (createUserRepository({ db: lease.db }).byId(userId)?.status !== 'active') return false;
      conversationFor(Object.create(c, { db: { value: lease.db } }) as PlatformRequestContext, id);
      return true;
    } catch {
      return false;
    } finally {
      lease.release();
    }
  };
  const check = () => {
    if (stillAllowed()) write(': keep-alive\n\n');
    else end();
  };
  let ticks = 0;
  const tick = () => {
    if (++ticks % EVENTS_CHECK_EVERY === 0) check();
    else write(': keep-alive\n\n');
  };
  // Registered now, so that a 429 past the bounds is the answer rather than an empty stream.
  unlisten = hub.listen(platformId, id, {
    userId,
    agentId: row.agent_id,
    push: (e) => write(`event: ${e.event}\ndata: ${JSON.stringify(e.data)}\n\n`),
    close: end,
    check,
  });
  const stream = new ReadableStream<Uint8Array>({
    start(controller) {
      ctl = controller;
      write(
        `event: ready\ndata: ${JSON.stringify({ conversation: id, message_count: row.message_count })}\n\n`,
      );
      timer = setInterval(tick, EVENTS_KEEPALIVE_MS);
      (timer as { unref?: () => void }).unref?.();
    },
    cancel() {
      ctl = null;
      end();
    },
  });
  return new Response(stream, {
    headers: {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache, no-store',
      'x-accel-buffering': 'no',
    },
  });
}
