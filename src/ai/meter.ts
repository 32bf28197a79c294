import type { Database } from 'bun:sqlite';
import type { App, UsageRecordedV2 } from '../app/index.ts';
import { formatMicro, jsonInteger, microOfMinor } from '../shared/money.ts';
import type { Budget, UsageRecord } from './usage.models.ts';
import { insertUsageRows, loadBudgets, spentSince } from './usage.repository.ts';

export type { Budget, UsageRecord } from './usage.models.ts';

/** Start of the budget period containing `ts` (UTC). */
export function periodStart(period: 'day' | 'month', ts: number): number {
  const d = new Date(ts);
  return period === 'day'
    ? Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate())
    : Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), 1);
}

/**
 * Provider cost of a call in micro-units (millionths of a minor unit), exactly: prices are minor
 * units per 1M tokens, so a token costs `price` micro-units. Nothing is rounded here; 4 calls
 * of 12 + 12 tokens at 15 and 60 cost 4 × 900 = 3,600 micro-units, not 4 minor units.
 */
export function costMicro(
  price: { input: number; output: number } | undefined,
  tokensIn: number,
  tokensOut: number,
): number {
  if (!price) return 0;
  const c = tokensIn * price.input + tokensOut * price.output;
  // Integers in, so exact while safe (a call past 2^53 micro-units would be ~$90M).
  if (!Number.isSafeInteger(c)) throw new RangeError(`a call's cost of ${c} micro-units is not exact`);
  return c;
}

/**
 * The platform's markup on a call's cost, in micro-units, rounded up to a whole micro-unit (the
 * one rounding of a call: at most a millionth of a minor unit).
 */
export function markupMicro(cost: number, markupPercent: number): number {
  return Math.ceil((cost * markupPercent) / 100);
}

/**
 * The most one call may cost, per currency, in micro-units (provider cost plus markup): what a
 * budget reserves for the call while it is in flight.
 */
export type CostEstimate = ReadonlyMap<string, number>;

/**
 * Budget room held for one call in flight. Exactly one of `settle` and `release` takes effect
 * (later calls do nothing), so every path out of a call may call them without double counting.
 */
export interface Reservation {
  /** Releases the hold and records the actual usage; returns the budgets whose alert threshold it crossed. */
  settle(db: Database, r: UsageRecord): Budget[];
  /** Releases the hold, recording nothing (the call failed before any usage). */
  release(): void;
}

/**
 * A call refused by a budget: the budget, its spend this period, what calls in flight hold, and
 * what this one needed, in micro-units.
 */
export interface BudgetRefusal {
  budget: Budget;
  spent: bigint;
  reserved: bigint;
  needed: bigint;
}

/** A budget refusal's amounts as minor units with their decimals, for messages ("0.0036"). */
export function describeRefusal(r: BudgetRefusal): { spent: string; reserved: string; needed: string } {
  return { spent: formatMicro(r.spent), reserved: formatMicro(r.reserved), needed: formatMicro(r.needed) };
}

interface SpendState {
  /** Per budget key (`scope:subject:period`): period start and the spend in it (micro-units, exact). */
  spent: Map<string, { start: number; micro: bigint }>;
  budgets: Budget[];
  alerted: Set<string>;
}

/** A platform whose last write failed: its records wait here until `at`, then are written first. */
interface Retrying {
  records: UsageRecord[];
  failures: number;
  /** When the next attempt is due (App clock, epoch ms). */
  at: number;
}

/** Longest wait between two attempts at a failing platform's usage. */
const RETRY_MAX_MS = 60_000;

/**
 * Metering without a synchronous disk write per request: records are buffered in memory and
 * written every `flushMs` in transactions of a few dozen rows per platform (and at shutdown),
 * each transaction appending one `usage.recorded` event with its rows. Spend per budget
 * is kept in memory too (loaded from the platform's usage on first use, then kept up to date as
 * records arrive), so the budget check before each call reads no disk either.
 *
 * NB! A write that fails keeps its records (and the rest of that platform's batch) in memory
 * and tries again after a backoff (1 s doubling to 60 s, per platform); records are dropped
 * only past `maxPending` records held in all (oldest failing ones first, logged and counted in
 * `stats().dropped`). So what a SIGKILL can lose is what was recorded since the last
 * successful flush: at most `flushMs` of usage (docs/operations.md).
 */
