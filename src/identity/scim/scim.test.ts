import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { operatorApi } from '../../../tests/helpers.ts';
import { PlatformClient, serverWithPlatform } from '../../../tests/platform-client.ts';
import { matches, parseFilter, parsePath } from './scim.ts';

// SCIM 2.0 as Okta and Entra ID speak it: their request sequences replayed as fixtures against
// a real server, plus the auth table and the error envelope.

let env: Awaited<ReturnType<typeof serverWithPlatform>>;
let owner: PlatformClient;
let scimToken: { id: string; token: string };
let otherPlatformToken: string;

const client = () => new PlatformClient(env.s.base, env.host);

type Json = Record<string, unknown>;
interface ScimList {
  schemas: string[];
  totalResults: number;
  startIndex: number;
  itemsPerPage: number;
  Resources: Json[];
}
interface ScimErr {
  schemas: string[];
  status: string;
  scimType?: string;
  detail: string;
}

/** A SCIM request as an IdP sends it: bearer token, application/scim+json. */
async function scim<T = Json>(
  method: string,
  path: string,
  body?: unknown,
  opts: { token?: string | null; type?: string; raw?: string } = {},
): Promise<{ status: number; body: T; res: Response }> {
  const c = client();
  const token = opts.token === undefined ? scimToken.token : opts.token;
  const headers: Record<string, string> = { accept: 'application/scim+json' };
  if (token) headers.authorization = `Bearer ${token}`;
  let payload: string | undefined;
  if (body !== undefined || opts.raw !== undefined) {
    headers['content-type'] = opts.type ?? 'application/scim+json; charset=utf-8';
    payload = opts.raw ?? JSON.stringify(body);
  }
  const res = await c.fetch(path, { method, headers, body: payload });
  const text = await res.text();
  return { status: res.status, body: (text ? JSON.parse(text) : null) as T, res };
}

/** The platform's audit entries (as the owner sees them). */
async function audit(): Promise<{ actor: string; action: string; target: string; details: Json }[]> {
  const r = await owner.json<{ entries: { actor: string; action: string; target: string; details: Json }[] }>(
    'GET',
    '/api/v1/audit?limit=500',
  );
  expect(r.status).toBe(200);
  return r.body.entries;
}

const patchOp = (...ops: Json[]) => ({
  schemas: ['urn:ietf:params:scim:api:messages:2.0:PatchOp'],
  Operations: ops,
});

beforeAll(async () => {
  env = await serverWithPlatform('scimco');
  owner = client();
  expect((await owner.signIn(env.owner.email, env.owner.password)).status).toBe(200);
  const t = await owner.json<{ id: string; token: string }>('POST', '/api/v1/scim/tokens', { name: 'Okta' });
  expect(t.status).toBe(201);
  scimToken = t.body;
  // A second platform on the same server, with a SCIM token of its own.
  const res = await operatorApi(env.s.base, env.operatorToken, 'POST', '/platforms', { slug: 'otherco' });
  expect(res.status).toBe(201);
  const other = (await res.json()) as { admin: { email: string; password: string } };
  const oc = new PlatformClient(env.s.base, 'otherco.localhost');
  expect((await oc.signIn(other.admin.email, other.admin.password)).status).toBe(200);
  const ot = await oc.json<{ token: string }>('POST', '/api/v1/scim/tokens', { name: 'Entra' });
  expect(ot.status).toBe(201);
  otherPlatformToken = ot.body.token;
});
afterAll(async () => {
  await env.s.cleanup();
});

describe('SCIM tokens (admins)', () => {
  test('created with the secret shown once; listed without it; revoked tokens stop at once', async () => {
    const made = await owner.json<{ id: string; token: string; base_url: string; scim_token: Json }>(
      'POST',
      '/api/v1/scim/tokens',
      { name: 'Entra ID' },
    );
    expect(made.status).toBe(201);
    expect(made.res.headers.get('cache-control')).toBe('no-store');
    expect(made.body.token).toMatch(/^sfscim_/);
    expect(made.body.id).toMatch(/^scim_/);
    expect(made.body.base_url).toBe(`http://${env.host}:${env.s.port}/scim/v2`);
    expect(made.body.scim_token.name).toBe('Entra ID');

    expect(
      (await scim('GET', '/scim/v2/ServiceProviderConfig', undefined, { token: made.body.token })).status,
    ).toBe(200);
    const list = await owner.json<{ scim_tokens: Json[] }>('GET', '/api/v1/scim/tokens');
    expect(list.status).toBe(200);
    const mine = list.body.scim_tokens.find((t) => t.id === made.body.id)!;
    expect(mine.name).toBe('Entra ID');
    expect(mine.revoked_at).toBeNull();
    expect(typeof mine.last_used_at).toBe('string');
    expect(JSON.stringify(list.body)).not.toContain(made.body.token);

    const del = await owner.json<{ scim_token: Json }>('DELETE', `/api/v1/scim/tokens/${made.body.id}`);
    expect(del.status).toBe(200);
    expect(typeof del.body.scim_token.revoked_at).toBe('string');
    const after = await scim<ScimErr>('GET', '/scim/v2/Users', undefined, { token: made.body.token });
    expect(after.status).toBe(401);
    expect(after.body.status).toBe('401');
    expect((await owner.json('DELETE', `/api/v1/scim/tokens/${made.body.id}`)).status).toBe(404);
    expect((await owner.json('POST', '/api/v1/scim/tokens', { name: '' })).status).toBe(400);

    const entries = await audit();
    expect(
      entries.some((e) => e.action === 'scim_token.created' && e.target === `scim_token:${made.body.id}`),
    ).toBe(true);
    expect(
      entries.some((e) => e.action === 'scim_token.revoked' && e.target === `scim_token:${made.body.id}`),
    ).toBe(true);
  });

  test('a member cannot manage SCIM tokens', async () => {
    const made = await owner.json('POST', '/api/v1/users', {
      email: 'member@scimco.test',
      password: 'member-password-1',
    });
    expect(made.status).toBe(201);
    const m = client();
    expect((await m.signIn('member@scimco.test', 'member-password-1')).status).toBe(200);
    expect((await m.json('GET', '/api/v1/scim/tokens')).status).toBe(403);
    expect((await m.json('POST', '/api/v1/scim/tokens', { name: 'x' })).status).toBe(403);
  });
});

