import type { Database } from 'bun:sqlite';
import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { X509Certificate } from 'node:crypto';
import net from 'node:net';
import type { ServiceProviderInstance } from 'samlify';
import { hostFetch, operatorApi } from '../../../../tests/helpers.ts';
import {
  makeKeyPair,
  type ParsedRequest,
  TestIdp,
  type TestKeyPair,
  tamper,
} from '../../../../tests/peers/saml-idp.ts';
import { PlatformClient, serverWithPlatform } from '../../../../tests/platform-client.ts';
import { SSO_STARTS_PER_MIN, sealPending } from '../sso.ts';
import { makeSpKeyPair, safeReturnPath, samlCookieName, startSamlLogin } from './saml.ts';

const IDP_ENTITY = 'https://idp.example.test/saml/metadata';
const IDP_SSO = 'https://idp.example.test/saml/sso';

let env: Awaited<ReturnType<typeof serverWithPlatform>>;
let owner: PlatformClient;
let keys: { idp: TestKeyPair; other: TestKeyPair; attacker: TestKeyPair };
let idp: TestIdp;
let sp: ServiceProviderInstance;
let metadata: string;

/** The settings every test starts from (tests that change them put these back). */
const baseSettings = () => ({
  idp_entity_id: IDP_ENTITY,
  idp_sso_url: IDP_SSO,
  idp_cert: keys.idp.cert,
  email_attribute: 'email',
  name_attribute: 'displayName',
  role_attribute: 'groups',
  role_map: { 'soulfra-admins': 'admin', 'soulfra-creators': 'creator' },
  default_role: 'member',
});

async function configure(c: PlatformClient, body: Record<string, unknown>) {
  const r = await c.json<{ saml: Record<string, unknown>; error?: { code: string } }>(
    'PUT',
    '/api/v1/sso/saml',
    body,
  );
  if (r.status !== 200) throw new Error(`configure: ${r.status} ${JSON.stringify(r.body)}`);
  return r.body.saml;
}

/**
 * The `sf_saml_<hash>` cookies of the browser the tests play (one per login, each carrying its
 * sealed request; all sent to the ACS). The newest 20 are kept, as a browser lets old ones expire.
 */
const samlJar = new Map<string, string>();
let browserCookie: string | null = null;
function keepSamlCookies(res: Response): void {
  for (const sc of res.headers.getSetCookie()) {
    const pair = sc.split(';')[0]!;
    const i = pair.indexOf('=');
    if (!pair.startsWith('sf_saml_')) continue;
    samlJar.delete(pair.slice(0, i));
    if (i < pair.length - 1) samlJar.set(pair.slice(0, i), pair.slice(i + 1));
  }
  while (samlJar.size > 20) samlJar.delete(samlJar.keys().next().value!);
  browserCookie = samlJar.size ? [...samlJar].map(([k, v]) => `${k}=${v}`).join('; ') : null;
}

/** SP-initiated: GET /sso/saml/login on `host`, then the IdP reads the AuthnRequest. */
async function startLogin(
  returnTo = '/dashboard',
  on: { host: string; sp: ServiceProviderInstance; idp?: TestIdp } = { host: env.host, sp },
): Promise<ParsedRequest & { location: string }> {
  const res = await hostFetch(
    env.s.base,
    on.host,
    `/sso/saml/login?return_to=${encodeURIComponent(returnTo)}`,
    browserCookie ? { headers: { cookie: browserCookie } } : {},
  );
  expect(res.status).toBe(302);
  keepSamlCookies(res);
  const location = res.headers.get('location')!;
  expect(location.startsWith(`${IDP_SSO}?SAMLRequest=`)).toBe(true);
  return { ...(await (on.idp ?? idp).parseRedirect(on.sp, location)), location };
}

/** POSTs the form the IdP's page would auto-submit to the ACS of `host`, from the tests' browser. */
function postAcs(
  samlResponse: string,
  relayState: string | null = '/dashboard',
  host = env.host,
  cookie: string | null = browserCookie,
) {
  const form = new URLSearchParams({ SAMLResponse: samlResponse });
  if (relayState !== null) form.set('RelayState', relayState);
  return hostFetch(env.s.base, host, '/sso/saml/acs', {
    method: 'POST',
    headers: {
      'content-type': 'application/x-www-form-urlencoded',
      accept: 'application/json',
      ...(cookie ? { cookie } : {}),
    },
    body: form.toString(),
  });
}

const sessionSet = (res: Response) =>
  res.headers.getSetCookie().some((c) => c.startsWith('sf_session=') && !/Max-Age=0/.test(c));

async function auditAfter(c: PlatformClient, after: number) {
  const r = await c.json<{
    entries: {
      seq: number;
      action: string;
      actor: string;
      target: string;
      details: Record<string, unknown>;
    }[];
  }>('GET', `/api/v1/audit?after=${after}&limit=500`);
  return r.body.entries;
}
async function lastSeq(c: PlatformClient): Promise<number> {
  let after = 0;
  for (;;) {
    const e = await auditAfter(c, after);
    if (e.length < 500) return e.at(-1)?.seq ?? after;
    after = e.at(-1)!.seq;
  }
}

/** A client signed in by the session cookie of an ACS answer. */
function clientFrom(res: Response, host = env.host): PlatformClient {
  const c = new PlatformClient(env.s.base, host);
  for (const sc of res.headers.getSetCookie()) {
    const [pair] = sc.split(';');
    const i = pair!.indexOf('=');
    c.jar.set(pair!.slice(0, i), pair!.slice(i + 1));
  }
  return c;
}

beforeAll(async () => {
  env = await serverWithPlatform('samlco');
  const [a, b, c] = await Promise.all([
    makeKeyPair('idp'),
    makeKeyPair('other-idp'),
    makeKeyPair('attacker'),
  ]);
  keys = { idp: a, other: b, attacker: c };
  idp = new TestIdp({ entityId: IDP_ENTITY, ssoUrl: IDP_SSO, keys: keys.idp });
  owner = new PlatformClient(env.s.base, env.host);
  expect((await owner.signIn(env.owner.email, env.owner.password)).status).toBe(200);
  await configure(owner, baseSettings());
  metadata = await (await hostFetch(env.s.base, env.host, '/sso/saml/metadata')).text();
  sp = idp.serviceProvider(metadata);
});
afterAll(async () => {
  await env.s.cleanup();
});

