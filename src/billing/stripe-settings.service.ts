/**
 * A platform's own Stripe account (issue 13 item 6). The owner (billing:write) sets its secret
 * key and its webhook endpoint's signing secret; both are sealed at rest (AES-GCM, bound to the
 * platform and the field), never shown again (admins see `sk_live_…wxyz`), and re-sealed by
 * `keys rotate`. Before storing, the key is tried against Stripe (`GET /v1/account`): a key
 * Stripe refuses is a 422 naming the field, and nothing is stored. From then on the platform's
 * checkouts, refunds, top-ups and payouts go through its own account, and its webhook endpoint
 * (`POST /api/v1/billing/stripe/webhook` on its host) verifies with its own secret. Removing
 * the keys falls back to the operator's account (or to payments recorded by hand).
 */
import Stripe from 'stripe';
import { type SecretSite, secretContext, secretsOf } from '../app/index.ts';
import type { PlatformRequestContext } from '../identity/index.ts';
import { actorOf } from '../identity/index.ts';
import { AppError } from '../shared/errors.ts';
import { client, STRIPE_KEY_FIELD, STRIPE_WHSEC_FIELD, stripeAccount, stripeFor } from './stripe.ts';
import {
  deleteStripeSettings,
  readStripeSettings,
  resealStripeSettings,
  writeStripeSettings,
} from './stripe-settings.repository.ts';

const hint = (key: string) => `${key.slice(0, key.indexOf('_', 3) + 1)}…${key.slice(-4)}`;

/** What admins see of the platform's Stripe account (never a secret). */
export function stripeSettingsView(c: PlatformRequestContext) {
  const row = readStripeSettings(c.db);
  const operator = stripeAccount(c.app.config) !== null;
  return {
    account: row ? 'own' : operator ? 'operator' : 'none',
    key_hint: row?.key_hint ?? null,
    live: row ? row.live === 1 : null,
    updated_at: row ? new Date(row.updated_at).toISOString() : null,
    webhook_url: new URL('/api/v1/billing/stripe/webhook', c.origin).toString(),
  };
}

/** Sets (or replaces) the platform's own Stripe keys, once Stripe accepts the secret key. */
export async function setStripeSettings(
  c: PlatformRequestContext,
  body: { secret_key: string; webhook_secret: string },
) {
  const probe = client(body.secret_key, c.app.config.billing?.stripe?.api_base);
  try {
    await probe.accounts.retrieveCurrent();
  } catch (err) {
    if (
      err instanceof Stripe.errors.StripeAuthenticationError ||
      err instanceof Stripe.errors.StripePermissionError
    )
      throw new AppError('billing.stripe_key_invalid', 'secret_key: Stripe refused this key', 422, [
        { path: '/secret_key', reason: 'refused by Stripe' },
      ]);
    throw new AppError('billing.stripe_unreachable', 'Stripe did not answer; the keys were not changed', 502);
  }
  const secrets = secretsOf(c.db);
  const live = body.secret_key.includes('_live_');
  c.db.transaction(() => {
    writeStripeSettings(c.db, {
      secret_key: secrets.seal(body.secret_key, STRIPE_KEY_FIELD),
      webhook_secret: secrets.seal(body.webhook_secret, STRIPE_WHSEC_FIELD),
      key_hint: hint(body.secret_key),
      live: live ? 1 : 0,
      updated_by: actorOf(c.principal),
      updated_at: c.app.clock.now(),
    });
    c.app.audit.append(c.db, {
      actor: actorOf(c.principal),
      action: 'billing.stripe_keys_set',
      target: `platform:${c.platform.id}`,
      details: { key_hint: hint(body.secret_key), live },
    });
  })();
  // The new client is made now, so a broken seal shows here and not at the first checkout.
  stripeFor(c);
  return stripeSettingsView(c);
}

/** Removes the platform's own keys: payments go through the operator's account again. */
export function clearStripeSettings(c: PlatformRequestContext) {
  c.db.transaction(() => {
    if (!deleteStripeSettings(c.db))
      throw new AppError('billing.stripe_not_set', 'this platform has no Stripe keys of its own', 404);
    c.app.audit.append(c.db, {
      actor: actorOf(c.principal),
      action: 'billing.stripe_keys_cleared',
      target: `platform:${c.platform.id}`,
      details: {},
    });
  })();
  return stripeSettingsView(c);
}

/** Where a platform's own Stripe keys are stored: each platform's `stripe_settings`. */
export const STRIPE_SECRET_SITE: SecretSite = {
  name: 'billing.stripe_settings',
  scope: 'tenant',
  reseal(db, scope, rewrite) {
    const row = readStripeSettings(db);
    if (!row) return 0;
    resealStripeSettings(
      db,
      rewrite(row.secret_key, secretContext(scope, STRIPE_KEY_FIELD)),
      rewrite(row.webhook_secret, secretContext(scope, STRIPE_WHSEC_FIELD)),
    );
    return 2;
  },
};
