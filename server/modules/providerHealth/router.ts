import { router, orgProcedure } from '../../trpc/init.js';
import { orgRef } from '../../../shared/schemas.js';
import { providerHealthView } from './service.js';

export const providerHealthRouter = router({
  get: orgProcedure('org.view').input(orgRef).query(({ ctx }) => providerHealthView(ctx.em, ctx.services.gateway?.health ?? null, ctx.orgId)),
});
