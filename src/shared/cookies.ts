import { AppError } from './errors.ts';

/**
 * Every Set-Cookie this server sends is built here: the session cookies (platform and operator
 * console), the OIDC and SAML sign-in cookies. One shape, in one attribute order:
 * `name=value; Path=…; HttpOnly; SameSite=…; Max-Age=…; Secure`.
 *
 * `secure` is the caller's "this origin is https" (its public URL): under https every cookie
 * carries `Secure`, and `SameSite=None` is refused without it (browsers drop such a cookie).
 */
export interface CookieOptions {
  path: string;
  /** Seconds; 0 (with an empty value) removes the cookie. */
  maxAgeSec: number;
  /** Default true: none of our cookies is for scripts. */
  httpOnly?: boolean;
  sameSite: 'Lax' | 'Strict' | 'None';
  secure: boolean;
}

/** RFC 6265 cookie-name (an RFC 9110 token). */
const NAME = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
/** RFC 6265 cookie-octets: no controls, whitespace, DQUOTE, comma, semicolon or backslash. */
const VALUE = /^[\x21\x23-\x2b\x2d-\x3a\x3c-\x5b\x5d-\x7e]*$/;
/** A path attribute: no controls and no semicolon. */
const PATH = /^\/[\x20-\x3a\x3c-\x7e]*$/;

/** The Set-Cookie header value for one cookie. */
export function setCookie(name: string, value: string, o: CookieOptions): string {
  if (!NAME.test(name) || !VALUE.test(value) || !PATH.test(o.path) || !Number.isInteger(o.maxAgeSec)) {
    throw new AppError(
      'internal.cookie_invalid',
      `cookie ${JSON.stringify(name)} cannot be written as given`,
      500,
    );
  }
  if (o.sameSite === 'None' && !o.secure) {
    throw new AppError('internal.cookie_invalid', `cookie ${name}: SameSite=None needs Secure`, 500);
  }
  return `${name}=${value}; Path=${o.path}${o.httpOnly === false ? '' : '; HttpOnly'}; SameSite=${o.sameSite}; Max-Age=${o.maxAgeSec}${o.secure ? '; Secure' : ''}`;
}

/** The Set-Cookie value that removes a cookie set with the same name and path. */
export function clearCookie(name: string, o: Omit<CookieOptions, 'maxAgeSec'>): string {
  return setCookie(name, '', { ...o, maxAgeSec: 0 });
}

/** A cookie's value from a Cookie header. */
export function readCookie(header: string | null, name: string): string | null {
  if (!header) return null;
  for (const part of header.split(';')) {
    const i = part.indexOf('=');
    if (i > 0 && part.slice(0, i).trim() === name) return part.slice(i + 1).trim();
  }
  return null;
}
