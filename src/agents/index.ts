// The agents domain's public API: the portal's conversations (issue 11) and agents (issue 12
// item 1); knowledge, tools and the marketplace are still to come.
export { agentRoutes } from './agents.routes.ts';
export { conversationRoutes } from './conversations.routes.ts';
export { fileNameOf, HISTORY_CHARS, HISTORY_MESSAGES } from './conversations.service.ts';
export { sharingRoutes } from './sharing.routes.ts';
export { SHARE_TOKEN_SECRET_SITE } from './sharing.service.ts';
