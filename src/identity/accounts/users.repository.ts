import type { Database } from 'bun:sqlite';
import { forgetApiKeys } from '../apikeys/key-cache.ts';

/** A platform's roles, most powerful first. */
export const PLATFORM_ROLES = ['owner', 'admin', 'creator', 'member', 'auditor'] as const;
/** A platform role (see permissions.ts for what each may do). */
export type PlatformRole = (typeof PLATFORM_ROLES)[number];

/** A user row of one platform's database. */
export interface UserRow {
  id: string;
  email: string;
  name: string;
  password_hash: string | null;
  role: PlatformRole;
  status: 'active' | 'disabled';
  email_verified_at: number | null;
  created_at: number;
  updated_at: number;
  external_id?: string | null;
  given_name?: string | null;
  family_name?: string | null;
  /** Sealed (`sf1.…`, see mfa.ts): open it with the database's keyring, never compare it. */
  totp_secret?: string | null;
  /** Sealed like `totp_secret`, under its own context (pending enrolment). */
  totp_pending?: string | null;
  totp_last_step?: number | null;
  /** 'scim' or 'invite' when the account was made for SSO (see provisionSsoUser); else null. */
  provisioned_via?: string | null;
}

const UPDATABLE = [
  'email',
  'name',
  'password_hash',
  'role',
  'status',
  'email_verified_at',
  'external_id',
  'given_name',
  'family_name',
  'totp_secret',
  'totp_pending',
  'totp_last_step',
] as const;

/** SQL over one platform's users table; `db` is that platform's handle. */
export function createUserRepository({ db }: { db: Database }) {
  return {
    /**
     * Inserts a user, every column of the row (MFA columns start empty); throws
     * SQLITE_CONSTRAINT_UNIQUE (read it with db's `isUniqueViolation`) when the email or the
     * external id is taken.
     */
    insert(u: UserRow): void {
      db.query(
        `INSERT INTO users (id, email, name, password_hash, role, status, email_verified_at, created_at, updated_at,
           external_id, given_name, family_name, provisioned_via)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      ).run(
        u.id,
        u.email,
        u.name,
        u.password_hash,
        u.role,
        u.status,
        u.email_verified_at,
        u.created_at,
        u.updated_at,
        u.external_id ?? null,
        u.given_name ?? null,
        u.family_name ?? null,
        u.provisioned_via ?? null,
      );
    },
    /** How many accounts are active. */
    countActive(): number {
      return (
        db.query<{ n: number }, []>("SELECT count(*) AS n FROM users WHERE status = 'active'").get()?.n ?? 0
      );
    },
    /** By id. */
    byId(id: string): UserRow | null {
      return db.query<UserRow, [string]>('SELECT * FROM users WHERE id = ?').get(id);
    },
    /** By email (case-insensitive). */
    byEmail(email: string): UserRow | null {
      return db.query<UserRow, [string]>('SELECT * FROM users WHERE email = ?').get(email);
    },
    /** Every user, oldest first. */
    all(): UserRow[] {
      return db.query<UserRow, []>('SELECT * FROM users ORDER BY created_at, id').all();
    },
    /** Changes some columns of a user. */
    update(id: string, change: Partial<Omit<UserRow, 'id' | 'created_at'>>, now: number): void {
      // NB! Column names come from a fixed list, never from input.
      const cols = UPDATABLE.filter((k) => (change as Record<string, unknown>)[k] !== undefined);
      if (cols.length === 0) return;
      const sets = [...cols.map((c) => `${c} = ?`), 'updated_at = ?'].join(', ');
      db.query(`UPDATE users SET ${sets} WHERE id = ?`).run(
        ...(cols.map((c) => (change as Record<string, string | number | null>)[c]!) as (
          | string
          | number
          | null
        )[]),
        now,
        id,
      );
      // A key acts with its owner's current role and only while its owner is active.
      if (change.role !== undefined || change.status !== undefined) forgetApiKeys(db);
    },
    /** Deletes a user (sessions, keys, tokens and memberships go with it by cascade). */
    delete(id: string): void {
      db.query('DELETE FROM users WHERE id = ?').run(id);
      forgetApiKeys(db);
    },
    /** How many users the platform has. */
    count(): number {
      return db.query<{ n: number }, []>('SELECT count(*) AS n FROM users').get()?.n ?? 0;
    },
    /** The emails of the active accounts with one of `roles` (owners and admins to tell). */
    activeEmailsWithRoles(roles: readonly string[]): string[] {
      if (!roles.length) return [];
      return db
        .query<{ email: string }, string[]>(
          `SELECT email FROM users WHERE status = 'active' AND role IN (${roles.map(() => '?').join(', ')}) ORDER BY created_at`,
        )
        .all(...roles)
        .map((r) => r.email);
    },
    /** How many active owners the platform has (the last one may not go). */
    activeOwners(): number {
      return db
        .query<{ n: number }, []>(
          "SELECT count(*) AS n FROM users WHERE role = 'owner' AND status = 'active'",
        )
        .get()!.n;
    },
    /** By external id (SCIM's `externalId`), any account. */
    byExternalId(externalId: string): UserRow | null {
      return db.query<UserRow, [string]>('SELECT * FROM users WHERE external_id = ?').get(externalId);
    },
    /** A SCIM-provisioned account by its external id. */
    byScimExternalId(externalId: string): UserRow | null {
      return db
        .query<UserRow, [string]>("SELECT * FROM users WHERE external_id = ? AND provisioned_via = 'scim'")
        .get(externalId);
    },
    /** The users whose email, external id or id (`col`, from a fixed list) equals `value`. */
    where(col: 'email' | 'external_id' | 'id', value: string): UserRow[] {
      // NB! The column comes from the type above, never from input.
      return db.query<UserRow, [string]>(`SELECT * FROM users WHERE ${col} = ?`).all(value);
    },
    /** One page of users, oldest first. */
    page(limit: number, offset: number): UserRow[] {
      return db
        .query<UserRow, [number, number]>('SELECT * FROM users ORDER BY created_at, id LIMIT ? OFFSET ?')
        .all(limit, offset);
    },
    /** Clears an invitation account's mark (claimed); other accounts are left alone. */
    clearInviteMark(id: string): void {
      db.query("UPDATE users SET provisioned_via = NULL WHERE id = ? AND provisioned_via = 'invite'").run(id);
    },
  };
}