describe('discovery documents', () => {
  test('ServiceProviderConfig says what is supported, truthfully', async () => {
    const r = await scim<Json>('GET', '/scim/v2/ServiceProviderConfig');
    expect(r.status).toBe(200);
    expect(r.res.headers.get('content-type')).toBe('application/scim+json; charset=utf-8');
    expect(r.body.schemas).toEqual(['urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig']);
    expect(r.body.patch).toEqual({ supported: true });
    expect(r.body.filter).toEqual({ supported: true, maxResults: 200 });
    expect(r.body.bulk).toEqual({ supported: false, maxOperations: 0, maxPayloadSize: 0 });
    expect(r.body.sort).toEqual({ supported: false });
    expect(r.body.etag).toEqual({ supported: false });
    expect(r.body.changePassword).toEqual({ supported: false });
    expect((r.body.authenticationSchemes as Json[])[0]!.type).toBe('oauthbearertoken');
  });

  test('ResourceTypes and Schemas list User and Group', async () => {
    const rt = await scim<ScimList>('GET', '/scim/v2/ResourceTypes');
    expect(rt.status).toBe(200);
    expect(rt.body.totalResults).toBe(2);
    expect(rt.body.Resources.map((r) => [r.id, r.endpoint])).toEqual([
      ['User', '/Users'],
      ['Group', '/Groups'],
    ]);
    expect((await scim<Json>('GET', '/scim/v2/ResourceTypes/Group')).body.schema).toBe(
      'urn:ietf:params:scim:schemas:core:2.0:Group',
    );
    const sc = await scim<ScimList>('GET', '/scim/v2/Schemas');
    expect(sc.body.totalResults).toBe(2);
    const user = sc.body.Resources[0]!;
    expect(user.id).toBe('urn:ietf:params:scim:schemas:core:2.0:User');
    const attrs = user.attributes as { name: string; uniqueness: string; mutability: string }[];
    expect(attrs.map((a) => a.name)).toEqual([
      'userName',
      'name',
      'displayName',
      'emails',
      'active',
      'password',
      'groups',
    ]);
    expect(attrs.find((a) => a.name === 'userName')!.uniqueness).toBe('server');
    expect(attrs.find((a) => a.name === 'password')!.mutability).toBe('writeOnly');
    const one = await scim<Json>('GET', '/scim/v2/Schemas/urn:ietf:params:scim:schemas:core:2.0:Group');
    expect(one.status).toBe(200);
    expect(one.body.name).toBe('Group');
    expect((await scim<ScimErr>('GET', '/scim/v2/Schemas/urn:nope')).status).toBe(404);
  });
});

