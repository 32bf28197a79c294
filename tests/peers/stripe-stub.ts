import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import Stripe from 'stripe';

/**
 * A Stripe API on 127.0.0.1 for tests, speaking the documented v1 wire format so the official SDK
 * works against it unchanged: `new Stripe(key, { host: '127.0.0.1', port: stub.port, protocol: 'http' })`.
 *
 * - Requests: `application/x-www-form-urlencoded` bodies (POST) or query strings (GET, DELETE) with
 *   bracket nesting (`line_items[0][price_data][unit_amount]=500`, `metadata[k]=v`, `expand[]=x`).
 * - Auth: `Authorization: Bearer sk_test_…` (or `rk_test_…`, or HTTP Basic with the key as user);
 *   anything else is a 401 with Stripe's error body `{ error: { type, message, code?, param? } }`.
 * - `Idempotency-Key` on POST: the same key with the same parameters replays the first answer (with
 *   `Idempotent-Replayed: true`); with other parameters or another path it is a 400 `idempotency_error`.
 *   Only successes are saved (Stripe saves nothing for a request that failed validation).
 * - Top-level parameters the installed SDK does not document for a request (its `<Name>Params`
 *   interface) are refused with 400 `parameter_unknown`; lists take `limit`, `starting_after`,
 *   `ending_before`; `expand[]` replaces ids by their objects (`data.x` on lists, `line_items`).
 * - `Stripe-Account: acct_…` scopes every object to that connected account (403 for an unknown one);
 *   an object made under one account is a 404 `resource_missing` under another.
 * - Hosted pages: a Checkout Session's `url` is `/pay/cs_…` (an HTML page with the amount and a Pay
 *   button; submitting it completes the session and redirects 303 to `success_url`), a billing portal
 *   session's `url` is `/portal/bps_…` (the customer's subscriptions, each with a cancel button), an
 *   account link's `url` is `/connect/onboard/acct_…` (a Finish button activates the account).
 * - Webhooks: events go to every endpoint registered with `addEndpoint` (Connect events too, with
 *   `event.account`), one at a time in emission order, signed with the SDK's own test-header signer
 *   (`generateTestHeaderStringAsync`: under Bun the SDK's crypto is SubtleCrypto, async only).
 *   API calls emit their events too (`customer.created`, `charge.refunded`, `refund.created`,
 *   `customer.subscription.updated|deleted`, `checkout.session.expired`, `account.updated`,
 *   `transfer.created`), with `event.request` naming the request and its idempotency key.
 */
export interface StripeStub {
  /** `http://127.0.0.1:<port>` (the API lives under `/v1`). */
  readonly url: string;
  readonly host: '127.0.0.1';
  readonly port: number;
  /** Everything the stub made, by kind and id (the objects are live: later changes show). */
  readonly state: StripeStubState;
  /** Every request that reached the stub (API and hosted pages), in arrival order. */
  readonly requests: StripeRecordedRequest[];
  /** Registers a webhook receiver; `secret` defaults to a random `whsec_…`. */
  addEndpoint(url: string, secret?: string): StripeWebhookEndpoint;
  /** Removes a receiver registered with `addEndpoint`. */
  removeEndpoint(id: string): void;
  /**
   * Makes an event of `type` around `object`, signs and POSTs it to every endpoint, and resolves once
   * delivered. `header` and `status` are those of the first endpoint (`''`/0 when there is none, unless
   * `opts.secret` is given to sign anyway); `deliveries` has one entry per endpoint.
   */
  emit(type: string, object: StubObject, opts?: StripeEmitOptions): Promise<StripeEmitted>;
  /** Resolves once every webhook emitted so far has been delivered (or failed to be). */
  idle(): Promise<void>;
  /**
   * Resolves with the first emitted event of `type` (and for `object.id`, when `objectId` is given) once
   * it has been delivered, waiting for one if none has been emitted yet.
   */
  delivered(type: string, objectId?: string): Promise<StripeEmitted>;
  /** A new billing period for the subscription: a paid `subscription_cycle` invoice, `invoice.paid`. */
  payInvoice(subscriptionId: string): Promise<StubInvoice>;
  /** Declines every later charge of this payment method (a card that ran out, say). */
  declinePaymentMethod(pm: string): void;
  /**
   * A renewal that fails: an open invoice, `invoice.payment_failed`, the subscription `past_due` and
   * `customer.subscription.updated` (with `previous_attributes.status`).
   */
  failInvoice(subscriptionId: string): Promise<StubInvoice>;
  /** Cancels now, as the dashboard would: `customer.subscription.deleted`. */
  cancelSubscription(subscriptionId: string): Promise<StubObject>;
  /** A refund made outside the API (the dashboard): the same rules and events as `POST /v1/refunds`. */
  refund(params: { payment_intent?: string; charge?: string; amount?: number }): Promise<StubObject>;
  /** Changes a connected account (e.g. `{ charges_enabled: false }`) and emits `account.updated`. */
  updateAccount(accountId: string, patch: Record<string, unknown>): Promise<StubObject>;
  stop(): Promise<void>;
}

/** A Stripe object as the stub keeps it: `id`, `object`, and the fields Stripe documents for it. */
export interface StubObject {
  id: string;
  object: string;
  [field: string]: unknown;
}

export interface StubInvoice extends StubObject {
  status: string;
  amount_due: number;
  amount_paid: number;
  amount_remaining: number;
}

export interface StripeStubState {
  customers: Map<string, StubObject>;
  products: Map<string, StubObject>;
  prices: Map<string, StubObject>;
  checkoutSessions: Map<string, StubObject>;
  portalSessions: Map<string, StubObject>;
  subscriptions: Map<string, StubObject>;
  invoices: Map<string, StubInvoice>;
  paymentIntents: Map<string, StubObject>;
  charges: Map<string, StubObject>;
  refunds: Map<string, StubObject>;
  accounts: Map<string, StubObject>;
  accountLinks: StubObject[];
  transfers: Map<string, StubObject>;
  /** Every emitted event with its deliveries, in emission order. */
  events: StripeEmitted[];
  /** The connected account an object was made under (null: the platform). */
  accountOf(id: string): string | null;
}

export interface StripeRecordedRequest {
  method: string;
  path: string;
  /** Header names lower-case. */
  headers: Record<string, string>;
  /** The parsed form (body for POST, query for GET/DELETE). */
  body: Form;
  /** The `Stripe-Account` header, or null. */
  account: string | null;
}

export interface StripeWebhookEndpoint {
  id: string;
  url: string;
  secret: string;
}

export interface StripeEmitOptions {
  /** The connected account the event happened on (`event.account`). */
  account?: string | null;
  /** `data.previous_attributes` (for `*.updated` events). */
  previousAttributes?: Record<string, unknown>;
  /** The signature's timestamp (seconds); defaults to now. */
  timestamp?: number;
  /** `event.request`; defaults to `{ id: null, idempotency_key: null }` (an automatic event). */
  request?: { id: string | null; idempotency_key: string | null };
  /** Signs with this secret when no endpoint is registered (so a test can still get a header). */
  secret?: string;
}

export interface StripeDelivery {
  endpoint: StripeWebhookEndpoint;
  header: string;
  /** The receiver's HTTP status; 0 when the connection failed. */
  status: number;
}

export interface StripeEmitted {
  event: StubObject & { type: string; data: { object: StubObject; previous_attributes?: unknown } };
  /** The exact JSON body that was signed and sent. */
  payload: string;
  header: string;
  status: number;
  deliveries: StripeDelivery[];
}

export interface StripeStubOptions {
  /** When set, only this secret key is accepted (otherwise any `sk_test_`/`rk_test_` key is). */
  apiKey?: string;
  /** `event.api_version`; defaults to the SDK's pinned version. */
  apiVersion?: string;
  /** How long a webhook receiver may take to answer before the delivery counts as failed (status 0). */
  deliveryTimeoutMs?: number;
  /** The clock in seconds (for `created`, periods, signatures); defaults to the real one. */
  now?: () => number;
}

/** A parsed form: strings, nested objects and arrays. */
export type FormValue = string | FormValue[] | Form;
export interface Form {
  [key: string]: FormValue;
}

/** Parses `application/x-www-form-urlencoded` with Stripe's (qs-style) bracket nesting. */
export function parseStripeForm(text: string): Form {
  const root: Form = {};
  for (const [key, value] of new URLSearchParams(text)) {
    const m = /^([^[]+)((?:\[[^\]]*\])*)$/.exec(key);
    const head = m?.[1] ?? key;
    const parts = m?.[2] ? [...m[2].matchAll(/\[([^\]]*)\]/g)].map((p) => p[1] ?? '') : [];
    const path = [head, ...parts];
    let node: Form = root;
    for (let i = 0; i < path.length; i++) {
      let seg = path[i]!;
      if (seg === '') seg = String(Object.keys(node).length);
      if (i === path.length - 1) {
        node[seg] = value;
      } else {
        const next = node[seg];
        if (next === undefined || typeof next === 'string' || Array.isArray(next)) node[seg] = {};
        node = node[seg] as Form;
      }
    }
  }
  return arrayify(root) as Form;
}

/** Objects whose keys are all indices become arrays (in index order). */
function arrayify(v: FormValue): FormValue {
  if (typeof v === 'string' || Array.isArray(v)) return v;
  const keys = Object.keys(v);
  for (const k of keys) v[k] = arrayify(v[k]!);
  if (keys.length > 0 && keys.every((k) => /^\d+$/.test(k))) {
    return keys.sort((a, b) => Number(a) - Number(b)).map((k) => v[k]!);
  }
  return v;
}

class StripeApiError extends Error {
  constructor(
    readonly status: number,
    readonly type: string,
    message: string,
    readonly code?: string,
    readonly param?: string,
  ) {
    super(message);
  }
}

const invalid = (message: string, param?: string, code?: string) =>
  new StripeApiError(400, 'invalid_request_error', message, code, param);

const missing = (param: string) => invalid(`Missing required param: ${param}.`, param, 'parameter_missing');

const BASE62 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
function randomId(prefix: string, length = 24): string {
  const bytes = randomBytes(length);
  let s = '';
  for (const b of bytes) s += BASE62[b % 62];
  return `${prefix}${s}`;
}

const escapeHtml = (s: string) =>
  s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);

function money(amount: number, currency: string): string {
  const cur = currency.toUpperCase();
  const digits = new Intl.NumberFormat('en', { style: 'currency', currency: cur }).resolvedOptions()
    .maximumFractionDigits;
  return new Intl.NumberFormat('en', { style: 'currency', currency: cur }).format(
    amount / 10 ** (digits ?? 2),
  );
}

