// The agents domain's public API: the portal's conversations (issue 11) and agents (issue 12
// item 1), their knowledge, tools and the marketplace.
export { agentRoutes } from './agents.routes.ts';
export { conversationRoutes } from './conversations.routes.ts';
export { fileNameOf, HISTORY_CHARS, HISTORY_MESSAGES, MAX_TOOL_ROUNDS } from './conversations.service.ts';
export { TOOL_SECRET_SITE } from './tools.service.ts';

import { TOOL_SECRET_SITE } from './tools.service.ts';

/** Every place the agents domain stores a sealed secret (tool secrets). */
export const AGENT_SECRET_SITES = [TOOL_SECRET_SITE] as const;