describe('Okta provisioning, replayed', () => {
  test('lookup → create → get → deactivate (session and key end at once) → reactivate → delete', async () => {
    const email = 'isabella.r@okta.test';
    const password = 'okta-pushed-password-1';
    // 1. Okta looks the user up first (URL-encoded as Okta sends it).
    const look = await scim<ScimList>(
      'GET',
      `/scim/v2/Users?filter=${encodeURIComponent(`userName eq "${email}"`)}&startIndex=1&count=100`,
    );
    expect(look.status).toBe(200);
    expect(look.body).toEqual({
      schemas: ['urn:ietf:params:scim:api:messages:2.0:ListResponse'],
      totalResults: 0,
      startIndex: 1,
      itemsPerPage: 0,
      Resources: [],
    });

    // 2. Not found: Okta creates it.
    const created = await scim<Json>('POST', '/scim/v2/Users', {
      schemas: ['urn:ietf:params:scim:schemas:core:2.0:User'],
      userName: 'Isabella.R@okta.test',
      name: { givenName: 'Isabella', familyName: 'Rossi' },
      emails: [{ primary: true, value: 'Isabella.R@okta.test', type: 'work' }],
      displayName: 'Isabella Rossi',
      locale: 'en-US',
      externalId: '00ujl29u0le5T6Aj10h7',
      groups: [],
      password,
      active: true,
    });
    expect(created.status).toBe(201);
    const id = created.body.id as string;
    expect(id).toMatch(/^usr_/);
    const location = `http://${env.host}:${env.s.port}/scim/v2/Users/${id}`;
    expect(created.res.headers.get('location')).toBe(location);
    expect(created.body).toEqual({
      schemas: ['urn:ietf:params:scim:schemas:core:2.0:User'],
      id,
      externalId: '00ujl29u0le5T6Aj10h7',
      userName: email,
      name: { formatted: 'Isabella Rossi', givenName: 'Isabella', familyName: 'Rossi' },
      displayName: 'Isabella Rossi',
      emails: [{ value: email, type: 'work', primary: true }],
      active: true,
      groups: [],
      meta: {
        resourceType: 'User',
        created: expect.any(String),
        lastModified: expect.any(String),
        location,
      },
    });
    expect(JSON.stringify(created.body)).not.toContain(password);

    // 3. Okta reads it back; the lookup now finds it, in any case.
    const got = await scim<Json>('GET', `/scim/v2/Users/${id}`);
    expect(got.status).toBe(200);
    expect(got.body).toEqual(created.body);
    const again = await scim<ScimList>(
      'GET',
      `/scim/v2/Users?filter=${encodeURIComponent('userName eq "ISABELLA.R@OKTA.TEST"')}&startIndex=1&count=100`,
    );
    expect(again.body.totalResults).toBe(1);
    expect(again.body.Resources[0]!.id).toBe(id);

    // The user signs in with the pushed password and makes an API key.
    const user = client();
    const signIn = await user.signIn(email, password);
    expect(signIn.status).toBe(200);
    expect((signIn.body.user as Json).role).toBe('member');
    const key = await user.json<{ key: string }>('POST', '/api/v1/api-keys', { name: 'laptop' });
    expect(key.status).toBe(201);
    const keyClient = client();
    keyClient.bearer = key.body.key;
    expect((await user.json('GET', '/api/v1/me')).status).toBe(200);
    expect((await keyClient.json('GET', '/api/v1/me')).status).toBe(200);

    // 4. Unassigned in Okta: deactivation, as a value object without a path.
    const off = await scim<Json>(
      'PATCH',
      `/scim/v2/Users/${id}`,
      patchOp({ op: 'replace', value: { active: false } }),
    );
    expect(off.status).toBe(200);
    expect(off.body.active).toBe(false);
    expect((await user.json('GET', '/api/v1/me')).status).toBe(401);
    const keyAfter = await keyClient.json<{ error: { code: string } }>('GET', '/api/v1/me');
    expect(keyAfter.status).toBe(401);
    expect(keyAfter.body.error.code).toBe('auth.invalid_api_key');
    expect((await client().signIn(email, password)).status).toBe(401);

    let entries = await audit();
    const actor = `scim:${scimToken.id}`;
    expect(entries.filter((e) => e.target === `user:${id}`).map((e) => [e.actor, e.action])).toEqual([
      [actor, 'scim.user_created'],
      [`user:${id}`, 'user.signed_in'],
      [actor, 'user.deactivated'],
      [actor, 'scim.user_deactivated'],
      [`user:${id}`, 'user.sign_in_failed'],
    ]);
    const deact = entries.find((e) => e.action === 'user.deactivated' && e.target === `user:${id}`)!;
    expect(deact.details).toEqual({ sessions_ended: 1, keys_revoked: 1 });

    // 5. Reassigned: reactivation; the password works again (the old key stays revoked).
    const on = await scim<Json>(
      'PATCH',
      `/scim/v2/Users/${id}`,
      patchOp({ op: 'replace', value: { active: true } }),
    );
    expect(on.status).toBe(200);
    expect(on.body.active).toBe(true);
    expect((await client().signIn(email, password)).status).toBe(200);
    expect((await keyClient.json('GET', '/api/v1/me')).status).toBe(401);

    // 6. Deleted.
    const del = await scim('DELETE', `/scim/v2/Users/${id}`);
    expect(del.status).toBe(204);
    const gone = await scim<ScimErr>('GET', `/scim/v2/Users/${id}`);
    expect(gone.status).toBe(404);
    expect(gone.body).toEqual({
      schemas: ['urn:ietf:params:scim:api:messages:2.0:Error'],
      status: '404',
      detail: `no User with id ${id}`,
    });
    entries = await audit();
    const deleted = entries.find((e) => e.action === 'scim.user_deleted' && e.target === `user:${id}`)!;
    expect(deleted.actor).toBe(actor);
    expect(deleted.details).toEqual({ email, external_id: '00ujl29u0le5T6Aj10h7' });
    expect(entries.some((e) => e.action === 'scim.user_activated' && e.target === `user:${id}`)).toBe(true);
  });

  test('PUT replaces the profile; a password in it is refused (changePassword: false)', async () => {
    const made = await scim<Json>('POST', '/scim/v2/Users', {
      schemas: ['urn:ietf:params:scim:schemas:core:2.0:User'],
      userName: 'put.me@okta.test',
      name: { givenName: 'Put', familyName: 'Me' },
      externalId: '00uput',
      active: true,
    });
    expect(made.status).toBe(201);
    const id = made.body.id as string;
    // No displayName sent: it is made from the name parts, and follows them.
    expect(made.body.displayName).toBe('Put Me');
    expect((made.body.name as Json).formatted).toBe('Put Me');
    const put = await scim<Json>('PUT', `/scim/v2/Users/${id}`, {
      schemas: ['urn:ietf:params:scim:schemas:core:2.0:User'],
      id,
      userName: 'put.renamed@okta.test',
      name: { givenName: 'Putty', familyName: 'Renamed' },
      emails: [{ primary: true, value: 'put.renamed@okta.test', type: 'work' }],
      active: true,
    });
    expect(put.status).toBe(200);
    expect(put.body.userName).toBe('put.renamed@okta.test');
    expect(put.body.name).toEqual({ formatted: 'Putty Renamed', givenName: 'Putty', familyName: 'Renamed' });
    expect(put.body.displayName).toBe('Putty Renamed');
    expect(put.body.externalId).toBe('00uput');
    const pw = await scim<ScimErr>('PUT', `/scim/v2/Users/${id}`, {
      userName: 'put.renamed@okta.test',
      password: 'a-new-password-123',
    });
    expect(pw.status).toBe(400);
    expect(pw.body.scimType).toBe('mutability');
    const pwPatch = await scim<ScimErr>(
      'PATCH',
      `/scim/v2/Users/${id}`,
      patchOp({ op: 'replace', value: { password: 'a-new-password-123' } }),
    );
    expect(pwPatch.status).toBe(400);
    expect(pwPatch.body.scimType).toBe('mutability');
    const entries = await audit();
    const upd = entries.find((e) => e.action === 'scim.user_updated' && e.target === `user:${id}`)!;
    expect(upd.details).toEqual({
      fields: ['email', 'name', 'given_name', 'family_name'],
      email: { from: 'put.me@okta.test', to: 'put.renamed@okta.test' },
    });
  });
});

