// The agents domain's public API: the portal's conversations (issue 11) and agents (issue 12
// item 1), their knowledge, tools and the marketplace.
import { TOOL_SECRET_SITE } from './tools.service.ts';

export { agentRoutes } from './agents.routes.ts';
export { conversationRoutes } from './conversations.routes.ts';
export { fileNameOf, HISTORY_CHARS, HISTORY_MESSAGES } from './conversations.service.ts';
export { endLiveStreams } from './live.ts';

/** Every place the agents domain stores a sealed secret (tool secrets): `keys rotate` re-seals them. */
export const AGENT_SECRET_SITES = [TOOL_SECRET_SITE] as const;
export { federationRoutes } from './federation.routes.ts';
export {
  acceptRevocationList,
  FEDERATION_SECRET_SITE,
  federationKeyView,
  fetchRevocationList,
  MAX_REVOCATIONS,
  revocationList,
  trustedKeys,
  trustKey,
  untrustKey,
} from './federation.service.ts';
export { sharingRoutes } from './sharing.routes.ts';
export { SHARE_TOKEN_SECRET_SITE } from './sharing.service.ts';
