import { router, orgProcedure } from '../../trpc/init.js';
import { runCommand } from '../../events/unit-of-work.js';
import * as s from './schemas.js';
import * as providerKeys from './service.js';

export const providerKeyRouter = router({
  list: orgProcedure('providerKey.manage').input(s.providerKeyListInput).query(({ ctx }) => providerKeys.listProviderKeys(ctx.em, ctx.orgId)),
  create: orgProcedure('providerKey.manage')
    .input(s.providerKeyCreateInput)
    .mutation(async ({ ctx, input }) => {
      await providerKeys.vetBaseUrl(input.baseUrl, ctx.services.config.gateway.allowPrivateUpstreams);
      return runCommand(ctx.services, ctx.user.id, (work) => providerKeys.createProviderKey(work, ctx.services.secretBox, { ...input, orgId: ctx.orgId, userId: ctx.user.id }), ctx.em);
    }),
  update: orgProcedure('providerKey.manage')
    .input(s.providerKeyUpdateInput)
    .mutation(async ({ ctx, input }) => {
      await providerKeys.vetBaseUrl(input.baseUrl, ctx.services.config.gateway.allowPrivateUpstreams);
      return runCommand(ctx.services, ctx.user.id, (work) => providerKeys.updateProviderKey(work, ctx.services.secretBox, input), ctx.em);
    }),
  delete: orgProcedure('providerKey.manage')
    .input(s.providerKeyRef)
    .mutation(({ ctx, input }) => runCommand(ctx.services, ctx.user.id, (work) => providerKeys.deleteProviderKey(work, input.providerKeyId), ctx.em)),
});
