import { Elysia } from 'elysia';
import { type AiRuntime, aiDepsOf, type Meter } from '../ai/index.ts';
import { platformGuard } from '../identity/index.ts';
import {
  ConversationCreate,
  ConversationListQuery,
  ConversationParams,
  ConversationUpdate,
  ExportQuery,
  MemberParams,
  MessageCreate,
  ParticipantBody,
  ToolCallAnswer,
  ToolCallParams,
} from './agents.models.ts';
import {
  addParticipant,
  conversationEvents,
  participants,
  removeParticipant,
} from './collaboration.service.ts';
import {
  answerToolCall,
  chatModels,
  conversation,
  conversations,
  createConversation,
  exportConversation,
  removeConversation,
  renameConversation,
  sendMessage,
} from './conversations.service.ts';

/**
 * The portal's conversations (`ai:invoke`; each user sees only their own: another's id is 404).
 * A turn (`POST …/messages`) streams `text/event-stream`: `user`, `delta`…, `done` or `error`
 * (with an agent's tools: `tool_call`, `tool_result`, and `tool_confirm` when a call waits for
 * the user, who answers it at `POST …/tool-calls/:callId`, which streams the rest of the turn).
 * Shared conversations (collaboration.service.ts): `…/participants` and `…/events`, gated by
 * features.collaborative_agents.
 */
export function conversationRoutes(d: { runtime: AiRuntime; meter: Meter }) {
  // The service's dependencies, built once per App (one App serves every platform).
  const depsOf = aiDepsOf(d);
  const tags = ['conversations'];
  return new Elysia({ name: 'conversations.routes' })
    .use(platformGuard)
    .get(
      '/api/v1/conversations/models',
      ({ ctx }) => {
        const ids = chatModels(depsOf(ctx.app), ctx);
        return { models: ids.map((id, i) => ({ id, default: i === 0 })) };
      },
      {
        permission: 'ai:invoke',
        detail: { summary: 'The models this platform lets its users chat with', tags },
      },
    )
    .get('/api/v1/conversations', ({ ctx, query }) => conversations(ctx, query), {
      permission: 'ai:invoke',
      query: ConversationListQuery,
      detail: { summary: 'Your conversations, most recent first', tags },
    })
    .post(
      '/api/v1/conversations',
      ({ ctx, body }) =>
        Response.json({ conversation: createConversation(depsOf(ctx.app), ctx, body) }, { status: 201 }),
      {
        permission: 'ai:invoke',
        body: ConversationCreate,
        detail: { summary: 'Start a conversation', tags },
      },
    )
    .get('/api/v1/conversations/:id', ({ ctx, params }) => conversation(ctx, params.id), {
      permission: 'ai:invoke',
      params: ConversationParams,
      detail: { summary: 'A conversation and its messages', tags },
    })
    .patch(
      '/api/v1/conversations/:id',
      ({ ctx, params, body }) => renameConversation(depsOf(ctx.app), ctx, params.id, body),
      {
        permission: 'ai:invoke',
        params: ConversationParams,
        body: ConversationUpdate,
        detail: { summary: 'Rename a conversation or change its model', tags },
      },
    )
    .delete(
      '/api/v1/conversations/:id',
      ({ ctx, params }) => {
        removeConversation(ctx, params.id);
        return new Response(null, { status: 204 });
      },
      {
        permission: 'ai:invoke',
        params: ConversationParams,
        detail: { summary: 'Delete a conversation', tags },
      },
    )
    .get(
      '/api/v1/conversations/:id/export',
      ({ ctx, params, query }) => exportConversation(ctx, params.id, query.format ?? 'markdown'),
      {
        permission: 'ai:invoke',
        params: ConversationParams,
        query: ExportQuery,
        detail: { summary: 'Download a conversation as Markdown or JSON', tags },
      },
    )
    .get('/api/v1/conversations/:id/participants', ({ ctx, params }) => participants(ctx, params.id), {
      permission: 'ai:invoke',
      params: ConversationParams,
      detail: { summary: 'Who shares a conversation: its owner and participants', tags },
    })
    .post(
      '/api/v1/conversations/:id/participants',
      ({ ctx, params, body }) => {
        const { status, ...rest } = addParticipant(ctx, params.id, body);
        return Response.json(rest, { status });
      },
      {
        permission: 'ai:invoke',
        params: ConversationParams,
        body: ParticipantBody,
        detail: {
          summary: 'Share a conversation with an agent with a user who may use the agent (its owner)',
          tags,
        },
      },
    )
    .delete(
      '/api/v1/conversations/:id/participants/:userId',
      ({ ctx, params }) => {
        removeParticipant(ctx, params.id, params.userId);
        return new Response(null, { status: 204 });
      },
      {
        permission: 'ai:invoke',
        params: MemberParams,
        detail: { summary: 'Stop sharing a conversation with a participant, at once (or leave it)', tags },
      },
    )
    .get('/api/v1/conversations/:id/events', ({ ctx, params }) => conversationEvents(ctx, params.id), {
      permission: 'ai:invoke',
      params: ConversationParams,
      detail: {
        summary:
          "A conversation's new messages as server-sent events (ready, message, delta, participant_added, participant_removed)",
        tags,
      },
    })
    .post(
      '/api/v1/conversations/:id/messages',
      ({ ctx, params, body, request }) => sendMessage(depsOf(ctx.app), ctx, params.id, body, request.signal),
      {
        permission: 'ai:invoke',
        params: ConversationParams,
        body: MessageCreate,
        detail: { summary: 'Say something; the answer streams back as server-sent events', tags },
      },
    )
    .post(
      '/api/v1/conversations/:id/tool-calls/:callId',
      ({ ctx, params, body, request }) =>
        answerToolCall(depsOf(ctx.app), ctx, params.id, params.callId, body, request.signal),
      {
        permission: 'ai:invoke',
        params: ToolCallParams,
        body: ToolCallAnswer,
        detail: {
          summary: "Confirm or decline an agent's tool call that waits for you; the turn streams on",
          tags,
        },
      },
    );
}