describe('SP metadata and settings', () => {
  test('the metadata names the entity ID and the ACS of this platform, and wants signed assertions', async () => {
    const res = await hostFetch(env.s.base, env.host, '/sso/saml/metadata');
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('application/samlmetadata+xml; charset=utf-8');
    const xml = await res.text();
    expect(xml).toContain(`entityID="http://samlco.localhost:${env.s.port}/sso/saml/metadata"`);
    expect(xml).toContain(`Location="http://samlco.localhost:${env.s.port}/sso/saml/acs"`);
    expect(xml).toContain('WantAssertionsSigned="true"');
    expect(xml).toContain('AuthnRequestsSigned="false"');
    expect(xml).not.toContain('X509Certificate');
    expect(sp.entityMeta.getEntityID()).toBe(`http://samlco.localhost:${env.s.port}/sso/saml/metadata`);
  });

  test('GET shows the settings, the SP entity ID and ACS URL, and certificate fingerprints', async () => {
    const r = await owner.json<{
      saml: Record<string, unknown> & { idp_cert: string[]; idp_cert_info: { sha256: string }[] };
    }>('GET', '/api/v1/sso/saml');
    expect(r.status).toBe(200);
    expect(r.body.saml.sp_entity_id).toBe(`http://samlco.localhost:${env.s.port}/sso/saml/metadata`);
    expect(r.body.saml.acs_url).toBe(`http://samlco.localhost:${env.s.port}/sso/saml/acs`);
    expect(r.body.saml.idp_entity_id).toBe(IDP_ENTITY);
    expect(r.body.saml.allow_idp_initiated).toBe(false);
    expect(r.body.saml.jit).toBe(true);
    expect(r.body.saml.idp_cert).toHaveLength(1);
    expect(r.body.saml.idp_cert_info[0]!.sha256).toBe(new X509Certificate(keys.idp.cert).fingerprint256);
    expect(r.body.saml.sp_cert).toBeNull();
  });

  test('a member may not read or change the settings', async () => {
    const created = await owner.json('POST', '/api/v1/users', {
      email: 'plain@samlco.test',
      password: 'a-long-password-1',
    });
    expect(created.status).toBe(201);
    const m = new PlatformClient(env.s.base, env.host);
    await m.signIn('plain@samlco.test', 'a-long-password-1');
    expect((await m.json('GET', '/api/v1/sso/saml')).status).toBe(403);
    expect((await m.json('PUT', '/api/v1/sso/saml', baseSettings())).status).toBe(403);
  });

  const der = () => keys.idp.cert.replace(/-----[A-Z ]+-----/g, '').replace(/\s+/g, '');
  const invalid: { name: string; body: () => unknown; paths: string[]; reason?: RegExp }[] = [
    { name: 'an empty object', body: () => ({}), paths: ['/idp_entity_id', '/idp_sso_url', '/idp_cert'] },
    { name: 'an array', body: () => [], paths: [''] },
    {
      name: 'a certificate that does not parse',
      body: () => ({
        ...baseSettings(),
        idp_cert: '-----BEGIN CERTIFICATE-----\nTUlJQm9yaW5n\n-----END CERTIFICATE-----',
      }),
      paths: ['/idp_cert'],
      reason: /does not parse/,
    },
    {
      name: 'a private key pasted as the certificate',
      body: () => ({ ...baseSettings(), idp_cert: keys.attacker.key }),
      paths: ['/idp_cert'],
      reason: /PRIVATE KEY/,
    },
    {
      name: 'a list whose second certificate is junk',
      body: () => ({ ...baseSettings(), idp_cert: [keys.idp.cert, 'not a cert at all!'] }),
      paths: ['/idp_cert/1'],
    },
    {
      name: 'base64 that is not a certificate',
      body: () => ({ ...baseSettings(), idp_cert: Buffer.from('hello').toString('base64') }),
      paths: ['/idp_cert'],
      reason: /does not parse/,
    },
    {
      name: 'an http SSO URL off this machine',
      body: () => ({ ...baseSettings(), idp_sso_url: 'http://idp.example.test/sso' }),
      paths: ['/idp_sso_url'],
    },
    {
      name: 'a relative SSO URL',
      body: () => ({ ...baseSettings(), idp_sso_url: '/sso' }),
      paths: ['/idp_sso_url'],
    },
    {
      name: 'an unknown field',
      body: () => ({ ...baseSettings(), idp_metadata_url: 'https://x' }),
      paths: ['/idp_metadata_url'],
    },
    {
      name: 'a role map to an unknown role',
      body: () => ({ ...baseSettings(), role_map: { 'a/b': 'superuser' } }),
      paths: ['/role_map/a~1b'],
    },
    {
      name: 'a role map without a role attribute',
      body: () => ({ ...baseSettings(), role_attribute: undefined }),
      paths: ['/role_attribute'],
    },
    {
      name: 'owner as the default role',
      body: () => ({ ...baseSettings(), default_role: 'owner' }),
      paths: ['/default_role'],
    },
    {
      name: 'flags that are not booleans',
      body: () => ({
        ...baseSettings(),
        jit: 'yes',
        sign_requests: 1,
        allow_idp_initiated: 'true',
        enabled: null,
      }),
      paths: ['/sign_requests', '/allow_idp_initiated', '/jit', '/enabled'],
    },
    {
      name: 'an empty entity ID',
      body: () => ({ ...baseSettings(), idp_entity_id: '  ' }),
      paths: ['/idp_entity_id'],
    },
    {
      name: 'an empty attribute name',
      body: () => ({ ...baseSettings(), email_attribute: '' }),
      paths: ['/email_attribute'],
    },
  ];
  for (const c of invalid) {
    test(`PUT refuses ${c.name} (400, JSON Pointer paths)`, async () => {
      const r = await owner.json<{ error: { code: string; details: { path: string; reason: string }[] } }>(
        'PUT',
        '/api/v1/sso/saml',
        c.body(),
      );
      expect(r.status).toBe(400);
      expect(r.body.error.code).toBe('sso.saml_invalid');
      expect(r.body.error.details.map((d) => d.path).sort()).toEqual([...c.paths].sort());
      if (c.reason) expect(r.body.error.details[0]!.reason).toMatch(c.reason);
    });
  }

  test('PUT takes base64 DER and PEM bundles (rollover: two certs); a refused PUT changed nothing', async () => {
    const before = await owner.json<{ saml: { idp_cert: string[] } }>('GET', '/api/v1/sso/saml');
    expect(before.body.saml.idp_cert).toEqual([keys.idp.cert.replace(/\r/g, '')]);
    const s1 = await configure(owner, { ...baseSettings(), idp_cert: der() });
    expect(s1.idp_cert).toEqual([keys.idp.cert]);
    const s2 = await configure(owner, {
      ...baseSettings(),
      idp_cert: `${keys.idp.cert}\n${keys.other.cert}`,
    });
    expect((s2.idp_cert as string[]).length).toBe(2);
    await configure(owner, baseSettings());
  });

  test('configuring is audited as sso.saml_configured, with certificates by fingerprint', async () => {
    const seq = await lastSeq(owner);
    await configure(owner, baseSettings());
    const e = (await auditAfter(owner, seq)).find((x) => x.action === 'sso.saml_configured')!;
    expect(e.target).toBe('sso:saml');
    expect(e.details.idp_cert_sha256).toEqual([new X509Certificate(keys.idp.cert).fingerprint256]);
    expect(JSON.stringify(e.details)).not.toContain('BEGIN');
  });
});

