import type { Database } from 'bun:sqlite';

/** An operator's role (operators.ts says what each may do). */
export type OperatorRole = 'operator_admin' | 'operator_viewer';

/** What account changes need of an operator. */
export interface OperatorBrief {
  id: string;
  email: string;
  role: OperatorRole;
  status: string;
}

/** An operator row as listed (never the password hash). */
export interface OperatorRow extends OperatorBrief {
  sso_subject: string | null;
  created_at: number;
}

/** An operator with what password and TOTP sign-in need (hash and sealed seeds). */
export interface OperatorCredentialRow extends OperatorBrief {
  password_hash: string;
  totp_secret: string | null;
  totp_pending: string | null;
  totp_last_step: number | null;
}

// ---- operators (control.db)

/** How many operators there are. */
export function countOperators(db: Database): number {
  return db.query<{ n: number }, []>('SELECT count(*) AS n FROM operators').get()?.n ?? 0;
}

/** Inserts an operator; `passwordHash` '!' is no argon2 hash (SSO only). */
export function insertOperator(
  db: Database,
  o: { id: string; email: string; passwordHash: string; role: OperatorRole; now: number },
): void {
  db.query(
    'INSERT INTO operators (id, email, password_hash, role, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)',
  ).run(o.id, o.email, o.passwordHash, o.role, o.now, o.now);
}

/** Every operator, oldest first. */
export function operatorRows(db: Database): OperatorRow[] {
  return db.query<OperatorRow, []>('SELECT * FROM operators ORDER BY created_at').all();
}

/** An operator by id, or null. */
export function operatorRowById(db: Database, id: string): OperatorRow | null {
  return db.query<OperatorRow, [string]>('SELECT * FROM operators WHERE id = ?').get(id);
}

/** The operator linked to an SSO subject, or null. */
export function operatorBySsoSubject(db: Database, subject: string): OperatorRow | null {
  return db.query<OperatorRow, [string]>('SELECT * FROM operators WHERE sso_subject = ?').get(subject);
}

/** An operator by email, or null. */
export function operatorByEmail(db: Database, email: string): OperatorRow | null {
  return db.query<OperatorRow, [string]>('SELECT * FROM operators WHERE email = ?').get(email);
}

/** An operator by id or email, or null. */
export function operatorByRef(db: Database, ref: string): OperatorBrief | null {
  return db
    .query<OperatorBrief, [string, string]>(
      'SELECT id, email, role, status FROM operators WHERE id = ? OR email = ?',
    )
    .get(ref, ref);
}

/** An operator by id (brief), or null. */
export function operatorBriefById(db: Database, id: string): OperatorBrief | null {
  return db
    .query<OperatorBrief, [string]>('SELECT id, email, role, status FROM operators WHERE id = ?')
    .get(id);
}

/** The oldest active operator admin, or null. */
export function firstActiveAdmin(db: Database): OperatorBrief | null {
  return db
    .query<OperatorBrief, []>(
      "SELECT id, email, role, status FROM operators WHERE role = 'operator_admin' AND status = 'active' ORDER BY created_at LIMIT 1",
    )
    .get();
}

/** How many active operator admins there are besides `id`. */
export function otherActiveAdmins(db: Database, id: string): number {
  return db
    .query<{ n: number }, [string]>(
      "SELECT count(*) AS n FROM operators WHERE role = 'operator_admin' AND status = 'active' AND id <> ?",
    )
    .get(id)!.n;
}

/** Sets an operator's status. */
export function setOperatorStatus(
  db: Database,
  id: string,
  status: 'active' | 'disabled',
  now: number,
): void {
  db.query('UPDATE operators SET status = ?, updated_at = ? WHERE id = ?').run(status, now, id);
}

/** Sets an operator's role. */
export function setOperatorRoleRow(db: Database, id: string, role: OperatorRole, now: number): void {
  db.query('UPDATE operators SET role = ?, updated_at = ? WHERE id = ?').run(role, now, id);
}

/** Links an operator to an SSO subject. */
export function setOperatorSsoSubject(db: Database, id: string, subject: string, now: number): void {
  db.query('UPDATE operators SET sso_subject = ?, updated_at = ? WHERE id = ?').run(subject, now, id);
}

/** An operator with their credentials by email, or null. */
export function operatorCredentialsByEmail(db: Database, email: string): OperatorCredentialRow | null {
  return db.query<OperatorCredentialRow, [string]>('SELECT * FROM operators WHERE email = ?').get(email);
}

/** An operator with their credentials by id, or null. */
export function operatorCredentialsById(db: Database, id: string): OperatorCredentialRow | null {
  return db.query<OperatorCredentialRow, [string]>('SELECT * FROM operators WHERE id = ?').get(id);
}

