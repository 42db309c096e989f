import { router, orgProcedure } from '../../trpc/init.js';
import { runCommand } from '../../events/unit-of-work.js';
import * as s from './schemas.js';
import * as apiKeys from './service.js';

export const apiKeyRouter = router({
  list: orgProcedure('org.view').input(s.apiKeyListInput).query(({ ctx, input }) => apiKeys.listApiKeys(ctx.em, input.projectId)),
  create: orgProcedure('apiKey.create')
    .input(s.apiKeyCreateInput)
    .mutation(({ ctx, input }) =>
      runCommand(ctx.services, ctx.user.id, (work) => apiKeys.createApiKey(work, { ...input, orgId: ctx.orgId, userId: ctx.user.id }), ctx.em),
    ),
  // Everyone who may create keys may change and roll their own; the service checks apiKey.revokeAny for others' keys.
  update: orgProcedure('apiKey.create')
    .input(s.apiKeyUpdateInput)
    .mutation(({ ctx, input }) => runCommand(ctx.services, ctx.user.id, (work) => apiKeys.updateApiKey(work, { ...input, userId: ctx.user.id, role: ctx.role }), ctx.em)),
  roll: orgProcedure('apiKey.create')
    .input(s.apiKeyRollInput)
    .mutation(({ ctx, input }) => runCommand(ctx.services, ctx.user.id, (work) => apiKeys.rollApiKey(work, { ...input, userId: ctx.user.id, role: ctx.role }), ctx.em)),
  // Everyone who may create keys may revoke their own; the service checks apiKey.revokeAny for others' keys.
  revoke: orgProcedure('apiKey.create')
    .input(s.apiKeyRevokeInput)
    .mutation(({ ctx, input }) => runCommand(ctx.services, ctx.user.id, (work) => apiKeys.revokeApiKey(work, { ...input, userId: ctx.user.id, role: ctx.role }), ctx.em)),
});
