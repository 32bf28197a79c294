import type { Database } from 'bun:sqlite';

/** A stored SCIM token as admins list it (never its hash). */
export interface ScimTokenRow {
  id: string;
  name: string;
  created_at: number;
  last_used_at: number | null;
  revoked_at: number | null;
}

/** Every SCIM token, newest first. */
export function scimTokenRows(db: Database): ScimTokenRow[] {
  return db
    .query<ScimTokenRow, []>(
      'SELECT id, name, created_at, last_used_at, revoked_at FROM scim_tokens ORDER BY created_at DESC, id DESC',
    )
    .all();
}

/** A group row (table `groups`). */
export interface GroupRow {
  id: string;
  display_name: string;
  external_id: string | null;
  created_at: number;
  updated_at: number;
}

/** A group by id, or null. */
export function groupById(db: Database, id: string): GroupRow | null {
  return db.query<GroupRow, [string]>('SELECT * FROM groups WHERE id = ?').get(id);
}

/** The id of the group with this display name, or null. */
export function groupIdByName(db: Database, displayName: string): string | null {
  return (
    db.query<{ id: string }, [string]>('SELECT id FROM groups WHERE display_name = ?').get(displayName)?.id ??
    null
  );
}

/** Every group, oldest first. */
export function allGroups(db: Database): GroupRow[] {
  return db.query<GroupRow, []>('SELECT * FROM groups ORDER BY created_at, id').all();
}

/** Inserts a group. */
export function insertGroup(db: Database, g: GroupRow): void {
  db.query(
    'INSERT INTO groups (id, display_name, external_id, created_at, updated_at) VALUES (?, ?, ?, ?, ?)',
  ).run(g.id, g.display_name, g.external_id, g.created_at, g.updated_at);
}

/** Renames a group or changes its external id. */
export function updateGroup(
  db: Database,
  id: string,
  g: { display_name: string; external_id: string | null },
  now: number,
): void {
  db.query('UPDATE groups SET display_name = ?, external_id = ?, updated_at = ? WHERE id = ?').run(
    g.display_name,
    g.external_id,
    now,
    id,
  );
}

/** Deletes a group (memberships go by cascade). */
export function deleteGroupRow(db: Database, id: string): void {
  db.query('DELETE FROM groups WHERE id = ?').run(id);
}

/** A group's members, oldest user first. */
export function groupMemberRows(
  db: Database,
  groupId: string,
): { id: string; email: string; name: string }[] {
  return db
    .query<{ id: string; email: string; name: string }, [string]>(
      `SELECT u.id, u.email, u.name FROM group_members m JOIN users u ON u.id = m.user_id
       WHERE m.group_id = ? ORDER BY u.created_at, u.id`,
    )
    .all(groupId);
}

/** The groups a user is in, by name. */
export function userGroupRows(db: Database, userId: string): { id: string; display_name: string }[] {
  return db
    .query<{ id: string; display_name: string }, [string]>(
      `SELECT g.id, g.display_name FROM group_members m JOIN groups g ON g.id = m.group_id
       WHERE m.user_id = ? ORDER BY g.display_name, g.id`,
    )
    .all(userId);
}

/** Adds and removes members of a group (adding a member already in is a no-op). */
export function changeGroupMembers(
  db: Database,
  groupId: string,
  added: readonly string[],
  removed: readonly string[],
): void {
  const add = db.query('INSERT OR IGNORE INTO group_members (group_id, user_id) VALUES (?, ?)');
  const del = db.query('DELETE FROM group_members WHERE group_id = ? AND user_id = ?');
  for (const m of added) add.run(groupId, m);
  for (const m of removed) del.run(groupId, m);
}
