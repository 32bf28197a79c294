import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { verify } from 'node:crypto';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import canonicalize from 'canonicalize';
import { HOTP, Secret } from 'otpauth';
import { markMailDelivered, readOidc, readOutbox } from '../src/identity/index.ts';
import { readSaml } from '../src/identity/sso/saml/saml.ts';
import { isAppError } from '../src/shared/errors.ts';
import { BUN, hostFetch, operatorApi, ROOT, runCli, tempDir } from './helpers.ts';
import { type OidcPeer, startOidcProvider } from './peers/oidc-provider.ts';
import { makeKeyPair } from './peers/saml-idp.ts';
import { PlatformClient, serverWithPlatform } from './platform-client.ts';

// Issue 8 point 11: every stored secret is sealed at rest. Known secrets are written through
// the real APIs of a running instance, then every .db, -wal and -shm file under the data dir is
// searched, byte for byte, for each secret and its usual encodings.

const OIDC_SECRET = 'platform-oidc-client-secret-7f3a9c2e51';
const OPERATOR_SECRET = 'operator-console-oidc-secret-b84d0e6a19';
const TOOL_SECRET = 'agent-tool-api-key-5e2b91c7d40a68f3';

let env: Awaited<ReturnType<typeof serverWithPlatform>>;
let idp: OidcPeer;
let host: string;
let owner: PlatformClient;

