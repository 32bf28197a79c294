import { Elysia } from 'elysia';
import {
  acceptInvitation,
  type PlatformRequestContext,
  platformGuard,
  requestPasswordReset,
  resetPassword,
  verifyEmail,
} from '../identity/index.ts';
import { AppError } from '../shared/errors.ts';
import { escapeHtml } from '../shared/html.ts';
import { htmlResponse, platformPage } from './pages.ts';

/**
 * The small server-rendered pages that emailed links open on a platform's host (until the
 * portal replaces them): `/reset-password`, `/verify-email` and `/accept-invite`. Each GET
 * shows a form (nothing is spent by opening a link, so a mail scanner's prefetch is harmless);
 * the form posts to the same path (no script: the page CSP allows none), and the answer is a
 * page again. Branded like the home page, never naming Soulfra on a white-labeled platform.
 * The token travels in the query, so these pages send no referrer and are never cached.
 */

const HEADERS = { 'referrer-policy': 'no-referrer', 'cache-control': 'no-store' };

const FORM_STYLE = `<style>form{display:grid;gap:.75rem;max-width:24rem}label{display:grid;gap:.25rem}
input{font:inherit;padding:.5rem;border:1px solid #888;border-radius:.4rem}
button{font:inherit;padding:.6rem 1rem;border:0;border-radius:.4rem;background:var(--brand-primary);color:var(--brand-on-primary);cursor:pointer}
.error{color:#b00020}</style>`;

function render(c: PlatformRequestContext, title: string, body: string, status = 200): Response {
  return htmlResponse(
    platformPage(c.blueprint(), title, `${FORM_STYLE}<h2>${escapeHtml(title)}</h2>${body}`),
    status,
    HEADERS,
  );
}

const p = (text: string, cls = '') => `<p${cls ? ` class="${cls}"` : ''}>${escapeHtml(text)}</p>`;
const hidden = (name: string, value: string) =>
  `<input type="hidden" name="${name}" value="${escapeHtml(value)}">`;
const password = (name: string, label: string) =>
  `<label>${escapeHtml(label)}<input type="password" name="${name}" minlength="12" maxlength="256" required autocomplete="new-password"></label>`;

/** A form field as text ('' when absent or not text). */
function field(body: unknown, name: string): string {
  const v = (body as Record<string, unknown> | null)?.[name];
  return typeof v === 'string' ? v : '';
}

/**
 * A form post must come from this platform's own pages: `Sec-Fetch-Site` when sent is
 * `same-origin` (or `none`), `Origin` when sent is the stored origin (never the Host header).
 */
function requireOwnForm(request: Request, c: PlatformRequestContext): void {
  const site = request.headers.get('sec-fetch-site');
  const origin = request.headers.get('origin');
  let own = site === null || site === 'same-origin' || site === 'none';
  if (own && origin !== null) {
    let sent: string | null = null;
    try {
      sent = origin === 'null' ? null : new URL(origin).origin;
    } catch {}
    own = sent === c.origin;
  }
  if (!own)
    throw new AppError(
      'auth.cross_origin',
      "these forms are accepted only from this platform's own pages",
      403,
    );
}

/** The page for a refused form: the service's message, with its status. */
function refused(c: PlatformRequestContext, title: string, e: unknown, again: string): Response {
  if (!(e instanceof AppError)) throw e;
  return render(c, title, `${p(e.message, 'error')}${again}`, e.status);
}

const ROUTE = { permission: 'public' as const };