/** An operator with their credentials by id or email, or null. */
export function operatorCredentialsByRef(db: Database, ref: string): OperatorCredentialRow | null {
  return db
    .query<OperatorCredentialRow, [string, string]>('SELECT * FROM operators WHERE id = ? OR email = ?')
    .get(ref, ref);
}

/** Records the TOTP step last accepted for an operator (no code is used twice). */
export function setOperatorTotpLastStep(db: Database, id: string, step: number): void {
  db.query('UPDATE operators SET totp_last_step = ? WHERE id = ?').run(step, id);
}

/** Stores an operator's pending (not yet confirmed) TOTP seed, sealed. */
export function setOperatorTotpPending(db: Database, id: string, sealed: string, now: number): void {
  db.query('UPDATE operators SET totp_pending = ?, updated_at = ? WHERE id = ?').run(sealed, now, id);
}

/** Makes a confirmed TOTP seed (sealed) the operator's authenticator; the pending one goes. */
export function enableOperatorTotpRow(
  db: Database,
  id: string,
  sealed: string,
  step: number,
  now: number,
): void {
  db.query(
    'UPDATE operators SET totp_secret = ?, totp_pending = NULL, totp_last_step = ?, updated_at = ? WHERE id = ?',
  ).run(sealed, step, now, id);
}

/** Removes an operator's authenticator (confirmed and pending). */
export function clearOperatorTotp(db: Database, id: string, now: number): void {
  db.query(
    'UPDATE operators SET totp_secret = NULL, totp_pending = NULL, totp_last_step = NULL, updated_at = ? WHERE id = ?',
  ).run(now, id);
}

/** The operators' sealed TOTP seeds (confirmed or pending), for re-sealing. */
export function sealedOperatorTotps(
  db: Database,
): { id: string; totp_secret: string | null; totp_pending: string | null }[] {
  return db
    .query<{ id: string; totp_secret: string | null; totp_pending: string | null }, []>(
      'SELECT id, totp_secret, totp_pending FROM operators WHERE totp_secret IS NOT NULL OR totp_pending IS NOT NULL',
    )
    .all();
}

/** Rewrites an operator's sealed TOTP seeds (re-sealing). */
export function updateOperatorTotps(
  db: Database,
  id: string,
  secret: string | null,
  pending: string | null,
): void {
  db.query('UPDATE operators SET totp_secret = ?, totp_pending = ? WHERE id = ?').run(secret, pending, id);
}

/** Deletes an operator (after their sessions and tokens). */
export function deleteOperatorRow(db: Database, id: string): void {
  db.query('DELETE FROM operators WHERE id = ?').run(id);
}

// ---- operator_sessions

/** A console session with its operator's role and status. */
export interface OperatorSessionRow {
  operator_id: string;
  csrf_token: string;
  last_seen_at: number;
  expires_at: number;
  role: OperatorRole;
  status: string;
}

