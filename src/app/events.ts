import type { Logger } from './logger.ts';

/**
 * The domain events and their payloads. Domains publish; subscribers (webhooks, analytics,
 * metrics, later replication) react. Add an event here when a domain starts publishing it.
 */
export interface DomainEvents {
  'platform.created': { platformId: string; slug: string; template: string; actor: string };
  'platform.status_changed': { platformId: string; slug: string; from: string; to: string; actor: string };
  'platform.archived': { platformId: string; slug: string; file: string; actor: string };
  'platform.unarchived': { platformId: string; slug: string; actor: string };
  'ai.budget_alert': {
    platformId: string;
    budgetId: string;
    scope: string;
    subject: string;
    percent: number;
  };
}

/** An event's name. */
export type EventName = keyof DomainEvents;
type Handler<K extends EventName> = (payload: DomainEvents[K]) => void | Promise<void>;

/**
 * In-process event bus. `publish` calls every subscriber and never throws: a subscriber's
 * failure is logged and does not undo the write that published the event (which is already
 * committed; anything that must be atomic with a write uses a port, e.g. the audit port).
 */
export class EventBus {
  readonly #handlers = new Map<EventName, Handler<EventName>[]>();
  readonly #log: Logger;

  constructor(log: Logger) {
    this.#log = log;
  }

  /** Subscribes; returns a function that unsubscribes. */
  subscribe<K extends EventName>(name: K, handler: Handler<K>): () => void {
    const list = this.#handlers.get(name) ?? [];
    list.push(handler as Handler<EventName>);
    this.#handlers.set(name, list);
    return () => {
      const l = this.#handlers.get(name);
      if (l)
        this.#handlers.set(
          name,
          l.filter((h) => h !== handler),
        );
    };
  }

  /** Delivers to every subscriber; async subscribers run in the background. */
  publish<K extends EventName>(name: K, payload: DomainEvents[K]): void {
    for (const h of this.#handlers.get(name) ?? []) {
      try {
        const r = h(payload);
        if (r instanceof Promise)
          r.catch((e) => this.#log.error('event subscriber failed', { event: name, err: String(e) }));
      } catch (e) {
        this.#log.error('event subscriber failed', { event: name, err: String(e) });
      }
    }
  }
}
