import { failureHandler } from '../../observability/failures.js';
import { tracked } from '@trpc/server';
import { router, orgProcedure } from '../../trpc/init.js';
import * as s from '../../../shared/schemas.js';
import { organizationStream } from './stream.js';
import { poolQuery } from './sql.js';
import type { BusEvent } from '../../events/bus.js';

export const liveRouter = router({
  organization: orgProcedure('live.subscribe')
    .input(s.liveInput)
    .subscription(async function* ({ ctx, input, signal }) {
      // Take plain values: the stream outlives this call, and holding `ctx` would keep the call's
      // EntityManager alive for as long as the subscriber stays.
      const { orm, bus, presence, log } = ctx.services;
      const { orgId, connectionId } = ctx;
      const stream = organizationStream({
        query: poolQuery(orm),
        bus,
        orgId,
        userId: ctx.user.id,
        credentialKey: ctx.sessionId ?? (ctx.tokenId ? `token:${ctx.tokenId}` : null),
        lastEventId: input.lastEventId,
        signal,
        onEnd: () => void presence.leave(orgId, connectionId).catch(failureHandler(log, 'presence leave', { orgId })),
      });
      // Stored events carry their id, so a reconnecting client resumes after the last one it saw.
      for await (const event of stream as AsyncIterable<BusEvent>) yield event.id ? tracked(event.id, event) : event;
    }),
});

export const presenceRouter = router({
  update: orgProcedure('live.subscribe')
    .input(s.presenceInput)
    .mutation(async ({ ctx, input }) => {
      await ctx.services.presence.update(ctx.orgId, ctx.connectionId, ctx.user.id, input.page, ctx.transport === 'ws');
      return { ok: true as const };
    }),
});
