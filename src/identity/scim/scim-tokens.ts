import type { Database } from 'bun:sqlite';
import type { App } from '../../app/index.ts';
import { randomToken, sha256Hex } from '../../shared/crypto.ts';
import { AppError } from '../../shared/errors.ts';
import { newId } from '../../shared/ids.ts';
import type { Principal } from '../permissions.ts';

/** SCIM bearer tokens start with this, so they are never mistaken for API keys. */
export const SCIM_TOKEN_PREFIX = 'sfscim_';

/** Makes a SCIM token for an identity provider (Okta, Entra); shown once. Audited. */
export function createScimToken(
  app: App,
  db: Database,
  name: unknown,
  actor: string,
): { id: string; token: string } {
  const n = typeof name === 'string' ? name.trim() : '';
  if (n.length < 1 || n.length > 100) {
    throw new AppError('scim_token.invalid', 'name must be 1 to 100 characters', 400, [
      { path: '/name', reason: 'must be 1 to 100 characters' },
    ]);
  }
  const token = SCIM_TOKEN_PREFIX + randomToken(32);
  const id = newId('scim');
  db.transaction(() => {
    db.query('INSERT INTO scim_tokens (id, token_hash, name, created_at) VALUES (?, ?, ?, ?)').run(
      id,
      sha256Hex(token),
      n,
      app.clock.now(),
    );
    app.audit.append(db, {
      actor,
      action: 'scim_token.created',
      target: `scim_token:${id}`,
      details: { name: n },
    });
  }).immediate();
  return { id, token };
}

/** Revokes a SCIM token. Audited, in the revocation's own transaction. */
export function revokeScimToken(app: App, db: Database, id: string, actor: string): void {
  db.transaction(() => {
    const changed = db
      .query('UPDATE scim_tokens SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL')
      .run(app.clock.now(), id).changes;
    if (!changed) throw new AppError('scim_token.not_found', `no live SCIM token ${id}`, 404);
    app.audit.append(db, { actor, action: 'scim_token.revoked', target: `scim_token:${id}` });
  }).immediate();
}

/** The SCIM principal behind a bearer token on this platform, or null. */
export function authenticateScimToken(db: Database, token: string, now: number): Principal | null {
  if (!token.startsWith(SCIM_TOKEN_PREFIX) || token.length > 200) return null;
  const row = db
    .query<{ id: string; last_used_at: number | null }, [string]>(
      'SELECT id, last_used_at FROM scim_tokens WHERE token_hash = ? AND revoked_at IS NULL',
    )
    .get(sha256Hex(token));
  if (!row) return null;
  if (row.last_used_at === null || now - row.last_used_at > 60_000) {
    db.query('UPDATE scim_tokens SET last_used_at = ? WHERE id = ?').run(now, row.id);
  }
  return { kind: 'scim', tokenId: row.id };
}
