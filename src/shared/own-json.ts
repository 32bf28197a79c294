import { AppError } from './errors.ts';

/**
 * A sign-in or account request must be JSON sent by the site's own pages: anything else (a form
 * another site posts, a `text/plain` simple request: login CSRF) is 415; a cross-site fetch
 * (`Sec-Fetch-Site`, or an `Origin` that is not `ownOrigin`, the stored public origin — never the
 * request's Host header) is 403 `auth.cross_origin` with `refusal` as its message. Used by a
 * platform's sign-in and account routes and by the console's sign-in.
 */
export function assertOwnJson(request: Request, ownOrigin: string, refusal: string): void {
  const type = (request.headers.get('content-type') ?? '').split(';')[0]!.trim().toLowerCase();
  if (type !== 'application/json') {
    throw new AppError(
      'request.unsupported_media_type',
      'this route takes a JSON body (application/json)',
      415,
      [{ path: '', reason: 'content-type must be application/json' }],
    );
  }
  const site = request.headers.get('sec-fetch-site');
  const origin = request.headers.get('origin');
  let own = site === null || site === 'same-origin' || site === 'none';
  if (own && origin !== null) {
    let sent: string | null = null;
    try {
      sent = origin === 'null' ? null : new URL(origin).origin;
    } catch {}
    own = sent !== null && sent === ownOrigin;
  }
  if (!own) throw new AppError('auth.cross_origin', refusal, 403);
}