export const accountPages = new Elysia({ name: 'account.pages' })
  .use(platformGuard)
  .get(
    '/reset-password',
    ({ query, ctx: c }) => {
      const token = typeof query.token === 'string' ? query.token : '';
      if (!token)
        return render(
          c,
          'Reset your password',
          `${p('Enter your email address and we will send you a link to choose a new password.')}
<form method="post" action="/reset-password"><label>Email<input type="email" name="email" required autocomplete="email"></label><button type="submit">Send the link</button></form>`,
        );
      return render(
        c,
        'Choose a new password',
        `<form method="post" action="/reset-password">${hidden('token', token)}${password('password', 'New password (at least 12 characters)')}<button type="submit">Set the password</button></form>`,
      );
    },
    { ...ROUTE, detail: { summary: 'The password-reset page (the emailed link opens it)', tags: ['pages'] } },
  )
  .post(
    '/reset-password',
    async ({ request, body, ctx: c }) => {
      requireOwnForm(request, c);
      const token = field(body, 'token');
      try {
        if (!token) {
          requestPasswordReset(c.app, c.db, field(body, 'email'), { ip: c.ip }, c.origin);
          return render(
            c,
            'Check your mailbox',
            p('If the account exists, a reset link is on its way.'),
            202,
          );
        }
        await resetPassword(c.app, c.db, c.platform.id, token, field(body, 'password'), { ip: c.ip });
      } catch (e) {
        return refused(
          c,
          'Reset your password',
          e,
          `<p><a href="/reset-password">Ask for a new link</a></p>`,
        );
      }
      return render(
        c,
        'Password changed',
        `${p('Your password is changed. Sign in with it now.')}<p><a href="/">Go to the home page</a></p>`,
      );
    },
    {
      ...ROUTE,
      detail: { summary: 'Ask for a reset link, or set the new password (form post)', tags: ['pages'] },
    },
  )
  .get(
    '/verify-email',
    ({ query, ctx: c }) => {
      const token = typeof query.token === 'string' ? query.token : '';
      return render(
        c,
        'Confirm your email address',
        `<form method="post" action="/verify-email">${hidden('token', token)}<button type="submit">Confirm my address</button></form>`,
      );
    },
    {
      ...ROUTE,
      detail: { summary: 'The email-confirmation page (the emailed link opens it)', tags: ['pages'] },
    },
  )
  .post(
    '/verify-email',
    ({ request, body, ctx: c }) => {
      requireOwnForm(request, c);
      try {
        verifyEmail(c.app, c.db, field(body, 'token'), { ip: c.ip });
      } catch (e) {
        return refused(c, 'Confirm your email address', e, '');
      }
      return render(
        c,
        'Address confirmed',
        `${p('Thank you: your email address is confirmed. You can sign in now.')}<p><a href="/">Go to the home page</a></p>`,
      );
    },
    { ...ROUTE, detail: { summary: 'Confirm the email address (form post)', tags: ['pages'] } },
  )
  .get(
    '/accept-invite',
    ({ query, ctx: c }) => {
      const token = typeof query.token === 'string' ? query.token : '';
      return render(
        c,
        `Join ${c.platform.name}`,
        `${p('Choose a password to accept the invitation.')}<form method="post" action="/accept-invite">${hidden('token', token)}<label>Your name<input type="text" name="name" maxlength="200" autocomplete="name"></label>${password('password', 'Password (at least 12 characters)')}<button type="submit">Accept the invitation</button></form>`,
      );
    },
    { ...ROUTE, detail: { summary: 'The invitation page (the emailed link opens it)', tags: ['pages'] } },
  )
  .post(
    '/accept-invite',
    async ({ request, body, ctx: c }) => {
      requireOwnForm(request, c);
      try {
        const name = field(body, 'name');
        await acceptInvitation(
          c.app,
          c.db,
          c.platform.id,
          { token: field(body, 'token'), password: field(body, 'password'), ...(name ? { name } : {}) },
          { ip: c.ip },
        );
      } catch (e) {
        return refused(c, `Join ${c.platform.name}`, e, '');
      }
      return render(
        c,
        'Welcome',
        `${p(`You have joined ${c.platform.name}. Sign in with your email and new password.`)}<p><a href="/">Go to the home page</a></p>`,
      );
    },
    { ...ROUTE, detail: { summary: 'Accept an invitation (form post)', tags: ['pages'] } },
  );
