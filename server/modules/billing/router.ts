import { router, orgProcedure } from '../../trpc/init.js';
import * as s from '../../../shared/schemas.js';
import { nanosToDecimal } from '../../../shared/money.js';
import { runCommand } from '../../events/unit-of-work.js';
import * as billing from './service.js';
import { groupedTransactionsCsv, listGroupedTransactions } from './transactions-grouped.js';
import { loadBillingState } from './account.js';
import { addPaymentMethod, purchaseCredits, subscribeToPro } from './checkout.js';
import { returnUrlBase } from '../../auth/app-url.js';

/** Checkout returns the user to the host they came from when it is APP_URL's or in APP_ALLOWED_ORIGINS. */
const returnBase = (ctx: { services: { appUrl: string; config: { allowedOrigins: string[] } }; requestOrigin: string | null }) =>
  returnUrlBase(ctx.services.appUrl, ctx.services.config.allowedOrigins, ctx.requestOrigin);
import { latestAttempt, updateAutoTopUp } from './auto-top-up.js';
import { cancelSubscription, isLiveSubscription, listInvoices, resumeSubscription, switchBillingCycle } from './subscriptions.js';
import { listPaymentMethods, removePaymentMethod, setDefaultPaymentMethod } from './payment-methods.js';
import { refundTransaction } from './refunds.js';
import { listBudgetAlerts, setBudgetAlert } from './alerts.js';

export const billingRouter = router({
  overview: orgProcedure('billing.view')
    .input(s.orgRef)
    .query(async ({ ctx }) => {
      const state = await loadBillingState(ctx.em, ctx.orgId);
      const provider = ctx.services.billing;
      return {
        credits: nanosToDecimal(state.creditsNanos),
        plan: state.plan,
        billingCycle: state.billingCycle,
        testMode: provider.testMode,
        autoTopUp: {
          enabled: state.autoTopUp.enabled,
          threshold: nanosToDecimal(state.autoTopUp.thresholdNanos),
          amount: nanosToDecimal(state.autoTopUp.amountNanos),
          disabledReason: state.autoTopUp.disabledReason,
          lastAttempt: await latestAttempt(ctx, ctx.orgId),
        },
        paymentMethods: await listPaymentMethods(ctx.em, ctx.services, ctx.orgId),
        subscription: state.subscription.id ? state.subscription : null,
      };
    }),
  transactions: orgProcedure('billing.view')
    .input(s.transactionsInput)
    .query(({ ctx, input }) => billing.listTransactions(ctx.em, ctx.orgId, input)),
  transactionsGrouped: orgProcedure('billing.view')
    .input(s.transactionsGroupedInput)
    .query(({ ctx, input }) => listGroupedTransactions(ctx.em, ctx.orgId, input)),
  transactionsCsv: orgProcedure('billing.view')
    .input(s.transactionsCsvInput)
    .query(async ({ ctx, input }) => ({
      filename: `transactions-${ctx.orgId}${input.type ? `-${input.type}` : ''}${input.view === 'grouped' ? '-by-day' : ''}.csv`,
      csv:
        input.view === 'grouped'
          ? await groupedTransactionsCsv(ctx.em, ctx.orgId, { ...(input.type ? { type: input.type } : {}), ...(input.timeZone ? { timeZone: input.timeZone } : {}) })
          : await billing.transactionsCsv(ctx.em, ctx.orgId, input.type),
    })),
  purchaseCredits: orgProcedure('billing.manage')
    .input(s.purchaseCreditsInput)
    .mutation(({ ctx, input }) => purchaseCredits(ctx.services, ctx.user.id, ctx.orgId, input.amount, returnBase(ctx))),
  updateAutoTopUp: orgProcedure('billing.manage')
    .input(s.autoTopUpInput)
    .mutation(({ ctx, input }) =>
      runCommand(ctx.services, ctx.user.id, (work) => updateAutoTopUp(work, ctx.orgId, { enabled: input.enabled, thresholdCents: input.threshold, amountCents: input.amount })),
    ),
  changePlan: orgProcedure('billing.manage')
    .input(s.changePlanInput)
    .mutation(async ({ ctx, input }) => {
      if (input.plan === 'pro') {
        // An active Pro subscription switches between monthly and yearly in place (prorated); otherwise Checkout.
        const state = await loadBillingState(ctx.em, ctx.orgId);
        if (state.plan === 'pro' && isLiveSubscription(state.subscription.status)) {
          return { switched: await switchBillingCycle(ctx.services, ctx.user.id, ctx.orgId, input.billingCycle) };
        }
        return subscribeToPro(ctx.em, ctx.services.billing, returnBase(ctx), ctx.orgId, input.billingCycle);
      }
      return { subscription: await cancelSubscription(ctx.services, ctx.user.id, ctx.orgId) };
    }),
  cancelSubscription: orgProcedure('billing.manage')
    .input(s.orgRef)
    .mutation(({ ctx }) => cancelSubscription(ctx.services, ctx.user.id, ctx.orgId)),
  /** Undoes a pending cancellation before the period ends (owners). */
  resumeSubscription: orgProcedure('billing.manage')
    .input(s.orgRef)
    .mutation(({ ctx }) => resumeSubscription(ctx.services, ctx.user.id, ctx.orgId)),
  /** The organization's invoices from Stripe, newest first, with hosted page and PDF links (owners and admins). */
  invoices: orgProcedure('billing.view')
    .input(s.invoicesInput)
    .query(({ ctx, input }) => listInvoices(ctx.services, ctx.orgId, input.cursor)),
  paymentMethods: router({
    list: orgProcedure('billing.view')
      .input(s.orgRef)
      .query(({ ctx }) => listPaymentMethods(ctx.em, ctx.services, ctx.orgId)),
    add: orgProcedure('billing.manage')
      .input(s.orgRef)
      .mutation(({ ctx }) => addPaymentMethod(ctx.em, ctx.services.billing, returnBase(ctx), ctx.orgId)),
    setDefault: orgProcedure('billing.manage')
      .input(s.paymentMethodRef)
      .mutation(({ ctx, input }) => setDefaultPaymentMethod(ctx.services, ctx.user.id, ctx.orgId, input.paymentMethodId)),
    remove: orgProcedure('billing.manage')
      .input(s.paymentMethodRef)
      .mutation(({ ctx, input }) => removePaymentMethod(ctx.services, ctx.user.id, ctx.orgId, input.paymentMethodId)),
  }),
  refund: orgProcedure('billing.manage')
    .input(s.refundInput)
    .mutation(({ ctx, input }) => refundTransaction(ctx.services, ctx.orgId, ctx.user.id, input.transactionId, input.reason)),
  budgetAlerts: router({
    list: orgProcedure('billing.view')
      .input(s.orgRef)
      .query(({ ctx }) => listBudgetAlerts(ctx.em, ctx.orgId)),
    set: orgProcedure('billing.manage')
      .input(s.budgetAlertSetInput)
      .mutation(({ ctx, input }) => runCommand(ctx.services, ctx.user.id, (work) => setBudgetAlert(work, ctx.orgId, input.kind, input.threshold))),
  }),
});
