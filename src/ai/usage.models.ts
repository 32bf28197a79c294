// The usage record and budget row shared by the meter and the usage repository.

/**
 * One metered call. Money is integer micro-units (millionths of a minor unit) of `currency`:
 * exact per call, summed exactly, rounded only where an invoice line charges it.
 */
export interface UsageRecord {
  platformId: string;
  ts: number;
  userId: string | null;
  keyId: string | null;
  agentId: string | null;
  /** The agent's version that ran (null: its draft, or no agent). */
  agentVersion?: number | null;
  /** The agent's creator: its owner at the time of the call. */
  creatorId?: string | null;
  kind: 'chat' | 'embeddings';
  alias: string;
  provider: string;
  model: string;
  tokensIn: number;
  tokensOut: number;
  counted: boolean;
  latencyMs: number;
  /** Provider cost: tokens × the price per 1M tokens in minor units, exactly. */
  costMicro: number;
  /** The platform's markup on the cost (rounded up to a whole micro-unit). */
  markupMicro: number;
  currency: string;
  status: 'ok' | 'error';
}

/** A budget row. */
export interface Budget {
  id: string;
  scope: 'platform' | 'user' | 'key';
  subject: string;
  period: 'day' | 'month';
  limit_minor: number;
  currency: string;
  alert_percent: number;
}

/** A budget as set (a row without its id): what a checked request body and an upsert carry. */
export type BudgetSpec = Omit<Budget, 'id'>;