/** RFC 4648 base32 (no padding), as authenticator seeds are written. */
function base32(bytes: Uint8Array): string {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  let bits = 0;
  let value = 0;
  let out = '';
  for (const b of bytes) {
    value = (value << 8) | b;
    bits += 8;
    while (bits >= 5) {
      out += alphabet[(value >>> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  if (bits > 0) out += alphabet[(value << (5 - bits)) & 31];
  return out;
}

/**
 * What to look for, for one secret: its raw bytes, hex (both cases), and base64, base64url and
 * base32 at every alignment (a secret inside a larger encoded blob starts mid-group), trimmed of
 * the characters a neighbouring byte could change.
 */
function needles(name: string, raw: Uint8Array): { name: string; bytes: Buffer }[] {
  const out: { name: string; bytes: Buffer }[] = [{ name: `${name} (raw)`, bytes: Buffer.from(raw) }];
  const hex = Buffer.from(raw).toString('hex');
  out.push(
    { name: `${name} (hex)`, bytes: Buffer.from(hex) },
    { name: `${name} (HEX)`, bytes: Buffer.from(hex.toUpperCase()) },
  );
  for (let k = 0; k < 3; k++) {
    const padded = Buffer.concat([Buffer.alloc(k), raw]);
    const skip = Math.ceil((k * 8) / 6);
    for (const enc of ['base64', 'base64url'] as const) {
      const s = padded.toString(enc).replace(/=+$/, '');
      out.push({ name: `${name} (${enc}, offset ${k})`, bytes: Buffer.from(s.slice(skip, s.length - 2)) });
    }
  }
  for (let k = 0; k < 5; k++) {
    const s = base32(Buffer.concat([Buffer.alloc(k), raw]));
    out.push({
      name: `${name} (base32, offset ${k})`,
      bytes: Buffer.from(s.slice(Math.ceil((k * 8) / 5), s.length - 2)),
    });
  }
  return out;
}

/** Every SQLite file (and its WAL and shared-memory file) under the data dir. */
function databaseFiles(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...databaseFiles(p));
    else if (/\.db$|\.db-wal$|\.db-shm$/.test(name)) out.push(p);
  }
  return out;
}

/** The needles found in the data dir's database files, as "needle in file". */
function scan(dataDir: string, list: { name: string; bytes: Buffer }[]): string[] {
  const found: string[] = [];
  for (const f of databaseFiles(dataDir)) {
    const buf = readFileSync(f);
    for (const n of list)
      if (buf.indexOf(n.bytes) >= 0) found.push(`${n.name} in ${f.slice(dataDir.length)}`);
  }
  return found;
}

/** A code for the next unused TOTP step (the server accepts ±1 step and never a step twice). */
function totpCodes(seed: string) {
  let last = -Infinity;
  return () => {
    const now = Math.floor(Date.now() / 30_000);
    const step = Math.max(last + 1, now - 1);
    if (step > now + 1) throw new Error('out of TOTP steps in this window');
    last = step;
    return HOTP.generate({ secret: Secret.fromBase32(seed), counter: step, digits: 6, algorithm: 'SHA1' });
  };
}

const withDb = <T>(fn: (db: import('bun:sqlite').Database) => T) =>
  env.s.app.platformDbs.use(env.platformId, fn);

/** The secrets written in beforeAll, and what to search for. */
const known: {
  totpSeed: string;
  samlKey: string;
  resetToken: string;
  sealedTotp: string;
  sealedOidc: string;
  sealedTool: string;
  sealedFederation: string;
  member: { email: string; password: string };
} = {} as never;
let list: { name: string; bytes: Buffer }[] = [];

beforeAll(async () => {
  env = await serverWithPlatform(
    'vault',
    { blueprint: { features: { agent_creation: true } } },
    {
      config: {
        outbound: { allow: ['127.0.0.1/32'] },
        // A model for an agent to name (never called here).
        providers: [{ id: 'none', kind: 'openai', url: 'http://127.0.0.1:9/v1', location: 'on_prem' }],
        models: [{ alias: 'default', route: ['none/m'] }],
      },
    },
  );
  host = `vault.localhost:${env.s.port}`;
  idp = await startOidcProvider({
    clients: [
      {
        client_id: 'vault-app',
        client_secret: OIDC_SECRET,
        redirect_uris: [`http://${host}/sso/oidc/callback`],
      },
      {
        client_id: 'console',
        client_secret: OPERATOR_SECRET,
        redirect_uris: ['http://localhost/sso/oidc/callback'],
      },
    ],
  });
  owner = new PlatformClient(env.s.base, host);
  expect((await owner.signIn(env.owner.email, env.owner.password)).status).toBe(200);

  // 1. A platform OIDC client secret, through the settings API.
  const oidc = await owner.json('PUT', '/api/v1/sso/oidc', {
    issuer: idp.issuer,
    client_id: 'vault-app',
    client_secret: OIDC_SECRET,
    scopes: ['openid', 'email', 'profile'],
    default_role: 'member',
  });
  expect(oidc.status).toBe(200);
  // 2. A SAML SP private key, generated by the server (sign_requests).
  const idpKeys = await makeKeyPair('vault-idp');
  const saml = await owner.json('PUT', '/api/v1/sso/saml', {
    idp_entity_id: 'https://idp.vault.test/saml',
    idp_sso_url: 'https://idp.vault.test/saml/sso',
    idp_cert: idpKeys.cert,
    email_attribute: 'email',
    default_role: 'member',
    sign_requests: true,
  });
  expect(saml.status).toBe(200);
  known.samlKey = (await withDb((db) => readSaml(db)))!.sp_private_key!;
  expect(known.samlKey).toContain('BEGIN PRIVATE KEY');
  // 3. A TOTP seed, through the MFA enrolment API of a member.
  known.member = { email: 'mina@vault.test', password: 'mina-password-1234' };
  expect((await owner.json('POST', '/api/v1/users', known.member)).status).toBe(201);
  const mina = new PlatformClient(env.s.base, host);
  expect((await mina.signIn(known.member.email, known.member.password)).status).toBe(200);
  const setup = await mina.json<{ secret: string }>('POST', '/api/v1/me/mfa/totp/setup');
  expect(setup.status).toBe(200);
  known.totpSeed = setup.body.secret;
  nextCode = totpCodes(known.totpSeed);
  expect((await mina.json('POST', '/api/v1/me/mfa/totp/enable', { code: nextCode() })).status).toBe(200);
  // 4. The operator console's OIDC client secret (control.db).
  const op = await operatorApi(env.s.base, env.operatorToken, 'PUT', '/sso/oidc', {
    issuer: idp.issuer,
    client_id: 'console',
    client_secret: OPERATOR_SECRET,
    scopes: ['openid', 'email'],
    default_role: 'member',
  });
  expect(op.status).toBe(200);
  // 5. A reset link with its live token, queued in the outbox.
  const reset = await new PlatformClient(env.s.base, host).json('POST', '/api/v1/auth/password-reset', {
    email: known.member.email,
  });
  expect(reset.status).toBe(202);
  const mail = await withDb((db) => readOutbox(db, { to: known.member.email, template: 'reset_password' }));
  known.resetToken = /token=([A-Za-z0-9_-]+)/.exec(mail.at(-1)!.body)![1]!;

  // 6. An agent tool's secret header, through the builder's API.
  expect((await owner.json('PUT', '/api/v1/platform/tool-hosts', { hosts: ['api.vault.test'] })).status).toBe(
    200,
  );
  const agent = await owner.json<{ agent: { id: string } }>('POST', '/api/v1/agents', {
    name: 'Vault tool',
    tools: [
      {
        name: 'lookup',
        description: 'Looks up',
        kind: 'http',
        method: 'GET',
        url: 'https://api.vault.test/lookup',
        parameters: { type: 'object', properties: {} },
      },
    ],
  });
  expect(agent.status).toBe(201);
  const secret = await owner.json('PUT', `/api/v1/agents/${agent.body.agent.id}/tools/lookup/secret`, {
    header: 'x-api-key',
    value: TOOL_SECRET,
  });
  expect(secret.status).toBe(200);
  expect(JSON.stringify(secret.body)).not.toContain(TOOL_SECRET);
  known.sealedTool = await withDb(
    (db) => db.query<{ v: string }, []>('SELECT value AS v FROM agent_tool_secrets').get()!.v,
  );

  known.sealedTotp = await withDb(
    (db) =>
      db
        .query<{ t: string }, [string]>('SELECT totp_secret AS t FROM users WHERE email = ?')
        .get(known.member.email)!.t,
  );
  known.sealedOidc = await withDb(
    (db) =>
      JSON.parse(
        db.query<{ c: string }, []>("SELECT config AS c FROM sso_providers WHERE kind = 'oidc'").get()!.c,
      ).client_secret,
  );

  // 6. The instance's federation key (issue 12 item 8), made on first use.
  expect((await operatorApi(env.s.base, env.operatorToken, 'GET', '/federation/key')).status).toBe(200);
  known.sealedFederation = env.s.app.control
    .query<{ k: string }, []>('SELECT private_key AS k FROM federation_key WHERE id = 1')
    .get()!.k;
  const federationDer = Buffer.from(
    env.s.app.secrets.unseal(known.sealedFederation, 'control:federation_key'),
    'base64',
  );
  expect(federationDer.length).toBe(48);

  const pemBody = known.samlKey.replace(/-----[^-]+-----/g, '').replace(/\s+/g, '');
  const der = Buffer.from(pemBody, 'base64');
  list = [
    ...needles('platform OIDC client secret', Buffer.from(OIDC_SECRET)),
    ...needles('operator OIDC client secret', Buffer.from(OPERATOR_SECRET)),
    ...needles('agent tool secret', Buffer.from(TOOL_SECRET)),
    ...needles('TOTP seed (as shown)', Buffer.from(known.totpSeed)),
    ...needles('TOTP seed bytes', Buffer.from(Secret.fromBase32(known.totpSeed).bytes)),
    ...needles('reset token', Buffer.from(known.resetToken)),
    ...needles('reset token bytes', Buffer.from(known.resetToken, 'base64url')),
    ...needles('SAML SP key (DER)', der.subarray(26, 90)),
    ...needles('federation private key (PKCS#8 DER)', federationDer),
    ...needles('federation private key (seed)', federationDer.subarray(16)),
    // Each line of the PEM, as JSON would keep it between its \n escapes.
    ...known.samlKey
      .split('\n')
      .filter((l) => l.length === 64)
      .slice(0, 4)
      .map((l, i) => ({ name: `SAML SP key (PEM line ${i + 1})`, bytes: Buffer.from(l) })),
  ];
}, 60_000);

let nextCode: () => string;

afterAll(async () => {
  await idp?.stop();
  await env?.s.cleanup();
});

describe('no stored secret can be read from the data dir', () => {
  test('the scan sees through the files: non-secret values written the same way are found', () => {
    // The member's email went in with the TOTP seed; the OIDC client id with its secret.
    const control = [
      { name: 'member email', bytes: Buffer.from(known.member.email) },
      { name: 'OIDC client id', bytes: Buffer.from('vault-app') },
      { name: 'console client id', bytes: Buffer.from('"console"') },
    ];
    expect(scan(env.s.dataDir, control).length).toBeGreaterThanOrEqual(3);
  });

  test('while the server runs: no secret or encoding of one in any .db, -wal or -shm file', () => {
    expect(list.length).toBeGreaterThan(60);
    expect(scan(env.s.dataDir, list)).toEqual([]);
  });

  test('what is stored instead is sealed text bound to its row', () => {
    expect(known.sealedTotp).toMatch(/^sf1\.dk_[0-9a-f]{16}\.[A-Za-z0-9_-]+$/);
    expect(known.sealedOidc).toMatch(/^sf1\.dk_[0-9a-f]{16}\.[A-Za-z0-9_-]+$/);
    expect(known.sealedTool).toMatch(/^sf1\.dk_[0-9a-f]{16}\.[A-Za-z0-9_-]+$/);
    expect(known.sealedFederation).toMatch(/^sf1\.dk_[0-9a-f]{16}\.[A-Za-z0-9_-]+$/);
  });

  test('a delivered message keeps no body: its live link is wiped', async () => {
    const before = await withDb((db) => readOutbox(db, { to: known.member.email }));
    expect(before.length).toBeGreaterThan(0);
    for (const m of before) expect(await withDb((db) => markMailDelivered(db, m.id, Date.now()))).toBe(true);
    const after = await withDb((db) => readOutbox(db, { to: known.member.email, includeSent: true }));
    expect(after.map((m) => [m.body, m.sent_at !== null])).toEqual(before.map(() => ['', true]));
    expect(await withDb((db) => readOutbox(db, { to: known.member.email }))).toEqual([]);
  });
});

describe('the key routes answer only over the control socket', () => {
  const attacks: {
    name: string;
    method: string;
    path: string;
    auth: 'admin token' | 'none';
    host?: string;
    status: number;
    code: string;
  }[] = [
    {
      name: 'export with an operator admin token',
      method: 'POST',
      path: '/_operator/api/keys/export',
      auth: 'admin token',
      status: 403,
      code: 'auth.control_socket_only',
    },
    {
      name: 'rotate with an operator admin token',
      method: 'POST',
      path: '/_operator/api/keys/rotate',
      auth: 'admin token',
      status: 403,
      code: 'auth.control_socket_only',
    },
    {
      name: 'export with no credentials',
      method: 'POST',
      path: '/_operator/api/keys/export',
      auth: 'none',
      status: 401,
      code: 'auth.required',
    },
    {
      name: 'export as GET',
      method: 'GET',
      path: '/_operator/api/keys/export',
      auth: 'admin token',
      status: 404,
      code: '',
    },
    {
      name: 'export on a platform host',
      method: 'POST',
      path: '/_operator/api/keys/export',
      auth: 'admin token',
      host: 'vault.localhost',
      status: 404,
      code: '',
    },
  ];
  for (const a of attacks) {
    test(`refused: ${a.name} (${a.status}), and the key is not in the answer`, async () => {
      const res = await fetch(`${env.s.base}${a.path}`, {
        method: a.method,
        headers: {
          host: a.host ?? 'localhost',
          ...(a.auth === 'admin token' ? { authorization: `Bearer ${env.operatorToken}` } : {}),
          ...(a.method === 'POST' ? { 'content-type': 'application/json' } : {}),
        },
        body: a.method === 'POST' ? '{}' : undefined,
      });
      const text = await res.text();
      expect(res.status).toBe(a.status);
      if (a.code) expect(JSON.parse(text).error.code).toBe(a.code);
      expect(text).not.toContain(env.s.app.keyring.exportMaster().master_key);
    });
  }
});

describe('soulfra keys rotate, through the control socket of the running server', () => {
  let rotated: { kind: string; data_key: string; retired: string[]; resealed: Record<string, number> };

  beforeAll(async () => {
    const r = await runCli(['keys', 'rotate', '--data', env.s.dataDir, '--json']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    rotated = JSON.parse(r.stdout);
  }, 30_000);

  test('a new data key; every secret re-sealed under it; the old key retired', async () => {
    expect(rotated.kind).toBe('data_key');
    const oldKey = known.sealedTotp.split('.')[1]!;
    expect(rotated.retired).toEqual([oldKey]);
    expect(rotated.data_key).not.toBe(oldKey);
    // Operator SSO secret and audit signing key in control.db; SSO (2), TOTP (1) in the platform.
    expect(rotated.resealed.control).toBeGreaterThanOrEqual(1);
    expect(rotated.resealed.platform_secrets).toBeGreaterThanOrEqual(3);
    const now = await withDb(
      (db) =>
        db
          .query<{ t: string }, [string]>('SELECT totp_secret AS t FROM users WHERE email = ?')
          .get(known.member.email)!.t,
    );
    expect(now.startsWith(`sf1.${rotated.data_key}.`)).toBe(true);
    // The federation key is re-sealed too, and still signs (its list verifies with its public key).
    const fed = env.s.app.control
      .query<{ k: string; p: string }, []>('SELECT private_key AS k, public_key AS p FROM federation_key')
      .get()!;
    expect(fed.k.startsWith(`sf1.${rotated.data_key}.`)).toBe(true);
    const list = (await (await hostFetch(env.s.base, 'localhost', '/federation/revocations')).json()) as {
      signature: string;
    };
    const { signature, ...unsigned } = list;
    const pub = { key: Buffer.from(fed.p, 'base64'), format: 'der' as const, type: 'spki' as const };
    expect(verify(null, Buffer.from(canonicalize(unsigned)!), pub, Buffer.from(signature, 'base64url'))).toBe(
      true,
    );
  });

  test('the old data key no longer opens what it sealed', async () => {
    const uid = await withDb(
      (db) =>
        db.query<{ id: string }, [string]>('SELECT id FROM users WHERE email = ?').get(known.member.email)!
          .id,
    );
    let err: unknown;
    try {
      env.s.app.secrets.unseal(known.sealedTotp, `platform:${env.platformId}:user:${uid}:totp`);
    } catch (e) {
      err = e;
    }
    expect(isAppError(err) && err.code).toBe('keys.unseal_failed');
    expect((err as Error).message).toContain('retired');
  });

  test('everything still works: TOTP sign-in, the OIDC round trip (the IdP checks the secret), SAML signing', async () => {
    // TOTP: password, then a code from the seed enrolled before the rotation.
    const b = new PlatformClient(env.s.base, host);
    const first = await b.signIn(known.member.email, known.member.password);
    expect([first.status, first.body.mfa_required]).toEqual([200, true]);
    const mfa = await b.json<{ mfa_required: boolean; method: string }>('POST', '/api/v1/auth/mfa', {
      code: nextCode(),
    });
    expect([mfa.status, mfa.body.mfa_required, mfa.body.method]).toEqual([200, false, 'totp']);
    // OIDC: the token endpoint refuses a wrong client secret, so a session proves it opened.
    const browser = new PlatformClient(env.s.base, host);
    const start = await browser.fetch('/sso/oidc/login');
    expect(start.status).toBe(302);
    const r = await idp.authorize(new URL(start.headers.get('location')!), { login: 'otto' });
    if (r.kind !== 'redirect') throw new Error(`IdP error ${r.status}`);
    const done = await browser.fetch(r.url.pathname + r.url.search);
    expect(done.status).toBe(302);
    expect([...browser.jar.keys()].some((k) => k.startsWith('sf_session'))).toBe(true);
    // SAML: the SP-initiated request is signed with the SP key opened from storage.
    const saml = await new PlatformClient(env.s.base, host).fetch('/sso/saml/login');
    expect(saml.status).toBe(302);
    expect(new URL(saml.headers.get('location')!).searchParams.get('Signature')!.length).toBeGreaterThan(100);
    // The operator console's secret and the SAML key open to the same values.
    expect(readOidc(env.s.app.control)!.client_secret).toBe(OPERATOR_SECRET);
    expect((await withDb((db) => readSaml(db)))!.sp_private_key).toBe(known.samlKey);
  });

  test('after the rotation, and again after a clean stop, the files hold none of the secrets', async () => {
    expect(scan(env.s.dataDir, list)).toEqual([]);
    await env.s.stop();
    expect(scan(env.s.dataDir, list)).toEqual([]);
  });
});

describe('start-up with the wrong master key', () => {
  test('a wrong SOULFRA_MASTER_KEY stops `soulfra serve` with keys.master_mismatch; no new key is made', async () => {
    const t = tempDir();
    try {
      const data = join(t.dir, 'data');
      expect((await runCli(['platform', 'create', 'one', '--data', data, '--json'])).code).toBe(0);
      const keyFile = `${data}.master.key`;
      const before = readFileSync(keyFile, 'utf8');
      const proc = Bun.spawn(
        [BUN, join(ROOT, 'src', 'main.ts'), 'serve', '--data', data, '--port', '0', '--json'],
        {
          env: { ...process.env, SOULFRA_MASTER_KEY: Buffer.alloc(32, 7).toString('base64') },
          stdout: 'pipe',
          stderr: 'pipe',
        },
      );
      // A server that wrongly started would never exit: stop it so the test fails, not hangs.
      const guard = setTimeout(() => proc.kill('SIGKILL'), 20_000);
      const [code, stderr] = await Promise.all([proc.exited, new Response(proc.stderr).text()]);
      clearTimeout(guard);
      expect(code).toBe(1);
      expect(stderr).toContain('keys.master_mismatch');
      expect(stderr).toContain('SOULFRA_MASTER_KEY');
      expect(readFileSync(keyFile, 'utf8')).toBe(before);
      // With no server running, `keys export` takes the lock and reads the key itself.
      const exported = await runCli(['keys', 'export', '--data', data, '--json']);
      expect(exported.code).toBe(0);
      const doc = JSON.parse(exported.stdout) as {
        master_key: string;
        source: { kind: string; path: string };
      };
      expect(Buffer.from(doc.master_key, 'base64').equals(Buffer.from(before.trim(), 'base64'))).toBe(true);
      expect(doc.source).toMatchObject({ kind: 'file', path: keyFile });
    } finally {
      t.cleanup();
    }
  }, 30_000);
});
