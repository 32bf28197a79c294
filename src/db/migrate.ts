import type { Database } from 'bun:sqlite';
import { AppError } from '../shared/errors.ts';

/** One schema step: its number (1, 2, ...), a name for people, and the SQL it runs. */
export interface Migration {
  version: number;
  name: string;
  sql: string;
}

/** What a migration run did. */
export interface MigrationResult {
  from: number;
  to: number;
  applied: string[];
}

/**
 * The schema version is SQLite's `user_version`. Each migration runs in its own transaction
 * with the version bump, so a crash leaves the database at a whole step.
 * A database newer than this binary is refused untouched (`db.schema_too_new`).
 *
 * A step whose first line is `-- foreign_keys: off` rebuilds a table (SQLite's way of changing a
 * CHECK constraint): it runs with foreign keys off, as SQLite's documented procedure asks (so
 * that dropping the old table cascades to nothing), and `PRAGMA foreign_key_check` must find no
 * violation before it commits; foreign keys are on again afterwards, whatever happened.
 */
export function migrate(db: Database, migrations: readonly Migration[], label: string): MigrationResult {
  checkOrder(migrations, label);
  const latest = migrations.at(-1)?.version ?? 0;
  const from = schemaVersion(db);
  if (from > latest) {
    throw new AppError(
      'db.schema_too_new',
      `${label} has schema version ${from} but this soulfra knows only up to ${latest}; upgrade soulfra (the database was not changed)`,
      500,
    );
  }
  const applied: string[] = [];
  for (const m of migrations) {
    if (m.version <= from) continue;
    const rebuild = m.sql.startsWith(FOREIGN_KEYS_OFF);
    const fkWasOn = rebuild && foreignKeysOn(db);
    if (fkWasOn) db.exec('PRAGMA foreign_keys = OFF');
    try {
      db.transaction(() => {
        db.exec(m.sql);
        if (rebuild) {
          const broken = db.query('PRAGMA foreign_key_check').all();
          if (broken.length)
            throw new Error(
              `${label} migration ${m.version} leaves ${broken.length} foreign key violation(s): ${JSON.stringify(broken.slice(0, 3))}`,
            );
        }
        db.exec(`PRAGMA user_version = ${m.version}`);
      }).immediate();
    } finally {
      if (fkWasOn) db.exec('PRAGMA foreign_keys = ON');
    }
    applied.push(`${String(m.version).padStart(4, '0')}-${m.name}`);
  }
  return { from, to: Math.max(from, latest), applied };
}

/** The first line of a step that must run with foreign keys off (a table rebuild). */
export const FOREIGN_KEYS_OFF = '-- foreign_keys: off';

function foreignKeysOn(db: Database): boolean {
  return db.query<{ foreign_keys: number }, []>('PRAGMA foreign_keys').get()?.foreign_keys === 1;
}

/** The schema version recorded in a database (0 for a new file). */
export function schemaVersion(db: Database): number {
  const row = db.query<{ user_version: number }, []>('PRAGMA user_version').get();
  return row?.user_version ?? 0;
}

/** Whether the database is exactly at the latest version of `migrations`. */
export function isCurrent(db: Database, migrations: readonly Migration[]): boolean {
  return schemaVersion(db) === (migrations.at(-1)?.version ?? 0);
}

function checkOrder(migrations: readonly Migration[], label: string): void {
  migrations.forEach((m, i) => {
    if (m.version !== i + 1)
      throw new Error(`${label} migrations must be numbered 1..N; #${i} is ${m.version}`);
  });
}
