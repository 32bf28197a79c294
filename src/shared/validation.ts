/**
 * The one mapper from TypeBox validation errors to the contract's error details: one detail per
 * field at fault (a JSON Pointer path and a reason a person can act on), the most specific error
 * of each path kept, "did you mean" for an unknown key close to a known one, sorted by path.
 * Used for request bodies, queries and params (server/errors.ts), blueprints, the config file
 * and identity settings.
 *
 * Two keywords of our own may sit on a schema: `errorMessage` (the reason to give instead of
 * the generic one) and `errorCode` (the error code a failure of that schema answers with, for
 * routes whose codes predate their schemas, e.g. `user.status_invalid`).
 */
import type { TSchema } from '@sinclair/typebox';
import { type ValueError, ValueErrorType } from '@sinclair/typebox/value';
import type { ErrorDetail } from './errors.ts';

/** Short, readable rendering of a value inside a reason. */
export function show(value: unknown): string {
  if (typeof value === 'string') return `'${value.length > 40 ? `${value.slice(0, 40)}…` : value}'`;
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  return typeof value === 'object' ? 'an object' : typeof value;
}

/** Levenshtein distance, for "did you mean" hints on unknown fields. */
export function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      cur[j] = Math.min((prev[j] ?? 0) + 1, (cur[j - 1] ?? 0) + 1, (prev[j - 1] ?? 0) + cost);
    }
    prev = cur;
  }
  return prev[b.length] ?? 0;
}

/** The known key closest to an unknown one, if it is close enough to be a typo. */
export function closestKey(unknownKey: string, known: string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = Number.POSITIVE_INFINITY;
  for (const key of known) {
    const d = editDistance(unknownKey.toLowerCase(), key);
    if (d < bestDistance) {
      best = key;
      bestDistance = d;
    }
  }
  return bestDistance <= Math.max(2, Math.floor(unknownKey.length / 4)) ? best : undefined;
}

/** The allowed values when a schema is a union of literals (an enum), else undefined. */
function enumValues(schema: TSchema): unknown[] | undefined {
  const anyOf = (schema as { anyOf?: TSchema[] }).anyOf;
  if (!Array.isArray(anyOf) || !anyOf.every((s) => 'const' in s)) return undefined;
  return anyOf.map((s) => s.const);
}

const TYPE_NAMES: Partial<Record<ValueErrorType, string>> = {
  [ValueErrorType.String]: 'a string',
  [ValueErrorType.Number]: 'a number',
  [ValueErrorType.Integer]: 'an integer',
  [ValueErrorType.Boolean]: 'true or false',
  [ValueErrorType.Object]: 'an object',
  [ValueErrorType.Array]: 'an array',
};

/** How specific an error is; for one path the lowest rank wins. */
function rank(type: ValueErrorType): number {
  switch (type) {
    case ValueErrorType.ObjectRequiredProperty:
      return 0;
    case ValueErrorType.ObjectAdditionalProperties:
      return 1;
    case ValueErrorType.Union:
    case ValueErrorType.Literal:
      return 2;
    default:
      return TYPE_NAMES[type] ? 3 : 4;
  }
}

/** What to say when a field is null; `nullHint` is appended (e.g. how to keep a default). */
export interface ReasonOptions {
  nullHint?: string;
}

