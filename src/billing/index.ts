/** Billing (issue 13): the ledger, revenue share, and AI usage posted from the meter's events. */

export { billingRoutes } from './billing.routes.ts';
export {
  DEFAULT_GRACE_DAYS,
  freeTier,
  type Plan,
  planOf,
  requireAgentAllowance,
  requireAiAllowance,
  tierOf,
} from './entitlements.ts';
export { invoicesRoutes } from './invoices.routes.ts';
export {
  type InvoiceContext,
  type InvoiceView,
  issueMonthlyInvoices,
  voidInvoice,
} from './invoices.service.ts';
export { balancesAt, findAccount, listAccounts, transfersByRef, transfersOf } from './ledger.repository.ts';
export {
  accountId,
  expirePending,
  type LedgerErrorCode,
  ledgerError,
  netCredit,
  openAccount,
  post,
  postBatch,
  reversal,
  type TransferResult,
  type TransferSpec,
} from './ledger.ts';
export {
  archivePlan,
  assertPlatformOpen,
  assignDefaultPlan,
  createPlan,
  DEFAULT_PLAN_GRACE_DAYS,
  defaultPlanFor,
  deletePlan,
  evaluatePlanLimits,
  getPlan,
  installOperatorPlans,
  listPlans,
  type MarkupTier,
  markupPercentFor,
  type OperatorPlan,
  operatorCurrency,
  operatorFeeOf,
  PLAN_GATED_FEATURES,
  type PlanStatus,
  planStatus,
  platformPlan,
  requirePlanFeatures,
  setPlatformPlan,
  TEMPLATE_PLANS,
  updatePlan,
} from './operator-plans.ts';
export {
  DEFAULT_TRANSACTION_FEE_PERCENT,
  requirePurchase,
  type Sellable,
  termsOf,
} from './purchases.service.ts';
export { platformRevenue, revenueSeries } from './reports.service.ts';
export { refundChain, type Sale, type SaleTerms, saleAccounts, saleChain, splitSale } from './sales.ts';
export { stripeAccount } from './stripe.ts';
export { STRIPE_SECRET_SITE } from './stripe-settings.service.ts';
export { invoiceChain } from './subscriptions.service.ts';
export {
  markupOf,
  type OperatorMarkup,
  operatorMarkupOf,
  postUsage,
  subscribeUsageToLedger,
  USAGE_SUBSCRIBER,
} from './usage.ts';
export { applyEvent, platformOfEvent, verifiedEvent } from './webhook.ts';
