import { Type as t } from '@sinclair/typebox';

/** Bodies and queries of the sharing, referral and creator routes (sharing.routes.ts). */
export const LinkOpen = t.Object(
  { token: t.String({ minLength: 1, maxLength: 200, description: 'The `share` parameter of the link.' }) },
  { additionalProperties: false },
);

export const ReferralVisit = t.Object({
  ref: t.Optional(
    t.Unknown({
      description: 'The `ref` parameter of the link that brought the visitor (any value: 204 always).',
    }),
  ),
});

export const ReferralQuery = t.Object({
  days: t.Optional(
    t.Union([t.Literal('30'), t.Literal('90')], { description: 'The window: 30 (default) or 90 days.' }),
  ),
});

export const CreatorQuery = t.Object({
  creator: t.Optional(
    t.String({
      minLength: 1,
      maxLength: 64,
      description: "Admins: another creator's user id (default: yours).",
    }),
  ),
});

/** Optional: an install may have no body. */
export const InstallBody = t.Optional(
  t.Object({
    ref: t.Optional(
      t.Unknown({
        description:
          'The referral code of the share link that brought you (features.viral_sharing); an unknown one is ignored.',
      }),
    ),
    pay_with: t.Optional(
      t.Union([t.Literal('credits'), t.Literal('card')], {
        description:
          'A paid listing not bought yet: with your credits (the default when they cover the price) or by card (a checkout)',
      }),
    ),
  }),
);
