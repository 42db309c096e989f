import { failureHandler } from '../../observability/failures.js';
import { tracked } from '@trpc/server';
import { router, orgProcedure } from '../../trpc/init.js';
import { shareOutput } from '../../trpc/shared-output.js';
import * as s from '../../../shared/schemas.js';
import { organizationStream } from './stream.js';
import { poolQuery } from './sql.js';
import type { BusEvent } from '../../events/bus.js';

/**
 * Stored events carry their id, so a reconnecting client resumes after the last one it saw. Events
 * are never changed once made: one event's serialized form serves all its subscribers.
 */
const withEventId = (event: BusEvent) => (event.id ? tracked(event.id, shareOutput(event)) : shareOutput(event));

export const liveRouter = router({
  organization: orgProcedure('live.subscribe')
    .input(s.liveInput)
    // Not a generator: a generator's frame keeps its arguments (`ctx`, with the call's
    // EntityManager fork) for as long as the subscriber stays. This returns the stream, built
    // from plain values, and lets the call's context go.
    .subscription(({ ctx, input, signal }) => {
      const { orm, bus, presence, log } = ctx.services;
      const { orgId, connectionId } = ctx;
      return organizationStream(
        {
          query: poolQuery(orm),
          bus,
          orgId,
          userId: ctx.user.id,
          credentialKey: ctx.sessionId ?? (ctx.tokenId ? `token:${ctx.tokenId}` : null),
          lastEventId: input.lastEventId,
          signal,
          onEnd: () => void presence.leave(orgId, connectionId).catch(failureHandler(log, 'presence leave', { orgId })),
        },
        withEventId,
      );
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