describe('sign-in round trip', () => {
  test('login → AuthnRequest → signed response → ACS → cookie → /me shows the JIT user with the mapped role', async () => {
    const seq = await lastSeq(owner);
    const req = await startLogin('/dashboard?tab=2');
    expect(req.relayState).toBe('/dashboard?tab=2');
    expect(req.issuer).toBe(`http://samlco.localhost:${env.s.port}/sso/saml/metadata`);
    expect(req.acsUrl).toBe(`http://samlco.localhost:${env.s.port}/sso/saml/acs`);
    const location = new URL(req.location);
    expect(location.searchParams.get('Signature')).toBeNull();

    const response = await idp.loginResponse(sp, {
      request: req,
      nameId: 'ada@samlco.test',
      attributes: {
        email: 'Ada@SamlCo.test',
        displayName: 'Ada Lovelace',
        groups: ['staff', 'soulfra-admins'],
      },
    });
    const res = await postAcs(response, req.relayState);
    expect(res.status).toBe(302);
    expect(res.headers.get('location')).toBe('/dashboard?tab=2');
    const cookie = res.headers.getSetCookie().find((c) => c.startsWith('sf_session='))!;
    expect(cookie).toMatch(/^sf_session=[A-Za-z0-9_-]{43}; Path=\/; HttpOnly; SameSite=Lax; Max-Age=\d+$/);

    const me = await clientFrom(res).json<{
      user: { email: string; name: string; role: string };
      role: string;
    }>('GET', '/api/v1/me');
    expect(me.status).toBe(200);
    expect(me.body.user.email).toBe('ada@samlco.test');
    expect(me.body.user.name).toBe('Ada Lovelace');
    expect(me.body.role).toBe('admin');

    const entries = await auditAfter(owner, seq);
    expect(entries.find((e) => e.action === 'user.created')!.actor).toBe('sso:saml');
    const signedIn = entries.find((e) => e.action === 'user.signed_in')!;
    expect(signedIn.details.via).toBe('saml');
    expect(entries.some((e) => e.action === 'user.sign_in_failed')).toBe(false);
  });

  test('the next sign-in of the same subject finds the linked user and syncs the role', async () => {
    const req = await startLogin('/');
    const res = await postAcs(
      await idp.loginResponse(sp, {
        request: req,
        nameId: 'ada@samlco.test',
        attributes: { email: 'ada@samlco.test', groups: ['soulfra-creators'] },
      }),
      '/',
    );
    expect(res.status).toBe(302);
    const me = await clientFrom(res).json<{ user: { email: string; id: string }; role: string }>(
      'GET',
      '/api/v1/me',
    );
    expect(me.body.role).toBe('creator');
    const users = await owner.json<{ users: { email: string }[] }>('GET', '/api/v1/users');
    expect(users.body.users.filter((u) => u.email === 'ada@samlco.test')).toHaveLength(1);
  });

  test('no matching group: the default role; an unsafe return path becomes /', async () => {
    const req = await startLogin('//evil.example/steal');
    expect(req.relayState).toBe('/');
    const res = await postAcs(
      await idp.loginResponse(sp, {
        request: req,
        nameId: 'bob@samlco.test',
        attributes: { email: 'bob@samlco.test', groups: 'visitors' },
      }),
      'https://evil.example/',
    );
    expect(res.status).toBe(302);
    expect(res.headers.get('location')).toBe('/');
    const me = await clientFrom(res).json<{ role: string }>('GET', '/api/v1/me');
    expect(me.body.role).toBe('member');
  });

  test('return paths: same-origin relative only', () => {
    expect(safeReturnPath('/a/b?c=d#e')).toBe('/a/b?c=d#e');
    expect(safeReturnPath('//evil.example')).toBe('/');
    expect(safeReturnPath('/\\evil.example')).toBe('/');
    expect(safeReturnPath('https://evil.example/')).toBe('/');
    expect(safeReturnPath('/ok\r\nSet-Cookie: x=y')).toBe('/');
    expect(safeReturnPath(null)).toBe('/');
  });

  test('with JIT off, an unknown user is refused and an existing one signs in', async () => {
    await configure(owner, { ...baseSettings(), jit: false });
    try {
      const seq = await lastSeq(owner);
      const req = await startLogin('/');
      const refused = await postAcs(
        await idp.loginResponse(sp, {
          request: req,
          nameId: 'new@samlco.test',
          attributes: { email: 'new@samlco.test' },
        }),
      );
      expect(refused.status).toBe(403);
      expect(((await refused.json()) as { error: { code: string } }).error.code).toBe(
        'sso.user_not_provisioned',
      );
      expect(sessionSet(refused)).toBe(false);
      const f = (await auditAfter(owner, seq)).find((e) => e.action === 'user.sign_in_failed')!;
      expect(f.details.reason).toBe('user_not_provisioned');
      expect(f.target).toBe('email:new@samlco.test');

      // An invited account (added without a password) links on its first SSO sign-in.
      const invited = await owner.json('POST', '/api/v1/users', { email: 'invited@samlco.test' });
      expect(invited.status).toBe(201);
      const req2 = await startLogin('/');
      const ok = await postAcs(
        await idp.loginResponse(sp, {
          request: req2,
          nameId: 'invited@samlco.test',
          attributes: { email: 'invited@samlco.test' },
        }),
      );
      expect(ok.status).toBe(302);
    } finally {
      await configure(owner, baseSettings());
    }
  });

  test('signed AuthnRequests: a per-platform SP key, its cert in the metadata, a signature the IdP verifies', async () => {
    const s = await configure(owner, { ...baseSettings(), sign_requests: true });
    const cert = s.sp_cert as string;
    expect(cert).toStartWith('-----BEGIN CERTIFICATE-----');
    expect(JSON.stringify(s)).not.toContain('PRIVATE KEY');
    const x = new X509Certificate(cert);
    expect(x.verify(x.publicKey)).toBe(true);
    expect(x.publicKey.asymmetricKeyType).toBe('rsa');
    try {
      const md = await (await hostFetch(env.s.base, env.host, '/sso/saml/metadata')).text();
      expect(md).toContain('AuthnRequestsSigned="true"');
      expect(md).toContain(
        cert
          .replace(/-----[A-Z ]+-----/g, '')
          .replace(/\s+/g, '')
          .slice(0, 64),
      );
      const strictIdp = new TestIdp({
        entityId: IDP_ENTITY,
        ssoUrl: IDP_SSO,
        keys: keys.idp,
        wantAuthnRequestsSigned: true,
      });
      const signedSp = strictIdp.serviceProvider(md);
      const req = await startLogin('/signed', { host: env.host, sp: signedSp, idp: strictIdp });
      const url = new URL(req.location);
      expect(url.searchParams.get('SigAlg')).toBe('http://www.w3.org/2001/04/xmldsig-more#rsa-sha256');
      expect(url.searchParams.get('Signature')!.length).toBeGreaterThan(100);
      // A RelayState changed in transit breaks the request signature.
      const forged = req.location.replace('RelayState=%2Fsigned', 'RelayState=%2Fforged');
      await expect(strictIdp.parseRedirect(signedSp, forged)).rejects.toThrow(
        'ERR_FAILED_MESSAGE_SIGNATURE_VERIFICATION',
      );
      const res = await postAcs(
        await strictIdp.loginResponse(signedSp, {
          request: req,
          nameId: 'ada@samlco.test',
          attributes: { email: 'ada@samlco.test' },
        }),
        '/signed',
      );
      expect(res.status).toBe(302);
      // The key survives a later save: the IdP's copy of the SP cert stays good.
      const again = await configure(owner, { ...baseSettings(), sign_requests: true });
      expect(again.sp_cert).toBe(cert);
    } finally {
      await configure(owner, baseSettings());
    }
  });

  test('the SP certificate builder makes a certificate openssl reads', async () => {
    const pair = makeSpKeyPair('acme SAML SP', new Date('2026-01-01T00:00:00Z'));
    const x = new X509Certificate(pair.cert);
    expect(x.subject).toBe('CN=acme SAML SP');
    expect(x.issuer).toBe('CN=acme SAML SP');
    expect(new Date(x.validTo).toISOString()).toBe('2036-01-01T00:00:00.000Z');
    expect(x.checkPrivateKey((await import('node:crypto')).createPrivateKey(pair.privateKey))).toBe(true);
    const proc = Bun.spawn(['openssl', 'x509', '-noout', '-subject'], {
      stdin: new TextEncoder().encode(pair.cert),
      stdout: 'pipe',
    });
    expect((await new Response(proc.stdout).text()).trim()).toBe('subject=CN = acme SAML SP');
    expect(await proc.exited).toBe(0);
  });
});

