/**
 * A signed-in user of a platform in the in-process server, and calls made as them (the session
 * cookie, and the CSRF token on writes): the helper the agents, knowledge and marketplace tests
 * share.
 */
import { expect } from 'bun:test';
import type { InProcessServer } from './inproc.ts';

export interface Session {
  host: string;
  cookie: string;
  csrf: string;
}

type Server = Pick<InProcessServer, 'request'>;

/** Signs `email` in on `<slug>.localhost` (the sign-in must answer 200). */
export async function signInTo(s: Server, slug: string, email: string, password: string): Promise<Session> {
  const host = `${slug}.localhost`;
  const r = await s.request(host, '/api/v1/auth/login', {
    method: 'POST',
    headers: { 'content-type': 'application/json', origin: `http://${host}:8080` },
    body: JSON.stringify({ email, password }),
  });
  expect(r.status).toBe(200);
  return {
    host,
    cookie: (r.headers.get('set-cookie') ?? '').split(';')[0]!,
    csrf: ((await r.json()) as { csrf_token: string }).csrf_token,
  };
}

/** A JSON call as `se`. */
export function callAs(
  s: Server,
  se: Session,
  method: string,
  path: string,
  body?: unknown,
): Promise<Response> {
  return s.request(se.host, path, {
    method,
    headers: {
      cookie: se.cookie,
      ...(method === 'GET' ? {} : { 'x-csrf-token': se.csrf }),
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
}

/** A response's JSON body. */
export const json = async <T>(r: Response | Promise<Response>) => (await (await r).json()) as T;