const list = (data: StubObject[], url: string) => ({ object: 'list', data, has_more: false, url });

const sdkDir = (() => {
  try {
    return dirname(Bun.resolveSync('stripe', import.meta.dir));
  } catch {
    return null;
  }
})();
const paramCache = new Map<string, Set<string> | null>();
/**
 * The top-level parameters the installed SDK documents for a request (its `<Name>Params` interface
 * in `resources/<file>.d.ts`), so the stub refuses unknown ones as Stripe does; null when unreadable.
 */
export function documentedParams(file: string, iface: string): Set<string> | null {
  const cacheKey = `${file}#${iface}`;
  if (paramCache.has(cacheKey)) return paramCache.get(cacheKey)!;
  let out: Set<string> | null = null;
  try {
    const lines = readFileSync(join(sdkDir ?? '', 'resources', `${file}.d.ts`), 'utf8').split('\n');
    const head = new RegExp(`^(\\s*)(?:export )?interface ${iface}(?: extends (\\w+))? \\{$`);
    const start = lines.findIndex((l) => head.test(l));
    if (start >= 0) {
      const m = head.exec(lines[start]!)!;
      const indent = m[1]!;
      const member = new RegExp(`^${indent} {4}(\\w+)\\??:`);
      out = new Set(['expand']);
      if (m[2] === 'PaginationParams')
        for (const k of ['limit', 'starting_after', 'ending_before']) out.add(k);
      for (let i = start + 1; i < lines.length && lines[i] !== `${indent}}`; i++) {
        const name = member.exec(lines[i]!)?.[1];
        if (name) out.add(name);
      }
    }
  } catch {
    out = null;
  }
  paramCache.set(cacheKey, out);
  return out;
}

/** A page of `data` (newest first) by `limit`, `starting_after`, `ending_before`. */
function page_(data: StubObject[], form: Form, url: string) {
  const raw = typeof form.limit === 'string' && form.limit !== '' ? Number(form.limit) : 10;
  if (!Number.isInteger(raw) || raw < 1 || raw > 100) {
    throw new StripeApiError(
      400,
      'invalid_request_error',
      'This value must be between 1 and 100.',
      'parameter_invalid_integer',
      'limit',
    );
  }
  let items = data;
  const after = typeof form.starting_after === 'string' ? form.starting_after : '';
  const before = typeof form.ending_before === 'string' ? form.ending_before : '';
  if (after) {
    const i = items.findIndex((x) => x.id === after);
    if (i < 0)
      throw new StripeApiError(
        400,
        'invalid_request_error',
        `No such object: '${after}'`,
        'resource_missing',
        'starting_after',
      );
    items = items.slice(i + 1);
  } else if (before) {
    const i = items.findIndex((x) => x.id === before);
    if (i < 0)
      throw new StripeApiError(
        400,
        'invalid_request_error',
        `No such object: '${before}'`,
        'resource_missing',
        'ending_before',
      );
    items = items.slice(Math.max(0, i - raw), i);
    return { object: 'list', data: items, has_more: i - raw > 0, url };
  }
  return { object: 'list', data: items.slice(0, raw), has_more: items.length > raw, url };
}

