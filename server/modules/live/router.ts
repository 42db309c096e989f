import { router, orgProcedure } from '../../trpc/init.js';
import * as s from '../../../shared/schemas.js';
import { organizationStream } from './stream.js';

export const liveRouter = router({
  organization: orgProcedure('live.subscribe')
    .input(s.liveInput)
    .subscription(({ ctx, input, signal }) =>
      organizationStream({
        em: ctx.em,
        bus: ctx.services.bus,
        orgId: ctx.orgId,
        userId: ctx.user.id,
        credentialKey: ctx.sessionId ?? (ctx.tokenId ? `token:${ctx.tokenId}` : null),
        lastEventId: input.lastEventId,
        signal,
        onEnd: () => void ctx.services.presence.leave(ctx.orgId, ctx.connectionId).catch(() => {}),
      }),
    ),
});

export const presenceRouter = router({
  update: orgProcedure('live.subscribe')
    .input(s.presenceInput)
    .mutation(async ({ ctx, input }) => {
      await ctx.services.presence.update(ctx.orgId, ctx.connectionId, ctx.user.id, input.page);
      return { ok: true as const };
    }),
});