describe('Entra ID provisioning, replayed', () => {
  const externalId = '0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef';
  const userName = 'Test_User_ab6490ee-1e48-479e-a20b-2d77186b5dd1@contoso.test';
  let id = '';

  test('probe, lookup by externalId, create with the enterprise extension', async () => {
    // Entra's connection test: a userName that cannot exist.
    const probe = await scim<ScimList>(
      'GET',
      `/scim/v2/Users?filter=${encodeURIComponent('userName eq "ae1b3c9f-7a55-4c4e-9b0e-5c1b2a4d9e01"')}`,
    );
    expect(probe.status).toBe(200);
    expect(probe.body.totalResults).toBe(0);
    const look = await scim<ScimList>(
      'GET',
      `/scim/v2/Users?filter=${encodeURIComponent(`externalId eq "${externalId}"`)}`,
    );
    expect(look.body.totalResults).toBe(0);

    const created = await scim<Json>('POST', '/scim/v2/Users', {
      schemas: [
        'urn:ietf:params:scim:schemas:core:2.0:User',
        'urn:ietf:params:scim:schemas:extension:enterprise:2.0:User',
      ],
      externalId,
      userName,
      active: true,
      emails: [{ primary: true, type: 'work', value: 'grace@contoso.test' }],
      meta: { resourceType: 'User' },
      name: { formatted: 'Grace H', familyName: 'H', givenName: 'Grace' },
      roles: [],
      'urn:ietf:params:scim:schemas:extension:enterprise:2.0:User': {
        department: 'Eng',
        employeeNumber: '42',
      },
    });
    expect(created.status).toBe(201);
    id = created.body.id as string;
    expect(created.body.userName).toBe(userName.toLowerCase());
    expect(created.body.externalId).toBe(externalId);
    expect(created.body.name).toEqual({ formatted: 'Grace H', givenName: 'Grace', familyName: 'H' });
    expect(created.body['urn:ietf:params:scim:schemas:extension:enterprise:2.0:User']).toBeUndefined();
  });

  test('filters Entra sends: externalId (case-exact), emails[type eq "work"].value, and', async () => {
    const q = async (f: string) =>
      (await scim<ScimList>('GET', `/scim/v2/Users?filter=${encodeURIComponent(f)}`)).body;
    const byExt = await q(`externalId eq "${externalId}"`);
    expect(byExt.totalResults).toBe(1);
    expect(byExt.Resources[0]!.id).toBe(id);
    expect((await q(`externalId eq "${externalId.toUpperCase()}"`)).totalResults).toBe(0);
    const byMail = await q(`emails[type eq "work"].value eq "${userName.toUpperCase()}"`);
    expect(byMail.Resources.map((r) => r.id)).toEqual([id]);
    expect((await q(`emails[type eq "home"].value eq "${userName}"`)).totalResults).toBe(0);
    expect((await q(`userName eq "${userName}" and externalId eq "${externalId}"`)).totalResults).toBe(1);
    expect((await q(`userName eq "${userName}" and externalId eq "other"`)).totalResults).toBe(0);
    expect((await q(`userName eq "nobody@x.test" or externalId eq "${externalId}"`)).totalResults).toBe(1);
    const withAttrs = await scim<ScimList>(
      'GET',
      `/scim/v2/Users?filter=${encodeURIComponent(`externalId eq "${externalId}"`)}&attributes=userName`,
    );
    expect(withAttrs.body.Resources[0]).toEqual({
      schemas: ['urn:ietf:params:scim:schemas:core:2.0:User'],
      id,
      userName: userName.toLowerCase(),
    });
  });

  test('PATCH with paths: name.givenName, capitalised ops, ignored extension attributes', async () => {
    const r = await scim<Json>(
      'PATCH',
      `/scim/v2/Users/${id}`,
      patchOp(
        { op: 'Add', path: 'name.givenName', value: 'Grace' },
        { op: 'Replace', path: 'name.familyName', value: 'Hopper' },
        { op: 'Replace', path: 'name.formatted', value: 'Grace Hopper' },
        { op: 'Replace', path: 'emails[type eq "work"].value', value: 'grace@contoso.test' },
        {
          op: 'Add',
          path: 'urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department',
          value: 'Navy',
        },
        { op: 'Replace', path: 'displayName', value: 'Rear Admiral Hopper' },
      ),
    );
    expect(r.status).toBe(200);
    expect(r.body.name).toEqual({
      formatted: 'Rear Admiral Hopper',
      givenName: 'Grace',
      familyName: 'Hopper',
    });
    expect(r.body.displayName).toBe('Rear Admiral Hopper');
    expect(r.body.emails).toEqual([{ value: userName.toLowerCase(), type: 'work', primary: true }]);
    const rm = await scim<Json>(
      'PATCH',
      `/scim/v2/Users/${id}`,
      patchOp({ op: 'Remove', path: 'displayName' }),
    );
    expect(rm.body.displayName).toBe('Grace Hopper');
  });

  test('PATCH active "False" (a string, op Replace) disables the user', async () => {
    const r = await scim<Json>(
      'PATCH',
      `/scim/v2/Users/${id}`,
      patchOp({ op: 'Replace', path: 'active', value: 'False' }),
    );
    expect(r.status).toBe(200);
    expect(r.body.active).toBe(false);
    const users = await owner.json<{ user: { status: string } }>('GET', `/api/v1/users/${id}`);
    expect(users.body.user.status).toBe('disabled');
    const entries = await audit();
    expect(
      entries
        .filter((e) => e.target === `user:${id}` && e.action === 'scim.user_deactivated')
        .map((e) => e.actor),
    ).toEqual([`scim:${scimToken.id}`]);
    const back = await scim<Json>(
      'PATCH',
      `/scim/v2/Users/${id}`,
      patchOp({ op: 'Replace', path: 'active', value: 'True' }),
    );
    expect(back.body.active).toBe(true);
  });

  test('groups: lookup, create, add and remove members both ways, rename, PUT, delete', async () => {
    const q = async (f: string, extra = '') =>
      (await scim<ScimList>('GET', `/scim/v2/Groups?filter=${encodeURIComponent(f)}${extra}`)).body;
    expect((await q('displayName eq "Engineering"', '&excludedAttributes=members')).totalResults).toBe(0);
    const made = await scim<Json>('POST', '/scim/v2/Groups', {
      schemas: ['urn:ietf:params:scim:schemas:core:2.0:Group'],
      externalId: '8aa1a0c0-c4c3-4bc0-b4a5-2ef676900159',
      displayName: 'Engineering',
      meta: { resourceType: 'Group' },
    });
    expect(made.status).toBe(201);
    const gid = made.body.id as string;
    expect(gid).toMatch(/^grp_/);
    expect(made.res.headers.get('location')).toBe((made.body.meta as Json).location as string);
    expect(made.body.members).toEqual([]);
    const found = await q('displayName eq "engineering"', '&excludedAttributes=members');
    expect(found.totalResults).toBe(1);
    expect(found.Resources[0]!.members).toBeUndefined();
    expect(found.Resources[0]!.displayName).toBe('Engineering');

    // Entra adds a member.
    const add = await scim<Json>(
      'PATCH',
      `/scim/v2/Groups/${gid}`,
      patchOp({ op: 'Add', path: 'members', value: [{ value: id }] }),
    );
    expect(add.status).toBe(200);
    expect((add.body.members as Json[]).map((m) => m.value)).toEqual([id]);
    expect((await q(`id eq "${gid}" and members[value eq "${id}"]`)).totalResults).toBe(1);
    const u = await scim<Json>('GET', `/scim/v2/Users/${id}`);
    expect((u.body.groups as Json[]).map((g) => [g.value, g.display])).toEqual([[gid, 'Engineering']]);

    // Entra removes it: path "members", the member as the value.
    const rm = await scim<Json>(
      'PATCH',
      `/scim/v2/Groups/${gid}`,
      patchOp({ op: 'Remove', path: 'members', value: [{ value: id }] }),
    );
    expect(rm.body.members).toEqual([]);
    expect((await q(`id eq "${gid}" and members[value eq "${id}"]`)).totalResults).toBe(0);

    // Okta's forms: add with display, remove by a value filter, rename with a value object.
    await scim(
      'PATCH',
      `/scim/v2/Groups/${gid}`,
      patchOp({ op: 'add', path: 'members', value: [{ value: id, display: 'g' }] }),
    );
    const rm2 = await scim<Json>(
      'PATCH',
      `/scim/v2/Groups/${gid}`,
      patchOp({ op: 'remove', path: `members[value eq "${id}"]` }),
    );
    expect(rm2.status).toBe(200);
    expect(rm2.body.members).toEqual([]);
    const renamed = await scim<Json>(
      'PATCH',
      `/scim/v2/Groups/${gid}`,
      patchOp({ op: 'replace', value: { id: gid, displayName: 'Platform Engineering' } }),
    );
    expect(renamed.body.displayName).toBe('Platform Engineering');

    const put = await scim<Json>('PUT', `/scim/v2/Groups/${gid}`, {
      schemas: ['urn:ietf:params:scim:schemas:core:2.0:Group'],
      displayName: 'Platform',
      members: [{ value: id }],
    });
    expect(put.status).toBe(200);
    expect(put.body.displayName).toBe('Platform');
    expect(put.body.externalId).toBe('8aa1a0c0-c4c3-4bc0-b4a5-2ef676900159');
    expect((put.body.members as Json[]).map((m) => m.value)).toEqual([id]);

    const entries = (await audit()).filter((e) => e.target === `group:${gid}`);
    expect(entries.map((e) => e.action)).toEqual([
      'scim.group_created',
      'scim.group_updated',
      'scim.group_updated',
      'scim.group_updated',
      'scim.group_updated',
      'scim.group_updated',
      'scim.group_updated',
    ]);
    expect(entries[1]!.details).toEqual({ display_name: 'Engineering', members_added: [id] });
    expect(entries[2]!.details).toEqual({ display_name: 'Engineering', members_removed: [id] });
    expect(entries.every((e) => e.actor === `scim:${scimToken.id}`)).toBe(true);

    expect((await scim('DELETE', `/scim/v2/Groups/${gid}`)).status).toBe(204);
    expect((await scim('GET', `/scim/v2/Groups/${gid}`)).status).toBe(404);
    expect((await scim<Json>('GET', `/scim/v2/Users/${id}`)).body.groups).toEqual([]);
    expect(
      (await audit()).some((e) => e.action === 'scim.group_deleted' && e.target === `group:${gid}`),
    ).toBe(true);
  });
});

