export { BACKSTOP_PAGES, type CheckpointResult, WalCheckpointer } from './checkpointer.ts';
export {
  type ConstraintKind,
  type ConstraintViolation,
  constraintViolation,
  isUniqueViolation,
} from './constraints.ts';
export { foldWal, ping, readMeta, writeMeta } from './meta.ts';
export { isCurrent, type Migration, type MigrationResult, migrate, schemaVersion } from './migrate.ts';
export { CONTROL_MIGRATIONS, TENANT_MIGRATIONS } from './migrations.ts';
export { applyPragmas, type DbRole, openDatabase, tx } from './open.ts';
export { DbPool, type Lease } from './pool.ts';