describe('the SP certificate (built on @peculiar/asn1-x509)', () => {
  test('subject, issuer, validity, key type, serial and signature as node:crypto reads them', async () => {
    const { createPrivateKey, createPublicKey } = await import('node:crypto');
    const now = new Date('2026-03-04T05:06:07.890Z');
    const pair = makeSpKeyPair('acme SAML SP', now);
    const x = new X509Certificate(pair.cert);
    expect(x.subject).toBe('CN=acme SAML SP');
    expect(x.issuer).toBe('CN=acme SAML SP');
    expect(new Date(x.validFrom).toISOString()).toBe('2026-03-04T05:05:07.000Z');
    expect(new Date(x.validTo).toISOString()).toBe('2036-03-04T05:06:07.000Z');
    expect(x.ca).toBe(false);
    expect(x.publicKey.asymmetricKeyType).toBe('rsa');
    expect(x.publicKey.asymmetricKeyDetails?.modulusLength).toBe(2048);
    // The certificate's key is the private key's public half, and it signed the certificate.
    const pub = createPublicKey(createPrivateKey(pair.privateKey));
    expect(x.publicKey.export({ type: 'spki', format: 'der' })).toEqual(
      pub.export({ type: 'spki', format: 'der' }),
    );
    expect(x.checkPrivateKey(createPrivateKey(pair.privateKey))).toBe(true);
    expect(x.verify(x.publicKey)).toBe(true);
    expect(x.checkIssued(x)).toBe(true);
    // A positive 128-bit serial, fresh for each certificate.
    expect(x.serialNumber).toMatch(/^[0-7][0-9A-F]{31}$/);
    expect(new X509Certificate(makeSpKeyPair('acme SAML SP', now).cert).serialNumber).not.toBe(
      x.serialNumber,
    );
    // A long name is cut to 64 characters (the X.520 upper bound of a common name).
    expect(new X509Certificate(makeSpKeyPair('n'.repeat(100), now).cert).subject).toBe(
      `CN=${'n'.repeat(64)}`,
    );
  });

  test('a validity ending after 2049 is written as GeneralizedTime and reads back', () => {
    const x = new X509Certificate(makeSpKeyPair('late SP', new Date('2045-06-01T00:00:00Z')).cert);
    expect(new Date(x.validTo).toISOString()).toBe('2055-06-01T00:00:00.000Z');
    // GeneralizedTime (tag 0x18) with its four-digit year in the DER.
    expect(x.raw.includes(Buffer.from([0x18, 0x0f, ...Buffer.from('20550601000000Z')]))).toBe(true);
  });
});

/** A correct, signed answer to `req` for `nameId` (its email attribute the same). */
const good = (req: ParsedRequest, nameId = 'mallory@samlco.test') =>
  idp.loginResponse(sp, { request: req, nameId, attributes: { email: nameId } });

