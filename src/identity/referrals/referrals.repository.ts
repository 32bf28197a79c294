import type { Database } from 'bun:sqlite';

/*
 * The SQL of referrals (issue 12 item 6; migrations/tenant/0018-sharing.sql): one code per user,
 * anonymous visits as one counter per (code, UTC day), and the referrer of each sign-up.
 */

export function codeOfUser(db: Database, userId: string): string | null {
  return (
    db.query<{ code: string }, [string]>('SELECT code FROM referral_codes WHERE user_id = ?').get(userId)
      ?.code ?? null
  );
}

/** Stores a user's code unless they have one (or the code is taken); whether it was written. */
export function insertCode(db: Database, userId: string, code: string, now: number): boolean {
  return (
    db
      .query('INSERT INTO referral_codes (user_id, code, created_at) VALUES (?, ?, ?) ON CONFLICT DO NOTHING')
      .run(userId, code, now).changes > 0
  );
}

/** The user a code belongs to (an active one), or null. */
export function userOfCode(db: Database, code: string): string | null {
  return (
    db
      .query<{ user_id: string }, [string]>(
        `SELECT r.user_id FROM referral_codes r JOIN users u ON u.id = r.user_id
         WHERE r.code = ? AND u.status = 'active'`,
      )
      .get(code)?.user_id ?? null
  );
}

/** Counts one visit of an existing code on `day` (nothing is written for an unknown code). */
export function countVisit(db: Database, code: string, day: number): void {
  db.query(
    `INSERT INTO referral_visits (code, day, visits)
       SELECT code, ?, 1 FROM referral_codes WHERE code = ?
     ON CONFLICT (code, day) DO UPDATE SET visits = visits + 1`,
  ).run(day, code);
}

export function insertSignup(db: Database, userId: string, referrerId: string, now: number): void {
  db.query(
    'INSERT INTO referral_signups (user_id, referrer_id, created_at) VALUES (?, ?, ?) ON CONFLICT DO NOTHING',
  ).run(userId, referrerId, now);
}

/** A referrer's visits per day from `fromDay` on (days with none are absent). */
export function visitsByDay(
  db: Database,
  userId: string,
  fromDay: number,
): { day: number; visits: number }[] {
  return db
    .query<{ day: number; visits: number }, [string, number]>(
      `SELECT v.day, v.visits FROM referral_visits v JOIN referral_codes r ON r.code = v.code
       WHERE r.user_id = ? AND v.day >= ? ORDER BY v.day`,
    )
    .all(userId, fromDay);
}

/**
 * How many sign-ups `userId` referred since `since` (epoch ms): confirmed ones only (a sign-up
 * still waiting for its email confirmation is not counted, and lapses with its row).
 */
export function signupsSince(db: Database, userId: string, since: number): number {
  return db
    .query<{ n: number }, [string, number]>(
      `SELECT count(*) AS n FROM referral_signups s JOIN users u ON u.id = s.user_id
       WHERE s.referrer_id = ? AND s.created_at >= ? AND NOT (u.provisioned_via IS 'signup' AND u.email_verified_at IS NULL)`,
    )
    .get(userId, since)!.n;
}

/** Who referred `userId` at sign-up, or null. */
export function referrerOf(db: Database, userId: string): string | null {
  return (
    db
      .query<{ referrer_id: string }, [string]>('SELECT referrer_id FROM referral_signups WHERE user_id = ?')
      .get(userId)?.referrer_id ?? null
  );
}
