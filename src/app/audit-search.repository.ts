import type { Database } from 'bun:sqlite';
import { AppError } from '../shared/errors.ts';
import type { AuditEntry } from './audit-port.ts';

/**
 * Reading an audit trail with filters, for the console's and the admin's viewers: by action
 * (exact, or a prefix ending in `.` such as `user.`), by actor (exact), by a piece of the
 * target, by time; oldest first after a sequence number, or newest first before one.
 */
export interface AuditFilter {
  after?: number;
  before?: number;
  order: 'asc' | 'desc';
  limit: number;
  action?: string;
  actor?: string;
  target?: string;
  from?: number;
  to?: number;
}

/** What an audit listing answers: the entries as JSON (details parsed) and the next cursor. */
export interface AuditPage {
  entries: (Omit<AuditEntry, 'ts' | 'details'> & { ts: string; details: unknown })[];
  next_after: number | null;
  next_before: number | null;
}

const MAX = 500;

/** The filter of a query string (400 naming the parameter when one is malformed). */
export function parseAuditQuery(q: Record<string, string | undefined>): AuditFilter {
  const int = (name: string): number | undefined => {
    const v = q[name];
    if (v === undefined || v === '') return undefined;
    if (!/^\d{1,15}$/.test(v))
      throw new AppError('audit.query_invalid', `${name} must be a whole number`, 400, [
        { path: `/${name}`, reason: 'must be a whole number' },
      ]);
    return Number(v);
  };
  const time = (name: string): number | undefined => {
    const v = q[name];
    if (v === undefined || v === '') return undefined;
    const t = Date.parse(v);
    if (Number.isNaN(t))
      throw new AppError('audit.query_invalid', `${name} must be an ISO-8601 time`, 400, [
        { path: `/${name}`, reason: 'must be an ISO-8601 time' },
      ]);
    return t;
  };
  const text = (name: string): string | undefined => {
    const v = q[name]?.trim();
    if (!v) return undefined;
    if (v.length > 200)
      throw new AppError('audit.query_invalid', `${name} must be at most 200 characters`, 400, [
        { path: `/${name}`, reason: 'must be at most 200 characters' },
      ]);
    return v;
  };
  const order = q.order ?? (q.before ? 'desc' : 'asc');
  if (order !== 'asc' && order !== 'desc')
    throw new AppError('audit.query_invalid', 'order must be asc or desc', 400, [
      { path: '/order', reason: 'must be asc or desc' },
    ]);
  const limit = int('limit') ?? 100;
  return {
    after: int('after'),
    before: int('before'),
    order,
    limit: Math.min(MAX, Math.max(1, limit)),
    action: text('action'),
    actor: text('actor'),
    target: text('target'),
    from: time('from'),
    to: time('to'),
  };
}

/** LIKE with the pattern's own wildcards escaped. */
const likeEscape = (s: string) => s.replace(/[\\%_]/g, (c) => `\\${c}`);

export function searchAudit(db: Database, f: AuditFilter): AuditPage {
  const where: string[] = [];
  const args: (string | number)[] = [];
  if (f.after !== undefined) {
    where.push('seq > ?');
    args.push(f.after);
  }
  if (f.before !== undefined) {
    where.push('seq < ?');
    args.push(f.before);
  }
  if (f.action) {
    if (f.action.endsWith('.')) {
      where.push("action LIKE ? ESCAPE '\\'");
      args.push(`${likeEscape(f.action)}%`);
    } else {
      where.push('action = ?');
      args.push(f.action);
    }
  }
  if (f.actor) {
    where.push('actor = ?');
    args.push(f.actor);
  }
  if (f.target) {
    where.push("target LIKE ? ESCAPE '\\'");
    args.push(`%${likeEscape(f.target)}%`);
  }
  if (f.from !== undefined) {
    where.push('ts >= ?');
    args.push(f.from);
  }
  if (f.to !== undefined) {
    where.push('ts < ?');
    args.push(f.to);
  }
  const sql = `SELECT * FROM audit_log ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY seq ${
    f.order === 'desc' ? 'DESC' : 'ASC'
  } LIMIT ?`;
  const rows = db.query<AuditEntry, (string | number)[]>(sql).all(...args, f.limit);
  const full = rows.length === f.limit;
  const last = rows.at(-1)?.seq ?? null;
  return {
    entries: rows.map((e) => ({
      ...e,
      ts: new Date(e.ts).toISOString(),
      details: JSON.parse(e.details) as unknown,
    })),
    next_after: full && f.order === 'asc' ? last : null,
    next_before: full && f.order === 'desc' ? last : null,
  };
}