describe('attacks: each is refused (4xx, no session; audited with its reason when tied to a sign-in of ours)', () => {
  const later = (ms: number) => new Date(Date.now() + ms);
  const cases: {
    name: string;
    build: (req: ParsedRequest) => Promise<string>;
    reason: string;
    status?: number;
    /** What node-saml said (kept in the audit entry as `error`). */
    error?: RegExp;
    /**
     * false: anonymous garbage (it answers no request of ours and carries no valid signature):
     * refused and logged, but no audit entry, so anonymous posts cannot grow the audit chain.
     */
    audited?: false;
  }[] = [
    {
      name: 'unsigned response and assertion',
      build: async (req) => tamper.stripSignatures(await good(req)),
      reason: 'invalid_signature',
      error: /Invalid document signature/,
    },
    {
      name: 'assertion signed, response unsigned (a genuine IdP that signs only the assertion)',
      build: (req) =>
        idp.loginResponse(idp.serviceProvider(metadata, { response: false }), {
          request: req,
          nameId: 'x@samlco.test',
        }),
      reason: 'invalid_signature',
      error: /Invalid document signature/,
    },
    {
      name: 'response signed, assertion unsigned (a genuine IdP that signs only the message)',
      build: (req) =>
        idp.loginResponse(idp.serviceProvider(metadata, { assertion: false }), {
          request: req,
          nameId: 'x@samlco.test',
        }),
      reason: 'invalid_signature',
      error: /^Invalid signature$/,
    },
    {
      name: 'signed by another key (KeyInfo still names the configured cert)',
      build: (req) =>
        new TestIdp({
          entityId: IDP_ENTITY,
          ssoUrl: IDP_SSO,
          keys: keys.other,
          keyInfoCert: keys.idp.cert,
        }).loginResponse(sp, {
          request: req,
          nameId: 'admin@samlco.test',
        }),
      reason: 'invalid_signature',
      error: /Invalid document signature/,
    },
    {
      name: "swapped KeyInfo: signed by the attacker's key, with the attacker's cert embedded",
      build: (req) =>
        new TestIdp({ entityId: IDP_ENTITY, ssoUrl: IDP_SSO, keys: keys.attacker }).loginResponse(sp, {
          request: req,
          nameId: 'admin@samlco.test',
        }),
      reason: 'invalid_signature',
      error: /Invalid document signature/,
    },
    {
      name: 'signature wrapping: the genuine signed Response moved inside an evil one',
      build: async (req) => tamper.wrapMovedResponse(await good(req), 'admin@samlco.test'),
      reason: 'invalid_signature',
      error: /Referenced node does not refer to it's parent element/,
    },
    {
      name: 'signature wrapping: the genuine signed assertion moved into an evil assertion',
      build: async (req) => tamper.wrapMovedAssertion(await good(req), 'admin@samlco.test'),
      reason: 'invalid_signature',
      error: /Invalid document signature/,
    },
    {
      name: 'signature wrapping: an evil unsigned assertion first, the genuine signed one after',
      build: async (req) => tamper.duplicateAssertion(await good(req), 'admin@samlco.test'),
      reason: 'invalid_signature',
      error: /Invalid document signature/,
    },
    {
      name: 'expired (NotOnOrAfter in the past)',
      build: (req) =>
        idp.loginResponse(sp, {
          request: req,
          nameId: 'x@samlco.test',
          notBefore: later(-20 * 60_000),
          notOnOrAfter: later(-10 * 60_000),
        }),
      reason: 'expired',
      error: /No valid subject confirmation/,
    },
    {
      name: 'expired conditions only (the subject confirmation still open)',
      build: (req) =>
        idp.loginResponse(sp, {
          request: req,
          nameId: 'x@samlco.test',
          notBefore: later(-20 * 60_000),
          notOnOrAfter: later(-2 * 60_000),
          subjectNotOnOrAfter: later(5 * 60_000),
        }),
      reason: 'expired',
      error: /SAML assertion expired/,
    },
    {
      name: 'not yet valid (NotBefore in the future, beyond the 60 s skew)',
      build: (req) =>
        idp.loginResponse(sp, {
          request: req,
          nameId: 'x@samlco.test',
          notBefore: later(10 * 60_000),
          notOnOrAfter: later(20 * 60_000),
        }),
      reason: 'not_yet_valid',
      error: /not yet valid/,
    },
    {
      name: 'wrong Audience',
      build: (req) =>
        idp.loginResponse(sp, {
          request: req,
          nameId: 'x@samlco.test',
          audience: 'https://other-sp.example/metadata',
        }),
      reason: 'audience_mismatch',
      error: /audience mismatch/,
    },
    {
      name: 'wrong Recipient',
      build: (req) =>
        idp.loginResponse(sp, {
          request: req,
          nameId: 'x@samlco.test',
          recipient: 'https://other-sp.example/acs',
        }),
      reason: 'recipient_mismatch',
      error: /other-sp\.example\/acs/,
    },
    {
      name: 'wrong Destination',
      build: (req) =>
        idp.loginResponse(sp, {
          request: req,
          nameId: 'x@samlco.test',
          destination: 'https://other-sp.example/acs',
        }),
      reason: 'destination_mismatch',
      error: /other-sp\.example\/acs/,
    },
    {
      name: 'InResponseTo mismatch (an unknown request id)',
      build: (req) =>
        idp.loginResponse(sp, {
          request: req,
          nameId: 'x@samlco.test',
          inResponseTo: '_not_a_request_of_ours',
        }),
      reason: 'in_response_to',
      audited: false,
    },
    {
      name: 'another issuer, signed with the configured key',
      build: (req) =>
        new TestIdp({ entityId: 'https://rogue.example/idp', ssoUrl: IDP_SSO, keys: keys.idp }).loginResponse(
          sp,
          {
            request: req,
            nameId: 'x@samlco.test',
          },
        ),
      reason: 'issuer_mismatch',
      error: /rogue\.example/,
    },
    {
      name: 'an unsolicited response while IdP-initiated sign-in is off',
      build: () => idp.loginResponse(sp, { request: null, nameId: 'x@samlco.test' }),
      reason: 'unsolicited',
      audited: false,
    },
    {
      name: 'not base64 at all',
      build: async () => '<samlp:Response/>',
      reason: 'malformed',
      status: 400,
      audited: false,
    },
    {
      name: 'base64 of something that is not XML',
      build: async () => Buffer.from('hello, not xml').toString('base64'),
      reason: 'malformed',
      status: 400,
      audited: false,
    },
  ];

  for (const c of cases) {
    test(c.name, async () => {
      const seq = await lastSeq(owner);
      const req = await startLogin('/');
      const res = await postAcs(await c.build(req), '/');
      const body = (await res.json()) as { error: { code: string; message: string } };
      expect(res.status).toBe(c.status ?? 401);
      expect(body.error.code).toBe('sso.saml_failed');
      expect(sessionSet(res)).toBe(false);
      expect(res.headers.get('location')).toBeNull();
      const entries = await auditAfter(owner, seq);
      expect(entries.some((e) => e.action === 'user.signed_in' || e.action === 'user.created')).toBe(false);
      const failed = entries.filter((e) => e.action === 'user.sign_in_failed');
      if (c.audited === false) {
        expect(failed).toHaveLength(0);
        return;
      }
      expect(failed).toHaveLength(1);
      expect(failed[0]!.details.via).toBe('saml');
      expect(failed[0]!.details.reason).toBe(c.reason);
      if (c.error) expect(String(failed[0]!.details.error)).toMatch(c.error);
    });
  }

  test('replay: the same valid response twice (first ok, second refused, request used up)', async () => {
    const req = await startLogin('/');
    const response = await good(req, 'replay@samlco.test');
    const cookie = browserCookie;
    const first = await postAcs(response, '/', env.host, cookie);
    expect(first.status).toBe(302);
    expect(sessionSet(first)).toBe(true);
    // The browser is told to drop the request's cookie; one that keeps it (or a thief) replays.
    expect(first.headers.getSetCookie()).toContainEqual(
      expect.stringMatching(new RegExp(`^${samlCookieName(req.id)}=; Path=/sso/saml; .*Max-Age=0$`)),
    );
    const seq = await lastSeq(owner);
    for (let i = 0; i < 3; i++) {
      const again = await postAcs(response, '/', env.host, cookie);
      expect(again.status).toBe(401);
      expect(sessionSet(again)).toBe(false);
    }
    // Refused every time, audited once (the used request records that its replay was audited).
    const f = (await auditAfter(owner, seq)).filter((e) => e.action === 'user.sign_in_failed');
    expect(f.map((e) => e.details.reason)).toEqual(['replayed']);
  });

  test('replay: a used assertion ID in a new response to a fresh request is refused', async () => {
    const req = await startLogin('/');
    const assertionId = `_replay${crypto.randomUUID().replace(/-/g, '')}`;
    const first = await postAcs(
      await idp.loginResponse(sp, {
        request: req,
        nameId: 'replay@samlco.test',
        attributes: { email: 'replay@samlco.test' },
        assertionId,
      }),
      '/',
    );
    expect(first.status).toBe(302);
    const seq = await lastSeq(owner);
    const req2 = await startLogin('/');
    const second = await postAcs(
      await idp.loginResponse(sp, {
        request: req2,
        nameId: 'replay@samlco.test',
        attributes: { email: 'replay@samlco.test' },
        assertionId,
      }),
      '/',
    );
    expect(second.status).toBe(401);
    expect(sessionSet(second)).toBe(false);
    const f = (await auditAfter(owner, seq)).find((e) => e.action === 'user.sign_in_failed')!;
    expect(f.details.reason).toBe('replayed');
    expect(f.details.error).toBe(assertionId);
  });

  test('an empty form and a JSON body are 400, never 500', async () => {
    const empty = await hostFetch(env.s.base, env.host, '/sso/saml/acs', {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: '',
    });
    expect(empty.status).toBe(400);
    const json = await hostFetch(env.s.base, env.host, '/sso/saml/acs', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ SAMLResponse: 42 }),
    });
    expect(json.status).toBe(400);
    expect(((await json.json()) as { error: { code: string } }).error.code).toBe('sso.saml_failed');
  });
});