describe('who may provision', () => {
  test('only this platform’s live SCIM tokens; everyone else gets a SCIM error', async () => {
    const session = client();
    await session.signIn(env.owner.email, env.owner.password);
    const key = await session.json<{ key: string }>('POST', '/api/v1/api-keys', {
      name: 'admin',
      scopes: ['admin'],
    });
    expect(key.status).toBe(201);
    const cookie = [...session.jar].map(([k, v]) => `${k}=${v}`).join('; ');

    const cases: { name: string; headers: Record<string, string>; status: number }[] = [
      { name: 'no credentials', headers: {}, status: 401 },
      { name: "an owner's session cookie", headers: { cookie }, status: 403 },
      { name: "an owner's admin API key", headers: { authorization: `Bearer ${key.body.key}` }, status: 403 },
      { name: 'an unknown SCIM token', headers: { authorization: 'Bearer sfscim_notatoken' }, status: 401 },
      {
        name: "another platform's SCIM token",
        headers: { authorization: `Bearer ${otherPlatformToken}` },
        status: 401,
      },
      {
        name: "this platform's SCIM token",
        headers: { authorization: `Bearer ${scimToken.token}` },
        status: 200,
      },
    ];
    for (const c of cases) {
      const res = await client().fetch('/scim/v2/Users', {
        headers: { accept: 'application/scim+json', ...c.headers },
      });
      const body = (await res.json()) as ScimErr & ScimList;
      expect([c.name, res.status]).toEqual([c.name, c.status]);
      if (c.status !== 200) {
        expect(body.schemas).toEqual(['urn:ietf:params:scim:api:messages:2.0:Error']);
        expect(body.status).toBe(String(c.status));
        expect(res.headers.get('content-type')).toBe('application/scim+json; charset=utf-8');
      }
    }
    // A SCIM token provisions and does nothing else.
    const other = client();
    other.bearer = scimToken.token;
    expect((await other.json('GET', '/api/v1/users')).status).toBe(403);
    expect((await other.json('GET', '/api/v1/scim/tokens')).status).toBe(403);
  });
});

