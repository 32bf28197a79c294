import { Type as t } from '@sinclair/typebox';

/** Bodies and queries of the conversation routes (TypeBox: validated before the handler runs). */
export const ConversationCreate = t.Object(
  {
    title: t.Optional(t.String({ minLength: 1, maxLength: 200, description: 'Default "New chat".' })),
    model: t.Optional(
      t.String({ minLength: 1, maxLength: 100, description: 'A model alias the platform allows.' }),
    ),
    agent_id: t.Optional(
      t.String({ minLength: 1, maxLength: 64, description: 'Chat with this agent (its latest version).' }),
    ),
    draft: t.Optional(
      t.Boolean({ description: "With agent_id: test the agent's draft (its editors only)." }),
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

/** Agent bodies are checked by the service (one precise reason per field); here only their shape. */
export const AgentBody = t.Record(t.String(), t.Unknown(), {
  description:
    'name, description, avatar (an emoji or https: URL), persona (the system prompt), model (an alias), temperature (0–2), max_tokens, starter_prompts (up to 6), visibility (private, link or platform), slug (create only)',
  errorCode: 'agent.invalid',
  errorMessage: 'must be an object',
});

export const AgentParams = t.Object({ id: t.String({ minLength: 1, maxLength: 64 }) });

export const AgentListQuery = t.Object({
  mine: t.Optional(t.String({ description: '`true`: only the agents you own.' })),
});

export const KnowledgeDocParams = t.Object({
  id: t.String({ minLength: 1, maxLength: 64 }),
  doc: t.String({ minLength: 1, maxLength: 64 }),
});

export const KnowledgeSearchQuery = t.Object({
  q: t.Optional(t.String({ maxLength: 2000, description: 'The question.' })),
});

export const ListingParams = t.Object({ id: t.String({ minLength: 1, maxLength: 64 }) });

export const MarketplaceQuery = t.Object({
  q: t.Optional(t.String({ maxLength: 200, description: 'Words to search titles, summaries and tags for.' })),
  category: t.Optional(t.String({ maxLength: 40, description: 'Only this category.' })),
  mode: t.Optional(
    t.String({
      maxLength: 10,
      description:
        '`keyword` (FTS5), `semantic` (embeddings) or `hybrid` (both, merged by reciprocal rank; the default).',
    }),
  ),
});

/** A member of an agent: `{email or user_id, role}` (checked by the service). */
export const MemberBody = t.Record(t.String(), t.Unknown(), {
  description:
    'email (an active user of this platform) or user_id, and role: editor (changes the draft, publishes) or viewer (reads and chats)',
  errorCode: 'agent.invalid',
  errorMessage: 'must be an object',
});

export const MemberParams = t.Object({
  id: t.String({ minLength: 1, maxLength: 64 }),
  userId: t.String({ minLength: 1, maxLength: 64 }),
});

/** A participant of a shared conversation: `{email or user_id}` (checked by the service). */
export const ParticipantBody = t.Record(t.String(), t.Unknown(), {
  description: 'email (an active user of this platform who may use the agent) or user_id',
  errorCode: 'conversation.invalid',
  errorMessage: 'must be an object',
});

export const ToolCallParams = t.Object({
  id: t.String({ minLength: 1, maxLength: 64 }),
  callId: t.String({ minLength: 1, maxLength: 64 }),
});

export const ToolCallAnswer = t.Object(
  { approve: t.Boolean({ description: 'true: run the call; false: decline it (the model is told).' }) },
  { additionalProperties: false },
);

export const ToolHostsBody = t.Object(
  {
    hosts: t.Array(t.String({ minLength: 1, maxLength: 260 }), {
      maxItems: 100,
      description: 'Host names (api.example.com), wildcards of subdomains (*.example.com) or IP addresses.',
    }),
  },
  { additionalProperties: false },
);

export const ToolSecretParams = t.Object({
  id: t.String({ minLength: 1, maxLength: 64 }),
  tool: t.String({ pattern: '^[a-zA-Z0-9_-]{1,64}$', errorMessage: 'must be a tool name' }),
});

export const ToolSecretBody = t.Object(
  {
    value: t.String({
      minLength: 1,
      maxLength: 4096,
      description: 'Sent as the header value, e.g. "Bearer …".',
    }),
    header: t.Optional(t.String({ minLength: 1, maxLength: 64, description: 'Default: authorization.' })),
  },
  { additionalProperties: false },
);
/** Federation (issue 12 item 8). */
export const VersionParams = t.Object({
  id: t.String({ minLength: 1, maxLength: 64 }),
  version: t.String({
    pattern: '^[1-9][0-9]{0,8}$',
    description: 'A version number.',
    errorMessage: 'must be a version number',
  }),
});

export const CatalogEntryParams = t.Object({ entry: t.String({ minLength: 1, maxLength: 64 }) });

export const ImportQuery = t.Object({
  model: t.Optional(
    t.String({
      minLength: 1,
      maxLength: 100,
      description: "Run the agent on this model alias of the platform instead of the package's.",
    }),
  ),
});

/** A package and the other federation bodies are checked by the service; here only their shape. */
export const FederationBody = t.Record(t.String(), t.Unknown(), {
  description:
    'a signed agent package (format soulfra.agent-package/1: agent, provenance, public_key, signature), or the fields the route names',
  errorCode: 'federation.invalid',
  errorMessage: 'must be an object',
});