describe('comment injection in the NameID', () => {
  test('a comment in the NameID does not truncate the identity: the full NameID is used', async () => {
    // The victim has signed in with SAML before, so their NameID is linked to their account.
    const vreq = await startLogin('/');
    const v = await postAcs(await good(vreq, 'victim@samlco.test'), '/');
    expect(v.status).toBe(302);
    // The attacker owns victim@samlco.test.evil.example at the IdP and splits the signed text.
    const req = await startLogin('/');
    const signed = await good(req, 'victim@samlco.test.evil.example');
    const evil = tamper.commentInText(signed, 'victim@samlco.test.evil.example', 'victim@samlco.test');
    expect(tamper.decode(evil)).toContain('victim@samlco.test<!---->.evil.example');
    const res = await postAcs(evil, '/');
    // node-saml reads the whole text of the signed assertion (xml2js joins the text around the
    // comment), so the sign-in succeeds as the attacker's own, full identity.
    expect(res.status).toBe(302);
    const me = await clientFrom(res).json<{ user: { email: string } }>('GET', '/api/v1/me');
    expect(me.body.user.email).toBe('victim@samlco.test.evil.example');
    expect(me.body.user.email).not.toBe('victim@samlco.test');
  });
});

describe('IdP-initiated sign-in', () => {
  test('refused while off; accepted when on; its replay refused by the assertion ID', async () => {
    const unsolicited = () =>
      idp.loginResponse(sp, {
        request: null,
        nameId: 'grace@samlco.test',
        attributes: { email: 'grace@samlco.test' },
      });
    const off = await postAcs(await unsolicited(), '/home');
    expect(off.status).toBe(401);
    expect(sessionSet(off)).toBe(false);

    await configure(owner, { ...baseSettings(), allow_idp_initiated: true });
    try {
      const response = await unsolicited();
      expect(tamper.decode(response)).not.toContain('InResponseTo');
      const on = await postAcs(response, '/home');
      expect(on.status).toBe(302);
      expect(on.headers.get('location')).toBe('/home');
      const me = await clientFrom(on).json<{ user: { email: string } }>('GET', '/api/v1/me');
      expect(me.body.user.email).toBe('grace@samlco.test');

      const seq = await lastSeq(owner);
      for (let i = 0; i < 5; i++) {
        const again = await postAcs(response, '/home');
        expect(again.status).toBe(401);
        expect(sessionSet(again)).toBe(false);
      }
      // The replayed assertion is audited once, not once per post (saml_assertions_seen flag).
      const f = (await auditAfter(owner, seq)).filter((e) => e.action === 'user.sign_in_failed');
      expect(f.map((e) => e.details.reason)).toEqual(['replayed']);

      // SP-initiated sign-ins keep their InResponseTo check while IdP-initiated is on.
      const req = await startLogin('/');
      const forged = await postAcs(
        await idp.loginResponse(sp, { request: req, nameId: 'grace@samlco.test', inResponseTo: '_unknown' }),
      );
      expect(forged.status).toBe(401);
    } finally {
      await configure(owner, baseSettings());
    }
  });
});

describe('isolation between platforms', () => {
  test("a response for platform A posted to platform B's ACS is refused", async () => {
    const created = await operatorApi(env.s.base, env.operatorToken, 'POST', '/platforms', { slug: 'samlb' });
    expect(created.status).toBe(201);
    const adminB = ((await created.json()) as { admin: { email: string; password: string } }).admin;
    const ownerB = new PlatformClient(env.s.base, 'samlb.localhost');
    expect((await ownerB.signIn(adminB.email, adminB.password)).status).toBe(200);
    // B trusts the very same IdP and even accepts IdP-initiated responses.
    await configure(ownerB, { ...baseSettings(), allow_idp_initiated: true });

    // An answer to A's request: B has no such request.
    const seqB = await lastSeq(ownerB);
    const req = await startLogin('/');
    const forA = await good(req);
    const atB = await postAcs(forA, '/', 'samlb.localhost');
    expect(atB.status).toBe(401);
    expect(sessionSet(atB)).toBe(false);
    // An unsolicited response for A: B is not its audience.
    const unsolicitedForA = await idp.loginResponse(sp, { request: null, nameId: 'x@samlco.test' });
    const atB2 = await postAcs(unsolicitedForA, '/', 'samlb.localhost');
    expect(atB2.status).toBe(401);
    const reasons = (await auditAfter(ownerB, seqB))
      .filter((e) => e.action === 'user.sign_in_failed')
      .map((e) => e.details.reason);
    // Neither answers a request of B's nor passes B's signature checks: refused, not audited.
    expect(reasons).toEqual([]);
    // Nobody was created at B.
    const usersB = await ownerB.json<{ users: { email: string }[] }>('GET', '/api/v1/users');
    expect(usersB.body.users.map((u) => u.email)).toEqual([adminB.email]);
  });
});

