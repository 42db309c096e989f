import { router, orgProcedure } from '../../trpc/init.js';
import * as s from '../../../shared/schemas.js';
import { listAuditEntries } from './service.js';

export const auditRouter = router({
  list: orgProcedure('audit.view').input(s.auditListInput).query(({ ctx, input }) => listAuditEntries(ctx.em, ctx.orgId, input.cursor, input.limit)),
});