describe('errors in the SCIM envelope', () => {
  test('an invalid filter is 400 invalidFilter', async () => {
    for (const f of [
      'userName eq',
      'userName foo "x"',
      '(userName eq "x"',
      'userName eq "unterminated',
      'userName eq "x" and',
      'active gt true',
      'emails[type eq "work"',
    ]) {
      const r = await scim<ScimErr>('GET', `/scim/v2/Users?filter=${encodeURIComponent(f)}`);
      expect([f, r.status, r.body.scimType]).toEqual([f, 400, 'invalidFilter']);
      expect(r.body.schemas).toEqual(['urn:ietf:params:scim:api:messages:2.0:Error']);
    }
    const g = await scim<ScimErr>('GET', `/scim/v2/Groups?filter=${encodeURIComponent('displayName eq')}`);
    expect(g.body.scimType).toBe('invalidFilter');
  });

  test('a duplicate userName (any case) or externalId is 409 uniqueness', async () => {
    const first = await scim('POST', '/scim/v2/Users', { userName: 'dup@scimco.test', externalId: 'dup-1' });
    expect(first.status).toBe(201);
    const dup = await scim<ScimErr>('POST', '/scim/v2/Users', { userName: 'DUP@scimco.test' });
    expect(dup.status).toBe(409);
    expect(dup.body).toEqual({
      schemas: ['urn:ietf:params:scim:api:messages:2.0:Error'],
      status: '409',
      scimType: 'uniqueness',
      detail: 'a user with userName dup@scimco.test exists',
    });
    const ext = await scim<ScimErr>('POST', '/scim/v2/Users', {
      userName: 'dup2@scimco.test',
      externalId: 'dup-1',
    });
    expect([ext.status, ext.body.scimType]).toEqual([409, 'uniqueness']);
    const owner = await scim<ScimErr>('POST', '/scim/v2/Users', { userName: env.owner.email });
    expect([owner.status, owner.body.scimType]).toEqual([409, 'uniqueness']);
    await scim('POST', '/scim/v2/Groups', { displayName: 'Sales' });
    const g = await scim<ScimErr>('POST', '/scim/v2/Groups', { displayName: 'SALES' });
    expect([g.status, g.body.scimType]).toEqual([409, 'uniqueness']);
  });

  test('an unknown id is 404 on every verb', async () => {
    for (const [method, path, body] of [
      ['GET', '/scim/v2/Users/usr_nope', undefined],
      ['PUT', '/scim/v2/Users/usr_nope', { userName: 'x@y.test' }],
      ['PATCH', '/scim/v2/Users/usr_nope', patchOp({ op: 'replace', value: { active: false } })],
      ['DELETE', '/scim/v2/Users/usr_nope', undefined],
      ['GET', '/scim/v2/Groups/grp_nope', undefined],
      ['PATCH', '/scim/v2/Groups/grp_nope', patchOp({ op: 'add', path: 'members', value: [] })],
      ['DELETE', '/scim/v2/Groups/grp_nope', undefined],
    ] as const) {
      const r = await scim<ScimErr>(method, path, body);
      expect([method, path, r.status, r.body.status]).toEqual([method, path, 404, '404']);
    }
  });

  test('bad bodies and bad values: invalidSyntax, invalidValue, noTarget, invalidPath', async () => {
    const made = await scim<Json>('POST', '/scim/v2/Users', { userName: 'errors@scimco.test' });
    const id = made.body.id as string;
    const cases: [string, string, unknown, number, string][] = [
      ['not JSON', 'POST', { raw: '{"userName":' }, 400, 'invalidSyntax'],
      ['an array body', 'POST', { raw: '[]' }, 400, 'invalidSyntax'],
      ['no userName', 'POST', { name: { givenName: 'x' } }, 400, 'invalidValue'],
      ['userName not an email', 'POST', { userName: 'just-a-name' }, 400, 'invalidValue'],
      ['a short password', 'POST', { userName: 'pw@scimco.test', password: 'short' }, 400, 'invalidValue'],
      ['no Operations', 'PATCH', { schemas: [] }, 400, 'invalidSyntax'],
      ['an unknown op', 'PATCH', patchOp({ op: 'merge', path: 'active', value: true }), 400, 'invalidSyntax'],
      ['remove without a path', 'PATCH', patchOp({ op: 'remove' }), 400, 'noTarget'],
      [
        'active as a word',
        'PATCH',
        patchOp({ op: 'replace', path: 'active', value: 'maybe' }),
        400,
        'invalidValue',
      ],
      ['a broken path', 'PATCH', patchOp({ op: 'replace', path: 'name[', value: 'x' }), 400, 'invalidPath'],
      ['removing userName', 'PATCH', patchOp({ op: 'remove', path: 'userName' }), 400, 'mutability'],
    ];
    for (const [name, method, body, status, scimType] of cases) {
      const path = method === 'POST' ? '/scim/v2/Users' : `/scim/v2/Users/${id}`;
      const raw = (body as { raw?: string }).raw;
      const r = await scim<ScimErr>(
        method,
        path,
        raw === undefined ? body : undefined,
        raw === undefined ? {} : { raw },
      );
      expect([name, r.status, r.body.scimType]).toEqual([name, status, scimType]);
    }
    const grp = await scim<Json>('POST', '/scim/v2/Groups', { displayName: 'Errors' });
    const unknownMember = await scim<ScimErr>(
      'PATCH',
      `/scim/v2/Groups/${grp.body.id}`,
      patchOp({ op: 'add', path: 'members', value: [{ value: 'usr_nobody' }] }),
    );
    expect([unknownMember.status, unknownMember.body.scimType]).toEqual([400, 'invalidValue']);
    const noName = await scim<ScimErr>('POST', '/scim/v2/Groups', { members: [] });
    expect([noName.status, noName.body.scimType]).toEqual([400, 'invalidValue']);
  });

  test('application/json is accepted as well as application/scim+json', async () => {
    const r = await scim<Json>(
      'POST',
      '/scim/v2/Users',
      { userName: 'plainjson@scimco.test' },
      { type: 'application/json' },
    );
    expect(r.status).toBe(201);
    expect(r.body.userName).toBe('plainjson@scimco.test');
  });

  test('the last active owner cannot be deprovisioned', async () => {
    const list = await scim<ScimList>(
      'GET',
      `/scim/v2/Users?filter=${encodeURIComponent(`userName eq "${env.owner.email}"`)}`,
    );
    const ownerId = list.body.Resources[0]!.id as string;
    // Even where an owner lets SCIM manage owners, the last one stays.
    const grant = await owner.json('PATCH', '/api/v1/settings/identity', { scim_manages_owners: true });
    expect(grant.status).toBe(200);
    try {
      const off = await scim<ScimErr>(
        'PATCH',
        `/scim/v2/Users/${ownerId}`,
        patchOp({ op: 'replace', path: 'active', value: false }),
      );
      expect([off.status, off.body.status]).toEqual([409, '409']);
      const del = await scim<ScimErr>('DELETE', `/scim/v2/Users/${ownerId}`);
      expect([del.status, del.body.detail]).toEqual([409, 'the last active owner cannot be deleted']);
      expect((await owner.json('GET', '/api/v1/me')).status).toBe(200);
    } finally {
      await owner.json('PATCH', '/api/v1/settings/identity', { scim_manages_owners: false });
    }
  });
});

