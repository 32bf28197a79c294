import { Elysia, t } from 'elysia';
import {
  actorOf,
  can,
  createUserRepository,
  type PlatformRequestContext,
  platformGuard,
} from '../identity/index.ts';
import { AppError } from '../shared/errors.ts';
import { userOf } from './credits.service.ts';
import { invoiceHtml, invoicePdf, type RenderInfo } from './invoice-render.ts';
import {
  findInvoice,
  type InvoiceView,
  invoicesOf,
  invoiceView,
  issueMonthlyInvoices,
  periodOf,
  setTaxRates,
  taxSettings,
  voidInvoice,
} from './invoices.service.ts';

const InvoiceParams = t.Object({ id: t.String({ pattern: '^inv_[0-9a-z]{26}$' }) });
const Month = t.String({
  pattern: '^\\d{4}-(0[1-9]|1[0-2])$',
  description: 'a calendar month (UTC), YYYY-MM',
});
const FormatQuery = t.Object({
  format: t.Optional(t.Union([t.Literal('json'), t.Literal('html'), t.Literal('pdf')])),
});
const AdminQuery = t.Object({
  kind: t.Optional(t.Union([t.Literal('user'), t.Literal('platform')])),
  month: t.Optional(Month),
  user: t.Optional(t.String({ maxLength: 100 })),
  status: t.Optional(t.Union([t.Literal('issued'), t.Literal('void')])),
});
const TaxBody = t.Object({
  rates: t.Array(
    t.Object({
      name: t.String({ minLength: 1, maxLength: 60 }),
      percent: t.Number({ minimum: 0, maximum: 100, description: 'at most four decimals' }),
    }),
    { maxItems: 5 },
  ),
});

/** An invoice the asker may read: their own, or any with billing:read; 404 otherwise (no probing). */
function readable(c: PlatformRequestContext, id: string) {
  const inv = findInvoice(c.db, id);
  const admin = can(c.principal, 'billing:read');
  if (!inv || (!admin && (inv.kind !== 'user' || inv.subject !== userOf(c))))
    throw new AppError('billing.invoice_not_found', 'no such invoice', 404);
  return invoiceView(inv);
}

function renderInfo(c: PlatformRequestContext, v: InvoiceView): RenderInfo {
  const bp = c.blueprint();
  const name = bp.identity.name || c.platform.name;
  if (v.kind === 'platform')
    return {
      platformName: name,
      color: bp.identity.branding.colors.primary,
      billedTo: name,
      issuer: 'The operator of this Soulfra instance',
    };
  const u = createUserRepository({ db: c.db }).byId(v.subject);
  return {
    platformName: name,
    color: bp.identity.branding.colors.primary,
    billedTo: u ? (u.name ? `${u.name} <${u.email}>` : u.email) : v.subject,
    issuer: name,
  };
}

/** Each invoice with who it bills as a reader knows them (an email, or the platform's name). */
function withBilledTo(c: PlatformRequestContext, vs: InvoiceView[]) {
  const users = createUserRepository({ db: c.db });
  return vs.map((v) => ({
    ...v,
    billed_to: v.kind === 'platform' ? c.platform.name : (users.byId(v.subject)?.email ?? v.subject),
  }));
}

/**
 * Invoices (issue 13 item 5): a user's own, as JSON, printable HTML or PDF; an admin's list,
 * issuing a month, voiding by a new invoice, and the platform's tax rates.
 */
export const invoicesRoutes = new Elysia({ name: 'invoices.routes' })
  .use(platformGuard)
  .get(
    '/api/v1/billing/invoices',
    ({ ctx }) => ({ invoices: invoicesOf(ctx.db, { kind: 'user', subject: userOf(ctx), limit: 120 }) }),
    {
      permission: 'platform:read',
      detail: { summary: 'Your invoices (monthly), newest first', tags: ['billing'] },
    },
  )
  .get(
    '/api/v1/billing/invoices/:id',
    async ({ ctx, params, query }) => {
      const v = readable(ctx, params.id);
      if (!query.format || query.format === 'json') return { invoice: v };
      const info = renderInfo(ctx, v);
      if (query.format === 'html')
        return new Response(invoiceHtml(v, info), {
          headers: {
            'content-type': 'text/html; charset=utf-8',
            'content-security-policy': "default-src 'none'; style-src 'unsafe-inline'",
          },
        });
      return new Response(new Blob([new Uint8Array(await invoicePdf(v, info))]), {
        headers: {
          'content-type': 'application/pdf',
          'content-disposition': `inline; filename="${v.number}.pdf"`,
        },
      });
    },
    {
      permission: 'platform:read',
      params: InvoiceParams,
      query: FormatQuery,
      detail: {
        summary:
          'An invoice (yours; any with billing:read): JSON, printable HTML (?format=html) or PDF (?format=pdf)',
        tags: ['billing'],
      },
    },
  )
  .get(
    '/api/v1/admin/billing/invoices',
    ({ ctx, query }) => ({
      invoices: withBilledTo(
        ctx,
        invoicesOf(ctx.db, {
          ...(query.kind ? { kind: query.kind } : {}),
          ...(query.user ? { subject: query.user } : {}),
          ...(query.month ? { periodStart: periodOf(query.month).start } : {}),
          ...(query.status ? { status: query.status } : {}),
          limit: 500,
        }),
      ),
    }),
    {
      permission: 'billing:read',
      query: AdminQuery,
      detail: {
        summary: "The platform's invoices and the operator's bills, filtered by kind, month, user or status",
        tags: ['billing'],
      },
    },
  )
  .post(
    '/api/v1/admin/billing/invoices/issue',
    async ({ ctx, body }) => {
      const r = await issueMonthlyInvoices(ctx, body.month, { by: actorOf(ctx.principal) });
      return { month: r.month, issued: r.issued.map(invoiceView), existing: r.existing.map(invoiceView) };
    },
    {
      permission: 'billing:write',
      body: t.Object({ month: Month }),
      detail: {
        summary:
          "Issue a month's invoices: every user with billable activity, and the operator's bill (409 before the month ends; again: the same invoices)",
        tags: ['billing'],
      },
    },
  )
  .post(
    '/api/v1/admin/billing/invoices/:id/void',
    ({ ctx, params }) => ({ invoice: invoiceView(voidInvoice(ctx, params.id, actorOf(ctx.principal))) }),
    {
      permission: 'billing:write',
      params: InvoiceParams,
      detail: {
        summary:
          'Void an invoice: a new invoice (status void, its own number) that negates it; the original is not changed',
        tags: ['billing'],
      },
    },
  )
  .get('/api/v1/admin/billing/tax-rates', ({ ctx }) => taxSettings(ctx), {
    permission: 'billing:read',
    detail: { summary: "The platform's tax rates and the blueprint's tax behaviour", tags: ['billing'] },
  })
  .put(
    '/api/v1/admin/billing/tax-rates',
    ({ ctx, body }) => setTaxRates(ctx, body.rates, actorOf(ctx.principal)),
    {
      permission: 'billing:write',
      body: TaxBody,
      detail: {
        summary:
          "Set the platform's tax rates (name, percent with up to four decimals) for invoices issued from now on",
        tags: ['billing'],
      },
    },
  );
