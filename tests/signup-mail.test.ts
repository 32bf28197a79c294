import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { type InProcessServer, inProcessServer } from './inproc.ts';
import { type LoopbackSmtp, startLoopbackSmtp } from './smtp.ts';
import { waitFor } from './wait.ts';

// Issue 10 item 2, end to end: the mailed links arrive over real SMTP (a loopback server),
// are parsed with mailparser, followed on the platform's pages, and the account signs in.

let smtp: LoopbackSmtp;
let s: InProcessServer;
const HOST = 'crt.localhost';
const PW = 'a-long-enough-password';

beforeAll(async () => {
  smtp = await startLoopbackSmtp();
  s = await inProcessServer({
    config: {
      mail: { from: 'noreply@mail.test', smtp: { host: '127.0.0.1', port: smtp.port, starttls: 'never' } },
    },
  });
  const res = await s.operatorApi('POST', '/platforms', {
    slug: 'crt',
    template: 'creator',
    blueprint: { governance: { self_signup: true, user_verification: { email_required: true } } },
  });
  expect(res.status).toBe(201);
  ownerCreds = ((await res.json()) as { admin: { email: string; password: string } }).admin;
});
afterAll(async () => {
  await s.close();
  await smtp.close();
});

const json = (path: string, body: unknown, headers: Record<string, string> = {}) =>
  s.request(HOST, path, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify(body),
  });
const form = (path: string, fields: Record<string, string>) =>
  s.request(HOST, path, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams(fields).toString(),
  });

/** The link in the one message the SMTP server received for `to` (parsed by mailparser). */
async function mailedLink(to: string, path: string): Promise<URL> {
  const got = await waitFor(() => smtp.received.find((r) => r.to.includes(to)), { what: `mail to ${to}` });
  const text = got.mail.text ?? '';
  const m = new RegExp(`(https?://\\S+${path}\\?token=[^\\s"<]+)`).exec(text);
  expect(m).not.toBeNull();
  return new URL(m![1]!);
}

describe('sign-up and invitations, with the mail received over SMTP', () => {
  test('sign-up → verification mail received → link → sign-in (refused before)', async () => {
    const r = await json('/api/v1/auth/signup', { email: 'sam@example.test', password: PW });
    expect(r.status).toBe(202);
    const before = await json('/api/v1/auth/login', { email: 'sam@example.test', password: PW });
    expect(before.status).toBe(403);
    expect(((await before.json()) as { error: { code: string } }).error.code).toBe('auth.email_unverified');
    const link = await mailedLink('sam@example.test', '/verify-email');
    const page = await s.request(HOST, link.pathname.replace(/^\/app\//, '/') + link.search);
    expect(page.status).toBe(200);
    const token = link.searchParams.get('token')!;
    expect(await page.text()).toContain(`value="${token}"`);
    const done = await form('/verify-email', { token });
    expect(done.status).toBe(200);
    expect(await done.text()).toContain('Address confirmed');
    const ok = await json('/api/v1/auth/login', { email: 'sam@example.test', password: PW });
    expect(ok.status).toBe(200);
  });

  test('an invitation accepted through the mailed link → sign-in with the new password', async () => {
    const owner = await ownerSession();
    const inv = await json('/api/v1/invitations', { email: 'ivy@example.test', role: 'member' }, owner);
    expect(inv.status).toBe(201);
    const link = await mailedLink('ivy@example.test', '/accept-invite');
    const token = link.searchParams.get('token')!;
    expect((await s.request(HOST, link.pathname.replace(/^\/app\//, '/') + link.search)).status).toBe(200);
    const done = await form('/accept-invite', { token, password: PW });
    expect(done.status).toBe(200);
    const ok = await json('/api/v1/auth/login', { email: 'ivy@example.test', password: PW });
    expect(ok.status).toBe(200);
  });
});

let ownerCreds: { email: string; password: string } | null = null;
async function ownerSession(): Promise<Record<string, string>> {
  const r = await json('/api/v1/auth/login', ownerCreds!);
  expect(r.status).toBe(200);
  const body = (await r.json()) as { csrf_token: string };
  return { cookie: (r.headers.get('set-cookie') ?? '').split(';')[0]!, 'x-csrf-token': body.csrf_token };
}
