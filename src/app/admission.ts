import type { Database } from 'bun:sqlite';
import { readMeta } from '../db/index.ts';
import { type AppState, stateKey, stateOf } from './state.ts';

/** What a platform may be refused more of while it is held (issue 13 item 1): users and agents. */
export type AdmissionKind = 'user' | 'agent';

/**
 * The port through which a lower domain (identity, agents) asks whether a platform may take a
 * new user or agent, without importing billing (which plugs its plan limits in at startup:
 * `billing.installOperatorPlans`). `check` throws the refusal; `after` is told once one was
 * made (the plan's limits are evaluated again).
 */
export interface AdmissionHooks {
  check(db: Database, platformId: string, kind: AdmissionKind): void;
  after(db: Database, platformId: string, kind: AdmissionKind): void;
  /** Throws when the platform's plan does not include a feature being turned on. */
  features?(platformId: string, turnedOn: string[]): void;
}

const ADMISSION = stateKey<{ hooks: AdmissionHooks | null }>('app.admission', () => ({ hooks: null }));

/** Plugs in the admission hooks of this App (its control and platform handles share its state). */
export function setAdmissionHooks(app: { state: AppState }, hooks: AdmissionHooks | null): void {
  app.state.get(ADMISSION).hooks = hooks;
}

const platformOf = (db: Database): string | null => {
  try {
    return readMeta(db, 'platform_id');
  } catch {
    return null;
  }
};

/**
 * Throws when the platform of `db` may not take a new `kind` now (402 `billing.platform_held`
 * from billing). No hooks (a unit test's own database, a tool outside the server): admits.
 */
export function admit(db: Database, kind: AdmissionKind): void {
  const hooks = stateOf(db).get(ADMISSION).hooks;
  if (!hooks) return;
  const id = platformOf(db);
  if (id) hooks.check(db, id, kind);
}

/** Tells the hooks a new `kind` was made on the platform of `db` (after its transaction). */
export function admitted(db: Database, kind: AdmissionKind): void {
  const hooks = stateOf(db).get(ADMISSION).hooks;
  if (!hooks) return;
  const id = platformOf(db);
  if (id) hooks.after(db, id, kind);
}

/**
 * Before a platform's blueprint turns features on (`turnedOn`: their names): throws when its
 * operator plan does not include them (409 `billing.plan_feature` from billing). No hooks: allowed.
 */
export function admitFeatures(app: { state: AppState }, platformId: string, turnedOn: string[]): void {
  if (turnedOn.length === 0) return;
  app.state.get(ADMISSION).hooks?.features?.(platformId, turnedOn);
}