/** Starts a console session (only the token's SHA-256 is stored). */
export function insertOperatorSession(
  db: Database,
  s: {
    idHash: string;
    operatorId: string;
    csrfToken: string;
    via: string;
    now: number;
    expiresAt: number;
    ip: string | null;
    /** The operator still owes a TOTP code: the session does nothing until it is given. */
    mfaPending?: boolean;
  },
): void {
  db.query(
    `INSERT INTO operator_sessions (id_hash, operator_id, csrf_token, via, created_at, last_seen_at, expires_at, ip, mfa_pending)
     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
  ).run(s.idHash, s.operatorId, s.csrfToken, s.via, s.now, s.now, s.expiresAt, s.ip, s.mfaPending ? 1 : 0);
}

/**
 * The complete session (its second factor given, or none owed) with this token hash and its
 * operator, or null.
 */
export function operatorSessionByHash(db: Database, idHash: string): OperatorSessionRow | null {
  return db
    .query<OperatorSessionRow, [string]>(
      `SELECT s.operator_id, s.csrf_token, s.last_seen_at, s.expires_at, o.role, o.status
       FROM operator_sessions s JOIN operators o ON o.id = s.operator_id WHERE s.id_hash = ? AND s.mfa_pending = 0`,
    )
    .get(idHash);
}

/** The session with this token hash still owing its second factor, or null. */
export function pendingOperatorSession(
  db: Database,
  idHash: string,
): { operator_id: string; expires_at: number } | null {
  return db
    .query<{ operator_id: string; expires_at: number }, [string]>(
      'SELECT operator_id, expires_at FROM operator_sessions WHERE id_hash = ? AND mfa_pending = 1',
    )
    .get(idHash);
}

/** A pending session has its second factor: it is complete, seen at `now`. */
export function completeOperatorMfaSession(db: Database, idHash: string, now: number): void {
  db.query('UPDATE operator_sessions SET mfa_pending = 0, last_seen_at = ? WHERE id_hash = ?').run(
    now,
    idHash,
  );
}

/** Ends the session with this token hash. */
export function deleteOperatorSession(db: Database, idHash: string): void {
  db.query('DELETE FROM operator_sessions WHERE id_hash = ?').run(idHash);
}

/** Records that a session was seen at `now`. */
export function touchOperatorSession(db: Database, idHash: string, now: number): void {
  db.query('UPDATE operator_sessions SET last_seen_at = ? WHERE id_hash = ?').run(now, idHash);
}

/** Ends every session of an operator; how many. */
export function deleteOperatorSessions(db: Database, operatorId: string): number {
  return db.query('DELETE FROM operator_sessions WHERE operator_id = ?').run(operatorId).changes;
}

// ---- operator_tokens

/**
 * Joins a token's maker (`m`) when another operator made it (`created_by` = `operator:<id>`):
 * that maker saw the secret, so the token never acts with more than the maker has now.
 */
const MAKER_JOIN = `LEFT JOIN operators m ON t.created_by LIKE 'operator:%' AND m.id = substr(t.created_by, 10)`;

/** A token as listed, with its operator and its maker's role and status. */
export interface OperatorTokenRow {
  id: string;
  name: string;
  operator_id: string;
  email: string;
  operator_role: OperatorRole;
  operator_status: string;
  role: OperatorRole | null;
  created_at: number;
  created_by: string | null;
  expires_at: number | null;
  last_used_at: number | null;
  revoked_at: number | null;
  maker_role: OperatorRole | null;
  maker_status: string | null;
}

const TOKEN_SELECT = `SELECT t.id, t.name, t.operator_id, o.email, o.role AS operator_role, o.status AS operator_status,
  t.role, t.created_at, t.created_by, t.expires_at, t.last_used_at, t.revoked_at,
  m.role AS maker_role, m.status AS maker_status
  FROM operator_tokens t JOIN operators o ON o.id = t.operator_id ${MAKER_JOIN}`;

/** Every token, newest first. */
export function operatorTokenRows(db: Database): OperatorTokenRow[] {
  return db.query<OperatorTokenRow, []>(`${TOKEN_SELECT} ORDER BY t.created_at DESC, t.id DESC`).all();
}

/** A token by id, or null. */
export function operatorTokenById(db: Database, id: string): OperatorTokenRow | null {
  return db.query<OperatorTokenRow, [string]>(`${TOKEN_SELECT} WHERE t.id = ?`).get(id);
}

/** What authenticating a token needs: the token, its operator, its maker. */
export interface LiveOperatorTokenRow {
  tid: string;
  last_used_at: number | null;
  expires_at: number | null;
  token_role: OperatorRole | null;
  id: string;
  role: OperatorRole;
  status: string;
  created_by: string | null;
  maker_role: OperatorRole | null;
  maker_status: string | null;
}

/** The unrevoked token with this hash, or null. */
export function liveOperatorToken(db: Database, tokenHash: string): LiveOperatorTokenRow | null {
  return db
    .query<LiveOperatorTokenRow, [string]>(
      `SELECT t.id AS tid, t.last_used_at, t.expires_at, t.role AS token_role, o.id, o.role, o.status,
              t.created_by, m.role AS maker_role, m.status AS maker_status
       FROM operator_tokens t JOIN operators o ON o.id = t.operator_id
       ${MAKER_JOIN}
       WHERE t.token_hash = ? AND t.revoked_at IS NULL`,
    )
    .get(tokenHash);
}

/** Stores a token (its SHA-256 only). */
export function insertOperatorToken(
  db: Database,
  t: {
    id: string;
    operatorId: string;
    name: string;
    tokenHash: string;
    now: number;
    expiresAt: number;
    role: OperatorRole | null;
    createdBy: string;
  },
): void {
  db.query(
    `INSERT INTO operator_tokens (id, operator_id, name, token_hash, created_at, expires_at, role, created_by)
     VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
  ).run(t.id, t.operatorId, t.name, t.tokenHash, t.now, t.expiresAt, t.role, t.createdBy);
}

/** Marks a token revoked at `now`. */
export function markOperatorTokenRevoked(db: Database, id: string, now: number): void {
  db.query('UPDATE operator_tokens SET revoked_at = ? WHERE id = ?').run(now, id);
}

/** Records a token's use at `now`. */
export function touchOperatorToken(db: Database, id: string, now: number): void {
  db.query('UPDATE operator_tokens SET last_used_at = ? WHERE id = ?').run(now, id);
}

/** Deletes every token of an operator; how many. */
export function deleteOperatorTokens(db: Database, operatorId: string): number {
  return db.query('DELETE FROM operator_tokens WHERE operator_id = ?').run(operatorId).changes;
}
