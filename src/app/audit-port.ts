import type { Database } from 'bun:sqlite';

/** What a caller says about an action to be audited. */
export interface AuditInput {
  /** Who: `operator:<id>`, `cli` (the local root over the control socket), `user:<id>`, `system`. */
  actor: string;
  /** What, as a dotted verb: `platform.created`, `operator_token.created`. */
  action: string;
  /** On what: `platform:acme`, `user:usr_...`. */
  target: string;
  details?: Record<string, unknown>;
}

/** One stored entry of a hash chain. */
export interface AuditEntry {
  seq: number;
  ts: number;
  actor: string;
  action: string;
  target: string;
  /** The details as stored: canonical JSON text (the hash covers these exact bytes). */
  details: string;
  prev_hash: string;
  hash: string;
}

/**
 * The audit port: domains call it synchronously inside their own write transaction, so the
 * entry commits with the change or not at all. `audit/` implements it; the composition root
 * (server/cli) plugs it into the App. Each database holds its own chain (control plane, or one
 * platform).
 */
export interface AuditPort {
  append(db: Database, input: AuditInput): AuditEntry;
  /**
   * Records a platform chain's head in control.db (signed), now, in whatever control
   * transaction the caller holds: for a chain built in a file the port does not know yet (a new
   * platform), so its first anchor commits with its control row. A no-op without anchoring.
   */
  anchor(platformId: string, head: { seq: number; hash: string }): void;
  /** Anchors every platform chain appended to and not yet anchored, now (before closing). */
  flush(): void;
  /** A chain's entries after `after` (a seq), in order, at most `limit`: the audit read API. */
  entries(db: Database, after: number, limit: number): AuditEntry[];
}
