// The agents domain's public API. Today: the portal's conversations (issue 11); agents,
// knowledge, tools and the marketplace arrive with issue 12.
export { conversationRoutes } from './conversations.routes.ts';
export { fileNameOf, HISTORY_CHARS, HISTORY_MESSAGES } from './conversations.service.ts';
