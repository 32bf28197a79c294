/**
 * Shared conversations in memory (issue 12 item 4): who listens to a conversation's events
 * (`GET /api/v1/conversations/:id/events`), and which conversations have a turn streaming (one
 * at a time). Per App (`app.state`), keyed by platform and conversation: nothing of one platform
 * reaches another's listeners. Bounded: at most `MAX_PER_CONVERSATION` listeners on one
 * conversation and `MAX_LISTENERS` in all; a turn's lock lives as long as its stream.
 */
import { type AppState, stateKey } from '../app/index.ts';
import { AppError } from '../shared/errors.ts';

export const MAX_PER_CONVERSATION = 32;
export const MAX_LISTENERS = 5_000;

/** One event pushed to listeners: its name and JSON data. */
export interface LiveEvent {
  event: string;
  data: unknown;
}

/** A listener of one conversation: the user it is for, and how to reach and end it. */
export interface Listener {
  userId: string;
  agentId: string | null;
  push(e: LiveEvent): void;
  close(): void;
  /** Checks its access again (ends it when lost) and keeps it alive. */
  check(): void;
}

class LiveHub {
  readonly listeners = new Map<string, Set<Listener>>();
  readonly busy = new Set<string>();
  total = 0;
}

const LIVE = stateKey('agents.live', () => new LiveHub());
const keyOf = (platformId: string, conversationId: string) => `${platformId}\u0000${conversationId}`;

/** The live state of one App. */
export function live(state: AppState) {
  const hub = state.get(LIVE);
  return {
    /** Adds a listener (429 `conversation.too_many_listeners` past the bounds); returns its removal. */
    listen(platformId: string, conversationId: string, l: Listener): () => void {
      const k = keyOf(platformId, conversationId);
      let set = hub.listeners.get(k);
      if ((set?.size ?? 0) >= MAX_PER_CONVERSATION || hub.total >= MAX_LISTENERS)
        throw new AppError(
          'conversation.too_many_listeners',
          'too many open event streams on this conversation: close one and try again',
          429,
        );
      if (!set) {
        set = new Set();
        hub.listeners.set(k, set);
      }
      set.add(l);
      hub.total++;
      return () => {
        const s = hub.listeners.get(k);
        if (!s?.delete(l)) return;
        hub.total--;
        if (!s.size) hub.listeners.delete(k);
      };
    },
    /** Sends an event to every listener of a conversation. */
    publish(platformId: string, conversationId: string, e: LiveEvent): void {
      for (const l of hub.listeners.get(keyOf(platformId, conversationId)) ?? []) l.push(e);
    },
    /** Ends the streams of a conversation's listeners that `which` picks (all when omitted). */
    close(platformId: string, conversationId: string, which: (l: Listener) => boolean = () => true): void {
      for (const l of [...(hub.listeners.get(keyOf(platformId, conversationId)) ?? [])])
        if (which(l)) l.close();
    },
    /** Ends every stream (the server is stopping: clients reconnect to the next one). */
    closeAll(): void {
      for (const set of [...hub.listeners.values()]) for (const l of [...set]) l.close();
    },
    /** Runs every listener's check now (what each one's timer does every so often). */
    recheck(): void {
      for (const set of [...hub.listeners.values()]) for (const l of [...set]) l.check();
    },
    /** Ends the streams a user has open on any conversation of a platform with one agent. */
    closeUserOnAgent(platformId: string, agentId: string, userId: string): void {
      const prefix = `${platformId}\u0000`;
      for (const [k, set] of [...hub.listeners])
        if (k.startsWith(prefix))
          for (const l of [...set]) if (l.userId === userId && l.agentId === agentId) l.close();
    },
    /**
     * Takes a conversation's turn lock (409 `conversation.busy` while another turn streams);
     * the returned `end` releases it (once; later calls do nothing).
     */
    beginTurn(platformId: string, conversationId: string): () => void {
      const k = keyOf(platformId, conversationId);
      if (hub.busy.has(k))
        throw new AppError(
          'conversation.busy',
          'another message of this conversation is being answered: wait for it to finish',
          409,
        );
      hub.busy.add(k);
      let ended = false;
      return () => {
        if (ended) return;
        ended = true;
        hub.busy.delete(k);
      };
    },
  };
}

/** Ends every open conversation event stream of an App (its server is stopping). */
export function endLiveStreams(state: AppState): void {
  live(state).closeAll();
}
