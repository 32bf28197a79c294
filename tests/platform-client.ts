import type { InstanceConfig } from '../src/app/index.ts';
import type { Clock } from '../src/shared/time.ts';
import { hostFetch, operatorApi, startTestServer } from './helpers.ts';

/**
 * A test server with one platform made through the operator API, and its owner's credentials.
 * `config` is merged over the test defaults (e.g. `outbound: { allow: ['127.0.0.1/32'] }` for
 * tests whose IdP runs on 127.0.0.1).
 */
export async function serverWithPlatform(
  slug = 'acme',
  body: Record<string, unknown> = {},
  opts: { config?: Partial<InstanceConfig>; clock?: Clock } = {},
) {
  const s = await startTestServer({ config: opts.config, clock: opts.clock });
  const token = s.firstRun!.token;
  const res = await operatorApi(s.base, token, 'POST', '/platforms', { slug, ...body });
  if (res.status !== 201) throw new Error(`create ${slug}: ${res.status} ${await res.text()}`);
  const created = (await res.json()) as {
    admin: { email: string; password: string };
    platform: { id: string };
  };
  return {
    s,
    operatorToken: token,
    host: `${slug}.localhost`,
    owner: created.admin,
    platformId: created.platform.id,
  };
}

/**
 * A browser-like client of one platform host: keeps cookies (a simple jar), sends the CSRF
 * token it got at sign-in on writes, and parses JSON answers.
 */
export class PlatformClient {
  readonly jar = new Map<string, string>();
  csrf: string | null = null;
  bearer: string | null = null;

  /**
   * `base` is a listening server's URL, or a function that sends the request itself (the
   * in-process server's `request`, tests/inproc.ts).
   */
  constructor(
    readonly base: string | ((host: string, path: string, init: RequestInit) => Promise<Response>),
    readonly host: string,
  ) {}

  /** A raw request (redirects not followed), with cookies, CSRF and bearer as set. */
  async fetch(path: string, init: RequestInit & { json?: unknown } = {}): Promise<Response> {
    const headers = new Headers(init.headers);
    if (this.jar.size && !headers.has('cookie'))
      headers.set('cookie', [...this.jar].map(([k, v]) => `${k}=${v}`).join('; '));
    if (this.csrf && !headers.has('x-csrf-token')) headers.set('x-csrf-token', this.csrf);
    if (this.bearer && !headers.has('authorization')) headers.set('authorization', `Bearer ${this.bearer}`);
    if (!headers.has('accept')) headers.set('accept', 'application/json');
    let body = init.body;
    if (init.json !== undefined) {
      headers.set('content-type', 'application/json');
      body = JSON.stringify(init.json);
    }
    const send = { ...init, headers, body };
    const res =
      typeof this.base === 'string'
        ? await hostFetch(this.base, this.host, path, send)
        : await this.base(this.host, path, { ...send, redirect: 'manual' });
    for (const c of res.headers.getSetCookie()) {
      const [pair] = c.split(';');
      const i = pair!.indexOf('=');
      const name = pair!.slice(0, i).trim();
      const value = pair!.slice(i + 1).trim();
      if (/max-age=0/i.test(c) || value === '') this.jar.delete(name);
      else this.jar.set(name, value);
    }
    return res;
  }

  /** JSON request → { status, body }. */
  async json<T = Record<string, unknown>>(
    method: string,
    path: string,
    json?: unknown,
  ): Promise<{ status: number; body: T; res: Response }> {
    const res = await this.fetch(path, { method, json });
    const text = await res.text();
    return { status: res.status, body: (text ? JSON.parse(text) : null) as T, res };
  }

  /** Signs in with email and password; keeps the session cookie and CSRF token. */
  async signIn(email: string, password: string): Promise<{ status: number; body: Record<string, unknown> }> {
    const r = await this.json<Record<string, unknown>>('POST', '/api/v1/auth/login', { email, password });
    if (r.status === 200) this.csrf = r.body.csrf_token as string;
    return r;
  }
}
