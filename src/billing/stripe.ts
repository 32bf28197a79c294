/**
 * The operator's Stripe account through the official SDK, unchanged (issue 13 item 6). Keys
 * come from the environment variables soulfra.yaml names (`billing.stripe`); `api_base`
 * points the SDK elsewhere (its documented host, port and protocol options), which is how tests
 * reach a protocol-faithful server on 127.0.0.1. Without `billing.stripe`, nothing here runs
 * and admins record payments by hand.
 */
import type { Database } from 'bun:sqlite';
import Stripe from 'stripe';
import { type InstanceConfig, secretsOf } from '../app/index.ts';
import type { PlatformRequestContext } from '../identity/index.ts';
import { AppError } from '../shared/errors.ts';
import { recordStripeObject } from './stripe-objects.repository.ts';
import { readStripeSettings } from './stripe-settings.repository.ts';

export interface StripeAccount {
  client: Stripe;
  webhookSecret: string;
  /** The platform's own account (true), or the operator's (false). */
  own: boolean;
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
  const account = { client: client(key, s.api_base), webhookSecret, own: false };
  cache.set(s, account);
  return account;
}

/** The official SDK for `key`, pointed at `apiBase` when given (tests: a loopback origin). */
export function client(key: string, apiBase: string | undefined): Stripe {
  const base = apiBase ? new URL(apiBase) : null;
  return new Stripe(key, {
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
}

/** The sealed fields of a platform's own account (their AES-GCM context). */
export const STRIPE_KEY_FIELD = 'billing:stripe:secret_key';
export const STRIPE_WHSEC_FIELD = 'billing:stripe:webhook_secret';

const own = new Map<string, { sealed: string; account: StripeAccount }>();

/**
 * The Stripe account a platform's payments go through: its own (admins set its keys, sealed at
 * rest), else the operator's, else none (admins record payments by hand). The platform's
 * client is made once per change of its keys, not per request.
 */
export function stripeFor(c: { app: { config: InstanceConfig }; db: Database; platform: { id: string } }) {
  const row = readStripeSettings(c.db);
  if (!row) return stripeAccount(c.app.config);
  const hit = own.get(c.platform.id);
  const sealed = `${row.secret_key}\n${row.webhook_secret}`;
  if (hit && hit.sealed === sealed) return hit.account;
  const secrets = secretsOf(c.db);
  const account: StripeAccount = {
    client: client(secrets.unseal(row.secret_key, STRIPE_KEY_FIELD), c.app.config.billing?.stripe?.api_base),
    webhookSecret: secrets.unseal(row.webhook_secret, STRIPE_WHSEC_FIELD),
    own: true,
  };
  own.set(c.platform.id, { sealed, account });
  return account;
}

/** A checkout's state as Stripe has it: paid (with its payment intent), expired, or still open. */
export type CheckoutState = { state: 'paid'; paymentIntent: string | null } | { state: 'expired' | 'open' };

/**
 * Retrieves a Checkout Session (the source of truth for fulfilment, whatever order events came
 * in); a paid one's payment intent is recorded as this platform's, for routing its later events.
 */
export async function checkoutState(
  c: PlatformRequestContext,
  stripe: StripeAccount,
  sessionId: string,
): Promise<CheckoutState> {
  const s = await stripe.client.checkout.sessions.retrieve(sessionId);
  if (s.status === 'complete' && s.payment_status === 'paid') {
    const pi = typeof s.payment_intent === 'string' ? s.payment_intent : (s.payment_intent?.id ?? null);
    if (pi) recordStripeObject(c.app.control, pi, c.platform.id, c.app.clock.now());
    return { state: 'paid', paymentIntent: pi };
  }
  return { state: s.status === 'expired' ? 'expired' : 'open' };
}
