import { Elysia } from 'elysia';
import { platformGuard } from '../identity/index.ts';
import { AgentParams } from './agents.models.ts';
import { CreatorQuery, LinkOpen, ReferralQuery, ReferralVisit } from './sharing.models.ts';
import {
  creatorStats,
  myReferrals,
  openLink,
  platformReferrals,
  revokeLink,
  rotateLink,
  shareAgent,
  visit,
} from './sharing.service.ts';

/**
 * Sharing (issue 12 items 1, 6 and 9): an agent's share link (link visibility: made, rotated
 * and revoked by its editors, opened by a signed-in user holding it), share links carrying a
 * referral code and what they brought (`features.viral_sharing` gates those routes:
 * src/server/feature-gates.ts), and the creator's figures.
 */
export const sharingRoutes = new Elysia({ name: 'sharing.routes' })
  .use(platformGuard)
  .post(
    '/api/v1/agents/:id/link',
    ({ ctx, params }) => Response.json(rotateLink(ctx, params.id), { status: 201 }),
    {
      permission: 'agents:write',
      params: AgentParams,
      detail: {
        summary:
          "Make or rotate an agent's share link (link visibility): the old link and the access it gave end",
        tags: ['agents'],
      },
    },
  )
  .delete(
    '/api/v1/agents/:id/link',
    ({ ctx, params }) => {
      revokeLink(ctx, params.id);
      return new Response(null, { status: 204 });
    },
    {
      permission: 'agents:write',
      params: AgentParams,
      detail: { summary: "Revoke an agent's share link (and every access it gave)", tags: ['agents'] },
    },
  )
  .post('/api/v1/agents/:id/link/open', ({ ctx, params, body }) => openLink(ctx, params.id, body.token), {
    permission: 'agents:read',
    params: AgentParams,
    body: LinkOpen,
    detail: {
      summary: "Open an agent's share link: with its current token, you may use the agent (else 404)",
      tags: ['agents'],
    },
  })
  .post('/api/v1/agents/:id/share', ({ ctx, params }) => shareAgent(ctx, params.id), {
    permission: 'agents:read',
    params: AgentParams,
    detail: {
      summary: 'Links to share an agent (its page, its listing, the sign-up), each with your referral code',
      tags: ['sharing'],
    },
  })
  .get('/api/v1/referrals/me', ({ ctx, query }) => myReferrals(ctx, query), {
    permission: 'agents:read',
    query: ReferralQuery,
    detail: {
      summary: 'Your referral code and what your links brought: visits by day, sign-ups, installs',
      tags: ['sharing'],
    },
  })
  .get('/api/v1/referrals', ({ ctx, query }) => platformReferrals(ctx, query), {
    permission: 'users:read',
    query: ReferralQuery,
    detail: {
      summary: "The platform's top referrers: visits, sign-ups and installs (admins)",
      tags: ['sharing'],
    },
  })
  .post(
    '/api/v1/referrals/visit',
    ({ ctx, body }) => {
      visit(ctx, body.ref);
      return new Response(null, { status: 204 });
    },
    {
      permission: 'public',
      body: ReferralVisit,
      detail: {
        summary:
          'Count a visit through a share link (anonymous, rate-limited; 204 whatever the code, so it tells nothing)',
        tags: ['sharing'],
      },
    },
  )
  .get('/api/v1/creator/stats', ({ ctx, query }) => creatorStats(ctx, query), {
    permission: 'agents:write',
    query: CreatorQuery,
    detail: {
      summary:
        "A creator's figures per agent and version: installs (referred), conversations, messages, users, ratings, AI usage; referrals",
      tags: ['sharing'],
    },
  });
