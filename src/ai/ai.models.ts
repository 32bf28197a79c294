import { type Static, Type as t } from '@sinclair/typebox';
import { TypeCompiler } from '@sinclair/typebox/compiler';
import { AppError } from '../shared/errors.ts';
import type { ChatRequest } from './provider.ts';
import type { BudgetSpec } from './usage.models.ts';

/*
 * The AI routes' request shapes, as TypeBox schemas (compiled once at load): the body of
 * /v1/chat/completions and /v1/embeddings (OpenAI's shapes, as lenient as OpenAI where we pass
 * fields on unchecked), the budget body, the usage query and the budget id. Each `parse*`
 * checks with the compiled schema and, when the check fails, names the first bad field with the
 * error code, message and detail the contract pins (a ranked choice among the schema's errors,
 * in the order the fields are read).
 */

const ROLE_NAMES = ['system', 'user', 'assistant', 'tool', 'developer'] as const;

/** A field passed on to the provider as sent: not checked here (the provider answers for it). */
const PassedOn = (description: string) => t.Optional(t.Unknown({ description }));

/** One message of a chat. Content parts are passed on as sent. */
export const ChatMessageModel = t.Object(
  {
    role: t.Union(
      ROLE_NAMES.map((r) => t.Literal(r)),
      { description: 'Who wrote the message.' },
    ),
    content: t.Optional(
      t.Union([t.String(), t.Null(), t.Array(t.Unknown())], {
        description: 'Text, a list of content parts (`{type, text?, ...}`), or null.',
      }),
    ),
    name: PassedOn('A name for the author.'),
    tool_calls: PassedOn('Tool calls an assistant message made.'),
    tool_call_id: PassedOn('The tool call a tool message answers.'),
  },
  { additionalProperties: true, description: 'A chat message (OpenAI shape).' },
);

/** A token maximum: a whole number from 1 to 10,000,000 (a budget reserves this many), or null. */
const MaxTokens = (description: string) =>
  t.Optional(t.Union([t.Null(), t.Integer({ minimum: 1, maximum: 10_000_000 })], { description }));

/** The body of POST /v1/chat/completions (OpenAI's Chat Completions request). */
export const ChatCompletionBody = t.Object(
  {
    model: t.String({
      minLength: 1,
      description: 'A model alias from GET /v1/models, or `provider/model`.',
    }),
    messages: t.Array(ChatMessageModel, { minItems: 1, description: 'The conversation so far.' }),
    n: t.Optional(t.Literal(1, { description: 'Choices to generate; only 1 is supported.' })),
    max_tokens: MaxTokens('Most completion tokens to generate.'),
    max_completion_tokens: MaxTokens('Same as max_tokens (the newer name); max_tokens wins.'),
    stream: PassedOn('true: answer as server-sent events; anything else: one JSON answer.'),
    stream_options: PassedOn('`{include_usage: true}`: a last chunk carries the usage.'),
    temperature: PassedOn('Sampling temperature.'),
    top_p: PassedOn('Nucleus sampling.'),
    stop: PassedOn('Stop sequences.'),
    tools: PassedOn('Tools the model may call (OpenAI function tools).'),
    tool_choice: PassedOn('Which tool the model must call, if any.'),
    response_format: PassedOn('The answer format (e.g. JSON).'),
    seed: PassedOn('A seed for repeatable sampling, where the provider supports it.'),
    user: PassedOn("The end user's id, passed on to the provider."),
  },
  { additionalProperties: true, description: 'A chat completion request (OpenAI shape).' },
);
export type ChatCompletionBody = Static<typeof ChatCompletionBody>;

/** The body of POST /v1/embeddings (OpenAI's Embeddings request). */
export const EmbeddingsBody = t.Object(
  {
    // NB! The model is checked when it is routed, after the input's safety checks (the order
    // clients see errors in).
    model: t.Optional(
      t.Unknown({ description: 'A model alias from GET /v1/models, or `provider/model` (required).' }),
    ),
    input: t.Union([t.String(), t.Array(t.String(), { minItems: 1 })], {
      description: 'A text, or a non-empty list of texts.',
    }),
    encoding_format: t.Optional(
      t.Union([t.Literal('float'), t.Literal('base64')], {
        description: 'Vectors as numbers (default) or as base64 of little-endian float32.',
      }),
    ),
  },
  { additionalProperties: true, description: 'An embeddings request (OpenAI shape).' },
);

