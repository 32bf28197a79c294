/** Which platform a Stripe object belongs to (control.db, migration 0010). */
import type { Database } from 'bun:sqlite';

export function recordStripeObject(control: Database, id: string, platformId: string, now: number): void {
  control
    .query(
      'INSERT INTO stripe_objects (id, platform_id, created_at) VALUES (?, ?, ?) ON CONFLICT (id) DO NOTHING',
    )
    .run(id, platformId, now);
}

export function platformOfStripeObject(control: Database, id: string): string | null {
  return (
    control.query<{ p: string }, [string]>('SELECT platform_id AS p FROM stripe_objects WHERE id = ?').get(id)
      ?.p ?? null
  );
}
