import { randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import Provider, { type Account, type Adapter } from 'oidc-provider';

/**
 * A test OpenID Provider on 127.0.0.1 (oidc-provider 9): dev interactions (any login id, any
 * password), clients that can be added while it runs, accounts with configurable claims
 * (email, email_verified, name, groups, role, ...), and a code lifetime that tests can shorten.
 * `authorize()` plays the browser: it follows redirects with a cookie jar through the login and
 * consent forms and stops at the first redirect that leaves the provider.
 */
export interface OidcPeer {
  /** The issuer identifier: `http://127.0.0.1:<port>`. */
  readonly issuer: string;
  readonly port: number;
  /** Registers (or replaces) a client. */
  addClient(client: OidcPeerClient): void;
  /** Sets the claims of the account a login id resolves to (merged over the defaults). */
  setAccount(login: string, claims: Record<string, unknown>): void;
  /** The authorization code lifetime in seconds (default 60). */
  setCodeTtl(seconds: number): void;
  /** Lets every authorization code issued so far expire now (no waiting out their lifetime). */
  expireCodes(): void;
  /** Drives a browser-less sign-in from an authorization URL. */
  authorize(authorizationUrl: string | URL, opts: { login: string }): Promise<AuthorizeResult>;
  stop(): Promise<void>;
}

/** A client of the test provider (confidential by default, client_secret_basic or _post). */
export interface OidcPeerClient {
  client_id: string;
  client_secret?: string;
  redirect_uris: string[];
  token_endpoint_auth_method?: 'client_secret_basic' | 'client_secret_post' | 'none';
  [key: string]: unknown;
}

/** Where the browser-less sign-in ended. */
export type AuthorizeResult =
  | { kind: 'redirect'; url: URL }
  | { kind: 'error'; status: number; body: string; url: URL };

/** What `startOidcProvider` takes. */
export interface OidcPeerOptions {
  clients?: OidcPeerClient[];
  accounts?: Record<string, Record<string, unknown>>;
  /** Put the scope claims (email, name, groups, ...) in the ID token too (default: userinfo only). */
  idTokenClaims?: boolean;
  codeTtlSeconds?: number;
}

interface Entry {
  payload: Record<string, unknown>;
  expiresAt: number | null;
}

/** A Map-backed adapter shared by every model; clients live in it too (model `Client`). */
function mapAdapter(store: Map<string, Entry>) {
  return (model: string): Adapter => {
    const key = (id: string) => `${model}:${id}`;
    const live = (k: string): Record<string, unknown> | undefined => {
      const e = store.get(k);
      if (!e) return undefined;
      if (e.expiresAt !== null && e.expiresAt <= Date.now()) {
        store.delete(k);
        return undefined;
      }
      return e.payload;
    };
    const findBy = (field: string, value: string) => {
      for (const [k, e] of store) {
        if (k.startsWith(`${model}:`) && e.payload[field] === value) return live(k);
      }
      return undefined;
    };
    return {
      async upsert(id, payload, expiresIn) {
        store.set(key(id), { payload, expiresAt: expiresIn ? Date.now() + expiresIn * 1000 : null });
      },
      async find(id) {
        return live(key(id));
      },
      async findByUid(uid) {
        return findBy('uid', uid);
      },
      async findByUserCode(userCode) {
        return findBy('userCode', userCode);
      },
      async consume(id) {
        const p = live(key(id));
        if (p) p.consumed = Math.floor(Date.now() / 1000);
      },
      async destroy(id) {
        store.delete(key(id));
      },
      async revokeByGrantId(grantId) {
        for (const [k, e] of store) if (e.payload.grantId === grantId) store.delete(k);
      },
    };
  };
}

/** Starts the provider on 127.0.0.1 and a free port. */
export async function startOidcProvider(opts: OidcPeerOptions = {}): Promise<OidcPeer> {
  const server: Server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  const issuer = `http://127.0.0.1:${port}`;
  const store = new Map<string, Entry>();
  const accounts = new Map(Object.entries(opts.accounts ?? {}));
  let codeTtl = opts.codeTtlSeconds ?? 60;

  const provider = new Provider(issuer, {
    adapter: mapAdapter(store),
    claims: {
      openid: ['sub'],
      email: ['email', 'email_verified'],
      profile: ['name', 'given_name', 'family_name'],
      groups: ['groups'],
      role: ['role'],
    },
    scopes: ['openid', 'offline_access', 'email', 'profile', 'groups', 'role'],
    conformIdTokenClaims: !opts.idTokenClaims,
    cookies: { keys: [randomBytes(32).toString('base64url')] },
    pkce: { required: () => true },
    ttl: {
      AuthorizationCode: () => codeTtl,
      AccessToken: 3600,
      IdToken: 3600,
      Grant: 3600,
      Interaction: 600,
      Session: 3600,
    },
    findAccount: (_ctx: unknown, id: string): Account => ({
      accountId: id,
      claims: () => ({
        sub: id,
        email: `${id}@idp.test`,
        email_verified: true,
        name: id,
        ...accounts.get(id),
      }),
    }),
  });
  server.on('request', provider.callback());

  const addClient = (c: OidcPeerClient) =>
    store.set(`Client:${c.client_id}`, {
      payload: { token_endpoint_auth_method: 'client_secret_basic', ...c },
      expiresAt: null,
    });
  for (const c of opts.clients ?? []) addClient(c);

  return {
    issuer,
    port,
    addClient,
    setAccount: (login, claims) => accounts.set(login, claims),
    setCodeTtl: (s) => {
      codeTtl = s;
    },
    expireCodes: () => {
      for (const [k, e] of store) if (k.startsWith('AuthorizationCode:')) e.expiresAt = 0;
    },
    authorize: (url, { login }) => drive(issuer, new URL(url), login),
    stop: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** Follows the provider's redirects and forms like a browser would (login, then consent). */
async function drive(issuer: string, start: URL, login: string): Promise<AuthorizeResult> {
  const origin = new URL(issuer).origin;
  const jar = new Map<string, string>();
  let url = start;
  let init: RequestInit = { method: 'GET' };
  for (let hop = 0; hop < 20; hop++) {
    const headers = new Headers(init.headers);
    if (jar.size) headers.set('cookie', [...jar].map(([k, v]) => `${k}=${v}`).join('; '));
    const res = await fetch(url, { ...init, headers, redirect: 'manual' });
    for (const c of res.headers.getSetCookie()) {
      const [pair] = c.split(';');
      const i = pair!.indexOf('=');
      const name = pair!.slice(0, i).trim();
      const value = pair!.slice(i + 1).trim();
      if (/expires=Thu, 01 Jan 1970/i.test(c) || value === '') jar.delete(name);
      else jar.set(name, value);
    }
    if (res.status >= 300 && res.status < 400) {
      await res.body?.cancel();
      const next = new URL(res.headers.get('location')!, url);
      if (next.origin !== origin) return { kind: 'redirect', url: next };
      url = next;
      init = { method: 'GET' };
      continue;
    }
    const body = await res.text();
    const action = /<form[^>]*action="([^"]+)"[^>]*method="post"/i.exec(body)?.[1];
    if (res.status !== 200 || !action) return { kind: 'error', status: res.status, body, url };
    const form: Record<string, string> = /name="prompt" value="login"/.test(body)
      ? { prompt: 'login', login, password: 'x' }
      : { prompt: 'consent' };
    url = new URL(action.replaceAll('&amp;', '&'), url);
    init = {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams(form).toString(),
    };
  }
  throw new Error(`the test provider did not finish within 20 hops (last: ${url})`);
}