describe('listing', () => {
  test('startIndex and count page through users, oldest first', async () => {
    const all = await scim<ScimList>('GET', '/scim/v2/Users?count=200');
    const total = all.body.totalResults;
    expect(total).toBeGreaterThan(3);
    expect(all.body.itemsPerPage).toBe(total);
    const page = await scim<ScimList>('GET', '/scim/v2/Users?startIndex=2&count=2');
    expect(page.body.totalResults).toBe(total);
    expect(page.body.startIndex).toBe(2);
    expect(page.body.itemsPerPage).toBe(2);
    expect(page.body.Resources.map((r) => r.id)).toEqual(all.body.Resources.slice(1, 3).map((r) => r.id));
    const zero = await scim<ScimList>('GET', '/scim/v2/Users?count=0');
    expect([zero.body.totalResults, zero.body.itemsPerPage, zero.body.Resources]).toEqual([total, 0, []]);
    const capped = await scim<ScimList>('GET', '/scim/v2/Users?count=5000&startIndex=0');
    expect([capped.body.startIndex, capped.body.itemsPerPage]).toEqual([1, total]);
    const filtered = await scim<ScimList>(
      'GET',
      `/scim/v2/Users?filter=${encodeURIComponent('userName sw "dup"')}&startIndex=1&count=1`,
    );
    expect(filtered.body.totalResults).toBe(1);
    expect(filtered.body.Resources[0]!.userName).toBe('dup@scimco.test');
    const bad = await scim<ScimErr>('GET', '/scim/v2/Users?count=ten');
    expect([bad.status, bad.body.scimType]).toEqual([400, 'invalidValue']);
  });
});

