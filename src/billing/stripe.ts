/**
 * The operator's Stripe account through the official SDK, unchanged (issue 13 item 6). Keys
 * come from the environment variables soulfra.yaml names (`billing.stripe`); `api_base`
 * points the SDK elsewhere (its documented host, port and protocol options), which is how tests
 * reach a protocol-faithful server on 127.0.0.1. Without `billing.stripe`, nothing here runs
 * and admins record payments by hand.
 */
import Stripe from 'stripe';
import type { InstanceConfig } from '../app/index.ts';
import { AppError } from '../shared/errors.ts';

export interface StripeAccount {
  client: Stripe;
  webhookSecret: string;
}

const cache = new WeakMap<object, StripeAccount | null>();

/**
 * The instance's Stripe account, or null when none is configured. A configured account whose
 * environment variables are empty is a configuration error (500 `billing.stripe_unconfigured`),
 * never a silent fallback.
 */
export function stripeAccount(
  config: InstanceConfig,
  env: Record<string, string | undefined> = process.env,
): StripeAccount | null {
  const s = config.billing?.stripe;
  if (!s) return null;
  const hit = cache.get(s);
  if (hit !== undefined) return hit;
  const key = env[s.secret_key_env];
  const webhookSecret = env[s.webhook_secret_env];
  if (!key || !webhookSecret)
    throw new AppError(
      'billing.stripe_unconfigured',
      `billing.stripe: ${!key ? s.secret_key_env : s.webhook_secret_env} is not set in the environment`,
      500,
    );
  const base = s.api_base ? new URL(s.api_base) : null;
  const client = new Stripe(key, {
    maxNetworkRetries: 2,
    timeout: 20_000,
    ...(base
      ? {
          host: base.hostname,
          port: Number(base.port || (base.protocol === 'https:' ? 443 : 80)),
          protocol: base.protocol === 'https:' ? ('https' as const) : ('http' as const),
        }
      : {}),
  });
  const account = { client, webhookSecret };
  cache.set(s, account);
  return account;
}
