import { type App, stateKey } from '../../app/index.ts';
import { AppError } from '../../shared/errors.ts';

/**
 * Password hashing: argon2id through Bun.password with its defaults (64 MiB, t=2). Slow by
 * design (tens of milliseconds); callers that report latency measure it apart.
 *
 * NB! Each hash in flight holds 64 MiB. At most `MAX_CONCURRENT` run at once (the rest wait
 * their turn), so a burst of sign-ins or creates cannot push the server's memory past its
 * budget; on a 2-core machine more at once would not finish sooner anyway.
 *
 * The wait is fair between platforms: each caller names a lane (its platform), every lane
 * has its own queue, and a freed slot goes to the waiting lane with the fewest hashes running,
 * ties taken in turn (round-robin), so a burst on one platform delays another platform's
 * sign-in by at most one of the hashes already running.
 * The limiter belongs to the App (`hasherOf(app)`): two Apps in one process queue apart.
 * Callers that face anonymous traffic pass `queueCap`: a lane already holding that many
 * waiting hashes refuses the next at once (429) rather than queueing it for seconds.
 */
const MAX_CONCURRENT = 2;
/** Waiting hashes a lane may hold when the caller asks for a cap (sign-in, reset). */
export const LANE_QUEUE_CAP = 8;
/** The lane of callers that name none (operators, the CLI, platform creation). */
const INSTANCE_LANE = '-';

/** Where a hash waits its turn, and how many may wait there before the next is refused. */
export interface HashLane {
  lane?: string;
  queueCap?: number;
}

/** The busy refusal: the platform's share of hashing is taken; try again in a moment. */
export function hashingBusy(): AppError {
  const e = new AppError(
    'auth.busy',
    'too many sign-ins are being checked on this platform right now; try again in a moment',
    429,
  );
  e.retryAfter = 1;
  return e;
}

/** The limiter of one App: its slots, lanes and turn (two Apps in one process share none). */
export class PasswordHasher {
  #running = 0;
  /** Hashes running per lane. */
  readonly #runningIn = new Map<string, number>();
  /** Waiting work per lane. */
  readonly #lanes = new Map<string, (() => void)[]>();
  /** Lanes with waiting work, in the order they are served. */
  readonly #turn: string[] = [];

  /** Hashes a password with argon2id (in `lane`'s turn). */
  hash(password: string, lane?: HashLane): Promise<string> {
    return this.#limited(() => Bun.password.hash(password, { algorithm: 'argon2id' }), lane);
  }

  /** Checks a password against a stored argon2id hash (in `lane`'s turn). */
  verify(password: string, hash: string, lane?: HashLane): Promise<boolean> {
    return this.#limited(() => Bun.password.verify(password, hash), lane);
  }

  /** Whether a lane could take one more hash now without passing `queueCap`. */
  hasRoom(lane: string, queueCap = Number.POSITIVE_INFINITY): boolean {
    if (this.#running < MAX_CONCURRENT && this.#turn.length === 0) return true;
    return (this.#lanes.get(lane)?.length ?? 0) < queueCap;
  }

  #start<T>(lane: string, fn: () => Promise<T>): Promise<T> {
    this.#running++;
    this.#runningIn.set(lane, (this.#runningIn.get(lane) ?? 0) + 1);
    let p: Promise<T>;
    try {
      p = fn();
    } catch (e) {
      p = Promise.reject(e);
    }
    return p.finally(() => {
      this.#running--;
      const left = this.#runningIn.get(lane)! - 1;
      if (left) this.#runningIn.set(lane, left);
      else this.#runningIn.delete(lane);
      this.#next();
    });
  }

  #next(): void {
    const turn = this.#turn;
    while (this.#running < MAX_CONCURRENT && turn.length) {
      let at = 0;
      for (let i = 1; i < turn.length; i++) {
        if ((this.#runningIn.get(turn[i]!) ?? 0) < (this.#runningIn.get(turn[at]!) ?? 0)) at = i;
      }
      const lane = turn.splice(at, 1)[0]!;
      const q = this.#lanes.get(lane)!;
      const go = q.shift()!;
      if (q.length) turn.push(lane);
      else this.#lanes.delete(lane);
      go();
    }
  }

  /**
   * Runs `fn` when a slot is free and it is `lane`'s turn. Queues synchronously (so a caller that
   * checked `hasRoom` and reserved an attempt without awaiting in between is sure of its
   * place); throws the busy error synchronously when the lane is full.
   */
  #limited<T>(fn: () => Promise<T>, opts: HashLane = {}): Promise<T> {
    const lane = opts.lane ?? INSTANCE_LANE;
    if (this.#running < MAX_CONCURRENT && this.#turn.length === 0) return this.#start(lane, fn);
    if (!this.hasRoom(lane, opts.queueCap)) throw hashingBusy();
    return new Promise<T>((resolve, reject) => {
      let q = this.#lanes.get(lane);
      if (!q) {
        q = [];
        this.#lanes.set(lane, q);
        this.#turn.push(lane);
      }
      q.push(() => {
        this.#start(lane, fn).then(resolve, reject);
      });
    });
  }
}

const HASHER = stateKey('identity.passwords', () => new PasswordHasher());

/** What reaches an App's state: the App, or (tests) a bare `{ state }`. */
export type HasState = Pick<App, 'state'>;

/** This App's hash limiter. */
export const hasherOf = (app: HasState): PasswordHasher => app.state.get(HASHER);

/** Whether a lane of this App's limiter could take one more hash now without passing `queueCap`. */
export function laneHasRoom(app: HasState, lane: string, queueCap = Number.POSITIVE_INFINITY): boolean {
  return hasherOf(app).hasRoom(lane, queueCap);
}

/** Hashes a password with argon2id (in `lane`'s turn of this App's limiter). */
export function hashPassword(app: HasState, password: string, lane?: HashLane): Promise<string> {
  return hasherOf(app).hash(password, lane);
}

/** Checks a password against a stored argon2id hash (in `lane`'s turn of this App's limiter). */
export function verifyPassword(
  app: HasState,
  password: string,
  hash: string,
  lane?: HashLane,
): Promise<boolean> {
  return hasherOf(app).verify(password, hash, lane);
}
