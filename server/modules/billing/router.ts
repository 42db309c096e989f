import { router, orgProcedure } from '../../trpc/init.js';
import * as s from '../../../shared/schemas.js';
import * as billing from './service.js';

export const billingRouter = router({
  overview: orgProcedure('billing.view').input(s.orgRef).query(({ ctx }) => billing.billingOverview(ctx.em, ctx.orgId)),
  transactions: orgProcedure('billing.view')
    .input(s.transactionsInput)
    .query(({ ctx, input }) => billing.listTransactions(ctx.em, ctx.orgId, input)),
  transactionsCsv: orgProcedure('billing.view')
    .input(s.transactionsCsvInput)
    .query(async ({ ctx, input }) => ({
      filename: `transactions-${ctx.orgId}${input.type ? `-${input.type}` : ''}.csv`,
      csv: await billing.transactionsCsv(ctx.em, ctx.orgId, input.type),
    })),
});
