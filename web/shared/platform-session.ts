import { signal } from '@preact/signals';
import { ApiError, api, setCsrf } from './api.ts';

/** The signed-in user of a platform page (portal and admin), from `GET /api/v1/me`. */
export interface Me {
  user: { id: string; email: string; name: string | null; role: string; mfa_enabled?: boolean } | null;
  role: string | null;
  permissions: string[];
  csrf_token?: string;
}

/** undefined: not asked yet; null: signed out. */
export const me = signal<Me | null | undefined>(undefined);

export async function loadMe(): Promise<Me | null> {
  try {
    const m = await api<Me>('GET', '/api/v1/me');
    setCsrf(m.csrf_token);
    me.value = m;
    return m;
  } catch (e) {
    if (e instanceof ApiError && e.status === 401) {
      me.value = null;
      return null;
    }
    throw e;
  }
}

export async function signOut(): Promise<void> {
  await api('POST', '/api/v1/auth/logout').catch(() => undefined);
  setCsrf(null);
  me.value = null;
}

/** Whether the user may run the platform admin. */
export const isAdmin = (m: Me | null | undefined) => !!m?.permissions.includes('settings:write');

/** A same-origin path to go to after sign-in (no open redirect: other origins and `//x` are refused). */
export function safeNext(next: string | null, fallback: string): string {
  if (!next?.startsWith('/') || next.startsWith('//') || next.startsWith('/\\')) return fallback;
  try {
    const u = new URL(next, location.origin);
    return u.origin === location.origin ? u.pathname + u.search : fallback;
  } catch {
    return fallback;
  }
}
