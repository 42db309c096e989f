import { router, orgProcedure } from '../../trpc/init.js';
import * as s from './schemas.js';
import * as analytics from './service.js';

export const analyticsRouter = router({
  summary: orgProcedure('org.view').input(s.summaryInput).query(({ ctx, input }) => analytics.usageSummary(ctx.em, input)),
  timeseries: orgProcedure('org.view').input(s.timeseriesInput).query(({ ctx, input }) => analytics.usageTimeseries(ctx.em, input)),
  breakdown: orgProcedure('org.view').input(s.breakdownInput).query(({ ctx, input }) => analytics.usageBreakdown(ctx.em, input)),
});

export const logsRouter = router({
  list: orgProcedure('org.view').input(s.logsListInput).query(({ ctx, input }) => analytics.listLogs(ctx.em, input)),
  get: orgProcedure('org.view').input(s.logGetInput).query(({ ctx, input }) => analytics.getLog(ctx.em, ctx.orgId, input.logId)),
});