/** The body of PUT /api/v1/ai/budgets. */
export const BudgetBody = t.Object(
  {
    scope: t.Union([t.Literal('platform'), t.Literal('user'), t.Literal('key')], {
      description: 'What the budget caps: the whole platform, one user, or one API key.',
    }),
    subject: t.Optional(
      t.String({ minLength: 1, description: 'The user or key id (required unless scope is platform).' }),
    ),
    period: t.Union([t.Literal('day'), t.Literal('month')], { description: 'The budget period (UTC).' }),
    limit_minor: t.Integer({ minimum: 0, description: 'The limit in minor units of the currency.' }),
    currency: t.String({ pattern: '^[a-z]{3}$', description: 'ISO 4217 currency code, lowercase.' }),
    alert_percent: t.Optional(
      t.Integer({ minimum: 1, maximum: 100, description: 'Alert at this share of the limit (default 80).' }),
    ),
  },
  { additionalProperties: true, description: 'An AI budget.' },
);

/** The query of GET /api/v1/ai/usage. */
export const UsageQuery = t.Object(
  {
    from: t.Optional(t.String({ description: 'ISO-8601 start (default: the start of this month, UTC).' })),
    to: t.Optional(t.String({ description: 'ISO-8601 end, exclusive (default: now).' })),
  },
  { additionalProperties: true },
);

/** The params of DELETE /api/v1/ai/budgets/:id. */
export const BudgetParams = t.Object({ id: t.String({ description: 'The budget id.' }) });

const chatCheck = TypeCompiler.Compile(ChatCompletionBody);
const embeddingsCheck = TypeCompiler.Compile(EmbeddingsBody);
const budgetCheck = TypeCompiler.Compile(BudgetBody);

/** A checked chat body, ready for the service. */
export interface ChatInput {
  model: string;
  /** OpenAI's request without `model`; `max_tokens` is the first of max_tokens and max_completion_tokens. */
  req: Omit<ChatRequest, 'model'>;
  stream: boolean;
  includeUsage: boolean;
}

/** The request fields passed on to providers as sent (besides messages and max_tokens). */
const PASSED_THROUGH = [
  'temperature',
  'top_p',
  'stop',
  'tools',
  'tool_choice',
  'response_format',
  'seed',
  'user',
] as const satisfies readonly (keyof ChatRequest)[];

const invalid = (message: string, path: string, reason: string) =>
  new AppError('ai.invalid_request', message, 400, [{ path, reason }]);

/**
 * The error for the first bad field of a chat body, in the order they are read: the body,
 * model, messages, each message's role then content, n, max_tokens, max_completion_tokens.
 */
function chatError(body: unknown): AppError {
  let best: { rank: number; path: string } | null = null;
  for (const e of chatCheck.Errors(body)) {
    const rank = chatRank(e.path);
    if (!best || rank < best.rank) best = { rank, path: e.path };
  }
  const path = best?.path ?? '';
  const seg = path.split('/');
  if (path === '') return invalid('the body must be a JSON object', '', 'must be an object');
  if (path === '/model') return invalid('model is required', '/model', 'required');
  if (path === '/messages')
    return invalid('messages must be a non-empty array', '/messages', 'must be a non-empty array');
  if (seg[1] === 'messages') {
    const i = seg[2]!;
    return seg[3] === 'content'
      ? invalid(
          `messages[${i}].content must be text, parts or null`,
          `/messages/${i}/content`,
          'invalid content',
        )
      : invalid(
          `messages[${i}].role must be one of: ${ROLE_NAMES.join(', ')}`,
          `/messages/${i}/role`,
          'invalid role',
        );
  }
  if (path === '/n') return invalid('only n = 1 is supported', '/n', 'must be 1');
  const k = seg[1]!;
  return invalid(`${k} must be a whole number from 1 to 10,000,000`, `/${k}`, 'an integer ≥ 1');
}

/** Where a chat body error comes in reading order (messages: by index, role before content). */
function chatRank(path: string): number {
  if (path === '') return 0;
  if (path === '/model') return 1;
  if (path === '/messages') return 2;
  if (path.startsWith('/messages/')) {
    const seg = path.split('/');
    return 3 + Number(seg[2]) * 2 + (seg[3] === 'content' ? 1 : 0);
  }
  // After every message: n, then the two maxima.
  const tail = path === '/n' ? 0 : path === '/max_tokens' ? 1 : 2;
  return Number.MAX_SAFE_INTEGER - 2 + tail;
}

