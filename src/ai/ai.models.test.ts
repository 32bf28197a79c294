import { describe, expect, test } from 'bun:test';
import { AppError } from '../shared/errors.ts';
import { parseBudgetBody, parseChatBody, parseEmbeddingsBody, parseUsageQuery } from './ai.models.ts';

// The schemas replace hand-written checks whose codes, messages and details the contract pins.
// The hand checks as they were (before the schemas) are kept here as the oracle: every body of
// a combinatorial table must get the same answer, field for field, from both.

const ROLES = new Set(['system', 'user', 'assistant', 'tool', 'developer']);
const PASSED_THROUGH = [
  'temperature',
  'top_p',
  'stop',
  'tools',
  'tool_choice',
  'response_format',
  'seed',
  'user',
];

function legacyChat(body: unknown) {
  if (!body || typeof body !== 'object' || Array.isArray(body))
    throw new AppError('ai.invalid_request', 'the body must be a JSON object', 400, [
      { path: '', reason: 'must be an object' },
    ]);
  const b = body as Record<string, unknown>;
  if (typeof b.model !== 'string' || !b.model)
    throw new AppError('ai.invalid_request', 'model is required', 400, [
      { path: '/model', reason: 'required' },
    ]);
  if (!Array.isArray(b.messages) || b.messages.length === 0) {
    throw new AppError('ai.invalid_request', 'messages must be a non-empty array', 400, [
      { path: '/messages', reason: 'must be a non-empty array' },
    ]);
  }
  b.messages.forEach((m, i) => {
    const msg = m as Record<string, unknown>;
    if (!msg || typeof msg !== 'object' || !ROLES.has(msg.role as string)) {
      throw new AppError(
        'ai.invalid_request',
        `messages[${i}].role must be one of: ${[...ROLES].join(', ')}`,
        400,
        [{ path: `/messages/${i}/role`, reason: 'invalid role' }],
      );
    }
    const c = msg.content;
    if (!(typeof c === 'string' || c === null || c === undefined || Array.isArray(c))) {
      throw new AppError('ai.invalid_request', `messages[${i}].content must be text, parts or null`, 400, [
        { path: `/messages/${i}/content`, reason: 'invalid content' },
      ]);
    }
  });
  if (b.n !== undefined && b.n !== 1)
    throw new AppError('ai.invalid_request', 'only n = 1 is supported', 400, [
      { path: '/n', reason: 'must be 1' },
    ]);
  const req: Record<string, unknown> = { messages: b.messages };
  for (const k of PASSED_THROUGH) if (b[k] !== undefined) req[k] = b[k];
  for (const k of ['max_tokens', 'max_completion_tokens'] as const) {
    const v = b[k];
    if (
      v !== undefined &&
      v !== null &&
      !(Number.isInteger(v) && (v as number) >= 1 && (v as number) <= 10_000_000)
    )
      throw new AppError('ai.invalid_request', `${k} must be a whole number from 1 to 10,000,000`, 400, [
        { path: `/${k}`, reason: 'an integer ≥ 1' },
      ]);
  }
  const maxTokens = b.max_tokens ?? b.max_completion_tokens;
  if (typeof maxTokens === 'number') req.max_tokens = maxTokens;
  return {
    model: b.model,
    stream: b.stream === true,
    includeUsage: Boolean((b.stream_options as { include_usage?: boolean } | undefined)?.include_usage),
    req,
  };
}

function legacyEmbeddings(body: unknown) {
  const b = (body ?? {}) as Record<string, unknown>;
  const input = typeof b.input === 'string' ? [b.input] : b.input;
  if (!Array.isArray(input) || input.length === 0 || !input.every((x) => typeof x === 'string')) {
    throw new AppError('ai.invalid_request', 'input must be a string or a non-empty array of strings', 400, [
      { path: '/input', reason: 'must be text' },
    ]);
  }
  if (b.encoding_format !== undefined && b.encoding_format !== 'float' && b.encoding_format !== 'base64') {
    throw new AppError('ai.invalid_request', 'encoding_format must be float or base64', 400, [
      { path: '/encoding_format', reason: 'float or base64' },
    ]);
  }
  return { model: b.model, input, base64: b.encoding_format === 'base64' };
}

function legacyBudget(body: unknown) {
  const b = (body ?? {}) as Record<string, unknown>;
  const details: { path: string; reason: string }[] = [];
  if (!['platform', 'user', 'key'].includes(b.scope as string))
    details.push({ path: '/scope', reason: 'platform, user or key' });
  if (b.scope !== 'platform' && (typeof b.subject !== 'string' || !b.subject))
    details.push({ path: '/subject', reason: 'the user or key id' });
  if (!['day', 'month'].includes(b.period as string))
    details.push({ path: '/period', reason: 'day or month' });
  if (!Number.isInteger(b.limit_minor) || (b.limit_minor as number) < 0)
    details.push({ path: '/limit_minor', reason: 'an integer ≥ 0 (minor units)' });
  if (typeof b.currency !== 'string' || !/^[a-z]{3}$/.test(b.currency))
    details.push({ path: '/currency', reason: 'ISO 4217, lowercase' });
  if (
    b.alert_percent !== undefined &&
    (!Number.isInteger(b.alert_percent) ||
      (b.alert_percent as number) < 1 ||
      (b.alert_percent as number) > 100)
  ) {
    details.push({ path: '/alert_percent', reason: '1 to 100' });
  }
  if (details.length)
    throw new AppError(
      'ai.budget_invalid',
      `invalid budget: ${details.map((d) => d.path).join(', ')}`,
      400,
      details,
    );
  return {
    scope: b.scope,
    subject: b.scope === 'platform' ? '' : b.subject,
    period: b.period,
    limit_minor: b.limit_minor,
    currency: b.currency,
    alert_percent: (b.alert_percent as number | undefined) ?? 80,
  };
}