export class Meter {
  readonly #app: App;
  #buffer: UsageRecord[] = [];
  readonly #retrying = new Map<string, Retrying>();
  #retryingCount = 0;
  #dropped = 0;
  readonly #state = new Map<string, SpendState>();
  readonly #timer: ReturnType<typeof setInterval>;
  readonly #maxBuffer: number;
  readonly #maxPending: number;
  readonly #retryBaseMs: number;
  /** Micro-units held by calls in flight, per `platformId budgetKey`; kept apart from #state, which a budget change drops. */
  readonly #reserved = new Map<string, bigint>();
  #flushing: Promise<void> | null = null;
  /** What the flush in progress has taken and not yet written, per platform (the close hook takes it over). */
  readonly #inFlight = new Map<string, UsageRecord[]>();
  readonly #offClose: () => void;

  /**
   * `flushMs`: how often buffered records are written (default 1,000); `maxBuffer`: a flush
   * starts early at this many buffered records (default 5,000); `maxPending`: the most records
   * held in memory while writes fail (default 100,000, some 30 MB).
   */
  constructor(app: App, opts: { flushMs?: number; maxBuffer?: number; maxPending?: number } = {}) {
    this.#app = app;
    this.#maxBuffer = opts.maxBuffer ?? 5_000;
    this.#maxPending = opts.maxPending ?? 100_000;
    this.#retryBaseMs = opts.flushMs ?? 1_000;
    this.#timer = setInterval(() => void this.flush(), opts.flushMs ?? 1_000);
    this.#timer.unref?.();
    // The last chance to write a platform's usage into its own file: the pool closes the handle
    // (an archive, which moves the file next; an LRU eviction; shutdown).
    this.#offClose = app.platformDbs.onClose((platformId, db) => this.#writeBeforeClose(platformId, db));
  }

