import { AppError } from '../shared/errors.ts';

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
 * Callers that face anonymous traffic pass `queueCap`: a lane already holding that many
 * waiting hashes refuses the next at once (429) rather than queueing it for seconds.
 */
const MAX_CONCURRENT = 2;
/** Waiting hashes a lane may hold when the caller asks for a cap (sign-in, reset). */
export const LANE_QUEUE_CAP = 8;
/** The lane of callers that name none (operators, the CLI, platform creation). */
const INSTANCE_LANE = '-';

let running = 0;
/** Hashes running per lane. */
const runningIn = new Map<string, number>();
/** Waiting work per lane. */
const lanes = new Map<string, (() => void)[]>();
/** Lanes with waiting work, in the order they are served. */
const turn: string[] = [];

/** Where a hash waits its turn, and how many may wait there before the next is refused. */
export interface HashLane {
  lane?: string;
  queueCap?: number;
}

function start<T>(lane: string, fn: () => Promise<T>): Promise<T> {
  running++;
  runningIn.set(lane, (runningIn.get(lane) ?? 0) + 1);
  let p: Promise<T>;
  try {
    p = fn();
  } catch (e) {
    p = Promise.reject(e);
  }
  return p.finally(() => {
    running--;
    const left = runningIn.get(lane)! - 1;
    if (left) runningIn.set(lane, left);
    else runningIn.delete(lane);
    next();
  });
}

function next(): void {
  while (running < MAX_CONCURRENT && turn.length) {
    let at = 0;
    for (let i = 1; i < turn.length; i++) {
      if ((runningIn.get(turn[i]!) ?? 0) < (runningIn.get(turn[at]!) ?? 0)) at = i;
    }
    const lane = turn.splice(at, 1)[0]!;
    const q = lanes.get(lane)!;
    const go = q.shift()!;
    if (q.length) turn.push(lane);
    else lanes.delete(lane);
    go();
  }
}

/** Whether a lane could take one more hash now without passing `queueCap`. */
export function laneHasRoom(lane: string, queueCap = Number.POSITIVE_INFINITY): boolean {
  if (running < MAX_CONCURRENT && turn.length === 0) return true;
  return (lanes.get(lane)?.length ?? 0) < queueCap;
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

/**
 * Runs `fn` when a slot is free and it is `lane`'s turn. Queues synchronously (so a caller that
 * checked `laneHasRoom` and reserved an attempt without awaiting in between is sure of its
 * place); throws the busy error synchronously when the lane is full.
 */
function limited<T>(fn: () => Promise<T>, opts: HashLane = {}): Promise<T> {
  const lane = opts.lane ?? INSTANCE_LANE;
  if (running < MAX_CONCURRENT && turn.length === 0) return start(lane, fn);
  if (!laneHasRoom(lane, opts.queueCap)) throw hashingBusy();
  return new Promise<T>((resolve, reject) => {
    let q = lanes.get(lane);
    if (!q) {
      q = [];
      lanes.set(lane, q);
      turn.push(lane);
    }
    q.push(() => {
      start(lane, fn).then(resolve, reject);
    });
  });
}

/** Hashes a password with argon2id (in `lane`'s turn). */
export function hashPassword(password: string, lane?: HashLane): Promise<string> {
  return limited(() => Bun.password.hash(password, { algorithm: 'argon2id' }), lane);
}

/** Checks a password against a stored argon2id hash (in `lane`'s turn). */
export function verifyPassword(password: string, hash: string, lane?: HashLane): Promise<boolean> {
  return limited(() => Bun.password.verify(password, hash), lane);
}