/** An outcome to compare: the value, or the error's code, status, message and details. */
function outcome(f: () => unknown) {
  try {
    return { ok: f() };
  } catch (e) {
    if (!(e instanceof AppError)) throw e;
    return { code: e.code, status: e.status, message: e.message, details: e.details };
  }
}

/** Every combination of the given variants of each field (`undefined`: the field is absent). */
function combinations(fields: Record<string, readonly unknown[]>): Record<string, unknown>[] {
  let out: Record<string, unknown>[] = [{}];
  for (const [k, variants] of Object.entries(fields)) {
    out = out.flatMap((o) => variants.map((v) => (v === undefined ? o : { ...o, [k]: v })));
  }
  return out;
}

const NOT_OBJECTS = [null, undefined, 'text', 42, true, [], [{ model: 'x' }]];

describe('chat body: the schema answers as the hand checks did', () => {
  const messages = [
    undefined,
    'hi',
    [],
    [{ role: 'user', content: 'hi' }],
    [{ role: 'user', content: null }, { role: 'assistant' }],
    [
      { role: 'user', content: [{ type: 'text', text: 'hi' }] },
      { role: 'robot', content: 'x' },
    ],
    [{ role: 'user', content: 5 }, { role: 'robot' }],
    [{ role: 'user', content: 'ok' }, null],
    [{ role: 'user', content: 'ok' }, ['user']],
    [
      { role: 'system', content: 'ok' },
      { role: 'tool', content: { text: 'x' } },
    ],
    [{ content: 'no role' }],
  ];
  const bodies = [
    ...NOT_OBJECTS,
    ...combinations({
      model: [undefined, '', 7, 'default'],
      messages,
      n: [undefined, 1, 2],
      max_tokens: [undefined, null, 0, 1.5, 100, 10_000_001],
      max_completion_tokens: [undefined, -1, 50],
      stream: [undefined, true, 'true'],
    }),
    {
      model: 'm',
      messages: [{ role: 'user', content: 'x' }],
      stream: true,
      stream_options: { include_usage: true },
    },
    { model: 'm', messages: [{ role: 'user', content: 'x' }], stream_options: 'yes' },
    {
      model: 'm',
      messages: [{ role: 'developer', content: 'x', name: 'n' }],
      temperature: 'hot',
      top_p: 0.5,
      stop: ['.'],
      tools: [],
      tool_choice: 'auto',
      response_format: { type: 'json_object' },
      seed: 3,
      user: 'u',
      extra: 'ignored',
    },
  ];

  test(`${bodies.length} bodies: the same value or the same error`, () => {
    let errors = 0;
    for (const body of bodies) {
      const want = outcome(() => legacyChat(structuredClone(body)));
      if (!('ok' in want)) errors++;
      expect({ body, got: outcome(() => parseChatBody(structuredClone(body))) }).toEqual({ body, got: want });
    }
    // The table exercises both sides.
    expect(errors).toBeGreaterThan(bodies.length / 2);
    expect(errors).toBeLessThan(bodies.length);
  });
});

describe('embeddings body: the schema answers as the hand checks did', () => {
  const bodies = [
    ...NOT_OBJECTS,
    ...combinations({
      model: [undefined, 'embed', 3],
      input: [undefined, '', 'text', [], ['a', 'b'], ['a', 2], 5, { text: 'a' }],
      encoding_format: [undefined, 'float', 'base64', 'hex', null],
    }),
  ];
  test(`${bodies.length} bodies: the same value or the same error`, () => {
    for (const body of bodies) {
      expect({ body, got: outcome(() => parseEmbeddingsBody(body)) }).toEqual({
        body,
        got: outcome(() => legacyEmbeddings(body)),
      });
    }
  });
});

describe('budget body: the schema answers as the hand checks did, naming every bad field', () => {
  const bodies = [
    ...NOT_OBJECTS,
    ...combinations({
      scope: [undefined, 'platform', 'user', 'team'],
      subject: [undefined, '', 'usr_1', 9],
      period: [undefined, 'day', 'week'],
      limit_minor: [undefined, 0, 1.5, -1, 500],
      currency: [undefined, 'usd', 'USD', 12],
      alert_percent: [undefined, 0, 50, 101, null],
    }),
  ];
  test(`${bodies.length} bodies: the same value or the same error`, () => {
    for (const body of bodies) {
      expect({ body, got: outcome(() => parseBudgetBody(body)) }).toEqual({
        body,
        got: outcome(() => legacyBudget(body)),
      });
    }
  });
});

describe('usage query', () => {
  test('ISO times, defaults left to the service, a bad time named', () => {
    expect(parseUsageQuery({})).toEqual({ from: undefined, to: undefined });
    expect(parseUsageQuery({ from: '2026-11-01T00:00:00Z', to: '' })).toEqual({
      from: Date.UTC(2026, 10, 1),
      to: undefined,
    });
    expect(outcome(() => parseUsageQuery({ from: '2026-11-01', to: 'soon' }))).toMatchObject({
      code: 'ai.invalid_request',
      details: [{ path: '/to', reason: 'not a time' }],
    });
    expect(outcome(() => parseUsageQuery({ from: 'yesterday' }))).toMatchObject({
      details: [{ path: '/from', reason: 'not a time' }],
    });
  });
});
