/** One field at fault: a JSON Pointer into the input and what is wrong with it. */
export interface ErrorDetail {
  path: string;
  reason: string;
}

/**
 * An error meant for a client: a dotted machine code (`platform.slug_taken`), a message a person
 * can act on, the HTTP status it maps to, and, when fields are at fault, one detail per field.
 * Services throw these; `server/` renders them as problem JSON and `cli/` as exit codes.
 */
export class AppError extends Error {
  readonly code: string;
  readonly status: number;
  readonly details: ErrorDetail[] | undefined;
  /** Seconds the client should wait before trying again (429, 503): sent as Retry-After. */
  retryAfter: number | undefined;
  /**
   * Fields the client acts on beside the message, sent in `error` (e.g. a 402's
   * `checkout_url`). Never a secret.
   */
  extra: Record<string, string | number | boolean> | undefined;

  constructor(code: string, message: string, status = 400, details?: ErrorDetail[]) {
    super(message);
    this.name = 'AppError';
    this.code = code;
    this.status = status;
    this.details = details;
  }

  /** The wire shape of the contract: `{ error: { code, message, details? } }`. */
  toJSON(): { error: { code: string; message: string; details?: ErrorDetail[] } } {
    return {
      error: {
        ...this.extra,
        code: this.code,
        message: this.message,
        ...(this.details?.length ? { details: this.details } : {}),
      },
    };
  }

  /** This error with client-facing fields beside the message (see `extra`). */
  with(extra: Record<string, string | number | boolean>): this {
    this.extra = { ...this.extra, ...extra };
    return this;
  }
}

/** Whether a value is an AppError (also across module copies, by shape). */
export function isAppError(e: unknown): e is AppError {
  return (
    e instanceof AppError ||
    (typeof e === 'object' &&
      e !== null &&
      (e as { name?: unknown }).name === 'AppError' &&
      typeof (e as { code?: unknown }).code === 'string')
  );
}

/** Wraps an unexpected error with context, keeping the cause (Litestream style). */
export function wrapError(context: string, cause: unknown): Error {
  const msg = cause instanceof Error ? cause.message : String(cause);
  return new Error(`${context}: ${msg}`, { cause });
}
