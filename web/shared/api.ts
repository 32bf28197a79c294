/**
 * The one way the web apps call the server: JSON in and out, the session cookie sent by the
 * browser, the CSRF token on every write, and the contract's error shape turned into an
 * `ApiError` that names the code, the message and the fields at fault.
 */

export interface ErrorDetail {
  path: string;
  reason: string;
}

/** A failed API call: the server's dotted code, its message and the fields at fault. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly details: ErrorDetail[] = [],
    /** Fields the server sent beside the message for the client to act on (a 402's `checkout_url`). */
    readonly extra: Record<string, string> = {},
  ) {
    super(message);
  }
  /** The reason given for one field (`/email` or `email`), if the server named it. */
  field(name: string): string | undefined {
    const want = name.startsWith('/') ? name : `/${name}`;
    return this.details.find((d) => d.path === want || d.path === name)?.reason;
  }
}

let csrfToken: string | null = null;

/** The CSRF token from sign-in or from `/me`; sent as `x-csrf-token` on every write. */
export function setCsrf(token: string | null | undefined): void {
  csrfToken = token ?? null;
}

export interface CallOptions {
  signal?: AbortSignal;
  headers?: Record<string, string>;
  /** A raw body (a file upload) instead of JSON. */
  raw?: BodyInit;
}

/** The request a call makes (shared by `api` and the streaming helpers). */
export function requestInit(method: string, body: unknown, o: CallOptions = {}): RequestInit {
  const headers: Record<string, string> = { accept: 'application/json', ...o.headers };
  if (method !== 'GET' && method !== 'HEAD' && csrfToken) headers['x-csrf-token'] = csrfToken;
  let payload: BodyInit | undefined;
  if (o.raw !== undefined) payload = o.raw;
  else if (body !== undefined) {
    headers['content-type'] = 'application/json';
    payload = JSON.stringify(body);
  }
  return { method, headers, body: payload, credentials: 'same-origin', signal: o.signal };
}

/** Reads a failed response as an ApiError (the contract's `{ error: { code, message, details } }`). */
export async function errorOf(res: Response): Promise<ApiError> {
  let code = `http.${res.status}`;
  let message = res.statusText || `the server answered ${res.status}`;
  let details: ErrorDetail[] = [];
  const extra: Record<string, string> = {};
  try {
    const j = (await res.json()) as {
      error?: { code?: string; message?: string; details?: ErrorDetail[] } & Record<string, unknown>;
    };
    if (j.error) {
      code = j.error.code ?? code;
      message = j.error.message ?? message;
      details = j.error.details ?? [];
      for (const [k, v] of Object.entries(j.error))
        if (!['code', 'message', 'details'].includes(k) && typeof v === 'string') extra[k] = v;
    }
  } catch {
    // Not JSON: keep the status line.
  }
  return new ApiError(res.status, code, message, details, extra);
}

/** One JSON call. Resolves with the parsed body (undefined for 204); rejects with ApiError. */
export async function api<T = unknown>(
  method: string,
  path: string,
  body?: unknown,
  o?: CallOptions,
): Promise<T> {
  let res: Response;
  try {
    res = await fetch(path, requestInit(method, body, o));
  } catch (e) {
    if ((e as Error).name === 'AbortError') throw e;
    throw new ApiError(0, 'network.unreachable', 'the server could not be reached; check your connection');
  }
  if (!res.ok) throw await errorOf(res);
  if (res.status === 204) return undefined as T;
  const type = res.headers.get('content-type') ?? '';
  return (type.includes('json') ? await res.json() : await res.text()) as T;
}

/** One server-sent event. */
export interface SseEvent {
  event: string;
  data: string;
}

/**
 * Reads a `text/event-stream` body event by event as it arrives (no buffering of the whole
 * answer), so a chat paints each token when the server flushes it.
 */
export async function* readSse(res: Response): AsyncGenerator<SseEvent> {
  if (!res.body) return;
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
  let buf = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buf += value;
    let cut = buf.indexOf('\n\n');
    while (cut >= 0) {
      const block = buf.slice(0, cut);
      buf = buf.slice(cut + 2);
      let event = 'message';
      const data: string[] = [];
      for (const line of block.split('\n')) {
        if (line.startsWith('event:')) event = line.slice(6).trim();
        else if (line.startsWith('data:')) data.push(line.slice(5).replace(/^ /, ''));
      }
      if (data.length) yield { event, data: data.join('\n') };
      cut = buf.indexOf('\n\n');
    }
  }
}