  /** The budgets that apply to a caller, with what each has spent this period. */
  budgetsFor(
    db: Database,
    platformId: string,
    who: { userId: string | null; keyId: string | null },
    now: number,
  ) {
    const st = this.#load(db, platformId);
    return st.budgets
      .filter(
        (b) =>
          b.scope === 'platform' ||
          (b.scope === 'user' && b.subject === who.userId) ||
          (b.scope === 'key' && b.subject === who.keyId),
      )
      .map((b) => ({ budget: b, spent: this.#spent(st, b, now) }));
  }

  /**
   * Checks every budget that applies to a caller and holds room for one call, in one step (no
   * await in between, and one process owns the data dir, so no other call can slip between the
   * check and the hold). A budget refuses when its spend plus what calls in flight hold plus
   * this call's estimate would pass its limit, or, for a call estimated free, when its spend
   * has reached the limit. `estimate` is computed only when some budget applies. Returns null
   * when no budget applies (nothing to hold), the refusal, or the reservation to settle.
   */
  reserve(
    db: Database,
    platformId: string,
    who: { userId: string | null; keyId: string | null },
    now: number,
    estimate: () => CostEstimate,
  ): { reservation: Reservation | null } | { refused: BudgetRefusal } {
    const applying = this.budgetsFor(db, platformId, who, now);
    if (applying.length === 0) return { reservation: null };
    const est = estimate();
    const holds: [string, bigint][] = [];
    for (const { budget, spent } of applying) {
      const k = `${platformId} ${keyOf(budget)}`;
      const reserved = this.#reserved.get(k) ?? 0n;
      const needed = BigInt(est.get(budget.currency) ?? 0);
      const limit = microOfMinor(budget.limit_minor);
      const full = needed > 0n ? spent + reserved + needed > limit : spent >= limit;
      if (full) return { refused: { budget, spent, reserved, needed } };
      if (needed > 0n) holds.push([k, needed]);
    }
    for (const [k, n] of holds) this.#reserved.set(k, (this.#reserved.get(k) ?? 0n) + n);
    let done = false;
    const release = () => {
      if (done) return;
      done = true;
      for (const [k, n] of holds) {
        const left = (this.#reserved.get(k) ?? 0n) - n;
        if (left > 0n) this.#reserved.set(k, left);
        else this.#reserved.delete(k);
      }
    };
    return {
      reservation: {
        settle: (sdb, r) => {
          if (done) return [];
          release();
          return this.record(sdb, r);
        },
        release,
      },
    };
  }

  /** Micro-units that calls in flight hold against a platform's budgets (0n when none is in flight). */
  held(platformId: string): bigint {
    let n = 0n;
    for (const [k, v] of this.#reserved) if (k.startsWith(`${platformId} `)) n += v;
    return n;
  }

  /**
   * Records a call: buffered for the next flush, added to the in-memory spend. Returns the
   * budgets whose alert threshold this record crossed (once per budget and period).
   */
  record(db: Database, r: UsageRecord): Budget[] {
    // Loaded before the record joins the buffer: a fresh load counts what is buffered, and this
    // record is added below (the other order counted it twice after a budget change).
    const st = this.#load(db, r.platformId);
    this.#buffer.push(r);
    const crossed: Budget[] = [];
    const total = BigInt(r.costMicro + r.markupMicro);
    for (const b of st.budgets) {
      const applies =
        b.scope === 'platform' ||
        (b.scope === 'user' && b.subject === r.userId) ||
        (b.scope === 'key' && b.subject === r.keyId);
      if (!applies || b.currency !== r.currency) continue;
      const before = this.#spent(st, b, r.ts);
      const k = keyOf(b);
      st.spent.get(k)!.micro = before + total;
      const alertKey = `${k}:${periodStart(b.period, r.ts)}`;
      // Exact: spent / limit ≥ alert_percent / 100, cross-multiplied in integers.
      if (
        (before + total) * 100n >= microOfMinor(b.limit_minor) * BigInt(b.alert_percent) &&
        !st.alerted.has(alertKey)
      ) {
        st.alerted.add(alertKey);
        crossed.push(b);
      }
    }
    if (this.#buffer.length >= this.#maxBuffer) void this.flush();
    if (this.#buffer.length + this.#retryingCount > this.#maxPending) this.#dropOverCap();
    return crossed;
  }

  /**
   * A user's chat calls since `since` not written yet (buffered, being written, kept from failed
   * writes): what a count of usage rows adds to be exact (billing's requests_per_day).
   */
  unwrittenChats(platformId: string, userId: string, since: number): number {
    let n = 0;
    for (const r of [
      ...this.#buffer,
      ...(this.#retrying.get(platformId)?.records ?? []),
      ...(this.#inFlight.get(platformId) ?? []),
    ])
      if (r.platformId === platformId && r.userId === userId && r.kind === 'chat' && r.ts >= since) n++;
    return n;
  }

  /** Records held in memory (buffered, and kept from failed writes) and dropped past the cap. */
  stats(): { buffered: number; retrying: number; dropped: number } {
    return { buffered: this.#buffer.length, retrying: this.#retryingCount, dropped: this.#dropped };
  }

  /** Forgets a platform's cached budgets (after they change). */
  invalidate(platformId: string): void {
    this.#state.delete(platformId);
  }

  /**
   * Writes the buffered records: per platform, a transaction per slice of `FLUSH_SLICE` rows,
   * records kept from a failed write first. A platform still waiting out its backoff is not
   * tried (unless `force`, at shutdown): its new records join the ones it keeps.
   */
  flush(opts: { force?: boolean } = {}): Promise<void> {
    if (this.#flushing) return this.#flushing;
    if (this.#buffer.length === 0 && this.#retryingCount === 0) return Promise.resolve();
    const now = this.#app.clock.now();
    // What this flush writes, per platform: kept records first (taken out of #retrying while
    // in flight), then the new ones. Platforms still waiting keep their new records too.
    const byPlatform = new Map<string, { records: UsageRecord[]; failures: number }>();
    for (const [platformId, r] of this.#retrying) {
      if (!opts.force && r.at > now) continue;
      this.#retrying.delete(platformId);
      this.#retryingCount -= r.records.length;
      byPlatform.set(platformId, { records: r.records, failures: r.failures });
    }
    const batch = this.#buffer;
    this.#buffer = [];
    for (const r of batch) {
      const waiting = this.#retrying.get(r.platformId);
      if (waiting) {
        waiting.records.push(r);
        this.#retryingCount++;
        continue;
      }
      const entry = byPlatform.get(r.platformId);
      if (entry) entry.records.push(r);
      else byPlatform.set(r.platformId, { records: [r], failures: 0 });
    }
    for (const [platformId, { records }] of byPlatform) this.#inFlight.set(platformId, records);
    this.#flushing = (async () => {
      for (const [platformId, { failures }] of byPlatform) {
        // In slices of a few dozen rows, one transaction each, giving the event loop back in
        // between: a second's worth of records at full load is thousands of rows, and one long
        // synchronous write would stall every request in flight for its whole length. The queue
        // is read again after each yield: the pool's close hook may have written the rest.
        for (let first = true; ; first = false) {
          if (!first) await new Promise<void>((r) => setImmediate(r));
          const queue = this.#inFlight.get(platformId);
          if (!queue || queue.length === 0) break;
          const slice = queue.splice(0, FLUSH_SLICE);
          try {
            await this.#app.platformDbs.use(platformId, (db) => this.#write(db, platformId, slice));
          } catch (e) {
            // Kept, with the rest of this platform's batch, and tried again after a backoff (the
            // platform may be archived meanwhile: its usage is written if it comes back).
            this.#keep(platformId, [...slice, ...queue.splice(0)], failures, e);
            break;
          }
        }
        this.#inFlight.delete(platformId);
      }
    })().finally(() => {
      this.#inFlight.clear();
      this.#flushing = null;
    });
    return this.#flushing;
  }

  /** Stops the timer and writes what is buffered (one more try for what failed before; what fails now is logged). */
  async close(): Promise<void> {
    clearInterval(this.#timer);
    await this.#flushing;
    await this.flush({ force: true });
    this.#offClose();
    if (this.#retryingCount) {
      this.#app.log.error('usage lost at shutdown: writes kept failing', { records: this.#retryingCount });
    }
  }

  /** Keeps records a write refused for a retry after a backoff (before any the platform keeps already). */
  #keep(platformId: string, records: UsageRecord[], failures: number, err: unknown): void {
    if (records.length === 0) return;
    const wait = Math.min(this.#retryBaseMs * 2 ** failures, RETRY_MAX_MS);
    const kept = this.#retrying.get(platformId);
    this.#retrying.set(platformId, {
      records: kept ? [...records, ...kept.records] : records,
      failures: failures + 1,
      at: this.#app.clock.now() + wait,
    });
    this.#retryingCount += records.length;
    this.#app.log.error('usage flush failed; kept for a retry', {
      platform: platformId,
      records: records.length,
      retry_ms: wait,
      err: String(err),
    });
  }

  /**
   * The pool is about to close `platformId`'s handle: everything held for it (what a flush in
   * progress has not written yet, what failed before, what is buffered) is written now, on that
   * handle. So usage recorded up to an archive ends up in the archived file, not in memory
   * where a stop would lose it. A write that fails keeps the rest, as a flush does.
   */
  #writeBeforeClose(platformId: string, db: Database): void {
    const records = this.#inFlight.get(platformId)?.splice(0) ?? [];
    const kept = this.#retrying.get(platformId);
    if (kept) {
      this.#retrying.delete(platformId);
      this.#retryingCount -= kept.records.length;
      records.push(...kept.records);
    }
    if (this.#buffer.some((r) => r.platformId === platformId)) {
      const others: UsageRecord[] = [];
      for (const r of this.#buffer) (r.platformId === platformId ? records : others).push(r);
      this.#buffer = others;
    }
    for (let i = 0; i < records.length; i += FLUSH_SLICE) {
      try {
        this.#write(db, platformId, records.slice(i, i + FLUSH_SLICE));
      } catch (e) {
        this.#keep(platformId, records.slice(i), kept?.failures ?? 0, e);
        return;
      }
    }
  }

  /** Past `maxPending`: drops the oldest records kept from failed writes, logged and counted. */
  #dropOverCap(): void {
    let over = this.#buffer.length + this.#retryingCount - this.#maxPending;
    for (const [platformId, r] of this.#retrying) {
      if (over <= 0) break;
      const n = Math.min(over, r.records.length);
      r.records.splice(0, n);
      this.#retryingCount -= n;
      this.#dropped += n;
      over -= n;
      this.#app.log.error('usage dropped: too many records kept from failed writes', {
        platform: platformId,
        records: n,
        cap: this.#maxPending,
      });
      if (r.records.length === 0) this.#retrying.delete(platformId);
    }
  }

  /** One transaction: the usage rows and their `usage.recorded` event. */
  #write(db: Database, platformId: string, records: readonly UsageRecord[]): void {
    db.transaction(() => {
      const payload = writeUsage(db, platformId, records);
      this.#app.events.append(db, 'usage.recorded', payload);
    }).immediate();
  }

  #load(db: Database, platformId: string): SpendState {
    let st = this.#state.get(platformId);
    if (!st) {
      st = {
        spent: new Map(),
        budgets: loadBudgets(db),
        alerted: new Set(),
      };
      this.#state.set(platformId, st);
      // Spend already written for the current periods (buffered records are added as they come).
      const now = this.#app.clock.now();
      for (const b of st.budgets) {
        const start = periodStart(b.period, now);
        const pending = [
          ...this.#buffer,
          ...(this.#retrying.get(platformId)?.records ?? []),
          ...(this.#inFlight.get(platformId) ?? []),
        ]
          .filter(
            (r) =>
              r.platformId === platformId &&
              r.ts >= start &&
              r.currency === b.currency &&
              (b.scope === 'platform' || (b.scope === 'user' ? r.userId : r.keyId) === b.subject),
          )
          .reduce((a, r) => a + BigInt(r.costMicro + r.markupMicro), 0n);
        st.spent.set(keyOf(b), { start, micro: spentSince(db, b, start) + pending });
      }
    }
    return st;
  }

  #spent(st: SpendState, b: Budget, now: number): bigint {
    const k = keyOf(b);
    const start = periodStart(b.period, now);
    const cur = st.spent.get(k);
    if (!cur || cur.start !== start) {
      st.spent.set(k, { start, micro: 0n });
      return 0n;
    }
    return cur.micro;
  }
}

/** Rows written per transaction by a flush. */
const FLUSH_SLICE = 64;

/** Writes usage records (in the caller's transaction); returns the `usage.recorded` payload. */
function writeUsage(db: Database, platformId: string, records: readonly UsageRecord[]): UsageRecordedV2 {
  const { firstRowId, lastRowId } = insertUsageRows(db, records);
  let from = Number.POSITIVE_INFINITY;
  let to = Number.NEGATIVE_INFINITY;
  const totals = new Map<string, UsageRecordedV2['totals'][number]>();
  const sums = new Map<string, { cost: bigint; markup: bigint }>();
  for (const r of records) {
    from = Math.min(from, r.ts);
    to = Math.max(to, r.ts);
    let t = totals.get(r.currency);
    if (!t) {
      t = {
        currency: r.currency,
        calls: 0,
        errors: 0,
        tokensIn: 0,
        tokensOut: 0,
        costMicro: 0,
        markupMicro: 0,
      };
      totals.set(r.currency, t);
    }
    t.calls++;
    if (r.status === 'error') t.errors++;
    t.tokensIn += r.tokensIn;
    t.tokensOut += r.tokensOut;
    const m = sums.get(r.currency) ?? { cost: 0n, markup: 0n };
    m.cost += BigInt(r.costMicro);
    m.markup += BigInt(r.markupMicro);
    sums.set(r.currency, m);
  }
  // Summed as BigInt, written as exact JSON integers (jsonInteger), whatever their size.
  for (const [currency, m] of sums) {
    const t = totals.get(currency)!;
    t.costMicro = jsonInteger(m.cost);
    t.markupMicro = jsonInteger(m.markup);
  }
  return {
    platformId,
    firstRowId,
    lastRowId,
    records: records.length,
    from,
    to,
    totals: [...totals.values()],
  };
}

function keyOf(b: Budget): string {
  return `${b.scope}:${b.subject}:${b.period}`;
}