/** Turns one TypeBox error into a reason a person can act on. */
export function reasonFor(error: ValueError, options: ReasonOptions = {}): string {
  const schema = error.schema as TSchema & Record<string, unknown>;
  const value = error.value;
  switch (error.type) {
    case ValueErrorType.ObjectRequiredProperty:
      return 'is required';
    case ValueErrorType.ObjectAdditionalProperties: {
      const key = error.path
        .slice(error.path.lastIndexOf('/') + 1)
        .replace(/~1/g, '/')
        .replace(/~0/g, '~');
      const properties = (schema as { properties?: Record<string, unknown> }).properties ?? {};
      const hint = closestKey(key, Object.keys(properties));
      return hint ? `unknown field (did you mean '${hint}'?)` : 'unknown field';
    }
  }
  if (value === null && error.type !== ValueErrorType.Null) {
    const expected = enumValues(schema) ? 'one of the allowed values' : (TYPE_NAMES[error.type] ?? 'a value');
    return `must be ${expected}, not null${options.nullHint ? ` (${options.nullHint})` : ''}`;
  }
  if (typeof schema.errorMessage === 'string') return schema.errorMessage;
  switch (error.type) {
    case ValueErrorType.Union: {
      const values = enumValues(schema);
      return values ? `must be one of: ${values.join(', ')}` : 'does not match any allowed shape';
    }
    case ValueErrorType.Literal:
      return `must be ${JSON.stringify(schema.const)}`;
    case ValueErrorType.StringMinLength:
      return schema.minLength === 1 ? 'must not be empty' : `must be at least ${schema.minLength} characters`;
    case ValueErrorType.StringMaxLength:
      return `must be at most ${schema.maxLength} characters`;
    case ValueErrorType.StringPattern:
      return `must match the pattern ${schema.pattern}`;
    case ValueErrorType.StringFormat:
      return `must be a valid ${String(schema.format)}`;
    case ValueErrorType.NumberMinimum:
    case ValueErrorType.IntegerMinimum:
      return `must be at least ${schema.minimum}, got ${show(value)}`;
    case ValueErrorType.NumberMaximum:
    case ValueErrorType.IntegerMaximum:
      return `must be at most ${schema.maximum}, got ${show(value)}`;
    case ValueErrorType.ArrayMaxItems:
      return `must have at most ${schema.maxItems} items`;
    case ValueErrorType.ArrayMinItems:
      return `must have at least ${schema.minItems} items`;
  }
  const expected = TYPE_NAMES[error.type];
  return expected ? `must be ${expected}, got ${show(value)}` : error.message;
}

/** Compares JSON Pointers segment by segment, numbers numerically, so `/tiers/2` sorts before `/tiers/10`. */
export function comparePaths(a: string, b: string): number {
  const as = a.split('/');
  const bs = b.split('/');
  for (let i = 0; i < Math.min(as.length, bs.length); i++) {
    const x = as[i] ?? '';
    const y = bs[i] ?? '';
    if (x === y) continue;
    if (/^\d+$/.test(x) && /^\d+$/.test(y)) return Number(x) - Number(y);
    return x < y ? -1 : 1;
  }
  return as.length - bs.length;
}

/** Options of `validationDetails`. */
export interface DetailOptions extends ReasonOptions {
  /** Errors to leave out (e.g. uniqueness, reported by the caller's own rules). */
  skip?: (error: ValueError) => boolean;
  /** Details of the caller's own cross-field rules; kept where the schema found nothing. */
  extra?: ErrorDetail[];
}

/** The result of `validationDetails`: the details, and the `errorCode` of the first, if any. */
export interface Mapped {
  details: ErrorDetail[];
  /** The `errorCode` keyword of the schema behind the first detail (by path order). */
  code: string | undefined;
}

/**
 * Maps TypeBox errors (from `TypeCheck.Errors`, `Value.Errors` or Elysia's ValidationError)
 * to one detail per path, the most specific error of each path kept, sorted by path.
 */
export function validationDetails(errors: Iterable<ValueError>, options: DetailOptions = {}): Mapped {
  const best = new Map<string, { rank: number; reason: string; code: string | undefined }>();
  for (const error of errors) {
    if (options.skip?.(error)) continue;
    const r = rank(error.type);
    const current = best.get(error.path);
    if (!current || r < current.rank) {
      const code = (error.schema as { errorCode?: unknown }).errorCode;
      best.set(error.path, {
        rank: r,
        reason: reasonFor(error, options),
        code: typeof code === 'string' ? code : undefined,
      });
    }
  }
  for (const detail of options.extra ?? []) {
    if (!best.has(detail.path)) best.set(detail.path, { rank: 5, reason: detail.reason, code: undefined });
  }
  const sorted = [...best.entries()].sort((a, b) => comparePaths(a[0], b[0]));
  return {
    details: sorted.map(([path, { reason }]) => ({ path, reason })),
    code: sorted.find(([, v]) => v.code !== undefined)?.[1].code,
  };
}

/** `what has N invalid field(s): /a (reason); /b (reason); and 2 more`: the first few named. */
export function invalidFieldsMessage(what: string, details: ErrorDetail[]): string {
  const shown = details.slice(0, 3).map((d) => `${d.path || '/'} (${d.reason})`);
  const more = details.length > 3 ? `; and ${details.length - 3} more` : '';
  return `${what} has ${details.length} invalid field(s): ${shown.join('; ')}${more}`;
}