describe('the ACS is bound to the browser that started the sign-in (issue 8, points 9 and 12)', () => {
  /** A second browser's own cookie value, from a login of its own. */
  async function otherBrowserValue(): Promise<string> {
    const res = await hostFetch(env.s.base, env.host, '/sso/saml/login?return_to=/');
    const c = res.headers
      .getSetCookie()
      .map((x) => x.split(';')[0]!)
      .find((x) => x.startsWith('sf_saml_'));
    if (!c) throw new Error('no sf_saml_ cookie');
    return c.slice(c.indexOf('=') + 1);
  }
  const withDb = <T>(fn: (db: Database) => T) => env.s.app.platformDbs.use(env.platformId, fn);
  // What the attacker's browser sends for the request `id` (the ACS finds it by the ID's hash).
  const cases: { name: string; cookie: (id: string) => Promise<string | null> }[] = [
    { name: 'no cookie (the response was taken to another browser)', cookie: async () => null },
    {
      name: "another browser's cookie, under this request's name",
      cookie: async (id) => `${samlCookieName(id)}=${await otherBrowserValue()}`,
    },
    { name: 'a forged cookie value', cookie: async (id) => `${samlCookieName(id)}=sf1.x.${'A'.repeat(43)}` },
    { name: 'a malformed cookie value', cookie: async (id) => `${samlCookieName(id)}=../../x` },
    {
      name: 'a cookie of the other kind (sealed for OIDC) with this request in it',
      cookie: async (id) =>
        `${samlCookieName(id)}=${await withDb((db) => sealPending(db, 'oidc', { id, instant: new Date().toISOString(), exp: Date.now() + 60_000 }))}`,
    },
    {
      name: 'an expired cookie of ours for this request (sealed by the platform, exp in the past)',
      cookie: async (id) =>
        `${samlCookieName(id)}=${await withDb((db) => sealPending(db, 'saml', { id, instant: new Date().toISOString(), exp: Date.now() - 1 }))}`,
    },
  ];
  for (const c of cases) {
    test(`refused, and the right browser can still finish: ${c.name}`, async () => {
      const req = await startLogin('/');
      const mine = browserCookie;
      const response = await good(req, 'bound@samlco.test');
      const seq = await lastSeq(owner);
      const res = await postAcs(response, '/', env.host, await c.cookie(req.id));
      expect(res.status).toBe(401);
      expect(((await res.json()) as { error: { code: string } }).error.code).toBe('sso.saml_failed');
      expect(sessionSet(res)).toBe(false);
      // Nothing of ours vouches for the post (or its own holder may re-post it): at most one entry.
      const failed = (await auditAfter(owner, seq)).filter((e) => e.action === 'user.sign_in_failed');
      expect(failed.length).toBeLessThanOrEqual(1);
      const ok = await postAcs(response, '/', env.host, mine);
      expect(ok.status).toBe(302);
      expect(
        ok.headers
          .getSetCookie()
          .some((x) => x.startsWith(`${samlCookieName(req.id)}=; `) && /Max-Age=0/.test(x)),
      ).toBe(true);
    });
  }

  // Red-team (issue 8, point 12): request IDs travel in every redirect to the IdP, so anyone who
  // starts one sign-in (or sees an ID) could re-post garbage naming it. Each started sign-in is
  // audited at most once for refusals before a valid signature, however often it is re-posted,
  // and the browser that started it can still finish.
  const repeated: {
    name: string;
    cookie: () => string | null;
    build: (req: ParsedRequest) => Promise<string>;
    /** Audit entries for all the posts: 0 when nothing of ours vouches for them, else 1. */
    audited: number;
  }[] = [
    {
      name: 'unsigned XML naming the request, without the cookie',
      cookie: () => null,
      audited: 0,
      build: async (req) =>
        Buffer.from(
          `<samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" InResponseTo="${req.id}"/>`,
        ).toString('base64'),
    },
    {
      name: 'a genuine response, from a browser without the cookie',
      cookie: () => null,
      audited: 0,
      build: (req) => good(req, 'amplify@samlco.test'),
    },
    {
      name: 'an unsigned response, from the starting browser',
      cookie: () => browserCookie,
      audited: 1,
      build: async (req) => tamper.stripSignatures(await good(req, 'amplify@samlco.test')),
    },
  ];
  for (const c of repeated) {
    test(`re-posting against one request writes one audit entry, not one per post: ${c.name}`, async () => {
      const req = await startLogin('/');
      const mine = browserCookie;
      const bad = await c.build(req);
      const seq = await lastSeq(owner);
      for (let i = 0; i < 25; i++) {
        const res = await postAcs(bad, '/', env.host, c.cookie());
        expect([400, 401]).toContain(res.status);
        expect(sessionSet(res)).toBe(false);
      }
      const failed = (await auditAfter(owner, seq)).filter((e) => e.action === 'user.sign_in_failed');
      expect(failed.length).toBe(c.audited);
      // Refused posts write nothing: the request stays the starting browser's to finish.
      const ok = await postAcs(await good(req, 'amplify@samlco.test'), '/', env.host, mine);
      expect(ok.status).toBe(302);
    });
  }

  test('the login sets a sealed cookie per request, on the ACS path only, HttpOnly', async () => {
    const res = await hostFetch(env.s.base, env.host, '/sso/saml/login');
    expect(res.headers.getSetCookie().join('\n')).toMatch(
      /^sf_saml_[0-9a-f]{16}=sf1\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+; Path=\/sso\/saml; HttpOnly; SameSite=Lax; Max-Age=600$/m,
    );
  });

  test('two tabs: two sign-ins in flight in one browser, answered in the other order, both finish', async () => {
    const one = await startLogin('/one');
    const two = await startLogin('/two');
    const r2 = await postAcs(await good(two, 'tabs@samlco.test'), '/two');
    expect([r2.status, r2.headers.get('location')]).toEqual([302, '/two']);
    const r1 = await postAcs(await good(one, 'tabs@samlco.test'), '/one');
    expect([r1.status, r1.headers.get('location')]).toEqual([302, '/one']);
  });

  test('5,000 starts from 5,000 addresses write no row anywhere; a sign-in started before them finishes', async () => {
    const req = await startLogin('/');
    const mine = browserCookie;
    const counts = () =>
      withDb((db) =>
        db
          .query<{ name: string }, []>("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
          .all()
          .map((t) => [
            t.name,
            db.query<{ n: number }, []>(`SELECT count(*) AS n FROM "${t.name}"`).get()!.n,
          ]),
      );
    const before = await counts();
    await withDb(async (db) => {
      for (let i = 0; i < 5_000; i++) {
        const r = await startSamlLogin(env.s.app, db, {
          origin: `http://${env.host}`,
          returnTo: '/',
          client: { scope: env.platformId, ip: `127.${1 + (i >> 8)}.${i & 255}.8` },
        });
        expect(r.cookie.name).toMatch(/^sf_saml_[0-9a-f]{16}$/);
      }
    });
    expect(await counts()).toEqual(before);
    expect((await postAcs(await good(req, 'early@samlco.test'), '/', env.host, mine)).status).toBe(302);
  }, 60_000);

  test('anonymous garbage at the ACS is refused without writing an audit entry per post', async () => {
    const req = await startLogin('/');
    const variants = [
      '<samlp:Response/>',
      Buffer.from('hello, not xml').toString('base64'),
      Buffer.from(
        '<samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" InResponseTo="_nope"/>',
      ).toString('base64'),
      await idp.loginResponse(sp, { request: req, nameId: 'x@samlco.test', inResponseTo: '_unknown' }),
      await idp.loginResponse(sp, { request: null, nameId: 'x@samlco.test' }),
    ];
    const seq = await lastSeq(owner);
    for (let i = 0; i < 40; i++) {
      const res = await postAcs(variants[i % variants.length]!, '/', env.host, null);
      expect([400, 401]).toContain(res.status);
      expect(sessionSet(res)).toBe(false);
    }
    expect(await auditAfter(owner, seq)).toEqual([]);
  });
});

describe('SSO linking through SAML (issue 8, point 1)', () => {
  const cases: { name: string; nameId: string; email: string }[] = [
    { name: "the IdP asserts the owner's email", nameId: 'owner-twin', email: '' },
    { name: "the IdP asserts the owner's email as the NameID", nameId: '', email: '' },
    { name: "a password account's email", nameId: 'plain-twin', email: 'plain@samlco.test' },
  ];
  for (const c of cases) {
    test(`refused with 409 sso.account_exists, audited: ${c.name}`, async () => {
      const email = c.email || env.owner.email;
      const nameId = c.nameId || email;
      const req = await startLogin('/');
      const seq = await lastSeq(owner);
      const res = await postAcs(
        await idp.loginResponse(sp, { request: req, nameId, attributes: { email: email.toUpperCase() } }),
      );
      expect(res.status).toBe(409);
      expect(((await res.json()) as { error: { code: string } }).error.code).toBe('sso.account_exists');
      expect(sessionSet(res)).toBe(false);
      const entries = await auditAfter(owner, seq);
      expect(entries.some((e) => e.action === 'user.signed_in' || e.action === 'user.sso_linked')).toBe(
        false,
      );
      expect(entries.filter((e) => e.action === 'user.sign_in_failed').map((e) => e.details.reason)).toEqual([
        'account_exists',
      ]);
    });
  }

  test('an admin cannot swap in their own certificate once an owner signs in through SAML', async () => {
    const created = await owner.json<{ user: { id: string } }>('POST', '/api/v1/users', {
      email: 'samladmin@samlco.test',
      password: 'a-long-password-1',
      role: 'admin',
    });
    expect(created.status).toBe(201);
    const admin = new PlatformClient(env.s.base, env.host);
    expect((await admin.signIn('samladmin@samlco.test', 'a-long-password-1')).status).toBe(200);
    const me = await owner.json<{ user: { id: string } }>('GET', '/api/v1/me');
    await env.s.app.platformDbs.use(env.platformId, (db) =>
      db
        .query(
          "INSERT INTO sso_identities (kind, issuer, subject, user_id, created_at) VALUES ('saml', ?, 'the-owner', ?, 0)",
        )
        .run(IDP_ENTITY, me.body.user.id),
    );
    try {
      const swapped = await admin.json<{ error: { code: string } }>('PUT', '/api/v1/sso/saml', {
        ...baseSettings(),
        idp_cert: keys.attacker.cert,
      });
      expect(swapped.status).toBe(403);
      expect(swapped.body.error.code).toBe('sso.owner_linked');
      const renamed = await admin.json('PUT', '/api/v1/sso/saml', {
        ...baseSettings(),
        idp_entity_id: 'https://rogue.example/idp',
      });
      expect(renamed.status).toBe(403);
      // Red-team: the sign-on URL (where the owner types their IdP password), switching the IdP
      // off and removing it (the owner locked out) are the owner's to decide too.
      const more: { name: string; send: () => Promise<{ status: number; body: unknown }> }[] = [
        {
          name: 'another sign-on URL',
          send: () =>
            admin.json('PUT', '/api/v1/sso/saml', {
              ...baseSettings(),
              idp_sso_url: 'https://phish.example.test/saml/sso',
            }),
        },
        {
          name: 'switched off',
          send: () => admin.json('PUT', '/api/v1/sso/saml', { ...baseSettings(), enabled: false }),
        },
        { name: 'removed', send: () => admin.json('DELETE', '/api/v1/sso/saml') },
      ];
      for (const m of more) {
        const r = await m.send();
        expect({ name: m.name, status: r.status, body: r.body }).toMatchObject({
          name: m.name,
          status: 403,
          body: { error: { code: 'sso.owner_linked' } },
        });
      }
      const still = await owner.json<{ saml: { enabled: boolean; idp_sso_url: string } }>(
        'GET',
        '/api/v1/sso/saml',
      );
      expect(still.body.saml).toMatchObject({ enabled: true, idp_sso_url: IDP_SSO });
      // Same IdP, same certificate: an admin may still change the rest.
      expect((await admin.json('PUT', '/api/v1/sso/saml', { ...baseSettings(), jit: true })).status).toBe(
        200,
      );
    } finally {
      await env.s.app.platformDbs.use(env.platformId, (db) =>
        db.query("DELETE FROM sso_identities WHERE subject = 'the-owner'").run(),
      );
      await configure(owner, baseSettings());
    }
  });
});

describe('SSO starts are limited per address; anonymous traffic cannot lock everyone out (issue 8, point 9)', () => {
  /** A GET from a chosen local address (127.0.0.x) to the server on 127.0.0.1, over a raw socket. */
  function getFrom(
    localAddress: string,
    host: string,
    path: string,
  ): Promise<{ status: number; head: string }> {
    return new Promise((resolve, reject) => {
      const sock = net.connect({ host: '127.0.0.1', port: env.s.port, localAddress });
      let out = '';
      sock.on('connect', () =>
        sock.write(
          `GET ${path} HTTP/1.1\r\nHost: ${host}\r\nAccept: application/json\r\nConnection: close\r\n\r\n`,
        ),
      );
      sock.on('data', (d) => {
        out += d.toString('latin1');
      });
      sock.on('close', () => resolve({ status: Number(out.split(' ')[1]), head: out.split('\r\n\r\n')[0]! }));
      sock.on('error', reject);
    });
  }

  test('one address flooding /sso/saml/login gets 429; another address still starts a sign-in', async () => {
    const created = await operatorApi(env.s.base, env.operatorToken, 'POST', '/platforms', {
      slug: 'samlflood',
    });
    expect(created.status).toBe(201);
    const body = (await created.json()) as {
      admin: { email: string; password: string };
      platform: { id: string };
    };
    const o = new PlatformClient(env.s.base, 'samlflood.localhost');
    expect((await o.signIn(body.admin.email, body.admin.password)).status).toBe(200);
    await configure(o, baseSettings());
    let started = 0;
    let refused: { status: number; head: string } | null = null;
    for (let i = 0; i < SSO_STARTS_PER_MIN * 2 && !refused; i++) {
      const r = await getFrom('127.0.0.1', 'samlflood.localhost', '/sso/saml/login');
      if (r.status === 302) started++;
      else refused = r;
    }
    expect(refused?.status).toBe(429);
    expect(refused!.head).toMatch(/\r\nretry-after: \d+/i);
    expect(started).toBeGreaterThanOrEqual(SSO_STARTS_PER_MIN);
    expect(started).toBeLessThan(SSO_STARTS_PER_MIN + 10);
    // No start wrote anything (the requests are sealed in the cookies).
    const rows = await env.s.app.platformDbs.use(
      body.platform.id,
      (db) => db.query<{ n: number }, []>('SELECT count(*) AS n FROM sso_requests').get()!.n,
    );
    expect(rows).toBe(0);
    // Someone else, at another address, signs in as usual.
    expect((await getFrom('127.0.0.2', 'samlflood.localhost', '/sso/saml/login')).status).toBe(302);
    // And the flooding address is still welcome on another platform.
    expect((await getFrom('127.0.0.1', env.host, '/sso/saml/login')).status).toBe(302);
  });
});

describe('removal', () => {
  test('DELETE removes the settings (audited); login then answers 404 and the ACS 400', async () => {
    const seq = await lastSeq(owner);
    const del = await owner.fetch('/api/v1/sso/saml', { method: 'DELETE' });
    expect(del.status).toBe(204);
    expect((await auditAfter(owner, seq)).some((e) => e.action === 'sso.saml_removed')).toBe(true);
    expect((await owner.json('GET', '/api/v1/sso/saml')).status).toBe(404);
    const login = await hostFetch(env.s.base, env.host, '/sso/saml/login', {
      headers: { accept: 'application/json' },
    });
    expect(login.status).toBe(404);
    const acs = await postAcs(Buffer.from('<x/>').toString('base64'));
    expect(acs.status).toBe(400);
    expect((await owner.fetch('/api/v1/sso/saml', { method: 'DELETE' })).status).toBe(404);
  });
});
