import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { instanceWithPlatform } from '../../../tests/helpers.ts';
import type { Instance } from '../../flows/index.ts';
import { AppError } from '../../shared/errors.ts';
import { createUserRepository } from './users.repository.ts';
import { createUser } from './users.service.ts';

let inst: Instance;
let platformId: string;
let cleanup: () => Promise<void>;
const now = Date.UTC(2026, 11, 2, 8);

beforeAll(async () => {
  ({ inst, platformId, cleanup } = await instanceWithPlatform('users', () => now));
});
afterAll(() => cleanup());

const owner = { actor: 'test', role: 'owner' as const };
const withDb = <T>(fn: (db: import('bun:sqlite').Database) => T) => inst.app.platformDbs.use(platformId, fn);
const refusal = (p: Promise<unknown>) =>
  p.then(
    () => null,
    (e: unknown) => e,
  );

describe('the users repository', () => {
  test('insert keeps external_id, given_name, family_name and provisioned_via', async () => {
    const u = await withDb((db) =>
      createUser(
        inst.app,
        db,
        { email: 'ada@example.test', external_id: 'ext-1', given_name: 'Ada', family_name: 'Lovelace' },
        owner,
      ),
    );
    const row = await withDb((db) => createUserRepository({ db }).byId(u.id));
    expect(row!.external_id).toBe('ext-1');
    expect(row!.given_name).toBe('Ada');
    expect(row!.family_name).toBe('Lovelace');
    // No password: an invitation, linked on its first SSO sign-in.
    expect(row!.provisioned_via).toBe('invite');
  });

  test('a duplicate external_id is a 409 naming the field, and nothing is written', async () => {
    const before = await withDb((db) => createUserRepository({ db }).count());
    const e = await refusal(
      withDb((db) => createUser(inst.app, db, { email: 'other@example.test', external_id: 'ext-1' }, owner)),
    );
    expect(e).toBeInstanceOf(AppError);
    expect((e as AppError).code).toBe('user.external_id_taken');
    expect((e as AppError).status).toBe(409);
    expect((e as AppError).details).toEqual([{ path: '/external_id', reason: 'taken' }]);
    expect(await withDb((db) => createUserRepository({ db }).count())).toBe(before);
    expect(await withDb((db) => createUserRepository({ db }).byEmail('other@example.test'))).toBeNull();
  });

  test('a duplicate email (any case) is a 409 naming the email', async () => {
    const e = await refusal(withDb((db) => createUser(inst.app, db, { email: 'ADA@example.test' }, owner)));
    expect((e as AppError).code).toBe('user.email_taken');
    expect((e as AppError).status).toBe(409);
    expect((e as AppError).details).toEqual([{ path: '/email', reason: 'taken' }]);
  });
});
