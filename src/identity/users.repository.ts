import type { Database } from 'bun:sqlite';

/** A platform's roles (permissions arrive with the identity issue). */
export type PlatformRole = 'owner' | 'admin' | 'creator' | 'member' | 'auditor';

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
}

/** SQL over one platform's users table; `db` is that platform's handle. */
export function createUserRepository({ db }: { db: Database }) {
  return {
    /** Inserts a user; throws SQLITE_CONSTRAINT_UNIQUE when the email is taken. */
    insert(u: UserRow): void {
      db.query(
        `INSERT INTO users (id, email, name, password_hash, role, status, email_verified_at, created_at, updated_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
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
      );
    },
    /** By email (case-insensitive). */
    byEmail(email: string): UserRow | null {
      return db.query<UserRow, [string]>('SELECT * FROM users WHERE email = ?').get(email);
    },
    /** How many users the platform has. */
    count(): number {
      return db.query<{ n: number }, []>('SELECT count(*) AS n FROM users').get()?.n ?? 0;
    },
  };
}
