import type { Database } from 'bun:sqlite';

/**
 * A kind of per-App state a domain keeps in memory (throttles, caches, the password-hash
 * limiter): its name and how to make it. Declared once at module level by the domain (a key is
 * not state: it holds nothing), made on first use in each App.
 */
export interface StateKey<T> {
  readonly name: string;
  readonly init: () => T;
}

/** Declares a kind of per-App state. */
export const stateKey = <T>(name: string, init: () => T): StateKey<T> => ({ name, init });

/**
 * The in-memory state of one App, by key. Two Apps in one process (tests open many) each have
 * their own: nothing of one (a throttle's counts, a cache, the hash queue) is seen by the other.
 */
export class AppState {
  readonly #values = new Map<StateKey<unknown>, unknown>();

  /** This App's value for `key`, made on first use. */
  get<T>(key: StateKey<T>): T {
    if (this.#values.has(key)) return this.#values.get(key) as T;
    const v = key.init();
    this.#values.set(key, v);
    return v;
  }

  /** Drops every value (the App closed). */
  clear(): void {
    this.#values.clear();
  }
}

// NB! A binding table (as `bindSecrets`), not state: which App a handle belongs to.
const owners = new WeakMap<Database, AppState>();

/**
 * Binds a database handle to its App's state, so code holding only the handle (`authenticate`,
 * a repository) reaches that App's throttles and caches. `openApp` binds control.db and every
 * platform handle the pool opens.
 */
export function bindState(db: Database, state: AppState): void {
  owners.set(db, state);
}

/**
 * The state of the App that opened `db`. A handle opened outside an App (a unit test's own
 * database) gets a state of its own, made on first use, so it shares nothing either.
 */
export function stateOf(db: Database): AppState {
  let s = owners.get(db);
  if (!s) {
    s = new AppState();
    owners.set(db, s);
  }
  return s;
}
