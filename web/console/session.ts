import { signal } from '@preact/signals';
import { ApiError, api, setCsrf } from '../shared/api.ts';

/** The signed-in operator of the console, from `GET /_operator/api/me`. */
export interface OperatorMe {
  actor: string;
  operator_id: string | null;
  role: 'operator_admin' | 'operator_viewer';
  csrf_token: string | null;
}

/** undefined: not asked yet; null: signed out. */
export const operator = signal<OperatorMe | null | undefined>(undefined);

/** The console's API (every call is same-origin JSON; writes carry the CSRF token). */
export const op = <T = unknown>(method: string, path: string, body?: unknown) =>
  api<T>(method, `/_operator/api${path}`, body);

export async function loadOperator(): Promise<OperatorMe | null> {
  try {
    const m = await op<OperatorMe>('GET', '/me');
    setCsrf(m.csrf_token);
    operator.value = m;
    return m;
  } catch (e) {
    if (e instanceof ApiError && (e.status === 401 || e.status === 403)) {
      operator.value = null;
      return null;
    }
    throw e;
  }
}

export async function signOutOperator(): Promise<void> {
  await op('POST', '/logout').catch(() => undefined);
  setCsrf(null);
  operator.value = null;
}

export const isOperatorAdmin = () => operator.value?.role === 'operator_admin';