/** Checks a chat body (400 `ai.invalid_request` naming the field, as OpenAI's `param`). */
export function parseChatBody(body: unknown): ChatInput {
  if (!chatCheck.Check(body)) throw chatError(body);
  const b = body as ChatCompletionBody & Record<string, unknown>;
  const req: Record<string, unknown> = { messages: b.messages };
  for (const k of PASSED_THROUGH) if (b[k] !== undefined) req[k] = b[k];
  const maxTokens = b.max_tokens ?? b.max_completion_tokens;
  if (typeof maxTokens === 'number') req.max_tokens = maxTokens;
  return {
    model: b.model,
    stream: b.stream === true,
    includeUsage: Boolean((b.stream_options as { include_usage?: boolean } | undefined)?.include_usage),
    req: req as unknown as Omit<ChatRequest, 'model'>,
  };
}

/** A checked embeddings body. */
export interface EmbeddingsInput {
  model: unknown;
  input: string[];
  base64: boolean;
}

/** Checks an embeddings body (400 `ai.invalid_request` naming input or encoding_format). */
export function parseEmbeddingsBody(body: unknown): EmbeddingsInput {
  if (!embeddingsCheck.Check(body)) {
    for (const e of embeddingsCheck.Errors(body)) {
      if (e.path === '/encoding_format') continue;
      throw invalid('input must be a string or a non-empty array of strings', '/input', 'must be text');
    }
    throw invalid('encoding_format must be float or base64', '/encoding_format', 'float or base64');
  }
  const b = body as Static<typeof EmbeddingsBody>;
  return {
    model: b.model,
    input: typeof b.input === 'string' ? [b.input] : b.input,
    base64: b.encoding_format === 'base64',
  };
}

/** A checked budget. */
export type BudgetInput = BudgetSpec;

/** Each budget field with the reason its error gives, in reading order. */
const BUDGET_FIELDS: readonly (readonly [string, string])[] = [
  ['/scope', 'platform, user or key'],
  ['/subject', 'the user or key id'],
  ['/period', 'day or month'],
  ['/limit_minor', 'an integer ≥ 0 (minor units)'],
  ['/currency', 'ISO 4217, lowercase'],
  ['/alert_percent', '1 to 100'],
];

/** Checks a budget body (400 `ai.budget_invalid` naming every bad field). */
export function parseBudgetBody(body: unknown): BudgetInput {
  // Anything that is not an object is read as an empty one: every required field is missing.
  const b = (body && typeof body === 'object' && !Array.isArray(body) ? body : {}) as Record<string, unknown>;
  const bad = new Set<string>();
  if (!budgetCheck.Check(b)) for (const e of budgetCheck.Errors(b)) bad.add(`/${e.path.split('/')[1] ?? ''}`);
  // The subject is needed (and read) only for a user or key budget.
  const needsSubject = b.scope !== 'platform';
  if (!needsSubject) bad.delete('/subject');
  else if (b.subject === undefined) bad.add('/subject');
  if (bad.size === 0) {
    return {
      scope: b.scope as BudgetInput['scope'],
      subject: needsSubject ? (b.subject as string) : '',
      period: b.period as BudgetInput['period'],
      limit_minor: b.limit_minor as number,
      currency: b.currency as string,
      alert_percent: (b.alert_percent as number | undefined) ?? 80,
    };
  }
  const details = BUDGET_FIELDS.filter(([p]) => bad.has(p)).map(([path, reason]) => ({ path, reason }));
  throw new AppError(
    'ai.budget_invalid',
    `invalid budget: ${details.map((d) => d.path).join(', ')}`,
    400,
    details,
  );
}

/** Reads the usage query's times (400 `ai.invalid_request` naming from or to when one is not a time). */
export function parseUsageQuery(query: Record<string, unknown>): { from?: number; to?: number } {
  const from = query.from ? Date.parse(String(query.from)) : undefined;
  const to = query.to ? Date.parse(String(query.to)) : undefined;
  if (Number.isNaN(from) || Number.isNaN(to)) {
    throw new AppError('ai.invalid_request', 'from and to must be ISO-8601 times', 400, [
      { path: Number.isNaN(from) ? '/from' : '/to', reason: 'not a time' },
    ]);
  }
  if (from !== undefined && to !== undefined && from > to) {
    throw new AppError(
      'ai.usage_from_after_to',
      `from (${String(query.from)}) is after to (${String(query.to)})`,
      400,
      [{ path: '/from', reason: 'must not be after /to' }],
    );
  }
  return { from, to };
}