/** Starts the stub on 127.0.0.1 and a free port. */
export async function startStripeStub(opts: StripeStubOptions = {}): Promise<StripeStub> {
  const now = opts.now ?? (() => Math.floor(Date.now() / 1000));
  const apiVersion = opts.apiVersion ?? Stripe.API_VERSION;
  const deliveryTimeoutMs = opts.deliveryTimeoutMs ?? 10_000;
  const signer = new Stripe('sk_test_stub_signer');
  const requests: StripeRecordedRequest[] = [];
  const endpoints: StripeWebhookEndpoint[] = [];
  const owners = new Map<string, string | null>();
  const idempotency = new Map<
    string,
    { path: string; params: string; status: number; body: string; requestId: string }
  >();
  const state: StripeStubState = {
    customers: new Map(),
    products: new Map(),
    prices: new Map(),
    checkoutSessions: new Map(),
    portalSessions: new Map(),
    subscriptions: new Map(),
    invoices: new Map(),
    paymentIntents: new Map(),
    charges: new Map(),
    refunds: new Map(),
    accounts: new Map(),
    accountLinks: [],
    transfers: new Map(),
    events: [],
    accountOf: (id) => owners.get(id) ?? null,
  };
  let queue: Promise<void> = Promise.resolve();
  let waiters: { type: string; objectId?: string; resolve: (e: Promise<StripeEmitted>) => void }[] = [];

  // ---------- helpers over the form ----------
  const str = (v: FormValue | undefined): string | undefined =>
    typeof v === 'string' && v !== '' ? v : undefined;
  const int = (v: FormValue | undefined, param: string): number | undefined => {
    if (v === undefined || v === '') return undefined;
    if (typeof v !== 'string' || !/^-?\d+$/.test(v)) throw invalid(`Invalid integer: ${String(v)}`, param);
    return Number(v);
  };
  const bool = (v: FormValue | undefined, param: string): boolean | undefined => {
    if (v === undefined || v === '') return undefined;
    if (v === 'true') return true;
    if (v === 'false') return false;
    throw invalid(`Invalid boolean: ${String(v)}`, param);
  };
  const sub = (v: FormValue | undefined, param: string): Form | undefined => {
    if (v === undefined || v === '') return undefined;
    if (typeof v === 'string' || Array.isArray(v)) throw invalid(`Invalid object`, param);
    return v;
  };
  const arr = (v: FormValue | undefined, param: string): FormValue[] => {
    if (v === undefined || v === '') return [];
    if (!Array.isArray(v)) throw invalid(`Invalid array`, param);
    return v;
  };
  /** `metadata[k]=v` merged into `base`; `metadata[k]=` unsets k; `metadata=` clears. */
  const metadata = (v: FormValue | undefined, base: Record<string, string> = {}): Record<string, string> => {
    if (v === undefined) return { ...base };
    if (v === '') return {};
    const m = sub(v, 'metadata')!;
    const out = { ...base };
    for (const [k, val] of Object.entries(m)) {
      if (typeof val !== 'string') throw invalid('Invalid metadata value', `metadata[${k}]`);
      if (val === '') delete out[k];
      else out[k] = val;
    }
    return out;
  };

  // ---------- objects ----------
  const base = (prefix: string, object: string, account: string | null): StubObject => {
    const id = randomId(prefix);
    owners.set(id, account);
    return { id, object, created: now(), livemode: false };
  };
  const find = <T extends StubObject>(
    map: Map<string, T>,
    id: string | undefined,
    account: string | null,
    kind: string,
    param = 'id',
  ): T => {
    const obj = id === undefined ? undefined : map.get(id);
    if (!obj || (owners.get(obj.id) ?? null) !== account) {
      throw new StripeApiError(
        404,
        'invalid_request_error',
        `No such ${kind}: '${id}'`,
        'resource_missing',
        param,
      );
    }
    return obj;
  };

  function createCustomer(f: Form, account: string | null): StubObject {
    const c: StubObject = {
      ...base('cus_', 'customer', account),
      address: null,
      balance: 0,
      currency: null,
      default_source: null,
      delinquent: false,
      description: str(f.description) ?? null,
      discount: null,
      email: str(f.email) ?? null,
      invoice_prefix: randomId('', 8).toUpperCase(),
      invoice_settings: {
        custom_fields: null,
        default_payment_method: null,
        footer: null,
        rendering_options: null,
      },
      metadata: metadata(f.metadata),
      name: str(f.name) ?? null,
      next_invoice_sequence: 1,
      phone: str(f.phone) ?? null,
      preferred_locales: [],
      shipping: null,
      tax_exempt: 'none',
      test_clock: null,
    };
    state.customers.set(c.id, c);
    return c;
  }

  function createProduct(f: Form, account: string | null): StubObject {
    const name = str(f.name);
    if (!name) throw missing('name');
    const p: StubObject = {
      ...base('prod_', 'product', account),
      active: true,
      default_price: null,
      description: str(f.description) ?? null,
      images: [],
      marketing_features: [],
      metadata: metadata(f.metadata),
      name,
      package_dimensions: null,
      shippable: null,
      statement_descriptor: null,
      tax_code: null,
      unit_label: null,
      updated: now(),
      url: null,
    };
    state.products.set(p.id, p);
    return p;
  }

  function createPrice(f: Form, account: string | null, param = ''): StubObject {
    const p = (name: string) => (param ? `${param}[${name}]` : name);
    const currency = str(f.currency)?.toLowerCase();
    if (!currency) throw missing(p('currency'));
    const unitAmount = int(f.unit_amount, p('unit_amount'));
    if (unitAmount === undefined) throw missing(p('unit_amount'));
    if (unitAmount < 0) throw invalid('This value must be greater than or equal to 0.', p('unit_amount'));
    let product = str(f.product);
    if (product) find(state.products, product, account, 'product', p('product'));
    else {
      const data = sub(f.product_data, p('product_data'));
      if (!data) throw missing(p('product'));
      product = createProduct(data, account).id;
    }
    const rec = sub(f.recurring, p('recurring'));
    let recurring: Record<string, unknown> | null = null;
    if (rec) {
      const interval = str(rec.interval);
      if (!interval) throw missing(p('recurring[interval]'));
      if (!['day', 'week', 'month', 'year'].includes(interval)) {
        throw invalid(
          `Invalid recurring[interval]: must be one of day, week, month, or year`,
          p('recurring[interval]'),
        );
      }
      recurring = {
        interval,
        interval_count: int(rec.interval_count, p('recurring[interval_count]')) ?? 1,
        meter: null,
        trial_period_days: null,
        usage_type: 'licensed',
      };
    }
    const price: StubObject = {
      ...base('price_', 'price', account),
      active: true,
      billing_scheme: 'per_unit',
      currency,
      custom_unit_amount: null,
      lookup_key: str(f.lookup_key) ?? null,
      metadata: metadata(f.metadata),
      nickname: str(f.nickname) ?? null,
      product,
      recurring,
      tax_behavior: 'unspecified',
      tiers_mode: null,
      transform_quantity: null,
      type: recurring ? 'recurring' : 'one_time',
      unit_amount: unitAmount,
      unit_amount_decimal: String(unitAmount),
    };
    state.prices.set(price.id, price);
    return price;
  }

  /** A `price` id or inline `price_data` from a line item / subscription item. */
  function priceOf(item: Form, account: string | null, param: string): StubObject {
    const id = str(item.price);
    if (id) return find(state.prices, id, account, 'price', `${param}[price]`);
    const data = sub(item.price_data, `${param}[price_data]`);
    if (!data) throw missing(`${param}[price]`);
    return createPrice(data, account, `${param}[price_data]`);
  }

  const addPeriod = (start: number, recurring: Record<string, unknown>): number => {
    const d = new Date(start * 1000);
    const n = Number(recurring.interval_count ?? 1);
    switch (recurring.interval) {
      case 'day':
        d.setUTCDate(d.getUTCDate() + n);
        break;
      case 'week':
        d.setUTCDate(d.getUTCDate() + 7 * n);
        break;
      case 'month':
        d.setUTCMonth(d.getUTCMonth() + n);
        break;
      default:
        d.setUTCFullYear(d.getUTCFullYear() + n);
    }
    return Math.floor(d.getTime() / 1000);
  };

  type Item = {
    id: string;
    price: StubObject;
    quantity: number;
    current_period_start: number;
    current_period_end: number;
  };
  const itemsOf = (s: StubObject) => (s.items as { data: Item[] }).data;

  function createSubscription(
    customer: string,
    items: { price: StubObject; quantity: number }[],
    meta: Record<string, string>,
    account: string | null,
  ): StubObject {
    const t = now();
    const s = base('sub_', 'subscription', account);
    const data: Item[] = items.map(({ price, quantity }) => {
      const id = randomId('si_');
      owners.set(id, account);
      return {
        id,
        object: 'subscription_item',
        created: t,
        current_period_start: t,
        current_period_end: addPeriod(t, price.recurring as Record<string, unknown>),
        discounts: [],
        metadata: {},
        price,
        quantity,
        subscription: s.id,
        tax_rates: [],
      };
    });
    Object.assign(s, {
      application: null,
      billing_cycle_anchor: t,
      cancel_at: null,
      cancel_at_period_end: false,
      canceled_at: null,
      cancellation_details: { comment: null, feedback: null, reason: null },
      collection_method: 'charge_automatically',
      currency: items[0]!.price.currency,
      customer,
      default_payment_method: null,
      description: null,
      discounts: [],
      ended_at: null,
      items: list(data as unknown as StubObject[], `/v1/subscription_items?subscription=${s.id}`),
      latest_invoice: null,
      metadata: meta,
      pause_collection: null,
      pending_update: null,
      schedule: null,
      start_date: t,
      status: 'active',
      test_clock: null,
      transfer_data: null,
      trial_end: null,
      trial_start: null,
    });
    state.subscriptions.set(s.id, s);
    return s;
  }

  function createPayment(
    amount: number,
    currency: string,
    customer: string | null,
    meta: Record<string, string>,
    account: string | null,
    description: string | null = null,
  ): { pi: StubObject; charge: StubObject } {
    const pi = base('pi_', 'payment_intent', account);
    const charge = base('ch_', 'charge', account);
    const pm = randomId('pm_');
    Object.assign(charge, {
      amount,
      amount_captured: amount,
      amount_refunded: 0,
      application_fee: null,
      application_fee_amount: null,
      balance_transaction: randomId('txn_'),
      billing_details: { address: null, email: null, name: null, phone: null },
      captured: true,
      currency,
      customer,
      description,
      disputed: false,
      failure_code: null,
      failure_message: null,
      metadata: { ...meta },
      outcome: {
        network_status: 'approved_by_network',
        reason: null,
        risk_level: 'normal',
        seller_message: 'Payment complete.',
        type: 'authorized',
      },
      paid: true,
      payment_intent: pi.id,
      payment_method: pm,
      payment_method_details: {
        type: 'card',
        card: {
          brand: 'visa',
          last4: '4242',
          exp_month: 12,
          exp_year: 2034,
          country: 'US',
          funding: 'credit',
        },
      },
      receipt_url: null,
      refunded: false,
      status: 'succeeded',
      transfer_group: null,
    });
    Object.assign(pi, {
      amount,
      amount_capturable: 0,
      amount_received: amount,
      application_fee_amount: null,
      canceled_at: null,
      capture_method: 'automatic',
      client_secret: `${pi.id}_secret_${randomId('', 24)}`,
      confirmation_method: 'automatic',
      currency,
      customer,
      description,
      last_payment_error: null,
      latest_charge: charge.id,
      metadata: { ...meta },
      next_action: null,
      on_behalf_of: null,
      payment_method: pm,
      payment_method_types: ['card'],
      status: 'succeeded',
      transfer_data: null,
      transfer_group: null,
    });
    state.paymentIntents.set(pi.id, pi);
    state.charges.set(charge.id, charge);
    return { pi, charge };
  }

  function createInvoice(
    s: StubObject,
    billingReason: string,
    paid: boolean,
    account: string | null,
  ): StubInvoice {
    const items = itemsOf(s);
    const customer = state.customers.get(String(s.customer));
    const total = items.reduce((sum, i) => sum + Number(i.price.unit_amount) * i.quantity, 0);
    const currency = String(s.currency);
    const inv = base('in_', 'invoice', account) as StubInvoice;
    const t = now();
    const seq = Number(customer?.next_invoice_sequence ?? 1);
    if (customer) customer.next_invoice_sequence = seq + 1;
    const lines = items.map((i) => ({
      id: randomId('il_'),
      object: 'line_item',
      amount: Number(i.price.unit_amount) * i.quantity,
      currency,
      description: `${i.quantity} × ${String(state.products.get(String(i.price.product))?.name ?? 'item')}`,
      discountable: true,
      invoice: inv.id,
      livemode: false,
      metadata: {},
      parent: {
        type: 'subscription_item_details',
        subscription_item_details: { subscription: s.id, subscription_item: i.id, proration: false },
        invoice_item_details: null,
      },
      period: { start: i.current_period_start, end: i.current_period_end },
      pricing: {
        type: 'price_details',
        price_details: { price: i.price.id, product: i.price.product },
        unit_amount_decimal: String(i.price.unit_amount),
      },
      quantity: i.quantity,
    }));
    let payments: StubObject[] = [];
    if (paid) {
      const { pi } = createPayment(total, currency, String(s.customer), {}, account, 'Subscription update');
      const payment: StubObject = {
        id: randomId('inpay_'),
        object: 'invoice_payment',
        amount_paid: total,
        amount_requested: total,
        created: t,
        currency,
        invoice: inv.id,
        is_default: true,
        livemode: false,
        payment: { type: 'payment_intent', payment_intent: pi.id },
        status: 'paid',
        status_transitions: { canceled_at: null, paid_at: t },
      };
      payments = [payment];
    }
    Object.assign(inv, {
      account_country: 'US',
      account_name: 'Soulfra stub',
      amount_due: total,
      amount_overpaid: 0,
      amount_paid: paid ? total : 0,
      amount_remaining: paid ? 0 : total,
      amount_shipping: 0,
      attempt_count: 1,
      attempted: true,
      auto_advance: !paid,
      billing_reason: billingReason,
      collection_method: 'charge_automatically',
      currency,
      customer: s.customer,
      customer_email: customer?.email ?? null,
      customer_name: customer?.name ?? null,
      default_payment_method: null,
      description: null,
      discounts: [],
      due_date: null,
      effective_at: t,
      ending_balance: 0,
      hosted_invoice_url: `${base_url}/invoice/${inv.id}`,
      invoice_pdf: `${base_url}/invoice/${inv.id}/pdf`,
      lines: list(lines as unknown as StubObject[], `/v1/invoices/${inv.id}/lines`),
      metadata: {},
      next_payment_attempt: paid ? null : t + 3 * 86400,
      number: `${String(customer?.invoice_prefix ?? 'STUB')}-${String(seq).padStart(4, '0')}`,
      parent: {
        type: 'subscription_details',
        quote_details: null,
        subscription_details: { metadata: { ...(s.metadata as Record<string, string>) }, subscription: s.id },
      },
      payments: list(payments, `/v1/invoices/${inv.id}/payments`),
      period_start: items[0]!.current_period_start,
      period_end: items[0]!.current_period_end,
      starting_balance: 0,
      status: paid ? 'paid' : 'open',
      status_transitions: {
        finalized_at: t,
        marked_uncollectible_at: null,
        paid_at: paid ? t : null,
        voided_at: null,
      },
      subtotal: total,
      subtotal_excluding_tax: total,
      total,
      total_excluding_tax: total,
      webhooks_delivered_at: t,
    });
    state.invoices.set(inv.id, inv);
    s.latest_invoice = inv.id;
    return inv;
  }

  function refundCharge(f: Form, account: string | null): { refund: StubObject; charge: StubObject } {
    let charge: StubObject;
    const piId = str(f.payment_intent);
    const chId = str(f.charge);
    if (piId) {
      const pi = find(state.paymentIntents, piId, account, 'payment_intent', 'payment_intent');
      if (pi.status !== 'succeeded') {
        throw invalid(
          `This PaymentIntent (${pi.id}) does not have a successful charge to refund.`,
          'payment_intent',
          'charge_not_refundable',
        );
      }
      charge = find(state.charges, String(pi.latest_charge), account, 'charge', 'payment_intent');
    } else if (chId) {
      charge = find(state.charges, chId, account, 'charge', 'charge');
    } else {
      throw invalid(
        'One of the following params should be provided for this request: payment_intent or charge.',
        'charge',
      );
    }
    const remaining = Number(charge.amount) - Number(charge.amount_refunded);
    if (remaining <= 0) {
      throw invalid(`Charge ${charge.id} has already been refunded.`, undefined, 'charge_already_refunded');
    }
    const amount = int(f.amount, 'amount') ?? remaining;
    if (amount <= 0) throw invalid('Invalid positive integer', 'amount');
    if (amount > remaining) {
      const cur = String(charge.currency);
      throw invalid(
        `Refund amount (${money(amount, cur)}) is greater than unrefunded amount on charge (${money(remaining, cur)})`,
        'amount',
        'amount_too_large',
      );
    }
    const reason = str(f.reason) ?? null;
    if (reason && !['duplicate', 'fraudulent', 'requested_by_customer'].includes(reason)) {
      throw invalid(
        'Invalid reason: must be one of duplicate, fraudulent, or requested_by_customer',
        'reason',
      );
    }
    const refund: StubObject = {
      ...base('re_', 'refund', account),
      amount,
      balance_transaction: randomId('txn_'),
      charge: charge.id,
      currency: charge.currency,
      destination_details: {
        type: 'card',
        card: { reference_status: 'pending', reference_type: 'acquirer_reference_number', type: 'refund' },
      },
      metadata: metadata(f.metadata),
      payment_intent: charge.payment_intent,
      reason,
      receipt_number: null,
      source_transfer_reversal: null,
      status: 'succeeded',
      transfer_reversal: null,
    };
    state.refunds.set(refund.id, refund);
    charge.amount_refunded = Number(charge.amount_refunded) + amount;
    charge.refunded = charge.amount_refunded === charge.amount;
    return { refund, charge };
  }

  function createAccount(f: Form): StubObject {
    const type = str(f.type) ?? (sub(f.controller, 'controller') ? 'none' : 'standard');
    if (!['express', 'standard', 'custom', 'none'].includes(type)) {
      throw invalid('Invalid type: must be one of custom, express, or standard', 'type');
    }
    const capabilities: Record<string, string> = {};
    const caps = sub(f.capabilities, 'capabilities') ?? {};
    for (const [name, v] of Object.entries(caps)) {
      if (bool(sub(v, `capabilities[${name}]`)?.requested, `capabilities[${name}][requested]`)) {
        capabilities[name] = 'inactive';
      }
    }
    const due = ['business_type', 'external_account', 'tos_acceptance.date', 'tos_acceptance.ip'];
    const a: StubObject = {
      ...base('acct_', 'account', null),
      business_profile: { mcc: null, name: null, url: null, support_email: null },
      business_type: str(f.business_type) ?? null,
      capabilities,
      charges_enabled: false,
      controller: { type: type === 'standard' ? 'account' : 'application', is_controller: true },
      country: str(f.country)?.toUpperCase() ?? 'US',
      default_currency: 'usd',
      details_submitted: false,
      email: str(f.email) ?? null,
      external_accounts: list([], '/v1/accounts/acct/external_accounts'),
      future_requirements: {
        alternatives: [],
        current_deadline: null,
        currently_due: [],
        disabled_reason: null,
        errors: [],
        eventually_due: [],
        past_due: [],
        pending_verification: [],
      },
      metadata: metadata(f.metadata),
      payouts_enabled: false,
      requirements: {
        alternatives: [],
        current_deadline: null,
        currently_due: due,
        disabled_reason: 'requirements.past_due',
        errors: [],
        eventually_due: due,
        past_due: due,
        pending_verification: [],
      },
      settings: { payouts: { schedule: { interval: 'daily', delay_days: 2 } } },
      tos_acceptance: { date: null },
      type,
    };
    state.accounts.set(a.id, a);
    return a;
  }

  function onboard(a: StubObject): Record<string, unknown> {
    const previous = {
      charges_enabled: a.charges_enabled,
      payouts_enabled: a.payouts_enabled,
      details_submitted: a.details_submitted,
      capabilities: { ...(a.capabilities as Record<string, string>) },
    };
    const caps = a.capabilities as Record<string, string>;
    for (const k of Object.keys(caps)) caps[k] = 'active';
    Object.assign(a, {
      charges_enabled: true,
      payouts_enabled: true,
      details_submitted: true,
      business_type: a.business_type ?? 'individual',
      tos_acceptance: { date: now() },
      requirements: {
        ...(a.requirements as object),
        currently_due: [],
        eventually_due: [],
        past_due: [],
        disabled_reason: null,
      },
    });
    return previous;
  }

  // ---------- webhooks ----------
  function emit(type: string, object: StubObject, o: StripeEmitOptions = {}): Promise<StripeEmitted> {
    const event = {
      id: randomId('evt_'),
      object: 'event',
      ...(o.account ? { account: o.account } : {}),
      api_version: apiVersion,
      created: now(),
      data: {
        object: structuredClone(object),
        ...(o.previousAttributes ? { previous_attributes: o.previousAttributes } : {}),
      },
      livemode: false,
      pending_webhooks: endpoints.length,
      request: o.request ?? { id: null, idempotency_key: null },
      type,
    };
    const payload = JSON.stringify(event, null, 2);
    const targets = [...endpoints];
    const timestamp = o.timestamp ?? now();
    // The SDK's signer; under Bun the SDK's crypto is SubtleCrypto, so only the async form works.
    const sign = (secret: string) =>
      signer.webhooks.generateTestHeaderStringAsync({ payload, secret, timestamp });
    const emitted: StripeEmitted = { event, payload, header: '', status: 0, deliveries: [] };
    state.events.push(emitted);
    const headers = Promise.all(targets.map((t) => sign(t.secret)));
    const fallback = targets.length === 0 && o.secret ? sign(o.secret) : Promise.resolve('');
    const run = queue.then(async () => {
      const signed = await headers;
      emitted.header = signed[0] ?? (await fallback);
      for (const [i, endpoint] of targets.entries()) {
        const header = signed[i]!;
        let status = 0;
        try {
          const res = await fetch(endpoint.url, {
            method: 'POST',
            headers: {
              'content-type': 'application/json; charset=utf-8',
              'stripe-signature': header,
              'user-agent': 'Stripe/1.0 (+https://stripe.com/docs/webhooks)',
            },
            body: payload,
            signal: AbortSignal.timeout(deliveryTimeoutMs),
          });
          await res.arrayBuffer();
          status = res.status;
        } catch {
          status = 0;
        }
        emitted.deliveries.push({ endpoint, header, status });
        if (i === 0) emitted.status = status;
      }
    });
    queue = run.catch(() => {});
    const done = run.then(() => emitted);
    completion.set(emitted, done);
    const matched = waiters.filter(
      (w) => w.type === type && (w.objectId === undefined || w.objectId === object.id),
    );
    waiters = waiters.filter((w) => !matched.includes(w));
    for (const w of matched) w.resolve(done);
    return done;
  }
  const completion = new Map<StripeEmitted, Promise<StripeEmitted>>();
  /** The platform's own account (`GET /v1/account` without `Stripe-Account`). */
  const platformAccount: StubObject = {
    id: randomId('acct_', 16),
    object: 'account',
    business_profile: { name: 'Soulfra stub platform', url: null },
    charges_enabled: true,
    country: 'US',
    default_currency: 'usd',
    details_submitted: true,
    email: null,
    metadata: {},
    payouts_enabled: true,
    settings: { dashboard: { display_name: 'Soulfra stub platform' } },
    type: 'standard',
  };

  /** Emits in order (each queued behind the previous), resolving once all are delivered. */
  const emitAll = (events: [string, StubObject, StripeEmitOptions?][]) =>
    Promise.all(events.map(([type, obj, o]) => emit(type, obj, o)));

  // ---------- expand ----------
  const lookup = (id: string): StubObject | undefined => {
    for (const m of [
      state.customers,
      state.products,
      state.prices,
      state.checkoutSessions,
      state.subscriptions,
      state.invoices,
      state.paymentIntents,
      state.charges,
      state.refunds,
      state.accounts,
      state.transfers,
    ] as Map<string, StubObject>[]) {
      const o = m.get(id);
      if (o) return o;
    }
    return undefined;
  };
  function expand(obj: StubObject, paths: string[]): StubObject {
    const out = structuredClone(obj);
    for (const path of paths) {
      const parts = path.split('.');
      const walk = (node: unknown, i: number): unknown => {
        if (i === parts.length) return node;
        if (Array.isArray(node)) return node.map((n) => walk(n, i));
        if (!node || typeof node !== 'object') return node;
        const rec = node as Record<string, unknown>;
        const key = parts[i]!;
        let v = rec[key];
        if (key === 'line_items' && rec.object === 'checkout.session') {
          v = sessionLineItems.get(String(rec.id)) ?? null;
        } else if (typeof v === 'string') {
          const target = lookup(v);
          if (target) v = structuredClone(target);
        }
        rec[key] = walk(v, i + 1);
        return rec;
      };
      walk(out, 0);
    }
    return out;
  }
  const sessionLineItems = new Map<string, ReturnType<typeof list>>();

  // ---------- API routes ----------
  type Ctx = {
    account: string | null;
    form: Form;
    method: string;
    requestId: string;
    idempotencyKey: string | null;
  };
  type Handler = (ctx: Ctx, id: string) => StubObject | Record<string, unknown>;
  const reqInfo = (c: Ctx) => ({ id: c.requestId, idempotency_key: c.idempotencyKey });
  const fire = (c: Ctx, type: string, obj: StubObject, previous?: Record<string, unknown>) => {
    void emit(type, obj, {
      account: c.account,
      request: reqInfo(c),
      ...(previous ? { previousAttributes: previous } : {}),
    });
  };

  /** Which SDK params interface documents each request (for refusing unknown parameters). */
  const paramSpecs: [string, RegExp, string, string][] = [
    ['POST', /^\/v1\/customers$/, 'Customers', 'CustomerCreateParams'],
    ['GET', /^\/v1\/customers$/, 'Customers', 'CustomerListParams'],
    ['POST', /^\/v1\/customers\/[^/]+$/, 'Customers', 'CustomerUpdateParams'],
    ['POST', /^\/v1\/products$/, 'Products', 'ProductCreateParams'],
    ['POST', /^\/v1\/prices$/, 'Prices', 'PriceCreateParams'],
    ['POST', /^\/v1\/checkout\/sessions$/, 'Checkout/Sessions', 'SessionCreateParams'],
    ['POST', /^\/v1\/billing_portal\/sessions$/, 'BillingPortal/Sessions', 'SessionCreateParams'],
    ['GET', /^\/v1\/subscriptions$/, 'Subscriptions', 'SubscriptionListParams'],
    ['POST', /^\/v1\/subscriptions\/[^/]+$/, 'Subscriptions', 'SubscriptionUpdateParams'],
    ['DELETE', /^\/v1\/subscriptions\/[^/]+$/, 'Subscriptions', 'SubscriptionCancelParams'],
    ['GET', /^\/v1\/invoices$/, 'Invoices', 'InvoiceListParams'],
    ['POST', /^\/v1\/refunds$/, 'Refunds', 'RefundCreateParams'],
    ['POST', /^\/v1\/accounts$/, 'Accounts', 'AccountCreateParams'],
    ['POST', /^\/v1\/accounts\/[^/]+$/, 'Accounts', 'AccountUpdateParams'],
    ['POST', /^\/v1\/account_links$/, 'AccountLinks', 'AccountLinkCreateParams'],
    ['POST', /^\/v1\/transfers$/, 'Transfers', 'TransferCreateParams'],
    ['POST', /^\/v1\/payment_intents$/, 'PaymentIntents', 'PaymentIntentCreateParams'],
  ];
  const checkParams = (method: string, path: string, form: Form) => {
    const spec = paramSpecs.find(([m, re]) => m === method && re.test(path));
    const known = spec ? documentedParams(spec[2], spec[3]) : null;
    if (!known) return;
    for (const k of Object.keys(form)) {
      if (!known.has(k)) throw invalid(`Received unknown parameter: ${k}`, k, 'parameter_unknown');
    }
  };

  const routes: [string, RegExp, Handler][] = [
    ['GET', /^\/v1\/account$/, (c) => (c.account ? state.accounts.get(c.account)! : platformAccount)],
    [
      'POST',
      /^\/v1\/customers$/,
      (c) => {
        const cus = createCustomer(c.form, c.account);
        fire(c, 'customer.created', cus);
        return cus;
      },
    ],
    [
      'GET',
      /^\/v1\/customers$/,
      (c) => {
        const email = str(c.form.email);
        const data = [...state.customers.values()].filter(
          (x) => state.accountOf(x.id) === c.account && !x.deleted && (!email || x.email === email),
        );
        return page_(data.reverse(), c.form, '/v1/customers');
      },
    ],
    ['GET', /^\/v1\/customers\/([^/]+)$/, (c, id) => find(state.customers, id, c.account, 'customer')],
    [
      'POST',
      /^\/v1\/customers\/([^/]+)$/,
      (c, id) => {
        const cus = find(state.customers, id, c.account, 'customer');
        const previous: Record<string, unknown> = {};
        for (const k of ['email', 'name', 'description', 'phone'] as const) {
          if (c.form[k] !== undefined) {
            previous[k] = cus[k];
            cus[k] = str(c.form[k]) ?? null;
          }
        }
        if (c.form.metadata !== undefined) {
          previous.metadata = cus.metadata;
          cus.metadata = metadata(c.form.metadata, cus.metadata as Record<string, string>);
        }
        fire(c, 'customer.updated', cus, previous);
        return cus;
      },
    ],
    [
      'DELETE',
      /^\/v1\/customers\/([^/]+)$/,
      (c, id) => {
        const cus = find(state.customers, id, c.account, 'customer');
        state.customers.delete(id);
        fire(c, 'customer.deleted', cus);
        return { id, object: 'customer', deleted: true };
      },
    ],
    ['POST', /^\/v1\/products$/, (c) => createProduct(c.form, c.account)],
    ['GET', /^\/v1\/products\/([^/]+)$/, (c, id) => find(state.products, id, c.account, 'product')],
    ['POST', /^\/v1\/prices$/, (c) => createPrice(c.form, c.account)],
    ['GET', /^\/v1\/prices\/([^/]+)$/, (c, id) => find(state.prices, id, c.account, 'price')],
    ['POST', /^\/v1\/checkout\/sessions$/, (c) => createSession(c)],
    [
      'GET',
      /^\/v1\/checkout\/sessions\/([^/]+)$/,
      (c, id) => find(state.checkoutSessions, id, c.account, 'checkout.session'),
    ],
    [
      'GET',
      /^\/v1\/checkout\/sessions\/([^/]+)\/line_items$/,
      (c, id) => {
        find(state.checkoutSessions, id, c.account, 'checkout.session');
        return sessionLineItems.get(id)!;
      },
    ],
    [
      'POST',
      /^\/v1\/checkout\/sessions\/([^/]+)\/expire$/,
      (c, id) => {
        const s = find(state.checkoutSessions, id, c.account, 'checkout.session');
        if (s.status !== 'open') {
          throw invalid(
            `Only Checkout Sessions with a status in ["open"] can be expired. This Checkout Session has a status of "${String(s.status)}".`,
            undefined,
            'checkout_session_not_open',
          );
        }
        Object.assign(s, { status: 'expired', url: null });
        fire(c, 'checkout.session.expired', s);
        return s;
      },
    ],
    [
      'POST',
      /^\/v1\/billing_portal\/sessions$/,
      (c) => {
        const customer = str(c.form.customer);
        if (!customer) throw missing('customer');
        find(state.customers, customer, c.account, 'customer', 'customer');
        const s = base('bps_', 'billing_portal.session', c.account);
        Object.assign(s, {
          configuration: 'bpc_stubdefault',
          customer,
          flow: null,
          locale: str(c.form.locale) ?? null,
          on_behalf_of: null,
          return_url: str(c.form.return_url) ?? null,
          url: `${base_url}/portal/${s.id}`,
        });
        state.portalSessions.set(s.id, s);
        return s;
      },
    ],
    [
      'GET',
      /^\/v1\/subscriptions\/([^/]+)$/,
      (c, id) => find(state.subscriptions, id, c.account, 'subscription'),
    ],
    [
      'GET',
      /^\/v1\/subscriptions$/,
      (c) => {
        const customer = str(c.form.customer);
        const status = str(c.form.status);
        const data = [...state.subscriptions.values()].filter(
          (s) =>
            state.accountOf(s.id) === c.account &&
            (!customer || s.customer === customer) &&
            (status === 'all' || (status ? s.status === status : s.status !== 'canceled')),
        );
        return page_(data.reverse(), c.form, '/v1/subscriptions');
      },
    ],
    ['POST', /^\/v1\/subscriptions\/([^/]+)$/, (c, id) => updateSubscription(c, id)],
    [
      'DELETE',
      /^\/v1\/subscriptions\/([^/]+)$/,
      (c, id) => {
        const s = find(state.subscriptions, id, c.account, 'subscription');
        const previous = cancelNow(s);
        void emit('customer.subscription.deleted', s, {
          account: c.account,
          request: reqInfo(c),
          previousAttributes: previous,
        });
        return s;
      },
    ],
    ['GET', /^\/v1\/invoices\/([^/]+)$/, (c, id) => find(state.invoices, id, c.account, 'invoice')],
    [
      'GET',
      /^\/v1\/invoices$/,
      (c) => {
        const customer = str(c.form.customer);
        const subscription = str(c.form.subscription);
        const status = str(c.form.status);
        const data = [...state.invoices.values()].filter(
          (i) =>
            state.accountOf(i.id) === c.account &&
            (!customer || i.customer === customer) &&
            (!status || i.status === status) &&
            (!subscription ||
              (i.parent as { subscription_details?: { subscription?: string } } | null)?.subscription_details
                ?.subscription === subscription),
        );
        const limit = int(c.form.limit, 'limit') ?? 10;
        const sorted = data.reverse();
        return { ...list(sorted.slice(0, limit), '/v1/invoices'), has_more: sorted.length > limit };
      },
    ],
    [
      'POST',
      /^\/v1\/payment_intents$/,
      (c) => {
        const amount = int(c.form.amount, 'amount');
        if (amount === undefined) throw missing('amount');
        const currency = str(c.form.currency)?.toLowerCase();
        if (!currency) throw missing('currency');
        const customer = str(c.form.customer) ?? null;
        const pm = str(c.form.payment_method) ?? null;
        if (bool(c.form.confirm, 'confirm') !== true)
          throw invalid(
            'This stub creates payment intents confirmed at once (confirm=true) only.',
            'confirm',
          );
        if (!pm) throw missing('payment_method');
        const off = str(c.form.off_session);
        if (off && savedMethods.get(pm) !== customer)
          throw invalid(
            `The provided PaymentMethod ${pm} was previously used with a PaymentIntent without Customer attachment, shared with a connected account without Customer attachment, or was detached from a Customer. It may not be used again.`,
            'payment_method',
          );
        const { pi, charge } = createPayment(
          amount,
          currency,
          customer,
          metadata(c.form.metadata),
          c.account,
          str(c.form.description) ?? null,
        );
        pi.payment_method = pm;
        charge.payment_method = pm;
        if (declined.has(pm)) {
          // Stripe's card error: 402, the intent left waiting for another payment method.
          Object.assign(pi, {
            status: 'requires_payment_method',
            latest_charge: null,
            amount_received: 0,
            last_payment_error: {
              type: 'card_error',
              code: 'card_declined',
              decline_code: 'insufficient_funds',
            },
          });
          state.charges.delete(String(charge.id));
          fire(c, 'payment_intent.payment_failed', pi);
          throw new StripeApiError(
            402,
            'card_error',
            'Your card has insufficient funds.',
            'card_declined',
            undefined,
          );
        }
        fire(c, 'payment_intent.succeeded', pi);
        fire(c, 'charge.succeeded', charge);
        return pi;
      },
    ],
    [
      'GET',
      /^\/v1\/payment_intents\/([^/]+)$/,
      (c, id) => find(state.paymentIntents, id, c.account, 'payment_intent'),
    ],
    ['GET', /^\/v1\/charges\/([^/]+)$/, (c, id) => find(state.charges, id, c.account, 'charge')],
    [
      'POST',
      /^\/v1\/refunds$/,
      (c) => {
        const { refund, charge } = refundCharge(c.form, c.account);
        fire(c, 'charge.refunded', charge);
        fire(c, 'refund.created', refund);
        return refund;
      },
    ],
    ['GET', /^\/v1\/refunds\/([^/]+)$/, (c, id) => find(state.refunds, id, c.account, 'refund')],
    [
      'POST',
      /^\/v1\/accounts$/,
      (c) => {
        if (c.account)
          throw invalid('You cannot create connected accounts on behalf of a connected account.');
        const a = createAccount(c.form);
        return a;
      },
    ],
    [
      'GET',
      /^\/v1\/accounts\/([^/]+)$/,
      (c, id) => {
        if (c.account && c.account !== id)
          throw new StripeApiError(
            404,
            'invalid_request_error',
            `No such account: '${id}'`,
            'resource_missing',
            'id',
          );
        const a = state.accounts.get(id);
        if (!a)
          throw new StripeApiError(
            404,
            'invalid_request_error',
            `No such account: '${id}'`,
            'resource_missing',
            'id',
          );
        return a;
      },
    ],
    [
      'POST',
      /^\/v1\/accounts\/([^/]+)$/,
      (c, id) => {
        const a = find(state.accounts, id, null, 'account');
        const previous: Record<string, unknown> = {};
        if (c.form.email !== undefined) {
          previous.email = a.email;
          a.email = str(c.form.email) ?? null;
        }
        if (c.form.metadata !== undefined) {
          previous.metadata = a.metadata;
          a.metadata = metadata(c.form.metadata, a.metadata as Record<string, string>);
        }
        void emit('account.updated', a, { account: a.id, request: reqInfo(c), previousAttributes: previous });
        return a;
      },
    ],
    [
      'POST',
      /^\/v1\/account_links$/,
      (c) => {
        const account = str(c.form.account);
        if (!account) throw missing('account');
        find(state.accounts, account, null, 'account', 'account');
        const type = str(c.form.type);
        if (!type) throw missing('type');
        if (!['account_onboarding', 'account_update'].includes(type)) {
          throw invalid('Invalid type: must be one of account_onboarding or account_update', 'type');
        }
        const refresh = str(c.form.refresh_url);
        const ret = str(c.form.return_url);
        if (!ret) throw missing('return_url');
        const link: StubObject = {
          id: randomId('acctlink_'),
          object: 'account_link',
          created: now(),
          expires_at: now() + 300,
          url: `${base_url}/connect/onboard/${account}?link=${randomId('', 16)}`,
        };
        state.accountLinks.push({ ...link, account, type, refresh_url: refresh ?? null, return_url: ret });
        const { id: _id, ...wire } = link;
        return wire;
      },
    ],
    [
      'POST',
      /^\/v1\/transfers$/,
      (c) => {
        const amount = int(c.form.amount, 'amount');
        if (amount === undefined) throw missing('amount');
        const currency = str(c.form.currency)?.toLowerCase();
        if (!currency) throw missing('currency');
        const destination = str(c.form.destination);
        if (!destination) throw missing('destination');
        const dest = find(state.accounts, destination, null, 'destination', 'destination');
        const caps = dest.capabilities as Record<string, string>;
        if (
          caps.transfers !== 'active' &&
          caps.crypto_transfers !== 'active' &&
          caps.legacy_payments !== 'active'
        ) {
          throw invalid(
            'Your destination account needs to have at least one of the following capabilities enabled: transfers, crypto_transfers, legacy_payments',
            'destination',
            'insufficient_capabilities_for_transfer',
          );
        }
        const source = str(c.form.source_transaction) ?? null;
        if (source) {
          const ch = find(state.charges, source, c.account, 'charge', 'source_transaction');
          if (ch.currency !== currency) {
            throw invalid(
              `The currency of source_transaction's balance transaction (${String(ch.currency)}) must be the same as the transfer currency (${currency})`,
              'currency',
            );
          }
        }
        const tr: StubObject = {
          ...base('tr_', 'transfer', c.account),
          amount,
          amount_reversed: 0,
          balance_transaction: randomId('txn_'),
          currency,
          description: str(c.form.description) ?? null,
          destination,
          destination_payment: randomId('py_'),
          metadata: metadata(c.form.metadata),
          reversals: list([], '/v1/transfers/tr/reversals'),
          reversed: false,
          source_transaction: source,
          source_type: 'card',
          transfer_group: str(c.form.transfer_group) ?? null,
        };
        (tr.reversals as { url: string }).url = `/v1/transfers/${tr.id}/reversals`;
        state.transfers.set(tr.id, tr);
        fire(c, 'transfer.created', tr);
        return tr;
      },
    ],
    ['GET', /^\/v1\/transfers\/([^/]+)$/, (c, id) => find(state.transfers, id, c.account, 'transfer')],
    [
      'GET',
      /^\/v1\/events\/([^/]+)$/,
      (c, id) => {
        const e = state.events.find(
          (x) => x.event.id === id && ((x.event.account as string | undefined) ?? null) === c.account,
        );
        if (!e)
          throw new StripeApiError(
            404,
            'invalid_request_error',
            `No such event: '${id}'`,
            'resource_missing',
            'id',
          );
        return e.event;
      },
    ],
  ];

  function createSession(c: Ctx): StubObject {
    const f = c.form;
    const mode = str(f.mode);
    if (!mode) throw missing('mode');
    if (!['payment', 'subscription', 'setup'].includes(mode)) {
      throw invalid('Invalid mode: must be one of payment, setup, or subscription', 'mode');
    }
    const customer = str(f.customer) ?? null;
    if (customer) find(state.customers, customer, c.account, 'customer', 'customer');
    const customerEmail = str(f.customer_email) ?? null;
    if (customer && customerEmail) {
      throw invalid(
        'You may only specify one of these parameters: customer, customer_email.',
        'customer_email',
      );
    }
    const rawItems = arr(f.line_items, 'line_items');
    if (mode !== 'setup' && rawItems.length === 0) {
      throw invalid(`line_items is required when mode is ${mode}.`, 'line_items', 'parameter_missing');
    }
    const items = rawItems.map((raw, i) => {
      const item = sub(raw, `line_items[${i}]`) ?? {};
      const price = priceOf(item, c.account, `line_items[${i}]`);
      const quantity = int(item.quantity, `line_items[${i}][quantity]`) ?? 1;
      if (quantity < 1)
        throw invalid('This value must be greater than or equal to 1.', `line_items[${i}][quantity]`);
      return { price, quantity };
    });
    if (mode === 'subscription' && !items.some((i) => i.price.recurring)) {
      throw invalid(
        'You must provide at least one recurring price in `subscription` mode when using prices.',
        'line_items',
      );
    }
    if (mode === 'payment' && items.some((i) => i.price.recurring)) {
      throw invalid(
        'You specified `payment` mode but passed a recurring price. Either switch to `subscription` mode or use only one-time prices.',
        'line_items',
      );
    }
    const currencies = new Set(items.map((i) => i.price.currency));
    if (currencies.size > 1) throw invalid('All line items must have the same currency.', 'line_items');
    const total = items.reduce((s, i) => s + Number(i.price.unit_amount) * i.quantity, 0);
    const s = base('cs_test_', 'checkout.session', c.account);
    const t = Number(s.created);
    const pid = sub(f.payment_intent_data, 'payment_intent_data') ?? {};
    const sd = sub(f.subscription_data, 'subscription_data') ?? {};
    Object.assign(s, {
      after_expiration: null,
      allow_promotion_codes: null,
      amount_subtotal: total,
      amount_total: total,
      automatic_tax: { enabled: false, liability: null, status: null },
      billing_address_collection: null,
      cancel_url: str(f.cancel_url) ?? null,
      client_reference_id: str(f.client_reference_id) ?? null,
      consent: null,
      currency: items[0]?.price.currency ?? null,
      customer,
      customer_creation: customer ? null : mode === 'payment' ? 'if_required' : 'always',
      customer_details: null,
      customer_email: customerEmail,
      expires_at: t + 86400,
      invoice: null,
      locale: str(f.locale) ?? null,
      metadata: metadata(f.metadata),
      mode,
      payment_intent: null,
      payment_method_types: ['card'],
      payment_status: mode === 'setup' ? 'no_payment_required' : 'unpaid',
      status: 'open',
      subscription: null,
      success_url: str(f.success_url) ?? null,
      total_details: { amount_discount: 0, amount_shipping: 0, amount_tax: 0 },
      ui_mode: 'hosted',
      url: `${base_url}/pay/${s.id}`,
    });
    pendingData.set(s.id, {
      items,
      paymentIntentMetadata: metadata(pid.metadata),
      subscriptionMetadata: metadata(sd.metadata),
      setupFutureUsage: str(pid.setup_future_usage) ?? null,
    });
    sessionLineItems.set(
      s.id,
      list(
        items.map(({ price, quantity }) => ({
          id: randomId('li_'),
          object: 'item',
          amount_discount: 0,
          amount_subtotal: Number(price.unit_amount) * quantity,
          amount_tax: 0,
          amount_total: Number(price.unit_amount) * quantity,
          currency: price.currency,
          description: String(state.products.get(String(price.product))?.name ?? ''),
          price,
          quantity,
        })),
        `/v1/checkout/sessions/${s.id}/line_items`,
      ),
    );
    state.checkoutSessions.set(s.id, s);
    return s;
  }
  const pendingData = new Map<
    string,
    {
      items: { price: StubObject; quantity: number }[];
      paymentIntentMetadata: Record<string, string>;
      subscriptionMetadata: Record<string, string>;
      setupFutureUsage: string | null;
    }
  >();
  /** Payment methods saved to a customer (a paid checkout with setup_future_usage): pm → customer. */
  const savedMethods = new Map<string, string>();
  /** Payment methods whose next charges are declined (declinePaymentMethod). */
  const declined = new Set<string>();

  /** Completes an open session as a paying buyer would; the events to emit, in order. */
  function completeSession(s: StubObject, email: string | null): [string, StubObject, StripeEmitOptions?][] {
    const account = state.accountOf(s.id);
    const data = pendingData.get(s.id)!;
    const events: [string, StubObject, StripeEmitOptions?][] = [];
    const o = { account };
    let customer = s.customer as string | null;
    const buyerEmail =
      email ??
      (s.customer_email as string | null) ??
      (customer ? (state.customers.get(customer)?.email as string | null) : null);
    if (!customer && s.mode !== 'payment') {
      const cus = createCustomer(buyerEmail ? { email: buyerEmail } : {}, account);
      customer = cus.id;
      events.push(['customer.created', cus, o]);
    }
    s.customer = customer;
    s.customer_details = {
      address: null,
      email: buyerEmail,
      name: null,
      phone: null,
      tax_exempt: 'none',
      tax_ids: [],
    };
    if (s.mode === 'subscription') {
      const sb = createSubscription(customer!, data.items, data.subscriptionMetadata, account);
      const inv = createInvoice(sb, 'subscription_create', true, account);
      s.subscription = sb.id;
      s.invoice = inv.id;
      events.push(['customer.subscription.created', sb, o], ['invoice.paid', inv, o]);
    } else if (s.mode === 'payment') {
      const { pi, charge } = createPayment(
        Number(s.amount_total),
        String(s.currency),
        customer,
        data.paymentIntentMetadata,
        account,
      );
      charge.billing_details = { address: null, email: buyerEmail, name: null, phone: null };
      s.payment_intent = pi.id;
      // Saved for later off-session charges, as Stripe attaches it to the customer.
      if (data.setupFutureUsage && customer) {
        savedMethods.set(String(pi.payment_method), customer);
        pi.setup_future_usage = data.setupFutureUsage;
      }
      events.push(['payment_intent.succeeded', pi, o], ['charge.succeeded', charge, o]);
    }
    Object.assign(s, {
      status: 'complete',
      payment_status: s.mode === 'setup' ? 'no_payment_required' : 'paid',
      url: null,
    });
    events.push(['checkout.session.completed', s, o]);
    return events;
  }

  function updateSubscription(c: Ctx, id: string): StubObject {
    const s = find(state.subscriptions, id, c.account, 'subscription');
    if (s.status === 'canceled') {
      throw invalid(
        'A canceled subscription can only update its cancellation_details and metadata.',
        undefined,
        'resource_already_canceled',
      );
    }
    const previous: Record<string, unknown> = {};
    const cape = bool(c.form.cancel_at_period_end, 'cancel_at_period_end');
    if (cape !== undefined && cape !== s.cancel_at_period_end) {
      previous.cancel_at_period_end = s.cancel_at_period_end;
      previous.cancel_at = s.cancel_at;
      previous.canceled_at = s.canceled_at;
      s.cancel_at_period_end = cape;
      s.cancel_at = cape ? itemsOf(s)[0]!.current_period_end : null;
      s.canceled_at = cape ? now() : null;
    }
    if (c.form.metadata !== undefined) {
      previous.metadata = s.metadata;
      s.metadata = metadata(c.form.metadata, s.metadata as Record<string, string>);
    }
    const rawItems = arr(c.form.items, 'items');
    if (rawItems.length > 0) {
      previous.items = structuredClone(s.items);
      const items = itemsOf(s);
      for (const [i, raw] of rawItems.entries()) {
        const f = sub(raw, `items[${i}]`) ?? {};
        const itemId = str(f.id);
        const existing = itemId ? items.find((x) => x.id === itemId) : undefined;
        if (itemId && !existing) {
          throw new StripeApiError(
            404,
            'invalid_request_error',
            `No such subscription_item: '${itemId}'`,
            'resource_missing',
            `items[${i}][id]`,
          );
        }
        if (existing && bool(f.deleted, `items[${i}][deleted]`)) {
          items.splice(items.indexOf(existing), 1);
          continue;
        }
        const hasPrice = f.price !== undefined || f.price_data !== undefined;
        const price = hasPrice ? priceOf(f, c.account, `items[${i}]`) : existing?.price;
        if (!price) throw missing(`items[${i}][price]`);
        if (!price.recurring) {
          throw invalid(
            `The price specified is set to \`type=one_time\` but this field only accepts prices with \`type=recurring\`.`,
            `items[${i}][price]`,
          );
        }
        const quantity = int(f.quantity, `items[${i}][quantity]`);
        if (existing) {
          existing.price = price;
          if (quantity !== undefined) existing.quantity = quantity;
        } else {
          const first = items[0];
          const sid = randomId('si_');
          owners.set(sid, c.account);
          items.push({
            id: sid,
            object: 'subscription_item',
            created: now(),
            current_period_start: first?.current_period_start ?? now(),
            current_period_end:
              first?.current_period_end ?? addPeriod(now(), price.recurring as Record<string, unknown>),
            discounts: [],
            metadata: {},
            price,
            quantity: quantity ?? 1,
            subscription: s.id,
            tax_rates: [],
          } as Item);
        }
      }
      if (items.length === 0) throw invalid('A subscription must have at least one active plan.', 'items');
    }
    fire(c, 'customer.subscription.updated', s, previous);
    return s;
  }

  function cancelNow(s: StubObject): Record<string, unknown> {
    if (s.status === 'canceled') {
      throw invalid(`No such subscription: '${s.id}'`, 'id', 'resource_missing');
    }
    const previous = { status: s.status };
    const t = now();
    Object.assign(s, {
      status: 'canceled',
      canceled_at: t,
      ended_at: t,
      cancellation_details: { comment: null, feedback: null, reason: 'cancellation_requested' },
    });
    return previous;
  }

  // ---------- hosted pages ----------
  const page = (title: string, body: string, status = 200) =>
    new Response(
      `<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>${escapeHtml(title)}</title><style>body{font-family:system-ui,sans-serif;max-width:32rem;margin:2rem auto;padding:0 1rem;color:#1a1a1a}button{font-size:1rem;padding:.6rem 1.4rem;background:#0a2540;color:#fff;border:0;border-radius:6px}label{display:block;margin:.5rem 0}input{font-size:1rem;padding:.4rem}table{border-collapse:collapse;width:100%}td,th{text-align:left;padding:.3rem 0}</style></head><body><main>${body}</main></body></html>`,
      { status, headers: { 'content-type': 'text/html; charset=utf-8' } },
    );
  const gone = () => page('Page no longer available', '<h1>This page is no longer available</h1>', 410);

  async function hosted(req: Request, url: URL): Promise<Response | null> {
    const pay = /^\/pay\/(cs_[A-Za-z0-9_]+)$/.exec(url.pathname);
    if (pay) {
      const s = state.checkoutSessions.get(pay[1]!);
      if (!s)
        return page(
          'Not found',
          '<h1>Something went wrong</h1><p>The page you were looking for could not be found.</p>',
          404,
        );
      if (s.status !== 'open') return gone();
      if (req.method === 'POST') {
        const form = parseStripeForm(await req.text());
        const events = completeSession(s, str(form.email) ?? null);
        void emitAll(events);
        const target = String(s.success_url ?? `${base_url}/pay/${s.id}/done`).replaceAll(
          '{CHECKOUT_SESSION_ID}',
          s.id,
        );
        return new Response(null, { status: 303, headers: { location: target } });
      }
      const lines = sessionLineItems.get(s.id)!.data as StubObject[];
      const rows = lines
        .map(
          (l) =>
            `<tr><td>${escapeHtml(String(l.description || 'Item'))} × ${String(l.quantity)}</td><td>${escapeHtml(money(Number(l.amount_total), String(l.currency)))}${(l.price as StubObject).recurring ? ` per ${escapeHtml(String(((l.price as StubObject).recurring as { interval: string }).interval))}` : ''}</td></tr>`,
        )
        .join('');
      const total = money(Number(s.amount_total), String(s.currency ?? 'usd'));
      const email =
        (s.customer_email as string | null) ??
        (s.customer ? (state.customers.get(String(s.customer))?.email as string | null) : null) ??
        '';
      const cancel = s.cancel_url
        ? `<p><a href="${escapeHtml(String(s.cancel_url))}">Cancel and go back</a></p>`
        : '';
      return page(
        `Pay ${total}`,
        `<h1>Pay ${escapeHtml(total)}</h1><table aria-label="Order summary"><tbody>${rows}</tbody><tfoot><tr><th scope="row">Total due today</th><td>${escapeHtml(total)}</td></tr></tfoot></table><form method="post" action="/pay/${s.id}"><label for="email">Email</label><input id="email" name="email" type="email" autocomplete="email" value="${escapeHtml(email)}"><p>Card: 4242 4242 4242 4242 (test mode)</p><button type="submit">Pay</button></form>${cancel}`,
      );
    }
    const portal = /^\/portal\/(bps_[A-Za-z0-9]+)(?:\/cancel\/(sub_[A-Za-z0-9]+))?$/.exec(url.pathname);
    if (portal) {
      const ps = state.portalSessions.get(portal[1]!);
      if (!ps) return page('Not found', '<h1>Something went wrong</h1>', 404);
      if (req.method === 'POST' && portal[2]) {
        const s = state.subscriptions.get(portal[2]);
        if (!s || s.customer !== ps.customer) return page('Not found', '<h1>Something went wrong</h1>', 404);
        if (!s.cancel_at_period_end && s.status !== 'canceled') {
          const previous = {
            cancel_at_period_end: false,
            cancel_at: s.cancel_at,
            canceled_at: s.canceled_at,
          };
          Object.assign(s, {
            cancel_at_period_end: true,
            cancel_at: itemsOf(s)[0]!.current_period_end,
            canceled_at: now(),
          });
          void emit('customer.subscription.updated', s, {
            account: state.accountOf(s.id),
            previousAttributes: previous,
          });
        }
        return new Response(null, { status: 303, headers: { location: `/portal/${ps.id}` } });
      }
      const subs = [...state.subscriptions.values()].filter(
        (s) => s.customer === ps.customer && s.status !== 'canceled',
      );
      const items = subs
        .map((s) => {
          const it = itemsOf(s)[0]!;
          const when = new Date(it.current_period_end * 1000).toISOString().slice(0, 10);
          const action = s.cancel_at_period_end
            ? `<p>Cancels on ${when}</p>`
            : `<form method="post" action="/portal/${ps.id}/cancel/${s.id}"><button type="submit">Cancel plan</button></form>`;
          return `<li><h2>${escapeHtml(money(Number(it.price.unit_amount) * it.quantity, String(it.price.currency)))} per ${escapeHtml(String((it.price.recurring as { interval: string }).interval))}</h2><p>Status: ${escapeHtml(String(s.status))}; renews ${when}</p>${action}</li>`;
        })
        .join('');
      const back = ps.return_url ? `<p><a href="${escapeHtml(String(ps.return_url))}">Return</a></p>` : '';
      return page(
        'Manage your billing',
        `<h1>Manage your billing</h1><ul>${items || '<li>No subscriptions</li>'}</ul>${back}`,
      );
    }
    const onboarding = /^\/connect\/onboard\/(acct_[A-Za-z0-9]+)$/.exec(url.pathname);
    if (onboarding) {
      const a = state.accounts.get(onboarding[1]!);
      const link = state.accountLinks.find(
        (l) => l.account === onboarding[1] && String(l.url).endsWith(url.search),
      );
      if (!a || !link) return page('Not found', '<h1>Something went wrong</h1>', 404);
      if (Number(link.expires_at) < now()) {
        return new Response(null, { status: 303, headers: { location: String(link.refresh_url ?? '/') } });
      }
      if (req.method === 'POST') {
        const previous = onboard(a);
        void emit('account.updated', a, { account: a.id, previousAttributes: previous });
        return new Response(null, { status: 303, headers: { location: String(link.return_url) } });
      }
      return page(
        'Set up your account',
        `<h1>Set up payouts</h1><p>Test-mode onboarding for ${escapeHtml(a.id)}.</p><form method="post" action="${escapeHtml(url.pathname + url.search)}"><button type="submit">Finish onboarding</button></form>`,
      );
    }
    return null;
  }

  // ---------- the server ----------
  const errorBody = (e: StripeApiError, requestId: string) => ({
    error: {
      ...(e.code
        ? { code: e.code, doc_url: `https://stripe.com/docs/error-codes/${e.code.replaceAll('_', '-')}` }
        : {}),
      message: e.message,
      ...(e.param ? { param: e.param } : {}),
      request_log_url: `https://dashboard.stripe.com/test/logs/${requestId}`,
      type: e.type,
    },
  });
  const errorResponse = (e: StripeApiError, requestId: string) =>
    Response.json(errorBody(e, requestId), {
      status: e.status,
      headers: { 'request-id': requestId, 'stripe-should-retry': 'false' },
    });

  async function api(
    req: Request,
    url: URL,
    headers: Record<string, string>,
    requestId: string,
  ): Promise<Response> {
    const method = req.method;
    const raw = method === 'POST' ? await req.text() : url.search.slice(1);
    const form = parseStripeForm(raw);
    const account = headers['stripe-account'] ?? null;
    requests.push({ method, path: url.pathname, headers, body: form, account });

    const auth = headers.authorization;
    let key: string | undefined;
    if (auth?.startsWith('Bearer ')) key = auth.slice(7).trim();
    else if (auth?.startsWith('Basic '))
      key = Buffer.from(auth.slice(6), 'base64').toString('utf8').split(':')[0];
    if (!key) {
      return errorResponse(
        new StripeApiError(
          401,
          'invalid_request_error',
          "You did not provide an API key. You need to provide your API key in the Authorization header, using Bearer auth (e.g. 'Authorization: Bearer YOUR_SECRET_KEY'). See https://stripe.com/docs/api#authentication for details, or we can help at https://support.stripe.com/.",
        ),
        requestId,
      );
    }
    const okKey = opts.apiKey !== undefined ? key === opts.apiKey : /^(sk|rk)_test_[A-Za-z0-9_]+$/.test(key);
    if (!okKey) {
      const shown =
        key.length > 8
          ? `${key.slice(0, 8)}${'*'.repeat(Math.max(0, key.length - 12))}${key.slice(-4)}`
          : key;
      return errorResponse(
        new StripeApiError(
          401,
          'invalid_request_error',
          `Invalid API Key provided: ${shown}`,
          'api_key_invalid',
        ),
        requestId,
      );
    }
    if (account && !state.accounts.has(account)) {
      return errorResponse(
        new StripeApiError(
          403,
          'invalid_request_error',
          `The provided key '${key.slice(0, 8)}${'*'.repeat(8)}${key.slice(-4)}' does not have access to account '${account}' (or that account does not exist). Application access may have been revoked.`,
          'account_invalid',
        ),
        requestId,
      );
    }

    const idemKey = method === 'POST' ? (headers['idempotency-key'] ?? null) : null;
    const params = [...new URLSearchParams(raw)]
      .map(([k, v]) => `${k}=${v}`)
      .sort()
      .join('&');
    const scope = idemKey ? `${key}\n${account ?? ''}\n${idemKey}` : null;
    if (scope) {
      const prior = idempotency.get(scope);
      if (prior) {
        if (prior.path !== url.pathname) {
          return errorResponse(
            new StripeApiError(
              400,
              'idempotency_error',
              `Keys for idempotent requests can only be used for the same endpoint they were first used for ('${url.pathname}' vs '${prior.path}'). Try using a key other than '${idemKey}' if you meant to execute a different request.`,
            ),
            requestId,
          );
        }
        if (prior.params !== params) {
          return errorResponse(
            new StripeApiError(
              400,
              'idempotency_error',
              `Keys for idempotent requests can only be used with the same parameters they were first used with. Try using a key other than '${idemKey}' if you meant to execute a different request.`,
            ),
            requestId,
          );
        }
        return new Response(prior.body, {
          status: prior.status,
          headers: {
            'content-type': 'application/json',
            'request-id': prior.requestId,
            'idempotency-key': idemKey!,
            'idempotent-replayed': 'true',
            'original-request': prior.requestId,
          },
        });
      }
    }

    let status = 200;
    let text: string;
    let handled = false;
    try {
      let result: unknown = null;
      checkParams(method, url.pathname, form);
      for (const [m, re, handler] of routes) {
        const match = re.exec(url.pathname);
        if (m === method && match) {
          // Synchronous from the idempotency check to its record: no other request interleaves.
          result = handler(
            { account, form, method, requestId, idempotencyKey: idemKey },
            decodeURIComponent(match[1] ?? ''),
          );
          handled = true;
          break;
        }
      }
      if (!handled)
        throw new StripeApiError(
          404,
          'invalid_request_error',
          `Unrecognized request URL (${method}: ${url.pathname}). Please see https://stripe.com/docs or we can help at https://support.stripe.com/.`,
        );
      const expands = arr(form.expand, 'expand').filter((e): e is string => typeof e === 'string');
      const out =
        expands.length > 0 && result && typeof result === 'object'
          ? expand(result as StubObject, expands)
          : result;
      text = JSON.stringify(out, null, 2);
    } catch (e) {
      if (!(e instanceof StripeApiError)) throw e;
      status = e.status;
      text = JSON.stringify(errorBody(e, requestId), null, 2);
    }
    // Stripe saves no result for a request that failed validation (it may be retried with its key);
    // the stub's errors are all of that kind, so only successes are saved.
    if (scope && status < 400)
      idempotency.set(scope, { path: url.pathname, params, status, body: text, requestId });
    return new Response(text, {
      status,
      headers: {
        'content-type': 'application/json',
        'request-id': requestId,
        'stripe-version': headers['stripe-version'] ?? apiVersion,
        ...(account ? { 'stripe-account': account } : {}),
        ...(idemKey ? { 'idempotency-key': idemKey } : {}),
        ...(status >= 400 ? { 'stripe-should-retry': 'false' } : {}),
      },
    });
  }

  const server = Bun.serve({
    hostname: '127.0.0.1',
    port: 0,
    async fetch(req) {
      const url = new URL(req.url);
      const requestId = randomId('req_', 14);
      const headers: Record<string, string> = {};
      req.headers.forEach((v, k) => {
        headers[k] = v;
      });
      try {
        if (url.pathname.startsWith('/v1/')) return await api(req, url, headers, requestId);
        requests.push({ method: req.method, path: url.pathname, headers, body: {}, account: null });
        return (await hosted(req, url)) ?? page('Not found', '<h1>Not found</h1>', 404);
      } catch (e) {
        return Response.json(
          {
            error: {
              type: 'api_error',
              message: `stub failure: ${e instanceof Error ? e.message : String(e)}`,
            },
          },
          { status: 500, headers: { 'request-id': requestId } },
        );
      }
    },
  });
  const port = server.port!;
  const base_url = `http://127.0.0.1:${port}`;

  const sub_ = (id: string) => {
    const s = state.subscriptions.get(id);
    if (!s) throw new Error(`stripe-stub: no subscription ${id}`);
    if (s.status === 'canceled') throw new Error(`stripe-stub: subscription ${id} is canceled`);
    return s;
  };

  return {
    url: base_url,
    host: '127.0.0.1',
    port,
    state,
    requests,
    addEndpoint(url, secret) {
      const endpoint = { id: randomId('we_'), url, secret: secret ?? randomId('whsec_', 32) };
      endpoints.push(endpoint);
      return endpoint;
    },
    removeEndpoint(id) {
      const i = endpoints.findIndex((e) => e.id === id);
      if (i >= 0) endpoints.splice(i, 1);
    },
    emit,
    idle: async () => {
      // Deliveries queued while waiting join the queue; wait until it stops growing.
      let seen: Promise<void>;
      do {
        seen = queue;
        await seen;
      } while (seen !== queue);
    },
    delivered(type, objectId) {
      const found = state.events.find(
        (e) => e.event.type === type && (objectId === undefined || e.event.data.object.id === objectId),
      );
      if (found) return completion.get(found)!;
      return new Promise<Promise<StripeEmitted>>((resolve) => {
        waiters.push({ type, ...(objectId !== undefined ? { objectId } : {}), resolve });
      }).then((p) => p);
    },
    declinePaymentMethod(pm) {
      declined.add(pm);
    },
    async payInvoice(id) {
      const s = sub_(id);
      const account = state.accountOf(id);
      const wasPastDue = s.status === 'past_due';
      // An open (failed) invoice is paid on retry; otherwise a new period begins.
      const open = [...state.invoices.values()].find(
        (i) =>
          i.status === 'open' &&
          (i.parent as { subscription_details: { subscription: string } }).subscription_details
            .subscription === id,
      );
      let inv: StubInvoice;
      if (open) {
        const { pi } = createPayment(open.amount_due, String(open.currency), String(s.customer), {}, account);
        Object.assign(open, {
          status: 'paid',
          amount_paid: open.amount_due,
          amount_remaining: 0,
          attempt_count: Number(open.attempt_count) + 1,
          next_payment_attempt: null,
          status_transitions: { ...(open.status_transitions as object), paid_at: now() },
          payments: list(
            [
              {
                id: randomId('inpay_'),
                object: 'invoice_payment',
                amount_paid: open.amount_due,
                currency: open.currency,
                invoice: open.id,
                is_default: true,
                livemode: false,
                payment: { type: 'payment_intent', payment_intent: pi.id },
                status: 'paid',
              },
            ],
            `/v1/invoices/${open.id}/payments`,
          ),
        });
        inv = open;
      } else {
        advancePeriod(s);
        inv = createInvoice(s, 'subscription_cycle', true, account);
      }
      s.status = 'active';
      const events: [string, StubObject, StripeEmitOptions?][] = [['invoice.paid', inv, { account }]];
      if (wasPastDue)
        events.push([
          'customer.subscription.updated',
          s,
          { account, previousAttributes: { status: 'past_due' } },
        ]);
      await emitAll(events);
      return inv;
    },
    async failInvoice(id) {
      const s = sub_(id);
      const account = state.accountOf(id);
      advancePeriod(s);
      const inv = createInvoice(s, 'subscription_cycle', false, account);
      const previous = { status: s.status };
      s.status = 'past_due';
      await emitAll([
        ['invoice.payment_failed', inv, { account }],
        ['customer.subscription.updated', s, { account, previousAttributes: previous }],
      ]);
      return inv;
    },
    async cancelSubscription(id) {
      const s = sub_(id);
      const previous = cancelNow(s);
      await emit('customer.subscription.deleted', s, {
        account: state.accountOf(id),
        previousAttributes: previous,
      });
      return s;
    },
    async refund(params) {
      const f: Form = {};
      if (params.payment_intent) f.payment_intent = params.payment_intent;
      if (params.charge) f.charge = params.charge;
      if (params.amount !== undefined) f.amount = String(params.amount);
      const id = params.payment_intent ?? params.charge ?? '';
      const { refund, charge } = refundCharge(f, state.accountOf(id));
      const account = state.accountOf(charge.id);
      await emitAll([
        ['charge.refunded', charge, { account }],
        ['refund.created', refund, { account }],
      ]);
      return refund;
    },
    async updateAccount(id, patch) {
      const a = state.accounts.get(id);
      if (!a) throw new Error(`stripe-stub: no account ${id}`);
      const previous: Record<string, unknown> = {};
      for (const k of Object.keys(patch)) previous[k] = a[k];
      Object.assign(a, patch);
      await emit('account.updated', a, { account: id, previousAttributes: previous });
      return a;
    },
    async stop() {
      await queue;
      server.stop(true);
    },
  };

  function advancePeriod(s: StubObject) {
    for (const it of itemsOf(s)) {
      it.current_period_start = it.current_period_end;
      it.current_period_end = addPeriod(
        it.current_period_start,
        it.price.recurring as Record<string, unknown>,
      );
    }
  }
}