describe('the SCIM routes in the API description', () => {
  type Op = {
    'x-permission'?: string;
    security?: unknown;
    parameters?: { name: string; in: string }[];
    requestBody?: { content: Record<string, { schema: { required?: string[] } }> };
  };
  let paths: Record<string, Record<string, Op>>;
  beforeAll(async () => {
    const r = await client().json<{ paths: Record<string, Record<string, Op>> }>(
      'GET',
      '/api/v1/openapi.json',
    );
    expect(r.status).toBe(200);
    paths = r.body.paths;
  });

  test('each route carries the permission it declares beside itself', () => {
    const scimOps = Object.entries(paths).filter(
      ([p]) => p.startsWith('/scim/v2/') || p.startsWith('/api/v1/scim/'),
    );
    // 3 token routes, 17 under /scim/v2, on 11 paths.
    expect(scimOps.flatMap(([, item]) => Object.keys(item)).length).toBe(20);
    for (const [path, item] of scimOps) {
      for (const op of Object.values(item)) {
        expect(op['x-permission']).toBe(path.startsWith('/scim/') ? 'scim:provision' : 'scim:admin');
      }
    }
    expect(paths['/scim/v2/Users']!.post!.security).toEqual([{ scimToken: [] }]);
  });

  test('bodies are documented as application/scim+json and application/json', () => {
    const user = paths['/scim/v2/Users']!.post!.requestBody!.content;
    expect(Object.keys(user).sort()).toEqual(['application/json', 'application/scim+json']);
    expect(user['application/scim+json']!.schema.required).toEqual(['userName']);
    expect(
      paths['/scim/v2/Groups/{id}']!.patch!.requestBody!.content['application/scim+json']!.schema.required,
    ).toEqual(['Operations']);
    expect(Object.keys(paths['/api/v1/scim/tokens']!.post!.requestBody!.content)).toEqual([
      'application/json',
    ]);
  });

  test('queries are documented beside the path parameters', () => {
    const names = (op: Op) => (op.parameters ?? []).map((p) => `${p.in}:${p.name}`);
    expect(names(paths['/scim/v2/Users']!.get!)).toEqual([
      'query:filter',
      'query:startIndex',
      'query:count',
      'query:attributes',
      'query:excludedAttributes',
    ]);
    expect(names(paths['/scim/v2/Groups/{id}']!.get!)).toEqual([
      'path:id',
      'query:attributes',
      'query:excludedAttributes',
    ]);
    expect(names(paths['/scim/v2/Users/{id}']!.delete!)).toEqual(['path:id']);
  });
});

describe('filter language (unit)', () => {
  const user = {
    userName: 'ada@example.test',
    externalId: 'Ext-1',
    active: true,
    name: { givenName: 'Ada', familyName: 'Lovelace' },
    emails: [
      { value: 'ada@example.test', type: 'work', primary: true },
      { value: 'ada@home.test', type: 'home' },
    ],
    meta: { lastModified: '2026-03-01T00:00:00.000Z' },
  };
  const cases: [string, boolean][] = [
    ['userName eq "ADA@example.test"', true],
    ['USERNAME Eq "ada@example.test"', true],
    ['urn:ietf:params:scim:schemas:core:2.0:User:userName eq "ada@example.test"', true],
    ['externalId eq "ext-1"', false],
    ['externalId eq "Ext-1"', true],
    ['name.familyName co "love"', true],
    ['name.givenName sw "A" and name.familyName ew "ace"', true],
    ['emails[type eq "home"].value eq "ada@home.test"', true],
    ['emails[type eq "work" and primary eq true]', true],
    ['emails[type eq "other"]', false],
    ['emails eq "ada@home.test"', true],
    ['active eq true and not (userName eq "x@y.test")', true],
    ['active eq false or userName pr', true],
    ['title pr', false],
    ['userName ne "ada@example.test"', false],
    ['meta.lastModified gt "2026-01-01T00:00:00Z"', true],
    ['meta.lastModified lt "2026-01-01T00:00:00Z"', false],
    ['userName eq "x" or userName eq "y" and active eq true', false],
    ['(userName eq "x" or userName eq "ada@example.test") and active eq true', true],
  ];
  for (const [f, want] of cases) {
    test(`${f} → ${want}`, () => {
      expect(matches(parseFilter(f), user)).toBe(want);
    });
  }

  test('and binds tighter than or', () => {
    expect(parseFilter('a eq "1" or b eq "2" and c eq "3"')).toEqual({
      kind: 'or',
      left: { kind: 'cmp', path: { attr: 'a' }, op: 'eq', value: '1' },
      right: {
        kind: 'and',
        left: { kind: 'cmp', path: { attr: 'b' }, op: 'eq', value: '2' },
        right: { kind: 'cmp', path: { attr: 'c' }, op: 'eq', value: '3' },
      },
    });
  });

  test('paths: sub-attributes, value filters, URN prefixes', () => {
    expect(parsePath('name.givenName')).toEqual({ attr: 'name', sub: 'givenname' });
    expect(parsePath('members[value eq "usr_1"]')).toEqual({
      attr: 'members',
      where: { kind: 'cmp', path: { attr: 'value' }, op: 'eq', value: 'usr_1' },
    });
    expect(parsePath('emails[type eq "work"].value')).toMatchObject({ attr: 'emails', sub: 'value' });
    expect(parsePath('urn:ietf:params:scim:schemas:core:2.0:User:active')).toEqual({ attr: 'active' });
    expect(parsePath('urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department')).toEqual({
      attr: 'urn:ietf:params:scim:schemas:extension:enterprise:2.0:user:department',
    });
    expect(() => parsePath('name.givenName extra')).toThrow('invalid path');
    expect(() => parseFilter('x'.repeat(3000))).toThrow('longer than 2000');
    expect(() => parseFilter(`${'('.repeat(40)}a eq "1"${')'.repeat(40)}`)).toThrow('nests too deeply');
  });
});
