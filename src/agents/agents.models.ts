import { Type as t } from '@sinclair/typebox';

/** Bodies and queries of the conversation routes (TypeBox: validated before the handler runs). */
export const ConversationCreate = t.Object(
  {
    title: t.Optional(t.String({ minLength: 1, maxLength: 200, description: 'Default "New chat".' })),
    model: t.Optional(
      t.String({ minLength: 1, maxLength: 100, description: 'A model alias the platform allows.' }),
    ),
  },
  { additionalProperties: false },
);

export const ConversationUpdate = t.Object(
  {
    title: t.Optional(t.String({ minLength: 1, maxLength: 200 })),
    model: t.Optional(t.String({ minLength: 1, maxLength: 100 })),
  },
  { additionalProperties: false },
);

export const MessageCreate = t.Object(
  {
    content: t.String({
      minLength: 1,
      maxLength: 32_000,
      description: 'What the user says (1–32,000 characters).',
    }),
    model: t.Optional(
      t.String({ minLength: 1, maxLength: 100, description: "This turn only; default: the conversation's." }),
    ),
  },
  { additionalProperties: false },
);

export const ConversationParams = t.Object({ id: t.String({ minLength: 1, maxLength: 64 }) });

export const ConversationListQuery = t.Object({
  before: t.Optional(t.String({ maxLength: 64 })),
  limit: t.Optional(
    t.String({
      pattern: '^(100|[1-9][0-9]?)$',
      description: 'At most this many (1–100, default 50).',
      errorMessage: 'must be a whole number from 1 to 100',
    }),
  ),
});

export const ExportQuery = t.Object({
  format: t.Optional(t.Union([t.Literal('markdown'), t.Literal('json')])),
});
