import { AppError } from '../shared/errors.ts';
import type { Logger } from './logger.ts';

/**
 * One part of a running soulfra with something to undo (PocketBase's OnServe/OnTerminate): the
 * data-dir lock, the databases, the AI runtime, the meter, a listener. `start` makes it and its
 * value is handed back to the caller and to `stop`.
 */
export interface Component<T = void> {
  /** Shown in logs ("stopping meter"); unique in one lifecycle by convention, not checked. */
  readonly name: string;
  start?: () => T | Promise<T>;
  stop?: (value: T) => unknown;
  /**
   * How long `stop` may take before it is abandoned (logged) and teardown goes on with the
   * next component; none: waited for.
   */
  readonly stopTimeoutMs?: number;
}

/** A component whose `stop` threw (or timed out); teardown went on with the rest. */
export interface StopFailure {
  name: string;
  error: unknown;
}

interface Started {
  name: string;
  stop: () => unknown;
  timeoutMs: number | undefined;
}

/**
 * The components of a process, started in order and stopped in reverse from this one place.
 *
 * - `add` starts a component at once (awaited, so order is the order of the calls) and registers
 *   its stop; when its start throws, every component started before it is stopped (in reverse)
 *   and the start's error is thrown.
 * - `stop` runs once (later calls get the same promise), in reverse order of start; a stop that
 *   throws or times out is logged and reported, and the remaining ones still run.
 * - After `stop` began, `add` refuses (`lifecycle.stopped`): nothing starts on a stopping process.
 */
export class Lifecycle {
  readonly #log: Logger | undefined;
  readonly #started: Started[] = [];
  #stopping: Promise<StopFailure[]> | null = null;

  constructor(log?: Logger) {
    this.#log = log;
  }

  /** Whether `stop` has begun. */
  get stopping(): boolean {
    return this.#stopping !== null;
  }

  /** The names of the components started and not yet stopped, in start order. */
  get names(): string[] {
    return this.#started.map((s) => s.name);
  }

  /** Starts `c` and registers its stop; see the class comment for failures. */
  async add<T>(c: Component<T>): Promise<T> {
    this.#refuseWhenStopping(c.name);
    let value: T;
    try {
      value = (await c.start?.()) as T;
    } catch (e) {
      this.#log?.error('start failed; stopping what started before it', {
        component: c.name,
        err: e instanceof Error ? e.message : String(e),
      });
      await this.stop();
      throw e;
    }
    if (this.#stopping) {
      // stop() began while this one was starting: it is undone at once, not left running.
      await this.#stopOne({ name: c.name, stop: () => c.stop?.(value), timeoutMs: c.stopTimeoutMs });
      throw stopped(c.name);
    }
    if (c.stop) this.#started.push({ name: c.name, stop: () => c.stop?.(value), timeoutMs: c.stopTimeoutMs });
    return value;
  }

  /** Registers the stop of something already open (a synchronous constructor made it). */
  adopt(name: string, stop: () => unknown, opts: { stopTimeoutMs?: number } = {}): void {
    this.#refuseWhenStopping(name);
    this.#started.push({ name, stop, timeoutMs: opts.stopTimeoutMs });
  }

  /** Stops every started component once, last started first; resolves with the ones that failed. */
  stop(): Promise<StopFailure[]> {
    this.#stopping ??= (async () => {
      const failures: StopFailure[] = [];
      for (let s = this.#started.pop(); s; s = this.#started.pop()) {
        const f = await this.#stopOne(s);
        if (f) failures.push(f);
      }
      return failures;
    })();
    return this.#stopping;
  }

  async #stopOne(s: Started): Promise<StopFailure | null> {
    this.#log?.debug('stopping', { component: s.name });
    try {
      const done = Promise.resolve().then(s.stop);
      if (s.timeoutMs === undefined) await done;
      else {
        let timer: ReturnType<typeof setTimeout> | undefined;
        const timedOut = new Promise<'timeout'>((r) => {
          timer = setTimeout(() => r('timeout'), s.timeoutMs).unref();
        });
        const r = await Promise.race([done, timedOut]).finally(() => clearTimeout(timer));
        if (r === 'timeout') {
          // Late failures of an abandoned stop are not unhandled rejections.
          done.catch(() => {});
          throw new AppError(
            'lifecycle.stop_timeout',
            `${s.name} did not stop within ${s.timeoutMs} ms`,
            500,
          );
        }
      }
      return null;
    } catch (error) {
      this.#log?.error('stop failed; going on with the rest', {
        component: s.name,
        err: error instanceof Error ? error.message : String(error),
      });
      return { name: s.name, error };
    }
  }

  #refuseWhenStopping(name: string): void {
    if (this.#stopping) throw stopped(name);
  }
}

const stopped = (name: string) =>
  new AppError('lifecycle.stopped', `cannot start ${name}: the process is stopping`, 503);
