import { router, orgProcedure } from '../../trpc/init.js';
import * as s from '../../../shared/schemas.js';
import { listAuditActors, listAuditEntries } from './service.js';

export const auditRouter = router({
  list: orgProcedure('audit.view')
    .input(s.auditListInput)
    .query(({ ctx, input }) => listAuditEntries(ctx.em, ctx.orgId, input.cursor, input.limit, { actorId: input.actorId, actions: input.actions, from: input.from, to: input.to })),
  actors: orgProcedure('audit.view').input(s.orgRef).query(({ ctx }) => listAuditActors(ctx.em, ctx.orgId)),
});
